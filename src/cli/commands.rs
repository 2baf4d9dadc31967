//! zkCli.sh's commands: option parsing as commons-cli does it, and each command's output
//! and error texts as ZooKeeper 3.8 prints them.

use super::format::{self, parse_acl};
use super::{CliError, Shell};
use client::{AddWatchMode, ClientConfig, CreateMode, Error, WatcherType, ZooKeeper};
use std::collections::{HashMap, VecDeque};

pub struct CommandSpec {
    pub name: &'static str,
    pub usage: &'static str,
    /// options: name and whether it takes a value
    pub options: &'static [(&'static str, bool)],
}

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "addWatch", usage: "addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE", options: &[("m", true)] },
    CommandSpec { name: "addauth", usage: "addauth scheme auth", options: &[] },
    CommandSpec { name: "close", usage: "close ", options: &[] },
    CommandSpec { name: "config", usage: "config [-c] [-w] [-s]", options: &[("c", false), ("w", false), ("s", false)] },
    CommandSpec { name: "connect", usage: "connect host:port", options: &[] },
    CommandSpec { name: "create", usage: "create [-s] [-e] [-c] [-t ttl] path [data] [acl]", options: &[("s", false), ("e", false), ("c", false), ("t", true)] },
    CommandSpec { name: "delete", usage: "delete [-v version] path", options: &[("v", true)] },
    CommandSpec { name: "deleteall", usage: "deleteall path [-b batch size]", options: &[("b", true)] },
    CommandSpec { name: "get", usage: "get [-s] [-w] path", options: &[("s", false), ("w", false)] },
    CommandSpec { name: "getAcl", usage: "getAcl [-s] path", options: &[("s", false)] },
    CommandSpec { name: "getAllChildrenNumber", usage: "getAllChildrenNumber path", options: &[] },
    CommandSpec { name: "getEphemerals", usage: "getEphemerals path", options: &[] },
    CommandSpec { name: "history", usage: "history ", options: &[] },
    CommandSpec { name: "ls", usage: "ls [-s] [-w] [-R] path", options: &[("s", false), ("w", false), ("R", false)] },
    CommandSpec { name: "printwatches", usage: "printwatches on|off", options: &[] },
    CommandSpec { name: "quit", usage: "quit ", options: &[] },
    CommandSpec { name: "reconfig", usage: "reconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]", options: &[("s", false), ("v", true), ("file", true), ("members", true), ("add", true), ("remove", true), ("wait", false)] },
    CommandSpec { name: "redo", usage: "redo cmdno", options: &[] },
    CommandSpec { name: "removewatches", usage: "removewatches path [-c|-d|-a] [-l]", options: &[("c", false), ("d", false), ("a", false), ("l", false)] },
    CommandSpec { name: "set", usage: "set [-s] [-v version] path data", options: &[("s", false), ("v", true)] },
    CommandSpec { name: "setAcl", usage: "setAcl [-s] [-v version] [-R] path acl", options: &[("s", false), ("v", true), ("R", false)] },
    CommandSpec { name: "stat", usage: "stat [-w] path", options: &[("w", false)] },
    CommandSpec { name: "sync", usage: "sync path", options: &[] },
    CommandSpec { name: "version", usage: "version ", options: &[] },
    CommandSpec { name: "whoami", usage: "whoami ", options: &[] },
];

/// The list zkCli prints for an unknown command.
pub fn usage_all() -> String {
    let mut s =
        String::from("ZooKeeper -server host:port -client-configuration properties-file cmd args");
    for c in COMMANDS {
        s.push_str("\n\t");
        s.push_str(c.usage);
    }
    s
}

/// A command line parsed as commons-cli's DefaultParser does: options anywhere, the rest
/// positional (args[0] is the command name).
struct Parsed {
    opts: HashMap<&'static str, Option<String>>,
    args: Vec<String>,
}

impl Parsed {
    fn has(&self, o: &str) -> bool {
        self.opts.contains_key(o)
    }
    fn value(&self, o: &str) -> Option<&str> {
        self.opts.get(o).and_then(|v| v.as_deref())
    }
}

fn parse(spec: &CommandSpec, tokens: &[String]) -> Result<Parsed, CliError> {
    let mut opts = HashMap::new();
    let mut args = vec![tokens[0].clone()];
    let mut i = 1;
    let find = |n: &str| spec.options.iter().find(|(o, _)| *o == n).copied();
    while i < tokens.len() {
        let t = &tokens[i];
        i += 1;
        if !(t.starts_with('-') && t.len() > 1) {
            args.push(t.clone());
            continue;
        }
        let name = t.trim_start_matches('-');
        if let Some((o, takes)) = find(name) {
            if takes {
                match tokens.get(i) {
                    Some(v) if !(v.starts_with('-') && v.len() > 1 && find(v.trim_start_matches('-')).is_some()) => {
                        opts.insert(o, Some(v.clone()));
                        i += 1;
                    }
                    _ => {
                        return Err(CliError::Message(format!(
                            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: {o}"
                        )))
                    }
                }
            } else {
                opts.insert(o, None);
            }
            continue;
        }
        // "-v5" (value attached) or "-sw" (several flags)
        let first = &name[..name.chars().next().map_or(0, char::len_utf8)];
        match find(first) {
            Some((o, true)) => {
                opts.insert(o, Some(name[first.len()..].to_owned()));
            }
            Some((_, false))
                if name
                    .chars()
                    .all(|c| matches!(find(&c.to_string()), Some((_, false)))) =>
            {
                for c in name.chars() {
                    let (o, _) = find(&c.to_string()).expect("checked");
                    opts.insert(o, None);
                }
            }
            _ => {
                return Err(CliError::Message(format!(
                    "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {t}"
                )))
            }
        }
    }
    Ok(Parsed { opts, args })
}

fn spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Commands zkCli rejects before it connects (one-shot mode).
pub fn check_syntax(tokens: &[String]) -> Result<(), CliError> {
    let Some(s) = spec(&tokens[0]) else {
        return Err(CliError::NotFound(tokens[0].clone()));
    };
    let p = parse(s, tokens)?;
    let need = match s.name {
        "set" | "setAcl" => 3,
        "ls"
        | "create"
        | "get"
        | "stat"
        | "delete"
        | "deleteall"
        | "getAcl"
        | "sync"
        | "addWatch"
        | "removewatches"
        | "getAllChildrenNumber"
        | "connect"
        | "printwatches"
        | "redo" => 2,
        _ => 1,
    };
    if p.args.len() < need {
        return Err(CliError::Usage(s.usage));
    }
    Ok(())
}

/// CliWrapperException's texts for a KeeperException about `path`.
/// `parent`'s child `name` as a full path.
fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

fn keeper(e: Error, path: &str) -> CliError {
    let m = match &e {
        Error::NoNode => format!("Node does not exist: {path}"),
        Error::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        Error::NodeExists => format!("Node already exists: {path}"),
        Error::NotEmpty => format!("Node not empty: {path}"),
        Error::NotReadOnly => format!("Not a read-only call: {path}"),
        Error::InvalidAcl => format!("Acl is not valid : {path}"),
        Error::NoAuth => format!("Insufficient permission : {path}"),
        Error::BadArguments => format!("Arguments are not valid : {path}"),
        Error::BadVersion => format!("version No is not valid : {path}"),
        Error::ReconfigInProgress => {
            "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)"
                .into()
        }
        Error::NewConfigNoQuorum { hint } => {
            let mut m = String::from(
                "No quorum of new config is connected and up-to-date with the leader of last \
                 committed config - try invoking reconfiguration after new servers are connected \
                 and synced",
            );
            if let Some(h) = hint {
                // zkrs: what to do instead
                m.push_str(&format!("\nHint: {h}"));
            }
            m
        }
        Error::InvalidArgument(m) => m.clone(),
        other if path.is_empty() => other.keeper_message(None),
        other => other.keeper_message(Some(path)),
    };
    CliError::Message(m)
}

fn version_arg(p: &Parsed) -> Result<i32, CliError> {
    match p.value("v") {
        None => Ok(-1),
        Some(v) => v.parse().map_err(|_| {
            CliError::Message(format!(
                "java.lang.NumberFormatException: For input string: \"{v}\""
            ))
        }),
    }
}

fn deprecated(p: &mut Parsed, name: &str, new: &str) {
    if p.args.len() > 2 {
        eprintln!("'{name} path [watch]' has been deprecated. Please use '{new}' instead.");
        p.opts.insert("w", None);
    }
}

pub fn dispatch(shell: &mut Shell, tokens: &[String]) -> Result<(), CliError> {
    let Some(s) = spec(&tokens[0]) else {
        return Err(CliError::NotFound(tokens[0].clone()));
    };
    let mut p = parse(s, tokens)?;
    check_syntax(tokens)?;
    // commands that need no session
    match s.name {
        "quit" => {
            shell.quit = true;
            shell.close();
            return Ok(());
        }
        "close" => {
            shell.close();
            return Ok(());
        }
        "connect" => {
            shell.host = p.args[1].clone();
            shell.connect();
            return Ok(());
        }
        "history" => {
            let n = shell.history.len();
            for (i, h) in shell.history.iter().enumerate().skip(n.saturating_sub(11)) {
                println!("{i} - {h}");
            }
            return Ok(());
        }
        "redo" => {
            let i: usize = p.args[1].parse().map_err(|_| CliError::Usage(s.usage))?;
            let line = shell
                .history
                .get(i)
                .cloned()
                .ok_or(CliError::Message("Command index out of range".into()))?;
            shell.history.push(line.clone());
            return shell.execute(&format::tokenize(&line));
        }
        "printwatches" => {
            shell.print_watches = p.args[1] == "on";
            return Ok(());
        }
        "version" => {
            println!("ZooKeeper CLI version: zkrs {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        _ => {}
    }
    let Some(zk) = shell.zk.clone().filter(|z| z.state().is_alive()) else {
        println!("Not connected");
        return Ok(());
    };
    let name = s.name;
    // the output is printed after the events that arrived before the reply, as zkCli's
    // event thread prints them first
    let mut out = String::new();
    let result = shell.block_on(run(name, s, &mut p, &zk, &mut out));
    shell.drain_events();
    print!("{out}");
    result
}

macro_rules! outln {
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}

/// The order of ZKUtil.visitSubTreeDFS below `path` (children sorted).
async fn visit_dfs(zk: &ZooKeeper, path: &str, order: &mut Vec<String>) {
    let Ok(mut children) = zk.get_children(path, false).await else {
        return;
    };
    children.sort();
    let paths: Vec<String> = children.iter().map(|c| child_path(path, c)).collect();
    order.extend(paths.iter().cloned());
    for child in paths {
        Box::pin(visit_dfs(zk, &child, order)).await;
    }
}

async fn run(
    name: &str,
    s: &'static CommandSpec,
    p: &mut Parsed,
    zk: &ZooKeeper,
    out: &mut String,
) -> Result<(), CliError> {
    let usage = || CliError::Usage(s.usage);
    match name {
        "ls" => {
            deprecated(p, "ls", "ls [-w] path");
            let path = p.args[1].as_str();
            if p.has("R") {
                // ZKUtil.listSubTreeBFS
                let mut queue = VecDeque::from([path.to_owned()]);
                let mut nodes = vec![path.to_owned()];
                while let Some(node) = queue.pop_front() {
                    let mut children = zk
                        .get_children(&node, false)
                        .await
                        .map_err(|e| keeper(e, path))?;
                    children.sort();
                    for c in children {
                        let child = child_path(&node, &c);
                        queue.push_back(child.clone());
                        nodes.push(child);
                    }
                }
                for n in nodes {
                    outln!(out, "{n}");
                }
            } else if p.has("s") {
                let (mut children, stat) = zk
                    .get_children2(path, p.has("w"))
                    .await
                    .map_err(|e| keeper(e, path))?;
                children.sort();
                outln!(out, "{}", format::list(&children));
                outln!(out, "{}", format::stat(&stat));
            } else {
                let mut children = zk
                    .get_children(path, p.has("w"))
                    .await
                    .map_err(|e| keeper(e, path))?;
                children.sort();
                outln!(out, "{}", format::list(&children));
            }
        }
        "create" => {
            let path = p.args[1].as_str();
            let (e, sq, c) = (p.has("e"), p.has("s"), p.has("c"));
            let ttl = match p.value("t") {
                Some(t) => Some(t.parse::<i64>().map_err(|_| {
                    CliError::Message(format!(
                        "java.lang.NumberFormatException: For input string: \"{t}\""
                    ))
                })?),
                None => None,
            };
            if c && (e || sq) {
                return Err(CliError::Message(
                    "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.".into(),
                ));
            }
            if ttl.is_some() && (e || c) {
                return Err(CliError::Message(
                    "TTLs cannot be used with Ephemeral or Container nodes.".into(),
                ));
            }
            let mode = match (e, sq, c, ttl.is_some()) {
                (_, true, _, true) => CreateMode::PersistentSequentialWithTtl,
                (_, false, _, true) => CreateMode::PersistentWithTtl,
                (true, true, _, _) => CreateMode::EphemeralSequential,
                (true, false, _, _) => CreateMode::Ephemeral,
                (false, true, _, _) => CreateMode::PersistentSequential,
                (false, false, true, _) => CreateMode::Container,
                _ => CreateMode::Persistent,
            };
            let data = p.args.get(2).map(|d| d.as_bytes().to_vec());
            let acl = match p.args.get(3) {
                Some(a) => {
                    let mut errs = Vec::new();
                    let acl = parse_acl(a, &mut errs);
                    for e in errs {
                        eprintln!("{e}");
                    }
                    if acl.is_empty() {
                        eprintln!("KeeperErrorCode = InvalidACL");
                        return Err(CliError::Message("Acl is not valid : null".into()));
                    }
                    acl
                }
                None => client::open_acl(),
            };
            let created = if let Some(ttl) = ttl {
                zk.create_ttl(path, data.as_deref().unwrap_or_default(), &acl, mode, ttl)
                    .await
                    .map(|(p, _)| p)
            } else if data.is_none() {
                zk.create_null(path, &acl, mode).await
            } else {
                zk.create(path, data.as_deref().unwrap_or_default(), &acl, mode)
                    .await
            };
            let created = created.map_err(|e| keeper(e, path))?;
            outln!(out, "Created {created}");
        }
        "get" => {
            deprecated(p, "get", "get [-s] [-w] path");
            let path = p.args[1].as_str();
            let (data, stat) = zk
                .get_data(path, p.has("w"))
                .await
                .map_err(|e| keeper(e, path))?;
            match data {
                Some(d) => outln!(out, "{}", String::from_utf8_lossy(&d)),
                None => outln!(out, "null"),
            }
            if p.has("s") {
                outln!(out, "{}", format::stat(&stat));
            }
        }
        "set" => {
            let path = p.args[1].as_str();
            let version = version_arg(p)?;
            let stat = zk
                .set_data(path, p.args[2].as_bytes(), version)
                .await
                .map_err(|e| keeper(e, path))?;
            if p.has("s") {
                outln!(out, "{}", format::stat(&stat));
            }
        }
        "stat" => {
            deprecated(p, "stat", "stat [-w] path");
            let path = p.args[1].as_str();
            match zk
                .exists(path, p.has("w"))
                .await
                .map_err(|e| keeper(e, path))?
            {
                Some(stat) => outln!(out, "{}", format::stat(&stat)),
                None => return Err(keeper(Error::NoNode, path)),
            }
        }
        "delete" => {
            let path = p.args[1].as_str();
            let version = version_arg(p)?;
            zk.delete(path, version)
                .await
                .map_err(|e| keeper(e, path))?;
        }
        "deleteall" => {
            let path = p.args[1].as_str();
            let batch: usize = match p.value("b") {
                Some(b) => b.parse().map_err(|_| usage())?,
                None => 1000,
            };
            if !delete_recursive(zk, path, batch.max(1))
                .await
                .map_err(|e| keeper(e, path))?
            {
                outln!(out, "Failed to delete some node(s) in the subtree!");
            }
        }
        "getAcl" => {
            let path = p.args[1].as_str();
            let (acl, stat) = zk.get_acl(path).await.map_err(|e| keeper(e, path))?;
            for a in &acl {
                outln!(out, "{}", format::acl(a));
            }
            if p.has("s") {
                outln!(out, "{}", format::stat(&stat));
            }
        }
        "setAcl" => {
            let path = p.args[1].as_str();
            let version = version_arg(p)?;
            let mut errs = Vec::new();
            let acl = parse_acl(&p.args[2], &mut errs);
            for e in errs {
                eprintln!("{e}");
            }
            if acl.is_empty() {
                return Err(CliError::Message("Acl is not valid : null".into()));
            }
            if p.has("R") {
                // ZKUtil.visitSubTreeDFS: a node, its children, then each child's subtree;
                // a failure is printed (without a newline, as zkCli does) and skipped
                zk.get_data(path, false)
                    .await
                    .map_err(|e| keeper(e, path))?;
                let mut order = vec![path.to_owned()];
                visit_dfs(zk, path, &mut order).await;
                for node in order {
                    if let Err(e) = zk.set_acl(&node, &acl, version).await {
                        out.push_str(&e.keeper_message(Some(&node)));
                    }
                }
            } else {
                let stat = zk
                    .set_acl(path, &acl, version)
                    .await
                    .map_err(|e| keeper(e, path))?;
                if p.has("s") {
                    outln!(out, "{}", format::stat(&stat));
                }
            }
        }
        "addauth" => {
            // zkCli does not wait for the answer; a failure shows as an AuthFailed event
            let auth = p.args.get(2).map(|a| a.as_bytes());
            let _ = zk.add_auth_info(&p.args[1], auth).await;
        }
        "sync" => {
            let path = p.args[1].as_str();
            match zk.sync(path).await {
                Ok(()) => outln!(out, "Sync is OK"),
                Err(e) => outln!(out, "Sync returned {}", e.code()),
            }
        }
        "addWatch" => {
            let path = p.args[1].as_str();
            let mode = match p.value("m") {
                None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
                Some("PERSISTENT") => AddWatchMode::Persistent,
                Some(_) => return Err(usage()),
            };
            zk.add_watch(path, mode)
                .await
                .map_err(|e| keeper(e, path))?;
        }
        "removewatches" => {
            let path = p.args[1].as_str();
            let t = if p.has("c") {
                WatcherType::Children
            } else if p.has("d") {
                WatcherType::Data
            } else {
                WatcherType::Any
            };
            zk.remove_watches(path, t, p.has("l"))
                .await
                .map_err(|e| match e {
                    Error::InvalidArgument(_) => keeper(e, path),
                    e => CliError::Message(e.keeper_message(Some(path))),
                })?;
        }
        "whoami" => {
            let who = zk.who_am_i().await.map_err(|e| keeper(e, ""))?;
            outln!(out, "Auth scheme: User");
            for c in who {
                outln!(out, "{}: {}", c.auth_scheme, c.user);
            }
        }
        "getEphemerals" => {
            let path = p.args.get(1).map_or("/", String::as_str);
            let list = zk.get_ephemerals(path).await.map_err(|e| keeper(e, path))?;
            outln!(out, "{}", format::list(&list));
        }
        "getAllChildrenNumber" => {
            let path = p.args[1].as_str();
            let n = zk
                .get_all_children_number(path)
                .await
                .map_err(|e| keeper(e, path))?;
            outln!(out, "{n}");
        }
        "config" => {
            let (data, stat) = zk.get_config(p.has("w")).await.map_err(|e| keeper(e, ""))?;
            let text = String::from_utf8_lossy(&data).into_owned();
            if p.has("c") {
                match ClientConfig::parse(&text) {
                    Some(c) => outln!(out, "{}", c.to_client_config_str()),
                    None => outln!(out, "{text}"),
                }
            } else {
                outln!(out, "{text}");
            }
            if p.has("s") {
                outln!(out, "{}", format::stat(&stat));
            }
        }
        "reconfig" => reconfig(p, zk, s, out).await?,
        _ => return Err(CliError::NotFound(name.to_owned())),
    }
    Ok(())
}

async fn reconfig(
    p: &Parsed,
    zk: &ZooKeeper,
    s: &'static CommandSpec,
    out: &mut String,
) -> Result<(), CliError> {
    let incremental = p.has("add") || p.has("remove");
    if (p.has("file") || p.has("members")) && incremental {
        return Err(CliError::Message(
            "Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)".into(),
        ));
    }
    if p.has("file") && p.has("members") {
        return Err(CliError::Message(
            "Can't use -file and -members together (conflicting non-incremental modes)".into(),
        ));
    }
    if !incremental && !p.has("file") && !p.has("members") {
        return Err(CliError::Usage(s.usage));
    }
    let version: i64 = match p.value("v") {
        None => -1,
        Some(v) => i64::from_str_radix(v.trim_start_matches("0x"), 16).map_err(|_| {
            CliError::Message(format!(
                "java.lang.NumberFormatException: For input string: \"{v}\""
            ))
        })?,
    };
    let members = match p.value("file") {
        Some(f) => Some(members_from_file(f)?),
        None => p.value("members").map(str::to_owned),
    };
    let (joining, leaving) = (p.value("add"), p.value("remove"));
    let result = if p.has("wait") {
        zk.reconfig_and_wait(joining, leaving, members.as_deref(), version)
            .await
    } else {
        zk.reconfig(joining, leaving, members.as_deref(), version)
            .await
    };
    let (data, stat) = result.map_err(|e| keeper(e, ""))?;
    outln!(
        out,
        "Committed new configuration:\n{}",
        String::from_utf8_lossy(&data)
    );
    if p.has("s") {
        outln!(out, "{}", format::stat(&stat));
    }
    Ok(())
}

/// `reconfig -file`: the server lines of a dynamic configuration file, checked as the CLI
/// does before sending them.
fn members_from_file(path: &str) -> Result<String, CliError> {
    let err = |m: String| CliError::Message(format!("Error processing {path}{m}"));
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(err(format!("{path} (No such file or directory)")))
        }
        Err(e) if std::path::Path::new(path).is_dir() => {
            let _ = e;
            return Err(err(format!("{path} (Is a directory)")));
        }
        Err(e) => return Err(err(format!("{path} ({e})"))),
    };
    let props = config::java_props::load_java_properties(&text).map_err(err)?;
    let mut lines = Vec::new();
    for (k, v) in props {
        let k = k.trim();
        if let Some(id) = k.strip_prefix("server.") {
            let id: u64 = id
                .parse()
                .map_err(|_| err(format!("{k} is not a valid server id")))?;
            config::ServerSpec::parse(id, v.trim()).map_err(|_| {
                err(format!(
                    "{} does not have the form server_config or server_config;client_config where server_config is the pipe separated list of host:port:port or host:port:port:type and client_config is port or host:port",
                    v.trim()
                ))
            })?;
            lines.push(format!("{k}={}", v.trim()));
        } else if k.starts_with("group.") || k.starts_with("weight.") {
            lines.push(format!("{k}={}", v.trim()));
        }
    }
    Ok(lines.join("\n"))
}

/// ZKUtil.deleteRecursive: the subtree in BFS order, deleted leaves first in multis of
/// `batch` deletes. Ok(false) when some node could not be deleted.
async fn delete_recursive(zk: &ZooKeeper, path: &str, batch: usize) -> Result<bool, Error> {
    let mut tree = vec![path.to_owned()];
    let mut queue = VecDeque::from([path.to_owned()]);
    while let Some(node) = queue.pop_front() {
        let children = match zk.get_children(&node, false).await {
            Ok(c) => c,
            Err(Error::NoNode) if node != path => continue,
            Err(e) => return Err(e),
        };
        for c in children {
            let child = child_path(&node, &c);
            queue.push_back(child.clone());
            tree.push(child);
        }
    }
    let mut ok = true;
    let ops: Vec<client::Op> = tree
        .iter()
        .rev()
        .map(|p| client::Op::Delete {
            path: p.clone(),
            version: -1,
        })
        .collect();
    for chunk in ops.chunks(batch) {
        if zk.multi(chunk).await.is_err() {
            // as ZooKeeper: the batch failed; try its deletes one by one
            for op in chunk {
                if zk.delete(op.path(), -1).await.is_err() {
                    ok = false;
                }
            }
        }
    }
    Ok(ok)
}
