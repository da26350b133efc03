//! Schedules and folders through the real `krake` binary: `krake chat`, `krake folder
//! export|import`, `krake config` and `krake serve` with schedules from the config file.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_tests::{chat, krake, replies, run};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn schedules_and_folders_through_chat() {
    let dir = tempfile::tempdir().unwrap();
    let out = chat(
        dir.path(),
        &[
            "/schedule dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin",
            "every weekday at 8 have Soshie draft today's post",
            "/schedule dexter \"x\" cron 0 25 * * *",
            "/schedule dexter \"x\" every monday 09:00 Europe/Berln",
            "/schedules",
            "pause schedule 2",
            "/schedule run 1",
            "/folder create soshie calendar",
            "/folder addcol soshie calendar title text",
            "/folder addcol soshie calendar status status draft,posted",
            "/folder add soshie calendar title=\"Hoodie launch\" status=draft",
            "/folder add soshie calendar title=x status=maybe",
            "/folder show soshie calendar",
        ],
    );
    let r = replies(&out);
    assert_eq!(r.len(), 13, "{out}");
    assert!(
        r[0].starts_with("✓ Scheduled 1: Dexter (data analyst)"),
        "{}",
        r[0]
    );
    assert!(
        r[0].contains("every Monday at 09:00 (Europe/Berlin)"),
        "{}",
        r[0]
    );
    assert!(r[0].contains("Next runs: Mon "), "{}", r[0]);
    assert!(
        r[1].contains("Scheduled 2: Soshie (social media) in lunavo"),
        "{}",
        r[1]
    );
    assert!(
        r[2].starts_with('!') && r[2].contains("`0 25 * * *`"),
        "{}",
        r[2]
    );
    assert!(
        r[3].starts_with('!') && r[3].contains("Europe/Berlin"),
        "{}",
        r[3]
    );
    assert!(r[4].starts_with("Schedules (2):"), "{}", r[4]);
    assert!(r[5].contains("Paused schedule 2"), "{}", r[5]);
    assert!(r[6].contains("Ran schedule 1 now: posted #1"), "{}", r[6]);
    assert!(r[10].contains("Added #1"), "{}", r[10]);
    assert!(
        r[11].starts_with('!') && r[11].contains("maybe"),
        "{}",
        r[11]
    );
    assert!(r[12].contains("#1 | Hoodie launch | draft"), "{}", r[12]);

    // Another process sees the same state; the manual run is in the inbox.
    let out = chat(dir.path(), &["/schedules", "/show 1"]);
    let r = replies(&out);
    assert!(r[0].contains("paused"), "{}", r[0]);
    assert!(
        r[1].contains("Task for Dexter") && r[1].contains("named in the task"),
        "{}",
        r[1]
    );
}

#[test]
fn folder_csv_files_import_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    chat(
        dir.path(),
        &[
            "/folder create milli leads",
            "/folder addcol milli leads company text",
            "/folder addcol milli leads value number",
            "/folder addcol milli leads next date",
        ],
    );
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "company,value,next\nAcme,10,2026-12-01\nBad,ten,2026-12-01\nWorse,1,2026-02-30\n",
    )
    .unwrap();
    let (ok, _, err) = run(krake(dir.path())
        .args(["folder", "import", "milli", "leads"])
        .arg(&bad));
    assert!(!ok, "a bad file fails");
    assert!(
        err.contains("Imported nothing: 2 bad rows")
            && err.contains("line 3")
            && err.contains("line 4"),
        "{err}"
    );
    let good = dir.path().join("good.csv");
    let text = "company,value,next\n\"Acme, Inc.\",10,2026-12-01\nZeta,,\n";
    std::fs::write(&good, text).unwrap();
    let (ok, out, err) = run(krake(dir.path())
        .args(["folder", "import", "milli", "leads"])
        .arg(&good));
    assert!(ok, "{err}");
    assert!(out.contains("Imported 2 entries"), "{out}");
    let exported = dir.path().join("out.csv");
    let (ok, _, err) = run(krake(dir.path())
        .args(["folder", "export", "milli", "leads", "--output"])
        .arg(&exported));
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(&exported).unwrap(), text);
    let (ok, _, err) = run(krake(dir.path()).args(["folder", "export", "milli", "nope"]));
    assert!(!ok && err.contains("no folder `nope`"), "{err}");
}

#[test]
fn config_schedules_are_checked_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("krake.toml");
    std::fs::write(
        &cfg,
        "[schedules.weekly-sales]\nagent = \"dexter\"\ntask = \"summarise last week's sales\"\nwhen = \"every monday 09:00\"\ntimezone = \"Europe/Berln\"\n",
    )
    .unwrap();
    let (ok, _, err) = run(krake(dir.path()).arg("--config").arg(&cfg).arg("config"));
    assert!(!ok, "a bad time zone is refused");
    assert!(
        err.contains("weekly-sales") && err.contains("Europe/Berlin"),
        "{err}"
    );

    std::fs::write(
        &cfg,
        "schedule_timezone = \"Europe/Berlin\"\n[schedules.weekly-sales]\nagent = \"data analyst\"\ntask = \"summarise last week's sales\"\nwhen = \"every monday 09:00\"\ncatch_up = \"skip\"\n",
    )
    .unwrap();
    let mut child = krake(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // The config schedules are stored before the server listens.
    loop {
        let line = lines.next().expect("serve exited early").unwrap();
        if line.contains("Krake is running") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let out = chat(dir.path(), &["/schedules"]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(out.contains("Schedules (1):"), "{out}");
    assert!(out.contains("[config: weekly-sales]"), "{out}");
    assert!(out.contains("Dexter"), "{out}");
    assert!(
        out.contains("every Monday at 09:00 (Europe/Berlin)"),
        "{out}"
    );
}
