//! The web front in `krake serve`: its routes for every workspace
//! (`web:<slug>`, so new and changed threads reach web sessions through the outbox like any
//! front), its router and its outbox deliverer.

use crate::serve::spawn_delivery_loop;
use krake_core::Krake;
use krake_core::config::Directory;
use krake_core::delivery::{Deliverer, Routes};
use krake_store::Store;
use krake_web::front::{WebConfig, WebState};
use std::sync::Arc;
use tokio::sync::watch;

/// Posts every workspace's threads to its web sessions.
pub fn add_routes(directory: &Directory, routes: &mut Routes) {
    for w in directory.workspaces() {
        if let Some(d) = krake_web::live::destination(&w.slug) {
            routes.add(w.slug.clone(), d);
        }
    }
}

/// The web front's state, and its outbox deliverer running until `stop`.
pub async fn start(
    krake: &Krake,
    store: &Store,
    config: WebConfig,
    stop: watch::Receiver<bool>,
) -> (WebState, tokio::task::JoinHandle<()>) {
    let s = Arc::new(store.clone());
    let state = WebState::new(
        krake.clone(),
        s.clone(),
        s.clone(),
        s.clone(),
        Arc::new(krake_core::time::SystemClock),
        config,
    );
    let web_sender = Arc::new(krake_web::live::WebSender::new(state.hub.clone()));
    krake.live().add(web_sender.clone());
    let deliverer = Deliverer::new(
        s.clone(),
        s,
        Arc::new(crate::fanout::Announcing::new(web_sender, store.clone())),
        Arc::new(krake_core::time::SystemClock),
        format!("web-{}", std::process::id()),
    );
    // The customer widget's visitors: their messages are kept and pushed by their own sender.
    // On PostgreSQL another process may deliver a visitor's answer: sockets catch up.
    let mut state = state;
    if store.backend() == krake_store::Backend::Postgres {
        state.visitors = Arc::new(krake_web::visitor::VisitorHub::new(
            krake_web::visitor::VisitorLimits {
                catch_up: Some(std::time::Duration::from_secs(3)),
                ..krake_web::visitor::VisitorLimits::default()
            },
        ));
    }
    let visitor_sender = Arc::new(krake_web::visitor::VisitorSender::new(
        krake.clone(),
        state.visitors.clone(),
    ));
    krake.live().add(visitor_sender.clone());
    let visitor_deliverer = Deliverer::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        visitor_sender,
        Arc::new(krake_core::time::SystemClock),
        format!("visitor-{}", std::process::id()),
    );
    let listener = crate::fanout::listen(store.clone(), state.hub.clone(), stop.clone()).await;
    let visitors = spawn_delivery_loop(visitor_deliverer, stop.clone());
    let delivery = spawn_delivery_loop(deliverer, stop);
    let task = tokio::spawn(async move {
        let _ = delivery.await;
        let _ = visitors.await;
        let _ = listener.await;
    });
    (state, task)
}
