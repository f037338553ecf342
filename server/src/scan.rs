//! Searches over a [`Region`] that never form a slice over mapped pages:
//! they copy bounded windows out (under the SIGBUS guard) and search the
//! copies with `memchr`, so they stay linear-time and a fault mid-scan is an
//! error, not a crash.
#![forbid(unsafe_code)]

use std::ops::Range;

use memchr::memmem;

use crate::mem::{Broken, Region};

/// Bytes copied per window (plus the needle's overlap).
const WINDOW: usize = 64 << 10;

/// `bytes.find(needle)` over `range`: the absolute index of the first match.
pub(crate) fn find(
    region: &Region,
    range: Range<usize>,
    needle: &[u8],
) -> Result<Option<usize>, Broken> {
    // A broken region refuses every search, even one that reads nothing.
    region.copy_into(range.start, &mut [])?;
    let n = needle.len();
    if n == 0 {
        return Ok(Some(range.start));
    }
    // Windows advance by at least the needle's length so a long needle
    // cannot make the copying quadratic.
    let step = WINDOW.max(n);
    let finder = memmem::Finder::new(needle);
    let mut buf = vec![0; (step + n - 1).min(range.len())];
    let mut pos = range.start;
    while range.end - pos >= n {
        let take = (step + n - 1).min(range.end - pos);
        region.copy_into(pos, &mut buf[..take])?;
        if let Some(i) = finder.find(&buf[..take]) {
            return Ok(Some(pos + i));
        }
        // The last n-1 bytes start the next window, for matches across.
        pos += take - (n - 1);
    }
    Ok(None)
}

/// `bytes.rfind(needle)` over `range`: the absolute index of the last match.
pub(crate) fn rfind(
    region: &Region,
    range: Range<usize>,
    needle: &[u8],
) -> Result<Option<usize>, Broken> {
    region.copy_into(range.start, &mut [])?;
    let n = needle.len();
    if n == 0 {
        return Ok(Some(range.end));
    }
    let step = WINDOW.max(n);
    let finder = memmem::FinderRev::new(needle);
    let mut buf = vec![0; (step + n - 1).min(range.len())];
    let mut end = range.end;
    while end - range.start >= n {
        let take = (step + n - 1).min(end - range.start);
        let from = end - take;
        region.copy_into(from, &mut buf[..take])?;
        if let Some(i) = finder.rfind(&buf[..take]) {
            return Ok(Some(from + i));
        }
        if from == range.start {
            break;
        }
        end = from + n - 1;
    }
    Ok(None)
}

/// The absolute index of the first `byte` in `range`.
pub(crate) fn find_byte(
    region: &Region,
    range: Range<usize>,
    byte: u8,
) -> Result<Option<usize>, Broken> {
    region.copy_into(range.start, &mut [])?;
    let mut buf = vec![0; WINDOW.min(range.len())];
    let mut pos = range.start;
    while pos < range.end {
        let take = WINDOW.min(range.end - pos);
        region.copy_into(pos, &mut buf[..take])?;
        if let Some(i) = memchr::memchr(byte, &buf[..take]) {
            return Ok(Some(pos + i));
        }
        pos += take;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::mem::Sharing;

    #[test]
    fn windowed_scans_match_whole_buffer_searches() {
        // A small alphabet makes matches straddle window edges often.
        let bytes: Vec<u8> = (0..3 * WINDOW + 1234)
            .map(|i: usize| b"ab\n"[(i.wrapping_mul(2_654_435_761) >> 7) % 3])
            .collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let region = Region::map(&file, 0, bytes.len(), Sharing::SharedRead).unwrap();
        let long = bytes[WINDOW - 5..2 * WINDOW + 40].to_vec();
        let needles: [&[u8]; 6] = [
            b"",
            b"a",
            b"abba",
            b"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            &long,
            b"c",
        ];
        let ranges = [
            0..bytes.len(),
            1..bytes.len() - 1,
            WINDOW - 3..WINDOW + 3,
            7..7,
            5..WINDOW * 2 + 77,
        ];
        for needle in needles {
            for range in ranges.clone() {
                let hay = &bytes[range.clone()];
                let at = |i: Option<usize>| i.map(|i| i + range.start);
                assert_eq!(
                    find(&region, range.clone(), needle).unwrap(),
                    at(memmem::find(hay, needle)),
                    "find {} in {range:?}",
                    needle.len()
                );
                assert_eq!(
                    rfind(&region, range.clone(), needle).unwrap(),
                    at(memmem::rfind(hay, needle)),
                    "rfind {} in {range:?}",
                    needle.len()
                );
            }
        }
        for range in ranges {
            let hay = &bytes[range.clone()];
            let expected = memchr::memchr(b'\n', hay).map(|i| i + range.start);
            assert_eq!(find_byte(&region, range, b'\n').unwrap(), expected);
        }
    }

    #[test]
    fn searches_of_a_broken_region_fail_even_when_they_read_nothing() {
        crate::mem::setup_process();
        let page = crate::mem::page_size();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![b'x'; 2 * page]).unwrap();
        let region = Region::map(&file, 0, 2 * page, Sharing::SharedRead).unwrap();
        file.set_len(page as u64).unwrap();
        assert_eq!(find_byte(&region, 0..2 * page, b'\n'), Err(Broken));
        assert_eq!(find(&region, 0..2, b"xxx"), Err(Broken));
        assert_eq!(rfind(&region, 0..0, b""), Err(Broken));
        assert_eq!(find_byte(&region, 5..5, b'x'), Err(Broken));
    }
}
