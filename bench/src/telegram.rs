//! `telegram`: a Telegram update in to its reply queued (no network), on SQLite, beside core's
//! `Krake::accept` alone (no outbox row).

use crate::common::{report, scratch_sqlite};
use hdrhistogram::Histogram;
use krake_bot::settings::Settings;
use krake_core::Krake;
use krake_core::time::{Clock, SystemClock};
use std::sync::Arc;
use std::time::Instant;

/// A private-chat text update as Telegram sends it (chat id = user id).
pub fn telegram_update(update_id: u32, user: u64, text: &str) -> Vec<u8> {
    serde_json::json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": {"id": user, "is_bot": false, "first_name": "Ana", "username": "ana"},
            "chat": {"id": user, "first_name": "Ana", "username": "ana", "type": "private"},
            "date": 1_795_503_000,
            "text": text
        }
    })
    .to_string()
    .into_bytes()
}

/// Runs the benchmark.
pub async fn run(settings: Settings, updates: u32) -> anyhow::Result<()> {
    use krake_core::actor::Front;
    use krake_core::inbound::IdempotencyKey;
    use krake_core::inbound::{Content, Inbound};
    use krake_telegram::convert::BotIdentity;
    use krake_telegram::front::{FrontPorts, Handled};
    let dir = tempfile::tempdir()?;
    let store = scratch_sqlite(&dir).await?;
    let s = Arc::new(store.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let krake = Krake::new(
        s.clone(),
        s.clone(),
        clock.clone(),
        settings.directory.clone(),
    )
    .with_users(s.clone());
    let config =
        krake_telegram::TelegramConfig::polling(krake_telegram::BotToken::parse("1:benchmark")?);
    let front = krake_telegram::TelegramFront::offline(
        krake.clone(),
        config,
        FrontPorts { state: s },
        BotIdentity {
            id: 1,
            username: "krake_bench_bot".into(),
        },
    )?;
    let text = "/todo lunavo";
    let check = front.handle_json(&telegram_update(1, 42, text)).await?;
    anyhow::ensure!(
        matches!(check, Handled::Replied(_)),
        "the update should be answered: {check:?}"
    );
    let mut h_tg = Histogram::<u64>::new(3)?;
    let mut h_core = Histogram::<u64>::new(3)?;
    for i in 0..updates {
        let body = telegram_update(10 + 2 * i, 42, text);
        let t = Instant::now();
        let h = front.handle_json(&body).await?;
        h_tg.record(t.elapsed().as_nanos() as u64)?;
        std::hint::black_box(h);
        let actor = krake.identify(Front::Telegram, "42", "ana", None).await?;
        let msg = Inbound {
            source: Front::Cli,
            key: IdempotencyKey::parse(&format!("bench:{i}"))?,
            actor,
            conversation: "42".into(),
            reply_to: None,
            answer_to: None,
            content: Content::Text(text.into()),
        };
        let t = Instant::now();
        let r = krake.accept(msg).await;
        h_core.record(t.elapsed().as_nanos() as u64)?;
        std::hint::black_box(r);
    }
    println!(
        "Telegram update in to reply queued, SQLite, in process, no network (target: p99 < 2 ms):"
    );
    report("update JSON -> reply in outbox", &h_tg);
    report("baseline: core accept (no outbox row)", &h_core);
    println!(
        "  ratio p99 telegram/core: {:.2} (the difference: JSON parsing, identity lookup, outbox insert)",
        h_tg.value_at_quantile(0.99) as f64 / h_core.value_at_quantile(0.99).max(1) as f64
    );
    Ok(())
}
