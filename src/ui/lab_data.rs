//! A lab's dataset: the table, its column roles and split, how it was loaded, and its image grid once drawn.

use std::sync::Arc;

use crate::data::prepare::DataSpec;
use crate::data::{LoadRequest, Table};

/// A dataset in use by a lab.
pub struct LabData {
    /// The values.
    pub table: Arc<Table>,
    /// Column roles, split and standardisation.
    pub spec: DataSpec,
    /// How to load it again.
    pub request: LoadRequest,
    /// Image grid of the first rows, made on first draw.
    pub(crate) thumbnails: Option<egui::TextureHandle>,
}

impl LabData {
    pub(crate) fn new(table: Table, spec: DataSpec, request: LoadRequest) -> Self {
        Self { table: Arc::new(table), spec, request, thumbnails: None }
    }
}
