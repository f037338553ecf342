//! Validates the deployment files in `deploy/`: the Dockerfile, the Kubernetes
//! manifest, and the systemd unit with its env file.
//!
//! Each file is parsed (YAML with `serde_norway`, the Dockerfile and the unit
//! with small line parsers below) and checked for the properties the deploy
//! docs promise, and the files are checked against each other (data root,
//! port, uid). `checks_catch_broken_deploy_files` breaks the real files one
//! property at a time and asserts that the checks notice, so no check can
//! silently pass. Where `systemd-analyze` is on PATH the unit is also run
//! through `systemd-analyze verify` and `security --offline`.

use std::{
    collections::BTreeSet,
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
};

use serde::Deserialize;
use serde_json::Value;

/// The environment variables `mmapd` reads; any other `MMAPD_*` name in a
/// deploy file is a typo that the server would silently ignore.
/// Every `MMAPD_*` variable the `mmapd` binary reads, taken from its flag
/// definitions so a new flag needs no second list here.
fn known_mmapd_env() -> Vec<String> {
    let main = std::fs::read_to_string(repo_path("server/src/main.rs")).expect("server main.rs");
    main.split("env = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|name| name.starts_with("MMAPD_"))
        .map(str::to_owned)
        .collect()
}

/// Seconds of `--shutdown-grace` when no variable sets it (main.rs default).
const DEFAULT_SHUTDOWN_GRACE: u64 = 20;
/// Time the final flush of every mapping may take after the grace period.
const FLUSH_ALLOWANCE: u64 = 30;

/// gRPC health service names the server registers.
const HEALTH_SERVICES: &[&str] = &["", "mmapd.v1.Mmap"];

const DOCKERFILE: &str = "deploy/Dockerfile";
const K8S: &str = "deploy/kubernetes/mmapd.yaml";
const UNIT: &str = "deploy/systemd/mmapd.service";
const ENV_FILE: &str = "deploy/systemd/mmapd.env";

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Files {
    dockerfile: String,
    k8s: String,
    unit: String,
    env: String,
}

#[derive(Clone, Copy, Debug)]
enum Which {
    Dockerfile,
    K8s,
    Unit,
    Env,
}

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    let path = repo_path(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn load() -> Files {
    Files {
        dockerfile: read(DOCKERFILE),
        k8s: read(K8S),
        unit: read(UNIT),
        env: read(ENV_FILE),
    }
}

impl Files {
    fn get_mut(&mut self, which: Which) -> &mut String {
        match which {
            Which::Dockerfile => &mut self.dockerfile,
            Which::K8s => &mut self.k8s,
            Which::Unit => &mut self.unit,
            Which::Env => &mut self.env,
        }
    }
}

/// Collects every failed property instead of stopping at the first, so one
/// run reports everything that is wrong.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn ensure(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.0.push(msg());
        }
    }
    fn push(&mut self, msg: String) {
        self.0.push(msg);
    }
}

// ---------------------------------------------------------------------------
// Small parsers
// ---------------------------------------------------------------------------

/// One Dockerfile instruction with its continuation lines joined.
#[derive(Debug)]
struct Instr {
    cmd: String,
    args: String,
}

#[derive(Debug)]
struct Stage {
    image: String,
    name: Option<String>,
    instrs: Vec<Instr>,
}

/// Splits a Dockerfile into global ARGs and stages. Comment lines (including
/// parser directives) are dropped, also inside continuations, as Docker does.
fn parse_dockerfile(text: &str) -> (Vec<Instr>, Vec<Stage>) {
    let mut instrs = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        let (cmd, args) = cur.split_once(char::is_whitespace).unwrap_or((&cur, ""));
        instrs.push(Instr {
            cmd: cmd.to_ascii_uppercase(),
            args: args.trim().to_string(),
        });
        cur.clear();
    }

    let mut global = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for ins in instrs {
        if ins.cmd == "FROM" {
            let words: Vec<&str> = ins
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let image = words.first().copied().unwrap_or_default().to_string();
            let name = match words.as_slice() {
                [_, as_kw, name, ..] if as_kw.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => None,
            };
            let image = substitute_args(&image, &global);
            stages.push(Stage {
                image,
                name,
                instrs: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instrs.push(ins);
        } else {
            global.push(ins);
        }
    }
    (global, stages)
}

/// The instructions named `cmd` in `stage`, in order.
fn instrs<'a>(stage: &'a Stage, cmd: &'a str) -> impl Iterator<Item = &'a Instr> {
    stage.instrs.iter().filter(move |i| i.cmd == cmd)
}

/// `KEY=VALUE` pairs of ENV/ARG instructions (also the legacy `ENV KEY VALUE`).
fn key_values(args: &str) -> Vec<(String, String)> {
    let unquote = |s: &str| s.trim_matches('"').to_string();
    let words: Vec<&str> = args.split_whitespace().collect();
    match words.first() {
        Some(first) if !first.contains('=') => {
            vec![(first.to_string(), unquote(&words[1..].join(" ")))]
        }
        _ => words
            .iter()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), unquote(v)))
            .collect(),
    }
}

/// Replaces `${NAME}` / `$NAME` with the defaults of the global ARGs.
fn substitute_args(s: &str, global: &[Instr]) -> String {
    let mut out = s.to_string();
    for ins in global.iter().filter(|i| i.cmd == "ARG") {
        for (k, v) in key_values(&ins.args) {
            out = out
                .replace(&format!("${{{k}}}"), &v)
                .replace(&format!("${k}"), &v);
        }
    }
    out
}

/// An exec-form (`["a", "b"]`) or shell-form argument list.
fn command_words(args: &str) -> Vec<String> {
    let args = args.trim();
    if args.starts_with('[') {
        serde_json::from_str::<Vec<String>>(args).unwrap_or_default()
    } else {
        args.split_whitespace().map(str::to_string).collect()
    }
}

/// systemd unit file: `(section, key, value)` in file order.
struct Unit(Vec<(String, String, String)>);

fn parse_unit(text: &str) -> Unit {
    let mut entries = Vec::new();
    let mut section = String::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#') || t.starts_with(';')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        if cur.starts_with('[') && cur.ends_with(']') {
            section = cur[1..cur.len() - 1].to_string();
        } else if let Some((k, v)) = cur.split_once('=') {
            entries.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
        }
        cur.clear();
    }
    Unit(entries)
}

impl Unit {
    /// The effective list for `key`: systemd appends repeated assignments and
    /// an empty assignment resets the list. `None` when the key is absent.
    fn list(&self, section: &str, key: &str) -> Option<Vec<String>> {
        let mut found = false;
        let mut items = Vec::new();
        for (s, k, v) in &self.0 {
            if s == section && k == key {
                found = true;
                if v.is_empty() {
                    items.clear();
                } else {
                    items.extend(v.split_whitespace().map(str::to_string));
                }
            }
        }
        found.then_some(items)
    }

    fn last(&self, section: &str, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
    }

    fn is_true(&self, section: &str, key: &str) -> bool {
        self.last(section, key)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true" | "on" | "1"))
    }
}

/// `KEY=VALUE` lines of an EnvironmentFile.
fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

fn env_lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn listen_port(addr: &str) -> Option<u16> {
    addr.parse::<SocketAddr>().ok().map(|a| a.port())
}

/// The grace a deploy file gives mmapd: its variable, else the default.
fn shutdown_grace(value: Option<&str>) -> u64 {
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SHUTDOWN_GRACE)
}

/// Whether a boolish value (as clap's BoolishValueParser reads it) is true.
fn truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "y" | "on"
        )
    })
}

/// mmapd's protected mode: a non-loopback listen needs an access file or
/// client-certificate auth, unless insecure. `Err` says what is missing.
fn protected_mode_allows(env: &[(String, String)], listen: Option<&str>) -> Result<(), String> {
    let Some(addr) = listen.and_then(|l| l.parse::<SocketAddr>().ok()) else {
        return Ok(());
    };
    let authenticated = env_lookup(env, "MMAPD_ACCESS_FILE").is_some_and(|v| !v.is_empty())
        || env_lookup(env, "MMAPD_TLS_CLIENT_CA").is_some_and(|v| !v.is_empty());
    if addr.ip().is_loopback() || authenticated || truthy(env_lookup(env, "MMAPD_INSECURE")) {
        Ok(())
    } else {
        Err(format!(
            "protected mode: mmapd refuses to listen on {addr} without MMAPD_ACCESS_FILE or MMAPD_TLS_CLIENT_CA (or MMAPD_INSECURE=1)"
        ))
    }
}

fn unknown_mmapd_vars<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let known = known_mmapd_env();
    names
        .into_iter()
        .filter(|n| n.starts_with("MMAPD_") && !known.iter().any(|k| k == n))
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// What the Dockerfile establishes, for the cross-file checks.
#[derive(Default)]
struct ImageFacts {
    root: Option<String>,
    listen: Option<String>,
    uid: Option<u32>,
    /// The image sets MMAPD_INSECURE=1, which containers inherit.
    insecure: bool,
}

fn check_dockerfile(text: &str, p: &mut Problems) -> ImageFacts {
    let mut facts = ImageFacts::default();
    let (_global, stages) = parse_dockerfile(text);
    p.ensure(stages.len() >= 2, || {
        format!(
            "Dockerfile: expected a multi-stage build (>= 2 FROM), found {}",
            stages.len()
        )
    });
    let Some(last) = stages.last() else {
        p.push("Dockerfile: no FROM instruction".into());
        return facts;
    };
    let earlier = &stages[..stages.len() - 1];
    p.ensure(
        earlier.iter().all(|s| s.image != last.image) && !last.image.starts_with("rust"),
        || {
            format!(
                "Dockerfile: the runtime stage must not be the toolchain image (FROM {})",
                last.image
            )
        },
    );

    // Binaries come from a build stage.
    let copied: Vec<String> = instrs(last, "COPY")
        .filter(|i| {
            i.args.split_whitespace().any(|w| {
                w.strip_prefix("--from=")
                    .is_some_and(|from| earlier.iter().any(|s| s.name.as_deref() == Some(from)))
            })
        })
        .flat_map(|i| command_words(&i.args))
        .collect();
    for bin in ["mmapd", "mmapctl"] {
        p.ensure(
            copied.iter().any(|w| w.rsplit('/').next() == Some(bin)),
            || format!("Dockerfile: the runtime stage does not COPY --from=<build stage> `{bin}`"),
        );
    }

    // ENV of the runtime stage.
    let env: Vec<(String, String)> = instrs(last, "ENV")
        .flat_map(|i| key_values(&i.args))
        .collect();
    facts.root = env_lookup(&env, "MMAPD_ROOT").map(str::to_string);
    facts.listen = env_lookup(&env, "MMAPD_LISTEN").map(str::to_string);
    p.ensure(facts.root.is_some(), || {
        "Dockerfile: runtime ENV must set MMAPD_ROOT".into()
    });
    let listen_port_docker = facts.listen.as_deref().and_then(listen_port);
    p.ensure(
        facts
            .listen
            .as_deref()
            .and_then(|l| l.parse::<SocketAddr>().ok())
            .is_some_and(|a| a.ip().is_unspecified()),
        || {
            format!(
                "Dockerfile: MMAPD_LISTEN must be a wildcard address reachable from outside the container, got {:?}",
                facts.listen
            )
        },
    );
    for name in unknown_mmapd_vars(env.iter().map(|(k, _)| k.as_str())) {
        p.push(format!("Dockerfile: ENV sets unknown variable {name}"));
    }
    // The default CMD must start: the wildcard listen needs access control
    // or an explicit MMAPD_INSECURE (documented in the Dockerfile).
    if let Err(why) = protected_mode_allows(&env, facts.listen.as_deref()) {
        p.push(format!(
            "Dockerfile: the default container would not start: {why}"
        ));
    }
    facts.insecure = truthy(env_lookup(&env, "MMAPD_INSECURE"));

    // VOLUME is the data root.
    let volumes: Vec<String> = instrs(last, "VOLUME")
        .flat_map(|i| command_words(&i.args))
        .collect();
    p.ensure(
        facts.root.as_ref().is_some_and(|r| {
            volumes
                .iter()
                .any(|v| v.trim_end_matches('/') == r.trim_end_matches('/'))
        }),
        || {
            format!(
                "Dockerfile: VOLUME {volumes:?} does not include MMAPD_ROOT {:?}",
                facts.root
            )
        },
    );

    // EXPOSE the listen port.
    let exposed: Vec<u16> = instrs(last, "EXPOSE")
        .flat_map(|i| command_words(&i.args))
        .filter_map(|w| w.split('/').next().and_then(|n| n.parse().ok()))
        .collect();
    p.ensure(
        listen_port_docker.is_some_and(|port| exposed.contains(&port)),
        || {
            format!(
                "Dockerfile: EXPOSE {exposed:?} does not include the MMAPD_LISTEN port {listen_port_docker:?}"
            )
        },
    );

    // Non-root USER, numeric so Kubernetes can verify runAsNonRoot.
    match instrs(last, "USER").last() {
        None => p.push("Dockerfile: the runtime stage has no USER (it would run as root)".into()),
        Some(user) => {
            let name = user.args.split(':').next().unwrap_or_default().trim();
            match name.parse::<u32>() {
                Ok(uid) => {
                    p.ensure(uid != 0, || "Dockerfile: USER is uid 0 (root)".into());
                    facts.uid = Some(uid);
                }
                Err(_) => p.push(format!(
                    "Dockerfile: USER {name:?} must be a numeric non-root uid (root by name is not allowed, and Kubernetes cannot verify names)"
                )),
            }
        }
    }

    // HEALTHCHECK uses `mmapctl ... health` against the listen port: health
    // needs no credential, while `info` calls the Admin service, which an
    // access file restricts.
    match instrs(last, "HEALTHCHECK").last() {
        None => p.push("Dockerfile: no HEALTHCHECK".into()),
        Some(hc) => {
            let cmd = hc
                .args
                .split_once("CMD")
                .map(|(_, rest)| command_words(rest))
                .unwrap_or_default();
            p.ensure(
                cmd.first()
                    .is_some_and(|c| c.rsplit('/').next() == Some("mmapctl"))
                    && cmd.iter().any(|w| w == "health"),
                || format!("Dockerfile: HEALTHCHECK must run `mmapctl ... health`, got {cmd:?}"),
            );
            let endpoint_port = cmd
                .iter()
                .position(|w| w == "--endpoint")
                .and_then(|i| cmd.get(i + 1))
                .and_then(|url| url.rsplit(':').next())
                .and_then(|port| port.trim_end_matches('/').parse::<u16>().ok());
            p.ensure(
                endpoint_port.is_some() && endpoint_port == listen_port_docker,
                || {
                    format!(
                        "Dockerfile: HEALTHCHECK --endpoint port {endpoint_port:?} differs from the MMAPD_LISTEN port {listen_port_docker:?}"
                    )
                },
            );
        }
    }

    let entrypoint = instrs(last, "ENTRYPOINT")
        .last()
        .map(|i| command_words(&i.args))
        .unwrap_or_default();
    p.ensure(
        entrypoint
            .first()
            .is_some_and(|c| c.rsplit('/').next() == Some("mmapd")),
        || format!("Dockerfile: ENTRYPOINT must be mmapd (exec form), got {entrypoint:?}"),
    );
    p.ensure(
        instrs(last, "STOPSIGNAL")
            .last()
            .is_none_or(|i| i.args == "SIGTERM" || i.args == "15"),
        || "Dockerfile: STOPSIGNAL must be SIGTERM (mmapd drains and flushes on it)".into(),
    );
    facts
}

fn get<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer).unwrap_or(&Value::Null)
}

fn parse_yaml_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| format!("invalid YAML: {e}"))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

fn check_kubernetes(text: &str, image: &ImageFacts, p: &mut Problems) {
    let docs = match parse_yaml_documents(text) {
        Ok(docs) => docs,
        Err(e) => {
            p.push(format!("kubernetes: {e}"));
            return;
        }
    };
    for (i, doc) in docs.iter().enumerate() {
        p.ensure(
            doc["apiVersion"].is_string()
                && doc["kind"].is_string()
                && doc["metadata"]["name"].is_string(),
            || format!("kubernetes: document {i} lacks apiVersion/kind/metadata.name"),
        );
    }
    let of_kind =
        |kind: &str| -> Vec<&Value> { docs.iter().filter(|d| d["kind"] == kind).collect() };
    let services = of_kind("Service");
    let sets = of_kind("StatefulSet");
    p.ensure(!services.is_empty(), || "kubernetes: no Service".into());
    let [sts] = sets.as_slice() else {
        p.push(format!(
            "kubernetes: expected exactly one StatefulSet, found {}",
            sets.len()
        ));
        return;
    };
    p.ensure(sts["apiVersion"] == "apps/v1", || {
        "kubernetes: StatefulSet apiVersion must be apps/v1".into()
    });

    let pod = get(sts, "/spec/template/spec");
    let labels = get(sts, "/spec/template/metadata/labels");
    let Some(container) = pod["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "mmapd").or(cs.first()))
    else {
        p.push("kubernetes: StatefulSet has no containers".into());
        return;
    };

    // Selector of the StatefulSet matches its own pods.
    let selector_matches = |sel: &Value| {
        sel.as_object()
            .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| &labels[k] == v))
    };
    p.ensure(
        selector_matches(get(sts, "/spec/selector/matchLabels")),
        || "kubernetes: StatefulSet selector does not match its pod labels".into(),
    );

    // Env: the effective data root and listen address.
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .collect();
    for name in unknown_mmapd_vars(env.iter().map(|(k, _)| k.as_str())) {
        p.push(format!("kubernetes: env sets unknown variable {name}"));
    }
    let root = env_lookup(&env, "MMAPD_ROOT").or(image.root.as_deref());
    let listen = env_lookup(&env, "MMAPD_LISTEN").or(image.listen.as_deref());
    p.ensure(env_lookup(&env, "MMAPD_LOG_FORMAT") == Some("json"), || {
        "kubernetes: env MMAPD_LOG_FORMAT must be json".into()
    });

    // The container port is the listen port.
    let ports = container["ports"].as_array().cloned().unwrap_or_default();
    let grpc_port = ports
        .iter()
        .find(|p| p["name"] == "grpc")
        .and_then(|p| p["containerPort"].as_u64());
    p.ensure(grpc_port.is_some(), || {
        "kubernetes: container has no port named grpc".into()
    });
    p.ensure(
        grpc_port.is_some() && grpc_port == listen.and_then(listen_port).map(u64::from),
        || format!("kubernetes: containerPort {grpc_port:?} differs from the MMAPD_LISTEN port ({listen:?})"),
    );

    // Services: port `grpc`, target the container port, select these pods,
    // and the StatefulSet's serviceName is a headless one among them.
    for svc in &services {
        let name = svc["metadata"]["name"].as_str().unwrap_or("?");
        p.ensure(selector_matches(get(svc, "/spec/selector")), || {
            format!("kubernetes: Service {name} selector does not match the StatefulSet's pods")
        });
        let svc_ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
        let grpc = svc_ports.iter().find(|sp| sp["name"] == "grpc");
        p.ensure(grpc.is_some(), || {
            format!("kubernetes: Service {name} has no port named grpc")
        });
        if let Some(sp) = grpc {
            let target = &sp["targetPort"];
            let target_ok = match target {
                Value::String(named) => ports.iter().any(|cp| {
                    cp["name"] == named.as_str() && cp["containerPort"].as_u64() == grpc_port
                }),
                Value::Number(n) => n.as_u64() == grpc_port,
                Value::Null => sp["port"].as_u64() == grpc_port,
                Value::Bool(_) | Value::Array(_) | Value::Object(_) => false,
            };
            p.ensure(target_ok, || {
                format!("kubernetes: Service {name} targetPort {target} does not reach the container's grpc port")
            });
        }
    }
    let service_name = sts["spec"]["serviceName"].as_str();
    p.ensure(
        services.iter().any(|s| {
            s["metadata"]["name"].as_str() == service_name && s["spec"]["clusterIP"] == "None"
        }),
        || {
            format!(
                "kubernetes: StatefulSet serviceName {service_name:?} must name a headless Service (clusterIP: None) in this file"
            )
        },
    );

    // The data root is a volumeClaimTemplate mounted at MMAPD_ROOT.
    let claims = sts["spec"]["volumeClaimTemplates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    p.ensure(!claims.is_empty(), || {
        "kubernetes: StatefulSet has no volumeClaimTemplates".into()
    });
    for claim in &claims {
        p.ensure(
            get(claim, "/spec/resources/requests/storage").is_string()
                && get(claim, "/spec/accessModes")
                    .as_array()
                    .is_some_and(|a| !a.is_empty()),
            || "kubernetes: volumeClaimTemplate needs accessModes and a storage request".into(),
        );
    }
    let claim_names: BTreeSet<&str> = claims
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .collect();
    let mounted_root = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| {
            m["name"].as_str().is_some_and(|n| claim_names.contains(n))
                && m["mountPath"].as_str().map(|s| s.trim_end_matches('/'))
                    == root.map(|r| r.trim_end_matches('/'))
        });
    p.ensure(root.is_some() && mounted_root, || {
        format!(
            "kubernetes: no volumeClaimTemplate is mounted at the data root MMAPD_ROOT={root:?}"
        )
    });

    // Probes on the container port. The kubelet's grpc probe speaks
    // plaintext only, so with TLS on they must be tcpSocket (or exec); a grpc
    // probe must ask for a health service the server registers.
    let tls = env_lookup(&env, "MMAPD_TLS_CERT").is_some();
    for (probe, required) in [
        ("livenessProbe", true),
        ("readinessProbe", true),
        ("startupProbe", false),
    ] {
        let pr = &container[probe];
        if pr.is_null() {
            p.ensure(!required, || format!("kubernetes: no {probe}"));
            continue;
        }
        let grpc = &pr["grpc"];
        let tcp = &pr["tcpSocket"];
        p.ensure(
            grpc.is_object() || tcp.is_object() || pr["exec"].is_object(),
            || format!("kubernetes: {probe} must use a grpc, tcpSocket or exec probe"),
        );
        if tls {
            p.ensure(grpc.is_null(), || {
                format!("kubernetes: {probe} is a grpc probe, but the kubelet's grpc probe speaks plaintext and the server serves TLS")
            });
        }
        for (kind, spec) in [("grpc", grpc), ("tcpSocket", tcp)] {
            if spec.is_null() {
                continue;
            }
            p.ensure(spec["port"].as_u64() == grpc_port, || {
                format!(
                    "kubernetes: {probe} {kind}.port {} is not the container port {grpc_port:?}",
                    spec["port"]
                )
            });
        }
        if grpc.is_object() {
            let service = grpc["service"].as_str().unwrap_or("");
            p.ensure(HEALTH_SERVICES.contains(&service), || {
                format!("kubernetes: {probe} asks for health service {service:?}, which mmapd does not register")
            });
        }
    }

    // Protected mode: the wildcard listen needs access control, and the
    // image's MMAPD_INSECURE=1 must be turned off so a lost access file
    // stops the pod instead of serving everyone.
    if let Err(why) = protected_mode_allows(&env, listen) {
        p.push(format!("kubernetes: the pod would not start: {why}"));
    }
    let insecure = match env_lookup(&env, "MMAPD_INSECURE") {
        Some(value) => truthy(Some(value)),
        None => image.insecure,
    };
    p.ensure(!insecure, || {
        "kubernetes: MMAPD_INSECURE must be \"0\" (the image sets 1): a cluster network is shared"
            .into()
    });

    // The access file and the TLS files come from Secrets mounted read-only.
    let secret_mounts: Vec<(String, String)> = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let volume = pod["volumes"]
                .as_array()?
                .iter()
                .find(|v| v["name"] == m["name"])?;
            let secret = volume["secret"]["secretName"].as_str()?;
            (m["readOnly"] == Value::Bool(true)).then(|| {
                (
                    m["mountPath"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_end_matches('/')
                        .to_owned(),
                    secret.to_owned(),
                )
            })
        })
        .collect();
    let from_secret = |path: Option<&str>| {
        path.and_then(|path| path.rsplit_once('/'))
            .is_some_and(|(dir, _)| secret_mounts.iter().any(|(mount, _)| mount == dir))
    };
    let access = env_lookup(&env, "MMAPD_ACCESS_FILE");
    p.ensure(from_secret(access), || {
        format!("kubernetes: MMAPD_ACCESS_FILE {access:?} is not in a read-only Secret volume")
    });
    for (var, file) in [("MMAPD_TLS_CERT", "tls.crt"), ("MMAPD_TLS_KEY", "tls.key")] {
        let path = env_lookup(&env, var);
        p.ensure(
            from_secret(path) && path.is_some_and(|p| p.ends_with(&format!("/{file}"))),
            || format!("kubernetes: TLS: {var} {path:?} must be {file} of a read-only kubernetes.io/tls Secret volume"),
        );
    }

    // A NetworkPolicy limits who reaches the pods' gRPC port.
    let policies = of_kind("NetworkPolicy");
    p.ensure(!policies.is_empty(), || {
        "kubernetes: no NetworkPolicy".into()
    });
    for policy in &policies {
        let name = policy["metadata"]["name"].as_str().unwrap_or("?");
        p.ensure(
            selector_matches(get(policy, "/spec/podSelector/matchLabels")),
            || format!("kubernetes: NetworkPolicy {name} podSelector does not select the StatefulSet's pods"),
        );
        p.ensure(
            get(policy, "/spec/policyTypes")
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "Ingress")),
            || format!("kubernetes: NetworkPolicy {name} must have policyTypes [Ingress]"),
        );
        let rules = get(policy, "/spec/ingress")
            .as_array()
            .cloned()
            .unwrap_or_default();
        p.ensure(
            !rules.is_empty()
                && rules.iter().all(|r| {
                    r["from"].as_array().is_some_and(|f| !f.is_empty())
                        && r["ports"].as_array().is_some_and(|ports| {
                            ports.iter().any(|port| {
                                port["port"].as_u64() == grpc_port || port["port"] == "grpc"
                            })
                        })
                }),
            || format!("kubernetes: NetworkPolicy {name} ingress rules must name their sources and the grpc port"),
        );
    }

    // Resources.
    let res = &container["resources"];
    for kind in ["requests", "limits"] {
        p.ensure(
            res[kind]
                .as_object()
                .is_some_and(|m| m.contains_key("memory")),
            || format!("kubernetes: container resources.{kind} must set memory"),
        );
    }
    p.ensure(
        res["requests"]
            .as_object()
            .is_some_and(|m| m.contains_key("cpu")),
        || "kubernetes: container resources.requests must set cpu".into(),
    );

    // Security context: a container setting overrides the pod's.
    let psc = &pod["securityContext"];
    let csc = &container["securityContext"];
    let effective = |k: &str| if csc[k].is_null() { &psc[k] } else { &csc[k] };
    p.ensure(effective("runAsNonRoot") == &Value::Bool(true), || {
        "kubernetes: runAsNonRoot must be true".into()
    });
    let uid = effective("runAsUser").as_u64();
    p.ensure(uid.is_some_and(|u| u != 0), || {
        format!("kubernetes: runAsUser must be a non-zero uid, got {uid:?}")
    });
    p.ensure(
        image.uid.is_none() || uid == image.uid.map(u64::from),
        || {
            format!(
                "kubernetes: runAsUser {uid:?} differs from the image's USER {:?}",
                image.uid
            )
        },
    );
    p.ensure(psc["fsGroup"].as_u64().is_some_and(|g| g != 0), || {
        "kubernetes: pod securityContext.fsGroup must be set (volume ownership)".into()
    });
    p.ensure(
        csc["allowPrivilegeEscalation"] == Value::Bool(false),
        || "kubernetes: allowPrivilegeEscalation must be false".into(),
    );
    p.ensure(csc["readOnlyRootFilesystem"] == Value::Bool(true), || {
        "kubernetes: readOnlyRootFilesystem must be true".into()
    });
    p.ensure(
        get(csc, "/capabilities/drop")
            .as_array()
            .is_some_and(|d| d.iter().any(|c| c == "ALL")),
        || "kubernetes: capabilities.drop must contain ALL".into(),
    );
    p.ensure(csc["privileged"] != Value::Bool(true), || {
        "kubernetes: container must not be privileged".into()
    });

    // Time to drain (the shutdown grace) and then flush on SIGTERM.
    let grace = pod["terminationGracePeriodSeconds"].as_u64();
    let needed = shutdown_grace(env_lookup(&env, "MMAPD_SHUTDOWN_GRACE")) + FLUSH_ALLOWANCE;
    p.ensure(grace.is_some_and(|g| g >= needed), || {
        format!("kubernetes: terminationGracePeriodSeconds must cover MMAPD_SHUTDOWN_GRACE plus {FLUSH_ALLOWANCE} s of flush ({needed}), got {grace:?}")
    });
}

fn check_systemd(unit_text: &str, env_text: &str, p: &mut Problems) {
    let unit = parse_unit(unit_text);
    let env = parse_env_file(env_text);
    const S: &str = "Service";

    let exec = unit.last(S, "ExecStart").unwrap_or_default();
    let exec_bin = exec.split_whitespace().next().unwrap_or_default();
    p.ensure(
        exec_bin.starts_with('/') && exec_bin.rsplit('/').next() == Some("mmapd"),
        || format!("systemd: ExecStart must run mmapd by absolute path, got {exec:?}"),
    );
    p.ensure(
        matches!(unit.last(S, "Type"), Some("exec" | "simple" | "notify")),
        || {
            format!(
                "systemd: Type={:?} is not exec/simple/notify",
                unit.last(S, "Type")
            )
        },
    );
    p.ensure(
        unit.list(S, "EnvironmentFile")
            .unwrap_or_default()
            .iter()
            .any(|f| f.trim_start_matches('-') == "/etc/mmapd/mmapd.env"),
        || "systemd: EnvironmentFile must load /etc/mmapd/mmapd.env".into(),
    );

    for key in [
        "DynamicUser",
        "NoNewPrivileges",
        "PrivateTmp",
        "PrivateDevices",
    ] {
        p.ensure(unit.is_true(S, key), || {
            format!("systemd: {key}=yes is required")
        });
    }
    p.ensure(unit.last(S, "ProtectSystem") == Some("strict"), || {
        format!(
            "systemd: ProtectSystem=strict is required, got {:?}",
            unit.last(S, "ProtectSystem")
        )
    });
    p.ensure(
        unit.is_true(S, "ProtectHome")
            || matches!(unit.last(S, "ProtectHome"), Some("read-only" | "tmpfs")),
        || "systemd: ProtectHome must be set".into(),
    );
    p.ensure(
        unit.list(S, "CapabilityBoundingSet") == Some(vec![]),
        || "systemd: CapabilityBoundingSet= must be present and empty".into(),
    );
    let families = unit.list(S, "RestrictAddressFamilies").unwrap_or_default();
    p.ensure(
        !families.is_empty()
            && !families.iter().any(|f| f.starts_with('~') || f == "none")
            && families.iter().all(|f| ["AF_INET", "AF_INET6", "AF_UNIX"].contains(&f.as_str())),
        || format!("systemd: RestrictAddressFamilies must allow only AF_INET AF_INET6 AF_UNIX, got {families:?}"),
    );
    p.ensure(
        unit.list(S, "SystemCallFilter")
            .unwrap_or_default()
            .iter()
            .any(|f| f == "@system-service"),
        || "systemd: SystemCallFilter=@system-service is required".into(),
    );
    p.ensure(
        matches!(unit.last(S, "KillSignal"), None | Some("SIGTERM")),
        || "systemd: KillSignal must be SIGTERM".into(),
    );
    let stop = unit
        .last(S, "TimeoutStopSec")
        .and_then(|v| v.trim_end_matches('s').parse::<u64>().ok());
    let needed = shutdown_grace(env_lookup(&env, "MMAPD_SHUTDOWN_GRACE")) + FLUSH_ALLOWANCE;
    p.ensure(stop.is_some_and(|s| s >= needed), || {
        format!("systemd: TimeoutStopSec must cover MMAPD_SHUTDOWN_GRACE plus {FLUSH_ALLOWANCE} s of flush ({needed}s), got {stop:?}")
    });
    p.ensure(
        matches!(
            unit.last(S, "Restart"),
            Some("on-failure" | "on-abnormal" | "always")
        ),
        || "systemd: Restart=on-failure is expected".into(),
    );
    for key in ["LimitNOFILE", "LimitMEMLOCK"] {
        p.ensure(unit.last(S, key).is_some(), || {
            format!("systemd: {key} must be set")
        });
    }

    // The env file's data root is the writable state directory.
    for name in unknown_mmapd_vars(env.iter().map(|(k, _)| k.as_str())) {
        p.push(format!("systemd env file: unknown variable {name}"));
    }
    let root = env_lookup(&env, "MMAPD_ROOT").map(|r| r.trim_end_matches('/'));
    p.ensure(root.is_some(), || {
        "systemd env file: MMAPD_ROOT must be set".into()
    });
    let rw = unit.list(S, "ReadWritePaths").unwrap_or_default();
    p.ensure(
        root.is_some_and(|r| {
            rw.iter()
                .any(|w| w.trim_start_matches(['-', '+']).trim_end_matches('/') == r)
        }),
        || {
            format!(
                "systemd: ReadWritePaths {rw:?} does not include the env file's MMAPD_ROOT {root:?}"
            )
        },
    );
    let state = unit.list(S, "StateDirectory").unwrap_or_default();
    p.ensure(
        root.is_some_and(|r| state.iter().any(|s| format!("/var/lib/{s}") == r)),
        || format!("systemd: MMAPD_ROOT {root:?} must be /var/lib/<StateDirectory> ({state:?}) so the dynamic user owns it"),
    );
    let listen = env_lookup(&env, "MMAPD_LISTEN");
    p.ensure(listen.and_then(listen_port).is_some(), || {
        format!("systemd env file: MMAPD_LISTEN {listen:?} is not an ip:port address")
    });
    p.ensure(
        matches!(env_lookup(&env, "MMAPD_LOG_FORMAT"), Some("json" | "text")),
        || "systemd env file: MMAPD_LOG_FORMAT must be json or text".into(),
    );
    p.ensure(env_lookup(&env, "RUST_LOG").is_some(), || {
        "systemd env file: RUST_LOG must be set".into()
    });

    // The access file is a credential (LoadCredential=), so it can stay
    // root-only on disk while the dynamic user reads its private copy.
    let unit_env = unit_environment(&unit);
    for name in unknown_mmapd_vars(unit_env.iter().map(|(k, _)| k.as_str())) {
        p.push(format!(
            "systemd: Environment= sets unknown variable {name}"
        ));
    }
    let credentials: Vec<(String, String)> = unit
        .0
        .iter()
        .filter(|(s, k, _)| s == S && k == "LoadCredential")
        .filter_map(|(_, _, v)| v.split_once(':'))
        .map(|(id, path)| (id.to_owned(), path.to_owned()))
        .collect();
    let access = env_lookup(&unit_env, "MMAPD_ACCESS_FILE");
    let credential = access.and_then(|a| {
        a.strip_prefix("%d/")
            .or_else(|| a.strip_prefix("${CREDENTIALS_DIRECTORY}/"))
    });
    p.ensure(
        credential.is_some_and(|id| {
            credentials
                .iter()
                .any(|(cid, path)| cid == id && path.starts_with('/'))
        }),
        || format!("systemd: MMAPD_ACCESS_FILE {access:?} must be %d/<id> of a LoadCredential=<id>:/absolute/path, got credentials {credentials:?}"),
    );
    // What the service would see: the unit's Environment=, then the env
    // file, which overrides it.
    let effective: Vec<(String, String)> = unit_env.iter().chain(&env).cloned().collect();
    if let Err(why) = protected_mode_allows(&effective, listen) {
        p.push(format!("systemd: the service would not start: {why}"));
    }
}

/// The `Environment=` assignments of the unit's [Service] section.
fn unit_environment(unit: &Unit) -> Vec<(String, String)> {
    unit.0
        .iter()
        .filter(|(s, k, _)| s == "Service" && k == "Environment")
        .flat_map(|(_, _, v)| v.split_whitespace())
        .filter_map(|kv| kv.trim_matches('"').split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn check_all(files: &Files) -> Vec<String> {
    let mut p = Problems::default();
    let image = check_dockerfile(&files.dockerfile, &mut p);
    check_kubernetes(&files.k8s, &image, &mut p);
    check_systemd(&files.unit, &files.env, &mut p);
    p.0
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn deploy_files_are_valid_and_consistent() {
    let problems = check_all(&load());
    assert!(
        problems.is_empty(),
        "deploy/ has {} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}

#[test]
fn kubernetes_manifest_has_the_expected_kinds() {
    let docs = parse_yaml_documents(&read(K8S)).expect("manifest parses");
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds.len(), docs.len(), "every document has a kind");
    assert!(kinds.contains(&"Service"), "kinds: {kinds:?}");
    assert!(kinds.contains(&"StatefulSet"), "kinds: {kinds:?}");
    assert!(kinds.contains(&"NetworkPolicy"), "kinds: {kinds:?}");
    assert!(
        kinds
            .iter()
            .all(|k| ["Service", "StatefulSet", "NetworkPolicy"].contains(k)),
        "unexpected kind in {kinds:?}: extend these checks when adding objects"
    );
}

/// Breaks one property at a time in the real files and asserts the checks
/// report it, so none of them can pass vacuously.
#[test]
fn checks_catch_broken_deploy_files() {
    use Which::*;
    let base = load();
    #[rustfmt::skip]
    let mutations: &[(Which, &str, &str, &str)] = &[
        // Dockerfile
        (Dockerfile, "USER 10001:10001", "USER root", "USER"),
        (Dockerfile, "USER 10001:10001", "USER 0", "USER"),
        (Dockerfile, "USER 10001:10001", "", "no USER"),
        (Dockerfile, "\"mmapctl\", \"--endpoint\"", "\"mmapd\", \"--endpoint\"", "HEALTHCHECK"),
        (Dockerfile, "\"http://127.0.0.1:50051\", \"health\"]", "\"http://127.0.0.1:50051\", \"info\"]", "HEALTHCHECK"),
        (Dockerfile, "\"http://127.0.0.1:50051\", \"health\"]", "\"http://127.0.0.1:50052\", \"health\"]", "HEALTHCHECK"),
        (Dockerfile, "    MMAPD_INSECURE=1 \\\n", "", "protected mode"),
        (Dockerfile, "HEALTHCHECK ", "# HEALTHCHECK ", "no HEALTHCHECK"),
        (Dockerfile, "VOLUME /data", "VOLUME /srv", "VOLUME"),
        (Dockerfile, "MMAPD_ROOT=/data", "MMAPD_ROOT=/srv/data", "VOLUME"),
        (Dockerfile, "MMAPD_ROOT=/data", "MMAPD_ROOTDIR=/data", "unknown variable"),
        (Dockerfile, "EXPOSE 50051", "EXPOSE 8080", "EXPOSE"),
        (Dockerfile, "MMAPD_LISTEN=0.0.0.0:50051", "MMAPD_LISTEN=127.0.0.1:50051", "wildcard"),
        (Dockerfile, "FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder", "", "multi-stage"),
        (Dockerfile, "FROM debian:${DEBIAN_RELEASE}-slim AS runtime", "FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS runtime", "toolchain"),
        (Dockerfile, "COPY --from=builder /out/mmapd /out/mmapctl", "COPY --from=builder /out/mmapd", "mmapctl"),
        (Dockerfile, "ENTRYPOINT [\"mmapd\"]", "ENTRYPOINT [\"mmapctl\"]", "ENTRYPOINT"),
        (Dockerfile, "STOPSIGNAL SIGTERM", "STOPSIGNAL SIGKILL", "STOPSIGNAL"),
        // Kubernetes
        (K8s, "kind: StatefulSet", "kind: Deployment", "StatefulSet"),
        (K8s, "kind: Service", "kind: ConfigMap", "no Service"),
        (K8s, "kind: Service", "kind: [Service", "invalid YAML"),
        (K8s, "mountPath: /data", "mountPath: /srv", "data root"),
        (K8s, "value: /data", "value: /srv", "data root"),
        (K8s, "volumeClaimTemplates:", "volumeClaims:", "volumeClaimTemplates"),
        (K8s, "livenessProbe:\n            tcpSocket:", "livenessProbe:\n            httpGet:", "livenessProbe must use"),
        (K8s, "livenessProbe:\n            tcpSocket:", "livenessProbe:\n            grpc:", "grpc probe speaks plaintext"),
        (K8s, "readinessProbe:\n            tcpSocket:\n              port: 50051", "readinessProbe:\n            tcpSocket:\n              port: 50052", "readinessProbe tcpSocket.port"),
        (K8s, "- name: MMAPD_INSECURE\n              value: \"0\"", "- name: MMAPD_INSECURE\n              value: \"1\"", "MMAPD_INSECURE"),
        (K8s, "- name: MMAPD_INSECURE\n              value: \"0\"\n", "", "MMAPD_INSECURE"),
        (K8s, "- name: MMAPD_ACCESS_FILE\n", "- name: MMAPD_ACCESS_FILEX\n", "protected mode"),
        (K8s, "value: /etc/mmapd/access/access.toml", "value: /data/access.toml", "MMAPD_ACCESS_FILE"),
        (K8s, "secretName: mmapd-access", "secretNam: mmapd-access", "MMAPD_ACCESS_FILE"),
        (K8s, "value: /etc/mmapd/tls/tls.key", "value: /etc/mmapd/tls/key.pem", "TLS: MMAPD_TLS_KEY"),
        (K8s, "mountPath: /etc/mmapd/tls\n              readOnly: true", "mountPath: /etc/mmapd/tls\n              readOnly: false", "TLS: MMAPD_TLS_CERT"),
        (K8s, "kind: NetworkPolicy", "kind: LimitRange", "no NetworkPolicy"),
        (K8s, "    - Ingress\n", "    - Egress\n", "policyTypes"),
        (K8s, "        - port: 50051\n", "        - port: 8080\n", "ingress rules"),
        (K8s, "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: mmapd", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: other", "podSelector"),
        (K8s, "          livenessProbe:", "          livenessProbeX:", "no livenessProbe"),
        (K8s, "containerPort: 50051", "containerPort: 50052", "containerPort"),
        (K8s, "limits:\n              cpu: \"2\"", "limitz:\n              cpu: \"2\"", "resources.limits"),
        (K8s, "              memory: 1Gi\n", "", "resources.limits must set memory"),
        (K8s, "requests:\n              cpu: 100m", "requestz:\n              cpu: 100m", "resources.requests"),
        (K8s, "              cpu: 100m\n", "", "resources.requests must set cpu"),
        (K8s, "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot"),
        (K8s, "runAsUser: 10001", "runAsUser: 0", "runAsUser"),
        (K8s, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"),
        (K8s, "drop: [\"ALL\"]", "drop: [\"NET_RAW\"]", "drop"),
        (K8s, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"),
        (K8s, "fsGroup: 10001", "supplementalGroups: [10001]", "fsGroup"),
        (K8s, "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 5", "terminationGracePeriodSeconds"),
        (K8s, "value: json", "value: text", "MMAPD_LOG_FORMAT"),
        (K8s, "value: \"20\"", "value: \"45\"", "terminationGracePeriodSeconds"),
        (K8s, "name: MMAPD_LISTEN", "name: MMAPD_LISTN", "unknown variable"),
        (K8s, "serviceName: mmapd-headless", "serviceName: mmapd", "headless"),
        (K8s, "  clusterIP: None\n", "", "headless"),
        (K8s, "    app.kubernetes.io/name: mmapd\n  ports:", "    app.kubernetes.io/name: other\n  ports:", "selector"),
        (K8s, "targetPort: grpc", "targetPort: http", "targetPort"),
        // systemd
        (Unit, "DynamicUser=yes", "DynamicUser=no", "DynamicUser"),
        (Unit, "ProtectSystem=strict", "ProtectSystem=full", "ProtectSystem"),
        (Unit, "ReadWritePaths=/var/lib/mmapd", "ReadWritePaths=/var/lib/other", "ReadWritePaths"),
        (Unit, "NoNewPrivileges=yes", "NoNewPrivileges=no", "NoNewPrivileges"),
        (Unit, "PrivateTmp=yes\n", "", "PrivateTmp"),
        (Unit, "PrivateDevices=yes", "PrivateDevices=false", "PrivateDevices"),
        (Unit, "ProtectHome=yes", "ProtectHome=no", "ProtectHome"),
        (Unit, "CapabilityBoundingSet=\n", "CapabilityBoundingSet=CAP_NET_ADMIN\n", "CapabilityBoundingSet"),
        (Unit, "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_PACKET", "RestrictAddressFamilies"),
        (Unit, "SystemCallFilter=@system-service", "SystemCallFilter=@default", "SystemCallFilter"),
        (Unit, "ExecStart=/usr/local/bin/mmapd", "ExecStart=mmapd", "ExecStart"),
        (Unit, "EnvironmentFile=-/etc/mmapd/mmapd.env", "EnvironmentFile=-/etc/default/mmapd", "EnvironmentFile"),
        (Unit, "StateDirectory=mmapd", "StateDirectory=mmap", "StateDirectory"),
        (Unit, "TimeoutStopSec=60s\n", "", "TimeoutStopSec"),
        (Unit, "KillSignal=SIGTERM", "KillSignal=SIGKILL", "KillSignal"),
        (Unit, "TimeoutStopSec=60s", "TimeoutStopSec=30s", "TimeoutStopSec"),
        (Env, "MMAPD_SHUTDOWN_GRACE=20", "MMAPD_SHUTDOWN_GRACE=45", "TimeoutStopSec"),
        (Unit, "Restart=on-failure", "Restart=no", "Restart"),
        (Unit, "LoadCredential=access.toml:/etc/mmapd/access.toml\n", "", "LoadCredential"),
        (Unit, "Environment=MMAPD_ACCESS_FILE=%d/access.toml", "Environment=MMAPD_ACCESS_FILE=/etc/mmapd/access.toml", "LoadCredential"),
        (Unit, "Environment=MMAPD_ACCESS_FILE=", "Environment=MMAPD_ACCESS_FIL=", "unknown variable"),
        (Env, "MMAPD_LISTEN=127.0.0.1:50051", "MMAPD_LISTEN=0.0.0.0:50051\nMMAPD_ACCESS_FILE=", "protected mode"),
        (Unit, "LimitNOFILE=65536\n", "", "LimitNOFILE"),
        (Env, "MMAPD_ROOT=/var/lib/mmapd", "MMAPD_ROOT=/srv/mmapd", "ReadWritePaths"),
        (Env, "MMAPD_ROOT=/var/lib/mmapd", "#MMAPD_ROOT=/var/lib/mmapd", "MMAPD_ROOT must be set"),
        (Env, "MMAPD_LISTEN=127.0.0.1:50051", "MMAPD_LISTEN=localhost", "MMAPD_LISTEN"),
        (Env, "MMAPD_LISTEN=", "MMAPD_LISTN=", "unknown variable"),
        (Env, "MMAPD_LOG_FORMAT=json", "MMAPD_LOG_FORMAT=yaml", "MMAPD_LOG_FORMAT"),
    ];
    let mut missed = Vec::new();
    for &(which, from, to, expect) in mutations {
        let mut files = base.clone();
        let text = files.get_mut(which);
        assert!(
            text.contains(from),
            "mutation pattern {from:?} is no longer in {which:?}: update this test along with the file"
        );
        *text = text.replace(from, to);
        let problems = check_all(&files);
        let noticed = problems.iter().any(|m| m.contains(expect));
        if !noticed {
            missed.push(format!(
                "{which:?}: {from:?} -> {to:?} not reported as {expect:?}; got {problems:?}"
            ));
        }
    }
    assert!(
        missed.is_empty(),
        "checks missed {} broken propert(ies):\n  - {}",
        missed.len(),
        missed.join("\n  - ")
    );
}

/// The directory cargo puts binaries in for this build (target/debug or
/// target/release), found from this test's own path: target/<profile>/deps/.
fn target_profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.to_path_buf())
}

fn built_binary(name: &str) -> Option<PathBuf> {
    let path = target_profile_dir()?.join(name);
    path.is_file().then_some(path)
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn systemd_unit_passes_systemd_analyze() {
    if !have("systemd-analyze") {
        println!("skipped: systemd-analyze is not on PATH");
        return;
    }
    let exec = built_binary("mmapd").unwrap_or_else(|| PathBuf::from("/bin/true"));
    let unit = read(UNIT);
    let unit = unit
        .lines()
        .map(|l| {
            if l.starts_with("ExecStart=") {
                format!("ExecStart={}", exec.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mmapd.service");
    fs::write(&path, unit + "\n").expect("write unit copy");

    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on settings it merely ignores (unknown keys, bad
    // values): those lines name the unit, so they count as failures too.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("mmapd.service"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify (ExecStart={}) failed: {}\n{stderr}",
        exec.display(),
        out.status
    );
    println!("systemd-analyze verify: ok (ExecStart={})", exec.display());

    // Exposure score 0..100 (systemd prints it as 0.0..10.0); a unit without
    // the sandboxing scores over 90, this one under 20.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=30", "--no-pager"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze security");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("unrecognized option") || stderr.contains("Unknown command") {
        println!("skipped: this systemd-analyze has no `security --offline`");
        return;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let overall = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or("(no overall line)");
    assert!(
        out.status.success(),
        "systemd-analyze security: exposure above 3.0: {overall}\n{stderr}"
    );
    println!("systemd-analyze security: {overall}");
}

/// Every `MMAPD_*` variable the deploy files set (Dockerfile runtime ENV,
/// the Kubernetes container env, the systemd env file and unit).
fn mmapd_vars_set(files: &Files) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let (_, stages) = parse_dockerfile(&files.dockerfile);
    if let Some(last) = stages.last() {
        for ins in instrs(last, "ENV") {
            names.extend(key_values(&ins.args).into_iter().map(|(k, _)| k));
        }
    }
    for doc in parse_yaml_documents(&files.k8s).unwrap_or_default() {
        for container in get(&doc, "/spec/template/spec/containers")
            .as_array()
            .into_iter()
            .flatten()
        {
            for env in container["env"].as_array().into_iter().flatten() {
                names.extend(env["name"].as_str().map(str::to_string));
            }
        }
    }
    names.extend(parse_env_file(&files.env).into_iter().map(|(k, _)| k));
    names.extend(
        unit_environment(&parse_unit(&files.unit))
            .into_iter()
            .map(|(k, _)| k),
    );
    names.retain(|n| n.starts_with("MMAPD_"));
    names
}

/// If the real binaries are built and have their CLI, the flags and variables
/// the deploy files rely on must exist in them.
#[test]
fn deploy_files_match_the_binaries_cli() {
    let help = |bin: &Path, args: &[&str]| -> Option<String> {
        let out = Command::new(bin).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };

    match built_binary("mmapd").and_then(|b| help(&b, &["--help"])) {
        Some(text) if text.contains("--listen") => {
            let vars = mmapd_vars_set(&load());
            assert!(
                vars.contains("MMAPD_ROOT"),
                "found no MMAPD_* settings: {vars:?}"
            );
            for var in &vars {
                assert!(
                    text.contains(var.as_str()),
                    "deploy/ sets {var}, but `mmapd --help` does not mention it:\n{text}"
                );
            }
            for flag in ["--root", "--listen", "--log-format"] {
                assert!(text.contains(flag), "`mmapd --help` lacks {flag}:\n{text}");
            }
        }
        _ => println!("skipped: no built mmapd with a CLI next to this test"),
    }

    match built_binary("mmapctl").and_then(|b| help(&b, &["--help"])) {
        Some(text) if text.contains("--endpoint") => {
            let bin = built_binary("mmapctl").expect("just found");
            assert!(
                help(&bin, &["health", "--help"]).is_some(),
                "the Dockerfile HEALTHCHECK runs `mmapctl health`, but `mmapctl health --help` fails"
            );
        }
        _ => println!("skipped: no built mmapctl with a CLI next to this test"),
    }
}
