//! The calls of the `Files` service on [`Client`]: listing, describing,
//! making, removing, renaming and resizing files and folders beneath the
//! server's data root, with no session or mapping needed. Paths are
//! relative to the root; `""` is the root itself for [`Client::list`] and
//! [`Client::stat_path`]. Failures are [`Error::Status`] with the reasons
//! the server documents: `OS_ERROR` (metadata `errno`, `path` and the
//! Python `exception`), `PATH_ESCAPE`, and `MAPPING_BUSY` when a live
//! mapping uses the file.

use std::time::{Duration, SystemTime};

use crate::{
    client::{Client, Transport},
    error::{Error, unary},
    pb::{self, files_client::FilesClient},
};

impl Client {
    /// Every entry of the folder `path` (`""` for the root), or with
    /// `recursive` of the whole tree beneath it, in path order. Symlinks are
    /// listed, not followed. Fetched page by page; see
    /// [`Client::list_pages`] to take one page at a time.
    pub async fn list(&self, path: &str, recursive: bool) -> Result<Vec<pb::FileEntry>, Error> {
        let mut pages = self.list_pages(path, recursive);
        let mut entries = Vec::new();
        while let Some(page) = pages.next_page().await? {
            entries.extend(page);
        }
        Ok(entries)
    }

    /// The entries of `path` as [`ListPages`], fetched one page per
    /// [`ListPages::next_page`].
    pub fn list_pages(&self, path: &str, recursive: bool) -> ListPages {
        ListPages {
            stub: self.files.clone(),
            path: path.to_owned(),
            recursive,
            page_size: 0,
            next: Some(String::new()),
        }
    }

    /// One entry: `os.stat`, so a symlink inside the root is followed.
    pub async fn stat_path(&self, path: &str) -> Result<pb::FileEntry, Error> {
        let request = pb::StatPathRequest {
            path: path.to_owned(),
        };
        unary(self.files.clone().stat_path(request).await)
    }

    /// Makes the folder `path` (`os.mkdir`); with `parents`, its missing
    /// parents too, accepting an existing folder (`os.makedirs(exist_ok=True)`).
    /// Returns whether the folder was made.
    pub async fn make_dir(&self, path: &str, parents: bool) -> Result<bool, Error> {
        let request = pb::MakeDirRequest {
            path: path.to_owned(),
            parents,
        };
        Ok(unary(self.files.clone().make_dir(request).await)?.created)
    }

    /// Removes a file, a symlink or an empty folder; with `recursive`, a
    /// folder and everything beneath it. Returns how many entries were
    /// removed, `path` included.
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<u64, Error> {
        let request = pb::RemoveRequest {
            path: path.to_owned(),
            recursive,
        };
        Ok(unary(self.files.clone().remove(request).await)?.removed)
    }

    /// Renames `from` to `to`: `os.rename`, where an existing `to` is
    /// FileExistsError, or with `replace` `os.replace`.
    pub async fn rename(&self, from: &str, to: &str, replace: bool) -> Result<(), Error> {
        let request = pb::RenameRequest {
            from: from.to_owned(),
            to: to.to_owned(),
            replace,
        };
        unary(self.files.clone().rename(request).await).map(drop)
    }

    /// Sets the size of the file `path` (`os.truncate`); with `create`, a
    /// missing file (and its missing folders) is made first, so a `size` of
    /// 0 makes an empty file. Returns the file's entry afterwards.
    pub async fn truncate(
        &self,
        path: &str,
        size: u64,
        create: bool,
    ) -> Result<pb::FileEntry, Error> {
        let request = pb::TruncateRequest {
            path: path.to_owned(),
            size,
            create,
            keep_existing: false,
        };
        unary(self.files.clone().truncate(request).await)
    }

    /// Makes `path` an empty file (and its missing folders) if it does not
    /// exist; an existing file is left as it is, in one call, so a file
    /// another client made a moment ago is never cut (`open(O_CREAT)`).
    /// Returns the file's entry.
    pub async fn touch(&self, path: &str) -> Result<pb::FileEntry, Error> {
        let request = pb::TruncateRequest {
            path: path.to_owned(),
            size: 0,
            create: true,
            keep_existing: true,
        };
        unary(self.files.clone().truncate(request).await)
    }
}

/// The pages of one `List`, from [`Client::list_pages`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ListPages {
    stub: FilesClient<Transport>,
    path: String,
    recursive: bool,
    page_size: u32,
    /// The token of the next page; `None` once the last page was returned.
    next: Option<String>,
}

impl ListPages {
    /// Entries per page; 0 (the default) or more than the server's
    /// `max_page_size` means `max_page_size`.
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size;
        self
    }

    /// The next page, or `None` after the last one. A folder with no
    /// entries is one empty page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<pb::FileEntry>>, Error> {
        // The token stays until its page has arrived, so a failed call can
        // be retried instead of reading as the end.
        let Some(sent) = self.next.clone() else {
            return Ok(None);
        };
        let request = pb::ListRequest {
            path: self.path.clone(),
            recursive: self.recursive,
            page_size: self.page_size,
            page_token: sent.clone(),
        };
        let page = unary(self.stub.list(request).await)?;
        if page.next_page_token.is_empty() {
            self.next = None;
            return Ok(Some(page.entries));
        }
        // A token that does not move on would loop forever.
        if page.next_page_token == sent {
            return Err(Error::Protocol(format!(
                "List of {:?} returned its page token {sent:?} again",
                self.path
            )));
        }
        self.next = Some(page.next_page_token);
        Ok(Some(page.entries))
    }
}

impl pb::FileEntry {
    /// `mtime` as a `SystemTime`; `None` if the server sent none or it is
    /// out of range.
    pub fn modified(&self) -> Option<SystemTime> {
        let mtime = self.mtime.as_ref()?;
        let nanos = Duration::from_nanos(u64::try_from(mtime.nanos).ok()?);
        match u64::try_from(mtime.seconds) {
            Ok(secs) => SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_secs(secs))?
                .checked_add(nanos),
            // Before 1970: seconds is negative and nanos counts forward.
            Err(_) => SystemTime::UNIX_EPOCH
                .checked_sub(Duration::from_secs(mtime.seconds.unsigned_abs()))?
                .checked_add(nanos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_converts_the_timestamp() {
        let mut entry = pb::FileEntry::default();
        assert_eq!(entry.modified(), None);
        entry.mtime = Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        });
        assert_eq!(
            entry.modified(),
            Some(SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5))
        );
        entry.mtime = Some(prost_types::Timestamp {
            seconds: -2,
            nanos: 500_000_000,
        });
        assert_eq!(
            entry.modified(),
            Some(SystemTime::UNIX_EPOCH - Duration::from_millis(1500))
        );
        entry.mtime = Some(prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        });
        assert_eq!(entry.modified(), None);
    }
}
