//! MCP tool servers for Krake's agents (`[[mcp.servers]]`): each server started (a stdio
//! command) or reached (a Streamable HTTP URL) by rmcp's client, its tools listed at start and
//! again on `notifications/tools/list_changed`, called with a timeout, restarted with backoff
//! when it dies. [`McpTools`] is core's [`ToolServers`] port; core decides which agent may call
//! what and under which policy.
//!
//! A stdio server starts with an empty environment except `PATH`, `HOME`, `LANG` and `TMPDIR`,
//! the variables its `env_pass` names and its own `env`: Krake's secrets (bot tokens, API keys)
//! never reach a tool server unless passed on purpose.

use async_trait::async_trait;
use krake_core::backoff::Backoff;
use krake_core::tool_servers::{
    DEFAULT_MAX_RESULT_CHARS, OutsideTool, ToolCallError, ToolOutput, ToolPolicy, ToolRules,
    ToolServers,
};
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, ResourceContents};
use rmcp::service::{NotificationContext, Peer, RoleClient};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ServiceExt};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// `[mcp]` in the config file: the tool servers agents may use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpFile {
    /// `[[mcp.servers]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerFile>,
}

/// One `[[mcp.servers]]` entry: a stdio `command` or a Streamable HTTP `url`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// The server's name, as agents' `tools` name it (`mcp:NAME/TOOL`): letters, digits,
    /// `-` and `_`.
    pub name: String,
    /// The program to start (stdio transport).
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables set for it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Variables of Krake's own environment passed on to it (for its API keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_pass: Vec<String>,
    /// The server's Streamable HTTP endpoint (instead of `command`).
    pub url: Option<String>,
    /// A header sent with every HTTP request (`Authorization`), its value read from
    /// `header_env`.
    pub header: Option<String>,
    /// The environment variable holding the header's value (`Bearer …`).
    pub header_env: Option<String>,
    /// Seconds a call may take; default 30.
    pub timeout_secs: Option<u64>,
    /// Characters of a result an agent sees; default 8000, longer results are cut with a note.
    pub max_result_chars: Option<usize>,
    /// US dollars charged to the run per call (default 0).
    pub price_per_call: Option<f64>,
    /// The policy of tools `tools` does not name: `approval` (default), `act` or `deny`.
    #[serde(default)]
    pub default_policy: ToolPolicy,
    /// Policies by tool name or `*` pattern.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, ToolPolicy>,
}

/// A bad `[[mcp.servers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[[mcp.servers]] {0}")]
pub struct ConfigError(pub String);

/// How to reach one server, checked.
#[derive(Debug, Clone)]
enum Transport {
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    },
    Http {
        url: String,
        headers: HashMap<http::HeaderName, http::HeaderValue>,
    },
}

/// One server's checked settings.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    name: String,
    transport: Transport,
    timeout: Duration,
    max_result_chars: usize,
    price_micros: i64,
    rules: ToolRules,
}

impl ServerSpec {
    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl McpFile {
    /// The section with each `env` value shown as `***` (it may hold a secret).
    pub fn redacted(&self) -> Self {
        let mut f = self.clone();
        for s in &mut f.servers {
            for v in s.env.values_mut() {
                *v = "***".into();
            }
        }
        f
    }

    /// Checks every entry; environment values (`env_pass`, `header_env`) are read through
    /// `var`.
    pub fn resolve(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<ServerSpec>, ConfigError> {
        let mut out: Vec<ServerSpec> = Vec::new();
        for s in &self.servers {
            let name = s.name.trim();
            let err = |m: String| ConfigError(format!("`{name}`: {m}"));
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError(format!(
                    "name `{name}` must be letters, digits, - and _"
                )));
            }
            if out.iter().any(|o| o.name == name) {
                return Err(err("the name is used twice".into()));
            }
            let transport = match (&s.command, &s.url) {
                (Some(command), None) => {
                    let mut env = Vec::new();
                    for k in ["PATH", "HOME", "LANG", "TMPDIR"] {
                        if let Some(v) = var(k) {
                            env.push((k.to_owned(), v));
                        }
                    }
                    for k in &s.env_pass {
                        let v = var(k)
                            .ok_or_else(|| err(format!("env_pass names {k}, which is not set")))?;
                        env.push((k.clone(), v));
                    }
                    env.extend(s.env.iter().map(|(k, v)| (k.clone(), v.clone())));
                    Transport::Stdio {
                        command: command.clone(),
                        args: s.args.clone(),
                        env,
                    }
                }
                (None, Some(url)) => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(err(format!(
                            "url `{url}` must start with http:// or https://"
                        )));
                    }
                    let mut headers = HashMap::new();
                    match (&s.header, &s.header_env) {
                        (Some(h), Some(e)) => {
                            let value = var(e).ok_or_else(|| {
                                err(format!("header_env names {e}, which is not set"))
                            })?;
                            let name = http::HeaderName::try_from(h.as_str())
                                .map_err(|_| err(format!("`{h}` is not a header name")))?;
                            let mut value = http::HeaderValue::try_from(value).map_err(|_| {
                                err(format!("the value of {e} is not a valid header value"))
                            })?;
                            value.set_sensitive(true);
                            headers.insert(name, value);
                        }
                        (None, None) => {}
                        _ => return Err(err("header and header_env go together".into())),
                    }
                    Transport::Http {
                        url: url.clone(),
                        headers,
                    }
                }
                _ => return Err(err("give either `command` (stdio) or `url` (HTTP)".into())),
            };
            let price = s.price_per_call.unwrap_or(0.0);
            if !(price.is_finite() && price >= 0.0) {
                return Err(err(
                    "price_per_call must be a positive number of dollars".into()
                ));
            }
            out.push(ServerSpec {
                name: name.to_owned(),
                transport,
                timeout: Duration::from_secs(s.timeout_secs.unwrap_or(30).max(1)),
                max_result_chars: s
                    .max_result_chars
                    .unwrap_or(DEFAULT_MAX_RESULT_CHARS)
                    .max(100),
                // Dollars to micro-dollars, rounded.
                #[allow(clippy::cast_possible_truncation)]
                price_micros: (price * 1e6).round() as i64,
                rules: ToolRules {
                    default: s.default_policy,
                    tools: s.tools.clone(),
                },
            });
        }
        Ok(out)
    }
}

/// What one server is doing now.
#[derive(Default)]
struct State {
    peer: Option<Peer<RoleClient>>,
    tools: Vec<OutsideTool>,
    /// Why it is not running, while it is not.
    down: String,
}

struct Slot {
    spec: ServerSpec,
    state: RwLock<State>,
    /// Counts tool listings, so a caller can wait for the next one.
    listed: watch::Sender<u64>,
    /// Counts connection attempts that ended (listed, or failed), so the first run can wait
    /// for the first one instead of starting without the server's tools.
    attempts: watch::Sender<u64>,
}

impl Slot {
    fn set(&self, f: impl FnOnce(&mut State)) {
        if let Ok(mut s) = self.state.write() {
            f(&mut s);
        }
    }
}

/// The configured MCP tool servers, kept running (core's [`ToolServers`]). They start on
/// first use (a run, an approved call), so commands that never touch an agent start none.
pub struct McpTools {
    slots: BTreeMap<String, Arc<Slot>>,
    started: std::sync::Once,
}

impl std::fmt::Debug for McpTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.slots.keys()).finish()
    }
}

/// Notes the server's tool-list changes.
#[derive(Clone)]
struct Handler {
    changed: Arc<Notify>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }
}

impl McpTools {
    /// The servers of `specs`, not started yet.
    pub fn new(specs: Vec<ServerSpec>) -> Arc<Self> {
        let mut slots = BTreeMap::new();
        for spec in specs {
            let slot = Arc::new(Slot {
                state: RwLock::new(State {
                    down: "starting".into(),
                    ..State::default()
                }),
                listed: watch::channel(0).0,
                attempts: watch::channel(0).0,
                spec,
            });
            slots.insert(slot.spec.name.clone(), slot);
        }
        Arc::new(Self {
            slots,
            started: std::sync::Once::new(),
        })
    }

    /// Starts (or connects to) every server in the background, once; each is restarted with
    /// backoff (1 s doubling to 60 s) whenever it ends. Needs a Tokio runtime.
    pub fn start(&self) {
        self.started.call_once(|| {
            for slot in self.slots.values() {
                tokio::spawn(supervise(slot.clone()));
            }
        });
    }

    /// Waits until `server` has listed its tools more than `after` times (0: once); returns
    /// how many times it has, or `None` after `wait`.
    pub async fn listed(&self, server: &str, after: u64, wait: Duration) -> Option<u64> {
        let mut rx = self.slots.get(server)?.listed.subscribe();
        tokio::time::timeout(wait, rx.wait_for(|n| *n > after))
            .await
            .ok()?
            .ok()
            .map(|n| *n)
    }

    /// Each server and whether it is running (or why not), for `krake doctor` and logs.
    pub fn status(&self) -> Vec<(String, Result<usize, String>)> {
        self.slots
            .values()
            .map(|s| {
                let st = s.state.read();
                let r = match st {
                    Ok(st) if st.peer.is_some() => Ok(st.tools.len()),
                    Ok(st) => Err(st.down.clone()),
                    Err(_) => Err("state lock poisoned".into()),
                };
                (s.spec.name.clone(), r)
            })
            .collect()
    }
}

/// Keeps one server running: connect, list, relist on change, restart with backoff.
async fn supervise(slot: Arc<Slot>) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let name = slot.spec.name.clone();
    loop {
        let changed = Arc::new(Notify::new());
        let handler = Handler {
            changed: changed.clone(),
        };
        let why = match connect(&slot.spec, handler).await {
            Ok(running) => {
                let up = std::time::Instant::now();
                let peer = running.peer().clone();
                slot.set(|s| {
                    s.peer = Some(peer.clone());
                    s.down.clear();
                });
                tracing::info!(server = %name, "MCP tool server connected");
                list(&slot, &peer).await;
                slot.attempts.send_modify(|n| *n += 1);
                let mut ended = Box::pin(running.waiting());
                let why = loop {
                    tokio::select! {
                        r = &mut ended => break match r {
                            Ok(reason) => format!("it stopped ({reason:?})"),
                            Err(e) => format!("it stopped: {e}"),
                        },
                        () = changed.notified() => list(&slot, &peer).await,
                    }
                };
                // A server that stayed up a while starts its backoff over.
                if up.elapsed() > Duration::from_secs(60) {
                    backoff.reset();
                }
                why
            }
            Err(e) => e,
        };
        slot.attempts.send_modify(|n| *n += 1);
        let delay = backoff.next_delay();
        tracing::warn!(server = %name, "MCP tool server unavailable: {why}; restarting in {delay:?}");
        slot.set(|s| {
            s.peer = None;
            s.tools.clear();
            s.down = format!("{why}; restarting");
        });
        tokio::time::sleep(delay).await;
    }
}

type Running = rmcp::service::RunningService<RoleClient, Handler>;

async fn connect(spec: &ServerSpec, handler: Handler) -> Result<Running, String> {
    let init = Duration::from_secs(30).max(spec.timeout);
    match &spec.transport {
        Transport::Stdio { command, args, env } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).env_clear().envs(env.iter().cloned());
            let (proc, stderr) = TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start `{command}`: {e}"))?;
            if let Some(stderr) = stderr {
                tokio::spawn(log_stderr(spec.name.clone(), stderr));
            }
            tokio::time::timeout(init, handler.serve(proc))
                .await
                .map_err(|_| "it did not finish the MCP handshake in time".to_owned())?
                .map_err(|e| format!("the MCP handshake failed: {e}"))
        }
        Transport::Http { url, headers } => {
            let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                .custom_headers(headers.clone())
                .max_json_response_size(MAX_MESSAGE)
                .max_sse_event_size(MAX_MESSAGE);
            let transport = StreamableHttpClientTransport::from_config(config);
            tokio::time::timeout(init, handler.serve(transport))
                .await
                .map_err(|_| "it did not finish the MCP handshake in time".to_owned())?
                .map_err(|e| format!("the MCP handshake with {url} failed: {e}"))
        }
    }
}

/// The largest message read from an HTTP server.
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// A stdio server's error output, as Krake's log lines (each cut at 500 characters).
async fn log_stderr(server: String, stderr: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line: String = line.chars().take(500).collect();
        tracing::info!(server = %server, "tool server: {line}");
    }
}

/// Lists the server's tools (all pages) with their policies.
async fn list(slot: &Slot, peer: &Peer<RoleClient>) {
    let name = &slot.spec.name;
    match tokio::time::timeout(slot.spec.timeout, peer.list_all_tools()).await {
        Ok(Ok(tools)) => {
            let tools: Vec<OutsideTool> = tools
                .into_iter()
                .map(|t| OutsideTool {
                    server: name.clone(),
                    policy: slot.spec.rules.policy(&t.name),
                    description: t.description.map(|d| d.to_string()).unwrap_or_default(),
                    input_schema: serde_json::Value::Object((*t.input_schema).clone()),
                    name: t.name.to_string(),
                })
                .collect();
            tracing::info!(server = %name, tools = tools.len(), "MCP tools listed");
            slot.set(|s| s.tools = tools);
            slot.listed.send_modify(|n| *n += 1);
        }
        Ok(Err(e)) => tracing::warn!(server = %name, "listing MCP tools failed: {e}"),
        Err(_) => tracing::warn!(server = %name, "listing MCP tools timed out"),
    }
}

/// A tool's result as text: text parts as they are, embedded text resources with their
/// address, other parts named; structured content when there is nothing else.
fn text_of(r: CallToolResult) -> ToolOutput {
    let mut parts = Vec::new();
    for c in &r.content {
        parts.push(match c {
            ContentBlock::Text(t) => t.text.clone(),
            ContentBlock::Image(i) => format!("[an image, {}]", i.mime_type),
            ContentBlock::Audio(a) => format!("[audio, {}]", a.mime_type),
            ContentBlock::Resource(r) => match &r.resource {
                ResourceContents::TextResourceContents { uri, text, .. } => {
                    format!("[{uri}]\n{text}")
                }
                ResourceContents::BlobResourceContents { uri, .. } => {
                    format!("[binary content at {uri}]")
                }
                _ => "[a resource of a kind Krake does not read]".to_owned(),
            },
            ContentBlock::ResourceLink(l) => format!("[a link to {}]", l.uri),
            _ => "[content of a kind Krake does not read]".to_owned(),
        });
    }
    if parts.is_empty()
        && let Some(s) = &r.structured_content
    {
        parts.push(s.to_string());
    }
    ToolOutput {
        text: parts.join("\n"),
        is_error: r.is_error.unwrap_or(false),
    }
}

#[async_trait]
impl ToolServers for McpTools {
    async fn ready(&self) {
        self.start();
        for slot in self.slots.values() {
            let mut rx = slot.attempts.subscribe();
            let wait = Duration::from_secs(30).max(slot.spec.timeout);
            // A server that does not come up in time is reported by its calls.
            let _ = tokio::time::timeout(wait, rx.wait_for(|n| *n > 0)).await;
        }
    }

    fn tools(&self) -> Vec<OutsideTool> {
        self.start();
        self.slots
            .values()
            .filter_map(|s| s.state.read().ok().map(|st| st.tools.clone()))
            .flatten()
            .collect()
    }

    async fn call(
        &self,
        server: &str,
        tool: &str,
        arguments: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<ToolOutput, ToolCallError> {
        self.ready().await;
        let q = format!("{server}/{tool}");
        let slot = self.slots.get(server).ok_or_else(|| {
            ToolCallError::Unavailable(server.to_owned(), "it is not configured".into())
        })?;
        let peer = {
            let st = slot.state.read().map_err(|_| {
                ToolCallError::Unavailable(server.to_owned(), "state lock poisoned".into())
            })?;
            st.peer
                .clone()
                .ok_or_else(|| ToolCallError::Unavailable(server.to_owned(), st.down.clone()))?
        };
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = Some(arguments.clone());
        match tokio::time::timeout(slot.spec.timeout, peer.call_tool(params)).await {
            Err(_) => Err(ToolCallError::Timeout(q, slot.spec.timeout.as_secs())),
            Ok(Err(e)) => Err(ToolCallError::Failed(q, e.to_string())),
            Ok(Ok(r)) => Ok(text_of(r)),
        }
    }

    fn price_micros(&self, server: &str) -> i64 {
        self.slots.get(server).map_or(0, |s| s.spec.price_micros)
    }

    fn max_result_chars(&self, server: &str) -> usize {
        self.slots
            .get(server)
            .map_or(DEFAULT_MAX_RESULT_CHARS, |s| s.spec.max_result_chars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: &str) -> Result<Vec<ServerSpec>, ConfigError> {
        #[derive(Deserialize)]
        struct F {
            mcp: McpFile,
        }
        let f: F = toml::from_str(toml_text).map_err(|e| ConfigError(e.to_string()))?;
        f.mcp.resolve(|k| match k {
            "PATH" => Some("/usr/bin".into()),
            "SHOP_TOKEN" => Some("Bearer s3cret".into()),
            "GITHUB_TOKEN" => Some("ghp_x".into()),
            _ => None,
        })
    }

    #[test]
    fn servers_from_the_file() {
        let s = load(
            r#"
[[mcp.servers]]
name = "shop"
command = "python3"
args = ["server.py"]
env = { MODE = "test" }
env_pass = ["GITHUB_TOKEN"]
timeout_secs = 5
price_per_call = 0.002
[mcp.servers.tools]
lookup_order = "act"
"delete_*" = "deny"

[[mcp.servers]]
name = "files"
url = "http://127.0.0.1:9000/mcp"
header = "Authorization"
header_env = "SHOP_TOKEN"
default_policy = "act"
"#,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].price_micros, 2000);
        assert_eq!(s[0].timeout, Duration::from_secs(5));
        assert_eq!(s[0].rules.policy("lookup_order"), ToolPolicy::Act);
        assert_eq!(s[0].rules.policy("delete_all"), ToolPolicy::Deny);
        assert_eq!(s[0].rules.policy("other"), ToolPolicy::Approval);
        let Transport::Stdio { env, .. } = &s[0].transport else {
            panic!("stdio");
        };
        let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["PATH", "GITHUB_TOKEN", "MODE"],
            "nothing else passes"
        );
        assert_eq!(s[1].rules.policy("anything"), ToolPolicy::Act);
        let Transport::Http { headers, .. } = &s[1].transport else {
            panic!("http");
        };
        assert_eq!(headers[&http::header::AUTHORIZATION], "Bearer s3cret");
        assert!(
            !format!("{:?}", s[1]).contains("s3cret"),
            "secrets never print"
        );

        for (bad, says) in [
            ("name = \"a b\"\ncommand = \"x\"", "must be letters"),
            ("name = \"a\"", "either `command`"),
            (
                "name = \"a\"\ncommand = \"x\"\nurl = \"http://x\"",
                "either `command`",
            ),
            ("name = \"a\"\nurl = \"ftp://x\"", "must start with http"),
            (
                "name = \"a\"\nurl = \"http://x\"\nheader_env = \"SHOP_TOKEN\"",
                "go together",
            ),
            (
                "name = \"a\"\nurl = \"http://x\"\nheader = \"X\"\nheader_env = \"NOPE\"",
                "NOPE, which is not set",
            ),
            (
                "name = \"a\"\ncommand = \"x\"\nenv_pass = [\"NOPE\"]",
                "NOPE, which is not set",
            ),
            (
                "name = \"a\"\ncommand = \"x\"\nprice_per_call = -1",
                "price_per_call",
            ),
            (
                "name = \"a\"\ncommand = \"x\"\n[mcp.servers.tools]\nx = \"maybe\"",
                "unknown variant",
            ),
        ] {
            let e = load(&format!("[[mcp.servers]]\n{bad}")).unwrap_err();
            assert!(e.0.contains(says), "{bad}: {e}");
        }
        let e = load("[[mcp.servers]]\nname = \"a\"\ncommand = \"x\"\n[[mcp.servers]]\nname = \"a\"\ncommand = \"y\"").unwrap_err();
        assert!(e.0.contains("used twice"), "{e}");
    }

    #[test]
    fn results_read_as_text() {
        let r: CallToolResult = serde_json::from_value(serde_json::json!({
            "content": [
                {"type": "text", "text": "order 1042: shipped"},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "file:///a.txt", "text": "hello"}}
            ],
            "isError": true
        }))
        .unwrap();
        let t = text_of(r);
        assert_eq!(
            t.text,
            "order 1042: shipped\n[an image, image/png]\n[file:///a.txt]\nhello"
        );
        assert!(t.is_error);
        let r: CallToolResult = serde_json::from_value(
            serde_json::json!({"content": [], "structuredContent": {"n": 1}}),
        )
        .unwrap();
        assert_eq!(text_of(r).text, r#"{"n":1}"#);
    }
}
