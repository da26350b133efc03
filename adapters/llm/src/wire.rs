//! The chat completions wire format (async-openai's types) and one HTTP exchange: JSON, or
//! SSE chunks joined into one answer.

use crate::Attempt;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, CreateChatCompletionRequest, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse, FinishReason as WireFinish,
};
use krake_core::backoff::Backoff;
use krake_core::model::{
    ChatRequest, ChatResponse, ChatRole, FinishReason, ModelError, OnPartial, Partial, ToolCall,
    Usage,
};
use krake_core::secret::Secret;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The JSON body of a chat completion request, checked against async-openai's request type.
pub(crate) fn request_body(
    request: &ChatRequest,
    model: &str,
    stream: bool,
) -> Result<Value, String> {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| match m.role {
            ChatRole::System => json!({"role": "system", "content": m.content}),
            ChatRole::User => json!({"role": "user", "content": m.content}),
            ChatRole::Assistant => {
                let mut v = json!({"role": "assistant", "content": m.content});
                if !m.tool_calls.is_empty() {
                    v["tool_calls"] = m
                        .tool_calls
                        .iter()
                        .map(|c| {
                            json!({"id": c.id, "type": "function",
                                   "function": {"name": c.name, "arguments": c.arguments}})
                        })
                        .collect();
                }
                v
            }
            ChatRole::Tool => json!({"role": "tool", "content": m.content,
                                     "tool_call_id": m.tool_call_id.clone().unwrap_or_default()}),
        })
        .collect();
    let mut body = json!({"model": model, "messages": messages});
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect();
        body["tool_choice"] = json!("auto");
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(m) = request.max_tokens {
        body["max_tokens"] = json!(m);
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    // The shape must be what async-openai (and so the OpenAI API) accepts.
    serde_json::from_value::<CreateChatCompletionRequest>(body.clone())
        .map_err(|e| format!("the request does not fit the chat completions format: {e}"))?;
    Ok(body)
}

/// How long the server asks us to wait: `retry-after-ms`, else `retry-after` in seconds.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    get("retry-after")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// What a non-2xx answer says: why (the server's `error.message`, else the start of its body),
/// when it asks to be retried, and whether a retry is worth it (429, 408 and 5xx are).
pub(crate) async fn refusal(resp: reqwest::Response) -> (String, Option<Duration>, bool) {
    let status = resp.status();
    let after = retry_after(resp.headers());
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect());
    let why = format!("HTTP {}: {message}", status.as_u16());
    let retry = status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error();
    (why, after, retry)
}

/// Exponential backoff before retry number `retry` (0-based), capped at `max_ms`, with
/// jitter: anywhere in [exp/2, exp], so many clients do not retry in step.
pub(crate) fn backoff(base_ms: u64, max_ms: u64, retry: u32) -> Duration {
    Backoff::new(
        Duration::from_millis(base_ms),
        Duration::from_millis(max_ms.max(1)),
    )
    .delay(retry, krake_core::backoff::random())
}

/// One HTTP exchange with a provider.
pub(crate) async fn call(
    http: &reqwest::Client,
    base_url: &str,
    key: Option<&Secret>,
    body: &Value,
    stream: bool,
    on: Option<OnPartial<'_>>,
) -> Result<ChatResponse, Attempt> {
    let url = format!("{}/chat/completions", base_url.trim_end_matches('/'));
    let mut req = http.post(&url).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k.expose());
    }
    let mut resp = req.send().await.map_err(|e| Attempt::Retry {
        why: format!("cannot reach {url}: {}", without_url(&e)),
        after: None,
    })?;
    if !resp.status().is_success() {
        let (why, after, retry) = refusal(resp).await;
        return if retry {
            Err(Attempt::Retry { why, after })
        } else {
            Err(Attempt::Fatal(ModelError::Rejected(why)))
        };
    }
    if !stream {
        let bytes = resp.bytes().await.map_err(|e| Attempt::Retry {
            why: format!("the answer broke off: {}", without_url(&e)),
            after: None,
        })?;
        let parsed: CreateChatCompletionResponse = serde_json::from_slice(&bytes).map_err(|e| {
            Attempt::Fatal(ModelError::Malformed(format!(
                "not a chat completion ({e}): {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )))
        })?;
        return from_response(parsed);
    }
    // SSE: events separated by a blank line, `data: {chunk}` lines, `data: [DONE]` at the end.
    let mut acc = Accumulator::default();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| Attempt::Retry {
            why: format!("the stream broke off: {}", without_url(&e)),
            after: None,
        })?;
        let Some(chunk) = chunk else {
            return Err(Attempt::Retry {
                why: "the stream ended without [DONE]".into(),
                after: None,
            });
        };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = find_line_end(&buf) {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            let Some(data) = line.strip_prefix("data:") else {
                continue; // blank separators, comments (`: keep-alive`), event names
            };
            let data = data.trim();
            if data == "[DONE]" {
                return acc.finish();
            }
            let chunk: CreateChatCompletionStreamResponse =
                serde_json::from_str(data).map_err(|e| {
                    Attempt::Fatal(ModelError::Malformed(format!(
                        "not a chat completion chunk ({e}): {}",
                        data.chars().take(200).collect::<String>()
                    )))
                })?;
            acc.add(chunk);
            if let Some(on) = on {
                let calls: Vec<ToolCall> = acc.calls.values().cloned().collect();
                on(Partial {
                    content: &acc.content,
                    tool_calls: &calls,
                });
            }
        }
    }
}

fn find_line_end(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|b| *b == b'\n')
}

/// A reqwest error without the URL (it may carry credentials in odd setups).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused or unreachable"
    } else if e.is_body() || e.is_decode() {
        "bad body"
    } else {
        "request failed"
    };
    kind.to_owned()
}

fn finish(f: Option<WireFinish>) -> FinishReason {
    match f {
        Some(WireFinish::Stop) => FinishReason::Stop,
        Some(WireFinish::ToolCalls) | Some(WireFinish::FunctionCall) => FinishReason::ToolCalls,
        Some(WireFinish::Length) => FinishReason::Length,
        Some(WireFinish::ContentFilter) => FinishReason::ContentFilter,
        None => FinishReason::Other,
    }
}

fn from_response(r: CreateChatCompletionResponse) -> Result<ChatResponse, Attempt> {
    let Some(choice) = r.choices.into_iter().next() else {
        return Err(Attempt::Fatal(ModelError::Malformed(
            "a chat completion without choices".into(),
        )));
    };
    let tool_calls = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| match c {
            ChatCompletionMessageToolCalls::Function(f) => Some(ToolCall {
                id: f.id,
                name: f.function.name,
                arguments: f.function.arguments,
            }),
            ChatCompletionMessageToolCalls::Custom(_) => None,
        })
        .collect();
    let usage = r
        .usage
        .map(|u| Usage {
            input_tokens: u64::from(u.prompt_tokens),
            output_tokens: u64::from(u.completion_tokens),
        })
        .unwrap_or_default();
    Ok(ChatResponse {
        content: choice.message.content,
        tool_calls,
        finish: finish(choice.finish_reason),
        usage,
        provider: String::new(),
        model: r.model,
        cost_micros: 0,
    })
}

/// Joins streamed chunks: text deltas in order, tool-call fragments by index.
#[derive(Default)]
struct Accumulator {
    model: String,
    content: String,
    saw_content: bool,
    calls: BTreeMap<u32, ToolCall>,
    finish: Option<WireFinish>,
    usage: Usage,
}

impl Accumulator {
    fn add(&mut self, c: CreateChatCompletionStreamResponse) {
        if self.model.is_empty() {
            self.model = c.model;
        }
        if let Some(u) = c.usage {
            self.usage = Usage {
                input_tokens: u64::from(u.prompt_tokens),
                output_tokens: u64::from(u.completion_tokens),
            };
        }
        for choice in c.choices.into_iter().filter(|ch| ch.index == 0) {
            if let Some(t) = choice.delta.content {
                self.saw_content = true;
                self.content.push_str(&t);
            }
            for frag in choice.delta.tool_calls.unwrap_or_default() {
                let call = self.calls.entry(frag.index).or_insert_with(|| ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                if let Some(id) = frag.id {
                    call.id = id;
                }
                if let Some(f) = frag.function {
                    if let Some(n) = f.name {
                        call.name.push_str(&n);
                    }
                    if let Some(a) = f.arguments {
                        call.arguments.push_str(&a);
                    }
                }
            }
            if choice.finish_reason.is_some() {
                self.finish = choice.finish_reason;
            }
        }
    }

    fn finish(self) -> Result<ChatResponse, Attempt> {
        Ok(ChatResponse {
            content: self.saw_content.then_some(self.content),
            tool_calls: self.calls.into_values().collect(),
            finish: finish(self.finish),
            usage: self.usage,
            provider: String::new(),
            model: self.model,
            cost_micros: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krake_core::model::{ChatMessage, ToolSpec};

    #[test]
    fn request_has_the_real_field_names() {
        let r = ChatRequest {
            model: None,
            messages: vec![
                ChatMessage::system("s"),
                ChatMessage::user("u"),
                ChatMessage::assistant(
                    "",
                    vec![ToolCall {
                        id: "call_1".into(),
                        name: "reply".into(),
                        arguments: "{}".into(),
                    }],
                ),
                ChatMessage::tool("call_1", "ok"),
            ],
            tools: vec![ToolSpec {
                name: "reply".into(),
                description: "d".into(),
                parameters: json!({"type": "object", "properties": {}}),
            }],
            temperature: Some(0.2),
            max_tokens: Some(100),
        };
        let b = request_body(&r, "gpt-x", true).unwrap();
        assert_eq!(b["model"], "gpt-x");
        assert_eq!(
            b["messages"][2]["tool_calls"][0]["function"]["name"],
            "reply"
        );
        assert_eq!(b["messages"][3]["tool_call_id"], "call_1");
        assert_eq!(b["tools"][0]["type"], "function");
        assert_eq!(b["stream_options"]["include_usage"], true);
    }

    #[test]
    fn retry_headers_in_ms_or_seconds() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
