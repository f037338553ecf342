//! End-to-end tests of mmapctl's one-shot data commands against a real
//! server: transfers (including 64 MiB round trips), reads and writes in
//! every input and output form, searches, the mmap methods, `--name`, and a
//! broken pipe.

mod support;

use std::{
    io::Read,
    process::{Command, Stdio},
};

use mmapd::{Access, MapOptions};
use support::{Holder, Server, json, mmapctl_std, pseudo_random, stdout_of};

const BIG: usize = 64 * 1024 * 1024;

#[test]
fn put_then_get_round_trips_64_mib_byte_for_byte() {
    let server = Server::start();
    let local = tempfile::tempdir().expect("local dir");
    let original = pseudo_random(BIG, 0x5eed);
    let source = local.path().join("big.bin");
    std::fs::write(&source, &original).expect("write source");

    server
        .mmapctl()
        .arg("put")
        .arg(&source)
        .args(["big.bin", "--create"])
        .assert()
        .success()
        .stdout(format!(
            "uploaded {} to big.bin (64 MiB)\n",
            source.display()
        ))
        // No progress bar: stderr is not a terminal.
        .stderr("");
    assert!(server.read("big.bin") == original, "server copy differs");

    let copy = local.path().join("copy.bin");
    let assert = server
        .mmapctl()
        .args(["-o", "json", "get", "big.bin"])
        .arg(&copy)
        .assert()
        .success()
        .stderr("");
    let result = json(&assert.get_output().stdout);
    assert_eq!(result["bytes"], BIG);
    assert_eq!(result["path"], "big.bin");
    assert_eq!(result["local"], copy.to_str().unwrap());
    assert!(
        std::fs::read(&copy).unwrap() == original,
        "downloaded copy differs"
    );

    // `cat` into a file streams the same bytes.
    let catted = local.path().join("cat.bin");
    let status = mmapctl_std(&server.endpoint)
        .args(["cat", "big.bin"])
        .stdout(std::fs::File::create(&catted).unwrap())
        .status()
        .expect("run cat");
    assert!(status.success());
    assert!(
        std::fs::read(&catted).unwrap() == original,
        "cat output differs"
    );
}

#[test]
fn put_makes_the_remote_file_the_local_size_and_needs_create_for_new_files() {
    let server = Server::start();
    let local = tempfile::tempdir().unwrap();
    let small = local.path().join("small.txt");
    std::fs::write(&small, b"short\n").unwrap();

    server
        .mmapctl()
        .arg("put")
        .arg(&small)
        .arg("new.txt")
        .assert()
        .code(1)
        .stderr(
            "mmapctl: error: [Errno 2] No such file or directory: 'new.txt' \
             (NOT_FOUND, OS_ERROR)\n",
        );
    assert!(!server.path("new.txt").exists());

    // With --create, missing folders on the way are made (inside the root).
    server
        .mmapctl()
        .arg("put")
        .arg(&small)
        .args(["sub/dir/file.txt", "--create"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(server.path("sub/dir/file.txt")).unwrap(),
        b"short\n"
    );

    // Shrinks a larger file, and grows a smaller one.
    server.write("f.txt", &[b'x'; 10_000]);
    server
        .mmapctl()
        .arg("put")
        .arg(&small)
        .arg("f.txt")
        .assert()
        .success();
    assert_eq!(server.read("f.txt"), b"short\n");
    let larger = local.path().join("larger.txt");
    std::fs::write(&larger, b"a longer line of text\n").unwrap();
    server
        .mmapctl()
        .arg("put")
        .arg(&larger)
        .arg("f.txt")
        .assert()
        .success();
    assert_eq!(server.read("f.txt"), b"a longer line of text\n");

    let empty = local.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    // An empty file cannot be mapped, but still uploads (see tests/files.rs).
    server
        .mmapctl()
        .arg("put")
        .arg(&empty)
        .args(["e.txt", "--create"])
        .assert()
        .success();
    assert_eq!(server.read("e.txt"), b"");
    server
        .mmapctl()
        .arg("put")
        .arg(local.path().join("absent"))
        .arg("f.txt")
        .assert()
        .code(1)
        .stderr(predicates::str::starts_with("mmapctl: error: cannot read "));
}

#[test]
fn cat_prints_the_file_or_a_range() {
    let server = Server::start();
    server.write("notes.txt", b"hello world\nsecond line\n");
    server
        .mmapctl()
        .args(["cat", "notes.txt"])
        .assert()
        .success()
        .stdout("hello world\nsecond line\n");
    server
        .mmapctl()
        .args(["cat", "notes.txt", "--offset", "6", "--length", "5"])
        .assert()
        .success()
        .stdout("world");
    server
        .mmapctl()
        .args(["cat", "notes.txt", "--offset", "12"])
        .assert()
        .success()
        .stdout("second line\n");
}

#[test]
fn read_prints_raw_hex_or_json() {
    let server = Server::start();
    let mut data = b"hello, world!\n".to_vec();
    data.extend_from_slice(&[0, 1, 2, 0xff]);
    server.write("mixed.bin", &data);

    // stdout is a pipe here: bytes go out as they are.
    server
        .mmapctl()
        .args(["read", "mixed.bin"])
        .assert()
        .success()
        .stdout(data.clone());
    server
        .mmapctl()
        .args([
            "read",
            "mixed.bin",
            "--raw",
            "--offset",
            "14",
            "--length",
            "4",
        ])
        .assert()
        .success()
        .stdout(vec![0, 1, 2, 0xff]);
    server
        .mmapctl()
        .args(["read", "mixed.bin", "--hex", "--offset", "2"])
        .assert()
        .success()
        .stdout("00000002  6c 6c 6f 2c 20 77 6f 72  6c 64 21 0a 00 01 02 ff  |llo, world!.....|\n");

    let assert = server
        .mmapctl()
        .args([
            "read",
            "mixed.bin",
            "-o",
            "json",
            "--offset",
            "7",
            "--length",
            "5",
        ])
        .assert()
        .success();
    let result = json(&assert.get_output().stdout);
    assert_eq!(result["offset"], 7);
    assert_eq!(result["length"], 5);
    assert_eq!(result["hex"], "776f726c64");
    assert_eq!(result["text"], "world");
    let assert = server
        .mmapctl()
        .args(["-o", "json", "read", "mixed.bin", "--offset", "16"])
        .assert()
        .success();
    let result = json(&assert.get_output().stdout);
    assert_eq!(result["hex"], "02ff");
    assert_eq!(result["text"], serde_json::Value::Null);
}

/// `read` on a terminal shows binary as a hex dump and text as text; run
/// under `script` (util-linux) to get a pseudo-terminal when available.
#[test]
fn read_on_a_terminal_hex_dumps_binary_only() {
    if Command::new("script").arg("--version").output().is_err() {
        println!("skipped: no `script` to provide a terminal");
        return;
    }
    let server = Server::start();
    server.write("bin.dat", &[0x1b, b'[', b'2', b'J', 0, 0xff]);
    server.write("text.txt", b"plain text");
    let on_tty = |path: &str| {
        let command = format!(
            "{} --endpoint {} read {path}",
            env!("CARGO_BIN_EXE_mmapctl"),
            server.endpoint
        );
        let output = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("script");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n")
    };
    let binary = on_tty("bin.dat");
    assert!(
        binary.contains("00000000  1b 5b 32 4a 00 ff") && !binary.contains('\x1b'),
        "{binary:?}"
    );
    assert_eq!(on_tty("text.txt"), "plain text\n");
}

#[test]
fn write_takes_text_hex_a_file_or_stdin() {
    let server = Server::start();
    server.write("w.bin", &[b'.'; 16]);
    let local = tempfile::tempdir().unwrap();
    let file = local.path().join("src");
    std::fs::write(&file, b"FILE").unwrap();

    server
        .mmapctl()
        .args(["write", "w.bin", "--data", "text"])
        .assert()
        .success()
        .stdout("wrote 4 bytes at offset 0\n");
    let assert = server
        .mmapctl()
        .args([
            "-o",
            "json",
            "write",
            "w.bin",
            "--offset",
            "4",
            "--hex",
            "de ad BE EF",
        ])
        .assert()
        .success();
    let result = json(&assert.get_output().stdout);
    assert_eq!(
        (result["offset"].as_u64(), result["written"].as_u64()),
        (Some(4), Some(4))
    );
    server
        .mmapctl()
        .args(["write", "w.bin", "--offset", "8", "--file"])
        .arg(&file)
        .assert()
        .success();
    server
        .mmapctl()
        .args(["write", "w.bin", "--offset", "12", "-"])
        .write_stdin("IN")
        .assert()
        .success()
        .stdout("wrote 2 bytes at offset 12\n");
    assert_eq!(server.read("w.bin"), b"text\xde\xad\xbe\xefFILEIN..");

    // Writing past the end changes nothing and is refused.
    server
        .mmapctl()
        .args(["write", "w.bin", "--offset", "15", "--data", "xy"])
        .assert()
        .code(1)
        .stderr("mmapctl: error: data out of range (OUT_OF_RANGE, VALUE_ERROR)\n");
}

#[test]
fn find_and_rfind_print_an_index_or_minus_one() {
    let server = Server::start();
    server.write("hay.txt", b"needle hay needle hay\x00\xff");
    let run = |args: &[&str]| {
        let assert = server.mmapctl().args(args).assert().success();
        stdout_of(assert.get_output())
    };
    assert_eq!(run(&["find", "hay.txt", "needle"]), "0\n");
    assert_eq!(run(&["rfind", "hay.txt", "needle"]), "11\n");
    assert_eq!(run(&["find", "hay.txt", "needle", "--start", "1"]), "11\n");
    assert_eq!(run(&["rfind", "hay.txt", "needle", "--end", "-6"]), "11\n");
    assert_eq!(run(&["rfind", "hay.txt", "needle", "--end", "-7"]), "0\n");
    assert_eq!(run(&["find", "hay.txt", "00ff", "--hex"]), "21\n");
    assert_eq!(run(&["find", "hay.txt", "pin"]), "-1\n");
    let assert = server
        .mmapctl()
        .args(["-o", "json", "rfind", "hay.txt", "hay"])
        .assert()
        .success();
    assert_eq!(json(&assert.get_output().stdout)["index"], 18);
}

#[test]
fn size_len_resize_flush_move_and_madvise() {
    let server = Server::start();
    server.write("m.bin", b"0123456789");
    let json_of = |args: &[&str]| {
        let assert = server
            .mmapctl()
            .arg("-o")
            .arg("json")
            .args(args)
            .assert()
            .success();
        json(&assert.get_output().stdout)
    };
    server
        .mmapctl()
        .args(["size", "m.bin"])
        .assert()
        .success()
        .stdout("10\n");
    server
        .mmapctl()
        .args(["len", "m.bin"])
        .assert()
        .success()
        .stdout("10\n");
    assert_eq!(json_of(&["size", "m.bin"])["size"], 10);
    assert_eq!(json_of(&["len", "m.bin"])["length"], 10);

    server
        .mmapctl()
        .args(["move", "m.bin", "0", "5", "3"])
        .assert()
        .success()
        .stdout("moved 3 bytes from 5 to 0\n");
    assert_eq!(server.read("m.bin"), b"5673456789");
    let moved = json_of(&["move", "m.bin", "9", "0", "1"]);
    assert_eq!(
        (moved["dest"].as_i64(), moved["src"].as_i64()),
        (Some(9), Some(0))
    );
    assert_eq!(moved["count"], 1);
    assert_eq!(server.read("m.bin"), b"5673456785");

    server
        .mmapctl()
        .args(["resize", "m.bin", "4"])
        .assert()
        .success()
        .stdout("resized m.bin to 4 bytes\n");
    assert_eq!(server.read("m.bin"), b"5673");
    assert_eq!(json_of(&["resize", "m.bin", "6"])["length"], 6);
    assert_eq!(server.read("m.bin"), b"5673\0\0");
    server
        .mmapctl()
        .args(["resize", "m.bin", "0"])
        .assert()
        .code(1)
        .stderr(predicates::str::ends_with(
            "(INVALID_ARGUMENT, VALUE_ERROR)\n",
        ));

    server
        .mmapctl()
        .args(["flush", "m.bin"])
        .assert()
        .success()
        .stdout("flushed m.bin\n");
    // --offset alone flushes to the end (it used to send size = len and
    // always fail): here the second of two pages.
    let page = server.path("page.bin");
    std::fs::write(&page, vec![1u8; 8192]).unwrap();
    server
        .mmapctl()
        .args(["flush", "page.bin", "--offset", "4096"])
        .assert()
        .success()
        .stdout("flushed page.bin\n");
    assert_eq!(
        json_of(&["flush", "m.bin", "--offset", "0", "--size", "6"])["flushed"],
        true
    );

    for advice in ["willneed", "MADV_SEQUENTIAL", "3"] {
        server
            .mmapctl()
            .args(["madvise", "m.bin", advice])
            .assert()
            .success();
    }
    let advised = json_of(&[
        "madvise", "m.bin", "dontneed", "--start", "0", "--length", "6",
    ]);
    assert_eq!(advised["advice"], "MADV_DONTNEED");
    assert_eq!(advised["value"], 4);
    // Advice the server refuses is not offered: a usage error, before any
    // call, naming it.
    server
        .mmapctl()
        .args(["madvise", "m.bin", "remove"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("the server refuses MADV_REMOVE"));
}

#[test]
fn name_reaches_a_live_anonymous_region() {
    let server = Server::start();
    let mut holder = Holder::open(&server.endpoint, "holder");
    let region = holder.map(
        MapOptions::anonymous(32)
            .name("scratch")
            .access(Access::Write),
    );
    let with_name = |args: &[&str]| {
        let mut cmd = server.mmapctl();
        cmd.args(args).arg("--name").arg("scratch");
        cmd
    };

    with_name(&["write", "--data", "hello"]).assert().success();
    with_name(&["write", "--offset", "8", "-"])
        .write_stdin("world")
        .assert()
        .success();
    with_name(&["move", "20", "8", "5"]).assert().success();
    let mut expected = vec![0u8; 32];
    expected[..5].copy_from_slice(b"hello");
    expected[8..13].copy_from_slice(b"world");
    expected[20..25].copy_from_slice(b"world");
    assert_eq!(
        holder.slice(region),
        expected,
        "seen through the other session"
    );

    with_name(&["read", "--length", "5"])
        .assert()
        .success()
        .stdout("hello");
    with_name(&["cat", "--offset", "20", "--length", "5"])
        .assert()
        .success()
        .stdout("world");
    with_name(&["rfind", "world"])
        .assert()
        .success()
        .stdout("20\n");
    with_name(&["size"]).assert().success().stdout("32\n");
    with_name(&["resize", "64"]).assert().success();
    with_name(&["len"]).assert().success().stdout("64\n");
    let local = tempfile::tempdir().unwrap();
    let copy = local.path().join("region.bin");
    with_name(&["get"]).arg(&copy).assert().success();
    let mut data = std::fs::read(&copy).unwrap();
    assert_eq!(data.len(), 64);
    data.truncate(32);
    assert_eq!(data, expected);
    // The one-shot handles are gone; only the holder's remains.
    server
        .mmapctl()
        .args(["mappings"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "scratch  (anonymous)  64      write   1",
        ));
}

#[test]
fn a_broken_pipe_exits_0_quietly() {
    let server = Server::start();
    server.write("big.bin", &pseudo_random(16 << 20, 7));
    let mut child = mmapctl_std(&server.endpoint)
        .args(["cat", "big.bin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cat");
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 1000];
    stdout.read_exact(&mut head).expect("first bytes");
    drop(stdout); // like `| head -c 1000`
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
    assert_eq!(&head[..], &pseudo_random(1000, 7)[..]);
}
