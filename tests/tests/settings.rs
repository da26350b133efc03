//! The binary's settings put together: defaults with no file, a file's overrides, errors that
//! name the file, line and key, the example config, and `krake config` printing a config file
//! with no secret in it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_bot::settings::{FileConfig, Overrides, Settings};
use krake_core::schedule::settings::config_schedules;
use std::path::PathBuf;

fn load_str(toml_text: &str) -> anyhow::Result<Settings> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("krake.toml");
    std::fs::write(&path, toml_text)?;
    Settings::load(
        &Overrides {
            config: Some(path),
            ..Default::default()
        },
        None,
    )
}

#[test]
fn defaults_without_a_file() {
    let s = Settings::load(&Overrides::default(), None).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.data_dir, PathBuf::from("./krake-data"));
    assert!(s.database_url.starts_with("sqlite://"));
    assert_eq!(s.directory.workspaces().len(), 5);
    assert_eq!(s.directory.agents().len(), 12);
}

#[test]
fn file_overrides_and_agents() {
    let s = load_str(
        r#"
listen = "127.0.0.1:9999"
[agents.penn]
role = "headline writer"
[agents.gigi]
disabled = true
[agents.otto]
role = "accountant"
workspaces = ["management"]
"#,
    )
    .unwrap();
    assert_eq!(s.listen.port(), 9999);
    assert_eq!(s.directory.agent("penn").unwrap().role, "headline writer");
    assert!(s.directory.agent("gigi").is_none());
    assert_eq!(s.directory.agent("otto").unwrap().name.as_str(), "Otto");
}

#[test]
fn errors_name_file_line_and_key() {
    let e = format!(
        "{:#}",
        load_str("listen = \"127.0.0.1:1\"\nlisen = 5\n").unwrap_err()
    );
    assert!(e.contains("krake.toml"), "{e}");
    assert!(e.contains("line 2"), "{e}");
    assert!(e.contains("lisen"), "{e}");
    let e = format!(
        "{:#}",
        load_str("sweep_interval_secs = \"soon\"\n").unwrap_err()
    );
    assert!(
        e.contains("line 1") && e.contains("sweep_interval_secs"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        load_str("[agents.zed]\nrole = \"x\"\nworkspaces = [\"narnia\"]\n").unwrap_err()
    );
    assert!(e.contains("narnia"), "{e}");
}

#[test]
fn the_example_config_is_valid() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/krake.example.toml");
    let s = Settings::load(
        &Overrides {
            config: Some(path),
            ..Default::default()
        },
        None,
    )
    .unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.directory.agents().len(), 12);
}

#[test]
fn the_printed_config_is_a_config_file() {
    let s = load_str(
        r#"
[telegram]
token = "123456:SECRET-token_x"
[discord]
token = "MTIz.NDU2.s3cret-token"
[shopify]
webhook_secret = "file-secret"
[shopify.shops]
"lunavo.myshopify.com" = "lunavo"
[gelato.tokens]
monarch = "0123456789abcdef0123"
[schedules.weekly]
agent = "dexter"
task = "sum up the week"
when = "every monday 09:00"
[budgets.workspaces]
lunavo = 20.0
[[rules]]
on = "order_paid"
then = "notice"
agent = "Dexter"
"#,
    )
    .unwrap();
    let out = s.redacted().unwrap();
    let back: FileConfig = toml::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    for secret in ["SECRET", "s3cret", "file-secret", "0123456789abcdef0123"] {
        assert!(!out.contains(secret), "{secret} printed: {out}");
    }
    assert_eq!(
        back.telegram
            .and_then(|t| t.token)
            .map(|t| t.expose().to_owned()),
        Some("***".to_owned())
    );
    // The schedule reads back to the same timing.
    let again = config_schedules(&back.schedules, &s.directory, s.schedule_timezone).unwrap();
    assert_eq!(
        again[0].cadence.expression(),
        s.schedules[0].cadence.expression()
    );
    assert_eq!(back.budgets.workspaces["lunavo"], 20.0);
    assert_eq!(back.rules.map(|r| r.len()), Some(1));
    assert!(out.contains("on = \"order_paid\""), "{out}");
    assert_eq!(back.workspaces.map(|w| w.len()), Some(5));
    assert_eq!(back.agents.len(), 12);
    assert!(!out.contains("# telegram: off"), "{out}");
    assert!(out.contains("# models: none"), "{out}");
}

#[test]
fn config_output_hides_passwords() {
    let o = Overrides {
        database_url: Some("postgres://krake:s3cret@db/krake".into()),
        ..Default::default()
    };
    let s = Settings::load(&o, None).unwrap();
    let out = s.redacted().unwrap();
    assert!(!out.contains("s3cret"), "{out}");
    assert!(out.contains("postgres://krake:***@db/krake"));
}
