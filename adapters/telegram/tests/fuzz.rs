//! Property tests over what Telegram (or a stranger who has the webhook path) can send: the
//! real updates and Telegram's own webhook samples, mutated, read as teloxide reads them,
//! mended when in an older shape, and converted. None may panic.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_telegram::convert::{convert, mend_old_shapes};
use proptest::prelude::*;
use std::path::PathBuf;
use teloxide::types::Update;

fn samples() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/telegram");
    let mut out = Vec::new();
    for dir in [root.clone(), root.join("official_webhook_guide")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                out.push(std::fs::read(&p).unwrap());
            }
        }
    }
    out.sort();
    assert!(out.len() >= 10, "{} samples", out.len());
    out
}

/// Reads `body` as the front does: as an update, or mended from an older shape.
fn read(body: &[u8]) {
    match serde_json::from_slice::<Update>(body) {
        Ok(u) => {
            let _ = convert(&u, 42);
        }
        Err(_) => {
            if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body)
                && mend_old_shapes(&mut v)
                && let Ok(u) = serde_json::from_str::<Update>(&v.to_string())
            {
                let _ = convert(&u, 42);
            }
        }
    }
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let n = samples().len();
    (
        0..n,
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(i, flips, cut)| {
            let mut b = samples().swap_remove(i);
            for (at, byte) in flips {
                let at = at.index(b.len());
                b[at] = byte;
            }
            let cut = cut.index(b.len() + 1);
            b.truncate(cut.max(b.len() / 2));
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn updates_never_panic(body in mutated()) {
        read(&body);
    }

    #[test]
    fn texts_and_entities_never_panic(text in "\\PC{0,80}", offset in 0u32..100, length in 0u32..100, kind in prop::sample::select(vec!["bot_command", "mention", "bold", "text_link"])) {
        let update = serde_json::json!({
            "update_id": 1,
            "message": {
                "message_id": 2, "date": 1700000000,
                "chat": {"id": -100123, "type": "supergroup", "title": "t", "is_forum": true},
                "message_thread_id": 4,
                "from": {"id": 7, "is_bot": false, "first_name": "Ana"},
                "text": text,
                "entities": [{"type": kind, "offset": offset, "length": length, "url": "https://x.test"}]
            }
        });
        read(update.to_string().as_bytes());
    }
}
