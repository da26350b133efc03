//! The parser's tests: slash commands, sentences, several threads, suggestions.

use super::*;
use crate::agent::default_agents;
use crate::workspace::default_workspaces;
use proptest::prelude::*;

pub(in crate::chat::command) fn p() -> CommandParser {
    CommandParser::new(&default_workspaces(), &default_agents())
}

pub(in crate::chat::command) fn cmd(s: &str) -> Command {
    match p().parse(s) {
        Parsed::Command(c) => c,
        other => panic!("{s:?} parsed as {other:?}"),
    }
}

pub(in crate::chat::command) fn ws(s: &str) -> Option<WorkspaceSlug> {
    Some(WorkspaceSlug::parse(s).unwrap())
}

fn not_understood(s: &str) -> String {
    match p().parse(s) {
        Parsed::NotUnderstood { problem, .. } => problem,
        other => panic!("{s:?} parsed as {other:?}"),
    }
}

#[test]
fn several_threads_in_one_command_are_each_named_or_the_whole_is_refused() {
    let approve =
        |ids: &[i64]| Command::Batch(ids.iter().map(|i| Command::Approve(ThreadId(*i))).collect());
    assert_eq!(cmd("/approve 13 14 15"), approve(&[13, 14, 15]));
    assert_eq!(cmd("approve 13 14 15"), approve(&[13, 14, 15]));
    assert_eq!(
        cmd("please approve #13, #14 and #15"),
        approve(&[13, 14, 15])
    );
    assert_eq!(cmd("/approve 13,14"), approve(&[13, 14]));
    // The same thread twice is one thread.
    assert_eq!(cmd("/approve 13 13"), Command::Approve(ThreadId(13)));
    assert_eq!(
        cmd("/archive 7 8"),
        Command::Batch(vec![
            Command::Archive(ThreadId(7)),
            Command::Archive(ThreadId(8))
        ])
    );
    assert_eq!(
        cmd("/reject 13 14 too pricey"),
        Command::Batch(vec![
            Command::Reject {
                id: ThreadId(13),
                reason: Some("too pricey".into())
            },
            Command::Reject {
                id: ThreadId(14),
                reason: Some("too pricey".into())
            },
        ])
    );
    // Never a silent drop: what might name more threads refuses the whole command.
    assert!(not_understood("/approve 13 14 x15").contains("nothing was changed"));
    assert!(not_understood("approve 13 and also 15").contains("`and also 15`"));
    assert!(not_understood("/approve 13 14x").contains("`14x`"));
    let many: Vec<String> = (1..=21).map(|i| i.to_string()).collect();
    assert!(not_understood(&format!("/approve {}", many.join(" "))).contains("at most 20"));
    // A sentence around one thread number still reads as before.
    assert_eq!(
        cmd("Please approve #12 now"),
        Command::Approve(ThreadId(12))
    );
}

#[test]
fn slash_commands() {
    assert_eq!(
        cmd("/todo lunavo"),
        Command::List(ListQuery {
            workspace: ws("lunavo"),
            ..Default::default()
        })
    );
    assert_eq!(cmd("/approve 12"), Command::Approve(ThreadId(12)));
    assert_eq!(
        cmd("/reject 12 too expensive"),
        Command::Reject {
            id: ThreadId(12),
            reason: Some("too expensive".into())
        }
    );
    assert_eq!(
        cmd("/reject 12"),
        Command::Reject {
            id: ThreadId(12),
            reason: None
        }
    );
    assert_eq!(
        cmd("/reply 12 ship it friday"),
        Command::Reply {
            id: ThreadId(12),
            text: "ship it friday".into()
        }
    );
    assert_eq!(cmd("/todo@KrakeBot"), Command::List(ListQuery::default()));
    assert_eq!(cmd("/archive #7"), Command::Archive(ThreadId(7)));
    assert_eq!(cmd("/unarchive 7"), Command::Unarchive(ThreadId(7)));
    assert_eq!(cmd("/show 3"), Command::Show(ThreadId(3)));
    assert_eq!(cmd("/workspaces"), Command::Workspaces);
    assert_eq!(cmd("/agents"), Command::Agents);
    assert_eq!(
        cmd("/kpi lunavo"),
        Command::Kpi {
            workspace: ws("lunavo")
        }
    );
    assert_eq!(cmd("/kpi"), Command::Kpi { workspace: None });
    assert_eq!(
        cmd("how are sales in hard life mode?"),
        Command::Kpi {
            workspace: ws("hard-life-mode")
        }
    );
    assert!(matches!(
        p().parse("/kpi narnia"),
        Parsed::NotUnderstood { .. }
    ));
    assert_eq!(
        cmd("/link k7m2q9xd"),
        Command::Link {
            code: "k7m2q9xd".into()
        }
    );
    assert!(matches!(p().parse("/link"), Parsed::NotUnderstood { .. }));
    assert!(matches!(
        p().parse("/link a b"),
        Parsed::NotUnderstood { .. }
    ));
    assert_eq!(
        cmd("/help reject"),
        Command::Help {
            topic: Some("reject".into())
        }
    );
    assert_eq!(
        cmd("/todo hard-life-mode escalations all"),
        Command::List(ListQuery {
            workspace: ws("hard-life-mode"),
            kind: Some(ThreadKind::Escalation),
            status: StatusFilter::All
        })
    );
    assert_eq!(
        cmd("/ask penn draft a tagline"),
        Command::Ask {
            agent: AgentName::parse("Penn").unwrap(),
            text: "draft a tagline".into()
        }
    );
}

#[test]
fn not_understood_has_suggestions() {
    match p().parse("/aprove 12") {
        Parsed::NotUnderstood {
            problem,
            suggestion,
        } => {
            assert!(problem.contains("/aprove"));
            assert_eq!(suggestion.as_deref(), Some("/approve"));
        }
        other => panic!("{other:?}"),
    }
    match p().parse("aprove 12") {
        Parsed::NotUnderstood { suggestion, .. } => {
            assert_eq!(suggestion.as_deref(), Some("/approve 12"))
        }
        other => panic!("{other:?}"),
    }
    match p().parse("the weather is nice") {
        Parsed::NotUnderstood { suggestion, .. } => {
            assert_eq!(suggestion.as_deref(), Some("/help"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p().parse("/approve"),
        Parsed::NotUnderstood { .. }
    ));
    assert!(matches!(
        p().parse("/approve twelve"),
        Parsed::NotUnderstood { .. }
    ));
    assert!(matches!(
        p().parse("/approve 0"),
        Parsed::NotUnderstood { .. }
    ));
    assert!(matches!(
        p().parse("/reply 3"),
        Parsed::NotUnderstood { .. }
    ));
    assert!(matches!(
        p().parse("/ask nobody do it"),
        Parsed::NotUnderstood { .. }
    ));
    assert!(matches!(
        p().parse("/todo narnia"),
        Parsed::NotUnderstood { .. }
    ));
    assert_eq!(p().parse("   "), Parsed::Empty);
}

#[test]
fn schedule_and_folder_commands() {
    use crate::folder::FolderCommand;
    use crate::schedule::{ScheduleCommand, ScheduleId};
    let Command::Schedule(ScheduleCommand::Create(r)) =
        cmd("/schedule dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin")
    else {
        panic!()
    };
    assert_eq!(r.who.as_deref(), Some("dexter"));
    assert_eq!(r.when.description, "every Monday at 09:00");
    let Command::Schedule(ScheduleCommand::Create(r)) =
        cmd("every weekday at 8 have Soshie draft today's post")
    else {
        panic!()
    };
    assert_eq!(r.who.as_deref(), Some("Soshie"));
    assert_eq!(r.when.cron, "0 0 8 * * MON-FRI");
    let Command::Schedule(ScheduleCommand::Create(r)) =
        cmd("schedule penn to write the newsletter every friday at 10")
    else {
        panic!()
    };
    assert_eq!(r.task, "write the newsletter");
    assert_eq!(cmd("/schedules"), Command::Schedule(ScheduleCommand::List));
    assert_eq!(
        cmd("/schedule pause 3"),
        Command::Schedule(ScheduleCommand::Pause(ScheduleId(3)))
    );
    assert_eq!(
        cmd("run schedule 3 now"),
        Command::Schedule(ScheduleCommand::RunNow(ScheduleId(3)))
    );
    assert_eq!(
        cmd("/folders"),
        Command::Folder(FolderCommand::List { agent: None })
    );
    assert_eq!(
        cmd("/folders soshie"),
        Command::Folder(FolderCommand::List {
            agent: Some("Soshie".into())
        })
    );
    assert!(matches!(
        cmd("/folder show soshie \"content calendar\""),
        Command::Folder(FolderCommand::Show { folder, .. }) if folder == "content calendar"
    ));
    for bad in [
        "/schedule dexter \"x\" cron 0 25 * * *",
        "/schedule dexter \"x\" every monday 09:00 Europe/Berln",
        "/schedule",
        "/folder create nobody x",
        "/folder frobnicate",
    ] {
        match p().parse(bad) {
            Parsed::NotUnderstood { problem, .. } => assert!(!problem.is_empty()),
            other => panic!("{bad}: {other:?}"),
        }
    }
    match p().parse("/schedule dexter \"x\" every monday 09:00 Europe/Berln") {
        Parsed::NotUnderstood { problem, .. } => {
            assert!(problem.contains("Europe/Berln") && problem.contains("Europe/Berlin"))
        }
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn parser_never_panics(s in "\\PC{0,200}") {
        let _ = p().parse(&s);
    }

    #[test]
    fn parser_never_panics_on_commandish(v in "(/)?(approve|reject|reply|todo|show|ask|archive|help|unarchive)", rest in "[ #0-9a-zA-Z:,\\-\u{00e9}\u{1F600}]{0,40}") {
        let _ = p().parse(&format!("{v} {rest}"));
    }

    #[test]
    fn parser_never_panics_on_schedules_and_folders(v in "(/)?(schedule|schedules|folder|folders|every|pause schedule|run schedule)", rest in "[ #0-9a-zA-Z:,/=\"\n\\-\u{00e9}\u{1F600}*]{0,60}") {
        let _ = p().parse(&format!("{v} {rest}"));
    }
}

#[test]
fn search_takes_an_optional_workspace_then_the_text() {
    assert_eq!(
        cmd("/search lunavo return policy"),
        Command::Search {
            workspace: Some(WorkspaceSlug::parse("lunavo").unwrap()),
            text: "return policy".into(),
        }
    );
    assert_eq!(
        cmd("/search return policy"),
        Command::Search {
            workspace: None,
            text: "return policy".into(),
        }
    );
    // A workspace name alone is what to look for.
    assert_eq!(
        cmd("/search lunavo"),
        Command::Search {
            workspace: None,
            text: "lunavo".into(),
        }
    );
    assert!(matches!(p().parse("/search"), Parsed::NotUnderstood { .. }));
}
