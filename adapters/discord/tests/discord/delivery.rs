//! The outbox sender against the fake Discord: threads posted with buttons and a Discord thread,
//! edits on decisions, 429s honoured, long replies split, order per channel, a restart
//! mid-delivery, replies written in the Discord thread, and command registration.

use crate::fake::documented_429s;
use crate::{APP, LUNAVO_CHANNEL, world};
use krake_core::actor::{Actor, Front};
use krake_core::inbox::{NewThread, ThreadKind, ThreadStatus};
use krake_core::outbox::{NewOutbound, OutboxPayload};
use krake_core::ports::{InboxRepo, OutboxRepo, ThreadLinkRepo};
use krake_core::reply::{ButtonPayload, Reply};
use krake_core::time::Clock;
use krake_core::workspace::WorkspaceSlug;
use krake_discord::front::ChatMessage;
use krake_discord::sender::channel_destination;
use serde_json::Value;
use std::time::Duration;

fn approval(title: &str) -> NewThread {
    NewThread::new(
        WorkspaceSlug::parse("lunavo").unwrap(),
        ThreadKind::Approval,
        title,
        "Penn drafted the launch post.",
    )
}

fn buttons(body: &Value) -> Vec<Value> {
    body["components"][0]["components"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_is_posted_with_buttons_and_edited_on_decision() {
    let w = world().await;
    let t = w
        .krake
        .create_thread(&Actor::system(), &approval("Post the hoodie launch"))
        .await
        .unwrap();
    let s = w.deliverer.run_once().await.unwrap();
    assert_eq!(s.delivered, 1);
    let (msg, thread) = w
        .fake
        .with(|s| (s.messages[0].clone(), s.threads[0].clone()));
    assert_eq!(msg.channel, LUNAVO_CHANNEL);
    assert!(msg.content().contains("Post the hoodie launch"));
    let b = buttons(&msg.body);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0]["label"], "Approve");
    assert_eq!(b[0]["style"], 3);
    assert_eq!(b[0]["disabled"], false);
    let p = ButtonPayload::decode(b[0]["custom_id"].as_str().unwrap()).unwrap();
    assert_eq!(p.thread, t.id);
    assert_eq!(b[1]["label"], "Reject");
    assert_eq!(w.fake.with(|s| s.auth[0].clone()), "Bot test-token");
    // A Discord thread was opened on the message and linked to the inbox thread.
    assert_eq!(thread.0, LUNAVO_CHANNEL);
    assert_eq!(thread.1, msg.id);
    assert_eq!(thread.2, format!("#{} Post the hoodie launch", t.id.0));
    assert_eq!(
        w.store
            .linked_thread(Front::Discord, &msg.id.to_string())
            .await
            .unwrap()
            .map(|l| l.thread),
        Some(t.id)
    );
    // The copy is recorded: the decision (taken on another front) edits it.
    let copies = w.store.copies(t.id).await.unwrap();
    assert_eq!(copies[0].message_id, msg.id.to_string());
    w.krake
        .handle_text(&Actor::local(), &format!("approve {}", t.id.0))
        .await;
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 1);
    let (ch, id, body) = w.fake.with(|s| s.edits[0].clone());
    assert_eq!((ch, id), (LUNAVO_CHANNEL, msg.id));
    let content = body["content"].as_str().unwrap();
    assert!(content.starts_with("**✅ Approved by local**"), "{content}");
    assert!(content.contains("Decided by local"));
    let b = buttons(&body);
    assert_eq!(b.len(), 2);
    assert!(b.iter().all(|x| x["disabled"] == true), "{body}");
    // A second decision is refused with the current state; no further edit.
    let r = w
        .krake
        .handle_text(&Actor::local(), &format!("reject {}", t.id.0))
        .await;
    assert!(r.text.contains("already approved"), "{}", r.text);
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 0);
    assert_eq!(w.fake.with(|s| s.messages.len()), 1, "never posted twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_honoured_then_the_message_goes_once() {
    let w = world().await;
    let [user, shared, global] = <[_; 3]>::try_from(documented_429s()).unwrap();
    w.fake.with(|s| s.limit_next.push_back(user));
    w.krake
        .create_thread(&Actor::system(), &approval("Rate limited"))
        .await
        .unwrap();
    let s = w.deliverer.run_once().await.unwrap();
    assert_eq!((s.delivered, s.retried), (0, 1));
    let requests = w.fake.with(|s| s.requests.len());
    // retry_after is 64.57 s: nothing is sent before it passes.
    w.clock.advance(Duration::from_secs(64));
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 0);
    assert_eq!(w.fake.with(|s| s.requests.len()), requests);
    w.clock.advance(Duration::from_millis(600));
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 1);
    assert_eq!(w.fake.with(|s| s.messages.len()), 1);

    // A shared-resource 429 delays only that message by its retry_after (1336.57 s).
    let dest = channel_destination(LUNAVO_CHANNEL).unwrap();
    w.fake.with(|s| s.limit_next.push_back(shared));
    w.store
        .enqueue(
            &[NewOutbound {
                destination: dest.clone(),
                payload: OutboxPayload::Send {
                    reply: Reply::info("after a shared limit"),
                },
            }],
            w.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(w.deliverer.run_once().await.unwrap().retried, 1);
    w.clock.advance(Duration::from_secs(1336));
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 0);
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 1);

    // A global 429 holds every route: the next message, to another channel, is not even sent
    // until retry_after passes.
    w.fake.with(|s| s.limit_next.push_back(global));
    let other = channel_destination(2_222).unwrap();
    for (d, text) in [(&dest, "global one"), (&other, "global two")] {
        w.store
            .enqueue(
                &[NewOutbound {
                    destination: d.clone(),
                    payload: OutboxPayload::Send {
                        reply: Reply::info(text),
                    },
                }],
                w.clock.now(),
            )
            .await
            .unwrap();
    }
    let before = w.fake.with(|s| s.requests.len());
    let s = w.deliverer.run_once().await.unwrap();
    assert_eq!((s.delivered, s.retried), (0, 2));
    assert_eq!(
        w.fake.with(|s| s.requests.len()),
        before + 1,
        "the second was held by Krake, not sent into the limit"
    );
    w.clock.advance(Duration::from_secs(65));
    let mut delivered = 0;
    for _ in 0..3 {
        delivered += w.deliverer.run_once().await.unwrap().delivered;
    }
    assert_eq!(delivered, 2);
    assert_eq!(w.store.outbox_depth().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_replies_are_split_and_order_holds_per_channel() {
    let w = world().await;
    let dest = channel_destination(LUNAVO_CHANNEL).unwrap();
    let long: String = (0..90)
        .map(|i| format!("line {i:02} {}\n", "x".repeat(40)))
        .collect();
    let long = long.trim_end().to_owned();
    let mut msgs = vec![NewOutbound {
        destination: dest.clone(),
        payload: OutboxPayload::Send {
            reply: Reply::info(long.clone()),
        },
    }];
    for i in 1..=4 {
        msgs.push(NewOutbound {
            destination: dest.clone(),
            payload: OutboxPayload::Send {
                reply: Reply::info(format!("message {i}")),
            },
        });
    }
    w.store.enqueue(&msgs, w.clock.now()).await.unwrap();
    // A 429 on the long reply's second piece: its first piece is already up.
    let [user, ..] = <[_; 3]>::try_from(documented_429s()).unwrap();
    w.fake.with(|s| s.limit_at_message = Some((1, user)));
    let s = w.deliverer.run_once().await.unwrap();
    assert_eq!(
        (s.delivered, s.retried),
        (0, 1),
        "the rest of the channel waits"
    );
    assert_eq!(w.fake.with(|s| s.messages.len()), 1);
    w.clock.advance(Duration::from_secs(65));
    for _ in 0..5 {
        w.deliverer.run_once().await.unwrap();
    }
    assert_eq!(w.store.outbox_depth().await.unwrap(), 0);
    let contents: Vec<String> = w
        .fake
        .with(|s| s.messages.iter().map(|m| m.content().to_owned()).collect());
    assert!(contents.iter().all(|c| c.chars().count() <= 2000));
    assert_eq!(contents.len(), 3 + 4, "{contents:?}");
    // Split on line breaks; the resent first piece was recognised by its nonce.
    assert_eq!(contents[..3].join("\n"), long, "nothing lost or repeated");
    assert!(contents[..3].iter().all(|c| c.starts_with("line ")));
    assert_eq!(
        contents[3..],
        ["message 1", "message 2", "message 3", "message 4"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_delivery_neither_loses_nor_repeats() {
    let w = world().await;
    let t = w
        .krake
        .create_thread(&Actor::system(), &approval("Crash while posting"))
        .await
        .unwrap();
    // Discord creates the message but the process dies before hearing back.
    w.fake.with(|s| s.hang_next_create = true);
    let first = w.new_deliverer("process-1");
    let crashed = tokio::spawn(async move {
        let _ = first.run_once().await;
    });
    w.fake.until(|s| s.messages.len() == 1).await;
    crashed.abort();
    let _ = crashed.await;
    // Nothing was recorded: the outbox still holds the message, leased to the dead process.
    assert_eq!(w.store.outbox_depth().await.unwrap(), 1);
    assert!(w.store.copies(t.id).await.unwrap().is_empty());
    // The restarted process takes it over once the lease runs out, and Discord's nonce check
    // returns the message it already has.
    let second = w.new_deliverer("process-2");
    assert_eq!(
        second.run_once().await.unwrap().delivered,
        0,
        "lease still held"
    );
    w.clock.advance(Duration::from_secs(61));
    assert_eq!(second.run_once().await.unwrap().delivered, 1);
    let (messages, threads) = w.fake.with(|s| (s.messages.clone(), s.threads.clone()));
    assert_eq!(messages.len(), 1, "not repeated");
    assert_eq!(threads.len(), 1);
    assert_eq!(
        w.store.copies(t.id).await.unwrap()[0].message_id,
        messages[0].id.to_string(),
        "not lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_post_and_discord_thread_opens_it_once() {
    let w = world().await;
    let t = w
        .krake
        .create_thread(&Actor::system(), &approval("Crash after posting"))
        .await
        .unwrap();
    w.fake.with(|s| s.hang_next_thread = true);
    let first = w.new_deliverer("process-1");
    let crashed = tokio::spawn(async move {
        let _ = first.run_once().await;
    });
    w.fake.until(|s| s.threads.len() == 1).await;
    crashed.abort();
    let _ = crashed.await;
    w.clock.advance(Duration::from_secs(61));
    let second = w.new_deliverer("process-2");
    let s = second.run_once().await.unwrap();
    assert_eq!((s.delivered, s.dead), (1, 0));
    let (messages, threads, requests) = w
        .fake
        .with(|s| (s.messages.clone(), s.threads.clone(), s.requests.clone()));
    assert_eq!(messages.len(), 1);
    assert_eq!(threads.len(), 1);
    assert_eq!(
        requests.iter().filter(|r| r.ends_with("/threads")).count(),
        2,
        "asked again, answered 160004, taken as opened"
    );
    assert_eq!(
        w.store
            .linked_thread(Front::Discord, &messages[0].id.to_string())
            .await
            .unwrap()
            .map(|l| l.thread),
        Some(t.id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_in_the_discord_thread_reach_the_inbox_thread() {
    let w = world().await;
    let t = w
        .krake
        .create_thread(&Actor::system(), &approval("Talk about it"))
        .await
        .unwrap();
    w.deliverer.run_once().await.unwrap();
    let discord_thread = w.fake.with(|s| s.threads[0].1);
    let mut m = ChatMessage {
        id: 42,
        channel: discord_thread,
        guild: Some(9),
        author_id: 53_908_232_506_183_680,
        author_name: "Mason".into(),
        author_is_bot: false,
        mentions_bot: false,
        text: "ship it friday".into(),
        attachments: Vec::new(),
    };
    // An unlinked Discord user may chat, not act on threads: core says why.
    let reply = w
        .front
        .message(&m)
        .await
        .expect("a message in a Krake thread is for Krake");
    assert!(reply.text.contains("not linked"), "{}", reply.text);
    // Linked (the code comes from `krake user link-code`), the same words are a reply.
    crate::link(&w, "53908232506183680", "mason").await;
    m.id = 43;
    let reply = w.front.message(&m).await.unwrap();
    assert!(reply.text.starts_with("Replied in #"), "{}", reply.text);
    // The answer goes out through the outbox (queued by core with the reply), into the
    // Discord thread. The first, unlinked message's answer goes first.
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 1);
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 1);
    let answer = w.fake.with(|s| s.messages.last().cloned().unwrap());
    assert_eq!(answer.channel, discord_thread);
    assert_eq!(answer.content(), reply.text);
    let th = w.store.get(t.id).await.unwrap().unwrap();
    assert_eq!(th.replies.len(), 1);
    assert_eq!(th.replies[0].text, "ship it friday");
    assert_eq!(th.replies[0].author.as_str(), "mason");
    assert_eq!(th.replies[0].front, Front::Discord);
    // A redelivered message (a gateway RESUME replay) is handled once and queues nothing.
    let sent = w.fake.with(|s| s.messages.len());
    let again = w.front.message(&m).await.unwrap();
    assert_eq!(again, reply);
    assert_eq!(w.store.get(t.id).await.unwrap().unwrap().replies.len(), 1);
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 0);
    assert_eq!(w.fake.with(|s| s.messages.len()), sent, "no second answer");
    // Chatter elsewhere in the guild is ignored; a mention is not.
    let mut chatter = m.clone();
    chatter.id = 44;
    chatter.channel = 5;
    assert!(w.front.message(&chatter).await.is_none());
    chatter.mentions_bot = true;
    chatter.text = "<@1> what's open in lunavo?".into();
    let r = w.front.message(&chatter).await.unwrap();
    assert!(r.text.contains("Talk about it"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_inbox_every_front_decided_on_discord() {
    let w = world().await;
    let t = w
        .krake
        .create_thread(&Actor::system(), &approval("Refund order 1001"))
        .await
        .unwrap();
    w.deliverer.run_once().await.unwrap();
    // The thread is also shown on another front.
    let tg = krake_core::outbox::Destination::parse("telegram:-1001:topic:7").unwrap();
    w.store
        .add_copy(&krake_core::ports::ThreadCopy {
            thread: t.id,
            destination: tg.clone(),
            message_id: "555".into(),
        })
        .await
        .unwrap();
    let msg = w.fake.with(|s| s.messages[0].clone());
    let approve = buttons(&msg.body)[0]["custom_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reject = buttons(&msg.body)[1]["custom_id"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::link(&w, "53908232506183680", "mason").await;
    let (status, answer) = crate::press(&w, "53908232506183680", &approve).await;
    assert_eq!(status, 200);
    assert_eq!(answer["data"]["flags"], 64);
    let content = answer["data"]["content"].as_str().unwrap();
    assert!(content.starts_with("Approved #"), "{content}");
    let th = w.store.get(t.id).await.unwrap().unwrap();
    assert_eq!(th.status, ThreadStatus::Approved);
    assert_eq!(th.decided_by.as_ref().unwrap().as_str(), "mason");
    // Every copy gets an edit: the Discord message here, the Telegram one on its front.
    let pending: Vec<String> =
        sqlx::query_scalar("SELECT destination FROM outbox WHERE state = 'pending' ORDER BY id")
            .fetch_all(w.store.pool())
            .await
            .unwrap();
    assert!(pending.contains(&tg.as_str().to_owned()), "{pending:?}");
    assert!(
        pending.contains(
            &channel_destination(LUNAVO_CHANNEL)
                .unwrap()
                .as_str()
                .to_owned()
        )
    );
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 1);
    let (_, _, body) = w.fake.with(|s| s.edits[0].clone());
    assert!(
        body["content"]
            .as_str()
            .unwrap()
            .contains("Approved by mason")
    );
    assert!(buttons(&body).iter().all(|b| b["disabled"] == true));
    // A second decision, from Discord (a stale button) or any other front, is refused with
    // the current state.
    let (_, answer) = crate::press(&w, "53908232506183680", &reject).await;
    assert_eq!(answer["data"]["flags"], 64);
    let content = answer["data"]["content"].as_str().unwrap();
    assert!(content.contains("already approved by mason"), "{content}");
    let r = w
        .krake
        .handle_text(&Actor::local(), &format!("reject {}", t.id.0))
        .await;
    assert!(r.text.contains("already approved by mason"), "{}", r.text);
    assert_eq!(
        w.store.get(t.id).await.unwrap().unwrap().status,
        ThreadStatus::Approved
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_registered_by_bulk_overwrite() {
    let w = world().await;
    let dir = w.krake.directory().clone();
    let n = krake_discord::commands::register(&w.rest, APP, Some(290_926_798_626_357_999), &dir)
        .await
        .unwrap();
    assert_eq!(
        n,
        krake_core::chat::command::COMMANDS.len() + 1,
        "core's commands and /learn"
    );
    let n2 = krake_discord::commands::register(&w.rest, APP, None, &dir)
        .await
        .unwrap();
    assert_eq!(n2, n);
    let regs = w.fake.with(|s| s.registrations.clone());
    assert_eq!(
        regs[0].0,
        format!("/api/v10/applications/{APP}/guilds/290926798626357999/commands")
    );
    assert_eq!(regs[1].0, format!("/api/v10/applications/{APP}/commands"));
    assert_eq!(regs[0].1, krake_discord::commands::registration_body(&dir));
    let reject = regs[0]
        .1
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "reject")
        .unwrap()
        .clone();
    assert_eq!(reject["options"][0]["name"], "id");
    assert_eq!(reject["options"][1]["name"], "reason");
    assert_eq!(reject["options"][1]["required"], false);
    // Further threads for the same decision: `/reject id:13 more:14 15`.
    assert_eq!(reject["options"][2]["name"], "more");
    assert_eq!(reject["options"][2]["required"], false);
    let _ = ThreadStatus::Open;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_streams_into_the_channel_edited_at_most_once_a_second() {
    use krake_core::config::Directory;
    use krake_core::model::{Scripted, ScriptedModel};
    use krake_core::run::{NewRun, RunRepo, RunStatus, Runner};
    use std::sync::Arc;
    let w = world().await;
    let answer = "Restock the navy hoodie first: it sold 42 of 60 last month and has the longest wait list of anything in the shop.";
    let live = krake_core::delivery::LiveSenders::new();
    live.add(Arc::new(krake_discord::sender::DiscordSender::new(
        w.rest.clone(),
        Arc::new(w.store.clone()),
    )));
    let model = Arc::new(
        ScriptedModel::new(vec![Scripted::Tools(vec![(
            "reply".into(),
            serde_json::json!({"text": answer, "confidence": 0.9}).to_string(),
        )])])
        .streaming(Duration::from_millis(120)),
    );
    let s = Arc::new(w.store.clone());
    let runner = Runner::new(
        s.clone(),
        s.clone(),
        s.clone(),
        Some(model),
        Arc::new(krake_core::knowledge::NoKnowledge),
        Arc::new(krake_core::run::RecordingExecutor::default()),
        w.clock.clone(),
        Directory::default(),
    )
    .with_streaming(live, s.clone());
    let run = runner
        .start(&NewRun {
            workspace: WorkspaceSlug::parse("lunavo").unwrap(),
            agent: "Dexter".into(),
            task: "what should we restock first?".into(),
            trigger: "command".into(),
            requested_by: "ana".into(),
            parent: None,
            feedback: None,
            answer_to: Some(channel_destination(LUNAVO_CHANNEL).unwrap()),
        })
        .await
        .unwrap();
    runner.work_once("t", 1).await.unwrap();
    assert_eq!(
        w.store.run(run.id).await.unwrap().unwrap().status,
        RunStatus::Done
    );
    // The final text leaves through the outbox.
    w.deliverer.run_once().await.unwrap();
    let (messages, edits, at, typing) = w.fake.with(|s| {
        (
            s.messages.clone(),
            s.edits.clone(),
            s.edited_at.clone(),
            s.typing.clone(),
        )
    });
    assert!(typing.contains(&LUNAVO_CHANNEL), "a typing indicator");
    assert_eq!(messages.len(), 1, "one message: {messages:?}");
    let m = &messages[0];
    assert_eq!(m.channel, LUNAVO_CHANNEL);
    assert!(answer.starts_with(m.content()) && m.content().len() < answer.len());
    assert!(edits.len() >= 3, "edited as it was written: {edits:?}");
    assert!(
        edits
            .iter()
            .all(|(c, id, _)| *c == LUNAVO_CHANNEL && *id == m.id)
    );
    for pair in at.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(gap >= Duration::from_millis(990), "edits {gap:?} apart");
    }
    let texts: Vec<&str> = edits
        .iter()
        .map(|(_, _, b)| b["content"].as_str().unwrap())
        .collect();
    assert!(texts.iter().all(|t| answer.starts_with(t)), "{texts:?}");
    assert_eq!(
        *texts.last().unwrap(),
        answer,
        "the final text is the whole answer"
    );
}
