//! What `Policy::new()` and `ErrorKind` say, as `#[retry]` sees them: the
//! defaults of the arguments and the error kinds.
//!
//! A proc-macro crate cannot depend on `llm-resilience`, which depends on
//! it, so the macro keeps its view of the runtime here, and only here. This
//! file is plain constants with no dependencies so that the `tests` crate can
//! compile it as it is (`tests/tests/macro_defaults.rs` includes it through
//! `#[path]`) and check every entry against `Policy::new()`, `Wait`,
//! `Jitter`, `KindSet` and `ErrorKind`: a default or a kind changed on one
//! side only fails that test.

use core::time::Duration;

/// `max_attempts` when the attribute does not give it.
pub(crate) const MAX_ATTEMPTS: u32 = 3;

/// The base of the wait when the attribute does not give `wait`.
pub(crate) const WAIT_BASE: Duration = Duration::from_secs(1);

/// The cap of the wait when the attribute does not give `wait`.
pub(crate) const WAIT_CAP: Duration = Duration::from_secs(60);

/// The factor of `exponential(BASE, CAP)` written without one: that of
/// `Wait::exponential`.
pub(crate) const EXPONENTIAL_FACTOR: f64 = 2.0;

/// `jitter` when the attribute does not give it.
pub(crate) const JITTER: Jitter = Jitter::Full;

/// `retry_after_cap` when the attribute does not give it.
pub(crate) const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// The runtime's `Jitter`, one variant each, by the name `jitter = ...`
/// takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Jitter {
    Full,
    Equal,
    Decorrelated,
    None,
}

impl Jitter {
    /// Every jitter with its name in `jitter = ...`, in the order messages
    /// list them.
    pub(crate) const NAMED: [(&'static str, Jitter); 4] = [
        ("full", Jitter::Full),
        ("equal", Jitter::Equal),
        ("decorrelated", Jitter::Decorrelated),
        ("none", Jitter::None),
    ];
}

/// Whether errors of a kind are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retried {
    /// Retried when `on` is not given (`ErrorKind::is_transient`,
    /// `KindSet::transient()`).
    ByDefault,
    /// Retried only when named in `on`.
    WhenNamed,
    /// Never retried, whatever the policy says
    /// (`ErrorKind::is_never_retried`), for the reason given.
    Never(&'static str),
}

/// One of the runtime's `ErrorKind`s.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Kind {
    /// The variant's name, as written in `on = [...]` (`ErrorKind::name`).
    pub(crate) name: &'static str,
    /// Whether it is retried.
    pub(crate) retried: Retried,
    /// Whether a final error of this kind goes on to the fallback when
    /// `fallback_on` is not given.
    pub(crate) falls_back: bool,
}

/// Every `ErrorKind`, in declaration order (`ErrorKind::ALL`).
pub(crate) const KINDS: [Kind; 9] = [
    Kind {
        name: "RateLimit",
        retried: Retried::ByDefault,
        falls_back: true,
    },
    Kind {
        name: "Overloaded",
        retried: Retried::ByDefault,
        falls_back: true,
    },
    Kind {
        name: "Server",
        retried: Retried::ByDefault,
        falls_back: true,
    },
    Kind {
        name: "Timeout",
        retried: Retried::ByDefault,
        falls_back: true,
    },
    Kind {
        name: "Network",
        retried: Retried::ByDefault,
        falls_back: true,
    },
    Kind {
        name: "Client",
        retried: Retried::Never(
            "a request the provider rejects as wrong fails the same way every time",
        ),
        falls_back: false,
    },
    Kind {
        name: "Auth",
        retried: Retried::Never(
            "missing or rejected credentials do not fix themselves between attempts",
        ),
        falls_back: false,
    },
    Kind {
        name: "Quota",
        retried: Retried::Never(
            "an account out of credit or over its spend limit does not recover by waiting",
        ),
        falls_back: true,
    },
    Kind {
        name: "Other",
        retried: Retried::WhenNamed,
        falls_back: true,
    },
];
