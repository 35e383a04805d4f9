//! The shared guards (`llm_resilience::shared`) on a real `redis-server`
//! (the Debian package `redis-server`), started by each test on a free port
//! and killed at its end. Several independent clients in one process: each
//! its own `Fleet` (its own connections and background thread) and its own
//! local guard, as separate processes would have. A machine without
//! `redis-server` fails these tests with a message naming the package.

use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use examples::redis_server::RedisServer;
use llm_resilience::shared::{Fleet, FleetOptions, SharedBreaker, SharedBudget, SharedLimiter};
use llm_resilience::{
    retry, AdaptiveLimiter, BreakerState, CircuitBreaker, CircuitOpen, Classify, ErrorKind,
    RetryBudget,
};

/// The longest a change may take to reach another process.
const PROPAGATION: Duration = Duration::from_millis(100);

fn fleet(redis: &RedisServer, prefix: &'static str) -> Fleet {
    Fleet::with_options(&redis.url(), FleetOptions::new().prefix(prefix)).unwrap()
}

/// Waits up to `limit` for `done`; how long it took, or `None`.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if done() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `n` clients on `prefix`, each with a fleet of its own and a limiter
/// named `provider` that `limiter` makes, once every one sees all `n`.
fn limiter_fleet(
    redis: &RedisServer,
    prefix: &'static str,
    n: usize,
    limiter: impl Fn() -> AdaptiveLimiter,
) -> (Vec<Fleet>, Vec<SharedLimiter>) {
    let fleets: Vec<Fleet> = (0..n).map(|_| fleet(redis, prefix)).collect();
    let limiters: Vec<SharedLimiter> = fleets
        .iter()
        .map(|f| f.limiter("provider", limiter()))
        .collect();
    assert!(
        within(Duration::from_secs(2), || limiters
            .iter()
            .all(|l| l.members() == n))
        .is_some(),
        "every client sees the fleet"
    );
    (fleets, limiters)
}

fn trip(breaker: &CircuitBreaker) {
    while let Ok(permit) = breaker.try_acquire() {
        permit.failure(ErrorKind::Server);
    }
}

#[test]
fn an_opening_and_a_closing_reach_every_client_within_100ms() {
    let redis = RedisServer::start();
    let template = || {
        CircuitBreaker::new()
            .consecutive_failures(3)
            .break_for(Duration::from_millis(400))
    };
    let fleets: Vec<Fleet> = (0..3).map(|_| fleet(&redis, "t-open")).collect();
    let breakers: Vec<SharedBreaker> = fleets
        .iter()
        .map(|f| f.breaker("provider", template()))
        .collect();
    assert!(
        within(Duration::from_secs(2), || breakers
            .iter()
            .all(|b| b.is_connected()))
        .is_some(),
        "every client reaches Redis"
    );

    trip(&breakers[0]);
    let took = within(Duration::from_secs(1), || {
        breakers[1..].iter().all(|b| b.try_acquire().is_err())
    })
    .expect("the others open");
    assert!(took <= PROPAGATION, "opened elsewhere after {took:?}");
    let refused = breakers[2].try_acquire().unwrap_err();
    assert!(refused.retry_in().unwrap() <= Duration::from_millis(400));

    // After the break, a probe that succeeds in one client closes them all.
    std::thread::sleep(Duration::from_millis(450));
    let probe = breakers[1]
        .try_acquire()
        .expect("a probe once the break is over");
    assert!(probe.is_probe());
    probe.success();
    let took = within(Duration::from_secs(1), || {
        breakers.iter().all(|b| b.state() == BreakerState::Closed)
    })
    .expect("the others close");
    assert!(took <= PROPAGATION, "closed elsewhere after {took:?}");
}

#[test]
fn the_budget_is_the_fleets_not_each_clients() {
    let redis = RedisServer::start();
    // 10% of the calls, no floor, over 10 s.
    let template = || RetryBudget::new().ratio(0.1).min_retries_per_second(0);
    let fleets: Vec<Fleet> = (0..3).map(|_| fleet(&redis, "t-budget")).collect();
    let budgets: Vec<SharedBudget> = fleets
        .iter()
        .map(|f| f.budget("provider", template()))
        .collect();
    // Only the first client makes calls: 300 of them.
    for _ in 0..300 {
        budgets[0].record_call();
    }
    assert!(
        within(Duration::from_secs(2), || budgets
            .iter()
            .all(|b| b.members() == 3))
        .is_some(),
        "every client sees the fleet"
    );
    // Several syncs, so that each has seen the fleet's calls.
    std::thread::sleep(Duration::from_millis(400));
    let granted: Vec<usize> = budgets
        .iter()
        .map(|b| (0..50).filter(|_| b.try_retry()).count())
        .collect();
    // The fleet's 30, split three ways: the first client alone would have
    // allowed itself 30, the others none.
    assert_eq!(granted, [10, 10, 10]);

    // Once every client has synced what it spent (twice: the first syncs
    // may not see all of it yet), the fleet has none left.
    std::thread::sleep(Duration::from_millis(400));
    let more: usize = budgets
        .iter()
        .map(|b| (0..50).filter(|_| b.try_retry()).count())
        .sum();
    assert_eq!(more, 0, "no client overdraws the fleet's budget");
}

#[test]
fn what_a_429_teaches_one_client_paces_the_others() {
    let redis = RedisServer::start();
    let (_fleets, limiters) = limiter_fleet(&redis, "t-limit", 2, AdaptiveLimiter::new);
    assert_eq!(limiters[1].rate(), None);
    for _ in 0..20 {
        limiters[0].on_success();
    }
    limiters[0].on_rate_limited(Some(Duration::from_secs(1)));
    let learnt = limiters[0].rate().expect("the refused client paces");
    let took = within(Duration::from_secs(1), || limiters[1].rate().is_some())
        .expect("the other client paces too");
    assert!(took <= PROPAGATION, "learnt elsewhere after {took:?}");
    let other = limiters[1].rate().unwrap();
    assert!((other / learnt - 1.0).abs() < 0.01, "{other} vs {learnt}");

    // An announced limit is split between the live clients.
    limiters[0].observe_limit(6_000); // 100 a second, 95 with the headroom
    let rate = limiters[0].rate().unwrap();
    assert!((rate - 47.5).abs() < 1e-6, "{rate}");
}

#[test]
fn a_retry_after_pause_holds_back_every_client() {
    let redis = RedisServer::start();
    // At its floor, a refusal's Retry-After pauses the whole fleet.
    let template = || AdaptiveLimiter::new().initial_rate(50.0).min_rate(50.0);
    let (_fleets, limiters) = limiter_fleet(&redis, "t-pause", 2, template);
    limiters[0].on_rate_limited(Some(Duration::from_secs(1)));
    assert!(limiters[0].acquire_delay() > Duration::from_millis(900));
    let mut delay = Duration::ZERO;
    let took = within(Duration::from_secs(1), || {
        delay = limiters[1]
            .try_acquire_within(Duration::ZERO)
            .unwrap_err_or_zero();
        delay > Duration::from_millis(700)
    })
    .expect("the other client pauses too");
    assert!(took <= PROPAGATION, "paused elsewhere after {took:?}");
}

/// How long until the next slot, without taking it.
trait NextSlot {
    fn unwrap_err_or_zero(self) -> Duration;
}

impl NextSlot for Result<Duration, Duration> {
    fn unwrap_err_or_zero(self) -> Duration {
        self.err().unwrap_or(Duration::ZERO)
    }
}

#[test]
fn redis_down_then_back_local_fallback_then_resync() {
    let mut redis = RedisServer::start();
    let options = FleetOptions::new()
        .prefix("t-down")
        .reconnect(Duration::from_millis(50), Duration::from_millis(200));
    let fleets: Vec<Fleet> = (0..2)
        .map(|_| Fleet::with_options(&redis.url(), options).unwrap())
        .collect();
    let template = || {
        CircuitBreaker::new()
            .consecutive_failures(2)
            .break_for(Duration::from_secs(30))
    };
    let breakers: Vec<SharedBreaker> = fleets
        .iter()
        .map(|f| f.breaker("provider", template()))
        .collect();
    let budgets: Vec<SharedBudget> = fleets
        .iter()
        .map(|f| f.budget("provider", RetryBudget::new().min_retries_per_second(1)))
        .collect();
    assert!(within(Duration::from_secs(2), || breakers
        .iter()
        .all(|b| b.is_connected())
        && budgets.iter().all(|b| b.members() == 2))
    .is_some());

    redis.kill();
    let took = within(Duration::from_secs(2), || {
        breakers.iter().all(|b| !b.is_connected()) && budgets.iter().all(|b| !b.is_connected())
    })
    .expect("every client notices");
    assert!(took < Duration::from_secs(1), "{took:?}");
    for breaker in &breakers {
        assert_eq!(breaker.fallbacks().0, 1, "said once");
    }
    // Calls go on, on local state, without waiting: the budget on its own
    // formula (its floor: 10 retries over 10 s), the breakers alone.
    let start = Instant::now();
    assert_eq!((0..20).filter(|_| budgets[0].try_retry()).count(), 10);
    trip(&breakers[0]);
    assert!(breakers[0].try_acquire().is_err());
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        breakers[1].try_acquire().is_ok(),
        "nothing is shared meanwhile"
    );
    assert!(start.elapsed() < Duration::from_millis(400));
    assert_eq!(breakers[0].fallbacks().0, 1, "still said once");

    // Back, empty: the clients reconnect, and what was learnt alone is
    // shared.
    redis.restart();
    within(Duration::from_secs(3), || {
        breakers.iter().all(|b| b.is_connected()) && budgets.iter().all(|b| b.is_connected())
    })
    .expect("every client reconnects");
    assert!(breakers.iter().all(|b| b.fallbacks() == (1, 1)));
    within(Duration::from_secs(1), || {
        breakers[1].try_acquire().is_err()
    })
    .expect("the opening learnt alone reaches the other client after the resync");
}

#[test]
fn keys_have_ttls_and_a_bounded_count_per_name() {
    let redis = RedisServer::start();
    let options = FleetOptions::new()
        .prefix("t-keys")
        .key_ttl(Duration::from_secs(1))
        .member_ttl(Duration::from_millis(400));
    let fleets: Vec<Fleet> = (0..4)
        .map(|_| Fleet::with_options(&redis.url(), options).unwrap())
        .collect();
    let breakers: Vec<SharedBreaker> = fleets
        .iter()
        .map(|f| f.breaker("p", CircuitBreaker::new().consecutive_failures(1)))
        .collect();
    let mut budgets: Vec<SharedBudget> = fleets
        .iter()
        .map(|f| f.budget("p", RetryBudget::new()))
        .collect();
    let limiters: Vec<SharedLimiter> = fleets
        .iter()
        .map(|f| f.limiter("p", AdaptiveLimiter::new()))
        .collect();
    within(Duration::from_secs(2), || {
        budgets.iter().all(|b| b.members() == 4) && limiters.iter().all(|l| l.members() == 4)
    })
    .expect("every client sees the fleet");
    trip(&breakers[0]);
    limiters[0].on_rate_limited(None);
    std::thread::sleep(Duration::from_millis(150));

    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("t-keys:*").query(&mut con).unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "t-keys:breaker:p",
            "t-keys:budget:p",
            "t-keys:limiter:p",
            "t-keys:limiter:p:members"
        ],
        "four keys per name, whatever the number of clients"
    );
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut con).unwrap();
        assert!(ttl > 0 && ttl <= 1_000, "{key}: PTTL {ttl}");
    }
    let fields: i64 = redis::cmd("HLEN")
        .arg("t-keys:budget:p")
        .query(&mut con)
        .unwrap();
    assert_eq!(fields, 4, "one field per live client");

    // Clients that leave are removed; those that vanish are trimmed.
    budgets.truncate(1);
    within(Duration::from_secs(2), || {
        redis::cmd("HLEN")
            .arg("t-keys:budget:p")
            .query::<i64>(&mut con)
            .unwrap()
            == 1
    })
    .expect("the budget's fields follow the live clients");

    // Nothing is left once no client writes.
    drop((breakers, budgets, limiters, fleets));
    within(Duration::from_secs(3), || {
        redis::cmd("KEYS")
            .arg("t-keys:*")
            .query::<Vec<String>>(&mut con)
            .unwrap()
            .is_empty()
    })
    .expect("every key expires");
}

#[derive(Debug)]
enum CallError {
    Down,
    Open,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for CallError {}

impl Classify for CallError {
    fn kind(&self) -> ErrorKind {
        match self {
            CallError::Down => ErrorKind::Server,
            CallError::Open => ErrorKind::Overloaded,
        }
    }
}

impl From<CircuitOpen> for CallError {
    fn from(_: CircuitOpen) -> Self {
        CallError::Open
    }
}

/// A limiter's send slot past the call's deadline.
impl From<llm_resilience::Elapsed> for CallError {
    fn from(_: llm_resilience::Elapsed) -> Self {
        CallError::Down
    }
}

static URL: OnceLock<String> = OnceLock::new();
static FLEET: LazyLock<Fleet> = LazyLock::new(|| {
    Fleet::with_options(
        URL.get().expect("the test sets the URL"),
        FleetOptions::new().prefix("t-attr"),
    )
    .unwrap()
});
static BREAKER: LazyLock<SharedBreaker> =
    LazyLock::new(|| FLEET.breaker("provider", CircuitBreaker::new().consecutive_failures(2)));
static BUDGET: LazyLock<SharedBudget> =
    LazyLock::new(|| FLEET.budget("provider", RetryBudget::new()));
static LIMITER: LazyLock<SharedLimiter> =
    LazyLock::new(|| FLEET.limiter("provider", AdaptiveLimiter::new()));

/// The shared guards as `static`s, where the attribute takes guards.
#[retry(max_attempts = 2, wait = fixed(1ms), breaker = BREAKER, budget = BUDGET, limiter = LIMITER)]
async fn from_statics(fail: bool) -> Result<(), CallError> {
    if fail {
        Err(CallError::Down)
    } else {
        Ok(())
    }
}

/// ... and as arguments.
#[retry(max_attempts = 2, wait = fixed(1ms), breaker = breaker)]
async fn from_arguments(breaker: &SharedBreaker) -> Result<(), CallError> {
    let _ = breaker;
    Err(CallError::Down)
}

#[tokio::test]
async fn the_attribute_takes_shared_guards() {
    let redis = RedisServer::start();
    URL.set(redis.url()).unwrap();
    assert!(from_statics(false).await.is_ok());
    // Two failures in a row open the static breaker (the call's own
    // retry is its second).
    assert!(matches!(from_statics(true).await, Err(CallError::Down)));
    assert!(matches!(from_statics(false).await, Err(CallError::Open)));

    // Another client's breaker, passed as an argument, opens with it.
    let other = Fleet::with_options(&redis.url(), FleetOptions::new().prefix("t-attr")).unwrap();
    let breaker = other.breaker("provider", CircuitBreaker::new());
    within(Duration::from_secs(2), || breaker.is_connected()).expect("connects");
    // It learns of the opening at its resync, or from the next one.
    BREAKER.close();
    let _ = from_statics(true).await;
    let opened = tokio::time::timeout(Duration::from_secs(1), async {
        while breaker.try_acquire().is_ok() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(opened.is_ok(), "the argument's breaker opened too");
    assert!(matches!(
        from_arguments(&breaker).await,
        Err(CallError::Open)
    ));
}

/// The shared-guard series of the guard named `guard_name` in one snapshot:
/// the `retry_shared_connected` gauge, and the increments of
/// `retry_shared_fallbacks_total` since the last snapshot (the debugging
/// recorder's snapshots drain counters).
fn read(snapshotter: &metrics_util::debugging::Snapshotter, guard_name: &str) -> (f64, u64) {
    use metrics_util::debugging::DebugValue;
    let (mut connected, mut fallbacks) = (f64::NAN, 0);
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        if !key
            .labels()
            .any(|l| l.key() == "name" && l.value() == guard_name)
        {
            continue;
        }
        match (key.name(), value) {
            ("retry_shared_connected", DebugValue::Gauge(g)) => connected = g.into_inner(),
            ("retry_shared_fallbacks_total", DebugValue::Counter(n)) => fallbacks += n,
            _ => {}
        }
    }
    (connected, fallbacks)
}

#[test]
fn losing_redis_is_said_once_in_metrics() {
    // The background threads record to the global recorder; this test is
    // the only one of this file that installs it.
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let mut redis = RedisServer::start();
    let options = FleetOptions::new()
        .prefix("t-metrics")
        .reconnect(Duration::from_millis(50), Duration::from_millis(100));
    let fleet = Fleet::with_options(&redis.url(), options).unwrap();
    let breaker = fleet.breaker("metered", CircuitBreaker::new());
    within(Duration::from_secs(2), || breaker.is_connected()).expect("connects");
    assert_eq!(read(&snapshotter, "metered"), (1.0, 0));

    redis.kill();
    within(Duration::from_secs(2), || !breaker.is_connected()).expect("notices");
    // Several reconnection attempts fail meanwhile; the loss counts once.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(read(&snapshotter, "metered"), (0.0, 1));

    redis.restart();
    within(Duration::from_secs(3), || breaker.is_connected()).expect("reconnects");
    assert_eq!(read(&snapshotter, "metered"), (1.0, 0));
}

#[test]
fn names_with_colons_keep_keys_of_their_own_and_huge_options_work() {
    let redis = RedisServer::start();
    // Every duration far too long: counted as a year, which Redis takes.
    let options = FleetOptions::new()
        .prefix("t-names")
        .key_ttl(Duration::MAX)
        .member_ttl(Duration::MAX)
        .reconnect(Duration::MAX, Duration::MAX);
    let fleet = Fleet::with_options(&redis.url(), options).unwrap();
    // `x:members` would otherwise be the key of `x`'s members.
    let plain = fleet.limiter("x", AdaptiveLimiter::new());
    let colon = fleet.limiter("x:members", AdaptiveLimiter::new());
    within(Duration::from_secs(2), || {
        plain.is_connected() && colon.is_connected() && plain.members() == 1 && colon.members() == 1
    })
    .expect("both limiters reach Redis, each on keys of its own");
    // A 429 each, which the fleet's hash of each name records.
    plain.on_rate_limited(None);
    colon.on_rate_limited(None);
    std::thread::sleep(Duration::from_millis(150));

    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("t-names:*").query(&mut con).unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "t-names:limiter:x",
            "t-names:limiter:x:members",
            "t-names:limiter:x\\:members",
            "t-names:limiter:x\\:members:members",
        ]
    );
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut con).unwrap();
        assert!(ttl > 0, "{key}: PTTL {ttl}, every key expires");
    }
}

#[test]
fn a_client_that_closes_or_stops_calling_hands_its_share_over_at_once() {
    let redis = RedisServer::start();
    // Clients count for their first `member_ttl` (here 400 ms) whether
    // they call or not.
    let options = FleetOptions::new()
        .prefix("t-handover")
        .member_ttl(Duration::from_millis(400));
    let fleets: Vec<Fleet> = (0..3)
        .map(|_| Fleet::with_options(&redis.url(), options).unwrap())
        .collect();
    let limiters: Vec<SharedLimiter> = fleets
        .iter()
        .map(|f| f.limiter("provider", AdaptiveLimiter::new()))
        .collect();
    // Clients 0 and 1 call all along; client 2 never does.
    let calling = || {
        limiters[0].on_success();
        limiters[1].on_success();
    };
    let all_seen = within(Duration::from_secs(2), || {
        calling();
        limiters.iter().all(|l| l.members() == 3)
    });
    assert!(all_seen.is_some(), "every client sees the fleet");
    // Past its first 400 ms, client 2 has no calls: it leaves the set and
    // says so; the others take its share at its next sync (100 ms), not
    // three syncs or a `member_ttl` later.
    let took = within(Duration::from_secs(2), || {
        calling();
        limiters[..2].iter().all(|l| l.members() == 2)
    })
    .expect("the idle client's share goes to the others");
    assert!(took <= Duration::from_millis(600), "{took:?}");
    // Calling again, it is counted again as soon as it says so.
    let back = within(Duration::from_secs(1), || {
        calling();
        limiters[2].on_success();
        limiters.iter().all(|l| l.members() == 3)
    })
    .expect("the client that calls again is counted again");
    assert!(back <= Duration::from_millis(250), "{back:?}");
    // Closing its fleet, client 1 leaves at once: the others count it out
    // within a round trip, where a client gone silent is counted out only
    // `member_ttl` and three syncs later.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let closing = Instant::now();
    runtime.block_on(fleets[1].close());
    let took = within(Duration::from_secs(2), || {
        limiters[0].on_success();
        limiters[2].on_success();
        limiters[0].members() == 2 && limiters[2].members() == 2
    })
    .expect("the others count the closed client out");
    assert!(
        closing.elapsed() <= PROPAGATION + Duration::from_millis(100),
        "closing and counting it out took {:?} ({took:?} after close returned)",
        closing.elapsed()
    );
    assert!(
        !limiters[1].is_connected(),
        "a closed fleet does not reconnect"
    );
}

/// Runs `fut` to its end on this thread, with no runtime of any kind: what
/// a caller on another executor (or none) has.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

#[test]
fn close_needs_no_runtime_of_the_callers() {
    let redis = RedisServer::start();
    let (fleets, limiters) = limiter_fleet(&redis, "t-close-anywhere", 2, AdaptiveLimiter::new);
    let started = Instant::now();
    block_on(fleets[1].close());
    assert!(
        started.elapsed() <= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    assert!(
        within(PROPAGATION, || limiters[0].members() == 1).is_some(),
        "the others count the closed client out"
    );
    // Twice is harmless, and so is Redis gone.
    block_on(fleets[1].close());
    drop(redis);
    let started = Instant::now();
    block_on(fleets[0].close());
    assert!(
        started.elapsed() <= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn fleets_on_two_databases_of_one_server_do_not_hear_each_other() {
    let redis = RedisServer::start();
    let on = |db: u32| {
        Fleet::with_options(
            &format!("{}{db}", redis.url()),
            FleetOptions::new().prefix("t-databases"),
        )
        .unwrap()
    };
    let (one, two) = (on(1), on(2));
    let breakers = [
        one.breaker("provider", CircuitBreaker::new()),
        two.breaker("provider", CircuitBreaker::new()),
    ];
    let also_one = on(1).breaker("provider", CircuitBreaker::new());
    assert!(
        within(Duration::from_secs(2), || breakers
            .iter()
            .all(SharedBreaker::is_connected)
            && also_one.is_connected())
        .is_some(),
        "every client connects"
    );
    trip(&breakers[0]);
    // The same database hears of the opening ...
    assert!(
        within(Duration::from_secs(1), || matches!(
            also_one.state(),
            BreakerState::Open { .. }
        ))
        .is_some(),
        "a breaker on the same database opens too"
    );
    // ... the other does not.
    std::thread::sleep(5 * PROPAGATION);
    assert_eq!(breakers[1].state(), BreakerState::Closed);
    assert!(breakers[1].try_acquire().is_ok());
}
