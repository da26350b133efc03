//! `krake chat`: the terminal front. Interactive with a prompt on a terminal; one message per
//! line when piped (`printf '/todo\n' | krake chat`), each reply printed after its line.

use crate::settings::Settings;
use crate::wiring;
use krake_core::Actor;
use krake_core::Front;
use krake_core::inbound::{Content, IdempotencyKey, Inbound};
use krake_core::reply::{ButtonAction, Reply, Tone};
use std::io::{IsTerminal, Write};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Renders a reply for the terminal; buttons become the commands that do the same.
pub fn render(reply: &Reply) -> String {
    let mut out = match reply.tone {
        Tone::Warning => format!("! {}", reply.text),
        Tone::Error => format!("✗ {}", reply.text),
        Tone::Success => format!("✓ {}", reply.text),
        Tone::Info => reply.text.clone(),
    };
    if !reply.buttons.is_empty() {
        let hints: Vec<String> = reply
            .buttons
            .iter()
            .map(|b| {
                let id = b.payload.thread.0;
                let cmd = match b.payload.action {
                    ButtonAction::Approve => format!("/approve {id}"),
                    ButtonAction::Reject => format!("/reject {id} <reason>"),
                    ButtonAction::Archive => format!("/archive {id}"),
                };
                format!("[{}: {cmd}]", b.label)
            })
            .collect();
        out.push_str("\n  ");
        out.push_str(&hints.join("  "));
    }
    out
}

/// Runs the terminal chat until end of input.
pub async fn chat(settings: Settings) -> anyhow::Result<()> {
    let store = wiring::open_store(&settings, false).await?;
    let krake = wiring::krake(&store, &settings);
    let interactive = std::io::stdin().is_terminal();
    let session = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let actor = Actor::local();
    if interactive {
        println!(
            "Krake chat: you are `local` (owner) on {}.",
            krake_store::redact_url(&settings.database_url)
        );
        println!(
            "Type /help to see what I understand, or just write (\"what's open?\"). Ctrl-D quits."
        );
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut n: u64 = 0;
    loop {
        if interactive {
            print!("you> ");
            let _ = std::io::stdout().flush();
        }
        let Some(line) = lines.next_line().await? else {
            break;
        };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if interactive && matches!(text, "/quit" | "/exit" | "quit" | "exit") {
            break;
        }
        n += 1;
        let key = IdempotencyKey::parse(&format!("cli:{session}:{n}"))?;
        // The terminal answers inline: the reply printed is the one stored with the message.
        let reply = krake
            .accept(Inbound {
                source: Front::Cli,
                key,
                actor: actor.clone(),
                conversation: format!("cli:{session}"),
                reply_to: None,
                answer_to: None,
                content: Content::Text(text.to_owned()),
            })
            .await
            .reply;
        println!("{}", render(&reply));
        if !interactive {
            println!();
        }
    }
    store.pool().close().await;
    Ok(())
}
