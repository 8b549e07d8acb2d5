//! The steady load of a rollout: keep-alive clients through the load
//! balancer, a mix of reads, orders and jobs, every answer classified.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use graceful_conformance::http::{self, Conn, Outcome, Request};

/// How long one request may take before it counts as timed out: far above
/// the slowest request of the mix, so only a hang counts.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Op {
    Read,
    Order,
    Job,
}

/// What the clients saw.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Requests sent, by kind.
    pub(crate) sent: BTreeMap<Op, usize>,
    /// Requests that failed, by what the client saw (`reset`, `eof`,
    /// `502`, ...).
    pub(crate) failed: BTreeMap<String, usize>,
    /// One example of each failure kind.
    pub(crate) examples: BTreeMap<String, String>,
    /// The order ids answered `201`.
    pub(crate) orders_answered: Vec<String>,
    /// The job ids answered `202`.
    pub(crate) jobs_answered: Vec<String>,
}

impl Tally {
    pub(crate) fn requests(&self) -> usize {
        self.sent.values().sum()
    }

    pub(crate) fn failures(&self) -> usize {
        self.failed.values().sum()
    }

    fn merge(&mut self, other: Tally) {
        for (k, v) in other.sent {
            *self.sent.entry(k).or_default() += v;
        }
        for (k, v) in other.failed {
            *self.failed.entry(k).or_default() += v;
        }
        for (k, v) in other.examples {
            self.examples.entry(k).or_insert(v);
        }
        self.orders_answered.extend(other.orders_answered);
        self.jobs_answered.extend(other.jobs_answered);
    }
}

/// The failure kind of an outcome, or `None` for the answer the request
/// expects.
fn failure(op: Op, outcome: &Outcome) -> Option<String> {
    let expected = match op {
        Op::Read => 200,
        Op::Order => 201,
        Op::Job => 202,
    };
    match outcome {
        Outcome::Response(r) if r.status() == expected => None,
        Outcome::Response(r) => Some(r.status().to_string()),
        Outcome::Refused => Some("refused".into()),
        Outcome::Closed { reset: true } => Some("reset".into()),
        Outcome::Closed { reset: false } => Some("eof".into()),
        Outcome::Truncated { .. } => Some("truncated".into()),
        Outcome::TimedOut { .. } => Some("timeout".into()),
        Outcome::Malformed(_) => Some("malformed".into()),
        Outcome::Failed(_) => Some("error".into()),
    }
}

/// What the clients send, and how long each request takes on the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mix {
    /// The `ms` of every request.
    pub(crate) work_ms: u64,
    /// Whether every fourth request is a job (the target serves them).
    pub(crate) jobs: bool,
    /// Only orders, no reads or jobs: the mix in which work cut off shows
    /// most surely (an order committed whose answer is lost).
    pub(crate) orders_only: bool,
    /// No jobs, whatever `jobs` says: for a peer, which serves reads and
    /// orders only.
    pub(crate) no_jobs: bool,
}

/// The running clients.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Tally>>,
}

impl Load {
    /// Starts `clients` keep-alive clients against `addr`, each sending
    /// `mix`: one order in four requests, one job in four when jobs are on,
    /// reads for the rest.
    pub(crate) fn start(addr: SocketAddr, clients: usize, mix: Mix) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|c| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || client(addr, c, mix, &stop))
            })
            .collect();
        Load { stop, clients }
    }

    /// Stops the clients after the request each is waiting for, and sums
    /// what they saw.
    pub(crate) fn finish(self) -> Tally {
        // Relaxed: a flag polled between requests; the joins below order
        // everything the clients wrote.
        self.stop.store(true, Ordering::Relaxed);
        let mut tally = Tally::default();
        for client in self.clients {
            match client.join() {
                Ok(t) => tally.merge(t),
                Err(_) => {
                    *tally.failed.entry("client panicked".into()).or_default() += 1;
                }
            }
        }
        tally
    }
}

/// One client: a keep-alive connection, reopened when the balancer closes
/// it, sending one request after another until told to stop.
fn client(addr: SocketAddr, c: usize, mix: Mix, stop: &AtomicBool) -> Tally {
    let ms = mix.work_ms;
    let mut tally = Tally::default();
    let mut conn: Option<Conn> = None;
    let mut n = 0usize;
    // Relaxed: see `Load::finish`.
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (op, req, id) = match n % 4 {
            _ if mix.orders_only => order(c, n, ms),
            0 => order(c, n, ms),
            2 if mix.jobs && !mix.no_jobs => {
                let id = format!("c{c}-j{n}");
                let req = Request::post(format!("/jobs?ms={ms}"), id.clone());
                (Op::Job, req, id)
            }
            _ => (
                Op::Read,
                Request::get(format!("/sleep?ms={ms}")),
                String::new(),
            ),
        };
        *tally.sent.entry(op).or_default() += 1;
        let outcome = match conn.as_mut() {
            Some(open) => open.exchange(&req, REQUEST_TIMEOUT),
            None => match http::connect(addr, REQUEST_TIMEOUT) {
                Ok(mut fresh) => {
                    let outcome = fresh.exchange(&req, REQUEST_TIMEOUT);
                    conn = Some(fresh);
                    outcome
                }
                Err(outcome) => outcome,
            },
        };
        let close = match &outcome {
            Outcome::Response(r) => r.head.connection_close(),
            _ => true,
        };
        match failure(op, &outcome) {
            None => match op {
                Op::Order => tally.orders_answered.push(id),
                Op::Job => tally.jobs_answered.push(id),
                Op::Read => {}
            },
            Some(kind) => {
                tally
                    .examples
                    .entry(kind.clone())
                    .or_insert_with(|| format!("{op:?} {} {}: {outcome}", req.method, req.target));
                *tally.failed.entry(kind).or_default() += 1;
            }
        }
        if close {
            conn = None;
        }
    }
    tally
}

/// Order `n` of client `c`.
fn order(c: usize, n: usize, ms: u64) -> (Op, Request, String) {
    let id = format!("c{c}-o{n}");
    let req = Request::post(format!("/orders?ms={ms}"), id.clone());
    (Op::Order, req, id)
}
