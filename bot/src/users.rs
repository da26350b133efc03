//! `krake user`: add users with roles, list them, and make one-time link codes.

use crate::cli::UserCmd;
use crate::settings::Settings;
use crate::wiring;
use anyhow::{Context, bail};
use krake_core::actor::{Role, UserName};
use krake_core::ports::{NewToken, TokenRepo, TokenScope, UserRepo};
use krake_core::time::{Clock, SystemClock};
use krake_core::workspace::WorkspaceSlug;
use rand::Rng;
use std::time::Duration;

/// How long a link code is valid.
pub const LINK_CODE_TTL: Duration = Duration::from_secs(15 * 60);

/// A link code: 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L).
pub fn new_link_code() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

/// The password to set: the first line of stdin with `--password-stdin`, else
/// `KRAKE_USER_PASSWORD` if set, else none.
fn read_password(from_stdin: bool) -> anyhow::Result<Option<String>> {
    let pw = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("could not read the password from stdin")?;
        Some(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        std::env::var("KRAKE_USER_PASSWORD").ok()
    };
    match pw {
        Some(p) if p.chars().count() < MIN_PASSWORD => bail!(
            "the password is too short: use at least {MIN_PASSWORD} characters (nothing was changed)"
        ),
        other => Ok(other),
    }
}

/// Runs a `krake user` subcommand.
pub async fn run(settings: Settings, cmd: UserCmd) -> anyhow::Result<()> {
    let store = wiring::open_store(&settings, false).await?;
    let result = match cmd {
        UserCmd::Add {
            name,
            role,
            workspace,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let name = UserName::parse(&name)?;
            let Some(role) = Role::parse(&role).filter(|r| *r != Role::Guest) else {
                bail!("`{role}` is not a role: use owner, admin, member or viewer");
            };
            let workspace = match workspace {
                Some(w) => {
                    let slug = WorkspaceSlug::parse(&w)?;
                    if settings.directory.workspace(&slug).is_none() {
                        bail!("there is no workspace `{w}`; see `krake config` for the workspaces");
                    }
                    Some(slug)
                }
                None => None,
            };
            let rec = store
                .upsert_user(&name, role, workspace.as_ref(), SystemClock.now())
                .await
                .context("could not save the user")?;
            match &workspace {
                Some(w) => println!("{} is {role} in {w}.", rec.name),
                None => println!("{} is {role} in every workspace.", rec.name),
            }
            if let Some(pw) = password {
                let hash = tokio::task::spawn_blocking(move || krake_web::auth::hash_password(&pw))
                    .await?
                    .map_err(|_| anyhow::anyhow!("could not hash the password"))?;
                krake_core::web_accounts::AccountRepo::set_password_hash(
                    &store,
                    &rec.name,
                    &hash,
                    SystemClock.now(),
                )
                .await
                .context("could not save the password")?;
                println!("{} can sign in on the web dashboard now.", rec.name);
            }
            Ok(())
        }
        UserCmd::List => {
            let users = store.users().await?;
            if users.is_empty() {
                println!("No users yet. Add one: krake user add NAME --role owner");
            }
            for u in users {
                let per: Vec<String> = u
                    .workspace_roles
                    .iter()
                    .map(|(w, r)| format!("{r} in {w}"))
                    .collect();
                let per = if per.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", per.join(", "))
                };
                println!("{:<20} {}{per}", u.name, u.role);
            }
            Ok(())
        }
        UserCmd::Token {
            name,
            label,
            expires_days,
            widget,
            list,
            revoke,
        } => {
            let name = UserName::parse(&name)?;
            if store.user(&name).await?.is_none() {
                bail!(
                    "there is no user `{name}`; add it first: krake user add {name} --role member"
                );
            }
            let now = SystemClock.now();
            if list {
                list_tokens(&store, &name, now).await
            } else if let Some(id) = revoke {
                let which = (id != "all").then_some(id.as_str());
                let n = store.revoke_tokens(&name, which, now).await?;
                match (n, which) {
                    (0, Some(id)) => bail!(
                        "{name} has no live token with id `{id}`; see them with: krake user token {name} --list"
                    ),
                    _ => println!("Revoked {n} token(s) of {name}."),
                }
                Ok(())
            } else {
                let scope = match widget {
                    Some(w) => {
                        let slug = WorkspaceSlug::parse(&w)?;
                        if settings.directory.workspace(&slug).is_none() {
                            bail!(
                                "there is no workspace `{w}`; see `krake config` for the workspaces"
                            );
                        }
                        TokenScope::Widget(slug)
                    }
                    None => TokenScope::Personal,
                };
                let prefix = match scope {
                    TokenScope::Personal => "krk_",
                    TokenScope::Widget(_) => "krkw_",
                };
                let token = format!(
                    "{prefix}{}{}{}{}",
                    new_link_code(),
                    new_link_code(),
                    new_link_code(),
                    new_link_code()
                );
                let expires_at = expires_days
                    .map(|d| now.plus(Duration::from_secs(d.clamp(1, 36_500) * 24 * 3600)));
                store
                    .create_token(&NewToken {
                        user: &name,
                        token_hash: &krake_web::hash_token(&token),
                        label: &label,
                        scope: scope.clone(),
                        expires_at,
                        now,
                    })
                    .await?;
                println!("{token}");
                let what = match &scope {
                    TokenScope::Personal => "Use it as `Authorization: Bearer <token>`.".to_owned(),
                    TokenScope::Widget(w) => format!(
                        "Put it in the widget's `data-token`: it opens the web chat of {w} only."
                    ),
                };
                eprintln!(
                    "{what} It is shown only now; Krake keeps only its hash. Revoke it with `krake user token {name} --revoke {}`.",
                    &krake_web::hash_token(&token)[..12]
                );
                Ok(())
            }
        }
        UserCmd::LinkCode { name } => {
            let name = UserName::parse(&name)?;
            if store.user(&name).await?.is_none() {
                bail!(
                    "there is no user `{name}`; add it first: krake user add {name} --role member"
                );
            }
            let code = new_link_code();
            store
                .create_link_code(&name, &code, SystemClock.now().plus(LINK_CODE_TTL))
                .await?;
            println!("{code}");
            eprintln!(
                "Send `/link {code}` to Krake on Telegram or Discord within 15 minutes to act there as {name}. The code works once."
            );
            Ok(())
        }
    };
    store.pool().close().await;
    result
}

/// Prints a user's tokens, one a line: id, label, scope, state.
async fn list_tokens(
    store: &krake_store::Store,
    name: &UserName,
    now: krake_core::time::Timestamp,
) -> anyhow::Result<()> {
    let tokens = store.tokens(name).await?;
    if tokens.is_empty() {
        println!("{name} has no tokens. Make one: krake user token {name}");
    }
    for t in tokens {
        let scope = match &t.scope {
            Some(TokenScope::Personal) => "personal".to_owned(),
            Some(TokenScope::Widget(w)) => format!("widget of {w}"),
            None => "unknown scope".to_owned(),
        };
        let state = match (t.revoked_at, t.expires_at) {
            (Some(_), _) => "revoked".to_owned(),
            (None, Some(e)) if e <= now => "expired".to_owned(),
            (None, Some(e)) => format!("expires {}", e.to_utc_string()),
            (None, None) => "never expires".to_owned(),
        };
        println!("{:<14} {:<20} {:<22} {state}", t.id, t.label, scope);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_unambiguous_characters() {
        let a = new_link_code();
        assert_eq!(a.len(), 8);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert!(!a.contains(['0', 'O', '1', 'I', 'L']));
        assert_ne!(a, new_link_code());
    }
}
