use core::fmt;

/// Why a call failed, as far as retrying is concerned.
///
/// [`Classify::kind`](crate::Classify::kind) maps an error to one of these.
/// The kind decides whether the call is tried again:
///
/// | kind | retried by default | meaning |
/// |---|---|---|
/// | [`RateLimit`](Self::RateLimit) | yes | the provider asked the caller to slow down (HTTP 429) |
/// | [`Overloaded`](Self::Overloaded) | yes | the provider is over capacity (HTTP 503, 529) |
/// | [`Server`](Self::Server) | yes | the provider failed (HTTP 500, 502, 504, ...) |
/// | [`Timeout`](Self::Timeout) | yes | no answer in time |
/// | [`Network`](Self::Network) | yes | connection refused, reset or dropped |
/// | [`Client`](Self::Client) | never | the request is wrong (HTTP 400, 404, 422, ...) |
/// | [`Auth`](Self::Auth) | never | missing or rejected credentials (HTTP 401, 403) |
/// | [`Quota`](Self::Quota) | never | the account is out of credit or over its spend limit |
/// | [`Other`](Self::Other) | only when named in `on` | anything else |
///
/// A request that is wrong, unauthorised or out of credit fails the same way
/// every time, so `Client`, `Auth` and `Quota` are never retried, whatever the
/// policy says.
///
/// ```
/// use llm_resilience::ErrorKind;
///
/// assert!(ErrorKind::RateLimit.is_transient());
/// assert!(ErrorKind::Auth.is_never_retried());
/// assert_eq!(ErrorKind::Overloaded.to_string(), "Overloaded");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The provider asked the caller to slow down (HTTP 429 without a quota
    /// error).
    RateLimit,
    /// The provider is over capacity (HTTP 503 or 529).
    Overloaded,
    /// The provider failed while handling the request (HTTP 5xx other than
    /// 503 and 529, and 409).
    Server,
    /// The call took too long: a client-side timeout or HTTP 408.
    Timeout,
    /// The connection failed: refused, reset, aborted or dropped mid-body.
    Network,
    /// The request itself is wrong (HTTP 4xx other than 401, 403, 408, 409
    /// and 429). Never retried.
    Client,
    /// Credentials are missing or rejected (HTTP 401 or 403). Never retried.
    Auth,
    /// The account is out of credit or over a spend limit. Never retried:
    /// waiting does not bring credit back.
    Quota,
    /// Anything else. Retried only when named in `on`.
    Other,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::RateLimit,
        ErrorKind::Overloaded,
        ErrorKind::Server,
        ErrorKind::Timeout,
        ErrorKind::Network,
        ErrorKind::Client,
        ErrorKind::Auth,
        ErrorKind::Quota,
        ErrorKind::Other,
    ];

    /// The number of kinds.
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// Whether the kind is one of the five that usually clear by themselves:
    /// `RateLimit`, `Overloaded`, `Server`, `Timeout` and `Network`. These
    /// are the kinds retried when a policy names none.
    ///
    /// ```
    /// # use llm_resilience::ErrorKind;
    /// assert!(ErrorKind::Network.is_transient());
    /// assert!(!ErrorKind::Other.is_transient());
    /// ```
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimit
                | ErrorKind::Overloaded
                | ErrorKind::Server
                | ErrorKind::Timeout
                | ErrorKind::Network
        )
    }

    /// Whether the kind is never retried, whatever the policy says:
    /// `Client`, `Auth` and `Quota`.
    ///
    /// ```
    /// # use llm_resilience::ErrorKind;
    /// assert!(ErrorKind::Quota.is_never_retried());
    /// assert!(!ErrorKind::Timeout.is_never_retried());
    /// ```
    pub const fn is_never_retried(self) -> bool {
        matches!(self, ErrorKind::Client | ErrorKind::Auth | ErrorKind::Quota)
    }

    /// The variant's name, as written in `on = [...]`.
    ///
    /// ```
    /// # use llm_resilience::ErrorKind;
    /// assert_eq!(ErrorKind::RateLimit.name(), "RateLimit");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::RateLimit => "RateLimit",
            ErrorKind::Overloaded => "Overloaded",
            ErrorKind::Server => "Server",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::Network => "Network",
            ErrorKind::Client => "Client",
            ErrorKind::Auth => "Auth",
            ErrorKind::Quota => "Quota",
            ErrorKind::Other => "Other",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`ErrorKind`]s, built in `const` context.
///
/// ```
/// use llm_resilience::{ErrorKind, KindSet};
///
/// const ON: KindSet = KindSet::empty().with(ErrorKind::RateLimit).with(ErrorKind::Timeout);
/// assert!(ON.contains(ErrorKind::Timeout));
/// assert!(!ON.contains(ErrorKind::Server));
/// assert!(KindSet::transient().contains(ErrorKind::Network));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KindSet(u16);

impl KindSet {
    /// The set with no kind in it.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{KindSet, Policy};
    ///
    /// // A policy that retries nothing: every error ends the call at once.
    /// let policy = Policy::new().retry_on(KindSet::empty());
    /// let mut attempts = 0;
    /// let _: Result<(), io::Error> = policy.call(|| {
    ///     attempts += 1;
    ///     Err(io::ErrorKind::TimedOut.into())
    /// });
    /// assert_eq!(attempts, 1);
    /// ```
    pub const fn empty() -> Self {
        KindSet(0)
    }

    /// The five transient kinds: `RateLimit`, `Overloaded`, `Server`,
    /// `Timeout` and `Network`. The default of a policy.
    ///
    /// ```
    /// use llm_resilience::{ErrorKind, KindSet};
    ///
    /// let transient = KindSet::transient();
    /// assert_eq!(transient, KindSet::default());
    /// assert_eq!(transient.iter().count(), 5);
    /// assert!(transient.iter().all(ErrorKind::is_transient));
    /// ```
    pub const fn transient() -> Self {
        KindSet::empty()
            .with(ErrorKind::RateLimit)
            .with(ErrorKind::Overloaded)
            .with(ErrorKind::Server)
            .with(ErrorKind::Timeout)
            .with(ErrorKind::Network)
    }

    /// Every kind.
    ///
    /// ```
    /// use llm_resilience::{ErrorKind, KindSet};
    ///
    /// let all = KindSet::all();
    /// assert!(ErrorKind::ALL.iter().all(|kind| all.contains(*kind)));
    /// assert_eq!(all.iter().count(), ErrorKind::ALL.len());
    /// ```
    pub const fn all() -> Self {
        KindSet((1 << ErrorKind::COUNT) - 1)
    }

    /// This set with `kind` added.
    ///
    /// ```
    /// use llm_resilience::{ErrorKind, KindSet};
    ///
    /// // The transient kinds, and `Other` too.
    /// const ON: KindSet = KindSet::transient().with(ErrorKind::Other);
    /// assert!(ON.contains(ErrorKind::Other));
    /// assert_eq!(ON.iter().count(), 6);
    /// assert_eq!(ON.with(ErrorKind::Other), ON); // adding twice changes nothing
    /// ```
    pub const fn with(self, kind: ErrorKind) -> Self {
        KindSet(self.0 | (1 << kind.index()))
    }

    /// This set with `kind` removed.
    ///
    /// ```
    /// use llm_resilience::{ErrorKind, KindSet};
    ///
    /// // Do not retry timeouts: a long generation that timed out would time out again.
    /// const ON: KindSet = KindSet::transient().without(ErrorKind::Timeout);
    /// assert!(!ON.contains(ErrorKind::Timeout));
    /// assert!(ON.contains(ErrorKind::RateLimit));
    /// ```
    pub const fn without(self, kind: ErrorKind) -> Self {
        KindSet(self.0 & !(1 << kind.index()))
    }

    /// Whether `kind` is in the set.
    ///
    /// ```
    /// use llm_resilience::{ErrorKind, KindSet};
    ///
    /// let on = KindSet::empty().with(ErrorKind::RateLimit);
    /// assert!(on.contains(ErrorKind::RateLimit));
    /// assert!(!on.contains(ErrorKind::Overloaded));
    /// ```
    pub const fn contains(self, kind: ErrorKind) -> bool {
        self.0 & (1 << kind.index()) != 0
    }

    /// Whether the set has no kind in it.
    ///
    /// ```
    /// use llm_resilience::{ErrorKind, KindSet};
    ///
    /// assert!(KindSet::empty().is_empty());
    /// assert!(!KindSet::transient().is_empty());
    /// let gone = KindSet::empty().with(ErrorKind::Server).without(ErrorKind::Server);
    /// assert!(gone.is_empty());
    /// ```
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in declaration order.
    ///
    /// ```
    /// use llm_resilience::{ErrorKind, KindSet};
    ///
    /// let on = KindSet::empty().with(ErrorKind::Timeout).with(ErrorKind::RateLimit);
    /// let names: Vec<&str> = on.iter().map(ErrorKind::name).collect();
    /// assert_eq!(names, ["RateLimit", "Timeout"]); // declaration order
    /// ```
    pub fn iter(self) -> impl Iterator<Item = ErrorKind> {
        ErrorKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

impl Default for KindSet {
    /// The five transient kinds, as [`KindSet::transient`].
    fn default() -> Self {
        KindSet::transient()
    }
}

impl fmt::Debug for KindSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<ErrorKind> for KindSet {
    fn from_iter<I: IntoIterator<Item = ErrorKind>>(iter: I) -> Self {
        iter.into_iter().fold(KindSet::empty(), KindSet::with)
    }
}
