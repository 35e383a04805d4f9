//! Fallback chains: `fallback = path` and `Policy::call_each`.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::RefCell;
use std::time::Duration;

use llm_resilience::{
    attempt, retry, testing, Classify, Elapsed, ErrorKind, KindSet, Policy, Wait,
};

#[derive(Debug, Clone, PartialEq)]
struct ApiError {
    kind: ErrorKind,
    model: &'static str,
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl From<Elapsed> for ApiError {
    fn from(_: Elapsed) -> Self {
        ApiError {
            kind: ErrorKind::Timeout,
            model: "cut off",
        }
    }
}

thread_local! {
    /// (model, prompt, attempt number) of every attempt on this thread.
    static CALLS: RefCell<Vec<(&'static str, String, u32)>> = const { RefCell::new(Vec::new()) };
    /// The kind each model fails with; absent means it answers.
    static FAILS: RefCell<Vec<(&'static str, ErrorKind)>> = const { RefCell::new(Vec::new()) };
}

fn setup(fails: &[(&'static str, ErrorKind)]) {
    FAILS.with(|f| *f.borrow_mut() = fails.to_vec());
    CALLS.with(|c| c.borrow_mut().clear());
}

fn calls() -> Vec<(&'static str, String, u32)> {
    CALLS.with(|c| c.borrow().clone())
}

fn model(model: &'static str, prompt: &str) -> Result<String, ApiError> {
    CALLS.with(|c| {
        c.borrow_mut()
            .push((model, prompt.to_owned(), attempt().number()))
    });
    match FAILS.with(|f| {
        f.borrow()
            .iter()
            .find(|(m, _)| *m == model)
            .map(|(_, k)| *k)
    }) {
        Some(kind) => Err(ApiError { kind, model }),
        None => Ok(format!("{model}: {prompt}")),
    }
}

#[retry(max_attempts = 2, wait = none, fallback = sonnet)]
fn gpt(prompt: &str, user: u32) -> Result<String, ApiError> {
    model("gpt-4o", &format!("{prompt}/{user}"))
}

#[retry(max_attempts = 2, wait = none, fallback = haiku)]
fn sonnet(prompt: &str, user: u32) -> Result<String, ApiError> {
    model("sonnet", &format!("{prompt}/{user}"))
}

#[retry(max_attempts = 3, wait = none)]
fn haiku(prompt: &str, user: u32) -> Result<String, ApiError> {
    model("haiku", &format!("{prompt}/{user}"))
}

#[test]
fn a_chain_of_three_tries_each_in_order_with_the_same_arguments() {
    setup(&[
        ("gpt-4o", ErrorKind::Overloaded),
        ("sonnet", ErrorKind::RateLimit),
    ]);
    assert_eq!(gpt("hi", 7).unwrap(), "haiku: hi/7");
    let seen = calls();
    let expected = [
        ("gpt-4o", 1),
        ("gpt-4o", 2),
        ("sonnet", 1),
        ("sonnet", 2),
        ("haiku", 1),
    ];
    assert_eq!(seen.len(), expected.len(), "{seen:?}");
    for ((m, prompt, n), (em, en)) in seen.iter().zip(expected) {
        assert_eq!((*m, *n), (em, en));
        assert_eq!(prompt, "hi/7");
    }
}

#[test]
fn the_chain_stops_at_the_first_success() {
    setup(&[("gpt-4o", ErrorKind::Server)]);
    assert_eq!(gpt("hi", 1).unwrap(), "sonnet: hi/1");
    assert!(calls().iter().all(|(m, _, _)| *m != "haiku"));
}

#[test]
fn the_last_error_comes_back_when_every_link_fails() {
    setup(&[
        ("gpt-4o", ErrorKind::Server),
        ("sonnet", ErrorKind::Server),
        ("haiku", ErrorKind::Timeout),
    ]);
    let e = gpt("hi", 1).unwrap_err();
    assert_eq!((e.kind, e.model), (ErrorKind::Timeout, "haiku"));
    assert_eq!(calls().len(), 2 + 2 + 3);
}

#[test]
fn client_and_auth_errors_do_not_fall_back_by_default() {
    for kind in [ErrorKind::Client, ErrorKind::Auth] {
        setup(&[("gpt-4o", kind)]);
        let e = gpt("hi", 1).unwrap_err();
        assert_eq!((e.kind, e.model), (kind, "gpt-4o"));
        assert_eq!(calls().len(), 1, "{kind}");
    }
    // Quota on one provider is a reason to try the next.
    setup(&[("gpt-4o", ErrorKind::Quota)]);
    assert_eq!(gpt("hi", 1).unwrap(), "sonnet: hi/1");
}

#[retry(max_attempts = 2, wait = none, fallback = haiku, fallback_on = [Client])]
fn strict(prompt: &str, user: u32) -> Result<String, ApiError> {
    model("strict", &format!("{prompt}/{user}"))
}

#[test]
fn fallback_on_chooses_the_kinds() {
    setup(&[("strict", ErrorKind::Client)]);
    assert_eq!(strict("hi", 2).unwrap(), "haiku: hi/2");
    setup(&[("strict", ErrorKind::Server)]);
    let e = strict("hi", 2).unwrap_err();
    assert_eq!(e.model, "strict", "Server is not in fallback_on");
}

struct Router {
    calls: u32,
}

impl Router {
    #[retry(max_attempts = 2, wait = none, fallback = Self::backup)]
    fn primary(&mut self, prompt: String) -> Result<String, ApiError> {
        self.calls += 1;
        let _ = prompt;
        Err(ApiError {
            kind: ErrorKind::Overloaded,
            model: "primary",
        })
    }

    fn backup(&mut self, prompt: String) -> Result<String, ApiError> {
        self.calls += 1;
        Ok(format!("backup: {prompt}"))
    }
}

#[test]
fn methods_fall_back_to_methods() {
    let mut router = Router { calls: 0 };
    assert_eq!(router.primary("x".into()).unwrap(), "backup: x");
    assert_eq!(router.calls, 3);
}

#[retry(max_attempts = 10, wait = fixed(4s), jitter = none, deadline = 10s, fallback = slow_backup)]
async fn slow_primary(prompt: &str) -> Result<String, ApiError> {
    let _ = prompt;
    Err(ApiError {
        kind: ErrorKind::Server,
        model: "slow_primary",
    })
}

#[retry(max_attempts = 10, wait = fixed(1s), jitter = none, deadline = 60s)]
async fn slow_backup(prompt: &str) -> Result<String, ApiError> {
    let left = attempt().remaining().unwrap();
    if left > Duration::from_millis(1500) {
        return Err(ApiError {
            kind: ErrorKind::Server,
            model: "slow_backup",
        });
    }
    Ok(format!("{prompt} with {left:?} left"))
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_shared_across_the_chain() {
    let start = tokio::time::Instant::now();
    // The primary sleeps 4 s twice (8 s), cannot fit a third sleep before
    // 10 s, and gives up; the backup then has 2 s left, not its own 60 s.
    let reply = slow_primary("hi").await.unwrap();
    assert!(reply.starts_with("hi with"), "{reply}");
    let elapsed = start.elapsed();
    assert!(elapsed <= Duration::from_secs(10), "{elapsed:?}");
    assert_eq!(elapsed, Duration::from_secs(9));
}

#[test]
fn call_each_walks_a_list_read_at_run_time() {
    let policy = Policy::new().max_attempts(2).wait(Wait::none());
    setup(&[("gpt-4o", ErrorKind::Overloaded)]);
    let models = ["gpt-4o", "sonnet", "haiku"];
    let reply = policy.call_each(models, |m| model(m, "hi")).unwrap();
    assert_eq!(reply.unwrap(), "sonnet: hi");
    assert_eq!(calls().len(), 3);

    setup(&[("gpt-4o", ErrorKind::Auth)]);
    let reply = policy.call_each(models, |m| model(m, "hi")).unwrap();
    assert_eq!(reply.unwrap_err().kind, ErrorKind::Auth);
    assert_eq!(calls().len(), 1);

    let policy = policy.fallback_on(KindSet::all());
    let reply = policy.call_each(models, |m| model(m, "hi")).unwrap();
    assert_eq!(reply.unwrap(), "sonnet: hi");

    let none: [&str; 0] = [];
    assert!(policy.call_each(none, |m| model(m, "hi")).is_none());
}

#[test]
fn call_each_shares_one_deadline() {
    let sleeps = testing::skip_sleeps();
    let policy = Policy::new()
        .max_attempts(5)
        .wait(Wait::fixed(Duration::from_secs(3)))
        .jitter(llm_resilience::Jitter::None)
        .deadline(Duration::from_secs(10));
    setup(&[("gpt-4o", ErrorKind::Server), ("sonnet", ErrorKind::Server)]);
    let reply = policy.call_each(["gpt-4o", "sonnet", "haiku"], |m| model(m, "hi"));
    assert_eq!(reply.unwrap().unwrap(), "haiku: hi");
    // gpt sleeps 3 + 3 + 3 s (9 s), sonnet has 1 s left: no sleep fits.
    assert_eq!(sleeps.total(), Duration::from_secs(9));
    let per_model: Vec<&str> = calls().iter().map(|c| c.0).collect();
    assert_eq!(
        per_model,
        ["gpt-4o", "gpt-4o", "gpt-4o", "gpt-4o", "sonnet", "haiku"]
    );
}

#[tokio::test(start_paused = true)]
async fn call_each_async_walks_the_list() {
    let policy = Policy::new()
        .max_attempts(2)
        .wait(Wait::fixed(Duration::from_secs(1)));
    setup(&[("gpt-4o", ErrorKind::Timeout)]);
    let reply = policy
        .call_each_async(["gpt-4o", "haiku"], |m| {
            let m = *m;
            async move { model(m, "hi") }
        })
        .await;
    assert_eq!(reply.unwrap().unwrap(), "haiku: hi");
    assert_eq!(calls().len(), 3);
}

#[retry(max_attempts = 2, wait = none, clone(messages), fallback = owned_backup)]
fn owned_primary(messages: Vec<String>) -> Result<usize, ApiError> {
    // The body consumes its per-attempt copy.
    drop(messages);
    Err(ApiError {
        kind: ErrorKind::Server,
        model: "primary",
    })
}

#[retry(max_attempts = 1, clone(messages))]
fn owned_backup(messages: Vec<String>) -> Result<usize, ApiError> {
    Ok(messages.len())
}

#[test]
fn a_fallback_gets_the_arguments_themselves_not_a_consumed_copy() {
    let messages = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    assert_eq!(owned_primary(messages), Ok(3));
}

#[retry(max_attempts = 2, wait = none, clone(prompt), fallback = owned_backup_async)]
async fn owned_primary_async(prompt: String) -> Result<String, ApiError> {
    let _consumed = prompt;
    Err(ApiError {
        kind: ErrorKind::Overloaded,
        model: "primary",
    })
}

#[retry(max_attempts = 1)]
async fn owned_backup_async(prompt: String) -> Result<String, ApiError> {
    Ok(format!("backup: {prompt}"))
}

#[tokio::test]
async fn an_async_fallback_gets_the_arguments_themselves() {
    assert_eq!(
        owned_primary_async("hi".to_owned()).await.as_deref(),
        Ok("backup: hi")
    );
}
