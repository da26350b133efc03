//! A web chat client over channels: `run_session` driven without a socket.

use super::App;
use futures_util::{Sink, Stream};
use krake_web::auth::Caller;
use krake_web::ws::{Incoming, run_session};
use serde_json::Value;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub struct Client {
    pub tx: Option<mpsc::UnboundedSender<Incoming>>,
    pub rx: mpsc::UnboundedReceiver<Arc<str>>,
    pub task: tokio::task::JoinHandle<()>,
}

/// A connection with no session cookie (it says who it is with a token in `hello`).
pub fn connect(app: &App) -> Client {
    connect_as(app, None)
}

/// A connection whose upgrade request carried a session cookie of `caller`.
pub fn connect_as(app: &App, caller: Option<Caller>) -> Client {
    let (in_tx, in_rx) = mpsc::unbounded_channel::<Incoming>();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Arc<str>>();
    let stream: Pin<Box<dyn Stream<Item = Incoming> + Send>> =
        Box::pin(futures_util::stream::unfold(in_rx, |mut rx| async move {
            rx.recv().await.map(|m| (m, rx))
        }));
    let sink: Pin<Box<dyn Sink<Arc<str>, Error = ()> + Send>> = Box::pin(
        futures_util::sink::unfold(out_tx, |tx, m: Arc<str>| async move {
            tx.send(m).map(|_| tx).map_err(|_| ())
        }),
    );
    let task = tokio::spawn(run_session(app.state.clone(), caller, sink, stream));
    Client {
        tx: Some(in_tx),
        rx: out_rx,
        task,
    }
}

impl Client {
    pub fn send(&self, v: Value) {
        self.tx
            .as_ref()
            .unwrap()
            .send(Incoming::Text(v.to_string()))
            .unwrap();
    }
    pub fn raw(&self, m: Incoming) {
        self.tx.as_ref().unwrap().send(m).unwrap();
    }
    pub async fn next(&mut self) -> Value {
        let m = tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
            .await
            .expect("a message within 5 s")
            .expect("the session is still open");
        serde_json::from_str(&m).unwrap()
    }
    pub async fn nothing_more(&mut self) {
        assert!(
            tokio::time::timeout(Duration::from_millis(150), self.rx.recv())
                .await
                .is_err(),
            "no further message expected"
        );
    }
    /// The server ends the connection (the channel closes with nothing more in it).
    pub async fn closed(&mut self) {
        match tokio::time::timeout(Duration::from_secs(5), self.rx.recv()).await {
            Ok(None) => {}
            Ok(Some(m)) => panic!("expected the connection to end, got {m}"),
            Err(_) => panic!("the connection did not end within 5 s"),
        }
    }
    /// Drops the connection as a network failure would.
    pub async fn drop_connection(mut self) {
        self.raw(Incoming::Closed);
        self.tx.take();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}
