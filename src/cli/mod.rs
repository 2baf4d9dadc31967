//! `zkrs cli`: a shell compatible with ZooKeeper 3.8's zkCli.sh — the same commands, flags,
//! output formats, error texts and exit codes — built on the `client` crate.
//!
//! `zkrs cli -server HOST:PORT CMD ARGS…` runs one command (exit code 0 on success, 1 on
//! an error, 127 for an unknown command); without a command it reads commands from the
//! terminal (line editing, history, completion of command names) or, when stdin is not a
//! terminal, one per line from stdin (the exit code is the last command's).
//!
//! zkrs extension: `reconfig … -wait` returns only once the new configuration is in force
//! and every earlier operation is committed (client::ZooKeeper::reconfig_and_wait).

mod commands;
mod format;

use client::{WatchedEvent, ZooKeeper};
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedReceiver;

pub use commands::COMMANDS;

/// How a command failed: zkCli prints the message on stderr and sets the exit code.
#[derive(Debug)]
pub enum CliError {
    /// print the command's usage line
    Usage(&'static str),
    Message(String),
    NotFound(String),
}

impl CliError {
    fn exit_code(&self) -> i32 {
        match self {
            CliError::NotFound(_) => 127,
            _ => 1,
        }
    }
}

/// The shell's state: the session (if any), how events are printed, the history.
pub struct Shell {
    rt: Runtime,
    pub host: String,
    pub timeout_ms: i32,
    pub zk: Option<ZooKeeper>,
    events: Option<UnboundedReceiver<WatchedEvent>>,
    pub print_watches: bool,
    interactive: bool,
    pub history: Vec<String>,
    pub quit: bool,
}

impl Shell {
    fn new(host: String, timeout_ms: i32, interactive: bool) -> std::io::Result<Shell> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(Shell {
            rt,
            host,
            timeout_ms,
            zk: None,
            events: None,
            print_watches: true,
            interactive,
            history: Vec::new(),
            quit: false,
        })
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Opens a session to `self.host` (as ZooKeeperMain.connectToZK), printing the
    /// connection event like any other watch event.
    pub fn connect(&mut self) {
        if let Some(old) = self.zk.take() {
            let _ = self.rt.block_on(old.close());
            self.drain_events();
        }
        let host = self.host.clone();
        let timeout = self.timeout_ms;
        let result = self.rt.block_on(async move {
            ZooKeeper::builder(&host)
                .session_timeout(timeout)
                .connect_timeout(Duration::from_millis(timeout.max(1000) as u64))
                .connect()
                .await
        });
        match result {
            Ok(zk) => {
                let events = zk.take_events();
                self.zk = Some(zk);
                if self.interactive {
                    // a terminal: events are printed as they come, as zkCli's watcher does
                    if let Some(mut rx) = events {
                        self.rt.spawn(async move {
                            while let Some(ev) = rx.recv().await {
                                print_event(&ev);
                            }
                        });
                    }
                    self.events = None;
                } else {
                    self.events = events;
                }
                self.drain_events();
            }
            Err(e) => {
                eprintln!("Unable to connect to {}: {e}", self.host);
                self.zk = None;
            }
        }
    }

    /// Prints the events that arrived so far (non-interactive mode: at command boundaries,
    /// so that the output is deterministic).
    pub fn drain_events(&mut self) {
        let print = self.print_watches;
        if let Some(rx) = self.events.as_mut() {
            while let Ok(ev) = rx.try_recv() {
                if print {
                    print_event(&ev);
                }
            }
        }
    }

    pub fn close(&mut self) {
        if let Some(zk) = self.zk.take() {
            let _ = self.rt.block_on(zk.close());
        }
        self.drain_events();
    }

    /// At the end of input or of a one-shot command: the session is closed, and what it
    /// causes (the Closed event, watches fired by its ephemerals) is not printed — zkCli
    /// exits without waiting for them.
    fn close_silently(&mut self) {
        self.events = None;
        if let Some(zk) = self.zk.take() {
            let _ = self.rt.block_on(zk.close());
        }
    }

    /// Runs one tokenized command line; Ok or the error zkCli would print.
    pub fn execute(&mut self, tokens: &[String]) -> Result<(), CliError> {
        if tokens.is_empty() {
            return Ok(());
        }
        commands::dispatch(self, tokens)
    }

    fn run_line(&mut self, line: &str, exit_code: &mut i32) {
        let tokens = format::tokenize(line);
        if tokens.is_empty() {
            return;
        }
        self.history.push(line.to_owned());
        let result = self.execute(&tokens);
        self.drain_events();
        *exit_code = report(result);
    }
}

fn print_event(ev: &WatchedEvent) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\nWATCHER::\n\n{ev}");
}

/// Prints an error as zkCli does and returns the exit code.
fn report(result: Result<(), CliError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            let code = e.exit_code();
            match e {
                CliError::Usage(u) => eprintln!("{u}"),
                CliError::Message(m) => eprintln!("{m}"),
                CliError::NotFound(cmd) => {
                    eprintln!("{}", commands::usage_all());
                    eprintln!("Command not found: Command not found {cmd}");
                }
            }
            code
        }
    }
}

/// Entry point of `zkrs cli ARGS…` (ZooKeeperMain's options); returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let mut host = "localhost:2181".to_owned();
    let mut timeout_ms = 30_000;
    let mut command: Vec<String> = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if !command.is_empty() {
            command.push(a);
            continue;
        }
        match a.as_str() {
            "-server" => match it.next() {
                Some(h) => host = h,
                None => return usage_error("-server needs host:port"),
            },
            "-timeout" => match it.next().and_then(|t| t.parse().ok()) {
                Some(t) => timeout_ms = t,
                None => return usage_error("-timeout needs milliseconds"),
            },
            "-r" | "-waitforconnection" => {}
            "-client-configuration" => {
                let _ = it.next();
            }
            _ => command.push(a),
        }
    }
    let interactive = command.is_empty() && std::io::stdin().is_terminal();
    let mut shell = match Shell::new(host, timeout_ms, interactive) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return 1;
        }
    };
    println!("Connecting to {}", shell.host);
    if !command.is_empty() {
        // one-shot: a malformed command fails before connecting, as in zkCli
        if let Err(e) = commands::check_syntax(&command) {
            return report(Err(e));
        }
        shell.connect();
        let code = report(shell.execute(&command));
        shell.drain_events();
        shell.close_silently();
        return code;
    }
    if !interactive {
        println!("Welcome to ZooKeeper!");
        println!("JLine support is disabled");
    }
    shell.connect();
    let mut exit_code = 0;
    if interactive {
        repl(&mut shell, &mut exit_code);
    } else {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            shell.run_line(&line, &mut exit_code);
            if shell.quit {
                break;
            }
        }
    }
    shell.close_silently();
    exit_code
}

fn usage_error(msg: &str) -> i32 {
    eprintln!("{msg}\nZooKeeper -server host:port -client-configuration properties-file cmd args");
    1
}

/// Completion of command names (the first word of the line).
struct Helper;

impl rustyline::completion::Completer for Helper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let head = &line[..pos];
        if head.contains(char::is_whitespace) {
            return Ok((pos, Vec::new()));
        }
        let names = COMMANDS
            .iter()
            .map(|c| c.name)
            .filter(|n| n.starts_with(head))
            .map(|n| format!("{n} "))
            .collect();
        Ok((0, names))
    }
}
impl rustyline::hint::Hinter for Helper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Helper {}
impl rustyline::validate::Validator for Helper {}
impl rustyline::Helper for Helper {}

fn history_path() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".zkrs_cli_history"))
}

fn repl(shell: &mut Shell, exit_code: &mut i32) {
    let mut editor = match rustyline::Editor::<Helper, rustyline::history::DefaultHistory>::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("no line editor ({e}); reading lines plainly");
            let stdin = std::io::stdin();
            for line in stdin.lock().lines().map_while(Result::ok) {
                shell.run_line(&line, exit_code);
                if shell.quit {
                    break;
                }
            }
            return;
        }
    };
    editor.set_helper(Some(Helper));
    if let Some(p) = history_path() {
        let _ = editor.load_history(&p);
    }
    loop {
        let state = match shell.zk.as_ref().map(|z| z.state()) {
            Some(client::KeeperState::SyncConnected) => "CONNECTED",
            Some(client::KeeperState::Disconnected) => "CONNECTING",
            _ => "CLOSED",
        };
        let prompt = format!("[zk: {}({state}) {}] ", shell.host, shell.history.len());
        match editor.readline(&prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                shell.run_line(&line, exit_code);
                if shell.quit {
                    break;
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
    if let Some(p) = history_path() {
        let _ = editor.save_history(&p);
    }
}
