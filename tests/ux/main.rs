//! What a first click-through tripped on (issue 28), each pinned by a test whose name starts with `ux_`, so that
//! `cargo test --release ux_` runs them all: the window driven by its labels (egui_kittest), or a unit where no
//! widget is involved.

#[path = "../common/mod.rs"]
mod common;

mod band;
mod calibration;
mod continuing;
mod flow_line;
mod flow_play;
mod layout;
mod missing;
mod overfit;
mod paths;
mod presenter;
mod runs;
mod settings;
mod text_columns;
mod tour;
mod vae_table;
mod vi_nuts;
