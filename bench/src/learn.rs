//! `learn`: a file sent in chat learned end to end in process (the accept path files it; the
//! learner reads it by content, chunks, embeds with the configured embedder and writes the
//! embedded store group by group, reopening it for each), beside `krake ingest` of a file of
//! the same shape on the same machine in the same run. Each run's text is new (a run number
//! in every sentence) so the embedding cache never answers for the model.

use crate::common::scratch_sqlite;
use krake_bot::settings::Settings;
use krake_core::Actor;
use krake_core::inbound::{Content, IdempotencyKey, Inbound};
use krake_core::knowledge::learn::{FileBody, LearnRepo, Pass, SentFile};
use krake_core::workspace::WorkspaceSlug;
use std::time::Instant;

/// A Markdown catalogue of `sections` products, every sentence marked with `run`.
fn catalogue(sections: usize, run: u128) -> String {
    (0..sections)
        .map(|i| {
            format!(
                "## Product {i}\n\nThe hoodie model {i} of run {run} is made of organic cotton \
                 batch {}, ships from warehouse {} within {} days and costs {} euros. \
                 Customers in Porto, Lyon and Graz order it most in winter.\n\n",
                i * 7,
                i % 13,
                1 + i % 5,
                20 + i % 50
            )
        })
        .collect()
}

/// Runs the benchmark with `sections` product sections per file.
pub async fn run(settings: &Settings, sections: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut s = settings.clone();
    s.data_dir = dir.path().to_owned();
    let store = scratch_sqlite(&dir).await?;
    let krake = krake_bot::wiring::krake(&store, &s);
    let learner = krake_bot::rag::learner(&store, &s, krake_core::delivery::LiveSenders::new());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let lunavo = WorkspaceSlug::parse("lunavo")?;
    let text = catalogue(sections, stamp);
    let started = Instant::now();
    let reply = krake
        .accept(Inbound {
            source: krake_core::actor::Front::Cli,
            key: IdempotencyKey::parse("bench:learn:1")?,
            actor: Actor::local(),
            conversation: "bench".into(),
            reply_to: None,
            answer_to: None,
            content: Content::File {
                file: SentFile {
                    name: "catalogue.md".into(),
                    size: None,
                    body: FileBody::Bytes(text.clone().into_bytes()),
                },
                workspace: Some(lunavo.clone()),
            },
        })
        .await;
    let accepted = started.elapsed();
    anyhow::ensure!(
        reply.reply.text.starts_with("Reading catalogue.md"),
        "not filed: {}",
        reply.reply.text
    );
    let learning = Instant::now();
    match learner.next().await? {
        Pass::Done(_) => {}
        other => anyhow::bail!("the file was not learned: {other:?}"),
    }
    let learned = learning.elapsed();
    let source = store
        .sources(&lunavo)
        .await?
        .into_iter()
        .find(|x| x.name == "catalogue.md")
        .ok_or_else(|| anyhow::anyhow!("catalogue.md is not listed"))?;
    let passages = source.passages as f64;
    println!(
        "learn: {} KB, {} passages, filed in {:.1} ms, learned in {:.1} s: {:.0} passages/s",
        text.len() / 1024,
        source.passages,
        accepted.as_secs_f64() * 1000.0,
        learned.as_secs_f64(),
        passages / learned.as_secs_f64()
    );
    // `krake ingest` of a file of the same shape (new words, so nothing is cached).
    let file = dir.path().join("catalogue-ingest.md");
    std::fs::write(&file, catalogue(sections, stamp + 1))?;
    let ingesting = Instant::now();
    krake_bot::rag::ingest(
        s.clone(),
        krake_bot::rag::IngestArgs {
            path: Some(file),
            workspace: Some("monarch".into()),
            store: false,
        },
    )
    .await?;
    let ingested = ingesting.elapsed();
    println!(
        "krake ingest: the same shape, {} passages expected, in {:.1} s: {:.0} passages/s",
        source.passages,
        ingested.as_secs_f64(),
        passages / ingested.as_secs_f64()
    );
    Ok(())
}
