//! The scenario: YAML in, checked [`Scenario`] out.
mod model;
pub use model::*;
