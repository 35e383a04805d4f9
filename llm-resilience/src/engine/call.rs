#[cfg(feature = "tokio")]
use crate::engine::attempt::Deferred;
use crate::engine::driver::{Call, Ending};
#[cfg(feature = "tokio")]
use crate::engine::first::Lazy;
use crate::engine::first::{self, Light};
use crate::engine::state::{Refusals, Start, State};
use crate::guards::{FailFast, Guards, NoBreaker, Refuse};
use crate::observe::trace::policy_span;
use crate::{
    AdaptiveLimiter, CircuitBreaker, CircuitOpen, Classify, Policy, RetryBudget, RetryEvent,
};

impl Policy {
    /// Run `op` under this policy: call it until it succeeds, fails with an
    /// error not worth retrying, or the policy gives up, sleeping between
    /// attempts. Giving up returns the last error unchanged.
    ///
    /// This is the engine `#[retry]` runs on, for policies built at run time.
    /// A deadline stops retrying but cannot interrupt a sync attempt.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{Policy, Wait};
    ///
    /// let policy = Policy::new().max_attempts(4).wait(Wait::fixed(Duration::from_millis(1)));
    /// let mut calls = 0;
    /// let result: Result<u32, std::io::Error> = policy.call(|| {
    ///     calls += 1;
    ///     if calls < 3 {
    ///         Err(std::io::ErrorKind::TimedOut.into())
    ///     } else {
    ///         Ok(calls)
    ///     }
    /// });
    /// assert_eq!(result.unwrap(), 3);
    /// ```
    pub fn call<T, E, F>(&self, op: F) -> Result<T, E>
    where
        E: Classify + From<crate::Elapsed>,
        F: FnMut() -> Result<T, E>,
    {
        self.hooks().call(op)
    }

    /// Run the future that `op` makes under this policy, as
    /// [`call`](Policy::call) does for sync operations. Sleeps on tokio's
    /// timer. With a deadline or attempt timeout, the attempt in flight is cut
    /// off when either comes and reported as `E::from(Elapsed)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{Elapsed, Policy, Wait};
    ///
    /// #[derive(Debug)]
    /// struct Down;
    /// impl llm_resilience::Classify for Down {
    ///     fn kind(&self) -> llm_resilience::ErrorKind {
    ///         llm_resilience::ErrorKind::Overloaded
    ///     }
    /// }
    /// impl From<Elapsed> for Down {
    ///     fn from(_: Elapsed) -> Self {
    ///         Down
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let policy = Policy::new().wait(Wait::fixed(Duration::from_millis(1)));
    /// let result: Result<(), Down> = policy.call_async(|| async { Err(Down) }).await;
    /// assert!(result.is_err());
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn call_async<T, E, F, Fut>(&self, mut op: F) -> Result<T, E>
    where
        E: Classify + From<crate::Elapsed>,
        F: FnMut() -> Fut,
        Fut: core::future::Future<Output = Result<T, E>>,
    {
        // The driver's loop, here rather than through `Hooks::call_async`:
        // one future less to build and poll on every call. The call is made
        // only if its first attempt fails or has to be admitted.
        let hooks = self.hooks();
        let light = hooks.light();
        let mut call =
            Lazy::new(|| hooks.driver(Start::tokio(self, &crate::metrics::POLICY_KEYS), false));
        loop {
            // `op` runs when the attempt is first polled: after admission (a
            // refused call never calls it) and inside the attempt, so that
            // `attempt()` in `op` sees it and the call's idempotency key.
            let body = core::pin::pin!(Deferred::new(&mut op));
            if let Some(ending) = crate::__lazy_turn!(call, &light, body, return) {
                return ending.into_result();
            }
        }
    }

    /// Add a predicate that must also hold for an error to be retried.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{KindSet, ErrorKind, Policy};
    ///
    /// let policy = Policy::new().retry_on(KindSet::transient().with(ErrorKind::Other));
    /// let result: Result<(), io::Error> = policy
    ///     .when(|e: &io::Error| e.kind() != io::ErrorKind::PermissionDenied)
    ///     .call(|| Err(io::ErrorKind::PermissionDenied.into()));
    /// assert!(result.is_err());
    /// ```
    pub fn when<E, W>(&self, when: W) -> Hooks<'_, W, NoHook<E>>
    where
        W: Fn(&E) -> bool,
    {
        Hooks {
            policy: self,
            when,
            on_retry: |_| {},
            guards: Guards::NONE,
            refuse: NoBreaker,
        }
    }

    /// Add a hook called before each sleep, with what failed and how long the
    /// call will wait.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{Policy, Wait};
    ///
    /// let policy = Policy::new().wait(Wait::none());
    /// let result: Result<(), io::Error> = policy
    ///     .on_retry(|event| eprintln!("attempt {} failed: {}", event.attempt(), event.error()))
    ///     .call(|| Err(io::ErrorKind::TimedOut.into()));
    /// assert!(result.is_err());
    /// ```
    pub fn on_retry<E, H>(&self, on_retry: H) -> Hooks<'_, RetryAll<E>, H>
    where
        H: Fn(&RetryEvent<'_, E>),
    {
        Hooks {
            policy: self,
            when: |_| true,
            on_retry,
            guards: Guards::NONE,
            refuse: NoBreaker,
        }
    }

    /// Walk a list of providers or models with this policy: run `op` on the
    /// first item, retried as [`call`](Policy::call) does; when that gives
    /// up with an error whose kind is in [`fallback_on`](Policy::fallback_on),
    /// go on to the next item, and so on. One deadline covers the whole
    /// chain. Returns the first success or the last error; `None` when
    /// `items` is empty.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{Policy, Wait};
    ///
    /// let models = ["gpt-4o", "claude-sonnet", "claude-haiku"];
    /// let policy = Policy::new().max_attempts(2).wait(Wait::none());
    /// let mut tried = Vec::new();
    /// let reply = policy.call_each(models, |model| {
    ///     tried.push(*model);
    ///     if *model == "claude-haiku" {
    ///         Ok(format!("answer from {model}"))
    ///     } else {
    ///         Err(io::Error::from(io::ErrorKind::ConnectionRefused))
    ///     }
    /// });
    /// assert_eq!(reply.unwrap().unwrap(), "answer from claude-haiku");
    /// assert_eq!(tried, ["gpt-4o", "gpt-4o", "claude-sonnet", "claude-sonnet", "claude-haiku"]);
    /// ```
    pub fn call_each<I, T, E, F>(&self, items: I, op: F) -> Option<Result<T, E>>
    where
        I: IntoIterator,
        E: Classify + From<crate::Elapsed>,
        F: FnMut(&I::Item) -> Result<T, E>,
    {
        self.hooks().call_each(items, op)
    }

    /// [`call_each`](Policy::call_each) for async operations, retried as
    /// [`call_async`](Policy::call_async) does.
    ///
    /// ```
    /// # use llm_resilience::{Classify, Elapsed, ErrorKind};
    /// # #[derive(Debug)]
    /// # struct Overloaded;
    /// # impl Classify for Overloaded {
    /// #     fn kind(&self) -> ErrorKind {
    /// #         ErrorKind::Overloaded
    /// #     }
    /// # }
    /// # impl From<Elapsed> for Overloaded {
    /// #     fn from(_: Elapsed) -> Self {
    /// #         Overloaded
    /// #     }
    /// # }
    /// use llm_resilience::{Policy, Wait};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let policy = Policy::new().max_attempts(2).wait(Wait::none());
    /// let reply = policy
    ///     .call_each_async(["gpt-4o", "claude-sonnet"], |model| {
    ///         let model = *model;
    ///         async move {
    ///             match model {
    ///                 "gpt-4o" => Err(Overloaded),
    ///                 _ => Ok(format!("answer from {model}")),
    ///             }
    ///         }
    ///     })
    ///     .await;
    /// assert_eq!(reply.unwrap().unwrap(), "answer from claude-sonnet");
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn call_each_async<I, T, E, F, Fut>(&self, items: I, op: F) -> Option<Result<T, E>>
    where
        I: IntoIterator,
        E: Classify + From<crate::Elapsed>,
        F: FnMut(&I::Item) -> Fut,
        Fut: core::future::Future<Output = Result<T, E>>,
    {
        self.hooks().call_each_async(items, op).await
    }

    /// Run calls under a circuit breaker: a call it refuses fails fast
    /// with `E::from(CircuitOpen)`, without running; every attempt's outcome
    /// is reported to it, and a retry it refuses ends the call with its last
    /// error. See [`CircuitBreaker`].
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{CircuitBreaker, CircuitOpen, Classify, ErrorKind, Policy, Wait};
    ///
    /// #[derive(Debug)]
    /// enum Error {
    ///     Down,
    ///     Open(CircuitOpen),
    /// }
    /// impl Classify for Error {
    ///     fn kind(&self) -> ErrorKind {
    ///         ErrorKind::Overloaded
    ///     }
    /// }
    /// impl From<CircuitOpen> for Error {
    ///     fn from(open: CircuitOpen) -> Self {
    ///         Error::Open(open)
    ///     }
    /// }
    /// # impl From<llm_resilience::Elapsed> for Error {
    /// #     fn from(_: llm_resilience::Elapsed) -> Self {
    /// #         unreachable!("no deadline")
    /// #     }
    /// # }
    ///
    /// static BREAKER: CircuitBreaker = CircuitBreaker::new().consecutive_failures(2);
    /// let policy = Policy::new().max_attempts(2).wait(Wait::none());
    /// let first: Result<(), Error> = policy.breaker(&BREAKER).call(|| Err(Error::Down));
    /// assert!(matches!(first, Err(Error::Down))); // two failures: the breaker opens
    /// let second: Result<(), Error> = policy.breaker(&BREAKER).call(|| Ok(()));
    /// assert!(matches!(second, Err(Error::Open(_)))); // refused without running
    /// ```
    pub fn breaker<'a, E: From<CircuitOpen>>(
        &'a self,
        breaker: &'a CircuitBreaker,
    ) -> Hooks<'a, RetryAll<E>, NoHook<E>, FailFast<E>> {
        self.hooks().breaker(breaker)
    }

    /// Count calls and retries against a retry budget: a retry it refuses
    /// ends the call with its last error. See [`RetryBudget`].
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{Policy, RetryBudget, Wait};
    ///
    /// static BUDGET: RetryBudget = RetryBudget::new().ratio(0.0).min_retries_per_second(0);
    /// let policy = Policy::new().max_attempts(5).wait(Wait::none());
    /// let mut attempts = 0;
    /// let result: Result<(), io::Error> = policy.budget(&BUDGET).call(|| {
    ///     attempts += 1;
    ///     Err(io::ErrorKind::TimedOut.into())
    /// });
    /// assert!(result.is_err());
    /// assert_eq!(attempts, 1); // an empty budget allows no retry
    /// ```
    pub fn budget<'a, E>(&'a self, budget: &'a RetryBudget) -> Hooks<'a, RetryAll<E>, NoHook<E>> {
        self.hooks().budget(budget)
    }

    /// Pace every attempt with an adaptive rate limiter, and report each
    /// outcome to it. See [`AdaptiveLimiter`].
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{AdaptiveLimiter, Policy};
    ///
    /// static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
    /// let result: Result<u32, io::Error> = Policy::new().limiter(&LIMITER).call(|| Ok(7));
    /// assert_eq!(result.unwrap(), 7);
    /// ```
    pub fn limiter<'a, E>(
        &'a self,
        limiter: &'a AdaptiveLimiter,
    ) -> Hooks<'a, RetryAll<E>, NoHook<E>> {
        self.hooks().limiter(limiter)
    }

    fn hooks<E>(&self) -> Hooks<'_, RetryAll<E>, NoHook<E>> {
        Hooks {
            policy: self,
            when: |_| true,
            on_retry: |_| {},
            guards: Guards::NONE,
            refuse: NoBreaker,
        }
    }
}

/// The predicate of a [`Hooks`] that was given none: every error of a
/// retried kind is retried.
///
/// ```
/// use std::io;
/// use llm_resilience::{Policy, RetryBudget, Wait};
/// use llm_resilience::hooks::{Hooks, NoHook, RetryAll};
///
/// static POLICY: Policy = Policy::new().wait(Wait::none());
/// static BUDGET: RetryBudget = RetryBudget::new();
///
/// // A client that keeps its hooks. No `when` was given, so the predicate is
/// // a `RetryAll`: every error of a retried kind is retried.
/// struct Client {
///     hooks: Hooks<'static, RetryAll<io::Error>, NoHook<io::Error>>,
/// }
///
/// let client = Client { hooks: POLICY.budget(&BUDGET) };
/// let mut attempts = 0;
/// let _ = client.hooks.call(|| {
///     attempts += 1;
///     Err::<(), _>(io::Error::from(io::ErrorKind::TimedOut))
/// });
/// assert_eq!(attempts, 3);
/// ```
pub type RetryAll<E> = fn(&E) -> bool;

/// The `on_retry` hook of a [`Hooks`] that was given none.
///
/// ```
/// use std::io;
/// use llm_resilience::{AdaptiveLimiter, Policy};
/// use llm_resilience::hooks::{Hooks, NoHook, RetryAll};
///
/// static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
///
/// // Hooks with a limiter and no `on_retry`: the hook is a `NoHook`.
/// fn paced(policy: &Policy) -> Hooks<'_, RetryAll<io::Error>, NoHook<io::Error>> {
///     policy.limiter(&LIMITER)
/// }
///
/// let reply = paced(&Policy::new()).call(|| Ok("pong"));
/// assert_eq!(reply.unwrap(), "pong");
/// ```
pub type NoHook<E> = fn(&RetryEvent<'_, E>);

/// A [`Policy`] with hooks or shared guards attached: a `when` predicate, an
/// `on_retry` hook, a [`CircuitBreaker`], a [`RetryBudget`], an
/// [`AdaptiveLimiter`]. Made by [`Policy::when`], [`Policy::on_retry`],
/// [`Policy::breaker`], [`Policy::budget`] and [`Policy::limiter`], and
/// extended by the methods of the same names.
///
/// ```
/// use std::io;
/// use llm_resilience::{AdaptiveLimiter, Policy, RetryBudget, Wait};
///
/// static BUDGET: RetryBudget = RetryBudget::new();
/// static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
///
/// let policy = Policy::new().wait(Wait::none());
/// let result: Result<(), io::Error> = policy
///     .budget(&BUDGET)
///     .limiter(&LIMITER)
///     .on_retry(|event| eprintln!("retrying after {}", event.error()))
///     .call(|| Ok(()));
/// assert!(result.is_ok());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Hooks<'p, W, H, R = NoBreaker> {
    policy: &'p Policy,
    when: W,
    on_retry: H,
    guards: Guards<'p>,
    refuse: R,
}

impl<'p, W, H, R> Hooks<'p, W, H, R> {
    /// Replace the predicate that must also hold for an error to be retried.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{Policy, RetryBudget, Wait};
    ///
    /// let budget = RetryBudget::new();
    /// let policy = Policy::new().max_attempts(5).wait(Wait::none());
    /// let mut attempts = 0;
    /// let _: Result<(), io::Error> = policy
    ///     .budget(&budget)
    ///     .when(|e: &io::Error| e.kind() != io::ErrorKind::ConnectionRefused)
    ///     .call(|| {
    ///         attempts += 1;
    ///         Err(io::ErrorKind::ConnectionRefused.into())
    ///     });
    /// assert_eq!(attempts, 1); // the predicate turned the retry down
    /// ```
    pub fn when<E, W2: Fn(&E) -> bool>(self, when: W2) -> Hooks<'p, W2, H, R> {
        Hooks {
            policy: self.policy,
            when,
            on_retry: self.on_retry,
            guards: self.guards,
            refuse: self.refuse,
        }
    }

    /// Replace the hook called before each sleep.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::io;
    /// use llm_resilience::{Policy, RetryBudget, Wait};
    ///
    /// let budget = RetryBudget::new();
    /// let policy = Policy::new().max_attempts(3).wait(Wait::none());
    /// let failed = RefCell::new(Vec::new());
    /// let _: Result<(), io::Error> = policy
    ///     .budget(&budget)
    ///     .on_retry(|event| failed.borrow_mut().push(event.attempt()))
    ///     .call(|| Err(io::ErrorKind::TimedOut.into()));
    /// assert_eq!(failed.into_inner(), [1, 2]); // not called when the call gives up
    /// ```
    pub fn on_retry<E, H2: Fn(&RetryEvent<'_, E>)>(self, on_retry: H2) -> Hooks<'p, W, H2, R> {
        Hooks {
            policy: self.policy,
            when: self.when,
            on_retry,
            guards: self.guards,
            refuse: self.refuse,
        }
    }

    /// Run calls under a circuit breaker, as [`Policy::breaker`] does.
    ///
    /// ```
    /// # use llm_resilience::{CircuitOpen, Classify, ErrorKind};
    /// # #[derive(Debug)]
    /// # enum ChatError {
    /// #     Unavailable(CircuitOpen),
    /// # }
    /// # impl Classify for ChatError {
    /// #     fn kind(&self) -> ErrorKind {
    /// #         ErrorKind::Overloaded
    /// #     }
    /// # }
    /// # impl From<CircuitOpen> for ChatError {
    /// #     fn from(open: CircuitOpen) -> Self {
    /// #         ChatError::Unavailable(open)
    /// #     }
    /// # }
    /// # impl From<llm_resilience::Elapsed> for ChatError {
    /// #     fn from(_: llm_resilience::Elapsed) -> Self {
    /// #         unreachable!("no deadline")
    /// #     }
    /// # }
    /// use llm_resilience::{CircuitBreaker, Policy, RetryBudget};
    ///
    /// let budget = RetryBudget::new();
    /// let breaker = CircuitBreaker::new();
    /// breaker.isolate(); // held open during the provider's announced outage
    /// let mut sent = false;
    /// let result: Result<(), ChatError> = Policy::new().budget(&budget).breaker(&breaker).call(|| {
    ///     sent = true;
    ///     Ok(())
    /// });
    /// assert!(matches!(result, Err(ChatError::Unavailable(open)) if open.is_isolated()));
    /// assert!(!sent);
    /// ```
    pub fn breaker<E: From<CircuitOpen>>(
        self,
        breaker: &'p CircuitBreaker,
    ) -> Hooks<'p, W, H, FailFast<E>> {
        Hooks {
            policy: self.policy,
            when: self.when,
            on_retry: self.on_retry,
            guards: Guards {
                breaker: Some(breaker),
                ..self.guards
            },
            refuse: E::from,
        }
    }

    /// Count calls and retries against a retry budget, as
    /// [`Policy::budget`] does.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::io;
    /// use llm_resilience::{Policy, RetryBudget, Wait};
    ///
    /// // At most one retry per call, over every call that shares the budget.
    /// let budget = RetryBudget::new().ratio(1.0).min_retries_per_second(0);
    /// let policy = Policy::new().max_attempts(5).wait(Wait::none());
    /// let retries = Cell::new(0);
    /// let _: Result<(), io::Error> = policy
    ///     .on_retry(|_| retries.set(retries.get() + 1))
    ///     .budget(&budget)
    ///     .call(|| Err(io::ErrorKind::TimedOut.into()));
    /// assert_eq!(retries.get(), 1);
    /// ```
    pub fn budget(mut self, budget: &'p RetryBudget) -> Self {
        self.guards.budget = Some(budget);
        self
    }

    /// Pace attempts with an adaptive rate limiter, as [`Policy::limiter`]
    /// does.
    ///
    /// ```
    /// # use llm_resilience::{Classify, ErrorKind};
    /// # #[derive(Debug)]
    /// # struct TooManyRequests;
    /// # impl Classify for TooManyRequests {
    /// #     fn kind(&self) -> ErrorKind {
    /// #         ErrorKind::RateLimit
    /// #     }
    /// # }
    /// # impl From<llm_resilience::Elapsed> for TooManyRequests {
    /// #     fn from(_: llm_resilience::Elapsed) -> Self {
    /// #         unreachable!("no deadline")
    /// #     }
    /// # }
    /// use llm_resilience::{AdaptiveLimiter, Policy, RetryBudget};
    ///
    /// let budget = RetryBudget::new();
    /// let limiter = AdaptiveLimiter::new();
    /// assert_eq!(limiter.rate(), None); // unlimited until a 429
    /// let policy = Policy::new().max_attempts(1);
    /// let _: Result<(), TooManyRequests> = policy
    ///     .budget(&budget)
    ///     .limiter(&limiter)
    ///     .call(|| Err(TooManyRequests));
    /// assert!(limiter.rate().is_some()); // the 429 started pacing
    /// ```
    pub fn limiter(mut self, limiter: &'p AdaptiveLimiter) -> Self {
        self.guards.limiter = Some(limiter);
        self
    }

    /// State what each attempt costs in tokens (the prompt's tokens plus
    /// `max_tokens`, as the provider counts them against its tokens-per-
    /// minute limit): once the limiter knows the provider's token limit
    /// ([`AdaptiveLimiter::observe_token_limit`], which
    /// `http::check` reads from every answer), each
    /// attempt also waits until the provider's token bucket holds that many.
    /// Without a limiter it does nothing.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{AdaptiveLimiter, Policy};
    ///
    /// static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
    /// let prompt = "Summarise the attached report.";
    /// let tokens = prompt.len() as u64 / 4 + 1_024; // prompt and max_tokens
    /// let reply: Result<&str, io::Error> = Policy::new()
    ///     .limiter(&LIMITER)
    ///     .cost(tokens)
    ///     .call(|| Ok("summary"));
    /// assert_eq!(reply.unwrap(), "summary");
    /// ```
    pub fn cost(mut self, tokens: u64) -> Self {
        self.guards.cost = tokens;
        self
    }

    /// Run `op` as [`Policy::call`] does, with these hooks.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{Policy, RetryBudget, Wait};
    ///
    /// let budget = RetryBudget::new();
    /// let policy = Policy::new().max_attempts(3).wait(Wait::none());
    /// let mut attempts = 0;
    /// let reply: Result<&str, io::Error> = policy.budget(&budget).call(|| {
    ///     attempts += 1;
    ///     if attempts == 1 {
    ///         return Err(io::ErrorKind::ConnectionReset.into());
    ///     }
    ///     Ok("Hello!")
    /// });
    /// assert_eq!(reply.unwrap(), "Hello!");
    /// assert_eq!(budget.available(), 99); // 100 to start with; one retry spent
    /// ```
    pub fn call<T, E, F>(&self, op: F) -> Result<T, E>
    where
        E: Classify + From<crate::Elapsed>,
        F: FnMut() -> Result<T, E>,
        W: Fn(&E) -> bool,
        H: Fn(&RetryEvent<'_, E>),
        R: Refuse<E>,
    {
        let make = || {
            self.driver(
                Start::sync(self.policy, &crate::metrics::POLICY_KEYS),
                false,
            )
        };
        first::run_sync::<_, _, _, Result<T, E>>(&self.light(), make, op)
    }

    /// Run the future that `op` makes as [`Policy::call_async`] does, with
    /// these hooks.
    ///
    /// ```
    /// # use llm_resilience::{Classify, Elapsed, ErrorKind};
    /// # #[derive(Debug)]
    /// # struct Overloaded;
    /// # impl Classify for Overloaded {
    /// #     fn kind(&self) -> ErrorKind {
    /// #         ErrorKind::Overloaded
    /// #     }
    /// # }
    /// # impl From<Elapsed> for Overloaded {
    /// #     fn from(_: Elapsed) -> Self {
    /// #         Overloaded
    /// #     }
    /// # }
    /// use llm_resilience::{Policy, RetryBudget, Wait};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let budget = RetryBudget::new();
    /// let policy = Policy::new().max_attempts(3).wait(Wait::none());
    /// let mut attempts = 0;
    /// let reply = policy
    ///     .budget(&budget)
    ///     .call_async(|| {
    ///         attempts += 1;
    ///         let overloaded = attempts == 1;
    ///         async move { if overloaded { Err(Overloaded) } else { Ok("answer") } }
    ///     })
    ///     .await;
    /// assert_eq!(reply.unwrap(), "answer");
    /// assert_eq!(budget.available(), 99); // one retry spent
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn call_async<T, E, F, Fut>(&self, mut op: F) -> Result<T, E>
    where
        E: Classify + From<crate::Elapsed>,
        F: FnMut() -> Fut,
        Fut: core::future::Future<Output = Result<T, E>>,
        W: Fn(&E) -> bool,
        H: Fn(&RetryEvent<'_, E>),
        R: Refuse<E>,
    {
        let light = self.light();
        let mut call = Lazy::new(|| {
            self.driver(
                Start::tokio(self.policy, &crate::metrics::POLICY_KEYS),
                false,
            )
        });
        loop {
            // `op` runs when the attempt is first polled: after admission (a
            // refused call never calls it) and inside the attempt, so that
            // `attempt()` in `op` sees it and the call's idempotency key.
            let body = core::pin::pin!(Deferred::new(&mut op));
            if let Some(ending) = crate::__lazy_turn!(call, &light, body, return) {
                return ending.into_result();
            }
        }
    }

    /// Run the chain as [`Policy::call_each`] does, with these hooks.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::io;
    /// use llm_resilience::{Policy, Wait};
    ///
    /// let retries = Cell::new(0);
    /// let policy = Policy::new().max_attempts(2).wait(Wait::none());
    /// let reply = policy
    ///     .on_retry(|_| retries.set(retries.get() + 1))
    ///     .call_each(["gpt-4o-mini", "gpt-4o"], |model| match *model {
    ///         "gpt-4o" => Ok("answer"),
    ///         _ => Err(io::Error::from(io::ErrorKind::TimedOut)),
    ///     });
    /// assert_eq!(reply.unwrap().unwrap(), "answer");
    /// assert_eq!(retries.get(), 1); // gpt-4o-mini was tried twice
    /// ```
    pub fn call_each<I, T, E, F>(&self, items: I, mut op: F) -> Option<Result<T, E>>
    where
        I: IntoIterator,
        E: Classify + From<crate::Elapsed>,
        F: FnMut(&I::Item) -> Result<T, E>,
        W: Fn(&E) -> bool,
        H: Fn(&RetryEvent<'_, E>),
        R: Refuse<E>,
    {
        // Every item runs as a fallback of the chain: a fresh call that ends
        // no later than the chain's deadline.
        let chain = State::new(Start::sync(self.policy, &crate::metrics::POLICY_KEYS))
            .fallback(&self.refusals());
        let mut last = None;
        for item in items {
            let ending = chain.run_sync(|| {
                self.driver(Start::sync(self.policy, &crate::metrics::POLICY_KEYS), true)
                    .run_sync(|| op(&item))
            });
            match ending {
                Ending::Return(result) => return Some(result),
                Ending::FallBack(_, error) => last = Some(error),
            }
        }
        last.map(Err)
    }

    /// Run the chain as [`Policy::call_each_async`] does, with these hooks.
    ///
    /// ```
    /// # use llm_resilience::{Classify, Elapsed, ErrorKind};
    /// # #[derive(Debug)]
    /// # struct Overloaded;
    /// # impl Classify for Overloaded {
    /// #     fn kind(&self) -> ErrorKind {
    /// #         ErrorKind::Overloaded
    /// #     }
    /// # }
    /// # impl From<Elapsed> for Overloaded {
    /// #     fn from(_: Elapsed) -> Self {
    /// #         Overloaded
    /// #     }
    /// # }
    /// use llm_resilience::{Policy, RetryBudget, Wait};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let budget = RetryBudget::new();
    /// let policy = Policy::new().max_attempts(2).wait(Wait::none());
    /// let reply = policy
    ///     .budget(&budget)
    ///     .call_each_async(["us-east", "eu-west"], |region| {
    ///         let down = *region == "us-east";
    ///         async move { if down { Err(Overloaded) } else { Ok("answer") } }
    ///     })
    ///     .await;
    /// assert_eq!(reply.unwrap().unwrap(), "answer");
    /// assert_eq!(budget.available(), 99); // us-east was retried once
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn call_each_async<I, T, E, F, Fut>(
        &self,
        items: I,
        mut op: F,
    ) -> Option<Result<T, E>>
    where
        I: IntoIterator,
        E: Classify + From<crate::Elapsed>,
        F: FnMut(&I::Item) -> Fut,
        Fut: core::future::Future<Output = Result<T, E>>,
        W: Fn(&E) -> bool,
        H: Fn(&RetryEvent<'_, E>),
        R: Refuse<E>,
    {
        // Every item runs as a fallback of the chain: a fresh call that ends
        // no later than the chain's deadline (cut off there).
        let chain = State::new(Start::tokio(self.policy, &crate::metrics::POLICY_KEYS))
            .fallback(&self.refusals());
        let mut last = None;
        for item in items {
            let ending = chain
                .run_async(async {
                    let mut call = self.driver(
                        Start::tokio(self.policy, &crate::metrics::POLICY_KEYS),
                        true,
                    );
                    loop {
                        let body = core::pin::pin!(Deferred::new(|| op(&item)));
                        if let Some(ending) = call.attempt_async(body).await {
                            return ending;
                        }
                    }
                })
                .await;
            match ending {
                Ending::Return(result) => return Some(result),
                Ending::FallBack(_, error) => last = Some(error),
            }
        }
        last.map(Err)
    }
}

impl<W, H, R> Hooks<'_, W, H, R> {
    /// How a call under these hooks reports a refusal.
    pub(crate) fn refusals<E: From<crate::Elapsed>>(&self) -> Refusals<E>
    where
        R: Refuse<E>,
    {
        Refusals {
            open: self.refuse.conversion(),
            deadline: Some(E::from),
            cut_off: Some(E::from),
        }
    }
}

impl<'p, W, H, R> Hooks<'p, W, H, R> {
    /// The policy and the guards, for a call that keeps its own copy of
    /// the hooks (a stream that outlives the `Hooks` it was opened with).
    #[cfg(all(feature = "tokio", feature = "stream"))]
    pub(crate) fn parts(&self) -> (&'p Policy, Guards<'p>, &W, &H) {
        (self.policy, self.guards, &self.when, &self.on_retry)
    }

    /// The driver of one call of `state` under these hooks.
    /// What a call's first attempt needs to run before the call is made
    /// (see [`crate::engine::first`]).
    #[inline(always)]
    fn light(&self) -> Light<'p> {
        let guarded = self.guards.breaker.is_some() || self.guards.budget.is_some();
        Light::new(
            self.policy,
            &crate::metrics::POLICY_KEYS,
            self.guards.limiter,
            guarded,
        )
    }

    fn driver<E>(&self, start: Start<'p>, fallback: bool) -> Call<'p, E, &W, &H>
    where
        E: Classify + From<crate::Elapsed>,
        W: Fn(&E) -> bool,
        H: Fn(&RetryEvent<'_, E>),
        R: Refuse<E>,
    {
        Call::new(
            start.guarded(self.guards),
            self.refusals(),
            &self.when,
            &self.on_retry,
            policy_span,
            fallback,
        )
    }
}
