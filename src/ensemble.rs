//! `zkrs ensemble`: a local replicated ensemble in one command, for trying zkrs (and its
//! reconfiguration) on one machine: separate `zkrs server` processes, each with its own
//! ports, zoo.cfg and dataDir under one folder.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct EnsembleArgs {
    #[command(subcommand)]
    command: EnsembleCommand,
}

#[derive(Subcommand)]
enum EnsembleCommand {
    /// Start N participants (and observers) on loopback, print the connect string.
    Start {
        /// Number of voting servers.
        servers: u32,
        /// Observers in addition to the voting servers.
        #[arg(long, default_value_t = 0)]
        observers: u32,
        /// Folder holding each server's zoo.cfg, dataDir and log.
        #[arg(long, default_value = "zkrs-ensemble")]
        dir: PathBuf,
        /// Client port of server 1; server N listens on base+N-1.
        #[arg(long, default_value_t = 2181)]
        client_port: u16,
        /// Quorum port of server 1 (election ports are 1000 above).
        #[arg(long, default_value_t = 2888)]
        quorum_port: u16,
        #[arg(long, default_value_t = 2000)]
        tick_time: u32,
    },
    /// Stop every server of the ensemble in the folder.
    Stop {
        #[arg(long, default_value = "zkrs-ensemble")]
        dir: PathBuf,
    },
    /// Each server's mode (leader, follower, observer) and last zxid.
    Status {
        #[arg(long, default_value = "zkrs-ensemble")]
        dir: PathBuf,
    },
}

pub fn run(args: EnsembleArgs) -> anyhow::Result<()> {
    match args.command {
        EnsembleCommand::Start {
            servers,
            observers,
            dir,
            client_port,
            quorum_port,
            tick_time,
        } => start(
            servers,
            observers,
            &dir,
            client_port,
            quorum_port,
            tick_time,
        ),
        EnsembleCommand::Stop { dir } => stop(&dir),
        EnsembleCommand::Status { dir } => {
            for (id, port) in members(&dir)? {
                let mode = four_letter_word(port, "srvr")
                    .map(|text| summary(&text))
                    .unwrap_or_else(|_| "not running".into());
                println!("server.{id} 127.0.0.1:{port}  {mode}");
            }
            Ok(())
        }
    }
}

fn start(
    servers: u32,
    observers: u32,
    dir: &Path,
    client_port: u16,
    quorum_port: u16,
    tick_time: u32,
) -> anyhow::Result<()> {
    if servers == 0 {
        bail!("an ensemble needs at least one voting server");
    }
    if dir.join("1").join("pid").exists() {
        bail!(
            "{} already holds an ensemble; `zkrs ensemble stop --dir {}` first",
            dir.display(),
            dir.display()
        );
    }
    let total = servers + observers;
    let mut lines = String::new();
    for id in 1..=total {
        let role = if id > servers { ":observer" } else { "" };
        let q = quorum_port + id as u16 - 1;
        let e = q + 1000;
        let c = client_port + id as u16 - 1;
        lines.push_str(&format!(
            "server.{id}=127.0.0.1:{q}:{e}{role};127.0.0.1:{c}\n"
        ));
    }
    let exe = std::env::current_exe().context("cannot find the zkrs binary")?;
    for id in 1..=total {
        let home = dir.join(id.to_string());
        let data = home.join("data");
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        std::fs::write(data.join("myid"), format!("{id}\n"))?;
        let peer_type = if id > servers {
            "peerType=observer\n"
        } else {
            ""
        };
        let cfg = format!(
            "tickTime={tick_time}\ninitLimit=10\nsyncLimit=5\ndataDir={}\n4lw.commands.whitelist=*\n{peer_type}{lines}",
            std::fs::canonicalize(&data)?.display()
        );
        let cfg_path = home.join("zoo.cfg");
        std::fs::write(&cfg_path, cfg)?;
        let log = std::fs::File::create(home.join("server.log"))?;
        let child = std::process::Command::new(&exe)
            .arg("server")
            .arg(&cfg_path)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start server {id}"))?;
        std::fs::write(home.join("pid"), child.id().to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for (id, port) in members(dir)? {
        loop {
            match four_letter_word(port, "srvr") {
                Ok(text) if text.contains("Mode:") => {
                    println!("server.{id} 127.0.0.1:{port}  {}", summary(&text));
                    break;
                }
                _ if Instant::now() > deadline => bail!(
                    "server {id} is not serving after 30 s; see {}",
                    dir.join(id.to_string()).join("server.log").display()
                ),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    let connect: Vec<String> = (1..=total)
        .map(|id| format!("127.0.0.1:{}", client_port + id as u16 - 1))
        .collect();
    println!("connect string: {}", connect.join(","));
    Ok(())
}

fn stop(dir: &Path) -> anyhow::Result<()> {
    let mut stopped = 0;
    for (id, _) in members(dir)? {
        let pid_file = dir.join(id.to_string()).join("pid");
        let Ok(text) = std::fs::read_to_string(&pid_file) else {
            continue;
        };
        let pid: i32 = text.trim().parse().context("bad pid file")?;
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            // already gone is fine
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        std::fs::remove_file(&pid_file)?;
        stopped += 1;
    }
    println!("stopped {stopped} servers");
    Ok(())
}

/// (server id, client port) of each server in the folder, from its zoo.cfg.
fn members(dir: &Path) -> anyhow::Result<Vec<(u32, u16)>> {
    let mut out = Vec::new();
    for id in 1.. {
        let cfg = dir.join(id.to_string()).join("zoo.cfg");
        let Ok(text) = std::fs::read_to_string(&cfg) else {
            break;
        };
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("server.{id}=")))
            .with_context(|| format!("{}: no server.{id} line", cfg.display()))?;
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .with_context(|| format!("{}: no client port on server.{id}", cfg.display()))?;
        out.push((id, port));
    }
    if out.is_empty() {
        bail!("no ensemble in {}", dir.display());
    }
    Ok(out)
}

fn four_letter_word(port: u16, word: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn summary(srvr: &str) -> String {
    let field = |name: &str| {
        srvr.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or("?")
            .to_owned()
    };
    if !srvr.contains("Mode:") {
        return "not serving".into();
    }
    format!("{} zxid {}", field("Mode:"), field("Zxid:"))
}
