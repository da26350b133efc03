//! A real Qdrant server for the tests, started from `KRAKE_QDRANT_BIN` (scripts/test finds the
//! binary) on free ports with its storage in a temporary directory.

/// A real Qdrant server for a test: `KRAKE_QDRANT_BIN` names the binary (scripts/test finds
/// one: `KRAKE_QDRANT_BIN`, `qdrant` on `PATH`, or the prebuilt one beside the clone), started on
/// free ports with its storage in a temporary directory. `KRAKE_QDRANT_BIN=fake` asks for the
/// gRPC fake instead (scripts/test says so when no binary is there); unset is an error.
pub struct RealQdrant {
    bin: std::path::PathBuf,
    /// Extra arguments (`--snapshot PATH:COLLECTION`).
    args: Vec<String>,
    /// Its working directory (snapshots are under `snapshots/`).
    pub dir: tempfile::TempDir,
    /// The HTTP port.
    pub http: u16,
    /// The gRPC port.
    pub grpc: u16,
    child: Option<std::process::Child>,
}

/// The Qdrant server binary the tests use, or `None` when `KRAKE_QDRANT_BIN=fake` asks for the
/// gRPC fake; unset is an error.
pub fn qdrant_bin() -> Option<std::path::PathBuf> {
    let bin = std::env::var("KRAKE_QDRANT_BIN").unwrap_or_else(|_| {
        panic!("KRAKE_QDRANT_BIN is not set: name a Qdrant server binary, or `fake` to test against the gRPC fake only (scripts/test sets it)")
    });
    if bin == "fake" {
        eprintln!("KRAKE_QDRANT_BIN=fake: the real-server checks run against the gRPC fake");
        return None;
    }
    assert!(
        std::path::Path::new(&bin).exists(),
        "KRAKE_QDRANT_BIN={bin} does not exist"
    );
    Some(bin.into())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl RealQdrant {
    /// Starts one on free ports with fresh storage.
    pub async fn start(bin: std::path::PathBuf) -> Self {
        Self::start_with(bin, Vec::new()).await
    }

    /// [`Self::start`] with extra arguments.
    pub async fn start_with(bin: std::path::PathBuf, args: Vec<String>) -> Self {
        let mut q = Self {
            bin,
            args,
            dir: tempfile::tempdir().expect("tempdir"),
            http: free_port(),
            grpc: free_port(),
            child: None,
        };
        q.up().await;
        q
    }

    /// Its gRPC URL, as Krake is configured with it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc)
    }

    /// Starts the server on its storage and waits for `/healthz` and for its gRPC port (which
    /// opens after the HTTP one, later still while a snapshot is restored).
    pub async fn up(&mut self) {
        let child = std::process::Command::new(&self.bin)
            .args(&self.args)
            .current_dir(self.dir.path())
            .env("QDRANT__SERVICE__HTTP_PORT", self.http.to_string())
            .env("QDRANT__SERVICE__GRPC_PORT", self.grpc.to_string())
            .env(
                "QDRANT__STORAGE__STORAGE_PATH",
                self.dir.path().join("storage"),
            )
            .env("QDRANT__TELEMETRY_DISABLED", "true")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start qdrant");
        self.child = Some(child);
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.http))
                .await
                .is_ok()
                && crate::raw_http(self.http, "GET", "/healthz", &[], b"")
                    .await
                    .starts_with("HTTP/1.1 200")
                && tokio::net::TcpStream::connect(("127.0.0.1", self.grpc))
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("qdrant did not answer /healthz and gRPC within 30 s");
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill qdrant");
            c.wait().expect("reap qdrant");
        }
    }
}

impl Drop for RealQdrant {
    fn drop(&mut self) {
        self.kill();
    }
}
