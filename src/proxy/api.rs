//! The control API's routes: Toxiproxy's REST API, unchanged for its clients, and squall's
//! own under `/squall/` (faults in the scenario's syntax). See `docs/proxy.md`.
//!
//! Requests from browsers (`User-Agent: Mozilla/…`) are refused, as Toxiproxy does, so a
//! web page cannot drive a proxy on the developer's machine.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::http::{Request, Response, error_body};
use super::registry::{ApiError, ApiResult, Context, NewProxy, Registry};
use super::toxics::ToxicInput;
use crate::scenario;

/// The Toxiproxy API level answered at `/version`: clients that check it see a 2.x server.
pub const TOXIPROXY_VERSION: &str = "2.12.0";
/// How long a call waits for the one before it to finish.
const LOCK_TIMEOUT: Duration = Duration::from_secs(20);

/// What the routes work on.
pub struct Api {
    pub registry: Mutex<Registry>,
    pub ctx: Context,
    /// The proxy `/squall/faults` acts on without `?proxy=`.
    pub main: Option<String>,
}

/// A proxy as Toxiproxy's clients send it (create, update, populate).
#[derive(Debug, Default, Deserialize)]
struct ProxyInput {
    name: Option<String>,
    listen: Option<String>,
    upstream: Option<String>,
    enabled: Option<bool>,
}

impl Api {
    /// Answers one request.
    pub async fn handle(self: Arc<Self>, req: Request) -> Response {
        if req.user_agent.starts_with("Mozilla/") {
            return error_body(403, "User agent not allowed");
        }
        match self.route(&req).await {
            Ok(response) => response,
            Err(e) => error_body(e.status, &e.message),
        }
    }

    async fn route(&self, req: &Request) -> ApiResult<Response> {
        let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        let method = req.method.as_str();
        let update = matches!(method, "POST" | "PATCH");
        let ok = |value: Value| Ok(Response::json(200, &value));
        match segments.as_slice() {
            ["version"] if method == "GET" => ok(json!({
                "version": TOXIPROXY_VERSION,
                "squall": env!("CARGO_PKG_VERSION"),
            })),
            ["reset"] if method == "POST" => {
                self.lock().await?.reset(&self.ctx).await?;
                Ok(Response::empty(204))
            }
            ["proxies"] if method == "GET" => ok(self.lock().await?.list()),
            ["proxies"] if method == "POST" => {
                let input: ProxyInput = parse_json(&req.body)?;
                let new = self.new_proxy(input);
                let created = self.lock().await?.create(&self.ctx, new).await?;
                Ok(Response::json(201, &created))
            }
            ["populate"] if method == "POST" => self.populate(&req.body).await,
            ["proxies", name] if method == "GET" => ok(self.lock().await?.show(name)?),
            ["proxies", name] if update => {
                let input: ProxyInput = parse_json(&req.body)?;
                let mut registry = self.lock().await?;
                ok(registry
                    .update(&self.ctx, name, input.listen, input.upstream, input.enabled)
                    .await?)
            }
            ["proxies", name] if method == "DELETE" => {
                self.lock().await?.delete(name).await?;
                Ok(Response::empty(204))
            }
            ["proxies", name, "toxics"] if method == "GET" => {
                ok(self.lock().await?.toxics(name)?)
            }
            ["proxies", name, "toxics"] if method == "POST" => {
                let input: ToxicInput = parse_json(&req.body)?;
                ok(self.lock().await?.add_toxic(name, input)?)
            }
            ["proxies", name, "toxics", toxic] if method == "GET" => {
                ok(self.lock().await?.toxic(name, toxic)?)
            }
            ["proxies", name, "toxics", toxic] if update => {
                let input: ToxicInput = parse_json(&req.body)?;
                ok(self.lock().await?.update_toxic(name, toxic, input)?)
            }
            ["proxies", name, "toxics", toxic] if method == "DELETE" => {
                self.lock().await?.remove_toxic(name, toxic)?;
                Ok(Response::empty(204))
            }
            ["squall", "faults"] if method == "GET" => {
                ok(self.lock().await?.faults(&self.proxy_of(req)?)?)
            }
            ["squall", "faults"] if method == "POST" => {
                let faults = parse_faults(&req.body)?;
                let proxy = self.proxy_of(req)?;
                let mut registry = self.lock().await?;
                let names = registry.add_faults(&proxy, faults, false)?;
                let added: Vec<Value> = names
                    .iter()
                    .filter_map(|n| registry.fault(&proxy, n).ok())
                    .collect();
                Ok(Response::json(201, &json!({ "faults": added })))
            }
            ["squall", "faults", name] if method == "GET" => {
                ok(self.lock().await?.fault(&self.proxy_of(req)?, name)?)
            }
            ["squall", "faults", name] if matches!(method, "PUT" | "POST" | "PATCH") => {
                let mut fault = parse_fault(&req.body)?;
                fault.name = (*name).to_owned();
                let proxy = self.proxy_of(req)?;
                let mut registry = self.lock().await?;
                registry.add_faults(&proxy, vec![fault], true)?;
                ok(registry.fault(&proxy, name)?)
            }
            ["squall", "faults", name] if method == "DELETE" => {
                let proxy = self.proxy_of(req)?;
                self.lock().await?.remove_fault(&proxy, name)?;
                Ok(Response::empty(204))
            }
            ["squall", "stats"] if method == "GET" => {
                ok(self.lock().await?.stats(&self.proxy_of(req)?)?)
            }
            _ if known(&segments) => Err(ApiError::new(405, "method not allowed")),
            _ => Err(ApiError::new(404, "no such endpoint")),
        }
    }

    /// Toxiproxy's populate: creates the proxies listed (replacing one of the same name
    /// whose addresses differ), stopping at the first error.
    async fn populate(&self, body: &[u8]) -> ApiResult<Response> {
        let inputs: Vec<ProxyInput> = parse_json(body)?;
        let mut registry = self.lock().await?;
        let mut done = Vec::new();
        for input in inputs {
            let new = self.new_proxy(input);
            let result = match registry.show(&new.name) {
                Ok(existing) if same_addresses(&existing, &new) => {
                    registry
                        .update(&self.ctx, &new.name, None, None, Some(new.enabled))
                        .await
                }
                Ok(_) => match registry.delete(&new.name).await {
                    Ok(()) => registry.create(&self.ctx, new).await,
                    Err(e) => Err(e),
                },
                Err(_) => registry.create(&self.ctx, new).await,
            };
            match result {
                Ok(proxy) => done.push(proxy),
                Err(e) => {
                    let body = json!({
                        "error": e.message, "title": e.message, "status": e.status,
                        "proxies": done,
                    });
                    return Ok(Response::json(e.status, &body));
                }
            }
        }
        Ok(Response::json(201, &json!({ "proxies": done })))
    }

    fn new_proxy(&self, input: ProxyInput) -> NewProxy {
        NewProxy {
            name: input.name.unwrap_or_default(),
            listen: input.listen.unwrap_or_default(),
            upstream: input.upstream.unwrap_or_default(),
            enabled: input.enabled.unwrap_or(true),
            identify: false,
            faults: Vec::new(),
        }
    }

    fn proxy_of(&self, req: &Request) -> ApiResult<String> {
        req.param("proxy")
            .or_else(|| self.main.clone())
            .ok_or_else(|| {
                ApiError::new(400, "which proxy? add ?proxy=NAME (no --listen proxy runs)")
            })
    }

    async fn lock(&self) -> ApiResult<tokio::sync::MutexGuard<'_, Registry>> {
        tokio::time::timeout(LOCK_TIMEOUT, self.registry.lock())
            .await
            .map_err(|_| ApiError::new(503, "another control call is still running"))
    }
}

fn same_addresses(existing: &Value, new: &NewProxy) -> bool {
    existing["upstream"] == new.upstream.as_str()
        && (new.listen.is_empty() || existing["listen"] == new.listen.as_str())
}

fn known(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["version" | "reset" | "proxies" | "populate"]
            | ["proxies", _]
            | ["proxies", _, "toxics"]
            | ["proxies", _, "toxics", _]
            | ["squall", "faults" | "stats"]
            | ["squall", "faults", _]
    )
}

/// A JSON body; an empty one is `{}` (Toxiproxy's clients send no body for some calls).
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .or_else(|e| match body == b"{}" {
            // An empty body where a list is expected.
            true => serde_json::from_slice(b"[]").map_err(|_| e),
            false => Err(e),
        })
        .map_err(|e| ApiError::new(400, format!("bad request body: {e}")))
}

fn body_text(body: &[u8]) -> ApiResult<&str> {
    std::str::from_utf8(body).map_err(|_| ApiError::new(400, "bad request body: not UTF-8"))
}

/// One fault, or a list of them, in the scenario's syntax (JSON or YAML).
fn parse_faults(body: &[u8]) -> ApiResult<Vec<scenario::NetworkFault>> {
    let text = body_text(body)?;
    let list = text.trim_start().starts_with('[') || text.trim_start().starts_with('-');
    if !list {
        return Ok(vec![parse_fault(body)?]);
    }
    scenario::faults_to_add(text, "body").map_err(|e| ApiError::new(400, e.to_string()))
}

fn parse_fault(body: &[u8]) -> ApiResult<scenario::NetworkFault> {
    scenario::fault_from_str(body_text(body)?, "body")
        .map_err(|e| ApiError::new(400, e.to_string()))
}
