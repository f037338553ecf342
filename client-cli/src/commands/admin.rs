//! Administration: `info` (server facts and health), `sessions` and
//! `mappings` (the live registry, as tables or JSON lines).

use mmapd::{Access, pb};
use serde::Serialize;

use super::Ctx;
use crate::{
    error::{CliError, Result},
    output::{align, human_bytes},
};

/// `info` as JSON.
#[derive(Debug, Serialize)]
struct Info {
    endpoint: String,
    serving: bool,
    version: String,
    page_size: u64,
    allocation_granularity: u64,
    default_chunk_size: u64,
    max_chunk_size: u64,
    max_message_size: u64,
    default_ttl_seconds: u32,
    sessions: u32,
    mappings: u32,
    anonymous_bytes: u64,
    connections: u32,
    limits: Limits,
}

/// The server's limits, as `info -o json` prints them.
#[derive(Debug, Serialize)]
struct Limits {
    max_anonymous_bytes: u64,
    max_mapping_length: u64,
    max_sessions: u32,
    max_handles_per_session: u32,
    max_mappings: u32,
    max_map_areas: u32,
    max_name_length: u32,
    max_client_name_length: u32,
    max_path_length: u32,
    max_inflight_bytes: u64,
    max_streams_per_connection: u32,
    max_stream_buffer_bytes: u64,
    max_connections: u32,
    idle_timeout_seconds: u32,
    keepalive_interval_seconds: u32,
    keepalive_timeout_seconds: u32,
    max_page_size: u32,
    shutdown_grace_seconds: u32,
}

impl From<pb::ServerLimits> for Limits {
    fn from(l: pb::ServerLimits) -> Self {
        Limits {
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
            idle_timeout_seconds: l.idle_timeout_seconds,
            keepalive_interval_seconds: l.keepalive_interval_seconds,
            keepalive_timeout_seconds: l.keepalive_timeout_seconds,
            max_page_size: l.max_page_size,
            shutdown_grace_seconds: l.shutdown_grace_seconds,
        }
    }
}

/// `info`: `GetServerInfo` plus the standard health check; fails (exit 1)
/// when the server does not report SERVING, so it works as a health probe.
pub async fn info(ctx: &Ctx) -> Result<()> {
    let client = ctx.connect().await?;
    let serving = client.health("").await?;
    let server = client.server_info().await?;
    let info = Info {
        endpoint: ctx.endpoint.clone(),
        serving,
        version: server.version,
        page_size: server.page_size,
        allocation_granularity: server.allocation_granularity,
        default_chunk_size: server.default_chunk_size,
        max_chunk_size: server.max_chunk_size,
        max_message_size: server.max_message_size,
        default_ttl_seconds: server.default_ttl_seconds,
        sessions: server.sessions,
        mappings: server.mappings,
        anonymous_bytes: server.anonymous_bytes,
        connections: server.connections,
        limits: server.limits.unwrap_or_default().into(),
    };
    ctx.out.result(&info, || {
        let health = if info.serving {
            "SERVING"
        } else {
            "NOT_SERVING"
        };
        let rows = [
            ("endpoint", info.endpoint.clone()),
            ("health", health.to_owned()),
            ("version", info.version.clone()),
            ("page size", human_bytes(info.page_size)),
            (
                "allocation granularity",
                human_bytes(info.allocation_granularity),
            ),
            ("stream chunk", human_bytes(info.default_chunk_size)),
            ("max stream chunk", human_bytes(info.max_chunk_size)),
            ("max message", human_bytes(info.max_message_size)),
            (
                "default session ttl",
                format!("{}s", info.default_ttl_seconds),
            ),
            ("live sessions", info.sessions.to_string()),
            ("live mappings", info.mappings.to_string()),
            ("anonymous bytes", human_bytes(info.anonymous_bytes)),
            ("connections", info.connections.to_string()),
        ];
        let l = &info.limits;
        let limits = [
            ("max anonymous bytes", human_bytes(l.max_anonymous_bytes)),
            ("max mapping length", human_bytes(l.max_mapping_length)),
            ("max sessions", l.max_sessions.to_string()),
            ("max handles/session", l.max_handles_per_session.to_string()),
            ("max mappings", l.max_mappings.to_string()),
            ("max map areas", l.max_map_areas.to_string()),
            ("max name length", l.max_name_length.to_string()),
            ("max client name", l.max_client_name_length.to_string()),
            ("max path length", l.max_path_length.to_string()),
            ("max in-flight bytes", human_bytes(l.max_inflight_bytes)),
            ("max streams/conn", l.max_streams_per_connection.to_string()),
            ("max stream buffers", human_bytes(l.max_stream_buffer_bytes)),
            ("max connections", l.max_connections.to_string()),
            ("idle timeout", format!("{}s", l.idle_timeout_seconds)),
            (
                "keepalive",
                format!(
                    "{}s (timeout {}s)",
                    l.keepalive_interval_seconds, l.keepalive_timeout_seconds
                ),
            ),
            ("max page size", l.max_page_size.to_string()),
            ("shutdown grace", format!("{}s", l.shutdown_grace_seconds)),
        ];
        let rows = rows.into_iter().chain(limits);
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|(key, value)| vec![key.to_owned(), value])
            .collect();
        align(&rows)
    })?;
    if serving {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "the server at {} is not serving (health check: NOT_SERVING)",
            ctx.endpoint
        )))
    }
}

/// `health` as JSON.
#[derive(Debug, Serialize)]
struct Health {
    endpoint: String,
    service: String,
    serving: bool,
}

/// `health`: only the standard gRPC health check, which needs no
/// credential even under an access file, so it suits container and
/// orchestrator probes where `info` (an Admin call) would be refused.
pub async fn health(ctx: &Ctx, service: String) -> Result<()> {
    let client = ctx.connect().await?;
    let serving = client.health(&service).await?;
    let health = Health {
        endpoint: ctx.endpoint.clone(),
        service,
        serving,
    };
    let status = if serving { "SERVING" } else { "NOT_SERVING" };
    ctx.out.result(&health, || status.to_owned())?;
    if serving {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "the server at {} is not serving (health check: NOT_SERVING)",
            ctx.endpoint
        )))
    }
}

/// One session, as JSON.
#[derive(Debug, Serialize)]
struct SessionRow {
    session_id: String,
    client_name: String,
    ttl_seconds: u32,
    handles: u32,
}

/// `sessions`: every live session.
pub async fn sessions(ctx: &Ctx) -> Result<()> {
    let sessions: Vec<SessionRow> = ctx
        .connect()
        .await?
        .list_sessions()
        .await?
        .into_iter()
        .map(|s| SessionRow {
            session_id: s.session_id,
            client_name: s.client_name,
            ttl_seconds: s.ttl_seconds,
            handles: s.handles,
        })
        .collect();
    ctx.out.table(
        &sessions,
        &["SESSION", "CLIENT", "TTL", "HANDLES"],
        |s| {
            vec![
                s.session_id.clone(),
                s.client_name.clone(),
                format!("{}s", s.ttl_seconds),
                s.handles.to_string(),
            ]
        },
        "no live sessions",
    )
}

/// One mapping, as JSON.
#[derive(Debug, Serialize)]
struct MappingRow {
    name: String,
    /// Empty for anonymous regions.
    path: String,
    length: u64,
    /// `read`, `write`, `copy` or `default`, as `--access` spells them.
    access: &'static str,
    handles: u32,
}

/// `mappings`: every live mapping.
pub async fn mappings(ctx: &Ctx) -> Result<()> {
    let mappings: Vec<MappingRow> = ctx
        .connect()
        .await?
        .list_mappings()
        .await?
        .into_iter()
        .map(|m: pb::MappingInfo| MappingRow {
            access: access_name(m.access()),
            name: m.name,
            path: m.path,
            length: m.length,
            handles: m.handles,
        })
        .collect();
    ctx.out.table(
        &mappings,
        &["NAME", "PATH", "LENGTH", "ACCESS", "HANDLES"],
        |m| {
            let path = if m.path.is_empty() {
                "(anonymous)".to_owned()
            } else {
                m.path.clone()
            };
            vec![
                m.name.clone(),
                path,
                m.length.to_string(),
                m.access.to_owned(),
                m.handles.to_string(),
            ]
        },
        "no live mappings",
    )
}

/// The `--access` spelling of an access mode.
pub fn access_name(access: Access) -> &'static str {
    match access {
        Access::Default => "default",
        Access::Read => "read",
        Access::Write => "write",
        Access::Copy => "copy",
    }
}
