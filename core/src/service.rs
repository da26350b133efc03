//! [`Krake`]: takes a command (or a raw message) from any front and returns a [`Reply`].
//!
//! Fronts convert and render; every rule lives here: who may decide, what a listing shows,
//! how an incoming message is made idempotent.

use crate::actor::{Actor, Front, Role, UserName};
use crate::chat::command::{Command, CommandParser, ListQuery, Parsed, StatusFilter};
use crate::commerce::{CommerceRepo, Kpis};
use crate::config::Directory;
use crate::delivery::Routes;
use crate::inbound::Change;
use crate::inbox::rules::{Followed, InboxEvent, InboxListener, Refusal};
use crate::inbox::{
    Decision, DecisionOutcome, Expired, NewThread, Origin, Thread, ThreadFilter, ThreadId,
    ThreadKind, ThreadStatus,
};
use crate::ports::{ArchiveOutcome, InboundRepo, InboxRepo, RepoError, UserRepo, WriteCtx};
use crate::reply::Reply;
use crate::text::{capitalise, one_line};
use crate::time::{Clock, Timestamp};
use crate::workspace::WorkspaceSlug;
use std::fmt::Write as _;
use std::sync::Arc;

/// The core service: the inbox and the command handler, over the ports it needs.
#[derive(Clone)]
pub struct Krake {
    pub(crate) inbox: Arc<dyn InboxRepo>,
    pub(crate) inbound: Arc<dyn InboundRepo>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) directory: Arc<Directory>,
    parser: Arc<CommandParser>,
    pub(crate) schedules: Option<Arc<dyn crate::schedule::ScheduleRepo>>,
    pub(crate) folders: Option<Arc<dyn crate::folder::FolderRepo>>,
    pub(crate) default_tz: chrono_tz::Tz,
    routes: Arc<Routes>,
    users: Option<Arc<dyn UserRepo>>,
    pub(crate) commerce: Option<Arc<dyn CommerceRepo>>,
    pub(crate) kpi_desk: Option<Arc<crate::kpi::KpiDesk>>,
    pub(crate) agents: Option<Arc<dyn crate::run::AgentDesk>>,
    pub(crate) listeners: Vec<Arc<dyn InboxListener>>,
    pub(crate) outbox: Option<Arc<dyn crate::ports::OutboxRepo>>,
    pub(crate) learning: Option<crate::knowledge::chat::Learning>,
    pub(crate) visitors: Option<crate::visitor::Visitors>,
    live: crate::delivery::LiveSenders,
}

impl Krake {
    /// Builds the service.
    pub fn new(
        inbox: Arc<dyn InboxRepo>,
        inbound: Arc<dyn InboundRepo>,
        clock: Arc<dyn Clock>,
        directory: Directory,
    ) -> Self {
        let parser = CommandParser::new(directory.workspaces(), directory.agents());
        Self {
            inbox,
            inbound,
            clock,
            directory: Arc::new(directory),
            parser: Arc::new(parser),
            schedules: None,
            folders: None,
            default_tz: chrono_tz::Tz::UTC,
            routes: Arc::new(Routes::new()),
            users: None,
            commerce: None,
            kpi_desk: None,
            agents: None,
            listeners: Vec::new(),
            outbox: None,
            learning: None,
            visitors: None,
            live: crate::delivery::LiveSenders::new(),
        }
    }

    /// The same service learning files people send (`/sources`, `/source`, `/forget` too).
    pub fn with_learning(mut self, learning: crate::knowledge::chat::Learning) -> Self {
        self.learning = Some(learning);
        self
    }

    /// The same service sharing `live` with the run engine: each front adds its sender
    /// there as it starts, so agents' answers stream where they were asked.
    pub fn with_live(mut self, live: crate::delivery::LiveSenders) -> Self {
        self.live = live;
        self
    }

    /// Where fronts add their senders for answers shown live.
    pub fn live(&self) -> &crate::delivery::LiveSenders {
        &self.live
    }

    /// The same service with agents: `ask` starts runs (or answers offline), decisions on
    /// agents' approvals reach them, `/costs` reads the ledger, and text the grammar does not
    /// understand may be routed by a model.
    pub fn with_agents(mut self, agents: Arc<dyn crate::run::AgentDesk>) -> Self {
        self.listeners.push(Arc::new(DeskListener(agents.clone())));
        self.agents = Some(agents);
        self
    }

    /// The same service with the outbox's dead letters shown to owners (`/deadletters`).
    pub fn with_outbox(mut self, outbox: Arc<dyn crate::ports::OutboxRepo>) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// The same service with `listener` also hearing the inbox's events (decisions and
    /// replies), after those added before (the agents' desk, metrics).
    pub fn with_listener(mut self, listener: Arc<dyn InboxListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Enables the `/schedule` commands on this store; `default_tz` applies to schedules that
    /// name no time zone.
    pub fn with_schedules(
        mut self,
        repo: Arc<dyn crate::schedule::ScheduleRepo>,
        default_tz: chrono_tz::Tz,
    ) -> Self {
        self.schedules = Some(repo);
        self.default_tz = default_tz;
        self
    }

    /// Enables the `/folder` commands on this store.
    pub fn with_folders(mut self, repo: Arc<dyn crate::folder::FolderRepo>) -> Self {
        self.folders = Some(repo);
        self
    }

    /// The same service posting new threads to `routes` (each front adds its destinations).
    pub fn with_routes(mut self, routes: Routes) -> Self {
        self.routes = Arc::new(routes);
        self
    }

    /// The same service with accounts: platform identities linked to users with roles.
    pub fn with_users(mut self, users: Arc<dyn UserRepo>) -> Self {
        self.users = Some(users);
        self
    }

    /// Who a platform user is: the linked Krake user with their roles, or an unlinked guest
    /// who may chat and read the threads of `home` (the workspace their chat belongs to).
    pub async fn identify(
        &self,
        front: Front,
        external_id: &str,
        display_name: &str,
        home: Option<&WorkspaceSlug>,
    ) -> Result<Actor, RepoError> {
        if let Some(users) = &self.users
            && let Some(name) = users.linked_user(front, external_id).await?
            && let Some(rec) = users.user(&name).await?
        {
            let mut actor = Actor::new(rec.name, front, rec.role);
            actor.workspace_roles = rec.workspace_roles;
            actor.external_id = Some(external_id.to_owned());
            return Ok(actor);
        }
        tracing::debug!(%front, external_id, name = display_name, "unlinked platform user");
        let name = UserName::parse(&format!("{front}:{external_id}"))
            .unwrap_or_else(|_| UserName::guest());
        let mut actor = Actor::new(name, front, Role::Guest);
        actor.external_id = Some(external_id.to_owned());
        actor.unlinked = true;
        if let Some(home) = home {
            actor.workspace_roles.insert(home.clone(), Role::Viewer);
        }
        Ok(actor)
    }

    async fn link(&self, actor: &Actor, code: &str) -> Result<Reply, RepoError> {
        let Some(users) = &self.users else {
            return Ok(Reply::warning("This Krake has no accounts to link to."));
        };
        let Some(external_id) = &actor.external_id else {
            return Ok(Reply::info(format!(
                "Linking connects a Telegram or Discord account to a Krake user; here you already are `{}`.",
                actor.user
            )));
        };
        match users
            .redeem_link_code(
                &code.to_uppercase(),
                actor.front,
                external_id,
                self.clock.now(),
            )
            .await?
        {
            Some(user) => Ok(Reply::success(format!(
                "Linked: on {} you now act as `{user}`.",
                actor.front
            ))),
            None => Ok(Reply::warning(
                "That code is unknown, already used or expired. Ask an owner for a new one (`krake user link-code NAME`); codes last 15 minutes.",
            )),
        }
    }

    /// The same service with commerce KPIs (`/kpi`).
    pub fn with_commerce(mut self, commerce: Arc<dyn CommerceRepo>) -> Self {
        self.commerce = Some(commerce);
        self
    }

    /// The KPIs of a workspace, if the actor may see it (`None` otherwise, or without commerce).
    pub async fn kpis(
        &self,
        actor: &Actor,
        workspace: &WorkspaceSlug,
    ) -> Result<Option<Kpis>, RepoError> {
        match &self.commerce {
            Some(c)
                if actor.can_see(workspace) && self.directory.workspace(workspace).is_some() =>
            {
                Ok(Some(c.kpis(workspace, 14, self.clock.now()).await?))
            }
            _ => Ok(None),
        }
    }

    /// The workspace a command about one workspace is for: the one named, or the first the
    /// person sees; a reply saying why not when they see none or not that one (`what` is what
    /// stays hidden, with its verb: "figures are", "knowledge is").
    pub(crate) fn workspace_for(
        &self,
        actor: &Actor,
        workspace: Option<WorkspaceSlug>,
        what: &str,
    ) -> Result<WorkspaceSlug, Reply> {
        let Some(ws) = workspace.or_else(|| {
            self.directory
                .workspaces()
                .iter()
                .map(|w| w.slug.clone())
                .find(|w| actor.can_see(w))
        }) else {
            return Err(Reply::warning(format!(
                "You see no workspace yet.{}",
                link_hint(actor)
            )));
        };
        if !actor.can_see(&ws) {
            return Err(Reply::warning(format!(
                "You are not a member of {ws}, so its {what} hidden from you.{}",
                link_hint(actor)
            )));
        }
        Ok(ws)
    }

    async fn kpi(
        &self,
        actor: &Actor,
        workspace: Option<WorkspaceSlug>,
    ) -> Result<Reply, RepoError> {
        let ws = match self.workspace_for(actor, workspace, "figures are") {
            Ok(ws) => ws,
            Err(refused) => return Ok(refused),
        };
        let name = self
            .directory
            .workspace(&ws)
            .map_or_else(|| ws.to_string(), |w| w.name.clone());
        let (mut text, cards) = match self.kpi_board(actor, &ws).await? {
            Some(b) => (
                crate::kpi::render_board(&b, self.clock.now()),
                crate::kpi::kpi_cards(&b),
            ),
            None => (String::new(), Vec::new()),
        };
        // The shop's orders (the day's figures, earlier days, print orders), when it has any.
        if let Some(k) = self.kpis(actor, &ws).await?
            && (k.today.is_some() || !k.fulfilment.is_empty() || k.late_orders > 0)
        {
            let _ = write!(text, "\n\n{}", crate::commerce::render_kpis(&k, &name));
        }
        if text.is_empty() {
            return Ok(Reply::warning(format!(
                "No figures for {name}: KPIs are not set up here."
            )));
        }
        Ok(Reply::info(text.trim().to_owned()).with_blocks(cards))
    }

    /// The model costs of a month for one workspace or every workspace the actor sees
    /// (`None` without agents, or for a workspace the actor may not see).
    pub async fn cost_report(
        &self,
        actor: &Actor,
        workspace: Option<&WorkspaceSlug>,
        month: Option<&str>,
    ) -> Result<Option<crate::ledger::CostReport>, RepoError> {
        match &self.agents {
            Some(a) => a.cost_report(actor, workspace, month).await,
            None => Ok(None),
        }
    }

    /// Every agent of a workspace `actor` sees, with its status; `None` when agents are not
    /// set up here.
    pub async fn agent_status(
        &self,
        actor: &Actor,
    ) -> Result<Option<Vec<crate::run::AgentStatus>>, RepoError> {
        match &self.agents {
            Some(a) => a.agent_status(actor).await.map(Some),
            None => Ok(None),
        }
    }

    /// The runs `actor` may see that match `q`, newest first; `None` when agents are not
    /// set up here.
    pub async fn runs(
        &self,
        actor: &Actor,
        q: &crate::run::RunQuery,
    ) -> Result<Option<Vec<crate::run::Run>>, RepoError> {
        match &self.agents {
            Some(a) => a.runs(actor, q).await.map(Some),
            None => Ok(None),
        }
    }

    /// One run with its steps and usage, if agents are set up and `actor` may see it.
    pub async fn run_view(
        &self,
        actor: &Actor,
        id: crate::run::RunId,
    ) -> Result<Option<crate::run::RunView>, RepoError> {
        match &self.agents {
            Some(a) => a.run(actor, id).await,
            None => Ok(None),
        }
    }

    /// Cancels a run for `actor` (see [`Runner::cancel`](crate::run::Runner::cancel)); without
    /// agents there is no run to cancel.
    pub async fn cancel_run(
        &self,
        actor: &Actor,
        id: crate::run::RunId,
        reason: Option<&str>,
    ) -> Result<crate::run::Cancel, RepoError> {
        match &self.agents {
            Some(a) => a.cancel(actor, id, reason).await,
            None => Ok(crate::run::Cancel::NotFound),
        }
    }

    /// Now, by the service's clock (a manual one in tests): fronts check request times
    /// against it.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Where new threads of each workspace are posted.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// The workspaces and agents.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The parser, for fronts that want to parse without executing.
    pub fn parser(&self) -> &CommandParser {
        &self.parser
    }

    /// Parses and executes text without recording it (for the local terminal and tests).
    pub async fn handle_text(&self, actor: &Actor, text: &str) -> Reply {
        match self.parser.parse(text) {
            Parsed::Command(cmd) => self.execute(actor, cmd).await,
            other => match self.route(actor, text, &other).await {
                Some(cmd) => self.execute(actor, cmd).await,
                None => render_unparsed(other),
            },
        }
    }

    /// A command a model picked for text the grammar did not understand, if agents and a
    /// model are configured (validated by the same parser as typed input).
    pub(crate) async fn route(
        &self,
        actor: &Actor,
        text: &str,
        parsed: &Parsed,
    ) -> Option<Command> {
        let agents = self.agents.as_ref()?;
        if !matches!(parsed, Parsed::NotUnderstood { .. }) {
            return None;
        }
        match agents.route(actor, &self.parser, text).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "natural-language routing failed");
                None
            }
        }
    }

    /// Executes a command (unrecorded: for the local terminal, tools and tests; fronts go
    /// through [`accept`](Self::accept)).
    pub async fn execute(&self, actor: &Actor, cmd: Command) -> Reply {
        match self.execute_with(actor, cmd, None, None).await {
            Ok(r) => r,
            Err(RepoError::AlreadyApplied) => Reply::info("That message was already handled."),
            Err(e) => failure(&e),
        }
    }

    /// Creates a thread (for agents, webhooks, schedules and the demo).
    pub async fn create_thread(&self, actor: &Actor, new: &NewThread) -> Result<Thread, RepoError> {
        let new = self.routed(new);
        self.inbox.create(&new, &self.ctx(actor, None)).await
    }

    /// The thread with its workspace's routes added to where it is posted.
    pub(crate) fn routed(&self, new: &NewThread) -> NewThread {
        let mut new = new.clone();
        for d in self.routes.for_workspace(&new.workspace) {
            if !new.post_to.contains(d) {
                new.post_to.push(d.clone());
            }
        }
        new
    }

    /// Threads matching a filter, newest first (for fronts that render their own lists).
    pub async fn list_threads(&self, filter: &ThreadFilter) -> Result<Vec<Thread>, RepoError> {
        self.inbox.list(filter).await
    }

    /// Expires overdue threads, each exactly once.
    pub async fn sweep_expired(&self) -> Result<Vec<Expired>, RepoError> {
        self.inbox
            .sweep_expired(self.clock.now(), 100, &self.routes)
            .await
    }

    pub(crate) fn ctx(
        &self,
        actor: &Actor,
        inbound: Option<&crate::inbound::InboundMark>,
    ) -> WriteCtx {
        WriteCtx {
            actor: actor.clone(),
            inbound: inbound.cloned(),
            now: self.clock.now(),
        }
    }

    /// Executes a command for `actor`; `version` is the thread version a button carried,
    /// `inbound` the event whose processed mark goes with the state change.
    pub(crate) async fn execute_with(
        &self,
        actor: &Actor,
        cmd: Command,
        version: Option<i64>,
        inbound: Option<&crate::inbound::InboundMark>,
    ) -> Result<Reply, RepoError> {
        let ctx = self.ctx(actor, inbound);
        match cmd {
            Command::Help { topic } => Ok(help(topic.as_deref())),
            Command::Workspaces => Ok(self.workspaces()),
            Command::Agents => match self.agent_status(actor).await? {
                Some(status) => Ok(crate::chat::runs::render_agents(
                    self.directory.agents(),
                    &status,
                )),
                None => Ok(self.agents()),
            },
            Command::List(q) => self.list(actor, &q).await,
            Command::Show(id) => self.show(actor, id).await,
            Command::Link { code } => self.link(actor, &code).await,
            Command::Kpi { workspace } => self.kpi(actor, workspace).await,
            Command::Overview => match self.overview(actor).await? {
                Some(o) => Ok(Reply::info(crate::kpi::render_overview(
                    &o,
                    self.clock.now(),
                ))),
                None => Ok(Reply::warning("KPIs are not available here.")),
            },
            Command::Search { workspace, text } => self.search(actor, workspace, &text).await,
            Command::Sources { workspace } => self.sources(actor, workspace).await,
            Command::Source {
                workspace,
                source,
                position,
            } => self.source(actor, workspace, &source, position).await,
            Command::Forget { workspace, source } => self.forget(workspace, &source, &ctx).await,
            Command::Costs { workspace } => match &self.agents {
                Some(a) => a.costs(actor, workspace.as_ref()).await,
                None => Ok(Reply::info("No model calls: agents are not set up here.")),
            },
            Command::Reply { id, text } => self.reply(id, &text, &ctx).await,
            Command::Approve(id) => self.decide(id, Decision::Approve, version, &ctx).await,
            Command::Reject { id, reason } => {
                self.decide(id, Decision::Reject { reason }, version, &ctx)
                    .await
            }
            Command::Archive(id) => self.archive(id, true, &ctx).await,
            Command::Unarchive(id) => self.archive(id, false, &ctx).await,
            Command::Stats { workspace } => {
                if let Some(w) = workspace.as_ref().filter(|w| !actor.can_see(w)) {
                    return Ok(Reply::warning(format!(
                        "You are not a member of {w}, so its threads are hidden from you.{}",
                        link_hint(actor)
                    )));
                }
                let stats = self.response_stats(actor, workspace.as_ref()).await?;
                Ok(crate::chat::text::render_stats(&stats, self.clock.now()))
            }
            Command::DeadLetters(c) => Ok(crate::chat::text::render_dead_letters(
                &self.dead_letters(actor, c).await?,
            )),
            Command::Runs(q) => self.chat_runs(actor, &q).await,
            Command::Run(id) => self.chat_run(actor, id).await,
            Command::Cancel { id, reason } => self.chat_cancel(actor, id, reason.as_deref()).await,
            // Off the accept path (no event to key the parts by): one after the other.
            Command::Batch(items) => {
                let mut replies = Vec::with_capacity(items.len());
                for item in items {
                    replies.push(Box::pin(self.execute_with(actor, item, None, None)).await?);
                }
                Ok(crate::chat::text::each(replies))
            }
            Command::Ask { agent, text } => self.ask(actor, agent.as_str(), &text, &ctx).await,
            Command::Schedule(c) => self.schedule_command(actor, c, &ctx).await,
            Command::Folder(c) => self.folder_command(actor, c, &ctx).await,
        }
    }

    fn workspaces(&self) -> Reply {
        let mut t = String::from("Workspaces:\n");
        for w in self.directory.workspaces() {
            let _ = writeln!(t, "  {:<16} {}", w.slug, w.name);
        }
        Reply::info(t.trim_end())
    }

    fn agents(&self) -> Reply {
        let mut t = String::from("Agents:\n");
        for a in self.directory.agents() {
            let homes: Vec<&str> = a.workspaces.iter().map(|w| w.as_str()).collect();
            let _ = writeln!(
                t,
                "  {:<7} {:<21} {}  [{}]",
                a.name,
                a.role,
                a.description,
                homes.join(", ")
            );
        }
        Reply::info(t.trim_end())
    }

    async fn list(&self, actor: &Actor, q: &ListQuery) -> Result<Reply, RepoError> {
        if let Some(w) = q.workspace.as_ref().filter(|w| !actor.can_see(w)) {
            return Ok(Reply::warning(format!(
                "You are not a member of {w}, so its threads are hidden from you.{}",
                link_hint(actor)
            )));
        }
        let visible = actor.visible(self.directory.workspaces().iter().map(|w| &w.slug));
        if visible.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Reply::warning(format!(
                "You see no workspace's threads yet.{}",
                link_hint(actor)
            )));
        }
        let filter = ThreadFilter {
            visible,
            workspace: q.workspace.clone(),
            kind: q.kind,
            status: match q.status {
                StatusFilter::Open => Some(ThreadStatus::Open),
                StatusFilter::All => None,
                StatusFilter::Is(s) => Some(s),
            },
            ..ThreadFilter::default()
        };
        let threads = self.inbox.list(&filter).await?;
        let scope = describe_query(q, self.directory.as_ref());
        if threads.is_empty() {
            return Ok(Reply::info(format!("No {scope}. All clear.")));
        }
        let mut t = format!("{} ({}):\n", capitalise(&scope), threads.len());
        let mut rows = Vec::with_capacity(threads.len());
        for th in &threads {
            let _ = writeln!(
                t,
                "  #{:<4} {:<15} {:<10} {:<9} {}",
                th.id.0,
                th.workspace,
                th.kind,
                th.status,
                one_line(&th.title, 60)
            );
            // The title second: in a narrow panel it is what must stay in view.
            rows.push(vec![
                format!("#{}", th.id.0),
                one_line(&th.title, 120),
                th.status.to_string(),
                th.workspace.to_string(),
                th.kind.to_string(),
            ]);
        }
        t.push_str("Open one with /show <id>.");
        let columns = ["#", "Title", "Status", "Workspace", "Kind"].map(String::from);
        Ok(Reply::info(t).with_blocks(vec![crate::reply::Block::Table {
            columns: columns.to_vec(),
            rows,
        }]))
    }

    async fn show(&self, actor: &Actor, id: ThreadId) -> Result<Reply, RepoError> {
        match self.inbox.get(id).await? {
            // A thread of a workspace the actor cannot see does not exist for them.
            Some(th) if actor.can_see(&th.workspace) => Ok(render_thread(&th)),
            _ => Ok(no_thread(id)),
        }
    }

    async fn reply(&self, id: ThreadId, text: &str, ctx: &WriteCtx) -> Result<Reply, RepoError> {
        let ctx = ctx.answering(|c| match c {
            Change::Replied(th) => Some(replied(th)),
            _ => None,
        });
        Ok(match self.reply_checked(id, text, &ctx).await? {
            Err(r) => chat_refusal(&ctx.actor, id, &r, "reply"),
            Ok(Followed {
                value: th,
                follow_up,
            }) => followed(replied(&th), follow_up, " "),
        })
    }

    async fn decide(
        &self,
        id: ThreadId,
        decision: Decision,
        version: Option<i64>,
        ctx: &WriteCtx,
    ) -> Result<Reply, RepoError> {
        let ctx = ctx.answering(move |c| match c {
            Change::Decided(o) => Some(decided(o, version)),
            _ => None,
        });
        match self.decide_checked(id, &decision, version, &ctx).await? {
            Ok(Followed {
                value: outcome,
                follow_up,
            }) => Ok(followed(decided(&outcome, version), follow_up, "\n")),
            Err(r) => {
                let reply = chat_refusal(&ctx.actor, id, &r, "decide");
                Ok(match r {
                    Refusal::NotFound | Refusal::Hidden(_) => reply,
                    _ => reply.about(id),
                })
            }
        }
    }

    async fn archive(
        &self,
        id: ThreadId,
        archived: bool,
        ctx: &WriteCtx,
    ) -> Result<Reply, RepoError> {
        let ctx = ctx.answering(move |c| match c {
            Change::Archived(o) => Some(archive_reply(o, archived)),
            _ => None,
        });
        Ok(match self.archive_checked(id, archived, &ctx).await? {
            Err(r) => chat_refusal(&ctx.actor, id, &r, "archive them"),
            Ok(o) => archive_reply(&o, archived),
        })
    }

    /// Until a model is configured, a task for an agent is filed as a question thread in the
    /// first of the agent's workspaces the person is a member of (its home for most), so it is
    /// not lost and a person can pick it up.
    async fn ask(
        &self,
        actor: &Actor,
        agent: &str,
        text: &str,
        ctx: &WriteCtx,
    ) -> Result<Reply, RepoError> {
        let Some(agent) = self.directory.agent(agent) else {
            return Ok(Reply::warning(format!(
                "There is no agent called {agent}. See /agents."
            )));
        };
        // The task goes to the first of the agent's workspaces the person is a member of (its
        // home for most people; the one workspace a scoped web chat acts in).
        let Some(home) = agent
            .workspaces
            .iter()
            .find(|w| actor.role_in(w) >= Role::Member)
            .or_else(|| agent.home())
            .cloned()
            .or_else(|| self.directory.workspaces().first().map(|w| w.slug.clone()))
        else {
            return Ok(Reply::error("No workspace is configured."));
        };
        if actor.role_in(&home) < Role::Member {
            return Ok(Reply::warning(format!(
                "Only members of {home} can give {} tasks.{}",
                agent.name,
                link_hint(actor)
            )));
        }
        // With a model the task becomes a run; without one the answer comes from the
        // knowledge base alone and the task is still filed below, so it is not lost.
        let answer_to = ctx.inbound.as_ref().and_then(|m| m.answer_to.clone());
        let offline = match &self.agents {
            Some(a) if a.has_model() => return a.ask(actor, agent, &home, text, answer_to).await,
            Some(a) => Some(a.ask(actor, agent, &home, text, None).await?),
            None => None,
        };
        let mut new = NewThread::new(
            home,
            ThreadKind::Question,
            format!("Task for {}: {}", agent.name, one_line(text, 80)),
            format!(
                "{} asked {} ({}):\n{}",
                actor.user, agent.name, agent.role, text
            ),
        );
        new.origin = Origin::User;
        new.agent = Some(agent.name.to_string());
        let filed = move |th: &Thread| {
            let filed = format!(
                "No model is configured, so {} cannot run yet. I filed the task as #{} in {} so it is not lost; add a model provider to let agents work.",
                th.agent.as_deref().unwrap_or("the agent"),
                th.id.0,
                th.workspace
            );
            match &offline {
                Some(answer) => Reply {
                    text: format!("{}\n{filed}", answer.text),
                    ..answer.clone()
                }
                .about(th.id),
                None => Reply::info(filed).about(th.id),
            }
        };
        let filed = Arc::new(filed);
        let render = filed.clone();
        let ctx = ctx.answering(move |c| match c {
            Change::Created(th) => Some(render(th)),
            _ => None,
        });
        let th = self.inbox.create(&self.routed(&new), &ctx).await?;
        Ok(filed(&th))
    }
}

/// The agents' desk hears the inbox's events: an approved proposal runs, a reply continues a
/// run. (The inbox knows only [`InboxListener`]; this is where the two meet.)
struct DeskListener(Arc<dyn crate::run::AgentDesk>);

#[async_trait::async_trait]
impl InboxListener for DeskListener {
    async fn on_inbox_event(
        &self,
        event: InboxEvent<'_>,
        actor: &Actor,
    ) -> Result<Option<String>, RepoError> {
        match event {
            InboxEvent::Decided(th) => self.0.decided(th, actor).await,
            InboxEvent::Replied(th) => self.0.replied(th, actor).await,
        }
    }
}

/// A change's reply with what followed it (an approved action's result, a follow-up run)
/// added after `sep`.
fn followed(reply: Reply, follow_up: Option<String>, sep: &str) -> Reply {
    match follow_up {
        Some(f) => Reply {
            text: format!("{}{sep}{f}", reply.text),
            ..reply
        },
        None => reply,
    }
}

/// The reply to a reply added in a thread.
fn replied(th: &Thread) -> Reply {
    Reply::success(format!("Replied in #{} ({}).", th.id.0, th.status)).about(th.id)
}

/// The reply to a decision taken, counted or refused (`version`: what a button showed).
fn decided(outcome: &DecisionOutcome, version: Option<i64>) -> Reply {
    match outcome {
        DecisionOutcome::Decided(th) => {
            let how = match th.status {
                ThreadStatus::Approved => "Approved".to_owned(),
                _ => match &th.reason {
                    Some(r) => format!("Rejected ({r})"),
                    None => "Rejected".to_owned(),
                },
            };
            let action = th
                .action
                .as_ref()
                .map(|a| format!("\nAction: {}", a.describe()))
                .unwrap_or_default();
            with_card(
                Reply::success(format!("{how} #{}: {}{action}", th.id.0, th.title)).about(th.id),
                th,
            )
        }
        DecisionOutcome::Counted { thread, missing } => with_card(
            Reply::success(format!(
                "Your approval of #{} is counted; {missing} more needed.",
                thread.id.0
            ))
            .about(thread.id),
            thread,
        ),
        DecisionOutcome::AlreadyCounted(th) => with_card(
            Reply::info(format!(
                "You already approved #{}; it still needs more approvals.",
                th.id.0
            ))
            .about(th.id),
            th,
        ),
        DecisionOutcome::Refused(th) => {
            with_card(Reply::warning(refusal(th, version)).about(th.id), th)
        }
    }
}

/// The reply to archiving (`archived`) or unarchiving a thread.
fn archive_reply(outcome: &ArchiveOutcome, archived: bool) -> Reply {
    match outcome {
        ArchiveOutcome::Changed(th) if archived => {
            Reply::success(format!("Archived #{}.", th.id.0)).about(th.id)
        }
        ArchiveOutcome::Changed(th) => Reply::success(format!(
            "Unarchived #{}; it is {} again.",
            th.id.0, th.status
        ))
        .about(th.id),
        ArchiveOutcome::Unchanged(th) if archived => {
            Reply::info(format!("#{} is already archived.", th.id.0)).about(th.id)
        }
        ArchiveOutcome::Unchanged(th) => {
            Reply::info(format!("#{} is not archived.", th.id.0)).about(th.id)
        }
    }
}

pub(crate) use crate::chat::text::{
    chat_refusal, describe_query, failure, help, link_hint, no_thread, refusal, with_card,
};
pub use crate::chat::text::{render_thread, render_unparsed};
