//! The `/schedule` family of commands ([`ScheduleCommand`]) and its parser, slash syntax and
//! natural phrasings ("pause schedule 3").

use crate::schedule::{CatchUp, ScheduleId, WhenSpec, parse_when};
use crate::workspace::{Workspace, WorkspaceSlug};

/// A request to create a schedule, as parsed; the service resolves the assignee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRequest {
    /// The agent name or role written, if any.
    pub who: Option<String>,
    /// The workspace named (`in lunavo`), if any.
    pub workspace: Option<WorkspaceSlug>,
    /// The task.
    pub task: String,
    /// When.
    pub when: WhenSpec,
    /// Missed-occurrence policy (`catch-up skip` at the end).
    pub catch_up: CatchUp,
}

/// The `/schedule` family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleCommand {
    /// Create a schedule.
    Create(Box<ScheduleRequest>),
    /// List the schedules with their next runs.
    List,
    /// Pause one.
    Pause(ScheduleId),
    /// Resume one.
    Resume(ScheduleId),
    /// Delete one.
    Delete(ScheduleId),
    /// Run one now (its regular next run stays).
    RunNow(ScheduleId),
}

fn take_number(s: &str) -> Option<(ScheduleId, &str)> {
    let s = s.trim_start();
    let (w, rest) = match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let w = w
        .trim_start_matches('#')
        .trim_end_matches([',', '.', '!', '?']);
    if w.is_empty() || w.len() > 18 || !w.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = w.parse().ok()?;
    (n > 0).then_some((ScheduleId(n), rest))
}

const WHEN_STARTS: &[&str] = &[
    "every", "each", "daily", "hourly", "weekly", "monthly", "cron",
];

const QUOTES: &[char] = &['"', '“', '”', '„', '«', '»'];

/// Parses the arguments of `/schedule` (and natural phrasings starting with "every …").
/// `Err` carries the problem in plain words.
pub fn parse_schedule_command(
    args: &str,
    workspaces: &[Workspace],
) -> Result<ScheduleCommand, String> {
    let args = args.trim();
    let (head, rest) = match args.find(char::is_whitespace) {
        Some(i) => (&args[..i], &args[i..]),
        None => (args, ""),
    };
    let id_cmd = |name: &str, f: fn(ScheduleId) -> ScheduleCommand| match take_number(rest) {
        Some((id, tail)) if tail.trim().is_empty() || tail.trim() == "now" => Ok(f(id)),
        _ => Err(format!(
            "`/schedule {name}` needs a schedule number, e.g. `/schedule {name} 3`"
        )),
    };
    match head.to_lowercase().as_str() {
        "" => {
            return Err(
                "`/schedule` needs who, what and when, e.g. `/schedule dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin`".to_owned(),
            );
        }
        "list" | "ls" => return Ok(ScheduleCommand::List),
        "pause" | "stop" => return id_cmd("pause", ScheduleCommand::Pause),
        "resume" | "unpause" | "continue" => return id_cmd("resume", ScheduleCommand::Resume),
        "delete" | "remove" | "rm" | "cancel" => return id_cmd("delete", ScheduleCommand::Delete),
        "run" | "now" | "trigger" => return id_cmd("run", ScheduleCommand::RunNow),
        _ => {}
    }
    // A trailing `catch-up skip` / `catch-up once` sets the policy.
    let mut body = args.to_owned();
    let mut catch_up = CatchUp::Once;
    let lower = body.to_lowercase();
    for (suffix, policy) in [
        ("catch-up skip", CatchUp::Skip),
        ("catchup skip", CatchUp::Skip),
        ("catch-up once", CatchUp::Once),
        ("catchup once", CatchUp::Once),
    ] {
        if lower.ends_with(suffix) {
            body.truncate(body.len() - suffix.len());
            catch_up = policy;
            break;
        }
    }
    let body = body.trim();
    let take_ws = |who: &str| -> Result<(Option<String>, Option<WorkspaceSlug>), String> {
        let words: Vec<&str> = who.split_whitespace().collect();
        let mut ws = None;
        let mut kept = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i].to_lowercase();
            if (w == "in" || w == "for") && i + 1 < words.len() {
                let tail = words[i + 1..].join(" ").to_lowercase();
                if let Some(found) = workspaces.iter().find(|x| {
                    x.slug.as_str() == tail
                        || x.name.to_lowercase() == tail
                        || x.slug.as_str() == words[i + 1].to_lowercase()
                }) {
                    ws = Some(found.slug.clone());
                    let consumed = if found.slug.as_str() == words[i + 1].to_lowercase() {
                        1
                    } else {
                        words.len() - i - 1
                    };
                    i += 1 + consumed;
                    continue;
                }
                return Err(format!(
                    "`{}` is not a workspace; the workspaces are {}",
                    words[i + 1..].join(" "),
                    workspaces
                        .iter()
                        .map(|w| w.slug.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            kept.push(words[i]);
            i += 1;
        }
        let who = kept.join(" ").trim_start_matches("the ").trim().to_owned();
        Ok(((!who.is_empty()).then_some(who), ws))
    };
    // Form 1: who "task" when
    if let Some(open) = body.find(QUOTES) {
        let after_open = &body[open..];
        let q = after_open.chars().next().map_or(1, char::len_utf8);
        let inner = &after_open[q..];
        let Some(close) = inner.find(QUOTES) else {
            return Err("the task's closing quote is missing".to_owned());
        };
        let task = inner[..close].trim();
        let qc = inner[close..].chars().next().map_or(1, char::len_utf8);
        let when_text = inner[close + qc..].trim();
        if task.is_empty() {
            return Err("the task in quotes is empty".to_owned());
        }
        if when_text.is_empty() {
            return Err(
                "say when to run it, e.g. `every monday 09:00 Europe/Berlin` or `cron 0 9 * * 1-5`"
                    .to_owned(),
            );
        }
        let when = parse_when(when_text).map_err(|e| e.to_string())?;
        let (who, workspace) = take_ws(&body[..open])?;
        return Ok(ScheduleCommand::Create(Box::new(ScheduleRequest {
            who,
            workspace,
            task: task.to_owned(),
            when,
            catch_up,
        })));
    }
    // Form 2: when (have|ask|get|tell) <agent> [to] task  — "every weekday at 8 have Soshie draft today's post"
    let words: Vec<&str> = body.split_whitespace().collect();
    if words
        .first()
        .is_some_and(|w| WHEN_STARTS.contains(&w.to_lowercase().as_str()))
        && let Some(k) = words.iter().position(|w| {
            matches!(
                w.to_lowercase().as_str(),
                "have" | "ask" | "get" | "tell" | "let"
            )
        })
    {
        let when = parse_when(&words[..k].join(" ")).map_err(|e| e.to_string())?;
        let who = words.get(k + 1).map(|w| w.trim_end_matches([',', ':']));
        let mut t = k + 2;
        if words.get(t).is_some_and(|w| w.eq_ignore_ascii_case("to")) {
            t += 1;
        }
        let (who, workspace) = take_ws(who.unwrap_or(""))?;
        let task = words.get(t..).map(|w| w.join(" ")).unwrap_or_default();
        if task.is_empty() {
            return Err(
                "what should be done? e.g. `every weekday at 8 have soshie draft today's post`"
                    .to_owned(),
            );
        }
        return Ok(ScheduleCommand::Create(Box::new(ScheduleRequest {
            who,
            workspace,
            task,
            when,
            catch_up,
        })));
    }
    // Form 3: <agent> [to] task when — the first position where the rest reads as a time wins.
    let mut last_err = None;
    for (k, w) in words.iter().enumerate().skip(1) {
        if !WHEN_STARTS.contains(&w.to_lowercase().as_str()) {
            continue;
        }
        match parse_when(&words[k..].join(" ")) {
            Ok(when) => {
                let who = words[0].trim_end_matches([',', ':']);
                let mut t = 1;
                if words.get(1).is_some_and(|w| w.eq_ignore_ascii_case("to")) {
                    t = 2;
                }
                let task = words.get(t..k).map(|w| w.join(" ")).unwrap_or_default();
                if task.is_empty() {
                    return Err("what should be done? Put the task in quotes: `/schedule dexter \"summarise last week's sales\" every monday 09:00`".to_owned());
                }
                let (who, workspace) = take_ws(who)?;
                return Ok(ScheduleCommand::Create(Box::new(ScheduleRequest {
                    who,
                    workspace,
                    task,
                    when,
                    catch_up,
                })));
            }
            Err(e) => last_err = Some(e.to_string()),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        "write who, the task in quotes and when, e.g. `/schedule dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin`".to_owned()
    }))
}

/// Natural phrasings about existing schedules: "pause schedule 3", "run schedule 3 now",
/// "delete schedule 3", "resume schedule 3", "list schedules", "my schedules".
pub fn parse_natural_schedule(text: &str) -> Option<ScheduleCommand> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    match words.as_slice() {
        ["schedules"] | ["list", "schedules"] | ["show", "schedules"] | ["my", "schedules"] => {
            return Some(ScheduleCommand::List);
        }
        _ => {}
    }
    let pos = words
        .iter()
        .position(|w| *w == "schedule" || *w == "schedules")?;
    if pos == 0 || pos > 2 {
        return None;
    }
    let verb = words[0];
    let joined = words[pos + 1..].join(" ");
    let (id, tail) = take_number(&joined)?;
    if !(tail.trim().is_empty() || tail.trim() == "now") {
        return None;
    }
    Some(match verb {
        "pause" | "stop" => ScheduleCommand::Pause(id),
        "resume" | "unpause" | "restart" => ScheduleCommand::Resume(id),
        "delete" | "remove" | "cancel" => ScheduleCommand::Delete(id),
        "run" | "trigger" => ScheduleCommand::RunNow(id),
        _ => return None,
    })
}

/// Whether a text starts like a schedule ("every weekday at 8 have …").
pub fn starts_like_schedule(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or("").to_lowercase();
    matches!(
        first.as_str(),
        "every" | "each" | "daily" | "hourly" | "weekly" | "monthly"
    ) && text.split_whitespace().any(|w| {
        matches!(
            w.to_lowercase().as_str(),
            "have" | "ask" | "get" | "tell" | "let"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::default_workspaces;

    #[test]
    fn schedule_commands() {
        let ws = default_workspaces();
        let Ok(ScheduleCommand::Create(r)) = parse_schedule_command(
            "dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin",
            &ws,
        ) else {
            panic!()
        };
        assert_eq!(r.who.as_deref(), Some("dexter"));
        assert_eq!(r.task, "summarise last week's sales");
        assert_eq!(r.when.cron, "0 0 9 * * MON");
        assert_eq!(r.catch_up, CatchUp::Once);
        let Ok(ScheduleCommand::Create(r)) =
            parse_schedule_command("every weekday at 8 have Soshie draft today's post", &ws)
        else {
            panic!()
        };
        assert_eq!(r.who.as_deref(), Some("Soshie"));
        assert_eq!(r.task, "draft today's post");
        let Ok(ScheduleCommand::Create(r)) = parse_schedule_command(
            "data analyst in lunavo \"weekly KPIs\" cron 0 9 * * 1 catch-up skip",
            &ws,
        ) else {
            panic!()
        };
        assert_eq!(r.who.as_deref(), Some("data analyst"));
        assert_eq!(r.workspace.as_ref().map(|w| w.as_str()), Some("lunavo"));
        assert_eq!(r.catch_up, CatchUp::Skip);
        let Ok(ScheduleCommand::Create(r)) =
            parse_schedule_command("penn to write a newsletter every friday at 10", &ws)
        else {
            panic!()
        };
        assert_eq!(r.task, "write a newsletter");
        let Ok(ScheduleCommand::Create(r)) =
            parse_schedule_command("\"weekly sales summary\" every monday at 9", &ws)
        else {
            panic!()
        };
        assert_eq!(r.who, None);
        assert_eq!(
            parse_schedule_command("pause 3", &ws),
            Ok(ScheduleCommand::Pause(ScheduleId(3)))
        );
        assert_eq!(
            parse_schedule_command("run #4 now", &ws),
            Ok(ScheduleCommand::RunNow(ScheduleId(4)))
        );
        assert!(parse_schedule_command("pause", &ws).is_err());
        let e = parse_schedule_command("dexter \"x\" cron 0 25 * * *", &ws).unwrap_err();
        assert!(e.contains("0 25 * * *"), "{e}");
        let e = parse_schedule_command("dexter \"x\" every day at 9 Narnia/Cair", &ws).unwrap_err();
        assert!(e.contains("Narnia/Cair"), "{e}");
        assert!(parse_schedule_command("dexter in narnia \"x\" every day", &ws).is_err());
        assert_eq!(
            parse_natural_schedule("pause schedule 3"),
            Some(ScheduleCommand::Pause(ScheduleId(3)))
        );
        assert_eq!(
            parse_natural_schedule("run schedule #2 now"),
            Some(ScheduleCommand::RunNow(ScheduleId(2)))
        );
        assert_eq!(parse_natural_schedule("pause the music"), None);
    }
}
