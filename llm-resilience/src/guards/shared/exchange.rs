//! The background task of one shared guard: connect, resynchronise, then
//! watch the local guard, sync with the fleet and apply what other
//! processes publish, until the guard is dropped; on any failure, run on
//! local state and reconnect with a backoff.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::{AsyncConnectionConfig, RedisError, RedisResult};
use tokio::sync::{watch, Notify};
use tokio::time::{sleep, timeout, Instant, MissedTickBehavior};

use super::health::Link;
use super::options::FleetOptions;

/// A future of the exchange: boxed, so that the trait stays object-safe
/// and the driver generic (an allocation per round trip, off the calls'
/// path).
pub(super) type Step<'a> = Pin<Box<dyn Future<Output = RedisResult<()>> + Send + 'a>>;

/// What each kind of shared guard does in the exchange.
pub(super) trait Exchange: Send + 'static {
    /// The channel it listens on, if any.
    fn channel(&self) -> Option<&str>;
    /// The link its handle reads.
    fn link(&self) -> &Link;
    /// Whether its handle was dropped: the task ends.
    fn gone(&self) -> bool;
    /// Just (re)connected: read what the fleet knows into the local guard,
    /// and publish what the local guard learnt meanwhile.
    fn resync<'a>(&'a mut self, con: &'a mut MultiplexedConnection) -> Step<'a>;
    /// Every `watch_every`, with `sync` true every `sync_every`: publish
    /// what changed locally, and sync counts or membership.
    fn tick<'a>(&'a mut self, con: &'a mut MultiplexedConnection, sync: bool) -> Step<'a>;
    /// A message another process (or this one) published.
    fn message(&mut self, payload: &str);
    /// Redis is unreachable: run on local state.
    fn fall_back(&mut self);
    /// Every `watch_every` while Redis is unreachable.
    fn offline(&mut self) {}
    /// What wakes it between ticks (a refusal the fleet should know at
    /// once), if anything.
    fn wake(&self) -> Option<Arc<Notify>> {
        None
    }
    /// The handle is gone: leave the fleet (best effort).
    fn leave<'a>(&'a mut self, con: &'a mut MultiplexedConnection) -> Step<'a>;
}

/// Runs `op`, failing once `limit` has passed.
pub(super) async fn timed<T>(
    limit: Duration,
    op: impl Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    match timeout(limit, op).await {
        Ok(result) => result,
        Err(_) => Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from Redis within {limit:?}"),
        ))),
    }
}

/// A command connection, and the subscription to the guard's channel.
struct Connected {
    con: MultiplexedConnection,
    /// Held so that the subscription stays open.
    _sink: Option<PubSubSink>,
    events: Option<PubSubStream>,
}

async fn connect(
    client: &redis::Client,
    options: &FleetOptions,
    channel: Option<&str>,
) -> RedisResult<Connected> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(options.timeout)
        .set_response_timeout(options.timeout);
    let con = timed(
        options.timeout,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await?;
    let (sink, events) = match channel {
        Some(channel) => {
            let mut pubsub = timed(options.timeout, client.get_async_pubsub()).await?;
            timed(options.timeout, pubsub.subscribe(channel)).await?;
            let (sink, events) = pubsub.split();
            (Some(sink), Some(events))
        }
        None => (None, None),
    };
    Ok(Connected {
        con,
        _sink: sink,
        events,
    })
}

/// The next message on `events`, or never without a channel. `None`: the
/// subscription ended (the connection was lost).
async fn next_message(events: &mut Option<PubSubStream>) -> Option<redis::Msg> {
    match events {
        Some(events) => events.next().await,
        None => std::future::pending().await,
    }
}

/// Waits `wait` without Redis, the guard on local state, looking at it
/// every `watch_every`.
async fn offline<X: Exchange>(x: &mut X, wait: Duration, options: &FleetOptions) {
    let until = Instant::now()
        .checked_add(wait)
        .unwrap_or_else(Instant::now);
    loop {
        x.offline();
        let now = Instant::now();
        if now >= until || x.gone() {
            return;
        }
        sleep(options.watch_every.min(until - now)).await;
    }
}

/// Until `wake` is notified, or never without one.
async fn woken(wake: &Option<Arc<Notify>>) {
    match wake {
        Some(wake) => wake.notified().await,
        None => std::future::pending().await,
    }
}

/// Resolves once [`Fleet::close`](super::Fleet::close) was called (or the
/// `Fleet` is gone, which only happens as its runtime stops).
async fn closed(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}

/// Runs a guard's exchange with Redis until the guard is dropped or its
/// fleet closed: connects, resynchronises, then ticks, publishes and reads
/// its channel; on a failure it goes local, and tries again with backoff.
/// Dropping `closing` at the end tells [`Fleet::close`](super::Fleet::close)
/// that this one has ended.
pub(super) async fn drive<X: Exchange>(
    client: redis::Client,
    options: FleetOptions,
    mut x: X,
    mut closing: watch::Receiver<bool>,
) {
    let mut backoff = options.reconnect_min;
    loop {
        if x.gone() {
            return;
        }
        if *closing.borrow() {
            return close(&mut x);
        }
        let connected = tokio::select! {
            connected = connect(&client, &options, x.channel()) => connected,
            () = closed(&mut closing) => return close(&mut x),
        };
        let mut connected = match connected {
            Ok(connected) => connected,
            Err(e) => {
                go_local(&mut x, &e);
                let half = backoff / 2;
                let wait = half + half.mul_f64(fastrand::f64());
                tokio::select! {
                    () = offline(&mut x, wait, &options) => {}
                    () = closed(&mut closing) => return close(&mut x),
                }
                backoff = backoff.saturating_mul(2).min(options.reconnect_max);
                continue;
            }
        };
        if let Err(e) = timed(options.timeout, x.resync(&mut connected.con)).await {
            go_local(&mut x, &e);
            tokio::select! {
                () = offline(&mut x, backoff, &options) => {}
                () = closed(&mut closing) => return close(&mut x),
            }
            continue;
        }
        x.link().up();
        backoff = options.reconnect_min;
        let mut watch = tokio::time::interval(options.watch_every);
        watch.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_sync = Instant::now();
        let wake = x.wake();
        let failure: Box<dyn std::fmt::Display + Send> = loop {
            tokio::select! {
                _ = watch.tick() => {
                    if x.gone() {
                        let _ = timed(options.timeout, x.leave(&mut connected.con)).await;
                        return;
                    }
                    let sync = last_sync.elapsed() >= options.sync_every;
                    if sync {
                        last_sync = Instant::now();
                    }
                    if let Err(e) = timed(options.timeout, x.tick(&mut connected.con, sync)).await {
                        break Box::new(e);
                    }
                }
                () = woken(&wake) => {
                    if let Err(e) = timed(options.timeout, x.tick(&mut connected.con, false)).await {
                        break Box::new(e);
                    }
                }
                () = closed(&mut closing) => {
                    // What this process saw since its last tick, then its
                    // leaving, for the others.
                    let _ = timed(options.timeout, x.tick(&mut connected.con, false)).await;
                    let _ = timed(options.timeout, x.leave(&mut connected.con)).await;
                    return close(&mut x);
                }
                message = next_message(&mut connected.events) => match message {
                    Some(message) => {
                        if let Ok(payload) = message.get_payload::<String>() {
                            x.message(&payload);
                        }
                    }
                    None => break Box::new("the subscription to Redis was closed"),
                },
            }
        };
        go_local(&mut x, &*failure);
    }
}

/// The fleet was closed: the guard goes on with its local state alone.
fn close<X: Exchange>(x: &mut X) {
    x.fall_back();
    x.link().closed();
}

/// Redis failed: the guard goes back to its local state, and only then
/// reports itself disconnected, so that whoever sees it disconnected sees
/// the local state in force.
fn go_local<X: Exchange>(x: &mut X, why: &dyn std::fmt::Display) {
    x.fall_back();
    x.link().down(why);
}

/// A process's name in the fleet: its id and a random part, unique among
/// the guards of every process.
pub(super) fn member_id() -> Arc<str> {
    format!("{}-{:016x}", std::process::id(), fastrand::u64(..)).into()
}
