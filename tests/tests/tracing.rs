//! What a retried call logs: nothing on a first-try success; a span named
//! after the function with an event per failed attempt, and one at the end.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_resilience::{retry, testing, Classify, ErrorKind};

#[path = "common/sse.rs"]
mod sse;

#[derive(Debug)]
struct Busy {
    request_id: &'static str,
    retry_after: Option<Duration>,
}

impl Classify for Busy {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Overloaded
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
    fn request_id(&self) -> Option<&str> {
        Some(self.request_id)
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Run `f` with a subscriber that writes every event, at every level, into a
/// string.
fn logs(f: impl FnOnce()) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = captured.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[retry(max_attempts = 3, wait = fixed(2s), jitter = none)]
fn fails(times: &mut u32) -> Result<u32, Busy> {
    llm_resilience::attempt().idempotency_key();
    if *times > 0 {
        *times -= 1;
        return Err(Busy {
            request_id: "req_42",
            retry_after: None,
        });
    }
    Ok(7)
}

#[retry(name = "chat.completions", max_attempts = 2, jitter = none)]
fn renamed() -> Result<(), Busy> {
    Err(Busy {
        request_id: "req_1",
        retry_after: Some(Duration::from_millis(300)),
    })
}

#[test]
fn a_first_try_success_logs_nothing() {
    let _sleeps = testing::skip_sleeps();
    let out = logs(|| {
        let mut times = 0;
        assert_eq!(fails(&mut times).unwrap(), 7);
    });
    assert_eq!(out, "");
}

#[test]
fn each_failed_attempt_is_an_event_in_the_call_span() {
    let _sleeps = testing::skip_sleeps();
    let out = logs(|| {
        let mut times = 2;
        assert_eq!(fails(&mut times).unwrap(), 7);
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (i, line) in lines[..2].iter().enumerate() {
        assert!(line.contains("INFO fails:"), "{line}");
        assert!(line.contains("attempt failed; retrying"), "{line}");
        assert!(line.contains(&format!("attempt={}", i + 1)), "{line}");
        assert!(line.contains("kind=\"Overloaded\""), "{line}");
        assert!(line.contains("delay_ms=2000"), "{line}");
        assert!(line.contains("delay_source=\"backoff\""), "{line}");
        assert!(line.contains("request_id=\"req_42\""), "{line}");
        assert!(line.contains("idempotency_key="), "{line}");
    }
    let key = |line: &str| {
        line.split("idempotency_key=")
            .nth(1)
            .map(|k| k[..36].to_owned())
    };
    assert_eq!(key(lines[0]), key(lines[1]));
    assert!(
        lines[2].contains("succeeded after retries attempts=3"),
        "{}",
        lines[2]
    );
}

#[test]
fn giving_up_is_a_warning_with_its_reason() {
    let _sleeps = testing::skip_sleeps();
    let out = logs(|| {
        assert!(renamed().is_err());
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains("chat.completions:"), "{}", lines[0]);
    assert!(
        lines[0].contains("delay_source=\"retry_after\""),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("WARN chat.completions: "), "{}", lines[1]);
    assert!(lines[1].contains("gave up attempts=2"), "{}", lines[1]);
    assert!(
        lines[1].contains("reason=\"max_attempts reached\""),
        "{}",
        lines[1]
    );
}

static EMPTY: llm_resilience::RetryBudget = llm_resilience::RetryBudget::new()
    .ratio(0.0)
    .min_retries_per_second(0);

#[retry(max_attempts = 5, wait = none, budget = EMPTY)]
fn budgeted() -> Result<(), Busy> {
    Err(Busy {
        request_id: "req_9",
        retry_after: None,
    })
}

#[test]
fn a_spent_budget_says_why_the_call_gave_up() {
    let out = logs(|| assert!(budgeted().is_err()));
    assert!(
        out.contains("reason=\"the retry budget is spent\""),
        "{out}"
    );
    assert!(out.contains("attempts=1"), "{out}");
}

static TRIPPED: llm_resilience::CircuitBreaker =
    llm_resilience::CircuitBreaker::new().consecutive_failures(1);

#[retry(max_attempts = 5, wait = none, breaker = TRIPPED)]
fn tripping() -> Result<(), Busy> {
    Err(Busy {
        request_id: "req_10",
        retry_after: None,
    })
}

impl From<llm_resilience::CircuitOpen> for Busy {
    fn from(_: llm_resilience::CircuitOpen) -> Self {
        Busy {
            request_id: "none",
            retry_after: None,
        }
    }
}

#[test]
fn the_breaker_logs_its_transitions_and_why_a_call_stopped() {
    let out = logs(|| {
        assert!(tripping().is_err());
        assert!(tripping().is_err());
    });
    assert!(out.contains("circuit breaker opened"), "{out}");
    assert!(
        out.contains("reason=\"the circuit breaker is open\""),
        "{out}"
    );
    assert!(out.contains("failing fast"), "{out}");
}

/// What a [`Capture`] saw: spans with their fields as last recorded, and
/// events with their fields and the span they belong to.
#[derive(Debug, Default)]
struct Seen {
    /// Span id → name and fields (`record`ed ones included).
    spans: std::collections::HashMap<u64, (String, Fields)>,
    events: Vec<Event>,
}

type Fields = std::collections::BTreeMap<String, String>;

#[derive(Debug, Clone)]
struct Event {
    level: tracing::Level,
    message: String,
    fields: Fields,
    /// The span it was recorded in: its name and its fields at the time.
    span: Option<(String, Fields)>,
}

/// A layer that keeps every span and event with its fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Seen>>);

struct Visit<'a>(&'a mut Fields);

impl tracing::field::Visit for Visit<'_> {
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S> tracing_subscriber::Layer<S> for Capture
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = Fields::new();
        attrs.record(&mut Visit(&mut fields));
        let name = attrs.metadata().name().to_owned();
        self.0
            .lock()
            .unwrap()
            .spans
            .insert(id.into_u64(), (name, fields));
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut seen = self.0.lock().unwrap();
        if let Some((_, fields)) = seen.spans.get_mut(&id.into_u64()) {
            values.record(&mut Visit(fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Visit(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let mut seen = self.0.lock().unwrap();
        let span = ctx
            .event_span(event)
            .and_then(|span| seen.spans.get(&span.id().into_u64()).cloned());
        seen.events.push(Event {
            level: *event.metadata().level(),
            message,
            fields,
            span,
        });
    }
}

/// Runs `f` on a paused runtime under a subscriber that keeps everything.
fn seen(f: impl std::future::Future<Output = ()>) -> Seen {
    use tracing_subscriber::layer::SubscriberExt;
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let runtime = sse::paused_runtime();
    tracing::subscriber::with_default(subscriber, || runtime.block_on(f));
    let seen = std::mem::take(&mut *capture.0.lock().unwrap());
    seen
}

#[test]
fn a_streams_time_to_first_event_is_on_its_span_and_in_an_event() {
    use sse::{read, whole, OPEN, OPTIONS, OVERLOADED, WAIT};
    let seen = seen(async {
        // Retried once before its first content event: the call has a span.
        let (text, error) = read(OPTIONS, &[OVERLOADED.to_owned(), whole()]).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(text, "hello world");
    });
    let ttfe_ms = (2 * OPEN + WAIT).as_millis().to_string();
    let spans: Vec<&(String, Fields)> = seen.spans.values().collect();
    assert_eq!(spans.len(), 1, "{seen:?}");
    let (name, fields) = spans[0];
    assert_eq!(name, "retry");
    assert_eq!(
        fields.get("time_to_first_event_ms"),
        Some(&ttfe_ms),
        "{seen:?}"
    );
    let first: Vec<&Event> = seen
        .events
        .iter()
        .filter(|e| e.message == "first event")
        .collect();
    assert_eq!(first.len(), 1, "{seen:?}");
    assert_eq!(
        first[0].fields.get("attempt").map(String::as_str),
        Some("2")
    );
    assert_eq!(first[0].fields.get("ttfe_ms"), Some(&ttfe_ms));
    let (span, at_the_time) = first[0].span.as_ref().expect("in the call's span");
    assert_eq!(span, "retry");
    assert_eq!(at_the_time.get("time_to_first_event_ms"), Some(&ttfe_ms));
    // The failed attempt before it, in the same span.
    let retrying: Vec<&Event> = seen
        .events
        .iter()
        .filter(|e| e.message == "attempt failed; retrying")
        .collect();
    assert_eq!(retrying.len(), 1, "{seen:?}");
    assert_eq!(
        retrying[0].fields.get("kind").map(String::as_str),
        Some("Overloaded")
    );
    assert_eq!(
        retrying[0].span.as_ref().map(|s| s.0.as_str()),
        Some("retry")
    );
}

#[test]
fn each_interruption_after_content_is_a_warning_with_its_kind_and_what_follows() {
    use llm_resilience::stream::OnInterrupt;
    use sse::{content, read, whole, OPEN, OPTIONS, OVERLOADED};
    let seen = seen(async {
        // Two content events, then the body ends without its marker.
        let cut = content("hello ") + &content("wor");
        let (_, error) = read(OPTIONS, &[cut]).await;
        assert_eq!(error.expect("an error item").kind(), ErrorKind::Network);
        // One content event, then an error event: restarted, then whole.
        let restart = OPTIONS.on_interrupt(OnInterrupt::Restart);
        let (text, error) = read(restart, &[content("hello ") + OVERLOADED, whole()]).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(text, "hello world");
    });
    let interruptions: Vec<&Event> = seen
        .events
        .iter()
        .filter(|e| e.message == "stream interrupted after content")
        .collect();
    assert_eq!(interruptions.len(), 2, "{seen:?}");
    let fields = |e: &Event| {
        ["kind", "delivered", "then"].map(|k| e.fields.get(k).cloned().unwrap_or_default())
    };
    assert_eq!(interruptions[0].level, tracing::Level::WARN);
    assert_eq!(fields(interruptions[0]), ["Network", "2", "failed"]);
    assert_eq!(interruptions[1].level, tracing::Level::WARN);
    assert_eq!(fields(interruptions[1]), ["Overloaded", "1", "restarting"]);
    // One first event per call, a restart's not counted again: each came
    // on the first attempt, after its opening time.
    let first: Vec<&Event> = seen
        .events
        .iter()
        .filter(|e| e.message == "first event")
        .collect();
    assert_eq!(first.len(), 2, "{seen:?}");
    for event in first {
        assert_eq!(event.fields.get("attempt").map(String::as_str), Some("1"));
        assert_eq!(
            event.fields.get("ttfe_ms"),
            Some(&OPEN.as_millis().to_string())
        );
    }
}
