//! What an approved (or confidently proposed) action does. Refunds and price changes go to the
//! workspace's shop through the [`ShopAdmin`] port (krake-commerce implements it for Shopify's
//! Admin API); messages and posts go through the outbox to the workspace's chat destinations
//! (Krake has no e-mail or social-network adapter: a post is delivered to the team labelled as
//! a post to publish by hand). [`Actions`] is the run engine's
//! [`ActionExecutor`](crate::run::ActionExecutor); the runner calls it once per action.

use crate::delivery::Routes;
use crate::inbox::ProposedAction;
use crate::outbox::{Destination, NewOutbound, OutboxPayload};
use crate::ports::OutboxRepo;
use crate::reply::Reply;
use crate::run::ActionExecutor;
use crate::time::Clock;
use crate::workspace::WorkspaceSlug;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Why a shop refused or failed an action (said to people as is; never holds a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShopError(pub String);

/// A refund the shop made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refunded {
    /// The shop's id of the refund.
    pub id: String,
    /// The amount refunded as the shop writes it (`45.00`).
    pub amount: String,
}

/// A price the shop now shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSet {
    /// The shop's id of what was changed (a variant id).
    pub variant: String,
    /// The price the shop now shows (`19.99`).
    pub price: String,
}

/// One shop's admin operations that approved actions need.
#[async_trait]
pub trait ShopAdmin: Send + Sync {
    /// The shop platform's name, for people (`Shopify`).
    fn name(&self) -> &str;
    /// Refunds `amount_minor` of `currency` on order `order_id`, with `note` on the refund.
    async fn refund(
        &self,
        order_id: &str,
        amount_minor: i64,
        currency: &str,
        note: &str,
    ) -> Result<Refunded, ShopError>;
    /// Sets the price of `product` (as the agent proposed it) to `price_minor` of `currency`.
    async fn set_price(
        &self,
        product: &str,
        price_minor: i64,
        currency: &str,
    ) -> Result<PriceSet, ShopError>;
}

/// A call a [`MemoryShop`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShopCall {
    /// A refund: order, amount in minor units, currency, note.
    Refund(String, i64, String, String),
    /// A price change: product, price in minor units, currency.
    SetPrice(String, i64, String),
}

/// An in-memory [`ShopAdmin`], for tests: it records calls and succeeds (amounts written with
/// two decimals), or fails every call with the reason given.
#[derive(Debug, Default)]
pub struct MemoryShop {
    calls: Mutex<Vec<ShopCall>>,
    failure: Option<String>,
}

impl MemoryShop {
    /// A shop that succeeds.
    pub fn new() -> Self {
        Self::default()
    }

    /// A shop that refuses every call with `why`.
    pub fn failing(why: &str) -> Self {
        Self {
            failure: Some(why.to_owned()),
            ..Self::default()
        }
    }

    /// The calls received, in order.
    pub fn calls(&self) -> Vec<ShopCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, call: ShopCall) -> Result<usize, ShopError> {
        let mut calls = self
            .calls
            .lock()
            .map_err(|_| ShopError("shop lock poisoned".to_owned()))?;
        calls.push(call);
        match &self.failure {
            Some(why) => Err(ShopError(why.clone())),
            None => Ok(calls.len()),
        }
    }
}

#[async_trait]
impl ShopAdmin for MemoryShop {
    fn name(&self) -> &str {
        "the test shop"
    }

    async fn refund(
        &self,
        order_id: &str,
        amount_minor: i64,
        currency: &str,
        note: &str,
    ) -> Result<Refunded, ShopError> {
        let n = self.record(ShopCall::Refund(
            order_id.to_owned(),
            amount_minor,
            currency.to_owned(),
            note.to_owned(),
        ))?;
        Ok(Refunded {
            id: format!("r{n}"),
            amount: crate::inbox::minor(amount_minor),
        })
    }

    async fn set_price(
        &self,
        product: &str,
        price_minor: i64,
        currency: &str,
    ) -> Result<PriceSet, ShopError> {
        self.record(ShopCall::SetPrice(
            product.to_owned(),
            price_minor,
            currency.to_owned(),
        ))?;
        Ok(PriceSet {
            variant: product.to_owned(),
            price: crate::inbox::minor(price_minor),
        })
    }
}

/// Carries out actions: each workspace's shop, the outbox and the chat routes.
pub struct Actions {
    shops: BTreeMap<WorkspaceSlug, Arc<dyn ShopAdmin>>,
    outbox: Arc<dyn OutboxRepo>,
    clock: Arc<dyn Clock>,
    routes: Routes,
}

impl Actions {
    /// Actions delivering messages through `outbox` to `routes`, with no shop yet.
    pub fn new(outbox: Arc<dyn OutboxRepo>, clock: Arc<dyn Clock>, routes: Routes) -> Self {
        Self {
            shops: BTreeMap::new(),
            outbox,
            clock,
            routes,
        }
    }

    /// Refunds and price changes of `workspace` go to `shop`.
    pub fn with_shop(mut self, workspace: WorkspaceSlug, shop: Arc<dyn ShopAdmin>) -> Self {
        self.shops.insert(workspace, shop);
        self
    }

    fn shop(&self, workspace: &WorkspaceSlug) -> Result<&Arc<dyn ShopAdmin>, String> {
        self.shops.get(workspace).ok_or_else(|| {
            format!(
                "{workspace} has no Shopify Admin API access: set KRAKE_SHOPIFY_ADMIN_TOKEN_{} (or [shopify.admin_tokens]) and its shop under [shopify.shops]",
                workspace.as_str().to_uppercase().replace('-', "_")
            )
        })
    }

    /// Enqueues `text` to `destinations`, once per action and destination.
    async fn deliver(
        &self,
        destinations: &[Destination],
        text: String,
        key: &str,
    ) -> Result<usize, String> {
        let now = self.clock.now();
        for d in destinations {
            let msg = NewOutbound {
                destination: d.clone(),
                payload: OutboxPayload::Send {
                    reply: Reply::info(text.clone()),
                },
            };
            self.outbox
                .enqueue_once(&msg, &format!("action:{key}:{}", d.as_str()), now)
                .await
                .map_err(|e| format!("cannot queue the message: {e}"))?;
        }
        Ok(destinations.len())
    }

    /// Where a message `to` goes: a destination of the workspace named exactly, the workspace's
    /// destinations on one front (`telegram`), or all of them.
    fn destinations(
        &self,
        workspace: &WorkspaceSlug,
        to: &str,
    ) -> Result<Vec<Destination>, String> {
        let all = self.routes.for_workspace(workspace);
        if all.is_empty() {
            return Err(format!(
                "{workspace} has no chat destination to deliver to (configure a Telegram chat, Discord channel or the web front for it)"
            ));
        }
        let to = to.trim();
        if let Some(d) = all.iter().find(|d| d.as_str() == to) {
            return Ok(vec![d.clone()]);
        }
        let front: Vec<Destination> = all.iter().filter(|d| d.front() == to).cloned().collect();
        if !front.is_empty() {
            return Ok(front);
        }
        Ok(all.to_vec())
    }
}

#[async_trait]
impl ActionExecutor for Actions {
    async fn execute(
        &self,
        workspace: &WorkspaceSlug,
        action: &ProposedAction,
        key: &str,
    ) -> Result<String, String> {
        match action {
            ProposedAction::Refund {
                order_id,
                amount_minor,
                currency,
            } => {
                let shop = self.shop(workspace)?;
                let done = shop
                    .refund(
                        order_id,
                        *amount_minor,
                        currency,
                        &format!("Approved in Krake ({key})"),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "refunded {} {currency} on order {order_id} in {} (refund {})",
                    done.amount,
                    shop.name(),
                    done.id
                ))
            }
            ProposedAction::ChangePrice {
                product,
                price_minor,
                currency,
            } => {
                let shop = self.shop(workspace)?;
                let done = shop
                    .set_price(product, *price_minor, currency)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "price of variant {} set to {} {currency} in {}",
                    done.variant,
                    done.price,
                    shop.name()
                ))
            }
            ProposedAction::SendMessage { to, text } => {
                let dests = self.destinations(workspace, to)?;
                let n = self
                    .deliver(
                        &dests,
                        format!("Message for {to} (approved in Krake):\n{text}"),
                        key,
                    )
                    .await?;
                Ok(format!("message for {to} sent to {n} chat destination(s)"))
            }
            ProposedAction::PublishPost { channel, text } => {
                let dests = self.destinations(workspace, "")?;
                let n = self
                    .deliver(
                        &dests,
                        format!(
                            "Post to publish on {channel} (approved in Krake; Krake cannot post to {channel} itself, so please copy it there):\n{text}"
                        ),
                        key,
                    )
                    .await?;
                Ok(format!(
                    "post for {channel} delivered to {n} chat destination(s) for a person to publish (Krake has no {channel} API)"
                ))
            }
            // The run engine calls outside tools itself (recorded and charged on the run).
            ProposedAction::CallTool { server, tool, .. } => Err(format!(
                "{server}/{tool} is an outside tool: the run engine calls it, not the action rules"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fakes::FakeOutbox;
    use crate::time::{ManualClock, Timestamp};

    fn ws(s: &str) -> WorkspaceSlug {
        WorkspaceSlug::parse(s).expect("slug")
    }

    fn dest(s: &str) -> Destination {
        Destination::parse(s).expect("destination")
    }

    struct World {
        actions: Actions,
        outbox: Arc<FakeOutbox>,
        shop: Arc<MemoryShop>,
    }

    fn world(shop: MemoryShop) -> World {
        let outbox = Arc::new(FakeOutbox::default());
        let shop = Arc::new(shop);
        let mut routes = Routes::new();
        routes.add(ws("lunavo"), dest("telegram:-100"));
        routes.add(ws("lunavo"), dest("discord:42"));
        routes.add(ws("lunavo"), dest("telegram:-200"));
        let actions = Actions::new(
            outbox.clone(),
            Arc::new(ManualClock::new(Timestamp::from_millis(5_000))),
            routes,
        )
        .with_shop(ws("lunavo"), shop.clone());
        World {
            actions,
            outbox,
            shop,
        }
    }

    fn texts(outbox: &FakeOutbox) -> Vec<(String, String)> {
        outbox
            .queued()
            .into_iter()
            .map(|(m, _, _)| {
                let OutboxPayload::Send { reply } = m.payload else {
                    panic!("not a send: {m:?}");
                };
                (m.destination.as_str().to_owned(), reply.text)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_refund_goes_to_the_workspaces_shop_with_the_action_key() {
        let w = world(MemoryShop::new());
        let done = w
            .actions
            .execute(
                &ws("lunavo"),
                &ProposedAction::Refund {
                    order_id: "9007199254740993".into(),
                    amount_minor: 4500,
                    currency: "EUR".into(),
                },
                "run:12",
            )
            .await
            .expect("refunded");
        assert_eq!(
            done,
            "refunded 45.00 EUR on order 9007199254740993 in the test shop (refund r1)"
        );
        assert_eq!(
            w.shop.calls(),
            vec![ShopCall::Refund(
                "9007199254740993".into(),
                4500,
                "EUR".into(),
                "Approved in Krake (run:12)".into()
            )]
        );
        assert!(w.outbox.queued().is_empty());
    }

    #[tokio::test]
    async fn a_price_change_goes_to_the_shop_and_says_what_it_shows_now() {
        let w = world(MemoryShop::new());
        let done = w
            .actions
            .execute(
                &ws("lunavo"),
                &ProposedAction::ChangePrice {
                    product: "42".into(),
                    price_minor: 1999,
                    currency: "USD".into(),
                },
                "run:3",
            )
            .await
            .expect("changed");
        assert_eq!(
            done,
            "price of variant 42 set to 19.99 USD in the test shop"
        );
        assert_eq!(
            w.shop.calls(),
            vec![ShopCall::SetPrice("42".into(), 1999, "USD".into())]
        );
    }

    #[tokio::test]
    async fn a_shop_refusal_or_a_workspace_without_a_shop_fails_with_the_reason() {
        let w = world(MemoryShop::failing("order 7 has only 10.00 EUR refundable"));
        let refund = ProposedAction::Refund {
            order_id: "7".into(),
            amount_minor: 4500,
            currency: "EUR".into(),
        };
        let e = w
            .actions
            .execute(&ws("lunavo"), &refund, "run:1")
            .await
            .expect_err("refused");
        assert_eq!(e, "order 7 has only 10.00 EUR refundable");
        let e = w
            .actions
            .execute(&ws("hard-life-mode"), &refund, "run:2")
            .await
            .expect_err("no shop");
        assert!(
            e.starts_with("hard-life-mode has no Shopify Admin API access")
                && e.contains("KRAKE_SHOPIFY_ADMIN_TOKEN_HARD_LIFE_MODE"),
            "{e}"
        );
        assert_eq!(
            w.shop.calls().len(),
            1,
            "the other workspace's shop is not asked"
        );
    }

    #[tokio::test]
    async fn a_message_goes_to_the_named_destination_the_named_front_or_everywhere_once() {
        let w = world(MemoryShop::new());
        let send = |to: &str| ProposedAction::SendMessage {
            to: to.into(),
            text: "Your parcel left today.".into(),
        };
        let said = w
            .actions
            .execute(&ws("lunavo"), &send("discord:42"), "run:1")
            .await
            .expect("sent");
        assert_eq!(said, "message for discord:42 sent to 1 chat destination(s)");
        let said = w
            .actions
            .execute(&ws("lunavo"), &send("telegram"), "run:2")
            .await
            .expect("sent");
        assert_eq!(said, "message for telegram sent to 2 chat destination(s)");
        let said = w
            .actions
            .execute(&ws("lunavo"), &send("ana@example.com"), "run:3")
            .await
            .expect("sent");
        assert_eq!(
            said,
            "message for ana@example.com sent to 3 chat destination(s)"
        );
        // The same action again (a retry after a crash) queues nothing more.
        w.actions
            .execute(&ws("lunavo"), &send("ana@example.com"), "run:3")
            .await
            .expect("sent");
        let queued = w.outbox.queued();
        assert_eq!(queued.len(), 6, "{queued:?}");
        assert_eq!(queued[0].1, "action:run:1:discord:42");
        assert_eq!(queued[0].2, Timestamp::from_millis(5_000));
        assert_eq!(
            texts(&w.outbox)[0],
            (
                "discord:42".to_owned(),
                "Message for discord:42 (approved in Krake):\nYour parcel left today.".to_owned()
            )
        );
        let to_telegram: Vec<String> = texts(&w.outbox)[1..3].iter().map(|t| t.0.clone()).collect();
        assert_eq!(to_telegram, ["telegram:-100", "telegram:-200"]);
        assert!(w.shop.calls().is_empty());
    }

    #[tokio::test]
    async fn a_post_is_delivered_to_every_destination_to_publish_by_hand() {
        let w = world(MemoryShop::new());
        let post = ProposedAction::PublishPost {
            channel: "instagram".into(),
            text: "New glow hoodies!".into(),
        };
        let said = w
            .actions
            .execute(&ws("lunavo"), &post, "run:9")
            .await
            .expect("delivered");
        assert_eq!(
            said,
            "post for instagram delivered to 3 chat destination(s) for a person to publish (Krake has no instagram API)"
        );
        for (_, text) in texts(&w.outbox) {
            assert_eq!(
                text,
                "Post to publish on instagram (approved in Krake; Krake cannot post to instagram itself, so please copy it there):\nNew glow hoodies!"
            );
        }
        let e = w
            .actions
            .execute(&ws("monarch"), &post, "run:10")
            .await
            .expect_err("no destination");
        assert!(e.contains("monarch has no chat destination"), "{e}");
    }
}
