//! `micro-gw users|apps|credentials|scopes …`: Express Gateway's `eg` consumer commands against
//! a running gateway's admin API (or, with `--project <dir> --offline`, a stopped gateway's
//! store file).
//!
//! As `eg`: objects print as indented JSON on stdout, `-q` prints ids only (credentials:
//! `keyId:keySecret`, `id:password`), and the `Created …`/`Removed …` lines go to stderr here
//! so stdout stays machine-readable. `eg credential:scopes add|remove|set` is `micro-gw
//! credentials scopes add|remove|set`; `credentials remove` is a micro-gw addition.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::consumers::{all_pages, segment};
use crate::admin_client::{self, AdminArgs, Target};

/// Options every consumer command takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Print only ids (as eg's -q).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// `micro-gw users …`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user: -p username=jdoe -p firstname=Jane …, or newline-delimited JSON on stdin.
    Create(CreateArgs),
    /// List users.
    #[command(alias = "ls")]
    List {
        /// Every page (the admin API pages by 100).
        #[arg(short, long)]
        all: bool,
    },
    /// Show a user (by id or username).
    Info {
        /// Id or username.
        id: String,
    },
    /// Update a user's properties (-p key=value).
    Update {
        /// Id or username.
        id: String,
        /// key=value.
        #[arg(short = 'p', long = "property", value_name = "KEY=VALUE")]
        properties: Vec<String>,
    },
    /// Remove users (with their apps and credentials).
    #[command(alias = "rm")]
    Remove(Ids),
    /// Activate users.
    Activate(Ids),
    /// Deactivate users (and their apps).
    Deactivate(Ids),
}

/// `micro-gw apps …`
#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Create an app: -u <user> -p name=x, or newline-delimited JSON on stdin ({"userId", "name"}).
    Create {
        /// The owner's id or username.
        #[arg(short = 'u', long = "user")]
        user: Option<String>,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// List apps.
    #[command(alias = "ls")]
    List {
        /// Every page.
        #[arg(short, long)]
        all: bool,
    },
    /// Show an app (by id or name).
    Info {
        /// Id or name.
        id: String,
    },
    /// Update an app's properties.
    Update {
        /// Id or name.
        id: String,
        /// key=value.
        #[arg(short = 'p', long = "property", value_name = "KEY=VALUE")]
        properties: Vec<String>,
    },
    /// Remove apps (with their credentials).
    #[command(alias = "rm")]
    Remove(Ids),
    /// Activate apps.
    Activate(Ids),
    /// Deactivate apps.
    Deactivate(Ids),
}

/// `micro-gw credentials …`
#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Create a credential: -c <consumer> -t <type> [-p key=value], or JSON lines on stdin
    /// ({"consumer", "type", …fields}).
    Create {
        /// The consumer: a user's id or username, an app's id or name.
        #[arg(short = 'c', long = "consumer")]
        consumer: Option<String>,
        /// basic-auth, key-auth, jwt or oauth2.
        #[arg(short = 't', long = "type")]
        kind: Option<String>,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// List a consumer's credentials (every credential without -c).
    #[command(alias = "ls")]
    List {
        /// The consumer.
        #[arg(short = 'c', long = "consumer", alias = "consumerId")]
        consumer: Option<String>,
    },
    /// Show a credential (key-auth/jwt: its keyId; basic-auth/oauth2: the consumer's id).
    Info {
        /// Id or keyId.
        id: String,
        /// The type.
        #[arg(short = 't', long = "type")]
        kind: String,
    },
    /// Activate credentials.
    Activate(TypedIds),
    /// Deactivate credentials.
    Deactivate(TypedIds),
    /// Remove credentials (a micro-gw addition: eg can only deactivate them).
    #[command(alias = "rm")]
    Remove(TypedIds),
    /// A credential's scopes (eg's `credential:scopes`).
    Scopes {
        #[command(subcommand)]
        command: CredentialScopes,
    },
}

/// `micro-gw credentials scopes add|remove|set`.
#[derive(Debug, Subcommand)]
pub enum CredentialScopes {
    /// Add scopes (they must exist).
    Add(ScopeArgs),
    /// Remove scopes.
    #[command(alias = "rm")]
    Remove(ScopeArgs),
    /// Replace the scopes.
    Set(ScopeArgs),
}

/// Scopes of one credential.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// The scopes.
    #[arg(required = false)]
    pub scopes: Vec<String>,
    /// The credential's id or keyId.
    #[arg(long = "id", alias = "keyid")]
    pub id: String,
    /// The type.
    #[arg(short = 't', long = "type")]
    pub kind: String,
}

/// `micro-gw scopes …`
#[derive(Debug, Subcommand)]
pub enum ScopesCommand {
    /// Create scopes.
    Create {
        /// The scope names.
        #[arg(required = true)]
        scopes: Vec<String>,
    },
    /// List scopes.
    #[command(alias = "ls")]
    List,
    /// Show a scope.
    Info {
        /// Its name.
        scope: String,
    },
    /// Remove scopes (and from every credential holding them).
    #[command(alias = "rm")]
    Remove {
        /// The scope names.
        #[arg(required = true)]
        scopes: Vec<String>,
    },
}

/// `-p key=value …` and `--stdin`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// A property, key=value (repeat).
    #[arg(short = 'p', long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// Read newline-delimited JSON objects from stdin, one per object to create.
    #[arg(long)]
    pub stdin: bool,
}

/// One or more ids.
#[derive(Debug, Args)]
pub struct Ids {
    /// Ids (or usernames / app names).
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// Credential ids and their type.
#[derive(Debug, Args)]
pub struct TypedIds {
    /// Ids or keyIds.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// The type.
    #[arg(short = 't', long = "type")]
    pub kind: String,
}

/// Parses `key=value` options; `json` reads values as JSON when they parse (eg's credentials).
pub fn properties(items: &[String], json: bool) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for item in items {
        let Some((key, value)) = item
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        else {
            bail!("invalid property option: {item} (use -p key=value)");
        };
        let value = if json {
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()))
        } else {
            Value::String(value.to_string())
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

fn stdin_objects() -> anyhow::Result<Vec<Map<String, Value>>> {
    let mut out = Vec::new();
    for (number, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(map)) => out.push(map),
            _ => bail!("stdin:{}: expected one JSON object per line", number + 1),
        }
    }
    Ok(out)
}

/// Asks for a missing required property on a terminal; elsewhere it is an error.
fn require(body: &mut Map<String, Value>, key: &str, option: &str) -> anyhow::Result<()> {
    if body
        .get(key)
        .and_then(Value::as_str)
        .is_some_and(|v| !v.is_empty())
    {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        bail!("{key} is required: {option}");
    }
    let value: String = dialoguer::Input::new()
        .with_prompt(key)
        .interact_text()
        .with_context(|| format!("reading {key}"))?;
    body.insert(key.to_string(), Value::String(value));
    Ok(())
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

fn field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Runs a list of actions, reporting each failure on one line; fails if any failed.
/// `POST <collection>` of each body (users and apps): the new id (quiet) or the object; every
/// failure is one line, and the command fails when any did.
fn create_each(
    target: &Target,
    collection: &str,
    bodies: Vec<Map<String, Value>>,
    quiet: bool,
    what: &str,
) -> anyhow::Result<()> {
    let mut failed = 0;
    for body in bodies {
        match target.expect(Method::POST, collection, Some(Value::Object(body))) {
            Ok(reply) if quiet => println!("{}", field(&reply.body, "id")),
            Ok(reply) => {
                eprintln!("Created {}", field(&reply.body, "id"));
                print_json(&reply.body);
            }
            Err(e) => {
                eprintln!("micro-gw: {e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} {what} not created");
    }
    Ok(())
}

/// `GET <collection>/<id>`.
fn info(target: &Target, collection: &str, id: &str, quiet: bool) -> anyhow::Result<()> {
    let reply = target.expect(Method::GET, &format!("{collection}/{}", segment(id)), None)?;
    if quiet {
        println!("{}", field(&reply.body, "id"));
    } else {
        print_json(&reply.body);
    }
    Ok(())
}

/// `PUT <collection>/<id>` with `-p k=v` properties.
fn update(
    target: &Target,
    collection: &str,
    id: &str,
    props: &[String],
    quiet: bool,
) -> anyhow::Result<()> {
    let body = properties(props, false)?;
    let reply = target.expect(
        Method::PUT,
        &format!("{collection}/{}", segment(id)),
        Some(Value::Object(body)),
    )?;
    if quiet {
        println!("{}", field(&reply.body, "id"));
    } else {
        eprintln!("Updated {id}");
        print_json(&reply.body);
    }
    Ok(())
}

/// `DELETE <collection>/<id>`.
fn remove(target: &Target, collection: &str, id: &str, quiet: bool) -> anyhow::Result<()> {
    target.expect(
        Method::DELETE,
        &format!("{collection}/{}", segment(id)),
        None,
    )?;
    if quiet {
        println!("{id}");
    } else {
        eprintln!("Removed {id}");
    }
    Ok(())
}

fn each(ids: &[String], mut action: impl FnMut(&str) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut failed = 0;
    for id in ids {
        if let Err(e) = action(id) {
            eprintln!("micro-gw: {e:#}");
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} failed", ids.len());
    }
    Ok(())
}

fn set_status(
    target: &Target,
    path: &str,
    id: &str,
    active: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let reply = target.expect(
        Method::PUT,
        &format!("{path}/status"),
        Some(json!({ "status": active })),
    )?;
    if quiet {
        println!("{id}");
    } else {
        eprintln!("{} {id}", field(&reply.body, "status"));
    }
    Ok(())
}

fn list(target: &Target, name: &str, all: bool, quiet: bool, id_key: &str) -> anyhow::Result<()> {
    let items = if all {
        all_pages(target, name)?
    } else {
        let reply = target.expect(Method::GET, &format!("/{name}"), None)?;
        reply
            .body
            .get(name)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_object().cloned()).collect())
            .unwrap_or_default()
    };
    if items.is_empty() {
        println!("You have no {name}");
    }
    for item in items {
        if quiet {
            println!(
                "{}",
                item.get(id_key).and_then(Value::as_str).unwrap_or_default()
            );
        } else {
            print_json(&Value::Object(item));
        }
    }
    Ok(())
}

/// `micro-gw users …`
pub fn users(command: UsersCommand, common: &Common) -> anyhow::Result<()> {
    let target = admin_client::connect(&common.admin)?;
    let q = common.quiet;
    match command {
        UsersCommand::Create(create) => {
            let bodies = if create.stdin {
                stdin_objects()?
            } else {
                let mut body = properties(&create.properties, false)?;
                require(&mut body, "username", "-p username=<name>")?;
                vec![body]
            };
            create_each(&target, "/users", bodies, q, "user(s)")
        }
        UsersCommand::List { all } => list(&target, "users", all, q, "username"),
        UsersCommand::Info { id } => info(&target, "/users", &id, q),
        UsersCommand::Update { id, properties: p } => update(&target, "/users", &id, &p, q),
        UsersCommand::Remove(ids) => each(&ids.ids, |id| remove(&target, "/users", id, q)),
        UsersCommand::Activate(ids) => each(&ids.ids, |id| {
            set_status(&target, &format!("/users/{}", segment(id)), id, true, q)
        }),
        UsersCommand::Deactivate(ids) => each(&ids.ids, |id| {
            set_status(&target, &format!("/users/{}", segment(id)), id, false, q)
        }),
    }
}

/// `micro-gw apps …`
pub fn apps(command: AppsCommand, common: &Common) -> anyhow::Result<()> {
    let target = admin_client::connect(&common.admin)?;
    let q = common.quiet;
    match command {
        AppsCommand::Create { user, create } => {
            let bodies = if create.stdin {
                stdin_objects()?
            } else {
                let mut body = properties(&create.properties, false)?;
                match user {
                    Some(user) => {
                        body.insert("userId".into(), Value::String(user));
                    }
                    None => require(&mut body, "userId", "-u <user id or username>")?,
                }
                require(&mut body, "name", "-p name=<app name>")?;
                vec![body]
            };
            create_each(&target, "/apps", bodies, q, "app(s)")
        }
        AppsCommand::List { all } => list(&target, "apps", all, q, "id"),
        AppsCommand::Info { id } => info(&target, "/apps", &id, q),
        AppsCommand::Update { id, properties: p } => update(&target, "/apps", &id, &p, q),
        AppsCommand::Remove(ids) => each(&ids.ids, |id| remove(&target, "/apps", id, q)),
        AppsCommand::Activate(ids) => each(&ids.ids, |id| {
            set_status(&target, &format!("/apps/{}", segment(id)), id, true, q)
        }),
        AppsCommand::Deactivate(ids) => each(&ids.ids, |id| {
            set_status(&target, &format!("/apps/{}", segment(id)), id, false, q)
        }),
    }
}

/// `micro-gw credentials …`
pub fn credentials(command: CredentialsCommand, common: &Common) -> anyhow::Result<()> {
    let target = admin_client::connect(&common.admin)?;
    let q = common.quiet;
    let path = |kind: &str, id: &str| format!("/credentials/{}/{}", segment(kind), segment(id));
    match command {
        CredentialsCommand::Create {
            consumer,
            kind,
            create,
        } => {
            let requests: Vec<(String, String, Map<String, Value>)> = if create.stdin {
                stdin_objects()?
                    .into_iter()
                    .map(|mut o| {
                        let consumer = o
                            .remove("consumer")
                            .or_else(|| o.remove("consumerId"))
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default();
                        let kind = o
                            .remove("type")
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default();
                        (consumer, kind, o)
                    })
                    .collect()
            } else {
                let (Some(consumer), Some(kind)) = (consumer, kind) else {
                    bail!("must include either --stdin or -c with -t (--consumer with --type)");
                };
                let mut fields = properties(&create.properties, true)?;
                if let Some(Value::String(s)) = fields.get("scopes") {
                    let one = Value::Array(vec![Value::String(s.clone())]);
                    fields.insert("scopes".into(), one);
                }
                vec![(consumer, kind, fields)]
            };
            let mut failed = 0;
            for (consumer, kind, fields) in requests {
                let body = json!({ "consumerId": consumer, "type": kind, "credential": fields });
                match target.expect(Method::POST, "/credentials", Some(body)) {
                    Ok(reply) => {
                        let b = &reply.body;
                        if !q {
                            let id = Some(field(b, "id"))
                                .filter(|s| !s.is_empty())
                                .unwrap_or_else(|| field(b, "keyId"));
                            eprintln!("Created {id}");
                            print_json(b);
                        } else if kind == "key-auth" || kind == "jwt" {
                            println!("{}:{}", field(b, "keyId"), field(b, "keySecret"));
                        } else if kind == "basic-auth" {
                            println!("{}:{}", field(b, "id"), field(b, "password"));
                        } else {
                            println!("{}:{}", field(b, "id"), field(b, "secret"));
                        }
                    }
                    Err(e) => {
                        eprintln!("micro-gw: {e:#}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} credential(s) not created");
            }
            Ok(())
        }
        CredentialsCommand::List { consumer } => {
            let url = match &consumer {
                Some(c) => format!("/credentials/{}", segment(c)),
                None => "/credentials".into(),
            };
            let reply = target.call(Method::GET, &url, None)?;
            if reply.status == 404 {
                bail!(
                    "no consumer {} (the admin API answered 404)",
                    consumer.unwrap_or_default()
                );
            }
            let reply = if reply.ok() {
                reply
            } else {
                target.expect(Method::GET, &url, None)?
            };
            let items = reply
                .body
                .get("credentials")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if items.is_empty() {
                eprintln!(
                    "Consumer {} has no credentials",
                    consumer.as_deref().unwrap_or("(any)")
                );
            }
            for item in items {
                if q {
                    println!("{}", field(&item, "id"));
                } else {
                    print_json(&item);
                }
            }
            Ok(())
        }
        CredentialsCommand::Info { id, kind } => {
            let reply = target.expect(Method::GET, &path(&kind, &id), None)?;
            if reply.body.is_null() {
                bail!("no {kind} credential {id}");
            }
            if q {
                println!("{}", field(&reply.body, "id"));
            } else {
                print_json(&reply.body);
            }
            Ok(())
        }
        CredentialsCommand::Activate(ids) => each(&ids.ids, |id| {
            set_status(&target, &path(&ids.kind, id), id, true, q)
        }),
        CredentialsCommand::Deactivate(ids) => each(&ids.ids, |id| {
            set_status(&target, &path(&ids.kind, id), id, false, q)
        }),
        CredentialsCommand::Remove(ids) => each(&ids.ids, |id| {
            target.expect(Method::DELETE, &path(&ids.kind, id), None)?;
            if q {
                println!("{id}");
            } else {
                eprintln!("Removed {id}");
            }
            Ok(())
        }),
        CredentialsCommand::Scopes { command } => match command {
            CredentialScopes::Add(a) => each(&a.scopes, |scope| {
                target.expect(
                    Method::PUT,
                    &format!("{}/scopes/{}", path(&a.kind, &a.id), segment(scope)),
                    None,
                )?;
                eprintln!("Scope {scope} added to {}", a.id);
                Ok(())
            }),
            CredentialScopes::Remove(a) => each(&a.scopes, |scope| {
                target.expect(
                    Method::DELETE,
                    &format!("{}/scopes/{}", path(&a.kind, &a.id), segment(scope)),
                    None,
                )?;
                eprintln!("Scope {scope} removed from {}", a.id);
                Ok(())
            }),
            CredentialScopes::Set(a) => {
                target.expect(
                    Method::PUT,
                    &format!("{}/scopes", path(&a.kind, &a.id)),
                    Some(json!({ "scopes": a.scopes })),
                )?;
                eprintln!("Scopes of {} set to {}", a.id, a.scopes.join(","));
                Ok(())
            }
        },
    }
}

/// `micro-gw scopes …`
pub fn scopes(command: ScopesCommand, common: &Common) -> anyhow::Result<()> {
    let target = admin_client::connect(&common.admin)?;
    let q = common.quiet;
    match command {
        ScopesCommand::Create { scopes } => {
            target.expect(Method::POST, "/scopes", Some(json!({ "scopes": scopes })))?;
            if q {
                println!("{}", scopes.join("\n"));
            } else {
                eprintln!("Created {}", scopes.join(","));
            }
            Ok(())
        }
        ScopesCommand::List => {
            let reply = target.expect(Method::GET, "/scopes", None)?;
            let items = reply
                .body
                .get("scopes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if items.is_empty() {
                println!("You have no scopes");
            }
            for scope in items {
                println!("{}", scope.as_str().unwrap_or_default());
            }
            Ok(())
        }
        ScopesCommand::Info { scope } => {
            let reply =
                target.expect(Method::GET, &format!("/scopes/{}", segment(&scope)), None)?;
            if q {
                println!("{}", field(&reply.body, "scope"));
            } else {
                print_json(&reply.body);
            }
            Ok(())
        }
        ScopesCommand::Remove { scopes } => each(&scopes, |scope| {
            target.expect(Method::DELETE, &format!("/scopes/{}", segment(scope)), None)?;
            if q {
                println!("{scope}");
            } else {
                eprintln!("Removed {scope}");
            }
            Ok(())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_as_eg_reads_them() {
        let p = properties(&["username=jdoe".into(), "a=b=c".into()], false).unwrap();
        assert_eq!(p["username"], "jdoe");
        assert_eq!(p["a"], "b=c");
        let p = properties(&["scopes=[\"x\"]".into(), "keyId=k".into()], true).unwrap();
        assert_eq!(p["scopes"], json!(["x"]));
        assert_eq!(p["keyId"], "k");
        let err = properties(&["novalue=".into()], false)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "invalid property option: novalue= (use -p key=value)");
    }
}
