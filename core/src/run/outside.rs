//! Outside (MCP) tools in a run: offered to the agents whose `tools` grant them unless denied,
//! called at once when their policy says `act`, turned into an approval thread when it says
//! `approval` (Approve calls the tool once, then the agent goes on with the result), every call
//! recorded on the run and charged at its server's price; results are fenced as data.

use super::engine::ToolOutcome;
use super::tools::Final;
use super::{NewRun, Run, Runner};
use crate::inbox::ProposedAction;
use crate::model::{ToolCall, ToolSpec, Usage};
use crate::policy::AgentPolicy;
use crate::ports::RepoError;
use crate::tool_servers::{OutsideTool, ToolPolicy, as_data, parse_arguments};
use serde_json::{Map, Value};

impl Runner {
    /// The outside tools `policy` grants and no server policy denies, as the model sees them.
    pub(super) fn outside_specs(&self, policy: &AgentPolicy) -> Vec<ToolSpec> {
        let Some(servers) = &self.tool_servers else {
            return Vec::new();
        };
        servers
            .tools()
            .into_iter()
            .filter(|t| t.policy != ToolPolicy::Deny && policy.allows_outside(&t.server, &t.name))
            .map(|t| ToolSpec {
                name: t.model_name(),
                description: format!(
                    "[{} server{}] {}",
                    t.server,
                    if t.policy == ToolPolicy::Approval {
                        "; a person approves each call first, then you continue with its result"
                    } else {
                        ""
                    },
                    t.description
                ),
                parameters: t.input_schema.clone(),
            })
            .collect()
    }

    /// The outside tool the model calls `name`, if any.
    pub(super) fn outside_tool(&self, name: &str) -> Option<OutsideTool> {
        if !name.starts_with("mcp_") {
            return None;
        }
        self.tool_servers
            .as_ref()?
            .tools()
            .into_iter()
            .find(|t| t.model_name() == name)
    }

    /// A model's call of an outside tool, through the agent's grants and the tool's policy.
    pub(super) async fn call_outside(
        &self,
        run: &Run,
        policy: &AgentPolicy,
        call: &ToolCall,
        tool: OutsideTool,
    ) -> Result<ToolOutcome, RepoError> {
        let q = tool.qualified();
        let refused = if tool.policy == ToolPolicy::Deny {
            Some(format!(
                "`{q}` is denied by the policy of the tool server `{}`",
                tool.server
            ))
        } else if !policy.allows_outside(&tool.server, &tool.name) {
            Some(format!("`{q}` is not among this agent's tools"))
        } else {
            None
        };
        if let Some(why) = refused {
            self.step(run, "refused_tool", why.clone()).await?;
            return Ok(ToolOutcome::Error(format!("{why}; do not call it again")));
        }
        let args = match parse_arguments(&call.arguments) {
            Ok(a) => a,
            Err(e) => return Ok(ToolOutcome::Error(e)),
        };
        if tool.policy == ToolPolicy::Approval {
            let arguments = Value::Object(args);
            let shown = serde_json::to_string_pretty(&arguments).unwrap_or_default();
            return Ok(ToolOutcome::Final(Final::Result {
                text: format!(
                    "Call the tool `{}` on the MCP server `{}` with these arguments:\n{shown}",
                    tool.name, tool.server
                ),
                confidence: 1.0,
                action: Some(ProposedAction::CallTool {
                    server: tool.server,
                    tool: tool.name,
                    arguments,
                }),
            }));
        }
        Ok(
            match self
                .call_server(run, &tool.server, &tool.name, &args)
                .await?
            {
                Ok(answer) => ToolOutcome::Answer(answer),
                Err(e) => ToolOutcome::Error(e),
            },
        )
    }

    /// Calls `server`'s `tool` for `run`: recorded as a step (how long, how much came back),
    /// charged at the server's price; the answer fenced as data, or why there is none.
    pub(super) async fn call_server(
        &self,
        run: &Run,
        server: &str,
        tool: &str,
        args: &Map<String, Value>,
    ) -> Result<Result<String, String>, RepoError> {
        let Some(servers) = &self.tool_servers else {
            return Ok(Err("no MCP tool servers are configured".into()));
        };
        let started = std::time::Instant::now();
        let out = servers.call(server, tool, args).await;
        let ms = started.elapsed().as_millis();
        let price = servers.price_micros(server);
        if price > 0 {
            self.charge(run, &format!("mcp:{server}"), tool, Usage::default(), price)
                .await?;
        }
        let (detail, answer) = match out {
            Ok(o) => {
                let data = as_data(server, tool, &o, servers.max_result_chars(server));
                let detail = format!(
                    "{server}/{tool} answered in {ms} ms ({} characters{})",
                    o.text.chars().count(),
                    if o.is_error {
                        ", marked as an error"
                    } else {
                        ""
                    }
                );
                (detail, if o.is_error { Err(data) } else { Ok(data) })
            }
            Err(e) => (format!("{server}/{tool}: {e}"), Err(e.to_string())),
        };
        self.step(run, "mcp_call", detail).await?;
        Ok(answer)
    }

    /// After an approved call of an outside tool: the agent goes on with the result, in a
    /// follow-up run that sees the call and its answer (as data) and answers where the task
    /// was asked.
    pub(super) async fn continue_after_call(
        &self,
        run: &Run,
        by: &str,
        action: &ProposedAction,
        result: &str,
    ) -> Result<String, RepoError> {
        let mut feedback = run.feedback.clone().unwrap_or_default();
        if !feedback.is_empty() {
            feedback.push('\n');
        }
        feedback.push_str(&format!(
            "In {} you asked to {}; {by} approved it and it was called once.\n{result}\nDo not call it again for this task: use the result.",
            run.id,
            action.describe()
        ));
        let next = self
            .start(&NewRun {
                workspace: run.workspace.clone(),
                agent: run.agent.clone(),
                task: run.task.clone(),
                trigger: "tool_result".into(),
                requested_by: by.to_owned(),
                parent: Some(run.id),
                feedback: Some(feedback),
                answer_to: run.answer_to.clone(),
            })
            .await?;
        Ok(format!(
            "{} goes on with the result ({}).",
            run.agent, next.id
        ))
    }
}
