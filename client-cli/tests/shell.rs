//! End-to-end tests of `mmapctl shell` against a real server: scripted
//! sessions through piped stdin exercising every method, error handling in
//! scripts, access modes, anonymous regions, `ls`, and the interactive
//! prompt.

mod support;

use std::{
    io::{Read, Write},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use predicates::prelude::PredicateBooleanExt;
use support::{Server, stdout_of};

#[test]
fn a_scripted_session_runs_every_method() {
    let server = Server::start();
    server.write("notes.txt", b"hello world\nsecond line\n");
    let script = "\
tell
read 5
read_byte
readline
tell
seek 0
write HELLO
seek -5 end
read
seek 2 set
seek 3 cur
find line
find o 0
rfind o
get 0
get -1
slice 0 5
slice None None 6
set 0 104
setslice 1 5 ello
slice 0 5
write_byte 33
tell

# comments and blank lines are skipped
write b'\\x00\\xff'
seek 6
read 2
move 0 12 6
readline
size
len
flush
madvise willneed
resize 30
len
stat
help tell
quit
tell
";
    let assert = server
        .mmapctl()
        .args(["shell", "notes.txt"])
        .write_stdin(script)
        .assert()
        .success()
        .stderr("");
    let expected = "\
0
b'hello'
32
b'world\\n'
12
0
5
19
b'line\\n'
2
5
19
7
15
72
10
b'HELLO'
b'Hws '
b'hello'
6
2
6
b'\\x00\\xff'
b'rld\\n'
24
24
30
length    30
size      30
position  12
access    write
name      notes.txt
path      notes.txt
offset    0
tell
    print the position
";
    assert_eq!(stdout_of(assert.get_output()), expected);
    let mut file = b"second\x00\xffrld\nsecond line\n".to_vec();
    file.resize(30, 0);
    assert_eq!(server.read("notes.txt"), file);
}

#[test]
fn script_errors_are_reported_by_line_and_the_script_goes_on() {
    let server = Server::start();
    server.write("f.bin", b"0123456789");
    let assert = server
        .mmapctl()
        .args(["shell", "f.bin"])
        .write_stdin("seek 20\nfrobnicate\nread_byte x\nget 10\nseek 8\nread\n")
        .assert()
        .code(1)
        .stdout("8\nb'89'\n");
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "mmapctl: error: line 1: seek out of range (OUT_OF_RANGE, VALUE_ERROR)",
            "mmapctl: error: line 2: unknown command \"frobnicate\"; type help for the list",
            "mmapctl: error: line 3: unexpected \"x\"; usage: read_byte",
            "mmapctl: error: line 4: mmap index out of range (OUT_OF_RANGE, INDEX_ERROR)",
        ]
    );

    // A script whose only failure is a usage error exits 2.
    server
        .mmapctl()
        .args(["shell", "f.bin"])
        .write_stdin("tell\nseek\n")
        .assert()
        .code(2)
        .stdout("0\n")
        .stderr("mmapctl: error: line 2: missing POS; usage: seek POS [WHENCE]\n");
}

#[test]
fn access_modes_are_honoured() {
    let server = Server::start();
    server.write("ro.bin", b"abcdef");
    server
        .mmapctl()
        .args(["shell", "ro.bin", "--access", "read"])
        .write_stdin("write xy\nread 2\n")
        .assert()
        .code(1)
        .stdout("b'ab'\n")
        .stderr(
            predicates::str::starts_with("mmapctl: error: line 1: ")
                .and(predicates::str::ends_with("TYPE_ERROR)\n")),
        );
    // Copy-on-write: the handle sees its writes, the file does not.
    server
        .mmapctl()
        .args(["shell", "ro.bin", "--access", "copy"])
        .write_stdin("write XY\nseek 0\nread\n")
        .assert()
        .success()
        .stdout("2\n0\nb'XYcdef'\n");
    assert_eq!(server.read("ro.bin"), b"abcdef");
}

#[test]
fn shells_on_new_files_and_anonymous_regions() {
    let server = Server::start();
    server
        .mmapctl()
        .args(["shell", "made.bin", "--create", "--length", "8"])
        .write_stdin("write_byte 65\nlen\n")
        .assert()
        .success()
        .stdout("8\n");
    assert_eq!(server.read("made.bin"), b"A\0\0\0\0\0\0\0");

    let assert = server
        .mmapctl()
        .args(["shell", "--length", "16", "--name", "pad"])
        .write_stdin("write it's\nseek 0\nreadline\nstat\n")
        .assert()
        .success();
    let out = stdout_of(assert.get_output());
    assert!(
        out.starts_with("4\n0\nb\"it's\\x00"),
        "unexpected output:\n{out}"
    );
    for line in ["length    16", "name      pad", "path      (anonymous)"] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
}

#[test]
fn ls_in_the_shell_lists_the_files_of_the_data_root() {
    let server = Server::start();
    server.write("notes.txt", b"hello");
    std::fs::create_dir_all(server.path("sub/inner")).unwrap();
    std::fs::create_dir(server.path("empty")).unwrap();
    server.write("sub/a.bin", b"x");
    let assert = server
        .mmapctl()
        .args(["shell", "notes.txt"])
        .write_stdin("ls\nls sub\nls empty\nls notes.txt\nread 2\nls nope\nhelp ls\n")
        .assert()
        .code(1)
        .stdout(
            "empty/\nnotes.txt\nsub/\n\
             sub/a.bin\nsub/inner/\n\
             notes.txt\n\
             b'he'\n\
             ls [-l] [-R] [PATH]\n    list the files in a folder of the data root (default: the root); \
             -l as a table, -R the whole tree\n",
        );
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.starts_with("mmapctl: error: line 6: ")
            && stderr.contains("No such file or directory"),
        "{stderr}"
    );
    // The mapping is still there after ls.
    assert_eq!(server.read("notes.txt"), b"hello");
}

#[test]
fn ls_in_the_shell_takes_the_clis_flags() {
    let server = Server::start();
    server.write("m.bin", b"mapped");
    std::fs::create_dir_all(server.path("sub/inner")).unwrap();
    server.write("sub/inner/deep.txt", b"12345");
    server.write("-dash", b"d");
    let assert = server
        .mmapctl()
        .args(["shell", "m.bin"])
        .write_stdin("ls -R sub\nls -l sub/inner\nls -lR\nls -- -dash\nls -x\n")
        .assert()
        .code(2);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..2], ["sub/inner/", "sub/inner/deep.txt"], "{stdout}");
    // -l: the table's header, then the file's row ending in its size and path.
    assert!(
        lines[2].starts_with("KIND") && lines[2].ends_with("PATH"),
        "{stdout}"
    );
    let row: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        (row[0], row[2], row[4], row[5]),
        ("file", "5", "no", "sub/inner/deep.txt"),
        "{stdout}"
    );
    // -lR of the root: every entry, the mapped file marked.
    let mapped = lines
        .iter()
        .find(|l| l.ends_with(" m.bin"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(mapped.contains(" yes "), "{stdout}");
    assert!(lines.iter().any(|l| l.ends_with(" sub/inner/deep.txt")));
    assert_eq!(lines.last(), Some(&"-dash"), "{stdout}");
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("ls has no option -x"), "{stderr}");
}

/// On a terminal the shell prompts with the position; `script` (util-linux)
/// provides the pseudo-terminal when available.
#[test]
fn the_interactive_prompt_shows_the_position() {
    if Command::new("script").arg("--version").output().is_err() {
        println!("skipped: no `script` to provide a terminal");
        return;
    }
    let server = Server::start();
    server.write("t.bin", b"0123456789");
    let command = format!(
        "{} --endpoint {} shell t.bin",
        env!("CARGO_BIN_EXE_mmapctl"),
        server.endpoint
    );
    let history = tempfile::NamedTempFile::new().unwrap();
    let mut child = KillOnDrop(
        Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("MMAPCTL_HISTORY", history.path())
            .env_remove("MMAPCTL_ENDPOINT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run script"),
    );
    // Collect the screen on a thread; type each line only once the prompt
    // it answers is on screen, as a person would (typeahead sent before
    // the line editor starts is not kept).
    let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn({
        let screen = std::sync::Arc::clone(&screen);
        move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                screen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    let text = || String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    let wait_for = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !text().contains(what) {
            assert!(
                Instant::now() < deadline,
                "no {what:?} on screen:\n{}",
                text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut stdin = child.0.stdin.take().unwrap();
    for (prompt, line) in [
        ("t.bin [0/10]> ", "seek 3\r"),
        ("t.bin [3/10]> ", "read 2\r"),
        ("t.bin [5/10]> ", "quit\r"),
    ] {
        wait_for(prompt);
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    let status = child.0.wait().expect("wait");
    drop(stdin);
    reader.join().unwrap();
    let screen = text();
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains("mapped t.bin: 10 bytes, access write."),
        "{screen}"
    );
    assert!(screen.contains("b'34'"), "{screen}");
    let saved = std::fs::read_to_string(history.path()).unwrap();
    assert!(
        saved.contains("seek 3") && saved.contains("read 2"),
        "{saved}"
    );
}

/// Kills the child if the test fails while it runs.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
