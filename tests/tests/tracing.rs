//! What a retried call logs: nothing on a first-try success; a span named
//! after the function with an event per failed attempt, and one at the end.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_resilience::{retry, testing, Classify, ErrorKind};

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
