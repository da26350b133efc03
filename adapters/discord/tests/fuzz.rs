//! Property tests over what a stranger can send `POST /discord/interactions` before and after
//! the signature check: arbitrary headers and bytes for the verifier, and the documented
//! interaction payloads mutated for the wire parser. None may panic.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_core::time::Timestamp;
use krake_discord::verify::{SignatureVerifier, check_timestamp};
use krake_discord::wire::Interaction;
use proptest::prelude::*;
use std::path::PathBuf;
use std::time::Duration;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/discord")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn payloads() -> Vec<Vec<u8>> {
    vec![
        fixture("docs_application_command_slash_with_options.json"),
        fixture("docs_message_component_button_click.json"),
        fixture("real_ping_request_body.json"),
    ]
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        0..3usize,
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(i, flips, cut)| {
            let mut b = payloads().swap_remove(i);
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
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn verification_never_panics(sig in "\\PC{0,140}", ts in "\\PC{0,20}", body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let v = SignatureVerifier::from_hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a").unwrap();
        let _ = v.verify(Some(&sig), Some(&ts), &body);
        let _ = check_timestamp(Some(&ts), Timestamp::from_millis(1_795_503_000_000), Duration::from_secs(300));
        let _ = SignatureVerifier::from_hex(&sig);
    }

    #[test]
    fn interaction_parsing_never_panics(body in mutated()) {
        let _ = serde_json::from_slice::<Interaction>(&body);
    }
}
