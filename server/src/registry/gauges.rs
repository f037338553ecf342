//! Read-only counts for `/metrics`, taken at scrape time.
#![forbid(unsafe_code)]

use std::{collections::HashSet, sync::Arc};

use super::Registry;
use crate::mapping::Mapping;

impl Registry {
    /// Open handles.
    pub fn handle_count(&self) -> u32 {
        self.handles.len() as u32
    }

    /// Bytes mapped by live mappings (shared ones and private copies),
    /// each counted once however many handles share it.
    pub fn mapped_bytes(&self) -> u64 {
        let mut live: Vec<Arc<Mapping>> = self
            .names
            .lock()
            .values()
            .filter_map(|e| e.state.lock().mapping.clone())
            .collect();
        live.extend(
            self.handles
                .iter()
                .map(|h| Arc::clone(h.mapping()))
                .filter(|m| m.is_private()),
        );
        let mut seen = HashSet::new();
        // Lengths are read outside the table locks: a region lock may be
        // held by a slow resize.
        live.iter()
            .filter(|m| seen.insert(Arc::as_ptr(m)))
            .map(|m| m.len())
            .sum()
    }
}
