//! Same-run physical limits: a raw TCP loopback copy, a memcpy and a
//! page-cache read. The bench cannot map a file itself (`unsafe` is allowed
//! only in server/src/mem*), so "memcpy from a mapping" is measured as
//! memcpy from a heap buffer (memory bandwidth) and as `pread` of the
//! benchmark file (the kernel's copy out of the same page-cache pages a
//! mapping would point at).

use std::{
    fs::File,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    os::unix::fs::FileExt,
    path::Path,
    time::Instant,
};

const CHUNK: usize = 256 << 10;

/// GB/s of `size` bytes written through one loopback TCP connection in
/// 256 KiB writes and read by another thread.
pub fn tcp_loopback(size: u64) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let writer = std::thread::spawn(move || {
        let mut conn = TcpStream::connect(addr).expect("connect");
        conn.set_nodelay(true).ok();
        let buf = vec![0x5a_u8; CHUNK];
        let mut left = size;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            conn.write_all(&buf[..n]).expect("write");
            left -= n as u64;
        }
    });
    let (mut conn, _) = listener.accept().expect("accept");
    let started = Instant::now();
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    loop {
        match conn.read(&mut buf).expect("read") {
            0 => break,
            n => got += n as u64,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    writer.join().expect("writer");
    assert_eq!(got, size);
    got as f64 / secs / 1e9
}

/// GB/s of copying `size` bytes out of a heap buffer in 256 KiB pieces.
pub fn memcpy(size: u64) -> f64 {
    let src = vec![0xa5_u8; size as usize];
    let mut dst = vec![0u8; CHUNK];
    let started = Instant::now();
    for piece in src.chunks(CHUNK) {
        dst[..piece.len()].copy_from_slice(piece);
        std::hint::black_box(&mut dst);
    }
    size as f64 / started.elapsed().as_secs_f64() / 1e9
}

/// GB/s of `pread`ing `file` (already in the page cache) in 256 KiB pieces.
pub fn pread(file: &Path) -> f64 {
    let file = File::open(file).expect("open bench file");
    let size = file.metadata().expect("stat").len();
    let mut buf = vec![0u8; CHUNK];
    let started = Instant::now();
    let mut at = 0;
    while at < size {
        let n = file.read_at(&mut buf, at).expect("pread");
        assert!(n > 0, "short file");
        at += n as u64;
    }
    size as f64 / started.elapsed().as_secs_f64() / 1e9
}
