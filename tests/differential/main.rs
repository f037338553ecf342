//! Differential test: mmapd against real CPython.
//!
//! A seeded generator ([`generator`]) draws thousands of random `mmap` operations:
//! file maps of several sizes (0 bytes, under a page, not a page multiple,
//! several pages) with every access mode, offset and length, anonymous maps,
//! and then every method with in-range, boundary, negative and huge
//! arguments, closes, and calls on closed maps. Each operation runs on a real
//! mmapd started in-process ([`server`], over gRPC) and on CPython's `mmap`
//! ([`oracle`], `tests/oracle/mmap_oracle.py`), each over its own copy of the
//! same files. The result, or the exception class, message and errno, must be
//! identical. Every 100 operations and at the end the full contents of every
//! open map (by `GetSlice` or a positional `ReadStream`), its `Stat`, and the
//! bytes of every file on disk are compared too.
//!
//! A second in-process mmapd, on its own copy of the files, gets the same
//! operations through one `Pipeline` stream, in `PipelineRequest`s of 1 to
//! 32 ops (seeded; a `Map` or `Close`, which are not Pipeline ops and go by
//! their unary calls, or a checkpoint sends a request early). Each op's
//! result there must equal the unary call's: the value, or the status code,
//! message and ErrorInfo reason and metadata. Its maps and files are
//! compared with CPython's at the same checkpoints. A default run sends at
//! least 1,000 ops through Pipeline.
//!
//! `MMAPD_DIFF_SEED` replays a seed (it is printed, and every failure names
//! it); `MMAPD_DIFF_OPS` changes the number of operations (default 3,000);
//! `MMAPD_DIFF_TRACE=1` prints every operation before it runs, for a replay
//! when the process dies instead of failing (the server runs in-process).
//!
//! Every file map is given its own registry `name`, so two maps of one file
//! are two mappings (like two CPython objects) that see each other's writes
//! through the file's shared pages, as they do in CPython. Anonymous maps are
//! sent without a name: mmapd then picks a unique one (a named `Map` with an
//! empty path and length 0 means "attach to the mapping of that name").
//!
//! # Known intended deviations
//!
//! These are the only differences from CPython 3.11 the test tolerates (the
//! issue's "where CPython crashes or corrupts, we do better"); the oracle
//! answers them with a `deviation` instead of running CPython:
//!
//! 1. `Size` of an anonymous region returns its length; CPython's `size()`
//!    fstat()s fd -1 and raises OSError(EBADF). Oracle: `anon_size` with
//!    `len(m)`, which the server must return.
//! 2. `Resize` to 0 of an open ACCESS_DEFAULT/WRITE map is a VALUE_ERROR
//!    (message not compared) and changes nothing; CPython truncates the file
//!    and then fails, leaving a map that SIGBUSes. Oracle: `resize_zero`
//!    (nothing run); the next checkpoint checks the map is unchanged.
//! 3. Growing an anonymous region works (it is memfd-backed, and like a
//!    file's, the bytes a grow adds read as zeros); CPython's mremap grows the
//!    mapping but not the shared memory behind it, so the new pages SIGBUS.
//!    Oracle: `anon_grow`, emulated by a fresh anonymous map holding the old
//!    bytes, then zeros, at the same cursor (see the oracle for the details;
//!    anonymous maps only get advice that keeps the emulation exact).
//! 4. MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK and values outside the `Advice`
//!    enum are refused with INVALID_ARGUMENT. They are sent to the server only
//!    (on open maps), which must answer INVALID_ARGUMENT.
//! 5. A `Resize` of a file map that would make the file end before the end
//!    of another open map of it is refused (VALUE_ERROR, FAILED_PRECONDITION)
//!    and changes nothing; CPython truncates the file and the other map
//!    SIGBUSes on its next access. Oracle: `resize_under_other_map` (nothing
//!    run); the server must refuse that way (message not compared).
//! 6. Growing a map that madvise split into several VMAs works: mmapd maps
//!    the file (or memfd) afresh at the new length; CPython grows the file,
//!    then its mremap fails with EFAULT. Oracle: `resize_split` (and
//!    `anon_grow` for anonymous maps), emulated by a fresh map.
//!
//! Nothing that crashes CPython is run: the cases above are answered by the
//! oracle without calling CPython, and it refuses (`skip`, and then the
//! server does not run the call either) a grow past 1 MiB and an anonymous
//! grow that would leave the cursor past the new end.
//!
//! Not deviations, only different spellings of the same result: CPython 3.11's
//! `seek` and `resize` return None while `Seek` returns the new cursor and
//! `Resize` the new length; the oracle answers with `tell()` and `len(m)`.

mod generator;
mod ops;
mod oracle;
mod server;

use std::{
    collections::{BTreeMap, VecDeque},
    fmt,
    path::{Path, PathBuf},
    time::Instant,
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use tonic::Code;

use crate::{
    generator::{Gen, MapModel, Model, REFUSED_ADVICE, reported_access},
    ops::{Call, Method, Op, Val, show_bytes, show_outcome},
    oracle::{Oracle, Reply},
    server::{Answer, Server},
};

/// Operations per run unless `MMAPD_DIFF_OPS` says otherwise.
const DEFAULT_OPS: usize = 3_000;
/// Operations between full comparisons of every map and file.
const CHECK_EVERY: usize = 100;
/// Operations between session renewals.
const KEEP_ALIVE_EVERY: usize = 500;
/// Operations shown before a failing one.
const HISTORY: usize = 10;
/// `ReadStream` chunk sizes used by the checkpoints (0 is the default).
const CHUNK_SIZES: [u32; 4] = [0, 100, 1000, 4096];
/// The largest `PipelineRequest`, in ops; each batch's size is drawn from
/// 1 to this (a `Map`, a `Close` or a checkpoint sends a batch early).
const MAX_BATCH: usize = 32;
/// Reply bytes one batch may expect: far under the message limit, so that
/// no op of a batch fails for the size of the results before it (which is
/// Pipeline's rule, and no unary call has it).
const BATCH_REPLY_BYTES: usize = 8 << 20;
/// Ops a default run must send through Pipeline.
const MIN_PIPELINED: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mmapd_matches_cpython() {
    let seed = env_number("MMAPD_DIFF_SEED").unwrap_or_else(rand::random);
    let ops = env_number("MMAPD_DIFF_OPS")
        .map_or(DEFAULT_OPS, |n| usize::try_from(n).unwrap_or(DEFAULT_OPS));
    println!("differential: seed {seed} ({ops} ops); replay with MMAPD_DIFF_SEED={seed}");
    let started = Instant::now();

    let server_dir = tempfile::tempdir().expect("server data root");
    let piped_dir = tempfile::tempdir().expect("Pipeline server data root");
    let oracle_dir = tempfile::tempdir().expect("oracle data dir");
    let oracle = Oracle::spawn(oracle_dir.path()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let hello = oracle.hello.clone();
    println!(
        "differential: CPython {} (page {}, granularity {})",
        hello.python, hello.pagesize, hello.granularity
    );
    let mut generator = Gen::new(seed, hello.pagesize, hello.granularity);
    let mut file_sizes = BTreeMap::new();
    for (name, len) in test_files(hello.pagesize) {
        let data = generator.file_contents(len);
        for dir in [server_dir.path(), piped_dir.path(), oracle_dir.path()] {
            std::fs::write(dir.join(name), &data).expect("write a test file");
        }
        file_sizes.insert(name.to_string(), i64::try_from(len).expect("small file"));
    }
    let server = Server::start(server_dir.path())
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let piped = Server::start(piped_dir.path())
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let mut batch_rng = StdRng::seed_from_u64(seed ^ 0x5069_7065_6c69_6e65);
    let batch_size = batch_rng.random_range(1..=MAX_BATCH);

    let mut run = Run {
        seed,
        generator,
        model: Model::new(file_sizes),
        oracle,
        server,
        server_dir: server_dir.path().to_path_buf(),
        piped,
        piped_dir: piped_dir.path().to_path_buf(),
        pending: Vec::new(),
        batch_rng,
        batch_size,
        pipelined: 0,
        batches: 0,
        oracle_dir: oracle_dir.path().to_path_buf(),
        history: VecDeque::new(),
        stats: BTreeMap::new(),
        notes: BTreeMap::new(),
        checkpoints: 0,
        trace: std::env::var_os("MMAPD_DIFF_TRACE").is_some_and(|v| v != "0"),
    };
    for index in 0..ops {
        run.step(index).await;
        if (index + 1) % CHECK_EVERY == 0 {
            run.checkpoint(index).await;
        }
        if (index + 1) % KEEP_ALIVE_EVERY == 0 {
            for piped in [false, true] {
                let renewed = run.side(piped).0.keep_alive().await;
                renewed.unwrap_or_else(|e| run.fail(index, &format!("KeepAlive: {e}")));
            }
        }
    }
    run.checkpoint(ops).await;
    run.print_stats(started);
    if ops >= DEFAULT_OPS {
        assert!(
            run.pipelined >= MIN_PIPELINED,
            "seed {seed}: only {} ops went through Pipeline",
            run.pipelined
        );
    }
    let Run { server, piped, .. } = run;
    for server in [server, piped] {
        server
            .stop()
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

/// The test files, by name and size: empty, under a page, exactly a page,
/// odd sizes, several pages.
fn test_files(page: i64) -> Vec<(&'static str, usize)> {
    let page = usize::try_from(page).expect("a positive page size");
    vec![
        ("empty", 0),
        ("small", 100),
        ("page", page),
        ("odd", 5_000),
        ("multi", 3 * page + 123),
        ("four", 4 * page),
        ("r1", 2_000),
        ("r2", 2 * page),
        ("r3", 2 * page + 1_000),
    ]
}

fn env_number(var: &str) -> Option<u64> {
    let text = std::env::var(var).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{var}={text:?} is not a number: {e}")),
    )
}

/// Per operation name: how many succeeded, raised, hit a deviation, were
/// skipped.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    ok: u32,
    err: u32,
    deviation: u32,
    skipped: u32,
}

/// One run: both sides, the generator, the model and what happened so far.
struct Run {
    seed: u64,
    generator: Gen,
    model: Model,
    oracle: Oracle,
    /// The server every op is sent to by its unary call.
    server: Server,
    server_dir: PathBuf,
    /// A second server, on its own copy of the files, that gets the same
    /// ops through one Pipeline stream (`Map` and `Close`, which are not
    /// Pipeline ops, by their unary calls). Each of its answers must equal
    /// the unary server's, status code, message and ErrorInfo included.
    piped: Server,
    piped_dir: PathBuf,
    /// Ops waiting for the next `PipelineRequest`, with their op number
    /// and the unary server's answer.
    pending: Vec<(usize, Op, Answer)>,
    batch_rng: StdRng,
    /// The size at which `pending` is sent.
    batch_size: usize,
    /// Ops and requests sent through Pipeline so far.
    pipelined: usize,
    batches: usize,
    oracle_dir: PathBuf,
    history: VecDeque<String>,
    stats: BTreeMap<&'static str, Counts>,
    /// How often each deviation was hit and each reason to skip was given.
    notes: BTreeMap<String, u32>,
    checkpoints: usize,
    /// Print every operation before running it (`MMAPD_DIFF_TRACE`).
    trace: bool,
}

impl Run {
    /// Generates one operation, runs it on both sides and compares.
    async fn step(&mut self, index: usize) {
        let op = self.generator.next_op(&self.model);
        if self.trace {
            let target = self.target(&op);
            eprintln!("#{index} {op}\n    on {target}");
        }
        let name = op.call.name();
        if is_refused_advice(&op) {
            self.stats.entry("refused advice").or_default().err += 1;
            let expected = Expected::Refusal {
                class: None,
                code: Some(Code::InvalidArgument),
            };
            self.check_deviation(index, &op, "refused advice", &expected)
                .await;
            return;
        }
        let reply = self
            .oracle
            .call(&op)
            .unwrap_or_else(|e| self.fail(index, &e));
        match reply {
            Reply::Skip(why) => {
                self.stats.entry(name).or_default().skipped += 1;
                self.remember(index, &op, &format!("skipped: {why}"));
                *self.notes.entry(format!("skipped: {why}")).or_default() += 1;
            }
            Reply::Ran { outcome, state } => {
                let counts = self.stats.entry(name).or_default();
                if outcome.is_ok() {
                    counts.ok += 1;
                } else {
                    counts.err += 1;
                }
                let answer = self.exec(index, &op, &show_outcome(&outcome)).await;
                if server::outcome(&answer) != outcome {
                    self.mismatch(index, &op, &show_outcome(&outcome), &answer);
                }
                self.remember(index, &op, &show_outcome(&outcome));
                self.model.apply(&op, state, outcome.is_ok());
                if outcome.is_ok() {
                    self.after_success(index, &op).await;
                }
            }
            Reply::Deviation {
                kind,
                result,
                state,
            } => {
                self.stats.entry(name).or_default().deviation += 1;
                let expected = match kind.as_str() {
                    "anon_size" | "anon_grow" | "resize_split" => Expected::Value(result),
                    "resize_zero" => Expected::Refusal {
                        class: Some("ValueError"),
                        code: None,
                    },
                    "resize_under_other_map" => Expected::Refusal {
                        class: Some("ValueError"),
                        code: Some(Code::FailedPrecondition),
                    },
                    other => self.fail(index, &format!("unknown deviation {other:?} for {op}")),
                };
                self.check_deviation(index, &op, &kind, &expected).await;
                let changed = matches!(expected, Expected::Value(_));
                self.model.apply(&op, state, changed);
            }
        }
    }

    /// Runs `op`, which hits deviation `kind`, on the server only and checks
    /// its answer.
    async fn check_deviation(&mut self, index: usize, op: &Op, kind: &str, expected: &Expected) {
        *self.notes.entry(format!("deviation: {kind}")).or_default() += 1;
        let described = format!("{expected} ({kind}: a deviation)");
        let answer = self.exec(index, op, &described).await;
        if !expected.matches(&answer) {
            self.mismatch(index, op, &described, &answer);
        }
        self.remember(index, op, &format!("{} [{kind}]", show_answer(&answer)));
    }

    /// Checks what a successful `op` must have left behind: a new map's
    /// `Stat`, a flushed map's file on disk.
    async fn after_success(&mut self, index: usize, op: &Op) {
        let Some(map) = self.model.maps.get(&op.id).cloned() else {
            return;
        };
        if matches!(op.call, Call::Map { .. }) {
            self.check_stat(index, op.id, &map, false).await;
        } else if let (Call::Method(Method::Flush { .. }), Some(path)) = (&op.call, &map.path) {
            self.compare_file(index, path, false);
        }
    }

    /// Runs `op` on the server; a broken error contract fails the test,
    /// showing what was `expected`.
    async fn exec(&mut self, index: usize, op: &Op, expected: &str) -> Answer {
        let anonymous = matches!(op.call, Call::Map { path: None, .. });
        let name = if anonymous {
            String::new()
        } else {
            format!("differential-{}-{}", self.seed, op.id)
        };
        let answer = match self.server.exec(op, &name).await {
            Ok(answer) => answer,
            Err(violation) => {
                let target = self.target(op);
                let what = format!(
                    "op {op}\n  on {target}\n  expected: {expected}\n  mmapd broke the contract: {violation}"
                );
                self.fail(index, &what)
            }
        };
        self.pipe(index, op, &name, &answer).await;
        answer
    }

    /// Sends `op` to the Pipeline server: queued for the next batch, or
    /// (`Map`, `Close`) after the queue and by its unary call. Its answer
    /// must be the unary server's `answer`.
    async fn pipe(&mut self, index: usize, op: &Op, name: &str, answer: &Answer) {
        if matches!(op.call, Call::Map { .. } | Call::Close) {
            self.send_batch(index).await;
            let piped = self.piped.exec(op, name).await;
            let piped = piped.unwrap_or_else(|e| {
                self.fail(index, &format!("op {op} on the Pipeline server: {e}"))
            });
            if piped != *answer {
                self.fail(
                    index,
                    &format!(
                        "op {op} answered differently on the Pipeline server (by its unary call)\n  first server: {}\n  second:       {}",
                        show_answer(answer),
                        show_answer(&piped)
                    ),
                );
            }
            return;
        }
        let reply_bytes = |a: &Answer| match a {
            Ok(Val::Bytes(b)) => b.len(),
            _ => 0,
        };
        let queued: usize = self.pending.iter().map(|(_, _, a)| reply_bytes(a)).sum();
        if queued + reply_bytes(answer) > BATCH_REPLY_BYTES {
            self.send_batch(index).await;
        }
        self.pending.push((index, op.clone(), answer.clone()));
        if self.pending.len() >= self.batch_size {
            self.send_batch(index).await;
        }
    }

    /// Sends the queued ops as one `PipelineRequest` and compares each
    /// result with the unary answer, then draws the next batch size.
    async fn send_batch(&mut self, index: usize) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let ops: Vec<&Op> = pending.iter().map(|(_, op, _)| op).collect();
        let answers = self.piped.pipeline(&ops).await.unwrap_or_else(|e| {
            self.fail(
                index,
                &format!(
                    "Pipeline request of {} ops (op #{} first): {e}",
                    ops.len(),
                    pending[0].0
                ),
            )
        });
        for (k, ((at, op, unary), piped)) in pending.iter().zip(&answers).enumerate() {
            if piped != unary {
                self.fail(
                    index,
                    &format!(
                        "op #{at} {op}\n  answered differently through Pipeline (op {} of a request of {})\n  unary:    {}\n  Pipeline: {}",
                        k + 1,
                        ops.len(),
                        show_answer(unary),
                        show_answer(piped)
                    ),
                );
            }
        }
        self.pipelined += pending.len();
        self.batches += 1;
        self.batch_size = self.batch_rng.random_range(1..=MAX_BATCH);
    }

    /// The unary server and its data root, or the Pipeline server and its.
    fn side(&mut self, piped: bool) -> (&mut Server, &Path) {
        if piped {
            (&mut self.piped, &self.piped_dir)
        } else {
            (&mut self.server, &self.server_dir)
        }
    }

    fn target(&self, op: &Op) -> String {
        self.model
            .maps
            .get(&op.id)
            .map_or_else(|| "a new map".to_string(), describe)
    }

    /// Compares every open map's contents and `Stat`, then every file, on
    /// both servers (the Pipeline server once its queue is sent).
    async fn checkpoint(&mut self, index: usize) {
        self.send_batch(index).await;
        self.checkpoints += 1;
        for id in self.model.open_ids() {
            let map = self.model.maps[&id].clone();
            let expected = match self
                .oracle
                .call(&serde_json::json!({"op": "contents", "id": id}))
            {
                Ok(Reply::Ran {
                    outcome: Ok(Val::Bytes(bytes)),
                    ..
                }) => bytes,
                other => self.fail(index, &format!("oracle contents of map {id}: {other:?}")),
            };
            let chunk = (self.checkpoints + id) % (CHUNK_SIZES.len() + 1);
            let via = CHUNK_SIZES.get(chunk).copied();
            for piped in [false, true] {
                let got = self.side(piped).0.contents(id, via).await;
                let got = got.unwrap_or_else(|e| self.fail(index, &e));
                if got != expected {
                    let how = via.map_or("GetSlice".to_string(), |c| {
                        format!("ReadStream(chunk_size={c})")
                    });
                    let what = format!(
                        "contents of map {id} ({}) by {how}{}",
                        describe(&map),
                        on_side(piped)
                    );
                    self.fail(index, &bytes_mismatch(&what, &expected, &got));
                }
                self.check_stat(index, id, &map, piped).await;
            }
        }
        let names: Vec<String> = self.model.file_sizes.keys().cloned().collect();
        for name in names {
            for piped in [false, true] {
                self.compare_file(index, &name, piped);
            }
        }
    }

    async fn check_stat(&mut self, index: usize, id: usize, map: &MapModel, piped: bool) {
        let (server, dir) = self.side(piped);
        let (stat, dir) = (server.stat(id).await, dir.to_path_buf());
        let stat = stat.unwrap_or_else(|e| self.fail(index, &e));
        let size = match &map.path {
            None => i128::from(map.len),
            Some(path) => match std::fs::metadata(dir.join(path)) {
                Ok(meta) => i128::from(meta.len()),
                Err(e) => self.fail(index, &format!("stat {path}: {e}")),
            },
        };
        let expected = (
            i128::from(map.len),
            size,
            i128::from(map.pos),
            reported_access(map.access),
            self.side(piped).0.name(id).unwrap_or_default().to_string(),
            map.path.clone().unwrap_or_default(),
            i128::from(map.offset),
        );
        let got = (
            i128::from(stat.length),
            i128::from(stat.size),
            i128::from(stat.position),
            stat.access,
            stat.name.clone(),
            stat.path.clone(),
            i128::from(stat.offset),
        );
        if got != expected {
            self.fail(
                index,
                &format!(
                    "Stat of map {id} ({}){}: (length, size, position, access, name, path, offset)\n  expected {expected:?}\n  got      {got:?}",
                    describe(map),
                    on_side(piped)
                ),
            );
        }
    }

    fn compare_file(&self, index: usize, name: &str, piped: bool) {
        let read = |dir: &Path| {
            std::fs::read(dir.join(name))
                .unwrap_or_else(|e| self.fail(index, &format!("read {name}: {e}")))
        };
        let dir = if piped {
            &self.piped_dir
        } else {
            &self.server_dir
        };
        let (expected, got) = (read(&self.oracle_dir), read(dir));
        if expected != got {
            let what = format!("file {name:?} on disk{}", on_side(piped));
            self.fail(index, &bytes_mismatch(&what, &expected, &got));
        }
    }

    fn remember(&mut self, index: usize, op: &Op, outcome: &str) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history
            .push_back(format!("#{index} {op}\n      -> {outcome}"));
    }

    fn mismatch(&self, index: usize, op: &Op, expected: &str, answer: &Answer) -> ! {
        let target = self.target(op);
        self.fail(
            index,
            &format!(
                "op {op}\n  on {target}\n  expected: {expected}\n  mmapd:    {}",
                show_answer(answer)
            ),
        )
    }

    fn fail(&self, index: usize, what: &str) -> ! {
        let history: Vec<&str> = self.history.iter().map(String::as_str).collect();
        panic!(
            "differential mismatch at op #{index} (seed {seed}; replay with MMAPD_DIFF_SEED={seed})\n{what}\n\nlast {n} ops:\n  {}",
            history.join("\n  "),
            seed = self.seed,
            n = history.len(),
        )
    }

    fn print_stats(&self, started: Instant) {
        let mut total = Counts::default();
        for (name, c) in &self.stats {
            println!(
                "  {name:<14} ok {:>4}  err {:>4}  deviation {:>3}  skipped {:>3}",
                c.ok, c.err, c.deviation, c.skipped
            );
            total.ok += c.ok;
            total.err += c.err;
            total.deviation += c.deviation;
            total.skipped += c.skipped;
        }
        for (note, n) in &self.notes {
            println!("  {note}: {n}");
        }
        println!(
            "differential: seed {} passed: {} ok, {} errors, {} deviations, {} skipped, {} checkpoints, {} maps, {} ops in {} Pipeline requests in {:.1?}",
            self.seed,
            total.ok,
            total.err,
            total.deviation,
            total.skipped,
            self.checkpoints,
            self.model.maps.len(),
            self.pipelined,
            self.batches,
            started.elapsed(),
        );
    }
}

/// What the server must answer where it deliberately differs from CPython.
enum Expected {
    /// This result.
    Value(Val),
    /// An error of this class (if given) and gRPC code (if given); the
    /// message is not compared.
    Refusal {
        class: Option<&'static str>,
        code: Option<Code>,
    },
}

impl Expected {
    fn matches(&self, answer: &Answer) -> bool {
        match (self, answer) {
            (Expected::Value(expected), Ok(got)) => expected == got,
            (Expected::Refusal { class, code }, Err(failure)) => {
                class.is_none_or(|class| failure.err.class == class)
                    && code.is_none_or(|code| failure.code == code)
            }
            (Expected::Value(_), Err(_)) | (Expected::Refusal { .. }, Ok(_)) => false,
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Value(val) => write!(f, "Ok({val})"),
            Expected::Refusal { class, code } => {
                write!(f, "Err({}(..))", class.unwrap_or("any exception"))?;
                code.map_or(Ok(()), |code| write!(f, " with code {code:?}"))
            }
        }
    }
}

/// Whether `op` is advice mmapd refuses (deviation 4), which only the server
/// sees.
fn is_refused_advice(op: &Op) -> bool {
    matches!(op.call, Call::Method(Method::Madvise { option, .. }) if REFUSED_ADVICE.contains(&option))
}

/// Names the Pipeline server in a failure about it.
fn on_side(piped: bool) -> &'static str {
    if piped { " on the Pipeline server" } else { "" }
}

fn describe(map: &MapModel) -> String {
    let what = map
        .path
        .as_deref()
        .map_or_else(|| "anonymous".to_string(), |p| format!("file {p:?}"));
    let state = if map.open { "open" } else { "closed" };
    format!(
        "{state} {what}, access {}, offset {}, len {}, pos {}",
        map.access, map.offset, map.len, map.pos
    )
}

fn show_answer(answer: &Answer) -> String {
    match answer {
        Ok(val) => format!("Ok({val})"),
        Err(failure) => format!(
            "Err({}) [code {:?}, reason {}, metadata {:?}]",
            failure.err, failure.code, failure.reason, failure.metadata
        ),
    }
}

fn bytes_mismatch(what: &str, expected: &[u8], got: &[u8]) -> String {
    let first = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    let around = |b: &[u8]| show_bytes(b.get(first..).unwrap_or_default());
    format!(
        "{what} differ: CPython has {} bytes, mmapd {}; first difference at offset {first}\n  CPython: {}\n  mmapd:   {}",
        expected.len(),
        got.len(),
        around(expected),
        around(got),
    )
}
