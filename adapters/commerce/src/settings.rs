//! `[shopify]` and `[gelato]` in the config file: read (the `KRAKE_SHOPIFY_…` and
//! `KRAKE_GELATO_…` variables preferred over the file) into [`CommerceSettings`], and written
//! back from them for `krake config` (every secret as `***`).

use crate::shopify_admin::ShopifyAdmin;
use crate::{Secret, WebhookConfig, gelato_api};
use krake_core::config::Directory;
use krake_core::settings::{SettingsError, env_or, env_secret, known_workspace, workspace_env};
use krake_core::workspace::WorkspaceSlug;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// `[shopify]` in the config file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifyFile {
    /// The webhook secret (prefer `KRAKE_SHOPIFY_WEBHOOK_SECRET`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<Secret>,
    /// The previous secret during rotation (prefer `KRAKE_SHOPIFY_WEBHOOK_SECRET_PREVIOUS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret_previous: Option<Secret>,
    /// Shop domain → workspace slug.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shops: BTreeMap<String, String>,
    /// Workspace slug → Admin API access token, for approved refunds and price changes
    /// (prefer `KRAKE_SHOPIFY_ADMIN_TOKEN_<WORKSPACE>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub admin_tokens: BTreeMap<String, Secret>,
    /// Workspace slug → the webhook secret of that workspace's shops, when each shop signs
    /// with its own (a custom app per shop); prefer `KRAKE_SHOPIFY_WEBHOOK_SECRET_<WORKSPACE>`
    /// (and `KRAKE_SHOPIFY_WEBHOOK_SECRET_PREVIOUS_<WORKSPACE>` during rotation). Those shops
    /// then verify with their own secret only, never with `webhook_secret`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub webhook_secrets: BTreeMap<String, Secret>,
    /// Events whose `X-Shopify-Triggered-At` is older than this many seconds are refused
    /// (default 86400, 24 h; Shopify retries for about 4 h).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_event_age_secs: Option<u64>,
}

/// `[gelato]` in the config file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GelatoFile {
    /// The Order API key (prefer `KRAKE_GELATO_API_KEY`): with it, a status that makes Krake
    /// act is confirmed with Gelato first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// The Order API's base URL (default `https://order.gelatoapis.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Workspace slug → webhook path token (prefer `KRAKE_GELATO_TOKEN_<WORKSPACE>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tokens: BTreeMap<String, Secret>,
}

/// One workspace's Shopify Admin API access.
#[derive(Debug, Clone)]
pub struct AdminAccess {
    /// The workspace whose approved refunds and price changes go to this shop.
    pub workspace: WorkspaceSlug,
    /// `https://SHOP.myshopify.com`, or `KRAKE_SHOPIFY_ADMIN_URL` (a proxy, or a test's fake).
    pub base_url: String,
    /// The access token.
    pub token: Secret,
}

/// The effective commerce settings.
#[derive(Debug, Clone, Default)]
pub struct CommerceSettings {
    /// Shopify and Gelato webhooks.
    pub webhooks: WebhookConfig,
    /// Gelato's Order API (base URL, key), when a key is set.
    pub gelato_api: Option<(String, Secret)>,
    /// Shopify Admin API access per workspace.
    pub admin: Vec<AdminAccess>,
}

/// Reads `[shopify]` and `[gelato]` for the workspaces of `directory`.
pub fn resolve(
    shopify: &ShopifyFile,
    gelato: &GelatoFile,
    directory: &Directory,
) -> Result<CommerceSettings, SettingsError> {
    let mut shops = HashMap::new();
    for (shop, ws) in &shopify.shops {
        shops.insert(
            shop.to_ascii_lowercase(),
            known_workspace(directory, ws, &format!("[shopify.shops] \"{shop}\""))?,
        );
    }
    for ws in gelato.tokens.keys() {
        known_workspace(directory, ws, "[gelato.tokens]")?;
    }
    for ws in shopify.admin_tokens.keys() {
        known_workspace(directory, ws, "[shopify.admin_tokens]")?;
    }
    for ws in shopify.webhook_secrets.keys() {
        known_workspace(directory, ws, "[shopify.webhook_secrets]")?;
    }
    // Per-workspace secrets belong to every shop of the workspace.
    let mut shop_secrets: HashMap<String, Vec<Secret>> = HashMap::new();
    for w in directory.workspaces() {
        let current = env_secret(
            &workspace_env("KRAKE_SHOPIFY_WEBHOOK_SECRET", &w.slug),
            shopify.webhook_secrets.get(w.slug.as_str()),
        );
        let previous = env_secret(
            &workspace_env("KRAKE_SHOPIFY_WEBHOOK_SECRET_PREVIOUS", &w.slug),
            None,
        );
        let secrets: Vec<Secret> = current.into_iter().chain(previous).collect();
        if secrets.is_empty() {
            continue;
        }
        for (shop, ws) in &shops {
            if ws == &w.slug {
                shop_secrets.insert(shop.clone(), secrets.clone());
            }
        }
    }
    let max_event_age = match shopify.max_event_age_secs {
        Some(0) => {
            return Err(SettingsError::new(
                "[shopify] max_event_age_secs must be at least 1 (the default is 86400, 24 hours)",
            ));
        }
        Some(secs) => std::time::Duration::from_secs(secs),
        None => crate::DEFAULT_MAX_EVENT_AGE,
    };
    let mut gelato_tokens = Vec::new();
    for w in directory.workspaces() {
        let env = workspace_env("KRAKE_GELATO_TOKEN", &w.slug);
        if let Some(t) = env_secret(&env, gelato.tokens.get(w.slug.as_str())) {
            if t.expose().len() < 16 {
                return Err(SettingsError::new(format!(
                    "the Gelato token for {} is too short to be unguessable: use at least 16 random characters",
                    w.slug
                )));
            }
            gelato_tokens.push((w.slug.clone(), t));
        }
    }
    let webhooks = WebhookConfig {
        shopify_secret: env_secret(
            "KRAKE_SHOPIFY_WEBHOOK_SECRET",
            shopify.webhook_secret.as_ref(),
        ),
        shopify_secret_previous: env_secret(
            "KRAKE_SHOPIFY_WEBHOOK_SECRET_PREVIOUS",
            shopify.webhook_secret_previous.as_ref(),
        ),
        shops,
        shop_secrets,
        max_event_age,
        gelato_tokens,
    };
    let gelato_api = env_secret("KRAKE_GELATO_API_KEY", gelato.api_key.as_ref()).map(|k| {
        let url = env_or("KRAKE_GELATO_API_URL", gelato.api_url.as_ref())
            .unwrap_or_else(|| gelato_api::DEFAULT_BASE_URL.to_owned());
        (url, k)
    });
    Ok(CommerceSettings {
        webhooks,
        gelato_api,
        admin: admin(shopify, directory)?,
    })
}

/// Shopify Admin API access per workspace: the token from `KRAKE_SHOPIFY_ADMIN_TOKEN_<WS>` or
/// `[shopify.admin_tokens]`, the shop from `[shopify.shops]` (`https://DOMAIN`), or every
/// workspace's base URL from `KRAKE_SHOPIFY_ADMIN_URL` (a proxy, or a test's fake).
fn admin(shopify: &ShopifyFile, directory: &Directory) -> Result<Vec<AdminAccess>, SettingsError> {
    let url_override = env_or("KRAKE_SHOPIFY_ADMIN_URL", None);
    let mut out = Vec::new();
    for w in directory.workspaces() {
        let env = workspace_env("KRAKE_SHOPIFY_ADMIN_TOKEN", &w.slug);
        let Some(token) = env_secret(&env, shopify.admin_tokens.get(w.slug.as_str())) else {
            continue;
        };
        let shop = shopify
            .shops
            .iter()
            .find(|(_, ws)| ws.as_str() == w.slug.as_str())
            .map(|(domain, _)| format!("https://{}", domain.to_ascii_lowercase()));
        let Some(base_url) = url_override.clone().or(shop) else {
            return Err(SettingsError::new(format!(
                "a Shopify Admin token is set for {} but no shop: add its domain under [shopify.shops] (\"SHOP.myshopify.com\" = \"{}\")",
                w.slug, w.slug
            )));
        };
        ShopifyAdmin::new(&base_url, Secret::new(""))
            .map_err(|e| SettingsError::new(format!("Shopify Admin API of {}: {e}", w.slug)))?;
        out.push(AdminAccess {
            workspace: w.slug.clone(),
            base_url,
            token,
        });
    }
    Ok(out)
}

impl CommerceSettings {
    /// The settings in effect, as they would be written in the file (secrets as `***`).
    pub fn effective(&self) -> (ShopifyFile, GelatoFile) {
        let w = &self.webhooks;
        let shopify = ShopifyFile {
            webhook_secret: w.shopify_secret.clone(),
            webhook_secret_previous: w.shopify_secret_previous.clone(),
            shops: w
                .shops
                .iter()
                .map(|(shop, ws)| (shop.clone(), ws.to_string()))
                .collect(),
            admin_tokens: self
                .admin
                .iter()
                .map(|a| (a.workspace.to_string(), a.token.clone()))
                .collect(),
            webhook_secrets: w
                .shop_secrets
                .iter()
                .filter_map(|(shop, secrets)| {
                    let ws = w.shops.get(shop)?;
                    Some((ws.to_string(), secrets.first()?.clone()))
                })
                .collect(),
            max_event_age_secs: Some(w.max_event_age.as_secs()),
        };
        let gelato = GelatoFile {
            api_key: self.gelato_api.as_ref().map(|(_, k)| k.clone()),
            api_url: self.gelato_api.as_ref().map(|(u, _)| u.clone()),
            tokens: w
                .gelato_tokens
                .iter()
                .map(|(ws, t)| (ws.to_string(), t.clone()))
                .collect(),
        };
        (shopify, gelato)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(shopify: &str, gelato: &str) -> Result<CommerceSettings, String> {
        let s: ShopifyFile = toml::from_str(shopify).map_err(|e| e.to_string())?;
        let g: GelatoFile = toml::from_str(gelato).map_err(|e| e.to_string())?;
        resolve(&s, &g, &Directory::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn webhook_settings_are_checked_and_written_back_without_secrets() {
        let c = load(
            "webhook_secret = \"file-secret\"\n[shops]\n\"Lunavo.myshopify.com\" = \"lunavo\"\n",
            "[tokens]\nmonarch = \"0123456789abcdef0123\"\n",
        )
        .unwrap();
        assert_eq!(
            c.webhooks
                .shops
                .get("lunavo.myshopify.com")
                .map(|w| w.as_str()),
            Some("lunavo")
        );
        assert_eq!(c.webhooks.gelato_tokens.len(), 1);
        let (shopify, gelato) = c.effective();
        let out = format!(
            "{}{}",
            toml::to_string(&shopify).unwrap(),
            toml::to_string(&gelato).unwrap()
        );
        assert!(
            !out.contains("file-secret") && !out.contains("0123456789abcdef0123"),
            "{out}"
        );
        assert!(out.contains("webhook_secret = \"***\""), "{out}");
        assert!(out.contains("monarch = \"***\""), "{out}");
        let e = load("[shops]\n\"x.myshopify.com\" = \"narnia\"\n", "").unwrap_err();
        assert!(e.contains("narnia"), "{e}");
        let e = load("", "[tokens]\nlunavo = \"short\"\n").unwrap_err();
        assert!(e.contains("too short"), "{e}");
        let e = load("[admin_tokens]\nmonarch = \"shpat_x\"\n", "").unwrap_err();
        assert!(
            e.contains("[shopify.shops]"),
            "an Admin token needs its shop: {e}"
        );
    }
}
