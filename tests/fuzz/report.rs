//! What the fuzzer checks on every answer, and the compact failure report:
//! distinct classes (kind, method, code, problem) with their counts, then
//! the first example of each (kind, code, problem) with the seed and call
//! index to replay it.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Longest status message (and details) a client should have to take: the
/// error text goes into HTTP/2 trailers, which clients cap (16 KiB is a
/// common default).
pub const MAX_STATUS_BYTES: usize = 16 << 10;

/// What a call was expected to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Anything, as long as errors are clean.
    Clean,
    /// RESOURCE_EXHAUSTED with reason MESSAGE_TOO_LARGE (an over-limit
    /// request).
    TooLarge,
}

/// How a call ended.
#[derive(Debug)]
pub enum Outcome {
    Ok,
    Err(Status),
    /// No answer within the call timeout: the server is stuck.
    Timeout,
}

/// One call, as the report shows it.
#[derive(Debug, Clone)]
pub struct Call {
    /// "typed", "raw", "oversize", "sequence" or "checkpoint".
    pub kind: &'static str,
    /// Short method name ("Mmap/Read").
    pub method: String,
    /// The request, abbreviated.
    pub request: String,
    pub expect: Expect,
    /// When it was sent.
    pub sent: Instant,
}

#[derive(Debug)]
struct Class {
    count: usize,
    first_index: usize,
    first_call: Call,
    first_answer: String,
}

/// Every failure of a run, grouped.
#[derive(Debug, Default)]
pub struct Report {
    classes: BTreeMap<(String, String, String, String), Class>,
    pub calls: usize,
    pub errors: usize,
    pub by_code: BTreeMap<String, usize>,
    /// Calls and time spent per (kind, method).
    pub time: BTreeMap<(String, String), (usize, Duration)>,
}

/// The problems with an answer; empty when it is fine.
pub fn problems(call: &Call, outcome: &Outcome) -> Vec<String> {
    let status = match outcome {
        Outcome::Timeout => return vec!["no answer (timeout)".into()],
        Outcome::Ok if call.expect == Expect::TooLarge => {
            return vec!["over-limit request accepted".into()];
        }
        Outcome::Ok => return Vec::new(),
        Outcome::Err(status) => status,
    };
    let mut out = Vec::new();
    if status.code() == Code::Internal {
        out.push("code INTERNAL".to_owned());
    }
    if status.code() == Code::Unknown {
        out.push("code UNKNOWN".to_owned());
    }
    let infos = crate::support::error_infos(status);
    match infos.as_slice() {
        [] => out.push("no ErrorInfo".to_owned()),
        [info] => {
            if info.domain != "mmapd" {
                out.push(format!("ErrorInfo domain {:?}", info.domain));
            }
            if info.reason.is_empty() {
                out.push("empty reason".to_owned());
            }
        }
        many => out.push(format!("{} ErrorInfos", many.len())),
    }
    if call.expect == Expect::TooLarge
        && (status.code() != Code::ResourceExhausted
            || infos.first().map(|i| i.reason.as_str()) != Some("MESSAGE_TOO_LARGE"))
    {
        out.push("over-limit request not RESOURCE_EXHAUSTED/MESSAGE_TOO_LARGE".to_owned());
    }
    if status.message().len() + status.details().len() > MAX_STATUS_BYTES {
        out.push(format!("status over {} KiB", MAX_STATUS_BYTES >> 10));
    }
    out
}

/// A one-line description of an answer.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok => "OK".into(),
        Outcome::Timeout => "timeout".into(),
        Outcome::Err(status) => {
            let reason = status
                .get_error_details()
                .error_info()
                .map(|i| i.reason.clone())
                .unwrap_or_else(|| "-".into());
            format!(
                "{:?} reason={reason} message={}",
                status.code(),
                abbreviate(status.message(), 200)
            )
        }
    }
}

/// The first `max` characters of `text`, with its length when cut.
pub fn abbreviate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return format!("{text:?}");
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut:?}… ({} bytes)", text.len())
}

impl Report {
    /// Checks an answer; records it if it is wrong. Returns whether it was
    /// fine.
    pub fn check(&mut self, index: usize, call: &Call, outcome: &Outcome) -> bool {
        self.calls += 1;
        let spent = self
            .time
            .entry((call.kind.to_owned(), call.method.clone()))
            .or_default();
        spent.0 += 1;
        spent.1 += call.sent.elapsed();
        let code = match outcome {
            Outcome::Ok => "OK".to_owned(),
            Outcome::Timeout => "TIMEOUT".to_owned(),
            Outcome::Err(s) => {
                self.errors += 1;
                format!("{:?}", s.code())
            }
        };
        *self.by_code.entry(code.clone()).or_default() += 1;
        let problems = problems(call, outcome);
        if problems.is_empty() {
            return true;
        }
        self.fail(index, call, code, problems.join(", "), describe(outcome));
        false
    }

    /// Records a failure that is not about one status (a lost byte, a
    /// server that stopped answering).
    pub fn fail(
        &mut self,
        index: usize,
        call: &Call,
        code: String,
        problem: String,
        answer: String,
    ) {
        let key = (call.kind.to_owned(), call.method.clone(), code, problem);
        self.classes
            .entry(key)
            .and_modify(|c| c.count += 1)
            .or_insert_with(|| Class {
                count: 1,
                first_index: index,
                first_call: call.clone(),
                first_answer: answer,
            });
    }

    /// Answers so far with this code name ("TIMEOUT", "Unavailable", ...).
    pub fn count(&self, code: &str) -> usize {
        self.by_code.get(code).copied().unwrap_or(0)
    }

    /// The (kind, method) pairs that took the most time.
    pub fn slowest(&self, n: usize) -> String {
        let mut all: Vec<_> = self.time.iter().collect();
        all.sort_by_key(|(_, (_, d))| std::cmp::Reverse(*d));
        all.iter()
            .take(n)
            .map(|((kind, method), (count, d))| format!("{kind} {method} {count}x {d:.1?}"))
            .collect::<Vec<_>>()
            .join(", ")
            + &format!(
                "; all calls {:.1?}",
                self.time.values().map(|(_, d)| *d).sum::<Duration>()
            )
    }

    /// Whether any call failed.
    pub fn failed(&self) -> bool {
        !self.classes.is_empty()
    }

    /// The summary table, then the first example of each class.
    pub fn render(&self, seed: u64) -> String {
        let mut out = format!(
            "fuzz: {} failure classes in {} calls (seed {seed}; replay with MMAPD_FUZZ_SEED={seed})\n",
            self.classes.len(),
            self.calls
        );
        out += "  count  kind        method                     code                problem\n";
        for ((kind, method, code, problem), class) in &self.classes {
            out += &format!(
                "  {:>5}  {kind:<10}  {method:<25}  {code:<18}  {problem}\n",
                class.count
            );
        }
        // One example per (kind, code, problem): the same decode error in
        // thirty methods needs one request to show it, not thirty.
        out += "first example of each (kind, code, problem), the methods sharing it named:\n";
        type Members<'a> = Vec<(&'a str, &'a Class)>;
        let mut groups: BTreeMap<(&str, &str, &str), Members<'_>> = BTreeMap::new();
        for ((kind, method, code, problem), class) in &self.classes {
            groups
                .entry((kind, code, problem))
                .or_default()
                .push((method, class));
        }
        for ((kind, code, problem), members) in groups {
            let (method, class) = members
                .iter()
                .min_by_key(|(_, c)| c.first_index)
                .expect("a group has members");
            out += &format!(
                "- [{kind} {method} {code}: {problem}] seed {seed} call #{}\n    request: {}\n    answer:  {}\n",
                class.first_index, class.first_call.request, class.first_answer
            );
            if members.len() > 1 {
                let others: Vec<&str> = members.iter().map(|(m, _)| *m).collect();
                out += &format!("    also in: {}\n", others.join(", "));
            }
        }
        out
    }
}
