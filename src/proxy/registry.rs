//! The named proxies of one `squall proxy` process: each a shim instance in front of one
//! upstream, with its faults (toxics are faults too) and its state, enabled or not.
//!
//! Disabling a proxy stops its shim — the listener closes (new connections are refused)
//! and open connections close — and keeps its faults; enabling starts a new shim on the
//! same address with them. Changing `listen` or `upstream` does both. A restarted shim's
//! faults start their timelines afresh (`at` counts from the restart).
//!
//! Every operation runs under one async lock, so control calls apply one at a time. It is
//! the control plane's alone: the shims' data paths never take it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::toxics::{BadToxic, Toxic, ToxicInput};
use crate::clock::Clock;
use crate::events::EventSink;
use crate::scenario::NetworkFault;
use crate::shim::{self, Shim, ShimConfig, ShimError, ShimHandle};

/// How long a stopping shim gets to close its listener and connections.
const STOP_DEADLINE: Duration = Duration::from_secs(3);
/// How long resolving a proxy's address may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Proxies one process may have at once.
pub const MAX_PROXIES: usize = 1024;

/// An API call that cannot be done: the HTTP status and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn not_found(what: &str) -> Self {
        Self::new(404, format!("{what} not found"))
    }
}

impl From<BadToxic> for ApiError {
    fn from(e: BadToxic) -> Self {
        Self::new(400, e.0)
    }
}

impl From<ShimError> for ApiError {
    fn from(e: ShimError) -> Self {
        let status = match &e {
            ShimError::Duplicate { .. } => 409,
            ShimError::Invalid { .. } | ShimError::Unsupported { .. } => 400,
            ShimError::TooManyFaults { .. } => 503,
            ShimError::Bind { .. } => 500,
        };
        Self::new(status, e.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// What every shim of the process shares.
#[derive(Debug, Clone)]
pub struct Context {
    pub seed: u64,
    pub clock: Clock,
    pub events: EventSink,
    /// The process's token: every shim's token is a child.
    pub token: CancellationToken,
}

/// A proxy to create.
#[derive(Debug, Clone)]
pub struct NewProxy {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    /// Read the upgrade head for `x-squall-client` (squall's own clients only).
    pub identify: bool,
    /// Faults in place from the start, their `at` counting from the process's start.
    pub faults: Vec<NetworkFault>,
}

#[derive(Default)]
pub struct Registry {
    proxies: BTreeMap<String, Entry>,
}

struct Entry {
    name: String,
    /// As configured, then the address bound (port 0 becomes the port chosen).
    listen: String,
    upstream: String,
    enabled: bool,
    identify: bool,
    /// Toxics added through the Toxiproxy API, in order; each is also a fault.
    toxics: Vec<Toxic>,
    running: Option<Running>,
    /// The faults while no shim runs.
    parked: Vec<NetworkFault>,
}

struct Running {
    handle: ShimHandle,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Registry {
    pub async fn create(&mut self, ctx: &Context, new: NewProxy) -> ApiResult<Value> {
        if new.name.is_empty() {
            return Err(ApiError::new(400, "missing required field: name"));
        }
        if new.upstream.is_empty() {
            return Err(ApiError::new(400, "missing required field: upstream"));
        }
        if self.proxies.contains_key(&new.name) {
            return Err(ApiError::new(409, "proxy already exists"));
        }
        if self.proxies.len() >= MAX_PROXIES {
            return Err(ApiError::new(503, format!("at most {MAX_PROXIES} proxies")));
        }
        for fault in &new.faults {
            shim::check_fault(fault)?;
        }
        let mut entry = Entry {
            name: new.name.clone(),
            listen: if new.listen.is_empty() {
                "127.0.0.1:0".into()
            } else {
                new.listen
            },
            upstream: new.upstream,
            enabled: new.enabled,
            identify: new.identify,
            toxics: Vec::new(),
            running: None,
            parked: new.faults,
        };
        if entry.enabled {
            entry.start(ctx, true).await?;
        }
        let json = entry.to_json();
        self.proxies.insert(new.name, entry);
        Ok(json)
    }

    pub fn list(&self) -> Value {
        Value::Object(
            self.proxies
                .iter()
                .map(|(name, e)| (name.clone(), e.to_json()))
                .collect(),
        )
    }

    pub fn show(&self, name: &str) -> ApiResult<Value> {
        Ok(self.entry(name)?.to_json())
    }

    /// Toxiproxy's update: new `listen`, `upstream` or `enabled`.
    pub async fn update(
        &mut self,
        ctx: &Context,
        name: &str,
        listen: Option<String>,
        upstream: Option<String>,
        enabled: Option<bool>,
    ) -> ApiResult<Value> {
        let entry = self.entry_mut(name)?;
        let moved = listen.as_ref().is_some_and(|l| *l != entry.listen)
            || upstream.as_ref().is_some_and(|u| *u != entry.upstream);
        let enabled = enabled.unwrap_or(entry.enabled);
        if moved || !enabled {
            entry.stop().await;
        }
        if let Some(listen) = listen {
            entry.listen = listen;
        }
        if let Some(upstream) = upstream {
            entry.upstream = upstream;
        }
        entry.enabled = enabled;
        if enabled && entry.running.is_none() {
            entry.start(ctx, false).await?;
        }
        Ok(entry.to_json())
    }

    pub async fn delete(&mut self, name: &str) -> ApiResult<()> {
        let mut entry = self
            .proxies
            .remove(name)
            .ok_or_else(|| ApiError::not_found("proxy"))?;
        entry.stop().await;
        Ok(())
    }

    /// Toxiproxy's reset: every proxy enabled, every fault (toxic or not) withdrawn.
    pub async fn reset(&mut self, ctx: &Context) -> ApiResult<()> {
        for entry in self.proxies.values_mut() {
            entry.toxics.clear();
            entry.parked.clear();
            if let Some(running) = &entry.running {
                for fault in running.handle.faults() {
                    running.handle.remove_fault(&fault.name);
                }
            }
            entry.enabled = true;
            if entry.running.is_none() {
                entry.start(ctx, false).await?;
            }
        }
        Ok(())
    }

    /// Every proxy's shim stopped (the process is ending).
    pub async fn stop_all(&mut self) {
        for entry in self.proxies.values_mut() {
            entry.stop().await;
        }
    }

    pub fn toxics(&self, proxy: &str) -> ApiResult<Value> {
        Ok(Value::Array(
            self.entry(proxy)?
                .live_toxics()
                .map(Toxic::to_json)
                .collect(),
        ))
    }

    pub fn toxic(&self, proxy: &str, name: &str) -> ApiResult<Value> {
        self.entry(proxy)?
            .live_toxics()
            .find(|t| t.name == name)
            .map(Toxic::to_json)
            .ok_or_else(|| ApiError::not_found("toxic"))
    }

    pub fn add_toxic(&mut self, proxy: &str, input: ToxicInput) -> ApiResult<Value> {
        let entry = self.entry_mut(proxy)?;
        let toxic = Toxic::create(input)?;
        if entry.has_fault(&toxic.name) {
            return Err(ApiError::new(409, "toxic already exists"));
        }
        entry.add_fault(toxic.fault()?, false)?;
        let json = toxic.to_json();
        entry.toxics.retain(|t| t.name != toxic.name);
        entry.toxics.push(toxic);
        Ok(json)
    }

    pub fn update_toxic(&mut self, proxy: &str, name: &str, input: ToxicInput) -> ApiResult<Value> {
        let entry = self.entry_mut(proxy)?;
        let current = entry
            .live_toxics()
            .find(|t| t.name == name)
            .cloned()
            .ok_or_else(|| ApiError::not_found("toxic"))?;
        let next = current.update(input)?;
        entry.add_fault(next.fault()?, true)?;
        let json = next.to_json();
        for t in entry.toxics.iter_mut().filter(|t| t.name == name) {
            *t = next.clone();
        }
        Ok(json)
    }

    pub fn remove_toxic(&mut self, proxy: &str, name: &str) -> ApiResult<()> {
        let entry = self.entry_mut(proxy)?;
        if !entry.live_toxics().any(|t| t.name == name) {
            return Err(ApiError::not_found("toxic"));
        }
        entry.remove_fault(name);
        entry.toxics.retain(|t| t.name != name);
        Ok(())
    }

    /// The native API's view of a proxy's faults: each as a scenario writes it, and whether
    /// a window of it is open now.
    pub fn faults(&self, proxy: &str) -> ApiResult<Value> {
        let entry = self.entry(proxy)?;
        let active = entry
            .running
            .as_ref()
            .map(|r| r.handle.active_faults())
            .unwrap_or_default();
        let faults: Vec<Value> = entry
            .faults()
            .iter()
            .map(|f| fault_json(f, active.contains(&f.name)))
            .collect();
        Ok(json!({ "proxy": entry.name, "enabled": entry.enabled, "faults": faults }))
    }

    pub fn fault(&self, proxy: &str, name: &str) -> ApiResult<Value> {
        let entry = self.entry(proxy)?;
        let active = entry
            .running
            .as_ref()
            .is_some_and(|r| r.handle.active_faults().iter().any(|n| n == name));
        entry
            .faults()
            .iter()
            .find(|f| f.name == name)
            .map(|f| fault_json(f, active))
            .ok_or_else(|| ApiError::not_found("fault"))
    }

    /// Adds faults (all or none); `replace`: a fault of the same name is replaced.
    pub fn add_faults(
        &mut self,
        proxy: &str,
        faults: Vec<NetworkFault>,
        replace: bool,
    ) -> ApiResult<Vec<String>> {
        let entry = self.entry_mut(proxy)?;
        let mut added: Vec<String> = Vec::new();
        for fault in faults {
            match entry.add_fault(fault, replace) {
                Ok(name) => added.push(name),
                Err(e) => {
                    for name in &added {
                        entry.remove_fault(name);
                    }
                    return Err(e);
                }
            }
        }
        Ok(added)
    }

    pub fn remove_fault(&mut self, proxy: &str, name: &str) -> ApiResult<()> {
        let entry = self.entry_mut(proxy)?;
        if !entry.remove_fault(name) {
            return Err(ApiError::not_found("fault"));
        }
        entry.toxics.retain(|t| t.name != name);
        Ok(())
    }

    pub fn stats(&self, proxy: &str) -> ApiResult<Value> {
        let entry = self.entry(proxy)?;
        let Some(running) = &entry.running else {
            return Ok(json!({ "proxy": entry.name, "enabled": false }));
        };
        let s = running.handle.stats();
        let faults: Vec<Value> = s
            .faults
            .iter()
            .map(|f| {
                json!({ "name": f.name, "kind": f.kind, "touches": f.touches, "bytes_affected": f.bytes_affected })
            })
            .collect();
        Ok(json!({
            "proxy": entry.name, "enabled": true, "accepted": s.accepted, "open": s.open,
            "bytes_up": s.bytes_up, "bytes_down": s.bytes_down, "faults": faults,
        }))
    }

    /// The address proxy `name` listens on, once started.
    pub fn local_addr(&self, name: &str) -> Option<SocketAddr> {
        let running = self.proxies.get(name)?.running.as_ref()?;
        Some(running.handle.local_addr())
    }

    fn entry(&self, name: &str) -> ApiResult<&Entry> {
        self.proxies
            .get(name)
            .ok_or_else(|| ApiError::not_found("proxy"))
    }

    fn entry_mut(&mut self, name: &str) -> ApiResult<&mut Entry> {
        self.proxies
            .get_mut(name)
            .ok_or_else(|| ApiError::not_found("proxy"))
    }
}

fn fault_json(fault: &NetworkFault, active: bool) -> Value {
    let mut json = fault.to_json();
    if let Value::Object(map) = &mut json {
        map.insert("active".into(), Value::Bool(active));
    }
    json
}

impl Entry {
    fn to_json(&self) -> Value {
        let toxics: Vec<Value> = self.live_toxics().map(Toxic::to_json).collect();
        json!({
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": toxics,
        })
    }

    fn faults(&self) -> Vec<NetworkFault> {
        match &self.running {
            Some(running) => running.handle.faults(),
            None => self.parked.clone(),
        }
    }

    fn has_fault(&self, name: &str) -> bool {
        self.faults().iter().any(|f| f.name == name)
    }

    /// Toxics whose fault is still in place (the native API may have withdrawn one).
    fn live_toxics(&self) -> impl Iterator<Item = &Toxic> {
        let names: Vec<String> = self.faults().into_iter().map(|f| f.name).collect();
        self.toxics.iter().filter(move |t| names.contains(&t.name))
    }

    /// Adds (or with `replace` replaces) a fault; its name.
    fn add_fault(&mut self, fault: NetworkFault, replace: bool) -> ApiResult<String> {
        match &self.running {
            Some(running) => Ok(match replace {
                true => running.handle.replace_fault(fault)?,
                false => running.handle.add_fault(fault)?,
            }),
            None => {
                shim::check_fault(&fault)?;
                let mut fault = fault;
                if fault.name.is_empty() {
                    fault.name = format!("{}#{}", fault.kind.name(), self.parked.len());
                }
                let existing = self.parked.iter().position(|f| f.name == fault.name);
                match (existing, replace) {
                    (Some(_), false) => {
                        return Err(ShimError::Duplicate { name: fault.name }.into());
                    }
                    (Some(i), true) => self.parked[i] = fault.clone(),
                    (None, _) => self.parked.push(fault.clone()),
                }
                Ok(fault.name)
            }
        }
    }

    fn remove_fault(&mut self, name: &str) -> bool {
        match &self.running {
            Some(running) => running.handle.remove_fault(name),
            None => {
                let before = self.parked.len();
                self.parked.retain(|f| f.name != name);
                self.parked.len() != before
            }
        }
    }

    /// Starts a shim with the parked faults: their `at` counts from the process's start
    /// (`from_origin`, the faults file at startup) or from now (a restart).
    async fn start(&mut self, ctx: &Context, from_origin: bool) -> ApiResult<()> {
        let listen = resolve(&self.listen, "listen").await?;
        let upstream = resolve(&self.upstream, "upstream").await?;
        let faults = std::mem::take(&mut self.parked);
        let (token, tracker) = (ctx.token.child_token(), TaskTracker::new());
        let cfg = ShimConfig {
            listen,
            upstream,
            faults: if from_origin {
                faults.clone()
            } else {
                Vec::new()
            },
            seed: ctx.seed,
            identify_clients: self.identify,
            touches: None,
            max_held: crate::shim::MAX_HELD,
            until: None,
        };
        let started = Shim::start(
            cfg,
            ctx.clock,
            ctx.events.clone(),
            token.clone(),
            tracker.clone(),
        )
        .await;
        let handle = match started {
            Ok(handle) => handle,
            Err(e) => {
                self.parked = faults;
                self.enabled = false;
                return Err(e.into());
            }
        };
        if !from_origin {
            for fault in faults {
                // Checked when parked; a refusal now would be a bug, not bad input.
                if let Err(e) = handle.add_fault(fault) {
                    tracing::warn!(error = %e, "proxy: a parked fault was refused on restart");
                }
            }
        }
        self.listen = handle.local_addr().to_string();
        self.running = Some(Running {
            handle,
            token,
            tracker,
        });
        Ok(())
    }

    /// Stops the shim, if running, keeping its faults parked.
    async fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        self.parked = running.handle.faults();
        running.token.cancel();
        running.tracker.close();
        if tokio::time::timeout(STOP_DEADLINE, running.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(proxy = %self.name, "proxy: shim tasks still running after the stop deadline");
        }
    }
}

/// `host:port` to a socket address (the first the name resolves to); an empty host is
/// every interface, as Toxiproxy's `:8666`.
pub async fn resolve(addr: &str, what: &str) -> ApiResult<SocketAddr> {
    let text = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_owned()
    };
    if let Ok(parsed) = text.parse::<SocketAddr>() {
        return Ok(parsed);
    }
    let bad = |why: String| ApiError::new(400, format!("{what} `{addr}`: {why}"));
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(text.as_str()))
        .await
        .map_err(|_| bad("resolving it took too long".into()))?
        .map_err(|e| bad(format!("{e} (expected host:port)")))?
        .next();
    found.ok_or_else(|| bad("resolves to no address".into()))
}
