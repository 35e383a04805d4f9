//! What the provider remembers, and the decision taken for each request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::limits::{request_tokens, Buckets, Limits, Refusal};
use super::responses::{self, Stored};
use super::scenario::{chaos_fault, stream_chaos_fault, Fault, Scenario, StreamFault};
use super::{RecordedRequest, Stats};

/// The longest admitted-requests timeline kept: a week of seconds.
const MAX_TIMELINE: usize = 7 * 86_400;

/// The provider's time since it started.
pub(crate) enum Clock {
    /// The real monotonic clock.
    Real(Instant),
    /// Stands still until advanced: nanoseconds since start.
    Manual(AtomicU64),
}

impl Clock {
    fn elapsed(&self) -> Duration {
        match self {
            Clock::Real(start) => start.elapsed(),
            Clock::Manual(nanos) => Duration::from_nanos(nanos.load(Ordering::SeqCst)),
        }
    }
}

/// Everything the server threads share.
pub(crate) struct Shared {
    pub clock: Clock,
    pub scenario: Scenario,
    /// The limits of `TokenBucket` and `Limited`.
    limits: Option<Limits>,
    next_request: AtomicU64,
    state: Mutex<State>,
}

/// What is known of a request before its body is looked at.
pub(crate) struct Meta {
    pub number: u64,
    pub request_id: String,
    pub at: Duration,
    pub idempotency_key: Option<String>,
    pub retry_count: Option<String>,
}

/// What to do with a request once decided.
pub(crate) enum Action {
    /// Answer this now.
    Respond(Stored),
    /// Answer this stored response again, marked as a replay.
    Replay(Stored),
    /// Answer this (a success, already processed) after a while.
    Late(Duration, Stored),
    /// Close the connection without answering.
    Drop,
    /// Do the work for this long, then store the answer under the key (if
    /// any) and send it.
    Work {
        took: Duration,
        key: Option<String>,
        answer: Stored,
    },
    /// Stream this (a success, already processed) with this fault.
    Stream(Stored, StreamFault),
}

/// A logical request: by idempotency key, else by `user`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Logical {
    Key(String),
    User(String),
}

impl Logical {
    fn id(&self) -> &str {
        match self {
            Logical::Key(s) | Logical::User(s) => s,
        }
    }
}

enum Entry {
    InProgress,
    Done(Stored),
}

struct State {
    stats: Stats,
    log: Vec<RecordedRequest>,
    idempotency: HashMap<String, Entry>,
    attempts: HashMap<Logical, u32>,
    billed: HashMap<Logical, u32>,
    buckets: Option<Buckets>,
    /// Processed requests by the second they arrived in.
    timeline: Vec<u64>,
    rng: fastrand::Rng,
}

/// Result of the scenario's per-attempt choice.
enum Verdict {
    Pass,
    Fault(Fault),
    Refused(Refusal),
}

impl Shared {
    /// The shared state of a provider playing `scenario`, on the real clock
    /// or, with `manual_clock`, on one that stands still until advanced.
    pub fn new(scenario: Scenario, manual_clock: bool) -> Shared {
        let clock = if manual_clock {
            Clock::Manual(AtomicU64::new(0))
        } else {
            Clock::Real(Instant::now())
        };
        let seed = match scenario {
            Scenario::Chaos { seed, .. } | Scenario::StreamChaos { seed, .. } => seed,
            _ => 0,
        };
        let limits = match &scenario {
            Scenario::TokenBucket { rate, burst } => Some(Limits::requests(*rate, *burst)),
            Scenario::Limited(limits) => Some(limits.clone()),
            _ => None,
        };
        let buckets = limits.as_ref().map(Buckets::new);
        Shared {
            clock,
            scenario,
            limits,
            next_request: AtomicU64::new(0),
            state: Mutex::new(State {
                stats: Stats::default(),
                log: Vec::new(),
                idempotency: HashMap::new(),
                attempts: HashMap::new(),
                billed: HashMap::new(),
                buckets,
                timeline: Vec::new(),
                rng: fastrand::Rng::with_seed(seed),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, but never propagate poison.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers the request and reads what the headers tell.
    pub fn meta(&self, headers: &hyper::HeaderMap) -> Meta {
        let number = self.next_request.fetch_add(1, Ordering::Relaxed) + 1;
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        Meta {
            number,
            request_id: format!("req_{number}"),
            at: self.clock.elapsed(),
            idempotency_key: header("idempotency-key"),
            retry_count: header("x-retry-count"),
        }
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().log.clone()
    }

    pub fn admitted_per_second(&self) -> Vec<u64> {
        self.lock().timeline.clone()
    }

    /// Moves a manual clock forward; false on the real clock.
    pub fn advance(&self, by: Duration) -> bool {
        match &self.clock {
            Clock::Real(_) => false,
            Clock::Manual(nanos) => {
                let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
                let _ = nanos.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    Some(n.saturating_add(by))
                });
                true
            }
        }
    }

    /// Records a request that never reached the scenario (404, bad body).
    pub fn reject(&self, meta: Meta, answer: &Stored) {
        let mut state = self.lock();
        state.stats.requests += 1;
        let logical_id = meta.idempotency_key.clone();
        state.record(meta, logical_id, answer.status.to_string());
    }

    /// Stores the answer of finished [`Action::Work`].
    pub fn finish_work(&self, key: Option<String>, answer: &Stored) {
        if let Some(key) = key {
            self.lock()
                .idempotency
                .insert(key, Entry::Done(answer.clone()));
        }
    }

    /// How many times the logical request `id` (an idempotency key, else a
    /// `user`) was processed.
    pub fn billed(&self, id: &str) -> u32 {
        let state = self.lock();
        [Logical::Key(id.to_owned()), Logical::User(id.to_owned())]
            .iter()
            .find_map(|logical| state.billed.get(logical).copied())
            .unwrap_or(0)
    }

    /// Decides what happens to a well-formed chat request; `stream` when it
    /// asked for a streamed answer.
    pub fn decide(&self, meta: Meta, body: &Value, stream: bool) -> Action {
        let now = SystemTime::now();
        let mut state = self.lock();
        let state = &mut *state;
        state.stats.requests += 1;
        let key = meta.idempotency_key.clone();
        let logical = match &key {
            Some(key) => Some(Logical::Key(key.clone())),
            None => body
                .get("user")
                .and_then(Value::as_str)
                .map(|user| Logical::User(user.to_owned())),
        };
        let logical_id = logical.as_ref().map(|l| l.id().to_owned());

        // A provider that already did the work returns it, whatever else.
        if let Some(key) = &key {
            match state.idempotency.get(key) {
                Some(Entry::Done(stored)) => {
                    let stored = stored.clone();
                    state.stats.replayed += 1;
                    state.record(meta, logical_id, "replayed".into());
                    return Action::Replay(stored);
                }
                Some(Entry::InProgress) => {
                    state.stats.in_progress_conflicts += 1;
                    state.record(meta, logical_id, "409".into());
                    return Action::Respond(responses::conflict());
                }
                None => {}
            }
        }

        let attempt = match &logical {
            Some(l) => {
                let n = state.attempts.entry(l.clone()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            None => 1,
        };
        let mut announced = Vec::new();
        let verdict = match self.scenario {
            Scenario::TokenBucket { .. } | Scenario::Limited(_) => {
                match (&self.limits, &mut state.buckets) {
                    (Some(limits), Some(buckets)) => {
                        let cost = if limits.tokens.is_some() {
                            request_tokens(body)
                        } else {
                            0
                        };
                        let decision = buckets.take(limits, meta.at, cost, now);
                        announced = decision.headers;
                        decision.refusal.map_or(Verdict::Pass, Verdict::Refused)
                    }
                    _ => Verdict::Pass,
                }
            }
            Scenario::Healthy => Verdict::Pass,
            Scenario::FailFirst { failures, fault } if attempt <= failures => Verdict::Fault(fault),
            Scenario::FailFirst { .. } => Verdict::Pass,
            Scenario::Always(fault) => Verdict::Fault(fault),
            Scenario::Outage {
                from,
                down_for,
                fault,
            } => {
                if meta.at >= from && meta.at < from.saturating_add(down_for) {
                    Verdict::Fault(fault)
                } else {
                    Verdict::Pass
                }
            }
            Scenario::Chaos { fault_rate, .. } => {
                if state.rng.f64() < fault_rate {
                    Verdict::Fault(chaos_fault(&mut state.rng))
                } else {
                    Verdict::Pass
                }
            }
            Scenario::StreamChaos { fault_rate, .. } => {
                if state.rng.f64() < fault_rate {
                    Verdict::Fault(stream_chaos_fault(&mut state.rng))
                } else {
                    Verdict::Pass
                }
            }
        };

        let fault = match verdict {
            Verdict::Pass => None,
            // A request that streams nothing meets a stream fault as a success.
            Verdict::Fault(Fault::Stream(_)) if !stream => None,
            Verdict::Fault(fault) => Some(fault),
            Verdict::Refused(refusal) => {
                let announce = self
                    .limits
                    .as_ref()
                    .map_or(Default::default(), |l| l.announce);
                state.count_fault(match refusal {
                    Refusal::Requests { .. } => "token_bucket".into(),
                    Refusal::Tokens { .. } => "tokens_per_minute".into(),
                });
                state.record(meta, logical_id, "429".into());
                let mut answer = responses::limits_refusal(refusal, announce);
                answer.headers.extend(announced);
                return Action::Respond(answer);
            }
        };
        let fault = match fault {
            None => {
                let mut answer = state.process(&meta, logical.as_ref(), body, now);
                state.store(&key, &answer);
                state.record(meta, logical_id, "200".into());
                // Announced on this answer only, not on its replays.
                answer.headers.extend(announced);
                return Action::Respond(answer);
            }
            Some(fault) => fault,
        };
        state.count_fault(fault.name());
        match fault {
            Fault::Slow(d) => {
                let answer = state.process(&meta, logical.as_ref(), body, now);
                state.store(&key, &answer);
                state.record(meta, logical_id, "slow".into());
                Action::Late(d, answer)
            }
            Fault::DropAfterProcessing => {
                let answer = state.process(&meta, logical.as_ref(), body, now);
                state.store(&key, &answer);
                state.record(meta, logical_id, "dropped".into());
                Action::Drop
            }
            Fault::SlowProcessing(took) => {
                let answer = state.process(&meta, logical.as_ref(), body, now);
                if let Some(key) = &key {
                    state.idempotency.insert(key.clone(), Entry::InProgress);
                }
                state.record(meta, logical_id, "slow_processing".into());
                Action::Work { took, key, answer }
            }
            Fault::Stream(stream_fault) => {
                // The work was done, and billed, whatever happens to its
                // stream; an error event says the work failed, so there is
                // nothing to replay.
                let answer = state.process(&meta, logical.as_ref(), body, now);
                if !matches!(stream_fault, StreamFault::ErrorEvent { .. }) {
                    state.store(&key, &answer);
                }
                state.record(meta, logical_id, fault.name());
                Action::Stream(answer, stream_fault)
            }
            error => {
                let answer = responses::fault(&error, now);
                state.record(meta, logical_id, answer.status.to_string());
                Action::Respond(answer)
            }
        }
    }
}

impl State {
    fn record(&mut self, meta: Meta, logical_id: Option<String>, outcome: String) {
        self.log.push(RecordedRequest {
            request_id: meta.request_id,
            idempotency_key: meta.idempotency_key,
            retry_count: meta.retry_count,
            logical_id,
            outcome,
            at: meta.at,
        });
    }

    fn count_fault(&mut self, name: String) {
        *self.stats.faults.entry(name).or_insert(0) += 1;
    }

    /// Does the billable work: counts it, once more for its logical request.
    fn process(
        &mut self,
        meta: &Meta,
        logical: Option<&Logical>,
        body: &Value,
        now: SystemTime,
    ) -> Stored {
        self.stats.processed += 1;
        let second = usize::try_from(meta.at.as_secs()).unwrap_or(usize::MAX);
        if second < MAX_TIMELINE {
            if self.timeline.len() <= second {
                self.timeline.resize(second + 1, 0);
            }
            self.timeline[second] += 1;
        }
        if let Some(logical) = logical {
            let n = self.billed.entry(logical.clone()).or_insert(0);
            *n = n.saturating_add(1);
            if *n == 2 {
                self.stats.billed_twice += 1;
            }
        }
        responses::completion(meta.number, body, now)
    }

    fn store(&mut self, key: &Option<String>, answer: &Stored) {
        if let Some(key) = key {
            self.idempotency
                .insert(key.clone(), Entry::Done(answer.clone()));
        }
    }
}
