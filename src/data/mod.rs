//! Datasets: the embedded files, generated 2-D sets, the CSV reader, and the split a model trains on.
//! Used by every other module; depends on none of them.

pub mod builtin;
pub mod csv;
pub mod job;
pub mod prepare;
pub mod source;
pub mod synth;
pub mod table;

pub use csv::{CsvError, CsvOptions, HeaderMode, MissingPolicy};
pub use job::{LoadJob, LoadRequest};
pub use prepare::{DataSpec, Prepared, Role};
pub use source::{BuiltinFile, DataSource, SynthKind, SynthSpec};
pub use table::Table;
