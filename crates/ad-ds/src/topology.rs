//! The domain controllers of one domain and the replication between them, on the lab clock:
//! every DC pulls from every other at an interval (intra-site change notification; AD's
//! default first-partner delay is 15 seconds), a switch pauses it (as `repadmin /options
//! +DISABLE_INBOUND_REPL` does), and `replicate_now` is `repadmin /syncall`. A DC that is down
//! neither sends nor receives; it catches up when it is back (its partners kept their
//! watermarks for it).
//!
//! The first DC holds the PDC emulator role. The others reach it as AD's DCs do
//! (MS-ADTS 3.1.1.1.10, MS-SAMR 3.1.1.8.10; "password check chaining"): a bind that fails on
//! them with a wrong password is tried again at the PDC, which counts the bad password too
//! and may lock the account (its lockout then reaches the asking DC at once); a password
//! written on them is replicated to the PDC at once (urgent replication).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::server::{DcState, DomainController};

/// AD's intra-site notification delay for the first partner (Windows Server 2003 and later).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

pub struct Topology {
    dcs: Vec<Arc<DomainController>>,
    state: Mutex<State>,
}

struct State {
    /// (to, from) → the highest of `from`'s USNs `to` has seen.
    watermarks: HashMap<(usize, usize), i64>,
    interval: Duration,
    paused: bool,
    /// FILETIME of the last replication run.
    last: i64,
}

/// What a replication run did, pair by pair.
#[derive(Clone, Debug)]
pub struct Pass {
    pub from: String,
    pub to: String,
    /// Objects (and deletions) the receiving DC took.
    pub objects: usize,
}

/// The topology's state, for the lab's switches and `lab up --json`.
#[derive(Clone, Debug)]
pub struct Status {
    pub interval_seconds: u64,
    pub paused: bool,
    pub pdc: String,
    pub dcs: Vec<String>,
}

impl Topology {
    /// The DCs of one domain, the PDC emulator first. Each other DC is pointed at it.
    pub fn new(dcs: Vec<Arc<DomainController>>) -> Arc<Topology> {
        for dc in dcs.iter().skip(1) {
            let _ = dc.pdc.set(dcs[0].clone());
        }
        for (i, dc) in dcs.iter().enumerate() {
            let others = dcs.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, d)| Arc::downgrade(d)).collect();
            let _ = dc.partners.set(others);
        }
        let last = dcs.first().map(|d| read(d).clock().filetime()).unwrap_or(0);
        let state = State { watermarks: HashMap::new(), interval: DEFAULT_INTERVAL, paused: false, last };
        let t = Arc::new(Topology { dcs, state: Mutex::new(state) });
        // the replicas were copied whole: each has seen the others up to now
        for to in 0..t.dcs.len() {
            for from in 0..t.dcs.len() {
                if to != from {
                    let usn = read(&t.dcs[from]).highest_usn();
                    t.state().watermarks.insert((to, from), usn);
                }
            }
        }
        t
    }

    pub fn dcs(&self) -> &[Arc<DomainController>] {
        &self.dcs
    }

    /// A DC by its name (`DC2`, any case).
    pub fn dc(&self, name: &str) -> Option<&Arc<DomainController>> {
        self.dcs.iter().find(|d| read(d).config().dc_name.eq_ignore_ascii_case(name))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn status(&self) -> Status {
        let s = self.state();
        let names: Vec<String> = self.dcs.iter().map(|d| read(d).config().dc_name.clone()).collect();
        Status { interval_seconds: s.interval.as_secs(), paused: s.paused, pdc: names.first().cloned().unwrap_or_default(), dcs: names }
    }

    pub fn set_paused(&self, paused: bool) {
        self.state().paused = paused;
    }

    pub fn set_interval(&self, interval: Duration) {
        self.state().interval = interval.max(Duration::from_secs(1));
    }

    /// Replication when its interval has passed on the lab clock (and it is not paused).
    pub fn run_due(&self) -> Vec<Pass> {
        let Some(first) = self.dcs.first() else { return vec![] };
        let now = read(first).clock().filetime();
        {
            let s = self.state();
            let interval = i64::try_from(s.interval.as_nanos() / 100).unwrap_or(i64::MAX);
            if s.paused || now < s.last.saturating_add(interval) {
                return vec![];
            }
        }
        self.replicate_now()
    }

    /// Every DC that is up pulls from every other that is up (`repadmin /syncall`), paused or
    /// not. Each pull copies the changes out of the source first and applies them after, so
    /// no two directory locks are ever held at once.
    /// Each DC's backlog: how many changes its partners hold that it has not taken yet
    /// (`repadmin /showrepl`), by DC name, in the domain's order.
    pub fn backlog(&self) -> Vec<(String, usize)> {
        (0..self.dcs.len())
            .map(|to| {
                let waiting = (0..self.dcs.len())
                    .filter(|from| *from != to)
                    .map(|from| {
                        let mark = self.state().watermarks.get(&(to, from)).copied().unwrap_or(0);
                        let changes = read(&self.dcs[from]).changes_since(mark);
                        read(&self.dcs[to]).would_take(&changes)
                    })
                    .sum();
                (read(&self.dcs[to]).config().dc_name.clone(), waiting)
            })
            .collect()
    }

    pub fn replicate_now(&self) -> Vec<Pass> {
        let mut passes = vec![];
        let up = |d: &DomainController| d.faults.state() != DcState::Down;
        for to in 0..self.dcs.len() {
            for from in 0..self.dcs.len() {
                if to == from || !up(&self.dcs[to]) || !up(&self.dcs[from]) {
                    continue;
                }
                let mark = self.state().watermarks.get(&(to, from)).copied().unwrap_or(0);
                let changes = read(&self.dcs[from]).changes_since(mark);
                let objects = write(&self.dcs[to]).apply(&changes);
                self.state().watermarks.insert((to, from), changes.high_usn);
                let name = |i: usize| read(&self.dcs[i]).config().dc_name.clone();
                passes.push(Pass { from: name(from), to: name(to), objects });
            }
        }
        let now = self.dcs.first().map(|d| read(d).clock().filetime()).unwrap_or(0);
        self.state().last = now;
        passes
    }
}

fn read(dc: &DomainController) -> std::sync::RwLockReadGuard<'_, crate::Directory> {
    dc.directory.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(dc: &DomainController) -> std::sync::RwLockWriteGuard<'_, crate::Directory> {
    dc.directory.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
