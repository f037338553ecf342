//! What live mappings use of the server's budgets: file descriptors (one per
//! mapping) and anonymous memory (memfds and private copies, whose pages
//! become RAM). The counters are atomics shared by the registry and every
//! mapping, so charging never takes a registry-wide lock; a [`Claim`] gives
//! back what it holds when the mapping that owns it is dropped.
#![forbid(unsafe_code)]

use std::sync::{
    Arc,
    atomic::{AtomicU32, AtomicU64, Ordering},
};

use crate::{
    Limits,
    error::{Error, Result},
};

/// The budgets and what is used of them.
#[derive(Debug)]
pub struct Usage {
    max_mappings: u32,
    max_anonymous_bytes: u64,
    max_mapping_length: u64,
    mappings: AtomicU32,
    anonymous_bytes: AtomicU64,
}

impl Usage {
    /// Empty budgets sized by `limits`.
    pub fn new(limits: &Limits) -> Arc<Usage> {
        Arc::new(Usage {
            max_mappings: limits.max_mappings,
            max_anonymous_bytes: limits.max_anonymous_bytes,
            max_mapping_length: limits.max_mapping_length,
            mappings: AtomicU32::new(0),
            anonymous_bytes: AtomicU64::new(0),
        })
    }

    /// Live mappings.
    pub fn mappings(&self) -> u32 {
        self.mappings.load(Ordering::Acquire)
    }

    /// Bytes of anonymous regions and private copies.
    pub fn anonymous_bytes(&self) -> u64 {
        self.anonymous_bytes.load(Ordering::Acquire)
    }

    /// Refuses a mapping (at Map or Resize) longer than the limit.
    pub fn check_length(&self, len: u64) -> Result<()> {
        if len > self.max_mapping_length {
            return Err(Error::Quota {
                limit: "max_mapping_length",
                value: self.max_mapping_length,
            });
        }
        Ok(())
    }

    /// Takes one mapping slot, or refuses when all are taken.
    pub fn claim(self: &Arc<Self>) -> Result<Claim> {
        let max = self.max_mappings;
        self.mappings
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Error::Quota {
                limit: "max_mappings",
                value: max.into(),
            })?;
        Ok(Claim {
            usage: Arc::clone(self),
            anonymous: AtomicU64::new(0),
        })
    }

    fn charge(&self, bytes: u64) -> Result<()> {
        let max = self.max_anonymous_bytes;
        self.anonymous_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= max)
            })
            .map(drop)
            .map_err(|_| Error::Quota {
                limit: "max_anonymous_bytes",
                value: max,
            })
    }

    fn refund(&self, bytes: u64) {
        self.anonymous_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// One mapping's slot and its anonymous bytes, given back on drop.
#[derive(Debug)]
pub struct Claim {
    usage: Arc<Usage>,
    anonymous: AtomicU64,
}

impl Claim {
    /// The budgets this claim counts against.
    pub fn usage(&self) -> &Arc<Usage> {
        &self.usage
    }

    /// Anonymous bytes this claim holds.
    pub fn anonymous(&self) -> u64 {
        self.anonymous.load(Ordering::Acquire)
    }

    /// Raises the anonymous bytes held to at least `bytes`; refused, with
    /// nothing changed, when the budget cannot cover the difference.
    pub fn charge_to(&self, bytes: u64) -> Result<()> {
        let held = self.anonymous();
        if bytes > held {
            self.usage.charge(bytes - held)?;
            self.anonymous.fetch_add(bytes - held, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Charges the growth of a resize to `new_len` up front, before any
    /// memory is reserved; the returned [`Growth`] is refunded unless
    /// [`Growth::settle`]d once the resize happened.
    pub fn grow(&self, new_len: u64) -> Result<Growth<'_>> {
        let provisional = new_len.saturating_sub(self.anonymous());
        self.usage.charge(provisional)?;
        Ok(Growth {
            claim: self,
            provisional,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.usage.refund(*self.anonymous.get_mut());
        self.usage.mappings.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Anonymous bytes charged for a resize that has not happened yet.
#[derive(Debug)]
#[must_use = "a growth not settled is refunded"]
pub struct Growth<'a> {
    claim: &'a Claim,
    provisional: u64,
}

impl Growth<'_> {
    /// The resize to `new_len` happened: the claim now holds exactly
    /// `new_len` bytes (a shrink gives the difference back). Called under
    /// the region's write lock, so settlements of one mapping never race.
    pub fn settle(mut self, new_len: u64) {
        let held = self.claim.anonymous.swap(new_len, Ordering::AcqRel);
        // Budget already counts held + provisional; it should count new_len.
        let counted = held + self.provisional;
        if counted > new_len {
            self.claim.usage.refund(counted - new_len);
        } else {
            self.claim
                .usage
                .anonymous_bytes
                .fetch_add(new_len - counted, Ordering::AcqRel);
        }
        self.provisional = 0;
    }
}

impl Drop for Growth<'_> {
    fn drop(&mut self) {
        self.claim.usage.refund(self.provisional);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(max_mappings: u32, max_anonymous_bytes: u64) -> Arc<Usage> {
        Usage::new(&Limits {
            max_mappings,
            max_anonymous_bytes,
            ..Limits::default()
        })
    }

    #[test]
    fn slots_and_bytes_come_back_on_drop() {
        let u = usage(2, 100);
        let a = u.claim().unwrap();
        let b = u.claim().unwrap();
        assert!(matches!(
            u.claim(),
            Err(Error::Quota {
                limit: "max_mappings",
                value: 2
            })
        ));
        a.charge_to(60).unwrap();
        assert!(matches!(
            b.charge_to(41),
            Err(Error::Quota {
                limit: "max_anonymous_bytes",
                value: 100
            })
        ));
        assert_eq!(u.anonymous_bytes(), 60);
        drop(a);
        assert_eq!((u.mappings(), u.anonymous_bytes()), (1, 0));
        b.charge_to(100).unwrap();
        drop(b);
        assert_eq!((u.mappings(), u.anonymous_bytes()), (0, 0));
    }

    #[test]
    fn growth_is_refunded_unless_settled_and_shrink_refunds() {
        let u = usage(4, 100);
        let claim = u.claim().unwrap();
        claim.charge_to(40).unwrap();
        assert!(claim.grow(101).is_err());
        drop(claim.grow(90).unwrap());
        assert_eq!(u.anonymous_bytes(), 40);
        claim.grow(90).unwrap().settle(90);
        assert_eq!((u.anonymous_bytes(), claim.anonymous()), (90, 90));
        claim.grow(10).unwrap().settle(10);
        assert_eq!((u.anonymous_bytes(), claim.anonymous()), (10, 10));
        drop(claim);
        assert_eq!(u.anonymous_bytes(), 0);
    }
}
