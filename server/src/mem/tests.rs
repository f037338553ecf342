//! Unit tests of the SIGBUS guard and the area budget, on real files
//! truncated under real mappings: a failure here would kill the test
//! process, which is the point.

use std::{
    io::Write,
    sync::{Arc, Barrier},
};

use super::*;

fn page() -> usize {
    page_size()
}

/// A temp file of `pages` pages of `fill`.
fn file(pages: usize, fill: u8) -> File {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&vec![fill; pages * page()]).unwrap();
    f
}

/// A private budget, so tests do not share the process-wide one.
fn areas(budget: u64) -> &'static Areas {
    Box::leak(Box::new(Areas::new(budget)))
}

fn region(areas: &'static Areas, f: &File, pages: usize, sharing: Sharing) -> Region {
    setup_process();
    Region::map_in(areas, f, 0, pages * page(), sharing).unwrap()
}

#[test]
fn truncation_under_every_sharing_is_an_error_and_stays_one() {
    for sharing in [Sharing::SharedWrite, Sharing::SharedRead, Sharing::Private] {
        let f = file(3, 0xAB);
        let areas = areas(100);
        let r = region(areas, &f, 3, sharing);
        let sibling = region(areas, &f, 1, Sharing::SharedRead);
        assert_eq!(r.copy_out(0..page()).unwrap(), vec![0xAB; page()]);
        f.set_len(page() as u64).unwrap();
        assert_eq!(r.copy_out(0..3 * page()), Err(Broken), "{sharing:?}");
        assert!(r.is_broken());
        // Page 0 is still in the file, but the region is broken for good.
        assert_eq!(r.byte(0), Err(Broken));
        assert_eq!(r.gather([0, 2].into_iter(), 2), Err(Broken));
        // Another mapping of the surviving head keeps working.
        assert_eq!(sibling.copy_out(0..page()).unwrap(), vec![0xAB; page()]);
        drop((r, sibling));
        assert_eq!(areas.used(), 0);
    }
}

#[test]
fn every_access_kind_faults_cleanly() {
    type Access = fn(&mut Region) -> Result<(), Broken>;
    let two = 2 * page();
    let accesses: [(&str, Access); 7] = [
        ("byte", |r| r.byte(2 * page()).map(drop)),
        ("copy_out", |r| r.copy_out(0..3 * page()).map(drop)),
        ("gather", |r| {
            r.gather((0..3).map(|i| i * page()), 3).map(drop)
        }),
        ("write_at", |r| r.write_at(2 * page(), b"x", None)),
        ("set_byte", |r| r.set_byte(2 * page(), 1)),
        ("scatter", |r| r.scatter([0, 2 * page()].into_iter(), b"xy")),
        ("copy_within", |r| r.copy_within(0, 2 * page(), page())),
    ];
    for (what, access) in accesses {
        let f = file(3, 7);
        let mut r = region(areas(10), &f, 3, Sharing::SharedWrite);
        f.set_len(two as u64).unwrap();
        assert_eq!(access(&mut r), Err(Broken), "{what}");
        assert_eq!(r.byte(0), Err(Broken), "{what} leaves the region broken");
    }
}

#[test]
fn a_concurrent_reader_gets_the_error_never_zeros() {
    let f = file(64, 0xAB);
    let r = Arc::new(region(areas(10), &f, 64, Sharing::SharedRead));
    let start = Arc::new(Barrier::new(2));
    let reader = std::thread::spawn({
        let (r, start) = (Arc::clone(&r), Arc::clone(&start));
        move || {
            start.wait();
            // Bounded: the region breaks as soon as the main thread faults.
            for _ in 0..1_000_000 {
                match r.copy_out(0..page()) {
                    Ok(bytes) => assert!(bytes.iter().all(|&b| b == 0xAB), "zeros served"),
                    Err(Broken) => return true,
                }
            }
            false
        }
    });
    start.wait();
    f.set_len(page() as u64).unwrap();
    assert_eq!(r.copy_out(0..64 * page()), Err(Broken));
    assert!(reader.join().unwrap(), "the other thread saw the break");
}

#[test]
fn the_area_budget_refuses_regions_past_it() {
    let f = file(1, 0);
    let areas = areas(2);
    let a = region(areas, &f, 1, Sharing::SharedRead);
    let _b = region(areas, &f, 1, Sharing::SharedRead);
    let err = Region::map_in(areas, &f, 0, page(), Sharing::SharedRead).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Quota {
                limit: "max_map_areas",
                value: 2
            }
        ),
        "{err:?}"
    );
    drop(a);
    region(areas, &f, 1, Sharing::SharedRead);
}

/// Memory areas the kernel has inside `span`.
fn kernel_areas(span: Range<usize>) -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|line| {
            let range = line.split(' ').next().unwrap();
            let (a, b) = range.split_once('-').unwrap();
            let a = usize::from_str_radix(a, 16).unwrap();
            let b = usize::from_str_radix(b, 16).unwrap();
            a >= span.start && b <= span.end
        })
        .count()
}

#[test]
fn alternate_page_advice_stays_within_the_budget_and_resize_still_works() {
    let pages = 256;
    let f = file(pages, 0x5A);
    let areas = areas(21);
    let mut r = region(areas, &f, pages, Sharing::SharedWrite);
    for i in (1..pages).step_by(2) {
        r.advise(i * page(), page(), Advice::Random)
            .unwrap()
            .unwrap();
        assert!(areas.used() <= 21);
        // The accounting is an upper bound on what the kernel really has.
        assert!(kernel_areas(r.span()) as u64 <= areas.used(), "page {i}");
    }
    assert_eq!(areas.used(), 21, "the budget was used up, not passed");
    f.set_len((2 * pages * page()) as u64).unwrap();
    r.resize(&f, 2 * pages * page()).unwrap().unwrap();
    assert_eq!(r.len(), 2 * pages * page());
    let bytes = r.copy_out(0..r.len()).unwrap();
    assert!(bytes[..pages * page()].iter().all(|&b| b == 0x5A));
    assert!(bytes[pages * page()..].iter().all(|&b| b == 0));
}

#[test]
fn resize_of_a_split_region_maps_it_afresh() {
    let f = file(4, 9);
    let areas = areas(10);
    let mut r = region(areas, &f, 4, Sharing::SharedWrite);
    r.write_at(page(), b"kept", None).unwrap();
    r.advise(page(), page(), Advice::Random).unwrap().unwrap();
    assert_eq!(kernel_areas(r.span()), 3, "the advice split the area");
    assert_eq!(areas.used(), 3);
    // mremap refuses a range over several areas; the fallback maps anew.
    f.set_len(8 * page() as u64).unwrap();
    r.resize(&f, 8 * page()).unwrap().unwrap();
    assert_eq!(areas.used(), 1, "the old splits are gone with the old map");
    assert_eq!(kernel_areas(r.span()), 1);
    assert_eq!(r.copy_out(page()..page() + 4).unwrap(), b"kept");
    assert_eq!(r.byte(8 * page() - 1), Ok(0));
    // Shrinking works the same way.
    r.resize(&f, 2 * page()).unwrap().unwrap();
    assert_eq!(r.len(), 2 * page());
}

#[test]
fn the_per_region_cap_applies_advice_to_the_whole_region() {
    let pages = 2 * MAX_SPLITS_PER_REGION as usize + 8;
    let f = file(pages, 1);
    let areas = areas(10_000);
    let r = region(areas, &f, pages, Sharing::SharedRead);
    for i in (1..pages).step_by(2) {
        r.advise(i * page(), page(), Advice::Sequential)
            .unwrap()
            .unwrap();
    }
    assert_eq!(areas.used(), 1 + u64::from(MAX_SPLITS_PER_REGION));
    assert!(kernel_areas(r.span()) as u64 <= areas.used());
}

#[test]
fn setup_is_idempotent() {
    setup_process();
    setup_process();
    let f = file(2, 3);
    let r = region(areas(1), &f, 2, Sharing::SharedRead);
    f.set_len(0).unwrap();
    assert_eq!(r.byte(page()), Err(Broken));
}

/// Runs test `name` of this binary again in a child process with `mode` in
/// [`CHILD`], for behaviour that kills or reconfigures the whole process.
fn run_child(name: &str, mode: &str) -> std::process::ExitStatus {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1"])
        .env(CHILD, mode)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // A handler that swallowed a fault would re-fault forever.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the child neither crashed nor exited");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

const CHILD: &str = "MMAPD_TEST_CHILD";

/// A SIGBUS outside any guarded access is a bug and must still crash: run
/// in a child process (this same test binary), which must die of SIGBUS.
#[test]
fn a_fault_outside_any_guard_still_kills_the_process() {
    use std::os::unix::process::ExitStatusExt;
    if std::env::var_os(CHILD).is_some() {
        let f = file(2, 1);
        let r = region(areas(1), &f, 2, Sharing::SharedRead);
        f.set_len(0).unwrap();
        // SAFETY: none; this child is meant to die here.
        let byte = unsafe { r.area.map.as_ptr().read_volatile() };
        std::process::exit(100 + i32::from(byte));
    }
    let status = run_child(
        "mem::tests::a_fault_outside_any_guard_still_kills_the_process",
        "1",
    );
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status:?}");
}

/// Past RLIMIT_FSIZE the kernel sends SIGXFSZ, which kills by default; after
/// `setup_process` the write fails with EFBIG instead.
#[test]
fn a_file_size_limit_is_an_error_not_death() {
    use rustix::process::{Resource, Rlimit, setrlimit};
    use std::os::unix::process::ExitStatusExt;
    let name = "mem::tests::a_file_size_limit_is_an_error_not_death";
    if let Some(mode) = std::env::var_os(CHILD) {
        if mode == "setup" {
            setup_process();
        } else {
            // An ignored disposition is inherited; this parent ignores it.
            // SAFETY: plain signal(2) in a single-purpose child.
            unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_DFL) };
        }
        let limit = Some(1 << 20);
        setrlimit(
            Resource::Fsize,
            Rlimit {
                current: limit,
                maximum: limit,
            },
        )
        .unwrap();
        let f = tempfile::tempfile().unwrap();
        let err = f.set_len(2 << 20).unwrap_err();
        let efbig = err.raw_os_error() == Some(libc::EFBIG);
        std::process::exit(if efbig { 0 } else { 1 });
    }
    let status = run_child(name, "setup");
    assert_eq!(status.code(), Some(0), "{status:?}");
    // The control: without the setup the same child dies.
    let status = run_child(name, "bare");
    assert_eq!(status.signal(), Some(libc::SIGXFSZ), "{status:?}");
}

/// What the gRPC encoder does with a view: one guarded copy out of it.
/// Also returns whether the hook told the encoder the area broke.
fn encode_told(view: &Bytes) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let broke = encode_guarded(view.as_ptr() as usize, &mut || out.extend_from_slice(view));
    (out, broke)
}

/// [`encode_told`] of a view whose area must not have broken.
fn encode(view: &Bytes) -> Vec<u8> {
    let (out, broke) = encode_told(view);
    assert!(!broke, "the hook called a good copy broken");
    out
}

/// A file as mmapd creates one: `pages` pages reserved and never written.
fn new_file(pages: usize) -> File {
    let f = tempfile::tempfile().unwrap();
    crate::mapping::reserve(&f, 0, (pages * page()) as u64).unwrap();
    f.set_len((pages * page()) as u64).unwrap();
    f
}

/// Position-dependent bytes, so a misplaced page shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed)
        .collect()
}

/// Resident bytes of the memory area starting at `start`: what was
/// faulted into the mapping, not what the page cache holds.
fn resident(start: usize) -> usize {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut lines = smaps.lines();
    while let Some(line) = lines.next() {
        let range = line.split(' ').next().unwrap();
        let Some((a, _)) = range.split_once('-') else {
            continue;
        };
        if usize::from_str_radix(a, 16).ok() == Some(start) {
            let rss = lines.find(|l| l.starts_with("Rss:")).unwrap();
            let kib: usize = rss.split_whitespace().nth(1).unwrap().parse().unwrap();
            return kib << 10;
        }
    }
    panic!("no area at {start:#x}");
}

fn file_bytes(f: &File, at: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut out = vec![0; len];
    f.read_exact_at(&mut out, at).unwrap();
    out
}

#[test]
fn a_view_outlives_the_close_of_its_region() {
    let f = file(3, 0x11);
    let areas = areas(10);
    let r = region(areas, &f, 3, Sharing::SharedRead);
    let (view, watch) = r.view(page()..3 * page()).unwrap();
    drop(r);
    assert_eq!(areas.used(), 1, "the view keeps the area mapped");
    assert_eq!(encode(&view), vec![0x11; 2 * page()]);
    assert!(!watch.broke());
    drop(view);
    assert_eq!(areas.used(), 0, "unmapped with the last view");
}

#[test]
fn a_view_outlives_resizes_and_keeps_its_bytes() {
    let f = file(4, 0x22);
    let areas = areas(10);
    let mut r = region(areas, &f, 4, Sharing::SharedWrite);
    let (view, _) = r.view(0..4 * page()).unwrap();
    // Grow: the view pins the old area, so the region maps afresh.
    f.set_len(8 * page() as u64).unwrap();
    r.resize(&f, 8 * page()).unwrap().unwrap();
    assert_eq!(areas.used(), 2);
    r.write_at(7 * page(), b"new", None).unwrap();
    assert_eq!(encode(&view), vec![0x22; 4 * page()]);
    // Shrink under a second view of the new area.
    let (tail, _) = r.view(page()..2 * page()).unwrap();
    r.resize(&f, 2 * page()).unwrap().unwrap();
    f.set_len(2 * page() as u64).unwrap();
    assert_eq!(encode(&tail), vec![0x22; page()]);
    assert_eq!(r.copy_out(0..2 * page()).unwrap(), vec![0x22; 2 * page()]);
    drop((view, tail));
    assert_eq!(areas.used(), 1, "the old areas went with their views");
    // Without views a resize moves the area in place again.
    f.set_len(3 * page() as u64).unwrap();
    r.resize(&f, 3 * page()).unwrap().unwrap();
    assert_eq!(areas.used(), 1);
    assert_eq!(r.byte(3 * page() - 1), Ok(0));
}

#[test]
fn a_truncation_under_a_view_breaks_it_without_a_crash() {
    let f = file(8, 0x33);
    let areas = areas(10);
    let r = region(areas, &f, 8, Sharing::SharedRead);
    let (view, watch) = r.view(0..8 * page()).unwrap();
    f.set_len(page() as u64).unwrap();
    // The copy faults in the encoder's guard and finishes on zeros; the
    // watch is what keeps those zeros from counting as a success.
    let (out, told) = encode_told(&view);
    assert_eq!(out.len(), 8 * page());
    assert!(told, "the encoder was not told to drop the zeros");
    assert!(watch.broke());
    assert!(r.is_broken(), "the region shares the area's mark");
    assert_eq!(r.view(0..page()).map(drop), Err(Broken));
}

/// A fault in one view of an area zeroes only the missing page it hit:
/// another view of the same area, over pages the file still has, keeps
/// reading its bytes (its stream still ends in error, by the shared watch).
#[test]
fn a_fault_in_one_view_leaves_the_good_pages_of_its_area_intact() {
    let f = file(8, 0x44);
    let r = region(areas(10), &f, 8, Sharing::SharedRead);
    let (head, head_watch) = r.view(0..page()).unwrap();
    let (tail, _) = r.view(6 * page()..8 * page()).unwrap();
    f.set_len(page() as u64).unwrap();
    assert_eq!(encode_told(&tail), (vec![0; 2 * page()], true));
    let (out, told) = encode_told(&head);
    assert_eq!(out, vec![0x44; page()], "a good page read as zeros");
    assert!(head_watch.broke(), "the area is broken all the same");
    assert!(told, "the hook hid that the area broke");
}

#[test]
fn bytes_outside_every_view_area_are_encoded_unguarded() {
    let heap = Bytes::from(vec![5u8; 100]);
    assert_eq!(encode(&heap), vec![5u8; 100]);
}

#[test]
fn private_maps_have_no_views() {
    let f = file(1, 0);
    let r = region(areas(10), &f, 1, Sharing::Private);
    assert!(!r.viewable());
}

#[test]
fn large_writes_to_a_shared_file_land_without_faulting_pages_in() {
    let pages = 160;
    // A new (reserved, unwritten) file, and an existing one mapped from a
    // page offset, so region and file offsets differ.
    for (fresh, offset) in [(true, 0), (false, 3 * page())] {
        let f = if fresh {
            new_file(pages)
        } else {
            file(pages + 3, 0xEE)
        };
        let was = if fresh { 0 } else { 0xEE };
        let areas = areas(10);
        let mut r = Region::map_in(
            areas,
            &f,
            offset as u64,
            pages * page(),
            Sharing::SharedWrite,
        )
        .unwrap();
        let sibling = Region::map_in(
            areas,
            &f,
            offset as u64,
            pages * page(),
            Sharing::SharedRead,
        )
        .unwrap();
        // Unaligned head and tail around 128 whole pages.
        let at = page() + 100;
        let data = pattern(129 * page(), 1);
        r.write_at(at, &data, Some(&f)).unwrap();
        // Stored through the mapping, every page would be resident in it;
        // only the head and tail pages are (with their folios, on kernels
        // that map a whole large folio per fault).
        assert!(
            resident(r.span().start) < data.len() / 2,
            "whole pages went around the mapping"
        );
        let end = at + data.len();
        assert_eq!(r.copy_out(at..end).unwrap(), data, "fresh {fresh}");
        assert_eq!(sibling.copy_out(at..end).unwrap(), data, "fresh {fresh}");
        assert_eq!(file_bytes(&f, (offset + at) as u64, data.len()), data);
        assert_eq!(r.byte(at - 1), Ok(was));
        assert_eq!(r.byte(end), Ok(was));
        // A rewrite, now over pages this mapping has faulted in.
        let again = pattern(data.len(), 2);
        r.write_at(at, &again, Some(&f)).unwrap();
        assert_eq!(r.copy_out(at..end).unwrap(), again);
        assert_eq!(sibling.copy_out(at..end).unwrap(), again);
        assert_eq!(file_bytes(&f, (offset + at) as u64, again.len()), again);
        let file_len = if fresh { pages } else { pages + 3 } * page();
        assert_eq!(f.metadata().unwrap().len(), file_len as u64);
        // Written back by msync like any page dirtied through the map.
        r.flush(0, pages * page()).unwrap();
    }
}

#[test]
fn private_regions_and_small_writes_keep_copying() {
    let f = file(40, 3);
    let mut private = region(areas(10), &f, 40, Sharing::Private);
    let data = pattern(32 * page(), 4);
    private.write_at(0, &data, Some(&f)).unwrap();
    assert_eq!(private.copy_out(0..data.len()).unwrap(), data);
    assert_eq!(
        file_bytes(&f, 0, data.len()),
        vec![3; data.len()],
        "a private write never reaches the file"
    );
    // Fewer whole pages than the threshold: stored through the mapping.
    let mut shared = region(areas(10), &f, 40, Sharing::SharedWrite);
    let small = pattern(PWRITE_MIN - page(), 5);
    shared.write_at(0, &small, Some(&f)).unwrap();
    assert!(resident(shared.span().start) >= small.len());
    assert_eq!(file_bytes(&f, 0, small.len()), small);
}

#[test]
fn whole_page_writes_past_a_truncated_end_fault_and_never_grow_the_file() {
    let f = file(60, 8);
    let mut r = region(areas(10), &f, 60, Sharing::SharedWrite);
    f.set_len(30 * page() as u64).unwrap();
    let data = pattern(30 * page(), 6);
    assert_eq!(r.write_at(20 * page(), &data, Some(&f)), Err(Broken));
    assert_eq!(f.metadata().unwrap().len(), 30 * page() as u64);
    // Broken for good: a write that would fit the file is refused too and
    // leaves it alone.
    let fits = pattern(20 * page(), 7);
    assert_eq!(r.write_at(0, &fits, Some(&f)), Err(Broken));
    assert_eq!(file_bytes(&f, 0, page()), vec![8; page()]);
    assert_eq!(f.metadata().unwrap().len(), 30 * page() as u64);
}
