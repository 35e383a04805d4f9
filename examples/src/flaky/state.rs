//! What the provider remembers, and the decision taken for each request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::responses::{self, Stored};
use super::scenario::{chaos_fault, Fault, Scenario};
use super::{RecordedRequest, Stats};

/// Everything the server threads share.
pub(crate) struct Shared {
    pub start: Instant,
    pub scenario: Scenario,
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

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct State {
    stats: Stats,
    log: Vec<RecordedRequest>,
    idempotency: HashMap<String, Entry>,
    attempts: HashMap<Logical, u32>,
    billed: HashMap<Logical, u32>,
    bucket: Bucket,
    rng: fastrand::Rng,
}

/// Result of the scenario's per-attempt choice.
enum Verdict {
    Pass,
    Fault(Fault),
    Bucket { retry_after_secs: u64, burst: u32 },
}

impl Shared {
    pub fn new(scenario: Scenario) -> Shared {
        let start = Instant::now();
        let (seed, burst) = match scenario {
            Scenario::Chaos { seed, .. } => (seed, 0),
            Scenario::TokenBucket { burst, .. } => (0, burst),
            _ => (0, 0),
        };
        Shared {
            start,
            scenario,
            next_request: AtomicU64::new(0),
            state: Mutex::new(State {
                stats: Stats::default(),
                log: Vec::new(),
                idempotency: HashMap::new(),
                attempts: HashMap::new(),
                billed: HashMap::new(),
                bucket: Bucket {
                    tokens: f64::from(burst),
                    last: start,
                },
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
            at: self.start.elapsed(),
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

    /// Decides what happens to a well-formed chat completion request.
    pub fn decide(&self, meta: Meta, body: &Value) -> Action {
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
        let verdict = match self.scenario {
            Scenario::Healthy => Verdict::Pass,
            Scenario::FailFirst { failures, fault } if attempt <= failures => Verdict::Fault(fault),
            Scenario::FailFirst { .. } => Verdict::Pass,
            Scenario::Always(fault) => Verdict::Fault(fault),
            Scenario::TokenBucket { rate, burst } => state.bucket.take(rate, burst),
            Scenario::Chaos { fault_rate, .. } => {
                if state.rng.f64() < fault_rate {
                    Verdict::Fault(chaos_fault(&mut state.rng))
                } else {
                    Verdict::Pass
                }
            }
        };

        let fault = match verdict {
            Verdict::Pass => None,
            Verdict::Fault(fault) => Some(fault),
            Verdict::Bucket {
                retry_after_secs,
                burst,
            } => {
                state.count_fault("token_bucket".into());
                state.record(meta, logical_id, "429".into());
                return Action::Respond(responses::bucket_refusal(retry_after_secs, burst));
            }
        };
        let fault = match fault {
            None => {
                let answer = state.process(&meta, logical.as_ref(), body, now);
                state.store(&key, &answer);
                state.record(meta, logical_id, "200".into());
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

impl Bucket {
    /// Takes a token, or says how long until there is one.
    fn take(&mut self, rate: f64, burst: u32) -> Verdict {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            0.0
        };
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Pass;
        }
        let wait = if rate > 0.0 {
            (1.0 - self.tokens) / rate
        } else {
            f64::INFINITY
        };
        // `as` saturates (and maps NaN to 0); at least 1, at most a day.
        let secs = (wait.ceil() as u64).clamp(1, 86_400);
        Verdict::Bucket {
            retry_after_secs: secs,
            burst,
        }
    }
}
