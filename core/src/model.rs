//! The [`ChatModel`] port: a chat completion with tools, as core needs it from any model.
//!
//! krake-llm implements it over OpenAI-compatible servers (retries, fail-over, prices);
//! [`ScriptedModel`] answers from a script, for tests and benchmarks.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    /// The instructions.
    System,
    /// A person, or data given on a person's behalf.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call.
    Tool,
}

/// A tool call the model asked for: its id, the tool's name and its arguments as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, echoed in the tool message that answers it.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, as the model wrote them (JSON text, possibly malformed).
    pub arguments: String,
}

/// One message of a conversation with a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: ChatRole,
    /// The text.
    pub content: String,
    /// The tool calls an assistant message made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::plain(ChatRole::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::plain(ChatRole::User, content)
    }

    /// An assistant message, with the tool calls it made.
    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self {
            role: ChatRole::Assistant,
            content: content.into(),
            tool_calls,
            tool_call_id: None,
        }
    }

    /// The answer to tool call `id`.
    pub fn tool(id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(id.into()),
        }
    }

    fn plain(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool offered to the model: name, description and JSON Schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does (the model reads this).
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// One request to a model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// The model to use; `None` lets the provider use its first model.
    pub model: Option<String>,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// The tools the model may call (and nothing else is honoured).
    pub tools: Vec<ToolSpec>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
}

impl ChatRequest {
    /// About how many tokens the prompt takes (four characters a token, plus a little per
    /// message and tool): good enough for budgets and estimates, never for billing.
    pub fn estimated_input_tokens(&self) -> u64 {
        let chars: usize = self
            .messages
            .iter()
            .map(|m| {
                m.content.len()
                    + m.tool_calls
                        .iter()
                        .map(|c| c.name.len() + c.arguments.len())
                        .sum::<usize>()
                    + 16
            })
            .sum::<usize>()
            + self
                .tools
                .iter()
                .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len())
                .sum::<usize>();
        estimate_tokens_chars(chars)
    }
}

/// About how many tokens a text takes (four characters a token).
pub fn estimate_tokens(text: &str) -> u64 {
    estimate_tokens_chars(text.len())
}

fn estimate_tokens_chars(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

/// Tokens a call used, as the provider reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// It finished its answer.
    Stop,
    /// It wants tools called.
    ToolCalls,
    /// It ran out of tokens.
    Length,
    /// A content filter stopped it.
    ContentFilter,
    /// Anything else.
    Other,
}

/// A price in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Price {
    /// Per million input (prompt) tokens.
    pub input_per_million: f64,
    /// Per million output (completion) tokens.
    pub output_per_million: f64,
}

impl Price {
    /// The cost of `usage` in micro-dollars (millionths of a dollar), rounded up.
    pub fn cost_micros(&self, usage: Usage) -> i64 {
        // Dollars per million tokens are micro-dollars per token.
        let c = usage.input_tokens as f64 * self.input_per_million
            + usage.output_tokens as f64 * self.output_per_million;
        if c.is_finite() && c > 0.0 {
            c.ceil().min(i64::MAX as f64) as i64
        } else {
            0
        }
    }
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The text, if any.
    pub content: Option<String>,
    /// The tools it wants called.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub finish: FinishReason,
    /// Tokens used.
    pub usage: Usage,
    /// The provider that answered (after any fail-over).
    pub provider: String,
    /// The model that answered.
    pub model: String,
    /// What the call cost, in micro-dollars, at the provider's configured price.
    pub cost_micros: i64,
}

/// A failed model call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// No provider is configured.
    #[error("no model provider is configured")]
    NotConfigured,
    /// Every provider failed with something worth retrying later (429, 5xx, timeouts).
    #[error("the model providers are unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request (4xx other than 429): retrying will not help.
    #[error("the model provider refused the request: {0}")]
    Rejected(String),
    /// The provider answered something that is not a chat completion.
    #[error("the model provider answered something unreadable: {0}")]
    Malformed(String),
}

impl ModelError {
    /// What went wrong, without the kind's own words (for combining several providers'
    /// failures under one kind without repeating it).
    pub fn detail(&self) -> &str {
        match self {
            ModelError::NotConfigured => "no model provider is configured",
            ModelError::Unavailable(d) | ModelError::Rejected(d) | ModelError::Malformed(d) => d,
        }
    }
}

/// What a streamed answer holds so far: its text and its tool calls (arguments possibly cut
/// mid-way). A retry after a broken stream starts again from nothing.
#[derive(Debug, Clone, Copy)]
pub struct Partial<'a> {
    /// The text so far.
    pub content: &'a str,
    /// The tool calls so far, the last one possibly unfinished.
    pub tool_calls: &'a [ToolCall],
}

/// Told of every streamed piece of an answer, with the answer so far.
pub type OnPartial<'a> = &'a (dyn Fn(Partial<'_>) + Send + Sync);

/// A chat model with tools.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// One completion (retries and fail-over are the implementation's business).
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError>;

    /// One completion, telling `on` of the answer so far as it streams in. A provider that
    /// does not stream answers like [`chat`](Self::chat) and tells nothing.
    async fn chat_streaming(
        &self,
        request: &ChatRequest,
        on: OnPartial<'_>,
    ) -> Result<ChatResponse, ModelError> {
        let _ = on;
        self.chat(request).await
    }

    /// Whether [`chat_streaming`](Self::chat_streaming) streams (for `model`): when not,
    /// answers are shown whole.
    fn streams(&self, model: Option<&str>) -> bool {
        let _ = model;
        false
    }

    /// The price of `model` (or of the default model), for estimates before a call.
    fn price(&self, model: Option<&str>) -> Price;

    /// The context window of `model` (or of the default model) in tokens, prompt and answer
    /// together, when it is known: the prompt is fitted to it before a call.
    async fn context_window(&self, model: Option<&str>) -> Option<u64> {
        let _ = model;
        None
    }
}

/// One scripted answer of a [`ScriptedModel`].
#[derive(Debug, Clone)]
pub enum Scripted {
    /// Answer with text.
    Text(String),
    /// Answer with tool calls: (name, arguments JSON text).
    Tools(Vec<(String, String)>),
    /// Fail.
    Fail(ModelError),
}

/// A [`ChatModel`] that answers from a script, in order, and records what it was asked.
/// When the script is empty it answers with a plain `reply` call. For tests and benchmarks.
#[derive(Debug)]
pub struct ScriptedModel {
    script: Mutex<VecDeque<Scripted>>,
    seen: Mutex<Vec<ChatRequest>>,
    usage: Usage,
    price: Price,
    delay: Duration,
    keep_requests: bool,
    window: Option<u64>,
    /// Streams answers in pieces this far apart (`None`: does not stream).
    stream_gap: Option<Duration>,
}

impl ScriptedModel {
    /// A model answering `script` in order; each call reports `usage` 100 in / 20 out.
    pub fn new(script: Vec<Scripted>) -> Self {
        Self {
            script: Mutex::new(script.into()),
            seen: Mutex::new(Vec::new()),
            usage: Usage {
                input_tokens: 100,
                output_tokens: 20,
            },
            price: Price {
                input_per_million: 1.0,
                output_per_million: 2.0,
            },
            delay: Duration::ZERO,
            keep_requests: true,
            window: None,
            stream_gap: None,
        }
    }

    /// The same model streaming its answers: text four characters and tool arguments seven
    /// characters at a time, `gap` apart (as servers stream them).
    pub fn streaming(mut self, gap: Duration) -> Self {
        self.stream_gap = Some(gap);
        self
    }

    /// The same model with a context window of `tokens`: like llama.cpp's server, it refuses a
    /// request whose estimated prompt plus `max_tokens` does not fit.
    pub fn with_context_window(mut self, tokens: u64) -> Self {
        self.window = Some(tokens);
        self
    }

    /// The same model charging `price`.
    pub fn with_price(mut self, price: Price) -> Self {
        self.price = price;
        self
    }

    /// The same model reporting `usage` per call.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// The same model taking `delay` per call (needs a tokio runtime).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The same model forgetting requests (benchmarks: memory must not grow).
    pub fn forgetful(mut self) -> Self {
        self.keep_requests = false;
        self
    }

    /// Adds answers to the end of the script.
    pub fn push(&self, answers: Vec<Scripted>) {
        if let Ok(mut s) = self.script.lock() {
            s.extend(answers);
        }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl ChatModel for ScriptedModel {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        if self.keep_requests
            && let Ok(mut seen) = self.seen.lock()
        {
            seen.push(request.clone());
        }
        if let Some(w) = self.window {
            let need =
                request.estimated_input_tokens() + u64::from(request.max_tokens.unwrap_or(0));
            if need > w {
                return Err(ModelError::Rejected(format!(
                    "400 the request exceeds the available context size ({need} > {w} tokens)"
                )));
            }
        }
        let next = self.script.lock().ok().and_then(|mut s| s.pop_front());
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let next = next.unwrap_or_else(|| {
            Scripted::Tools(vec![(
                "reply".to_owned(),
                r#"{"text":"Done.","confidence":0.9}"#.to_owned(),
            )])
        });
        let (content, tool_calls, finish) = match next {
            Scripted::Fail(e) => return Err(e),
            Scripted::Text(t) => (Some(t), Vec::new(), FinishReason::Stop),
            Scripted::Tools(calls) => (
                None,
                calls
                    .into_iter()
                    .enumerate()
                    .map(|(i, (name, arguments))| ToolCall {
                        id: format!("call_{i}"),
                        name,
                        arguments,
                    })
                    .collect(),
                FinishReason::ToolCalls,
            ),
        };
        Ok(ChatResponse {
            content,
            tool_calls,
            finish,
            usage: self.usage,
            provider: "scripted".to_owned(),
            model: request
                .model
                .clone()
                .unwrap_or_else(|| "scripted".to_owned()),
            cost_micros: self.price.cost_micros(self.usage),
        })
    }

    fn price(&self, _model: Option<&str>) -> Price {
        self.price
    }

    async fn context_window(&self, _model: Option<&str>) -> Option<u64> {
        self.window
    }

    fn streams(&self, _model: Option<&str>) -> bool {
        self.stream_gap.is_some()
    }

    async fn chat_streaming(
        &self,
        request: &ChatRequest,
        on: OnPartial<'_>,
    ) -> Result<ChatResponse, ModelError> {
        let r = self.chat(request).await?;
        let Some(gap) = self.stream_gap else {
            return Ok(r);
        };
        let pause = || async {
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
        };
        let text: Vec<char> = r.content.clone().unwrap_or_default().chars().collect();
        let mut content = String::new();
        for piece in text.chunks(4) {
            content.extend(piece);
            on(Partial {
                content: &content,
                tool_calls: &[],
            });
            pause().await;
        }
        let mut calls: Vec<ToolCall> = Vec::new();
        for c in &r.tool_calls {
            calls.push(ToolCall {
                id: c.id.clone(),
                name: c.name.clone(),
                arguments: String::new(),
            });
            let args: Vec<char> = c.arguments.chars().collect();
            for piece in args.chunks(7) {
                if let Some(last) = calls.last_mut() {
                    last.arguments.extend(piece);
                }
                on(Partial {
                    content: &content,
                    tool_calls: &calls,
                });
                pause().await;
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_per_million_tokens_in_micro_dollars() {
        let p = Price {
            input_per_million: 2.5,
            output_per_million: 10.0,
        };
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1000,
        };
        // $2.50 + $0.01
        assert_eq!(p.cost_micros(u), 2_510_000);
        assert_eq!(Price::default().cost_micros(u), 0);
    }

    #[test]
    fn estimates_count_four_characters_a_token() {
        assert_eq!(estimate_tokens("abcdefgh"), 2);
        let r = ChatRequest {
            messages: vec![ChatMessage::user("x".repeat(400))],
            ..ChatRequest::default()
        };
        assert_eq!(r.estimated_input_tokens(), 104);
    }

    #[tokio::test]
    async fn scripted_model_answers_in_order_and_records() {
        let m = ScriptedModel::new(vec![
            Scripted::Text("hi".into()),
            Scripted::Fail(ModelError::Unavailable("down".into())),
        ]);
        let req = ChatRequest::default();
        let a = m.chat(&req).await.unwrap();
        assert_eq!(a.content.as_deref(), Some("hi"));
        assert_eq!(a.cost_micros, 140);
        assert!(m.chat(&req).await.is_err());
        let c = m.chat(&req).await.unwrap();
        assert_eq!(c.tool_calls[0].name, "reply");
        assert_eq!(m.requests().len(), 3);
    }
}
