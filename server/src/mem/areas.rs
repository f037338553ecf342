//! The budget of memory areas (VMAs) that regions and their madvise splits
//! may use, a share of `vm.max_map_count`: past the kernel's limit any mmap,
//! including the allocator's, fails, and the server would abort.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

/// The budget of memory areas (VMAs) our regions may use: one per region
/// plus up to two per sub-range madvise that changes an area's flags.
#[derive(Debug)]
pub(crate) struct Areas {
    pub(super) budget: AtomicU64,
    used: AtomicU64,
}

impl Areas {
    pub(crate) const fn new(budget: u64) -> Areas {
        Areas {
            budget: AtomicU64::new(budget),
            used: AtomicU64::new(0),
        }
    }

    /// Takes `n` areas if they fit in the budget.
    pub(super) fn charge(&self, n: u64) -> bool {
        let budget = self.budget.load(Ordering::Relaxed);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&u| u <= budget)
            })
            .is_ok()
    }

    /// Takes `n` areas even past the budget: for a fresh map that replaces
    /// an area still held by views.
    pub(super) fn charge_anyway(&self, n: u64) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    pub(super) fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Areas charged now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// The process's areas: `vm.max_map_count` is per process, so is this.
pub(super) static AREAS: Areas = Areas::new(u64::MAX);

/// Sets the area budget (`Limits::max_map_areas`); `run()` calls it.
pub(crate) fn set_map_area_budget(budget: u64) {
    AREAS.budget.store(budget, Ordering::Relaxed);
}
