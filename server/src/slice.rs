//! Python's slice arithmetic (`PySlice_Unpack` + `PySlice_AdjustIndices`),
//! so `m[i:j:k]` selects exactly the bytes CPython selects.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};

/// A slice resolved against a length: `count` indices from `start`, `step`
/// apart. Every index is inside `0..len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// First index.
    pub start: i64,
    /// Distance between indices (never 0).
    pub step: i64,
    /// Number of indices.
    pub count: usize,
}

impl Resolved {
    /// The selected indices, in order.
    pub fn indices(self) -> impl Iterator<Item = usize> {
        (0..self.count as i64).map(move |i| (self.start + i * self.step) as usize)
    }
}

/// Resolves `[start:stop:step]` (each `None` as Python's `None`) against a
/// sequence of `len` items.
pub fn resolve(
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
    len: i64,
) -> Result<Resolved> {
    // PySlice_Unpack: step 0 is an error, and the step is clamped so that
    // negating it cannot overflow.
    let step = match step.unwrap_or(1) {
        0 => return Err(Error::BadValue("slice step cannot be zero".into())),
        s => s.max(-i64::MAX),
    };
    let start = start.unwrap_or(if step < 0 { i64::MAX } else { 0 });
    let stop = stop.unwrap_or(if step < 0 { i64::MIN } else { i64::MAX });
    let start = adjust(start, len, step);
    let stop = adjust(stop, len, step);
    let count = if step < 0 {
        if stop < start {
            (start - stop - 1) / -step + 1
        } else {
            0
        }
    } else if start < stop {
        (stop - start - 1) / step + 1
    } else {
        0
    };
    Ok(Resolved {
        start,
        step,
        count: count as usize,
    })
}

/// PySlice_AdjustIndices for one bound.
fn adjust(index: i64, len: i64, step: i64) -> i64 {
    if index < 0 {
        let index = index + len;
        if index < 0 {
            if step < 0 { -1 } else { 0 }
        } else {
            index
        }
    } else if index >= len {
        if step < 0 { len - 1 } else { len }
    } else {
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(start: Option<i64>, stop: Option<i64>, step: Option<i64>, len: i64) -> Vec<usize> {
        resolve(start, stop, step, len).unwrap().indices().collect()
    }

    #[test]
    fn matches_python_examples() {
        // Each expectation is what `list(range(10))[a:b:c]` gives in Python.
        assert_eq!(pick(None, None, None, 10), (0..10).collect::<Vec<_>>());
        assert_eq!(
            pick(None, None, Some(-1), 10),
            (0..10).rev().collect::<Vec<_>>()
        );
        assert_eq!(pick(Some(-3), None, None, 10), vec![7, 8, 9]);
        assert_eq!(pick(Some(8), Some(2), Some(-3), 10), vec![8, 5]);
        assert_eq!(pick(Some(100), Some(-100), Some(-4), 10), vec![9, 5, 1]);
        assert_eq!(pick(Some(5), Some(2), None, 10), Vec::<usize>::new());
        assert_eq!(
            pick(Some(i64::MIN), Some(i64::MAX), Some(i64::MAX), 10),
            vec![0]
        );
        assert_eq!(pick(None, None, Some(i64::MIN), 10), vec![9]);
        assert_eq!(pick(None, None, None, 0), Vec::<usize>::new());
    }

    #[test]
    fn zero_step_is_value_error() {
        let err = resolve(None, None, Some(0), 10).unwrap_err();
        assert_eq!(err.to_string(), "slice step cannot be zero");
        assert!(matches!(err, crate::error::Error::BadValue(_)), "{err:?}");
    }
}
