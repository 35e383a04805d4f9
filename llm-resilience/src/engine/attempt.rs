use std::cell::Cell;
use std::fmt;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::time::Clock;

thread_local! {
    /// The frame of the attempt running on this thread, or null. Set only by
    /// [`Frame::enter`], which puts the outer value back before it returns
    /// or unwinds, and which borrows the frame for that whole time.
    static CURRENT: Cell<*const Frame<'static>> = const { Cell::new(ptr::null()) };
}

/// Run `f` with the frame of the attempt running on this thread, if any. The
/// reference cannot outlive `f`.
///
/// The crate's one `unsafe` block: reading the frame through the pointer
/// lets entering and leaving an attempt cost a pointer swap, where copying
/// the attempt in and out of the thread-local cost several times the rest
/// of a successful call.
#[inline]
#[allow(unsafe_code)]
fn with_current<R>(f: impl for<'a> FnOnce(Option<&'a Frame<'a>>) -> R) -> R {
    let frame = CURRENT.with(Cell::get);
    // SAFETY: a non-null `CURRENT` points to a frame that `Frame::enter`
    // holds borrowed while it runs on this thread, and it is reset before
    // that borrow ends; we are inside that time, on this thread, and the
    // reference handed out does not escape `f`. The frame's own lifetime,
    // erased in `CURRENT`, is shortened to that of the reference, which the
    // frame outlives.
    f(unsafe { frame.as_ref() })
}

/// What code inside an attempt can see of it: the attempt's number, the
/// call's deadline and clock, and its idempotency key. It lives in the
/// call's state (or a fallback's future); while an attempt runs, the
/// thread-local `CURRENT` points to it, so that entering and leaving an
/// attempt costs a pointer swap.
#[derive(Debug)]
pub(crate) struct Frame<'l> {
    pub(crate) key: KeyCell,
    pub(crate) deadline: Option<Instant>,
    /// The call's rate limiter, which the responses of its attempts feed
    /// (`http::observe`).
    pub(crate) limiter: Option<&'l crate::AdaptiveLimiter>,
    pub(crate) number: u32,
    pub(crate) clock: Clock,
}

impl<'l> Frame<'l> {
    #[inline]
    pub(crate) const fn new(number: u32, deadline: Option<Instant>, clock: Clock) -> Self {
        Frame {
            number,
            deadline,
            clock,
            key: KeyCell::new(),
            limiter: None,
        }
    }

    /// Run `f` as this frame's attempt: [`attempt()`] describes it while `f`
    /// runs on this thread, and an idempotency key made during `f` stays in
    /// the frame for the attempts that follow.
    #[inline]
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(*const Frame<'static>);
        impl Drop for Restore {
            #[inline]
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        // The lifetime is erased while the frame is current; `with_current`
        // hands it out no longer than `f` runs, within this borrow.
        let current = (self as *const Frame<'l>).cast::<Frame<'static>>();
        let _restore = Restore(CURRENT.with(|c| c.replace(current)));
        f()
    }

    /// The frame as the public [`Attempt`] value.
    fn attempt(&self) -> Attempt {
        Attempt {
            number: self.number,
            deadline: self.deadline,
            clock: self.clock,
            key: self.key.get(),
        }
    }
}

/// A call's idempotency key, made on first use. Two relaxed atomics: a frame
/// is entered on one thread at a time, and atomics keep it `Sync` (so that a
/// future holding it stays `Send`) at the size of the key. A version 4 key
/// always has bits set in its upper half, so zero there means none yet.
#[derive(Debug)]
pub(crate) struct KeyCell {
    hi: AtomicU64,
    lo: AtomicU64,
}

impl KeyCell {
    /// No key yet.
    pub(crate) const fn new() -> Self {
        KeyCell {
            hi: AtomicU64::new(0),
            lo: AtomicU64::new(0),
        }
    }

    /// The key, if one was made.
    #[inline]
    pub(crate) fn get(&self) -> Option<IdempotencyKey> {
        let hi = self.hi.load(Relaxed);
        if hi == 0 {
            return None;
        }
        let lo = self.lo.load(Relaxed);
        Some(IdempotencyKey((u128::from(hi) << 64) | u128::from(lo)))
    }

    /// Take the key `other` holds, if it holds one.
    #[inline]
    pub(crate) fn take_over(&self, other: &KeyCell) {
        self.lo.store(other.lo.load(Relaxed), Relaxed);
        self.hi.store(other.hi.load(Relaxed), Relaxed);
    }

    /// The key, made now if none was.
    fn get_or_make(&self) -> IdempotencyKey {
        if let Some(key) = self.get() {
            return key;
        }
        let key = IdempotencyKey::random();
        // Truncations: the two halves of the 128 bits.
        self.lo.store(key.0 as u64, Relaxed);
        self.hi.store((key.0 >> 64) as u64, Relaxed);
        key
    }
}

/// The attempt the calling code is running in.
///
/// Inside a function under `#[retry]` (or an operation run by
/// [`Policy::call`](crate::Policy::call)), this says which attempt this is,
/// how much time is left before the deadline, and the call's idempotency key.
/// Outside of one, it describes a lone first attempt with no deadline.
///
/// ```
/// # #[cfg(feature = "macros")]
/// # fn main() {
/// use llm_resilience::{attempt, retry};
///
/// #[retry(max_attempts = 3, wait = none)]
/// fn flaky() -> Result<u32, std::io::Error> {
///     let n = attempt().number();
///     if n < 3 {
///         return Err(std::io::ErrorKind::ConnectionReset.into());
///     }
///     Ok(n)
/// }
///
/// assert_eq!(flaky().unwrap(), 3);
/// assert_eq!(attempt().number(), 1);
/// # }
/// # #[cfg(not(feature = "macros"))]
/// # fn main() {}
/// ```
pub fn attempt() -> Attempt {
    with_current(|frame| match frame {
        Some(frame) => frame.attempt(),
        None => Attempt {
            number: 1,
            deadline: None,
            clock: Clock::Std,
            key: None,
        },
    })
}

/// Run `f` with the rate limiter of the call whose attempt is running on this
/// thread, if it has one.
#[inline]
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn with_limiter<R>(f: impl FnOnce(&crate::AdaptiveLimiter) -> R) -> Option<R> {
    with_current(|frame| frame.and_then(|frame| frame.limiter).map(f))
}

/// The deadline of the call whose attempt is running on this thread, if any:
/// a retried call made inside it (a nested call, or a fallback) ends no
/// later.
#[inline]
pub(crate) fn inherited_deadline() -> Option<Instant> {
    with_current(|frame| frame.and_then(|f| f.deadline))
}

/// One attempt of a retried call, as seen from inside it. See [`attempt()`].
///
/// ```
/// use std::io;
/// use llm_resilience::{attempt, Policy, Wait};
///
/// let policy = Policy::new().max_attempts(3).wait(Wait::none());
/// let mut seen = Vec::new();
/// let result: Result<(), io::Error> = policy.call(|| {
///     let current = attempt();
///     seen.push((current.number(), current.is_first()));
///     Err(io::ErrorKind::ConnectionReset.into())
/// });
/// assert!(result.is_err());
/// assert_eq!(seen, [(1, true), (2, false), (3, false)]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    number: u32,
    deadline: Option<Instant>,
    clock: Clock,
    key: Option<IdempotencyKey>,
}

impl Attempt {
    /// Which attempt this is, from 1.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{attempt, Policy, Wait};
    ///
    /// let policy = Policy::new().max_attempts(5).wait(Wait::none());
    /// let answered_on: Result<u32, io::Error> = policy.call(|| match attempt().number() {
    ///     n if n < 3 => Err(io::ErrorKind::TimedOut.into()),
    ///     n => Ok(n),
    /// });
    /// assert_eq!(answered_on.unwrap(), 3);
    /// ```
    pub const fn number(&self) -> u32 {
        self.number
    }

    /// Whether this is the first attempt of the call.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{attempt, Policy, Wait};
    ///
    /// assert!(attempt().is_first()); // outside a retried call
    /// let mut retries = 0;
    /// let policy = Policy::new().max_attempts(3).wait(Wait::none());
    /// let _: Result<(), io::Error> = policy.call(|| {
    ///     if !attempt().is_first() {
    ///         retries += 1;
    ///     }
    ///     Err(io::ErrorKind::ConnectionReset.into())
    /// });
    /// assert_eq!(retries, 2);
    /// ```
    pub const fn is_first(&self) -> bool {
        self.number == 1
    }

    /// How long until the call's deadline, or `None` when the call has no
    /// deadline. Zero once it has passed.
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use llm_resilience::{attempt, Policy};
    ///
    /// assert_eq!(attempt().remaining(), None); // no retried call, no deadline
    ///
    /// // Give each request no more time than the call has left.
    /// let policy = Policy::new().deadline(Duration::from_secs(30));
    /// let left: Result<Option<Duration>, io::Error> = policy.call(|| Ok(attempt().remaining()));
    /// let left = left.unwrap().unwrap();
    /// assert!(left > Duration::from_secs(29) && left <= Duration::from_secs(30));
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(self.clock.now()))
    }

    /// The idempotency key of the call: made on first use, then the same for
    /// every attempt of the call, and different for every call.
    ///
    /// Send it with each attempt (as an `Idempotency-Key` header, say) so that
    /// a provider that already processed a request whose answer was lost
    /// returns the stored answer instead of doing, and billing, the work
    /// twice. Outside a retried call, each use makes a new key.
    ///
    /// ```
    /// # #[cfg(feature = "macros")]
    /// # fn main() {
    /// use llm_resilience::{attempt, retry, IdempotencyKey};
    ///
    /// #[retry(max_attempts = 3, wait = none)]
    /// fn post(seen: &mut Vec<IdempotencyKey>) -> Result<(), std::io::Error> {
    ///     seen.push(attempt().idempotency_key());
    ///     if seen.len() < 3 {
    ///         return Err(std::io::ErrorKind::ConnectionReset.into());
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let mut first = Vec::new();
    /// post(&mut first).unwrap();
    /// assert!(first.iter().all(|k| *k == first[0]));
    ///
    /// let mut second = Vec::new();
    /// post(&mut second).unwrap();
    /// assert_ne!(first[0], second[0]);
    /// # }
    /// # #[cfg(not(feature = "macros"))]
    /// # fn main() {}
    /// ```
    pub fn idempotency_key(&self) -> IdempotencyKey {
        if let Some(key) = self.key {
            return key;
        }
        with_current(|frame| match frame {
            Some(frame) => frame.key.get_or_make(),
            None => IdempotencyKey::random(),
        })
    }
}

/// The idempotency key of one logical call: 128 random bits, shown as a
/// version-4 UUID (`8c0e3b5e-...`), the form providers accept in an
/// `Idempotency-Key` header. See [`Attempt::idempotency_key`].
///
/// ```
/// use llm_resilience::attempt;
///
/// let key = attempt().idempotency_key();
/// let text = key.to_string();
/// assert_eq!(text.len(), 36);
/// assert_eq!(&text[14..15], "4"); // a version-4 UUID
/// // Outside a retried call, every use makes a new key.
/// assert_ne!(key, attempt().idempotency_key());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(u128);

impl IdempotencyKey {
    fn random() -> Self {
        // Version 4, RFC 4122 variant.
        let bits = fastrand::u128(..);
        IdempotencyKey((bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62))
    }

    /// The key as 36 ASCII bytes (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`),
    /// without allocating.
    ///
    /// ```
    /// use llm_resilience::attempt;
    ///
    /// let key = attempt().idempotency_key();
    /// let bytes = key.to_bytes();
    /// assert_eq!(std::str::from_utf8(&bytes).unwrap(), key.to_string());
    /// assert_eq!([bytes[8], bytes[13], bytes[18], bytes[23]], [b'-'; 4]);
    /// ```
    pub fn to_bytes(&self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut nibble = 0;
        for (i, byte) in out.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            *byte = HEX[((self.0 >> (124 - 4 * nibble)) & 0xf) as usize];
            nibble += 1;
        }
        out
    }

    /// The 128 bits of the key.
    ///
    /// ```
    /// use llm_resilience::attempt;
    ///
    /// let key = attempt().idempotency_key();
    /// let bits = key.as_u128();
    /// assert_eq!((bits >> 76) & 0xf, 4); // the UUID version
    /// assert_eq!(format!("{bits:032x}"), key.to_string().replace('-', ""));
    /// ```
    pub const fn as_u128(&self) -> u128 {
        self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        // The bytes are ASCII hex digits and hyphens.
        f.write_str(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({self})")
    }
}

/// What a future runs inside while it is polled: an attempt (its call's
/// state, which enters the call's span and the attempt's frame) or a
/// fallback (a frame of its own).
#[cfg(feature = "tokio")]
pub(crate) trait Enter {
    /// Run `f` inside.
    fn enter<R>(&self, f: impl FnOnce() -> R) -> R;
}

#[cfg(feature = "tokio")]
impl Enter for Frame<'_> {
    #[inline]
    fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        Frame::enter(self, f)
    }
}

#[cfg(feature = "tokio")]
impl Enter for &Frame<'_> {
    #[inline]
    fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        Frame::enter(self, f)
    }
}

#[cfg(feature = "tokio")]
pin_project_lite::pin_project! {
    /// A future polled inside what `S` enters, so that [`attempt()`] inside
    /// it describes its attempt: an attempt of a call, or a fallback (a
    /// fresh call that ends no later than the deadline it inherits).
    pub(crate) struct InFrame<S, F> {
        inside: S,
        #[pin]
        fut: F,
    }
}

#[cfg(feature = "tokio")]
impl<S, F> InFrame<S, F> {
    #[inline]
    pub(crate) fn new(inside: S, fut: F) -> Self {
        InFrame { inside, fut }
    }
}

#[cfg(feature = "tokio")]
impl<S: Enter, F: core::future::Future> core::future::Future for InFrame<S, F> {
    type Output = F::Output;

    #[inline]
    fn poll(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<F::Output> {
        let this = self.project();
        let fut = this.fut;
        this.inside.enter(|| fut.poll(cx))
    }
}

#[cfg(feature = "tokio")]
pin_project_lite::pin_project! {
    /// A future made when it is first polled, by `make`: an attempt of
    /// [`Policy::call_async`](crate::Policy::call_async) calls the user's
    /// closure only once it is admitted (a refused call never calls it), and
    /// inside the attempt (so that [`attempt()`] in the closure sees it).
    #[project = DeferredProj]
    pub(crate) enum Deferred<M, F> {
        /// Not polled yet.
        Make { make: Option<M> },
        /// Made, and running.
        Run { #[pin] fut: F },
    }
}

#[cfg(feature = "tokio")]
impl<M, F> Deferred<M, F> {
    /// A future that `make` makes when first polled.
    #[inline]
    pub(crate) fn new(make: M) -> Self {
        Deferred::Make { make: Some(make) }
    }
}

#[cfg(feature = "tokio")]
impl<M: FnOnce() -> F, F: core::future::Future> core::future::Future for Deferred<M, F> {
    type Output = F::Output;

    #[inline]
    fn poll(
        mut self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<F::Output> {
        loop {
            match self.as_mut().project() {
                DeferredProj::Run { fut } => return fut.poll(cx),
                DeferredProj::Make { make } => match make.take() {
                    Some(make) => self.set(Deferred::Run { fut: make() }),
                    // Only between taking `make` and setting `Run`.
                    None => return core::task::Poll::Pending,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_look_like_uuid_v4() {
        let key = IdempotencyKey::random().to_string();
        assert_eq!(key.len(), 36);
        assert_eq!(&key[14..15], "4");
        assert!(matches!(&key[19..20], "8" | "9" | "a" | "b"), "{key}");
        assert_eq!(key.matches('-').count(), 4);
        assert_ne!(IdempotencyKey::random(), IdempotencyKey::random());
    }
}
