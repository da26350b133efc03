//! `krake serve`: the HTTP server, the expiry sweeper, graceful shutdown.

use crate::settings::Settings;
use crate::wiring;
use anyhow::Context;
use async_trait::async_trait;
use krake_core::Krake;
use krake_core::supervise::{FrontStatus, Fronts};
use krake_core::time::Clock;
use krake_store::Store;
use krake_web::{AppState, Readiness};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Ready while the database answers, and the Qdrant server when the knowledge base is on
/// one; lists every front's state beside.
struct StoreReady(Store, Fronts, krake_rag::knowledge::OnDemandKnowledge);

#[async_trait]
impl Readiness for StoreReady {
    async fn check(&self) -> Result<(), String> {
        self.0
            .ping()
            .await
            .map_err(|_| "database unavailable".to_owned())?;
        self.2.ready().await
    }

    fn fronts(&self) -> Vec<(String, FrontStatus)> {
        self.1.snapshot()
    }
}

/// Opens everything from settings and serves until Ctrl-C or SIGTERM.
pub async fn serve(settings: Settings, demo_data: bool) -> anyhow::Result<()> {
    let store = wiring::open_store(&settings, false).await?;
    let (krake, agents) = wiring::krake_with_agents(&store, &settings);
    // MCP tool servers start now, so their tools are listed before the first run.
    if let Some(tools) = &settings.agents.tool_servers {
        tools.start();
    }
    if demo_data {
        let n = krake_core::inbox::demo::fill_if_empty(&krake, krake_core::time::SystemClock.now())
            .await?;
        if n > 0 {
            tracing::info!(threads = n, "demo threads added");
        }
        let points = krake_core::kpi::demo::fill_history(&krake, 64).await?;
        if points > 0 {
            tracing::info!(
                points,
                "demo KPI history added (nine weeks, marked as demo data)"
            );
        }
    }
    crate::coordinator::sync_config_schedules(&store, &settings, &krake_core::time::SystemClock)
        .await
        .context("cannot store the schedules from the config file")?;
    let (coord_stop, coord_rx) = watch::channel(false);
    let coordinator = tokio::spawn(crate::coordinator::run_loop(
        crate::coordinator::coordinator(&store, &settings),
        Duration::from_secs(settings.coordinator_tick_secs),
        coord_rx,
        krake_core::schedule_handoff::ScheduleHandOff::new(
            &agents,
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            Arc::new(krake_core::time::SystemClock),
        ),
    ));
    let recovery = tokio::spawn(krake_core::run_worker::recover_every(
        Arc::new(agents.clone()),
        Duration::from_secs(5),
        coord_stop.subscribe(),
    ));
    let worker = krake_core::run_worker::Worker::new(
        Arc::new(agents),
        Arc::new(krake_core::time::SystemClock),
        settings.agents.concurrency,
    )
    .with_memory(crate::rag::run_memory(&settings))
    .on_ended(Arc::new(|agent, status| {
        krake_metrics::agent_run(agent, status.as_str())
    }));
    let agent_worker = tokio::spawn(worker.run(coord_stop.subscribe()));
    // Files people send become knowledge: one learner per process, jobs leased.
    let learner = tokio::spawn({
        let learner = crate::rag::learner(&store, &settings, krake.live().clone());
        let mut stop = coord_stop.subscribe();
        async move {
            learner
                .run(Duration::from_millis(500), async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        }
    });
    // Threads and folders become knowledge in the background (only when they changed).
    let knowledge_sync = settings.rag.sync_every.map(|every| {
        tokio::spawn(
            crate::rag::knowledge_sync(&store, &settings).run(every, coord_stop.subscribe()),
        )
    });
    let binance = krake_binance::poller::spawn(
        settings.binance.as_ref(),
        krake.clone(),
        coord_stop.subscribe(),
    );
    let listener = TcpListener::bind(settings.listen).await.with_context(|| {
        format!(
            "cannot listen on {}; is another Krake running? Choose another with --listen",
            settings.listen
        )
    })?;
    let addr = listener.local_addr()?;
    if matches!(settings.log_format, crate::settings::LogFormat::Json) {
        // Every stderr line stays one JSON object for log collectors.
        tracing::info!(%addr, "Krake is running on http://{addr}");
    } else {
        eprintln!("Krake is running on http://{addr} (health: /healthz, readiness: /readyz).");
        eprintln!("Talk to it from another terminal with `krake chat`. Stop with Ctrl-C.");
    }
    let config = ServeConfig {
        sweep_every: Duration::from_secs(settings.sweep_interval_secs),
        webhooks: settings.commerce.webhooks.clone(),
        rules: settings.rules.clone(),
        commerce_lease: Duration::from_secs(settings.commerce_lease_secs),
        commerce_workers: settings.commerce_workers.unwrap_or(
            if store.backend() == krake_store::Backend::Postgres {
                2
            } else {
                1
            },
        ),
        telegram: settings.telegram.clone(),
        discord: settings.discord.clone(),
        gelato_api: settings.commerce.gelato_api.clone(),
        web: krake_web::front::WebConfig {
            max_file_bytes: settings.rag.max_file_bytes,
            ..settings.web.clone()
        },
        metrics_listen: settings.http.metrics_listen,
        metrics_token: settings.http.metrics_token.clone(),
        http: settings.http.limits,
        knowledge: crate::rag::on_demand(&settings),
    };
    let served = run(listener, store, krake, config, async move {
        shutdown_signal().await;
        let _ = coord_stop.send(true);
    })
    .await;
    let _ = coordinator.await;
    let _ = agent_worker.await;
    let _ = recovery.await;
    let _ = learner.await;
    if let Some(k) = knowledge_sync {
        let _ = k.await;
    }
    if let Some(b) = binance {
        let _ = b.await;
    }
    served
}

/// What `run` needs beyond the store and the core service.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The knowledge base, checked by `/readyz` when it is on a Qdrant server.
    pub knowledge: krake_rag::knowledge::OnDemandKnowledge,
    /// Time between expiry sweeps.
    pub sweep_every: Duration,
    /// Shopify and Gelato webhooks.
    pub webhooks: krake_commerce::WebhookConfig,
    /// Event rules for commerce events.
    pub rules: Vec<krake_core::commerce::EventRule>,
    /// Lease on claimed commerce events (another process takes them over after it ends).
    pub commerce_lease: Duration,
    /// How many batches of commerce events this process applies at once (each worker claims
    /// its own); 0: this process stores webhooks and another one applies them.
    pub commerce_workers: usize,
    /// The Telegram front, when configured.
    pub telegram: Option<krake_telegram::TelegramConfig>,
    /// The Discord front (off unless a token or public key is set).
    pub discord: krake_discord::DiscordConfig,
    /// Gelato's Order API (base URL, key): statuses that make Krake act are confirmed there.
    pub gelato_api: Option<(String, krake_commerce::Secret)>,
    /// The web front (API, dashboard, web chat).
    pub web: krake_web::front::WebConfig,
    /// Where `/metrics` is served: `None` on the main listener, or its own address (a
    /// private interface the scraper reaches and the public does not).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// A bearer token `/metrics` requires, when set (`KRAKE_METRICS_TOKEN`).
    pub metrics_token: Option<krake_core::secret::Secret>,
    /// Header and body read timeouts and the connection limit of the listener.
    pub http: krake_web::server::HttpLimits,
}

/// Serves on `listener` until `shutdown` completes, then stops the background work and waits
/// for in-flight requests.
pub async fn run(
    listener: TcpListener,
    store: Store,
    krake: Krake,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let clock: Arc<dyn krake_core::time::Clock> = Arc::new(krake_core::time::SystemClock);
    let sweeper = tokio::spawn(sweep_loop(
        krake.clone(),
        config.sweep_every,
        stop_rx.clone(),
    ));
    // Each worker claims and applies its own batches: while one waits for the database
    // (a batch is a few round trips and a commit), the next is applied. None: this process
    // only stores webhooks, and another process sharing the database applies them.
    let mut commerce = Vec::new();
    if config.commerce_workers == 0 {
        tracing::info!(
            "commerce_workers = 0: webhooks are stored here and applied by another Krake process on the same database"
        );
    }
    for worker in 0..config.commerce_workers {
        let processor = krake_core::commerce::CommerceProcessor::new(
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            clock.clone(),
            config.rules.clone(),
            krake.routes().clone(),
            format!("commerce-{}-{worker}", std::process::id()),
        )
        .with_lease(config.commerce_lease);
        let processor = match &config.gelato_api {
            Some((url, key)) => processor.with_reconciliation(Arc::new(
                krake_commerce::gelato_api::GelatoOrders::new(url, key.clone())
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            )),
            None => {
                if worker == 0 && !config.webhooks.gelato_tokens.is_empty() {
                    tracing::warn!(
                        "Gelato statuses are acted on as sent: set KRAKE_GELATO_API_KEY so Krake confirms them with Gelato's Order API first"
                    );
                }
                processor
            }
        };
        commerce.push(spawn_commerce_loop(processor, stop_rx.clone()));
    }
    // Webhooks are acknowledged only after a (group) commit of the event.
    let inbound = krake_store::GroupCommit::start(store.clone(), 256);
    let metrics = krake_metrics::install();
    // Every front's state, for /readyz and /metrics: a front whose platform is away is
    // retried by its supervisor while everything else serves.
    let fronts_status = Fronts::new();
    let app = krake_web::app(AppState {
        readiness: Arc::new(StoreReady(
            store.clone(),
            fronts_status.clone(),
            config.knowledge.clone(),
        )),
        api: Some(krake_web::Api {
            krake: krake.clone(),
            tokens: Arc::new(store.clone()),
        }),
    })
    .merge(krake_commerce::router(
        config.webhooks.clone(),
        krake_core::commerce::CommerceIntake::new(Arc::new(inbound), clock.clone()),
        clock,
    ));
    let metrics = krake_metrics::router(
        metrics,
        Arc::new(store.clone()),
        fronts_status.clone(),
        config.metrics_token.clone(),
    );
    let (app, metrics_server) = match config.metrics_listen {
        None => (app.merge(metrics), None),
        Some(addr) => {
            let listener = TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} for /metrics (metrics_listen)")
            })?;
            tracing::info!(addr = %listener.local_addr()?, "metrics are served apart");
            let mut stop = stop_rx.clone();
            let server = krake_web::server::serve(listener, metrics, config.http, async move {
                let _ = stop.changed().await;
            });
            (app, Some(tokio::spawn(server)))
        }
    };
    let mut fronts = Vec::new();
    let (web, web_delivery) =
        crate::web::start(&krake, &store, config.web.clone(), stop_rx.clone()).await;
    fronts.push(web_delivery);
    // The web front is this server: up while it serves.
    let web_status = fronts_status.register("web");
    web_status.up();
    let app = app.merge(krake_web::front::router(web));
    let app = match config.telegram.clone() {
        Some(t) => {
            let started =
                crate::telegram::start(t, &krake, &store, &fronts_status, stop_rx.clone())?;
            fronts.extend(started.tasks);
            app.merge(started.router)
        }
        None => app,
    };
    let discord = crate::discord::start(
        &config.discord,
        &store,
        &krake,
        &fronts_status,
        stop_rx.clone(),
    )?;
    let app = match discord.router {
        Some(r) => app.merge(r),
        None => app,
    };
    // Krake's commands as MCP tools (Streamable HTTP), for the holders of personal tokens.
    let app = app.merge(krake_mcp::router(
        krake.clone(),
        Arc::new(crate::mcp::TokenAuth(Arc::new(store.clone()))),
    ));
    let app = krake_metrics::instrument(app);
    let mut http_stop = stop_rx;
    // The peer's address reaches handlers as ConnectInfo (sign-in limits per address).
    let server = krake_web::server::serve(listener, app, config.http, async move {
        let _ = http_stop.changed().await;
    });
    let trigger = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let served = server.await.context("the HTTP server failed");
    trigger.abort();
    if let Some(m) = metrics_server {
        let _ = m.await;
    }
    let _ = sweeper.await;
    for worker in commerce {
        let _ = worker.await;
    }
    for f in fronts {
        let _ = f.await;
    }
    for t in discord.tasks {
        let _ = t.await;
    }
    web_status.stopped();
    store.pool().close().await;
    served
}

/// Runs a front's outbox deliverer until `stop` turns true: woken when a message for its
/// front is committed (in this process, or another on PostgreSQL), with a 1 s poll as the
/// safety net ([`Deliverer::run_until`](krake_core::delivery::Deliverer::run_until)).
pub fn spawn_delivery_loop(
    deliverer: krake_core::delivery::Deliverer,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let front = deliverer.front().to_owned();
        deliverer
            .run_until(
                async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                },
                |stats, took| krake_metrics::delivery_pass(&front, took.as_secs_f64(), stats),
            )
            .await;
    })
}

/// [`spawn_delivery_loop`] once the front has first come up (its platform answered), so that
/// messages queued while it was away wait in the outbox instead of using up their retries.
pub fn spawn_delivery_loop_once_up(
    deliverer: krake_core::delivery::Deliverer,
    mut front: watch::Receiver<FrontStatus>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            up = front.wait_for(|s| s.state.is_up()) => {
                if up.is_err() {
                    return;
                }
            }
            _ = stop.wait_for(|s| *s) => return,
        }
        let _ = spawn_delivery_loop(deliverer, stop).await;
    })
}

/// Applies stored commerce events until `stop`: right away while there is work, otherwise
/// after a short idle wait.
fn spawn_commerce_loop(
    processor: krake_core::commerce::CommerceProcessor,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let wait = match processor.run_once(200).await {
                Ok(0) => Duration::from_millis(200),
                Ok(n) => {
                    tracing::debug!(applied = n, "commerce events applied");
                    metrics::counter!(krake_metrics::COMMERCE_APPLIED).increment(n as u64);
                    Duration::ZERO
                }
                Err(e) => {
                    tracing::warn!(error = %e, "applying commerce events failed; will retry");
                    Duration::from_secs(2)
                }
            };
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

async fn sweep_loop(krake: Krake, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // KPI alerts about once a minute (pushes check their workspace at once; this catches
    // commerce figures and the Binance poll). The threads' keys keep replicas from doubling.
    let alerts_every = (60 / every.as_secs().max(1)).max(1);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                ticks += 1;
                if ticks.is_multiple_of(alerts_every)
                    && let Err(err) = krake.check_kpi_alerts(None).await
                {
                    tracing::warn!(error = %err, "checking KPI alerts failed; will retry");
                }
                match krake.sweep_expired().await {
                    Ok(done) => for e in done {
                        tracing::info!(thread = e.thread.0, route = %e.route, escalation = ?e.escalation.map(|t| t.0), "approval expired");
                    },
                    Err(err) => tracing::warn!(error = %err, "expiry sweep failed; will retry"),
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
