//! The engine proper: one claimed run through the model with its tools (allowed by policy,
//! arguments checked) until it reaches a result, an escalation or a failure.

use super::delegate::Delegation;
use super::prompt::Window;
use super::tools::{
    ApprovalArgs, DelegateArgs, EscalateArgs, Final, FolderArgs, KpiArgs, ReplyArgs, SearchArgs,
    check_action, check_confidence, non_empty, parse_plain_result, render_passages, tool_specs,
};
use super::{Run, RunStatus, RunStep, Runner};
use crate::actor::Actor;
use crate::commerce::render_kpis;
use crate::ledger::dollars;
use crate::model::{ChatMessage, ChatRequest, ModelError, ToolCall, ToolSpec, Usage};
use crate::policy::AgentPolicy;
use crate::ports::{RepoError, WriteCtx};

/// What one tool call gave back: an answer for the model, an error to correct, or the end.
pub(super) enum ToolOutcome {
    Answer(String),
    Error(String),
    Final(Final),
    /// A sub-run's end: the answer for the model and a line for the run's thread.
    Delegated {
        answer: String,
        note: String,
    },
    /// The run was cancelled meanwhile: stop, act on nothing.
    Cancelled,
}

impl Runner {
    /// Takes one claimed run to its end (or to an approval thread), streaming its answer to
    /// where it was asked.
    #[tracing::instrument(skip_all, fields(run = run.id.0, agent = %run.agent))]
    pub async fn execute(&self, run: Run) -> Result<RunStatus, RepoError> {
        let id = run.id;
        let answer_to = run.answer_to.clone();
        self.open_stream(&run);
        let status = self.execute_run(run).await;
        // Ended without an answer (cancelled, or a storage error): stop the typing, and say
        // so in a message the stream opened, so it does not stay half-written.
        if let Some(message) = self.close_stream(id).await
            && let (Ok(RunStatus::Cancelled), Some(to), Some(outbox)) =
                (&status, answer_to, &self.outbox)
        {
            let reply =
                crate::reply::Reply::warning(format!("{id} was cancelled; there is no answer."));
            let m = crate::outbox::NewOutbound {
                destination: to,
                payload: crate::outbox::OutboxPayload::Replace {
                    message_id: message,
                    reply,
                },
            };
            outbox
                .enqueue_once(&m, &format!("run:{}:answer", id.0), self.clock.now())
                .await?;
        }
        status
    }

    async fn execute_run(&self, run: Run) -> Result<RunStatus, RepoError> {
        if run.attempts > self.limits.max_attempts {
            let why = format!(
                "the run was interrupted {} times (Krake stopped while it ran) and was not tried again",
                run.attempts - 1
            );
            return self.fail(&run, &why).await;
        }
        if run.attempts > 1 {
            self.step(
                &run,
                "resumed",
                format!(
                    "attempt {}: an earlier worker stopped mid-run; starting over from the task",
                    run.attempts
                ),
            )
            .await?;
        }
        let Some(agent) = self.directory.agent(&run.agent).cloned() else {
            return self
                .fail(
                    &run,
                    &format!("agent {} is no longer configured", run.agent),
                )
                .await;
        };
        let Some(model) = self.model.clone() else {
            return self
                .fail(
                    &run,
                    "no model provider is configured; add one under [[llm.providers]]",
                )
                .await;
        };
        let mut policy = self.policy(agent.name.as_str());
        if run.trigger == super::VISITOR {
            // A stranger asked: the knowledge base and an answer, nothing else.
            policy
                .tools
                .retain(|t| super::VISITOR_TOOLS.contains(&t.as_str()));
        }
        let passages = self.retrieve(&run, &run.task).await?;
        if let Some(servers) = &self.tool_servers {
            servers.ready().await;
        }
        let mut tools = self.tools_for(&policy);
        if !self.may_delegate(&run).await? {
            tools.retain(|t| t.name != "delegate");
        }
        let window = model
            .context_window(policy.model.as_deref())
            .await
            .map(|w| Window::new(w, self.limits.max_output_tokens));
        let max_output = window.map_or(self.limits.max_output_tokens, |w| w.answer);
        let model_name = policy.model.clone().unwrap_or_else(|| "the model".into());
        let memory = self.memory(&run, model.as_ref(), &policy, window).await?;
        let (mut messages, tools) = match self
            .fit(&run, &agent, passages, &memory, tools, window, &model_name)
            .await?
        {
            Ok(fitted) => fitted,
            Err(why) => return self.fail(&run, &why).await,
        };
        let price = model.price(policy.model.as_deref());
        // Estimate before the first call: the prompt plus a full answer.
        let estimate = price.cost_micros(Usage {
            input_tokens: ChatRequest {
                messages: messages.clone(),
                tools: tools.clone(),
                ..ChatRequest::default()
            }
            .estimated_input_tokens(),
            output_tokens: u64::from(max_output),
        });
        let mut held = match self.reserve(&run.workspace, &run.agent, estimate).await? {
            Ok(h) => Some(h),
            Err(why) => return self.refuse(&run, &why).await,
        };
        let mut corrections = 0u32;
        // What sub-runs answered, shown in the thread this run opens.
        let mut delegations = Vec::new();
        for _ in 0..self.limits.max_turns {
            let request = ChatRequest {
                model: policy.model.clone(),
                messages: messages.clone(),
                tools: tools.clone(),
                temperature: Some(policy.temperature),
                max_tokens: Some(max_output),
            };
            if let Some(w) = window
                && !w.fits(request.estimated_input_tokens())
            {
                let why = format!(
                    "the conversation grew to about {} tokens, past what {model_name}'s {}-token context window leaves for it; stopped before calling the model",
                    request.estimated_input_tokens(),
                    w.tokens
                );
                return self.fail(&run, &why).await;
            }
            let hold = match held.take() {
                Some(h) => h,
                None => {
                    let est = price.cost_micros(Usage {
                        input_tokens: request.estimated_input_tokens(),
                        output_tokens: u64::from(max_output),
                    });
                    match self.reserve(&run.workspace, &run.agent, est).await? {
                        Ok(h) => h,
                        Err(why) => return self.refuse(&run, &why).await,
                    }
                }
            };
            let on = |p: crate::model::Partial<'_>| {
                if let Some(text) = super::stream::visible(p) {
                    self.stream_update(run.id, text);
                }
            };
            let call = async {
                if model.streams(policy.model.as_deref()) && self.streaming(run.id) {
                    model.chat_streaming(&request, &on).await
                } else {
                    model.chat(&request).await
                }
            };
            // A call with retries and fail-over can outlast the lease: keep it while waiting,
            // or another worker would take the run over and call the model a second time.
            let streamed = self.keeping_the_lease(run.id, call).await;
            let response = match streamed {
                Ok(r) => r,
                Err(e) => {
                    self.release(hold).await;
                    self.step(&run, "model_error", e.to_string()).await?;
                    let why = match e {
                        ModelError::NotConfigured => "no model provider is configured".to_owned(),
                        e => format!("the model failed after retries and fail-over: {e}"),
                    };
                    return self.fail(&run, &why).await;
                }
            };
            let charged = self
                .charge(
                    &run,
                    &response.provider,
                    &response.model,
                    response.usage,
                    response.cost_micros,
                )
                .await;
            // Released after the ledger row is written, so a check never misses both.
            self.release(hold).await;
            charged?;
            let live = self
                .step(
                    &run,
                    "model",
                    format!(
                        "{} / {}: {} tokens in, {} out, {}",
                        response.provider,
                        response.model,
                        response.usage.input_tokens,
                        response.usage.output_tokens,
                        dollars(response.cost_micros)
                    ),
                )
                .await?;
            if !live {
                // Cancelled while the model answered: the call is charged, nothing follows.
                return Ok(RunStatus::Cancelled);
            }
            // Small models pad names with spaces and newlines: `" reply\n"` is `reply`.
            let mut response = response;
            for c in &mut response.tool_calls {
                let name = c.name.trim();
                if name.len() != c.name.len() {
                    c.name = name.to_owned();
                }
            }
            messages.push(ChatMessage::assistant(
                response.content.clone().unwrap_or_default(),
                response.tool_calls.clone(),
            ));
            let mut final_result = None;
            let mut errors = Vec::new();
            if response.tool_calls.is_empty() {
                let text = response.content.unwrap_or_default();
                match parse_plain_result(&text) {
                    Some(f) => final_result = Some(f),
                    // Plain text is an answer whose confidence is unknown (small models often
                    // answer so): a person approves it; corrections are for broken tool calls.
                    None if !text.trim().is_empty() => {
                        final_result = Some(Final::Plain {
                            text: text.trim().to_owned(),
                        });
                    }
                    None => {
                        errors.push("an empty answer".to_owned());
                        messages.push(ChatMessage::user(
                            "Your answer was empty. Finish by calling exactly one of your tools: reply, request_approval or escalate, with valid JSON arguments.",
                        ));
                    }
                }
            }
            for call in &response.tool_calls {
                match self.call_tool(&run, &policy, call).await? {
                    ToolOutcome::Answer(a) => messages.push(ChatMessage::tool(&call.id, a)),
                    ToolOutcome::Delegated { answer, note } => {
                        delegations.push(note);
                        messages.push(ChatMessage::tool(&call.id, answer));
                    }
                    ToolOutcome::Error(e) => {
                        errors.push(format!("{}: {e}", call.name));
                        messages.push(ChatMessage::tool(&call.id, format!("error: {e}")));
                    }
                    ToolOutcome::Final(f) => {
                        messages.push(ChatMessage::tool(&call.id, "recorded"));
                        if final_result.is_none() {
                            final_result = Some(f);
                        }
                    }
                    ToolOutcome::Cancelled => return Ok(RunStatus::Cancelled),
                }
            }
            if let Some(f) = final_result {
                return self.conclude(&run, &agent, &policy, f, &delegations).await;
            }
            if !errors.is_empty() {
                corrections += 1;
                self.step(&run, "correction", errors.join("; ")).await?;
                if corrections > self.limits.max_corrections {
                    let why = format!(
                        "the model kept answering wrongly ({corrections} corrections): {}",
                        errors.join("; ")
                    );
                    return self.fail(&run, &why).await;
                }
            }
        }
        let why = format!("no result after {} model calls", self.limits.max_turns);
        self.fail(&run, &why).await
    }

    /// Awaits `work`, extending the run's lease every third of it meanwhile.
    async fn keeping_the_lease<T>(&self, run: super::RunId, work: impl Future<Output = T>) -> T {
        let every = (self.limits.lease / 3).max(std::time::Duration::from_millis(100));
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                () = tokio::time::sleep(every) => {
                    let until = self.clock.now().plus(self.limits.lease);
                    // Failing to extend it only risks a second claim later: keep waiting.
                    if let Err(e) = self.runs.extend_lease(run, until).await {
                        tracing::warn!(run = run.0, "could not extend the run's lease: {e}");
                    }
                }
            }
        }
    }

    pub(super) fn tools_for(&self, policy: &AgentPolicy) -> Vec<ToolSpec> {
        let mut tools: Vec<ToolSpec> = tool_specs()
            .into_iter()
            .filter(|t| policy.allows(&t.name))
            .filter(|t| t.name != "get_kpis" || self.commerce.is_some() || self.kpis.is_some())
            .filter(|t| t.name != "add_folder_entry" || self.folders.is_some())
            .collect();
        tools.extend(self.outside_specs(policy));
        tools
    }

    async fn call_tool(
        &self,
        run: &Run,
        policy: &AgentPolicy,
        call: &ToolCall,
    ) -> Result<ToolOutcome, RepoError> {
        // An outside tool goes through the agent's grants and its own policy.
        if let Some(tool) = self.outside_tool(&call.name) {
            let outcome = self.call_outside(run, policy, call, tool).await?;
            return self.tool_step(run, call, outcome).await;
        }
        // The allow-list is enforced here: whatever the prompt or the context says, a tool the
        // agent was not given is not run.
        if !policy.allows(&call.name) || !tool_specs().iter().any(|t| t.name == call.name) {
            self.step(
                run,
                "refused_tool",
                format!("`{}` is not among this agent's tools", call.name),
            )
            .await?;
            let allowed: Vec<String> = self.tools_for(policy).into_iter().map(|t| t.name).collect();
            return Ok(ToolOutcome::Error(format!(
                "the tool `{}` is not available to you; your tools are: {}",
                call.name,
                allowed.join(", ")
            )));
        }
        let args = if call.arguments.trim().is_empty() {
            "{}"
        } else {
            call.arguments.as_str()
        };
        let outcome = match call.name.as_str() {
            "reply" => match serde_json::from_str::<ReplyArgs>(args) {
                Ok(a) => match check_confidence(a.confidence)
                    .and_then(|c| non_empty("text", &a.text).map(|t| (c, t)))
                {
                    Ok((confidence, text)) => ToolOutcome::Final(Final::Result {
                        text,
                        confidence,
                        action: None,
                    }),
                    Err(e) => ToolOutcome::Error(e),
                },
                Err(e) => ToolOutcome::Error(format!("invalid arguments: {e}")),
            },
            "request_approval" => match serde_json::from_str::<ApprovalArgs>(args) {
                Ok(a) => match check_confidence(a.confidence)
                    .and_then(|c| check_action(&a.action).map(|()| c))
                    .and_then(|c| non_empty("summary", &a.summary).map(|s| (c, s)))
                {
                    Ok((confidence, text)) => ToolOutcome::Final(Final::Result {
                        text,
                        confidence,
                        action: Some(a.action),
                    }),
                    Err(e) => ToolOutcome::Error(e),
                },
                Err(e) => ToolOutcome::Error(format!("invalid arguments: {e}")),
            },
            "escalate" => match serde_json::from_str::<EscalateArgs>(args) {
                Ok(a) => match non_empty("reason", &a.reason) {
                    Ok(reason) => ToolOutcome::Final(Final::Escalate { reason }),
                    Err(e) => ToolOutcome::Error(e),
                },
                Err(e) => ToolOutcome::Error(format!("invalid arguments: {e}")),
            },
            "search_knowledge" => match serde_json::from_str::<SearchArgs>(args) {
                Ok(a) => match non_empty("query", &a.query) {
                    Ok(q) => {
                        let found = self.retrieve(run, &q).await?;
                        ToolOutcome::Answer(render_passages(&found))
                    }
                    Err(e) => ToolOutcome::Error(e),
                },
                Err(e) => ToolOutcome::Error(format!("invalid arguments: {e}")),
            },
            // Always the run's own workspace: a run never reads another workspace.
            "get_kpis" => match (
                serde_json::from_str::<KpiArgs>(args),
                &self.kpis,
                &self.commerce,
            ) {
                (Ok(_), Some(reader), _) => match reader.board(&run.workspace).await? {
                    Some(b) => ToolOutcome::Answer(crate::kpi::render_board(&b, self.clock.now())),
                    None => ToolOutcome::Error("KPIs are not available here".into()),
                },
                (Ok(_), None, Some(c)) => {
                    let k = c.kpis(&run.workspace, 14, self.clock.now()).await?;
                    let name = self
                        .directory
                        .workspace(&run.workspace)
                        .map_or_else(|| run.workspace.to_string(), |w| w.name.clone());
                    ToolOutcome::Answer(render_kpis(&k, &name))
                }
                (Err(e), _, _) => ToolOutcome::Error(format!("invalid arguments: {e}")),
                (_, None, None) => ToolOutcome::Error("KPIs are not available here".into()),
            },
            "add_folder_entry" => match (serde_json::from_str::<FolderArgs>(args), &self.folders) {
                (Ok(a), Some(f)) => self.add_folder_entry(run, f.as_ref(), a).await?,
                (Err(e), _) => ToolOutcome::Error(format!("invalid arguments: {e}")),
                (_, None) => ToolOutcome::Error("folders are not available here".into()),
            },
            "delegate" => match serde_json::from_str::<DelegateArgs>(args) {
                Ok(a) => match self.delegate(run, a).await? {
                    Delegation::Answer { answer, note } => ToolOutcome::Delegated { answer, note },
                    Delegation::Error(e) => ToolOutcome::Error(e),
                    Delegation::Cancelled => return Ok(ToolOutcome::Cancelled),
                },
                Err(e) => ToolOutcome::Error(format!("invalid arguments: {e}")),
            },
            other => ToolOutcome::Error(format!("the tool `{other}` is not available yet")),
        };
        self.tool_step(run, call, outcome).await
    }

    /// Records what a tool call gave back; a run cancelled meanwhile stops here.
    async fn tool_step(
        &self,
        run: &Run,
        call: &ToolCall,
        outcome: ToolOutcome,
    ) -> Result<ToolOutcome, RepoError> {
        let detail = match &outcome {
            ToolOutcome::Answer(_) => format!("{} answered", call.name),
            ToolOutcome::Error(e) => format!("{} failed: {e}", call.name),
            ToolOutcome::Final(_) => format!("{} recorded", call.name),
            ToolOutcome::Delegated { note, .. } => format!("{} answered: {note}", call.name),
            ToolOutcome::Cancelled => format!("{} stopped", call.name),
        };
        if !self.step(run, "tool", detail).await? {
            return Ok(ToolOutcome::Cancelled);
        }
        Ok(outcome)
    }

    /// Adds a row to one of the run's agent's own folders, values checked by column type.
    async fn add_folder_entry(
        &self,
        run: &Run,
        folders: &dyn crate::folder::FolderRepo,
        a: FolderArgs,
    ) -> Result<ToolOutcome, RepoError> {
        let Some(folder) = folders.folder(&run.agent, a.folder.trim()).await? else {
            let names: Vec<String> = folders
                .folders(Some(&run.agent))
                .await?
                .into_iter()
                .map(|f| f.name.to_string())
                .collect();
            return Ok(ToolOutcome::Error(format!(
                "{} has no folder `{}`; its folders: {}",
                run.agent,
                a.folder,
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )));
        };
        if a.values.is_empty() {
            return Ok(ToolOutcome::Error(
                "`values` must name at least one column".into(),
            ));
        }
        let pairs: Vec<(String, String)> = a.values.into_iter().collect();
        let values = match crate::folder::check_pairs(&folder, &pairs) {
            Ok(v) => v,
            Err(errors) => return Ok(ToolOutcome::Error(errors.join("; "))),
        };
        let ctx = WriteCtx {
            actor: Actor::system(),
            inbound: None,
            now: self.clock.now(),
        };
        let ids = folders.add_entries(folder.id, &[values], &ctx).await?;
        Ok(ToolOutcome::Answer(format!(
            "added entry #{} to {}",
            ids.first().map_or(0, |i| i.0),
            folder.name
        )))
    }

    /// Records a step; `false` once the run is no longer running (cancelled).
    pub(super) async fn step(
        &self,
        run: &Run,
        kind: &str,
        detail: String,
    ) -> Result<bool, RepoError> {
        let now = self.clock.now();
        self.runs
            .add_step(
                run.id,
                &RunStep {
                    at: now,
                    kind: kind.to_owned(),
                    detail,
                },
                now.plus(self.limits.lease),
            )
            .await
    }
}
