//! Driver of the CPython oracle, `tests/oracle/mmap_oracle.py`: one
//! `python3` child process for the whole test, spoken to in JSON lines.

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

use serde::{Deserialize, Serialize};

use crate::ops::{MapState, Outcome, PyErr, Val, from_hex};

/// The oracle's greeting.
#[derive(Debug, Clone, Deserialize)]
pub struct Hello {
    /// CPython's version, e.g. "3.11.7".
    pub python: String,
    /// `mmap.PAGESIZE`.
    pub pagesize: i64,
    /// `mmap.ALLOCATIONGRANULARITY`.
    pub granularity: i64,
}

/// What the oracle did with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// CPython ran the call.
    Ran {
        /// Its result or exception.
        outcome: Outcome,
        /// The named map afterwards (`None` when closed or never created).
        state: Option<MapState>,
    },
    /// The call hits a documented mmapd deviation (see the oracle's
    /// docstring and the list in `main.rs`).
    Deviation {
        /// "resize_zero", "anon_grow" or "anon_size".
        kind: String,
        /// The result mmapd must return, where it returns one.
        result: Val,
        /// The named map afterwards.
        state: Option<MapState>,
    },
    /// Not run because it would crash CPython; the server must not run it
    /// either.
    Skip(String),
}

/// The running oracle process.
pub struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Facts about the oracle's CPython.
    pub hello: Hello,
}

#[derive(Deserialize)]
struct Greeting {
    hello: Hello,
}

#[derive(Deserialize)]
struct RawReply {
    #[serde(default)]
    ok: serde_json::Value,
    err: Option<String>,
    msg: Option<String>,
    errno: Option<i64>,
    deviation: Option<String>,
    skip: Option<String>,
    fatal: Option<String>,
    state: Option<MapState>,
}

impl Oracle {
    /// Starts `python3 mmap_oracle.py data_dir` and reads its greeting.
    pub fn spawn(data_dir: &Path) -> Result<Self, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/mmap_oracle.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start python3 {}: {e}", script.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("python3 started without pipes".into());
        };
        let mut oracle = Oracle {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            hello: Hello {
                python: String::new(),
                pagesize: 0,
                granularity: 0,
            },
        };
        let line = oracle.read_line()?;
        let greeting: Greeting = serde_json::from_str(&line)
            .map_err(|e| format!("bad oracle greeting {line:?}: {e}"))?;
        oracle.hello = greeting.hello;
        Ok(oracle)
    }

    /// Sends one request (an [`crate::ops::Op`] or a checkpoint request) and
    /// returns the oracle's answer.
    pub fn call(&mut self, request: &impl Serialize) -> Result<Reply, String> {
        let mut line = serde_json::to_string(request).map_err(|e| e.to_string())?;
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("oracle stdin: {e} (did python3 crash?)"))?;
        let answer = self.read_line()?;
        let raw: RawReply = serde_json::from_str(&answer)
            .map_err(|e| format!("bad oracle reply {answer:?}: {e}"))?;
        if let Some(why) = raw.fatal {
            return Err(format!("the oracle rejected {}: {why}", line.trim_end()));
        }
        if let Some(why) = raw.skip {
            return Ok(Reply::Skip(why));
        }
        if let Some(kind) = raw.deviation {
            return Ok(Reply::Deviation {
                kind,
                result: value(raw.ok)?,
                state: raw.state,
            });
        }
        let outcome = match raw.err {
            Some(class) => Err(PyErr {
                class,
                msg: raw.msg.unwrap_or_default(),
                errno: raw.errno,
            }),
            None => Ok(value(raw.ok)?),
        };
        Ok(Reply::Ran {
            outcome,
            state: raw.state,
        })
    }

    fn read_line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err(format!(
                "the oracle exited ({:?}); see its stderr above",
                self.child.try_wait()
            )),
            Ok(_) => Ok(line),
            Err(e) => Err(format!("oracle stdout: {e}")),
        }
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        // The child is ours; stop it even when the test panics.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Converts a JSON result: null is None, a number an int, a string hex bytes.
fn value(json: serde_json::Value) -> Result<Val, String> {
    match json {
        serde_json::Value::Null => Ok(Val::None),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .map(Val::Int)
            .ok_or_else(|| format!("oracle returned a non-integer number {n}")),
        serde_json::Value::String(hex) => from_hex(&hex).map(Val::Bytes),
        other @ (serde_json::Value::Bool(_)
        | serde_json::Value::Array(_)
        | serde_json::Value::Object(_)) => Err(format!("unexpected oracle result {other}")),
    }
}
