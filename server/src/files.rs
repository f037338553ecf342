//! The gRPC adapter for `mmapd.v1.Files`: each call converts its request,
//! runs the registry's Files call off the async workers (a recursive
//! listing or removal can take a while on a slow disk), and converts the
//! answer back. The semantics live in `registry::files` and `paths::tree`.
#![forbid(unsafe_code)]

use std::sync::Arc;

use mmapd::pb::{self, files_server::Files};
use tonic::{Request, Response, Status};

use crate::{
    access::Caller,
    error::Result,
    layers::split,
    paths::{Create, Kind},
    registry::{FileInfo, Registry},
    service::blocking,
};

/// The `Files` service.
#[derive(Debug, Clone)]
pub struct FilesService {
    registry: Arc<Registry>,
}

impl FilesService {
    /// A service over a registry's root.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

fn kind_to_pb(kind: Kind) -> pb::FileKind {
    match kind {
        Kind::File => pb::FileKind::File,
        Kind::Dir => pb::FileKind::Dir,
        Kind::Symlink => pb::FileKind::Symlink,
        Kind::Other => pb::FileKind::Other,
    }
}

fn entry_to_pb(info: FileInfo) -> pb::FileEntry {
    let e = info.entry;
    pb::FileEntry {
        path: e.path,
        kind: kind_to_pb(e.kind).into(),
        size: e.size,
        mtime: Some(prost_types::Timestamp {
            seconds: e.mtime.0,
            nanos: e.mtime.1 as i32,
        }),
        mapped: info.mapped,
        mode: e.mode,
        symlink_target: e.target.unwrap_or_default(),
    }
}

type Reply<T> = Result<Response<T>, Status>;

impl FilesService {
    /// Runs one call: the caller and request out of the gRPC request, the
    /// registry's call off the async workers, the answer converted back.
    async fn call<R: Send + 'static, T: Send + 'static, P>(
        &self,
        req: Request<R>,
        call: impl FnOnce(&Registry, &Caller, R) -> Result<T> + Send + 'static,
        reply: impl FnOnce(T) -> P,
    ) -> Reply<P> {
        let (caller, req) = split(req)?;
        let registry = Arc::clone(&self.registry);
        let answer = blocking(move || call(&registry, &caller, req)).await?;
        Ok(Response::new(reply(answer)))
    }
}

#[tonic::async_trait]
impl Files for FilesService {
    async fn list(&self, req: Request<pb::ListRequest>) -> Reply<pb::ListResponse> {
        self.call(
            req,
            |registry, caller, req| {
                registry.list_files(
                    caller,
                    &req.path,
                    req.recursive,
                    req.page_size,
                    &req.page_token,
                )
            },
            |page| pb::ListResponse {
                entries: page.entries.into_iter().map(entry_to_pb).collect(),
                next_page_token: page.next_token,
            },
        )
        .await
    }

    async fn stat_path(&self, req: Request<pb::StatPathRequest>) -> Reply<pb::FileEntry> {
        self.call(
            req,
            |registry, caller, req| registry.stat_path(caller, &req.path),
            entry_to_pb,
        )
        .await
    }

    async fn make_dir(&self, req: Request<pb::MakeDirRequest>) -> Reply<pb::MakeDirResponse> {
        self.call(
            req,
            |registry, caller, req| registry.make_dir(caller, &req.path, req.parents),
            |created| pb::MakeDirResponse { created },
        )
        .await
    }

    async fn remove(&self, req: Request<pb::RemoveRequest>) -> Reply<pb::RemoveResponse> {
        self.call(
            req,
            |registry, caller, req| registry.remove_path(caller, &req.path, req.recursive),
            |removed| pb::RemoveResponse { removed },
        )
        .await
    }

    async fn rename(&self, req: Request<pb::RenameRequest>) -> Reply<pb::RenameResponse> {
        self.call(
            req,
            |registry, caller, req| registry.rename_path(caller, &req.from, &req.to, req.replace),
            |()| pb::RenameResponse {},
        )
        .await
    }

    async fn truncate(&self, req: Request<pb::TruncateRequest>) -> Reply<pb::FileEntry> {
        self.call(
            req,
            |registry, caller, req| {
                let create = match (req.create, req.keep_existing) {
                    (false, _) => Create::Never,
                    (true, false) => Create::IfMissing,
                    (true, true) => Create::OnlyNew,
                };
                registry.truncate_path(caller, &req.path, req.size, create)
            },
            entry_to_pb,
        )
        .await
    }
}
