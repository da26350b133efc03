//! `krake key`: the customer widget's publishable keys, made, listed and revoked by the local
//! owner through core's rules ([`krake_core::visitor::Visitors`]).

use crate::cli::KeyCmd;
use crate::settings::Settings;
use crate::wiring;
use anyhow::Context;
use krake_core::Actor;
use krake_core::visitor::{KEY_PREFIX, NewKey};
use krake_core::workspace::WorkspaceSlug;

/// Runs one `krake key …` command.
pub async fn run(settings: Settings, cmd: KeyCmd) -> anyhow::Result<()> {
    let store = wiring::open_store(&settings, false).await?;
    let krake = wiring::krake(&store, &settings);
    let visitors = krake
        .visitors()
        .context("the customer widget is not enabled")?;
    let me = Actor::local();
    match cmd {
        KeyCmd::Create {
            workspace,
            agent,
            origins,
        } => {
            let workspace = WorkspaceSlug::parse(&workspace)?;
            let key = format!("{KEY_PREFIX}{}", krake_web::auth::random_token());
            let new = NewKey {
                workspace,
                agent,
                origins,
            };
            let made = visitors.create_key(&me, &new, &key).await?;
            println!("{key}");
            eprintln!(
                "Publishable key {} for {} (visitors chat with {}), allowed on {}.\nPut it on the shop's pages:\n  <script src=\"https://YOUR-KRAKE/widget.js\" data-key=\"{key}\" async></script>\nRevoke it with: krake key revoke {}",
                made.prefix,
                made.workspace,
                made.agent,
                made.origins.join(", "),
                made.prefix
            );
        }
        KeyCmd::List { workspace } => {
            let workspace = workspace.as_deref().map(WorkspaceSlug::parse).transpose()?;
            let keys = visitors.keys(&me, workspace.as_ref()).await?;
            if keys.is_empty() {
                println!(
                    "No publishable keys yet. Make one: krake key create lunavo --origin https://shop.example.com"
                );
            }
            for k in keys {
                let state = match k.revoked_at {
                    Some(at) => format!("revoked {}", at.to_utc_string()),
                    None => "active".to_owned(),
                };
                println!(
                    "{}…  {}  {}  {}  made by {} {}  {state}",
                    k.prefix,
                    k.workspace,
                    k.agent,
                    k.origins.join(","),
                    k.created_by,
                    k.created_at.to_utc_string()
                );
            }
        }
        KeyCmd::Revoke { prefix } => {
            let keys = visitors.revoke(&me, &prefix).await?;
            for k in keys {
                println!("Revoked {} ({}, {}).", k.prefix, k.workspace, k.agent);
            }
        }
    }
    Ok(())
}
