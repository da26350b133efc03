//! `krake folder export|import`: an agent's folder to and from CSV files, through the same
//! core commands chat uses (so the checks and the all-or-nothing import are the same).

use crate::cli::FolderCmd;
use crate::settings::Settings;
use crate::wiring;
use anyhow::{Context, bail};
use krake_core::Actor;
use krake_core::chat::command::Command;
use krake_core::folder::FolderCommand;
use krake_core::reply::Tone;
use std::io::{Read, Write};

/// Runs one folder subcommand.
pub async fn run(settings: Settings, cmd: FolderCmd) -> anyhow::Result<()> {
    let store = wiring::open_store(&settings, false).await?;
    let krake = wiring::krake(&store, &settings);
    let agent_name = |a: &str| -> anyhow::Result<String> {
        match settings.directory.agent(a) {
            Some(x) => Ok(x.name.to_string()),
            None => bail!("there is no agent called `{a}`; see `krake chat` and /agents"),
        }
    };
    let result = match cmd {
        FolderCmd::Export {
            agent,
            folder,
            output,
        } => {
            let agent = agent_name(&agent)?;
            let reply = krake
                .execute(
                    &Actor::local(),
                    Command::Folder(FolderCommand::Export { agent, folder }),
                )
                .await;
            if reply.tone != Tone::Info {
                bail!("{}", reply.text);
            }
            let mut csv = reply.text;
            csv.push('\n');
            if output == "-" {
                std::io::stdout().write_all(csv.as_bytes())?;
            } else {
                std::fs::write(&output, csv).with_context(|| format!("cannot write {output}"))?;
                eprintln!("wrote {output}");
            }
            Ok(())
        }
        FolderCmd::Import {
            agent,
            folder,
            file,
        } => {
            let agent = agent_name(&agent)?;
            let mut csv = String::new();
            if file == "-" {
                std::io::stdin().read_to_string(&mut csv)?;
            } else {
                csv = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {file}"))?;
            }
            let reply = krake
                .execute(
                    &Actor::local(),
                    Command::Folder(FolderCommand::Import { agent, folder, csv }),
                )
                .await;
            if reply.tone == Tone::Success {
                println!("{}", reply.text);
                Ok(())
            } else {
                bail!("{}", reply.text)
            }
        }
    };
    store.pool().close().await;
    result
}
