//! Deterministic simulation of a ZooKeeper ensemble: every server is the real
//! [`zab::peer::Peer`] plus a real [`tree::DataTree`], on in-memory storage that loses what
//! was not yet reported durable when the server crashes, connected by a simulated network
//! that delays, drops, duplicates and reorders election notifications, breaks and stalls
//! quorum connections (TCP: in order, no duplicates) and partitions servers; servers also
//! pause (a long GC) and their disks are slow at times. A seeded random generator decides
//! everything, so a run is a function of its seed: a failing seed reproduces exactly.
//!
//! The simulator is a second runtime for the peer, so it follows the server runtime's
//! contract: outputs are executed in order; `Durable` reports come in log order and only for
//! what was fsynced (a report may still cross a later truncation); a learner's connection
//! reaching a server that still looks is kept until it leads, one reaching a follower is
//! closed; a connection's loss is reported only for the connection in use, and a learner's
//! new connection supersedes its old one (reported lost first); a SNAP carries the leader's
//! applied tree, and TRUNC, SNAP and epoch writes are on disk when they return.
//!
//! Checked after every step (see [`check`]):
//! - at most one leader establishes each epoch, with a history holding everything committed
//!   in earlier epochs;
//! - every server that commits a zxid commits the same txn there, and the ensemble's
//!   committed sequence only grows at its end (a server never commits past a hole);
//! - a serving server's applied sequence is a prefix of the committed sequence, and what a
//!   Commit hands over is exactly what the log holds;
//! - every committed txn is, and stays, durable on a quorum of voters (whatever crashes,
//!   truncations and snapshots); the log ascends; epochs on disk never go back;
//! - acknowledged writes respect real time (a write invoked after another was acknowledged
//!   gets a higher zxid), and a read on an established leader sees every write acknowledged
//!   in its epoch or before (a register's linearizability, as far as ZooKeeper promises it
//!   for reads on the leader);
//! - a read after `sync` (answered as the server does: once the leader's read barrier
//!   passed and what it proposed before has committed) sees every write acknowledged anywhere
//!   before the sync, even on a leader that was deposed without knowing it yet.
//!
//! After the faults stop, the network heals and every server restarts: the ensemble must
//! elect a leader again, serve on every server, commit a new write, and hold every
//! acknowledged write on every server.
//!
//! **Dynamic reconfiguration** ([`SimConfig::for_reconfig_seed`], `reconfig: true`): peers
//! run with reconfigEnabled, as the server runtime builds them; a few extra servers start as
//! joiners (their initial configuration is the members plus themselves as observers, the
//! manual's safe way) and follow without a vote until added. Election notifications carry
//! the sender's active configuration (a looking server adopts a newer one); the disk keeps
//! the last activated configuration (the dynamic file, written at `ConfigActivated`), and a
//! restart boots with it plus, as proposed ("last seen"), a newer reconfig still in its log.
//! Meanwhile, with all the faults above, a reconfiguration client submits random requests to
//! a serving leader: incremental removals of a follower or of the leader, additions of
//! joiners as participants or observers, role changes, quorum and election port changes;
//! bulk replacements of the whole membership, majority or hierarchical (groups, weights, some
//! zero); conditional ones on the current or a stale version; and invalid ones (no
//! participant left, voters not connected and synced). Each is validated by
//! `zab::reconfig::next_config` and must give exactly the configuration (or the ZooKeeper
//! error code: ReconfigInProgress, BadVersion, BadArguments, NewConfigNoQuorum) the
//! simulator computes on its own; what is accepted is proposed as a reconfig txn and
//! acknowledged when the same leader term commits it. Checked on top of the above:
//! - every server's active configuration is its initial one, the initial membership versioned
//!   by an established epoch, or the configuration of a committed reconfig (members, quorum
//!   system and version equal);
//! - a server's active configuration version never decreases, across crashes too;
//! - a reconfig commits with a quorum of the old and of the new configuration durable, and
//!   from then on every committed txn stays durable on a quorum of the configuration last
//!   committed (checked for all of them at that moment, and at every truncation and
//!   snapshot load); one leader per epoch holds across configuration changes;
//! - every acknowledged write and reconfig is on every server at the end, every server runs
//!   the configuration last committed, and the leader is one of its voters.
//!
//! ```no_run
//! let stats = sim::run(&sim::SimConfig::for_seed(42)).unwrap_or_else(|f| panic!("{f}"));
//! println!("{stats:?}");
//! ```

pub mod check;
pub mod cluster;
mod net;
pub mod rng;
mod server;
mod world;

use std::fmt;

/// What can go wrong, and how often. Probabilities are per message; rates per fault draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Election notifications lost.
    pub drop_notification: f64,
    /// Election notifications delivered twice.
    pub duplicate_notification: f64,
    /// Crash servers (and restart them later from their disk).
    pub crashes: bool,
    /// Isolate random groups of servers for a while.
    pub partitions: bool,
    /// Break random quorum connections.
    pub connection_breaks: bool,
    /// Pause servers for a while (a long GC pause): they handle nothing, then everything.
    pub pauses: bool,
    /// Messages and fsyncs that take much longer than usual.
    pub delay_spikes: f64,
    /// On a crash, part of the log that was written but not reported durable may survive
    /// (a process crash keeps the page cache; a machine crash does not).
    pub unsynced_may_survive: bool,
}

impl Faults {
    pub fn all() -> Faults {
        Faults {
            drop_notification: 0.05,
            duplicate_notification: 0.03,
            crashes: true,
            partitions: true,
            connection_breaks: true,
            pauses: true,
            delay_spikes: 0.01,
            unsynced_may_survive: true,
        }
    }

    pub fn none() -> Faults {
        Faults {
            drop_notification: 0.0,
            duplicate_notification: 0.0,
            crashes: false,
            partitions: false,
            connection_breaks: false,
            pauses: false,
            delay_spikes: 0.0,
            unsynced_may_survive: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub seed: u64,
    /// Participants (voters): 3 to 7.
    pub voters: usize,
    /// Observers, numbered after the voters.
    pub observers: usize,
    /// How long faults are injected (simulated ms); the client workload runs meanwhile.
    pub fault_ms: u64,
    /// After healing: how long the ensemble gets to elect and catch up before the final checks.
    pub settle_ms: u64,
    pub faults: Faults,
    /// Keys of the register workload.
    pub keys: usize,
    /// Zab's tick (ms) and limits (in ticks).
    pub tick_ms: u64,
    pub init_limit: u64,
    pub sync_limit: u64,
    /// Dynamic reconfiguration: peers run with reconfigEnabled, `spares` extra servers start
    /// as joiners, and a client submits random reconfigurations to the leader meanwhile.
    pub reconfig: bool,
    /// Joiners (numbered after the observers): running, not members, ready to be added.
    pub spares: usize,
    /// Record a trace of every event (used to print the tail of a failing run).
    pub trace: bool,
    /// How many of the last trace lines a failure carries.
    pub trace_lines: usize,
}

impl SimConfig {
    pub fn new(seed: u64, voters: usize, observers: usize) -> SimConfig {
        SimConfig {
            seed,
            voters,
            observers,
            fault_ms: 20_000,
            // long enough for an election's notification back-off (up to 60 s) to run out
            settle_ms: 75_000,
            faults: Faults::all(),
            keys: 4,
            tick_ms: 100,
            init_limit: 10,
            sync_limit: 5,
            reconfig: false,
            spares: 0,
            trace: false,
            trace_lines: 400,
        }
    }

    /// The ensemble shape follows from the seed alone: 3, 5 or 7 voters, and on some seeds
    /// observers, so that `SIM_SEED` alone reproduces a run.
    pub fn for_seed(seed: u64) -> SimConfig {
        let voters = [3, 5, 7][(seed % 3) as usize];
        let observers = [0, 0, 1, 2][((seed / 3) % 4) as usize];
        SimConfig::new(seed, voters, observers)
    }

    /// A run with random reconfigurations: the shape follows from the seed as in
    /// [`SimConfig::for_seed`], plus two to four joiners. `SIM_RECONFIG=1 SIM_SEED=s` replays it.
    pub fn for_reconfig_seed(seed: u64) -> SimConfig {
        let mut cfg = SimConfig::for_seed(seed);
        cfg.reconfig = true;
        cfg.spares = 2 + ((seed / 12) % 3) as usize;
        cfg
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "{} voters, {} observers, {} ms of faults, {} ms to settle",
            self.voters, self.observers, self.fault_ms, self.settle_ms
        );
        if self.reconfig {
            s.push_str(&format!(", reconfigurations with {} joiners", self.spares));
        }
        s
    }
}

/// What a run did (for the curious, and to see that the faults really happened).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub sim_ms: u64,
    pub epochs_established: u64,
    pub writes_proposed: u64,
    pub writes_acknowledged: u64,
    pub reads_checked: u64,
    /// Reads after a sync (a read barrier), checked for linearizability.
    pub synced_reads_checked: u64,
    pub committed_txns: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub connection_breaks: u64,
    pub pauses: u64,
    pub notifications_dropped: u64,
    pub snapshots_sent: u64,
    pub truncations: u64,
    /// Reconfigurations submitted to a leader, by outcome.
    pub reconfigs_proposed: u64,
    pub reconfigs_acknowledged: u64,
    pub reconfigs_rejected: u64,
    /// Reconfigurations the ensemble committed (whoever proposed them).
    pub reconfigs_committed: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.events += o.events;
        self.sim_ms += o.sim_ms;
        self.epochs_established += o.epochs_established;
        self.writes_proposed += o.writes_proposed;
        self.writes_acknowledged += o.writes_acknowledged;
        self.reads_checked += o.reads_checked;
        self.synced_reads_checked += o.synced_reads_checked;
        self.committed_txns += o.committed_txns;
        self.crashes += o.crashes;
        self.partitions += o.partitions;
        self.connection_breaks += o.connection_breaks;
        self.pauses += o.pauses;
        self.notifications_dropped += o.notifications_dropped;
        self.snapshots_sent += o.snapshots_sent;
        self.truncations += o.truncations;
        self.reconfigs_proposed += o.reconfigs_proposed;
        self.reconfigs_acknowledged += o.reconfigs_acknowledged;
        self.reconfigs_rejected += o.reconfigs_rejected;
        self.reconfigs_committed += o.reconfigs_committed;
    }
}

/// A broken invariant (or a panic inside the core), with what is needed to replay it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    /// A run with reconfigurations ([`SimConfig::for_reconfig_seed`]).
    pub reconfig: bool,
    pub setup: String,
    pub at_ms: u64,
    pub message: String,
    /// The last events before the failure (from a traced replay of the same seed).
    pub trace: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "simulation seed {} failed at {} ms ({}): {}",
            self.seed, self.at_ms, self.setup, self.message
        )?;
        writeln!(
            f,
            "reproduce: {}SIM_SEED={} cargo test -p zkrs-sim --release --test seeds -- --nocapture",
            if self.reconfig { "SIM_RECONFIG=1 " } else { "" },
            self.seed
        )?;
        if !self.trace.is_empty() {
            writeln!(f, "--- last {} events ---", self.trace.len())?;
            for line in &self.trace {
                writeln!(f, "{line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// Runs one simulation. On failure, replays the same seed with tracing on to attach the
/// trace tail (the replay is identical: everything follows from the seed).
pub fn run(config: &SimConfig) -> Result<Stats, Failure> {
    let tail = config.trace_lines;
    match world::run_once(config, config.trace.then_some(tail)) {
        Ok(stats) => Ok(stats),
        Err(mut failure) => {
            if failure.trace.is_empty() {
                if let Err(replayed) = world::run_once(config, Some(tail)) {
                    failure.trace = replayed.trace;
                }
            }
            Err(failure)
        }
    }
}
