//! The gRPC adapter for `mmapd.v1.Admin`: server facts and introspection.
#![forbid(unsafe_code)]

use std::sync::Arc;

use mmapd::pb::{self, admin_server::Admin};
use tonic::{Request, Response, Status};

use crate::{Limits, convert::access_to_pb, mem, registry::Registry};

/// The `Admin` service.
#[derive(Debug, Clone)]
pub struct AdminService {
    registry: Arc<Registry>,
    limits: Limits,
}

impl AdminService {
    /// A service over a registry.
    pub fn new(registry: Arc<Registry>, limits: Limits) -> Self {
        Self { registry, limits }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn get_server_info(
        &self,
        _: Request<pb::GetServerInfoRequest>,
    ) -> Result<Response<pb::ServerInfo>, Status> {
        let page = mem::page_size() as u64;
        Ok(Response::new(pb::ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            page_size: page,
            allocation_granularity: page,
            default_chunk_size: self.limits.default_chunk as u64,
            max_chunk_size: self.limits.max_chunk as u64,
            max_message_size: self.limits.max_message_size as u64,
            default_ttl_seconds: self.registry.default_ttl().as_secs() as u32,
            sessions: self.registry.sessions().len() as u32,
            mappings: self.registry.mappings().len() as u32,
        }))
    }

    async fn list_sessions(
        &self,
        _: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let sessions = self
            .registry
            .sessions()
            .into_iter()
            .map(|s| pb::SessionInfo {
                session_id: s.id,
                client_name: s.client_name,
                ttl_seconds: s.ttl.as_secs() as u32,
                handles: s.handles,
            })
            .collect();
        Ok(Response::new(pb::ListSessionsResponse { sessions }))
    }

    async fn list_mappings(
        &self,
        _: Request<pb::ListMappingsRequest>,
    ) -> Result<Response<pb::ListMappingsResponse>, Status> {
        let mappings = self
            .registry
            .mappings()
            .into_iter()
            .map(|m| pb::MappingInfo {
                name: m.name,
                path: m.path,
                length: m.length,
                access: access_to_pb(m.access),
                handles: m.handles,
            })
            .collect();
        Ok(Response::new(pb::ListMappingsResponse { mappings }))
    }
}
