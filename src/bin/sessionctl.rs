//! `sessionctl`: an operator's command line for libsession stores.
//!
//! ```text
//! sessionctl --config FILE [--store NAME] [--json] COMMAND [ARGS]
//! ```
//!
//! Exit codes: 0 success, 1 not found, 2 usage or configuration error, 3 store
//! unavailable, timed out or failed. Errors go to stderr; no message ever holds a
//! secret or session data.

use serde_json::{json, Value};
use session::config::Config;
use session::store::DriverConfig;
use session::{Error, SessionError, Sessions};
use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "\
usage: sessionctl --config FILE [--store NAME] [--json] COMMAND [ARGS]

commands:
  stats              the store's settings and its number of live sessions
  count              the number of live sessions
  list [--owner X]   the ids of the live sessions (of owner X: needs owner_key)
  get ID             the data of session ID
  ttl ID             seconds until session ID ends
  destroy ID         ends session ID
  destroy-owner X    ends every session of owner X and prints how many
  gc                 deletes the ended sessions and prints how many

options:
  --config FILE      the config.json of the application (required)
  --                 ends the options (for an owner or id starting with --)
  --store NAME       a named store of that configuration (default: its default store)
  --json             print JSON instead of plain text

exit codes: 0 success, 1 not found, 2 usage or configuration error,
            3 store unavailable, timed out or failed";

/// A failure and its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        let code = match err.code {
            SessionError::NotFound | SessionError::Corrupt => 1,
            SessionError::Config | SessionError::InvalidArgument => 2,
            _ => 3,
        };
        Failure {
            code,
            message: err.message,
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: format!("{}\n\n{USAGE}", message.into()),
    }
}

struct Args {
    config: String,
    store: Option<String>,
    json: bool,
    command: String,
    operands: Vec<String>,
    owner: Option<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, Failure> {
    let (mut config, mut store, mut json, mut owner) = (None, None, false, None);
    let mut words = Vec::new();
    let mut options_done = false;
    while let Some(arg) = args.next() {
        if options_done {
            words.push(arg);
            continue;
        }
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--config" => config = Some(value("--config")?),
            "--store" => store = Some(value("--store")?),
            "--owner" => owner = Some(value("--owner")?),
            "--json" => json = true,
            // Everything after `--` is a command or an argument (an owner or an id
            // that starts with "--").
            "--" => options_done = true,
            "-h" | "--help" => {
                return Err(Failure {
                    code: 0,
                    message: USAGE.to_string(),
                })
            }
            other if other.starts_with("--") => {
                return Err(usage(format!("unknown option {other}")))
            }
            _ => words.push(arg),
        }
    }
    let config = config.ok_or_else(|| usage("--config FILE is required"))?;
    if words.is_empty() {
        return Err(usage("no command given"));
    }
    let command = words.remove(0);
    let wanted = match command.as_str() {
        "stats" | "count" | "list" | "gc" => 0,
        "get" | "ttl" | "destroy" | "destroy-owner" => 1,
        other => return Err(usage(format!("unknown command {other:?}"))),
    };
    if words.len() != wanted {
        return Err(usage(format!(
            "{command} takes {wanted} argument(s), got {}",
            words.len()
        )));
    }
    if owner.is_some() && command != "list" {
        return Err(usage("--owner goes with list"));
    }
    Ok(Args {
        config,
        store,
        json,
        command,
        operands: words,
        owner,
    })
}

/// What a command prints: plain text, or the JSON value with --json.
struct Output {
    plain: Vec<u8>,
    json: Value,
}

fn text(plain: impl ToString, json: Value) -> Output {
    Output {
        plain: format!("{}\n", plain.to_string()).into_bytes(),
        json,
    }
}

fn driver_name(driver: &DriverConfig) -> &'static str {
    match driver {
        DriverConfig::File(_) => "file",
        DriverConfig::Memory(_) => "memory",
        #[cfg(feature = "redis")]
        DriverConfig::Redis(_) => "redis",
    }
}

fn run(args: &Args) -> Result<Output, Failure> {
    let config = Config::from_file(std::path::Path::new(&args.config))?;
    let store_config = config.store(args.store.as_deref())?;
    match &store_config.driver {
        DriverConfig::Memory(_) => eprintln!(
            "sessionctl: note: the memory driver keeps sessions inside each server process; this store is empty"
        ),
        // Opening a file store creates its directory: an operator's look must not
        // (run as root before the application, it would leave one the application
        // cannot use).
        DriverConfig::File(file) => {
            let dir = file.root.join("sessions");
            if !dir.is_dir() {
                return Err(Failure {
                    code: 3,
                    message: format!(
                        "no session directory at {} (has the application run yet?)",
                        dir.display()
                    ),
                });
            }
        }
        #[cfg(feature = "redis")]
        DriverConfig::Redis(_) => {}
    }
    let sessions = Sessions::open_store(store_config)?;
    let operand = args.operands.first().map(String::as_str).unwrap_or("");
    Ok(match args.command.as_str() {
        "stats" => {
            let count = sessions.count()?;
            let idle = store_config.expiry.idle_timeout.map(|d| d.as_secs());
            let owner = store_config.owner.as_ref();
            let json = json!({
                "store": store_config.name,
                "driver": driver_name(&store_config.driver),
                "sessions": count,
                "lifetime": store_config.lifetime.as_secs(),
                "max_lifetime": store_config.max_lifetime.as_secs(),
                "idle_timeout": idle,
                "regenerate_grace": store_config.expiry.regenerate_grace.as_secs(),
                "max_data_size": store_config.max_data_size,
                "encrypted": !store_config.secrets.is_empty(),
                "secret_fallbacks": store_config.secrets.len().saturating_sub(1),
                "owner_key": owner.map(|o| o.key.clone()),
                "max_sessions_per_owner": owner.and_then(|o| o.max_sessions),
            });
            let mut plain = String::new();
            for (key, value) in json.as_object().into_iter().flatten() {
                let shown = match value {
                    Value::String(s) => s.clone(),
                    Value::Null => "-".to_string(),
                    other => other.to_string(),
                };
                plain.push_str(&format!("{key}: {shown}\n"));
            }
            Output {
                plain: plain.into_bytes(),
                json,
            }
        }
        "count" => {
            let n = sessions.count()?;
            text(n, json!({ "count": n }))
        }
        "list" => {
            let ids = match &args.owner {
                Some(owner) => sessions.list_owner(owner.as_bytes())?,
                None => sessions.ids()?,
            };
            let ids: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
            let mut plain = ids.join("\n");
            if !plain.is_empty() {
                plain.push('\n');
            }
            Output {
                plain: plain.into_bytes(),
                json: json!(ids),
            }
        }
        "get" => {
            let data = sessions.peek(operand.as_bytes())?;
            let json = json!({ "id": operand, "data": String::from_utf8_lossy(&data) });
            let mut plain = data;
            plain.push(b'\n');
            Output { plain, json }
        }
        "ttl" => {
            let secs = sessions.ttl_secs(operand.as_bytes())?;
            text(secs, json!({ "id": operand, "ttl": secs }))
        }
        "destroy" => {
            sessions.exists(operand.as_bytes())?;
            sessions.destroy(operand.as_bytes())?;
            text("destroyed", json!({ "id": operand, "destroyed": true }))
        }
        "destroy-owner" => {
            let n = sessions.destroy_owner(operand.as_bytes())?;
            text(n, json!({ "owner": operand, "destroyed": n }))
        }
        "gc" => {
            let n = sessions.remove_expired()?;
            text(n, json!({ "removed": n }))
        }
        _ => unreachable!("commands are checked by parse_args"),
    })
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args().skip(1)).and_then(|args| {
        let output = run(&args)?;
        let bytes = if args.json {
            let mut bytes = output.json.to_string().into_bytes();
            bytes.push(b'\n');
            bytes
        } else {
            output.plain
        };
        std::io::stdout().write_all(&bytes).map_err(|err| Failure {
            code: 3,
            message: format!("cannot write the output: {err}"),
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code: 0, message }) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(Failure { code, message }) => {
            eprintln!("sessionctl: {message}");
            ExitCode::from(code)
        }
    }
}
