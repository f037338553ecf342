//! The gRPC adapter for `mmapd.v1.Admin`: server facts and introspection.
#![forbid(unsafe_code)]

use std::{sync::Arc, time::Duration};

use mmapd::pb::{self, admin_server::Admin};
use tonic::{Request, Response, Status};

use crate::{
    Limits, convert::access_to_pb, layers::split, mem, net::Connections, registry::Registry,
};

/// The `Admin` service.
#[derive(Debug, Clone)]
pub struct AdminService {
    registry: Arc<Registry>,
    limits: Limits,
    shutdown_grace: Duration,
    connections: Arc<Connections>,
}

impl AdminService {
    /// A service over a registry.
    pub fn new(registry: Arc<Registry>, limits: Limits, shutdown_grace: Duration) -> Self {
        Self {
            registry,
            limits,
            shutdown_grace,
            connections: Arc::default(),
        }
    }

    /// Reports `connections`' live count in `GetServerInfo`.
    pub fn with_connections(mut self, connections: Arc<Connections>) -> Self {
        self.connections = connections;
        self
    }
}

/// Every limit, as `GetServerInfo` reports it.
fn limits_to_pb(l: &Limits, shutdown_grace: Duration) -> pb::ServerLimits {
    let secs = |d: Duration| d.as_secs().min(u32::MAX.into()) as u32;
    pb::ServerLimits {
        max_anonymous_bytes: l.max_anonymous_bytes,
        max_mapping_length: l.max_mapping_length,
        max_sessions: l.max_sessions,
        max_handles_per_session: l.max_handles_per_session,
        max_mappings: l.max_mappings,
        max_map_areas: l.max_map_areas,
        max_name_length: l.max_name_length,
        max_client_name_length: l.max_client_name_length,
        max_path_length: l.max_path_length,
        max_inflight_bytes: l.max_inflight_bytes,
        max_streams_per_connection: l.max_streams_per_connection,
        max_stream_buffer_bytes: l.max_stream_buffer_bytes,
        max_connections: l.max_connections,
        idle_timeout_seconds: secs(l.idle_timeout),
        keepalive_interval_seconds: secs(l.keepalive_interval),
        keepalive_timeout_seconds: secs(l.keepalive_timeout),
        max_page_size: l.max_page_size,
        shutdown_grace_seconds: secs(shutdown_grace),
        max_tree_depth: l.max_tree_depth,
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
            sessions: self.registry.session_count(),
            mappings: self.registry.mapping_count(),
            limits: Some(limits_to_pb(&self.limits, self.shutdown_grace)),
            anonymous_bytes: self.registry.anonymous_bytes(),
            connections: self.connections.live() as u32,
        }))
    }

    async fn list_sessions(
        &self,
        req: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let (caller, req) = split(req)?;
        let page = self
            .registry
            .sessions_page(req.page_size, &req.page_token, &caller)?;
        let sessions = page
            .rows
            .into_iter()
            .map(|s| pb::SessionInfo {
                session_id: s.id,
                client_name: s.client_name,
                ttl_seconds: s.ttl.as_secs() as u32,
                handles: s.handles,
            })
            .collect();
        Ok(Response::new(pb::ListSessionsResponse {
            sessions,
            next_page_token: page.next_token,
        }))
    }

    async fn list_mappings(
        &self,
        req: Request<pb::ListMappingsRequest>,
    ) -> Result<Response<pb::ListMappingsResponse>, Status> {
        let (caller, req) = split(req)?;
        let page = self
            .registry
            .mappings_page(req.page_size, &req.page_token, &caller)?;
        let mappings = page
            .rows
            .into_iter()
            .map(|m| pb::MappingInfo {
                name: m.name,
                path: m.path,
                length: m.length,
                access: access_to_pb(m.access),
                handles: m.handles,
            })
            .collect();
        Ok(Response::new(pb::ListMappingsResponse {
            mappings,
            next_page_token: page.next_token,
        }))
    }
}
