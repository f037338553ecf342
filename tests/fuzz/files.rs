//! Typed calls to the Files service: hostile paths (`..`, absolute, NULs,
//! long, odd spellings, symlinks in and out of the root) and random sizes
//! and flags, held to the same contract as every other call. The calls
//! that change or remove things act beneath `fz/` when their path would
//! name one of the prepared files, so the Maps keep what they fuzz over and
//! the canary stays out of reach.

use mmapd::pb;

use crate::{
    CANARY, MAPPING_LIMIT,
    report::Expect,
    state::{Fuzzer, answer},
    typed::send,
};

/// What `prepare_root` made, and the canary.
const PREPARED: [&str; 10] = [
    "f0.bin",
    "f1.bin",
    "f2.bin",
    "f3.bin",
    "empty.bin",
    "sub",
    "out",
    "loop",
    "in",
    CANARY,
];

/// Names the fuzzer's own tree is made of.
const OWN: [&str; 4] = ["a", "b", "x.bin", "a/b"];

impl Fuzzer {
    /// A path to look at: anything at all.
    fn any_path(&mut self) -> String {
        match self.g.below(3) {
            0 => format!("fz/{}", self.g.pick(&OWN)),
            _ => self.g.string(),
        }
    }

    /// A path to change: anything, except that one naming a prepared file
    /// (however spelled) is moved beneath `fz/`.
    fn own_path(&mut self) -> String {
        let path = self.any_path();
        let first = path
            .split('/')
            .find(|part| !part.is_empty() && *part != ".")
            .unwrap_or_default();
        if PREPARED.contains(&first) {
            format!("fz/{path}")
        } else {
            path
        }
    }

    /// One call to Files RPC number `which` (List, StatPath, MakeDir,
    /// Remove, Rename, Truncate, as in [`crate::raw::METHODS`]).
    pub async fn files_call(&mut self, which: usize) {
        match which {
            0 => {
                let req = pb::ListRequest {
                    path: self.any_path(),
                    recursive: self.g.chance(0.5),
                    page_size: self.g.u32(),
                    page_token: if self.g.chance(0.7) {
                        String::new()
                    } else {
                        self.g.string()
                    },
                };
                send!(self, "Files/List", files.list(req));
            }
            1 => {
                let path = self.any_path();
                send!(
                    self,
                    "Files/StatPath",
                    files.stat_path(pb::StatPathRequest { path })
                );
            }
            2 => {
                let req = pb::MakeDirRequest {
                    path: self.own_path(),
                    parents: self.g.chance(0.6),
                };
                send!(self, "Files/MakeDir", files.make_dir(req));
            }
            3 => {
                let req = pb::RemoveRequest {
                    path: self.own_path(),
                    recursive: self.g.chance(0.5),
                };
                send!(self, "Files/Remove", files.remove(req));
            }
            4 => {
                let req = pb::RenameRequest {
                    from: self.own_path(),
                    to: self.own_path(),
                    replace: self.g.chance(0.5),
                };
                send!(self, "Files/Rename", files.rename(req));
            }
            _ => {
                // Around the mapping limit, and every extreme (a size over
                // it is QUOTA_EXCEEDED, so no disk fills).
                let size = match self.g.below(3) {
                    0 => self.g.uint(self.page),
                    1 => MAPPING_LIMIT
                        .saturating_add(self.g.uint(2))
                        .saturating_sub(1),
                    _ => self.g.bits(),
                };
                let req = pb::TruncateRequest {
                    path: self.own_path(),
                    size,
                    create: self.g.chance(0.5),
                    keep_existing: self.g.chance(0.3),
                };
                send!(self, "Files/Truncate", files.truncate(req));
            }
        }
    }
}
