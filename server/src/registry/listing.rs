//! Paged listings of sessions and mappings, in a stable order, so a reply
//! stays small however many rows there are. A page token is the key of the
//! last row sent: rows that come and go between pages never shift the rest.
#![forbid(unsafe_code)]

use std::{
    ops::Bound::{Excluded, Unbounded},
    sync::Arc,
    time::Duration,
};

use super::Registry;
use crate::{
    access::Caller,
    error::{Error, Result},
    mapping::{Access, Mapping},
};

/// A row of `ListSessions`.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Id.
    pub id: String,
    /// Client's name.
    pub client_name: String,
    /// TTL.
    pub ttl: Duration,
    /// Open handles.
    pub handles: u32,
}

/// A row of `ListMappings`.
#[derive(Debug, Clone)]
pub struct MappingInfo {
    /// Registry name.
    pub name: String,
    /// Relative path; empty when anonymous.
    pub path: String,
    /// Length.
    pub length: u64,
    /// Access it was created with.
    pub access: Access,
    /// Attached handles.
    pub handles: u32,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows, in listing order.
    pub rows: Vec<T>,
    /// The token of the next page; empty on the last.
    pub next_token: String,
}

/// Session ids and handle ids are 32 lowercase hex digits.
fn is_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn bad_token() -> Error {
    Error::Protocol("invalid page_token".into())
}

/// Mappings are ordered by name, a shared mapping before the private
/// copies of that name, which are ordered by their handle's id.
type MappingKey = (String, String);

fn mapping_token((name, handle): &MappingKey) -> String {
    format!("{handle}:{name}")
}

fn parse_mapping_token(token: &str) -> Result<MappingKey> {
    let (handle, name) = token.split_once(':').ok_or_else(bad_token)?;
    if !handle.is_empty() && !is_id(handle) {
        return Err(bad_token());
    }
    Ok((name.to_owned(), handle.to_owned()))
}

/// The first `size` rows and the token to go on from, if there are more.
fn paginate<K, T>(mut rows: Vec<(K, T)>, size: usize, token: impl Fn(&K) -> String) -> Page<T> {
    let next_token = match rows.len() > size {
        true => {
            rows.truncate(size);
            rows.last().map(|(k, _)| token(k)).unwrap_or_default()
        }
        false => String::new(),
    };
    Page {
        rows: rows.into_iter().map(|(_, row)| row).collect(),
        next_token,
    }
}

fn info(m: &Mapping) -> MappingInfo {
    MappingInfo {
        name: m.name().to_owned(),
        path: m.path().unwrap_or_default().to_owned(),
        length: m.len(),
        access: m.access(),
        handles: m.handles(),
    }
}

impl Registry {
    pub(super) fn page_size(&self, asked: u32) -> usize {
        let max = self.limits.max_page_size.max(1);
        let size = match asked {
            0 => max,
            n => n.min(max),
        };
        size as usize
    }

    /// One page of the live sessions `caller` may see (an admin all, anyone
    /// else their own), ordered by id, after `token`.
    pub fn sessions_page(
        &self,
        page_size: u32,
        token: &str,
        caller: &Caller,
    ) -> Result<Page<SessionInfo>> {
        if !token.is_empty() && !is_id(token) {
            return Err(bad_token());
        }
        let size = self.page_size(page_size);
        let after = match token {
            "" => Unbounded,
            t => Excluded(t),
        };
        let rows: Vec<(String, SessionInfo)> = self
            .sessions
            .lock()
            .range::<str, _>((after, Unbounded))
            .filter(|(_, s)| caller.sees_all() || caller.owns(s.owner.as_deref()))
            .take(size + 1)
            .map(|(id, s)| {
                let row = SessionInfo {
                    id: id.clone(),
                    client_name: s.client_name.clone(),
                    ttl: s.ttl,
                    handles: s.handles.lock().len() as u32,
                };
                (id.clone(), row)
            })
            .collect();
        Ok(paginate(rows, size, String::clone))
    }

    /// One page of the live mappings (shared ones and private copies)
    /// `caller` may see, after `token`: an admin sees all, anyone else the
    /// mappings their own handles use.
    pub fn mappings_page(
        &self,
        page_size: u32,
        token: &str,
        caller: &Caller,
    ) -> Result<Page<MappingInfo>> {
        let after = match token {
            "" => None,
            t => Some(parse_mapping_token(t)?),
        };
        let size = self.page_size(page_size);
        let mut found = match caller.sees_all() {
            true => self.all_mappings(after.as_ref(), size),
            false => self.own_mappings(after.as_ref(), caller),
        };
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        found.truncate(size + 1);
        // Lengths are read outside the table locks: a region lock may be
        // held by a slow resize.
        let rows = found.into_iter().map(|(k, m)| (k, info(&m))).collect();
        Ok(paginate(rows, size, mapping_token))
    }

    /// The mappings behind the caller's own handles, after `after`.
    fn own_mappings(
        &self,
        after: Option<&MappingKey>,
        caller: &Caller,
    ) -> Vec<(MappingKey, Arc<Mapping>)> {
        self.handles
            .iter()
            .filter(|h| caller.owns(h.owner()))
            .filter_map(|h| {
                let m = h.mapping();
                let tag = match m.is_private() {
                    true => h.id().to_owned(),
                    false => String::new(),
                };
                let key = (m.name().to_owned(), tag);
                after.is_none_or(|a| key > *a).then(|| (key, Arc::clone(m)))
            })
            .collect()
    }

    /// Every mapping after `after`: the first `size + 1` shared ones by
    /// name, and every private copy past it.
    fn all_mappings(
        &self,
        after: Option<&MappingKey>,
        size: usize,
    ) -> Vec<(MappingKey, Arc<Mapping>)> {
        let mut found: Vec<(MappingKey, Arc<Mapping>)> = {
            let names = self.names.lock();
            let from = match &after {
                None => Unbounded,
                Some((name, _)) => Excluded(name.as_str()),
            };
            names
                .range::<str, _>((from, Unbounded))
                .filter_map(|(name, e)| {
                    Some((
                        (name.clone(), String::new()),
                        e.state.lock().mapping.clone()?,
                    ))
                })
                .take(size + 1)
                .collect()
        };
        found.extend(self.handles.iter().filter_map(|h| {
            let m = h.mapping();
            let key = (m.name().to_owned(), h.id().to_owned());
            (m.is_private() && after.is_none_or(|a| key > *a)).then(|| (key, Arc::clone(m)))
        }));
        found
    }
}
