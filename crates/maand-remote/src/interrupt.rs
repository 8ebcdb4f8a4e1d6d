//! The interrupt flag of a run (placeholder until the signal handler lands): a cheap handle the
//! engine asks between batches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Shared interrupt state: how many interrupt signals arrived.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicUsize>);

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// A first interrupt arrived: finish the step in flight, start nothing new.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }

    /// What a first signal does.
    pub fn request(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
