//! Slash commands generated from core's [`COMMANDS`] and their options
//! ([`command_options`]: workspaces and agents become choices), and the way back: a used slash command's options go to core
//! by name and become a typed command there, so core stays the single source of meaning.
//!
//! One command is Discord's own: [`LEARN`], whose file comes as an attachment option (a
//! Telegram user sends the file itself), read back by [`learn_options`].

use crate::wire::{Attachment, CommandData, CommandOption};
use krake_core::chat::command::{COMMANDS, CommandParser, Parsed};
use krake_core::chat::options::{OptionKind, OptionValue, command_options};
use krake_core::config::Directory;
use serde_json::Value;
use serenity::builder::{CreateCommand, CreateCommandOption};
use serenity::model::application::CommandOptionType;

/// Discord allows at most 25 choices per option.
const MAX_CHOICES: usize = 25;

fn description(s: &str) -> String {
    crate::render::truncate(s, 100)
}

/// `/learn`: a file (attachment option) read into a workspace's knowledge.
pub const LEARN: &str = "learn";

/// `/learn`'s attachment option.
pub const LEARN_FILE: &str = "file";

/// `/learn`'s workspace option.
pub const LEARN_WORKSPACE: &str = "workspace";

/// The slash commands for every command core knows, and [`LEARN`].
pub fn slash_commands(dir: &Directory) -> Vec<CreateCommand> {
    let mut commands: Vec<CreateCommand> = COMMANDS
        .iter()
        .map(|spec| {
            let opts = command_options(spec, dir)
                .into_iter()
                .map(|o| {
                    let kind = match o.kind {
                        OptionKind::Text => CommandOptionType::String,
                        OptionKind::Id => CommandOptionType::Integer,
                    };
                    let mut b = CreateCommandOption::new(kind, o.name, description(o.about))
                        .required(o.required);
                    if o.kind == OptionKind::Id {
                        b = b.min_int_value(1);
                    }
                    for (label, value) in o.choices.into_iter().take(MAX_CHOICES) {
                        b = b.add_string_choice(crate::render::truncate(&label, 100), value);
                    }
                    b
                })
                .collect();
            CreateCommand::new(spec.name)
                .description(description(spec.about))
                .set_options(opts)
        })
        .collect();
    commands.push(learn_command(dir));
    commands
}

fn learn_command(dir: &Directory) -> CreateCommand {
    let mut workspace = CreateCommandOption::new(
        CommandOptionType::String,
        LEARN_WORKSPACE,
        "The workspace whose knowledge learns it (default: this channel's)",
    )
    .required(false);
    for w in dir.workspaces().iter().take(MAX_CHOICES) {
        workspace =
            workspace.add_string_choice(crate::render::truncate(&w.name, 100), w.slug.as_str());
    }
    CreateCommand::new(LEARN)
        .description("Learn a file (PDF, Markdown, text) into a workspace's knowledge")
        .add_option(
            CreateCommandOption::new(
                CommandOptionType::Attachment,
                LEARN_FILE,
                "The file to learn",
            )
            .required(true),
        )
        .add_option(workspace)
}

/// `/learn`'s file (resolved from its attachment option) and workspace option, if given.
pub fn learn_options(data: &CommandData) -> Result<(Attachment, Option<String>), OptionsError> {
    let mut file = None;
    let mut workspace = None;
    for o in &data.options {
        match (o.name.as_str(), &o.value) {
            (LEARN_FILE, Some(Value::String(id))) => {
                file = Some(
                    data.resolved
                        .attachments
                        .get(id)
                        .cloned()
                        .ok_or_else(|| OptionsError::BadValue(LEARN_FILE.to_owned()))?,
                );
            }
            (LEARN_WORKSPACE, Some(Value::String(w))) => workspace = Some(w.trim().to_owned()),
            _ => return Err(OptionsError::BadValue(o.name.chars().take(32).collect())),
        }
    }
    let file = file.ok_or_else(|| OptionsError::BadValue(LEARN_FILE.to_owned()))?;
    Ok((file, workspace.filter(|w| !w.is_empty())))
}

/// The body of `PUT /applications/{id}/commands` (bulk overwrite).
pub fn registration_body(dir: &Directory) -> Value {
    serde_json::to_value(slash_commands(dir)).unwrap_or(Value::Array(Vec::new()))
}

/// Registers (bulk-overwrites) the slash commands for one guild, or globally when `guild` is
/// `None` (global commands take up to an hour to show; guild ones at once). Returns how many.
pub async fn register(
    rest: &crate::rest::Rest,
    application_id: u64,
    guild: Option<u64>,
    dir: &Directory,
) -> Result<usize, crate::rest::RestError> {
    use serenity::http::{LightMethod, Route};
    use serenity::model::id::{ApplicationId, GuildId};
    if application_id == 0 || guild == Some(0) {
        return Err(crate::rest::RestError::Refused {
            status: 0,
            code: None,
            message: "application and guild ids are positive numbers".into(),
        });
    }
    let body = registration_body(dir);
    let application_id = ApplicationId::new(application_id);
    let route = match guild {
        Some(g) => Route::GuildCommands {
            application_id,
            guild_id: GuildId::new(g),
        },
        None => Route::Commands { application_id },
    };
    let answer = rest.call(LightMethod::Put, route, Some(&body)).await?;
    Ok(answer.as_array().map_or(0, Vec::len))
}

/// Why a slash command could not be turned into text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// The command is not one of Krake's (an old registration, or another bot's).
    #[error(
        "`/{0}` is not one of Krake's commands; its command list may be out of date (run `krake discord register`)"
    )]
    Unknown(String),
    /// An option value has the wrong type.
    #[error("option `{0}` has an unexpected value")]
    BadValue(String),
}

fn value(o: &CommandOption) -> Result<OptionValue, OptionsError> {
    match &o.value {
        Some(Value::String(s)) => Ok(OptionValue::Text(s.clone())),
        Some(Value::Number(n)) => Ok(n
            .as_i64()
            .map_or_else(|| OptionValue::Other(n.to_string()), OptionValue::Integer)),
        Some(Value::Bool(b)) => Ok(OptionValue::Other(b.to_string())),
        _ => Err(OptionsError::BadValue(o.name.chars().take(32).collect())),
    }
}

/// The typed command for a used slash command: its options go to core by name
/// ([`CommandParser::from_options`]), never glued into a command line.
pub fn command(data: &CommandData, parser: &CommandParser) -> Result<Parsed, OptionsError> {
    if data.name == LEARN || !COMMANDS.iter().any(|s| s.name == data.name) {
        return Err(OptionsError::Unknown(data.name.chars().take(32).collect()));
    }
    let options = data
        .options
        .iter()
        .map(|o| Ok((o.name.clone(), value(o)?)))
        .collect::<Result<Vec<_>, OptionsError>>()?;
    Ok(parser.from_options(&data.name, &options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> CommandData {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn every_core_command_is_registered_with_valid_limits() {
        let dir = Directory::default();
        let body = registration_body(&dir);
        let cmds = body.as_array().unwrap();
        assert_eq!(cmds.len(), COMMANDS.len() + 1, "core's commands and /learn");
        for c in cmds {
            let name = c["name"].as_str().unwrap();
            assert!(name.len() <= 32 && name == name.to_lowercase());
            assert!(c["description"].as_str().unwrap().chars().count() <= 100);
            for o in c["options"].as_array().into_iter().flatten() {
                assert!(o["description"].as_str().unwrap().chars().count() <= 100);
                assert!(o["choices"].as_array().map_or(0, Vec::len) <= 25);
            }
        }
        let todo = cmds.iter().find(|c| c["name"] == "todo").unwrap();
        let ws = &todo["options"][0];
        assert_eq!(ws["name"], "workspace");
        assert_eq!(ws["type"], 3);
        assert!(
            ws["choices"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["value"] == "hard-life-mode" && c["name"] == "Hard Life Mode")
        );
        let ask = cmds.iter().find(|c| c["name"] == "ask").unwrap();
        assert_eq!(ask["options"][0]["choices"].as_array().unwrap().len(), 12);
        let approve = cmds.iter().find(|c| c["name"] == "approve").unwrap();
        assert_eq!(approve["options"][0]["type"], 4);
        assert_eq!(approve["options"][0]["required"], true);
        let learn = cmds.iter().find(|c| c["name"] == "learn").unwrap();
        assert_eq!(learn["options"][0]["name"], "file");
        assert_eq!(learn["options"][0]["type"], 11, "an attachment option");
        assert_eq!(learn["options"][0]["required"], true);
        assert_eq!(learn["options"][1]["name"], "workspace");
        assert_eq!(learn["options"][1]["type"], 3);
        assert_eq!(learn["options"][1]["required"], false);
        assert!(
            learn["options"][1]["choices"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["value"] == "lunavo")
        );
    }

    #[test]
    fn learn_reads_its_resolved_attachment() {
        // The shape Discord documents for an attachment option: the value is the attachment's
        // id, the attachment itself is in `resolved.attachments`.
        let d = data(
            r#"{"name":"learn","type":1,"id":"9","options":[{"type":11,"name":"file","value":"1311"},{"type":3,"name":"workspace","value":"lunavo"}],
               "resolved":{"attachments":{"1311":{"id":"1311","filename":"returns policy.pdf","size":48213,"url":"https://cdn.discordapp.com/attachments/5/1311/returns_policy.pdf","proxy_url":"https://media.discordapp.net/attachments/5/1311/returns_policy.pdf","content_type":"application/pdf","ephemeral":true}}}}"#,
        );
        let (file, ws) = learn_options(&d).unwrap();
        assert_eq!(file.filename, "returns policy.pdf");
        assert_eq!(file.size, Some(48213));
        assert_eq!(
            file.url,
            "https://cdn.discordapp.com/attachments/5/1311/returns_policy.pdf"
        );
        assert_eq!(ws.as_deref(), Some("lunavo"));
        // /learn is not one of core's commands: it never reaches the text parser.
        assert!(matches!(
            command(&d, &parser(&Directory::default())),
            Err(OptionsError::Unknown(_))
        ));
        // An option naming an attachment that is not resolved, or none at all, is refused.
        let missing = data(
            r#"{"name":"learn","options":[{"type":11,"name":"file","value":"404"}],"resolved":{"attachments":{}}}"#,
        );
        assert_eq!(
            learn_options(&missing),
            Err(OptionsError::BadValue("file".into()))
        );
        let none =
            data(r#"{"name":"learn","options":[{"type":3,"name":"workspace","value":"lunavo"}]}"#);
        assert_eq!(
            learn_options(&none),
            Err(OptionsError::BadValue("file".into()))
        );
    }

    fn parser(dir: &Directory) -> CommandParser {
        CommandParser::new(dir.workspaces(), dir.agents())
    }

    #[test]
    fn options_become_typed_commands() {
        use krake_core::Command;
        use krake_core::chat::command::StatusFilter;
        use krake_core::inbox::ThreadId;
        let dir = Directory::default();
        let p = parser(&dir);
        let d = data(
            r#"{"name":"reject","type":1,"id":"1","options":[{"type":3,"name":"reason","value":"too expensive"},{"type":4,"name":"id","value":12}]}"#,
        );
        assert_eq!(
            command(&d, &p).unwrap(),
            Parsed::Command(Command::Reject {
                id: ThreadId(12),
                reason: Some("too expensive".into())
            })
        );
        let d = data(
            r#"{"name":"todo","options":[{"type":3,"name":"status","value":"all"},{"type":3,"name":"workspace","value":"lunavo"}]}"#,
        );
        match command(&d, &p).unwrap() {
            Parsed::Command(Command::List(q)) => {
                assert_eq!(q.status, StatusFilter::All);
                assert_eq!(q.workspace.unwrap().as_str(), "lunavo");
            }
            other => panic!("{other:?}"),
        }
        let d = data(r#"{"name":"workspaces"}"#);
        assert_eq!(
            command(&d, &p).unwrap(),
            Parsed::Command(Command::Workspaces)
        );
        // Every registered option name is one core reads.
        for spec in COMMANDS {
            let known = krake_core::chat::options::OPTION_NAMES
                .iter()
                .find(|(n, _)| *n == spec.name)
                .map_or(&["args"][..], |(_, o)| *o);
            for o in command_options(spec, &dir) {
                assert!(known.contains(&o.name), "/{} option {}", spec.name, o.name);
            }
        }
    }

    #[test]
    fn foreign_or_malformed_commands_are_refused() {
        let dir = Directory::default();
        // The documented example: another bot's command.
        let d = data(
            r#"{"options":[{"type":3,"name":"cardname","value":"The Gitrog Monster"}],"type":1,"name":"cardsearch","id":"771825006014889984"}"#,
        );
        assert!(matches!(
            command(&d, &parser(&dir)),
            Err(OptionsError::Unknown(_))
        ));
        let d = data(r#"{"name":"approve","options":[{"type":4,"name":"id","value":null}]}"#);
        assert!(matches!(
            command(&d, &parser(&dir)),
            Err(OptionsError::BadValue(_))
        ));
    }
}
