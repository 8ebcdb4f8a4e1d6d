//! maand-engine: the pipelines (init, build, inspection, and later deploy and day-2 operations),
//! built from maand-core decisions, maand-store persistence and maand-remote transport.

pub mod template;
