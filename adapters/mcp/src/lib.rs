//! # krake-mcp
//!
//! Krake as a [Model Context Protocol](https://modelcontextprotocol.io) server, with `rmcp`
//! (the protocol's official Rust SDK, pinned in the workspace and used nowhere else): a
//! desktop assistant or an agent platform calls Krake's chat commands as **tools**.
//!
//! - **Tools are the commands.** One tool per entry of core's command table
//!   ([`COMMANDS`]): its name, its description and its JSON Schema come from the same
//!   definitions the chat grammar, help, Telegram's command menu and Discord's slash commands
//!   use ([`command_options`]), so they never drift. Arguments go to core by name
//!   ([`CommandParser::from_options`]), never glued into a command line.
//! - **One path into core.** A call is an inbound event of the front `mcp`
//!   ([`Krake::accept`]): the caller's roles bound it, the same rules and audit apply as on
//!   every front, and a refusal (a viewer approving, say) is a tool error saying why.
//! - **Who calls.** Over Streamable HTTP (`/mcp` on `krake serve`) every request carries a
//!   personal API token (`Authorization: Bearer …`), checked by the [`Authenticate`] the
//!   server is given; a request without one gets 401 before any JSON-RPC is read. Over stdio
//!   (`krake mcp`) the process is started with one token, checked once at start.
//! - **Resources**: the open threads the caller sees (`krake://threads/12`) and the folders it
//!   may read (`krake://folders/soshie/content calendar`), read through the same `show` and
//!   `folder show` commands, so with the same rights.
//! - **Bounded.** Request bodies over [`MAX_BODY`] get 413; a malformed JSON-RPC message gets
//!   an error and the connection stays usable (rmcp's framing).
//!
//! [`COMMANDS`]: krake_core::chat::command::COMMANDS
//! [`command_options`]: krake_core::chat::options::command_options
//! [`CommandParser::from_options`]: krake_core::chat::command::CommandParser

pub mod tools;

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use krake_core::Krake;
use krake_core::actor::{Actor, Front};
use krake_core::chat::command::{COMMANDS, CommandSpec, Parsed};
use krake_core::chat::options::{OptionKind, OptionValue, command_options};
use krake_core::inbound::{Content, IdempotencyKey, Inbound};
use krake_core::inbox::{ThreadFilter, ThreadStatus};
use krake_core::reply::Tone;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    InitializeResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The URI prefix of a thread resource (`krake://threads/12`).
pub const THREADS: &str = "krake://threads/";

/// The URI prefix of a folder resource (`krake://folders/soshie/content calendar`).
pub const FOLDERS: &str = "krake://folders/";

/// Resources listed at most, of each kind.
const MAX_RESOURCES: u32 = 100;

/// Where the Streamable HTTP endpoint is served.
pub const PATH: &str = "/mcp";

/// The largest request body the HTTP endpoint reads (a 10 MB message gets 413).
pub const MAX_BODY: usize = 1024 * 1024;

/// Resolves a bearer token to who it stands for (a personal API token; `None` when unknown,
/// expired, revoked or not personal).
#[async_trait]
pub trait Authenticate: Send + Sync {
    /// The actor behind `token`, acting through the `mcp` front.
    async fn actor(&self, token: &str) -> Result<Option<Actor>, String>;
}

/// Krake's commands as MCP tools, for one caller (stdio) or for whoever each HTTP request
/// authenticates as.
#[derive(Clone)]
pub struct KrakeTools {
    krake: Krake,
    /// The caller over stdio; over HTTP each request's own.
    caller: Option<Actor>,
    session: Arc<str>,
    calls: Arc<AtomicU64>,
}

impl KrakeTools {
    /// Tools acting for `caller` (stdio), or for each HTTP request's authenticated actor
    /// (`None`).
    pub fn new(krake: Krake, caller: Option<Actor>) -> Self {
        Self {
            krake,
            caller,
            session: Arc::from(session_id()),
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Every tool: one per command, described from the command table.
    pub fn tools(&self) -> Vec<Tool> {
        COMMANDS
            .iter()
            .map(|spec| tool(spec, &self.krake))
            .collect()
    }

    /// Runs tool `name` with `arguments` for `actor`: the reply's text, and whether it is a
    /// refusal or an error.
    pub async fn call(
        &self,
        actor: &Actor,
        name: &str,
        arguments: &Map<String, Value>,
    ) -> CallToolResult {
        let options: Vec<(String, OptionValue)> = arguments
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => OptionValue::Text(s.clone()),
                    Value::Number(n) => n
                        .as_i64()
                        .map_or_else(|| OptionValue::Other(n.to_string()), OptionValue::Integer),
                    other => OptionValue::Other(other.to_string()),
                };
                (k.clone(), value)
            })
            .collect();
        let cmd = match self.krake.parser().from_options(name, &options) {
            Parsed::Command(c) => c,
            Parsed::NotUnderstood {
                problem,
                suggestion,
            } => {
                let text = match suggestion {
                    Some(s) => format!("{problem} Try: {s}"),
                    None => problem,
                };
                return CallToolResult::error(vec![ContentBlock::text(text)]);
            }
            Parsed::Empty => {
                return CallToolResult::error(vec![ContentBlock::text(format!(
                    "`{name}` needs its arguments; tools/list gives its schema"
                ))]);
            }
        };
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let Ok(key) = IdempotencyKey::parse(&format!(
            "mcp:{}:{}:{n}",
            actor.user.as_str().chars().take(64).collect::<String>(),
            self.session
        )) else {
            return CallToolResult::error(vec![ContentBlock::text("this call has no usable key")]);
        };
        let mut actor = actor.clone();
        actor.front = Front::Mcp;
        let accepted = self
            .krake
            .accept(Inbound {
                source: Front::Mcp,
                key,
                actor,
                conversation: format!("mcp:{}", self.session),
                reply_to: None,
                answer_to: None,
                content: Content::Command(cmd),
            })
            .await;
        let reply = accepted.reply;
        let content = vec![ContentBlock::text(reply.text.clone())];
        match reply.tone {
            Tone::Error | Tone::Warning => CallToolResult::error(content),
            Tone::Info | Tone::Success => CallToolResult::success(content),
        }
    }

    fn caller_of(&self, context: &RequestContext<RoleServer>) -> Option<Actor> {
        if let Some(a) = &self.caller {
            return Some(a.clone());
        }
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Actor>())
            .cloned()
    }
}

impl ServerHandler for KrakeTools {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
            .with_server_info(Implementation::new("krake", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Krake runs a small business's operations: a To Do inbox of approvals, escalations and questions, \
                 agents, KPIs, schedules and folders. Each tool is one of Krake's chat commands; thread numbers are \
                 integers (#12 → 12). What you may see and do is what your API token's user may.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let Some(actor) = self.caller_of(&context) else {
            return Err(ErrorData::invalid_request("not signed in", None));
        };
        let internal = |e: &dyn std::fmt::Display| ErrorData::internal_error(e.to_string(), None);
        let visible = actor.visible(self.krake.directory().workspaces().iter().map(|w| &w.slug));
        let threads = self
            .krake
            .list_threads(&ThreadFilter {
                status: Some(ThreadStatus::Open),
                visible,
                limit: MAX_RESOURCES,
                ..ThreadFilter::default()
            })
            .await
            .map_err(|e| internal(&e))?;
        let mut out: Vec<Resource> = threads
            .iter()
            .map(|t| {
                Resource::new(
                    format!("{THREADS}{}", t.id.0),
                    format!("#{} {}", t.id.0, t.title),
                )
                .with_description(format!("{} in {}, {}", t.kind, t.workspace, t.status))
                .with_mime_type("text/plain")
            })
            .collect();
        // Folders are optional (a Krake without them lists threads only).
        if let Ok(folders) = self.krake.folders_for(&actor, None).await {
            out.extend(folders.iter().take(MAX_RESOURCES as usize).map(|f| {
                Resource::new(
                    format!("{FOLDERS}{}/{}", f.agent.to_lowercase(), f.name),
                    format!("{}'s folder {}", f.agent, f.name),
                )
                .with_mime_type("text/plain")
            }));
        }
        Ok(ListResourcesResult::with_all_items(out))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let Some(actor) = self.caller_of(&context) else {
            return Err(ErrorData::invalid_request("not signed in", None));
        };
        let uri = request.uri.as_str();
        let not_found = || {
            ErrorData::resource_not_found(
                format!(
                    "no such resource: {}",
                    uri.chars().take(200).collect::<String>()
                ),
                None,
            )
        };
        // The same commands, and so the same rights, as `show` and `folder show`.
        let parsed = if let Some(id) = uri.strip_prefix(THREADS) {
            let id: i64 = id.parse().map_err(|_| not_found())?;
            self.krake.parser().parse(&format!("/show {id}"))
        } else if let Some(rest) = uri.strip_prefix(FOLDERS) {
            let (agent, name) = rest.split_once('/').ok_or_else(not_found)?;
            if name.contains('"') || agent.contains(char::is_whitespace) {
                return Err(not_found());
            }
            self.krake
                .parser()
                .parse(&format!("/folder show {agent} \"{name}\""))
        } else {
            return Err(not_found());
        };
        let Parsed::Command(cmd) = parsed else {
            return Err(not_found());
        };
        let mut actor = actor;
        actor.front = Front::Mcp;
        let reply = self.krake.execute(&actor, cmd).await;
        if matches!(reply.tone, Tone::Error | Tone::Warning) {
            return Err(ErrorData::invalid_request(reply.text, None));
        }
        Ok(ReadResourceResult::new(vec![ResourceContents::text(reply.text, uri)]).into())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !COMMANDS.iter().any(|c| c.name == request.name) {
            return Err(ErrorData::invalid_params(
                format!(
                    "there is no tool `{}`; tools/list names them",
                    request.name.chars().take(64).collect::<String>()
                ),
                None,
            ));
        }
        let Some(actor) = self.caller_of(&context) else {
            return Err(ErrorData::invalid_request("not signed in", None));
        };
        let args = request.arguments.unwrap_or_default();
        Ok(self.call(&actor, &request.name, &args).await.into())
    }
}

/// One command as a tool: its description (with an example) and the JSON Schema of its
/// options.
fn tool(spec: &CommandSpec, krake: &Krake) -> Tool {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for o in command_options(spec, krake.directory()) {
        let mut p = match o.kind {
            OptionKind::Id => json!({"type": "integer", "minimum": 1}),
            OptionKind::Text => json!({"type": "string"}),
        };
        p["description"] = Value::String(o.about.to_owned());
        if !o.choices.is_empty() {
            p["enum"] = o
                .choices
                .iter()
                .map(|(_, v)| Value::String(v.clone()))
                .collect();
        }
        if o.required {
            required.push(Value::String(o.name.to_owned()));
        }
        properties.insert(o.name.to_owned(), p);
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    schema.insert("required".into(), Value::Array(required));
    schema.insert("additionalProperties".into(), json!(false));
    Tool::new(
        spec.name,
        format!("{}. In chat: {}", spec.about, spec.example),
        Arc::new(schema),
    )
}

fn session_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{t:x}", std::process::id())
}

/// Why `krake mcp` could not serve.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The MCP session could not start (the client did not initialize).
    #[error("the MCP session did not start: {0}")]
    Start(String),
    /// The session ended with an error.
    #[error("the MCP session ended with an error: {0}")]
    Ended(String),
}

/// Serves the tools over stdin/stdout for `caller` until the client goes away.
pub async fn serve_stdio(krake: Krake, caller: Actor) -> Result<(), McpError> {
    let running = rmcp::serve_server(
        KrakeTools::new(krake, Some(caller)),
        rmcp::transport::stdio(),
    )
    .await
    .map_err(|e| McpError::Start(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| McpError::Ended(e.to_string()))?;
    Ok(())
}

/// The Streamable HTTP endpoint at [`PATH`]: every request needs a bearer token that `auth`
/// accepts; the tools act for that token's user.
pub fn router(krake: Krake, auth: Arc<dyn Authenticate>) -> axum::Router {
    let tools = KrakeTools::new(krake, None);
    let config = StreamableHttpServerConfig::default()
        .with_max_request_body_bytes(MAX_BODY)
        // Every request is authenticated by its token, so the endpoint may be reached by any
        // host name a deployment gives it (the loopback-only default guards servers without auth).
        .disable_allowed_hosts();
    let service = StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    axum::Router::new()
        .nest_service(PATH, service)
        .layer(axum::middleware::from_fn_with_state(auth, authenticate))
}

/// Refuses a request without a token the [`Authenticate`] accepts (401, with what to do);
/// otherwise hands its actor to the tools.
async fn authenticate(
    State(auth): State<Arc<dyn Authenticate>>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let refuse = |why: &str| {
        (
            StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(json!({"error": why})),
        )
            .into_response()
    };
    let Some(token) = token else {
        return refuse(
            "send a personal API token: Authorization: Bearer krk_… (krake user token NAME)",
        );
    };
    match auth.actor(&token).await {
        Ok(Some(actor)) => {
            req.extensions_mut().insert(actor);
            next.run(req).await
        }
        Ok(None) => refuse("this token is unknown, expired or revoked"),
        Err(e) => {
            tracing::warn!(error = %e, "MCP authentication failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": "cannot check tokens now; try again"})),
            )
                .into_response()
        }
    }
}
