//! `krake demo`: fills an empty inbox with core's demo threads, so a new user sees something.

use crate::settings::Settings;
use crate::wiring;
use krake_core::inbox::demo::fill_if_empty;
use krake_core::time::{Clock, SystemClock};

/// `krake demo`.
pub async fn demo_command(settings: Settings) -> anyhow::Result<()> {
    let store = wiring::open_store(&settings, false).await?;
    let krake = wiring::krake(&store, &settings);
    let n = fill_if_empty(&krake, SystemClock.now()).await?;
    if n == 0 {
        println!(
            "The inbox already has threads; the demo only fills an empty inbox. See them with: krake chat, then /todo all"
        );
    } else {
        println!(
            "Added {n} demo threads. See them with: printf '/todo\\n' | krake chat   (or run krake chat)"
        );
    }
    store.pool().close().await;
    Ok(())
}
