//! Issue 28: see `main.rs`.
