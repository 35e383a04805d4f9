//! The flaky provider over real HTTP on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use examples::flaky::{
    request_tokens, Announce, Fault, FlakyProvider, Limits, QuotaStyle, RetryAfter, Scenario,
};
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn body(user: Option<&str>, content: &str) -> Value {
    let mut body = json!({
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": content},
        ],
    });
    if let Some(user) = user {
        body["user"] = json!(user);
    }
    body
}

/// One chat completion request; `key` becomes the `Idempotency-Key` header.
async fn chat(
    client: &reqwest::Client,
    provider: &FlakyProvider,
    key: Option<&str>,
    user: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let mut req = client
        .post(provider.chat_completions_url())
        .json(&body(user, "hello there"));
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    req.send().await
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).map(|v| v.to_str().unwrap())
}

fn outcomes(provider: &FlakyProvider) -> Vec<String> {
    provider.requests().into_iter().map(|r| r.outcome).collect()
}

#[tokio::test]
async fn healthy_answers_an_openai_shaped_completion() {
    let provider = FlakyProvider::spawn(Scenario::Healthy).unwrap();
    assert!(provider.base_url().starts_with("http://127.0.0.1:"));
    assert!(provider.base_url().ends_with("/v1"));
    let resp = client()
        .post(provider.chat_completions_url())
        .header("x-retry-count", "0")
        .json(&body(None, "echo me please"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-request-id"), Some("req_1"));
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["object"], "chat.completion");
    assert!(json["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(json["model"], "gpt-test");
    assert_eq!(json["choices"][0]["message"]["role"], "assistant");
    assert_eq!(json["choices"][0]["message"]["content"], "echo me please");
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    let usage = &json["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );

    let stats = provider.stats();
    assert_eq!(
        (stats.requests, stats.processed, stats.billed_twice),
        (1, 1, 0)
    );
    let recorded = provider.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].outcome, "200");
    assert_eq!(recorded[0].retry_count.as_deref(), Some("0"));
    assert_eq!(recorded[0].idempotency_key, None);
    assert_eq!(recorded[0].logical_id, None);
    assert_eq!(recorded[0].request_id, "req_1");
}

#[tokio::test]
async fn wrong_path_or_method_is_404() {
    let provider = FlakyProvider::spawn(Scenario::Always(Fault::Status(503))).unwrap();
    let client = client();
    let url = provider.chat_completions_url();
    let wrong = [
        client.get(&url),
        client.post(format!("{}/completions", provider.base_url())),
        client.post(format!("http://{}/chat/completions", provider.addr())),
    ];
    for req in wrong {
        let resp = req.json(&body(None, "hi")).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        assert!(header(&resp, "x-request-id").unwrap().starts_with("req_"));
        let json: Value = resp.json().await.unwrap();
        assert_eq!(json["error"]["type"], "invalid_request_error");
    }
    // Not faults, not processed.
    let stats = provider.stats();
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.processed, 0);
    assert!(stats.faults.is_empty());
    assert_eq!(outcomes(&provider), ["404", "404", "404"]);
}

#[tokio::test]
async fn unparseable_body_is_400() {
    let provider = FlakyProvider::spawn(Scenario::Healthy).unwrap();
    let client = client();
    for garbage in [
        "{not json",
        "",
        "[1, 2]",
        "\"just a string\"",
        "\u{0}\u{1}\u{ff}",
    ] {
        let resp = client
            .post(provider.chat_completions_url())
            .header("content-type", "application/json")
            .body(garbage)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{garbage:?}");
        let json: Value = resp.json().await.unwrap();
        assert_eq!(json["error"]["type"], "invalid_request_error");
        assert!(json["error"]["message"].as_str().unwrap().len() > 5);
        assert!(json["error"]["code"].is_null());
    }
    // Odd but valid JSON objects are answered.
    let resp = client
        .post(provider.chat_completions_url())
        .json(&json!({"messages": "nope", "user": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(provider.stats().processed, 1);
}

/// What one fault must look like on the wire.
struct Expect {
    fault: Fault,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    absent: &'static [&'static str],
    /// A JSON pointer into the body and the string expected there.
    body: (&'static str, &'static str),
}

#[tokio::test]
async fn each_fault_has_its_status_headers_and_body() {
    let ms = Duration::from_millis;
    let rate_limited = ("/error/code", "rate_limit_exceeded");
    let no_hint: &[&str] = &[
        "retry-after",
        "retry-after-ms",
        "x-ratelimit-reset-requests",
    ];
    let cases = [
        Expect {
            fault: Fault::RateLimit(RetryAfter::None),
            status: 429,
            headers: &[],
            absent: no_hint,
            body: rate_limited,
        },
        Expect {
            fault: Fault::RateLimit(RetryAfter::Millis(50.5)),
            status: 429,
            headers: &[("retry-after-ms", "50.5")],
            absent: &["retry-after"],
            body: rate_limited,
        },
        Expect {
            fault: Fault::RateLimit(RetryAfter::Millis(50.0)),
            status: 429,
            headers: &[("retry-after-ms", "50")],
            absent: &["retry-after"],
            body: rate_limited,
        },
        Expect {
            fault: Fault::RateLimit(RetryAfter::Seconds(1.0)),
            status: 429,
            headers: &[("retry-after", "1")],
            absent: &["retry-after-ms"],
            body: rate_limited,
        },
        Expect {
            fault: Fault::RateLimit(RetryAfter::Seconds(0.25)),
            status: 429,
            headers: &[("retry-after", "0.25")],
            absent: &["retry-after-ms"],
            body: rate_limited,
        },
        Expect {
            fault: Fault::RateLimit(RetryAfter::OpenAiReset(ms(20))),
            status: 429,
            headers: &[
                ("x-ratelimit-reset-requests", "20ms"),
                ("x-ratelimit-remaining-requests", "0"),
            ],
            absent: &["retry-after", "retry-after-ms"],
            body: rate_limited,
        },
        Expect {
            fault: Fault::RateLimit(RetryAfter::OpenAiReset(Duration::from_secs(360))),
            status: 429,
            headers: &[("x-ratelimit-reset-requests", "6m0s")],
            absent: &["retry-after"],
            body: rate_limited,
        },
        Expect {
            fault: Fault::RateLimit(RetryAfter::AnthropicReset(ms(50))),
            status: 429,
            headers: &[("anthropic-ratelimit-requests-remaining", "0")],
            absent: &["retry-after", "retry-after-ms"],
            body: ("/error/type", "rate_limit_error"),
        },
        Expect {
            fault: Fault::Quota(QuotaStyle::OpenAi),
            status: 429,
            headers: &[],
            absent: no_hint,
            body: ("/error/code", "insufficient_quota"),
        },
        Expect {
            fault: Fault::Quota(QuotaStyle::Anthropic),
            status: 429,
            headers: &[],
            absent: no_hint,
            body: ("/error/type", "enforced_spend_limit_reached"),
        },
        Expect {
            fault: Fault::Status(529),
            status: 529,
            headers: &[],
            absent: no_hint,
            body: ("/error/type", "overloaded_error"),
        },
        Expect {
            fault: Fault::Status(500),
            status: 500,
            headers: &[],
            absent: no_hint,
            body: ("/error/type", "server_error"),
        },
        Expect {
            fault: Fault::Status(503),
            status: 503,
            headers: &[],
            absent: no_hint,
            body: ("/error/type", "server_error"),
        },
        Expect {
            fault: Fault::Status(400),
            status: 400,
            headers: &[],
            absent: no_hint,
            body: ("/error/type", "invalid_request_error"),
        },
        Expect {
            fault: Fault::Status(401),
            status: 401,
            headers: &[],
            absent: no_hint,
            body: ("/error/code", "invalid_api_key"),
        },
    ];
    let client = client();
    for case in &cases {
        let provider = FlakyProvider::spawn(Scenario::Always(case.fault)).unwrap();
        let resp = chat(&client, &provider, Some("k"), None).await.unwrap();
        let what = format!("{:?}", case.fault);
        assert_eq!(resp.status(), case.status, "{what}");
        assert_eq!(header(&resp, "x-request-id"), Some("req_1"), "{what}");
        for (name, value) in case.headers {
            assert_eq!(header(&resp, name), Some(*value), "{what}: {name}");
        }
        for name in case.absent {
            assert_eq!(header(&resp, name), None, "{what}: {name}");
        }
        let reset = header(&resp, "anthropic-ratelimit-requests-reset").map(str::to_owned);
        let json: Value = resp.json().await.unwrap();
        assert_eq!(
            json.pointer(case.body.0).and_then(Value::as_str),
            Some(case.body.1),
            "{what}: {json}"
        );
        if matches!(case.fault, Fault::RateLimit(RetryAfter::AnthropicReset(_))) {
            assert_eq!(json["type"], "error");
            let reset = reset.expect("anthropic reset header");
            assert!(reset.ends_with('Z') && reset.contains('T'), "{reset}");
            assert_eq!(&reset[4..5], "-");
        }
        let stats = provider.stats();
        assert_eq!(stats.processed, 0, "{what}: error faults are not billed");
        assert_eq!(stats.faults.get(&case.fault.name()), Some(&1), "{what}");
        assert_eq!(outcomes(&provider), [case.status.to_string()]);
    }
}

#[tokio::test]
async fn retry_after_http_date_is_about_that_far_ahead() {
    let provider = FlakyProvider::spawn(Scenario::Always(Fault::RateLimit(RetryAfter::HttpDate(
        Duration::from_secs(2),
    ))))
    .unwrap();
    let resp = chat(&client(), &provider, None, None).await.unwrap();
    assert_eq!(resp.status(), 429);
    let date = header(&resp, "retry-after").unwrap();
    assert!(date.ends_with(" GMT"), "{date}");
    let at = httpdate::parse_http_date(date).unwrap();
    let ahead = at.duration_since(SystemTime::now()).unwrap();
    // Rounded up to the second: at least ~2 s ahead, at most 3.
    assert!(
        ahead > Duration::from_millis(1500) && ahead <= Duration::from_secs(3),
        "{ahead:?}"
    );
}

#[tokio::test]
async fn fail_first_counts_attempts_per_logical_request() {
    let provider = FlakyProvider::spawn(Scenario::FailFirst {
        failures: 2,
        fault: Fault::Status(503),
    })
    .unwrap();
    let client = client();
    let status = |key, user| {
        let (client, provider) = (&client, &provider);
        async move {
            chat(client, provider, key, user)
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // By key.
    assert_eq!(status(Some("a"), None).await, 503);
    assert_eq!(status(Some("b"), None).await, 503);
    assert_eq!(status(Some("a"), None).await, 503);
    assert_eq!(status(Some("a"), None).await, 200);
    assert_eq!(status(Some("b"), None).await, 503);
    assert_eq!(status(Some("b"), None).await, 200);
    // The key wins over `user`, and a stored answer wins over the scenario.
    assert_eq!(status(Some("a"), Some("u")).await, 200);
    // By `user` when there is no key.
    assert_eq!(status(None, Some("u")).await, 503);
    assert_eq!(status(None, Some("u")).await, 503);
    assert_eq!(status(None, Some("u")).await, 200);
    // Neither: every request is on its own, so it always fails.
    for _ in 0..3 {
        assert_eq!(status(None, None).await, 503);
    }

    let stats = provider.stats();
    assert_eq!(stats.requests, 13);
    assert_eq!(stats.processed, 3);
    assert_eq!(stats.replayed, 1);
    assert_eq!(stats.billed_twice, 0);
    assert_eq!(stats.faults.get("503"), Some(&9));
    let recorded = provider.requests();
    let logical: Vec<Option<&str>> = recorded.iter().map(|r| r.logical_id.as_deref()).collect();
    assert_eq!(&logical[..3], [Some("a"), Some("b"), Some("a")]);
    assert_eq!(logical[6], Some("a"));
    assert_eq!(logical[7], Some("u"));
    assert_eq!(logical[12], None);
    assert_eq!(recorded[6].outcome, "replayed");
    assert!(recorded.windows(2).all(|w| w[0].at <= w[1].at));
}

#[tokio::test]
async fn the_outage_scenario_answers_503_to_every_attempt() {
    let provider = FlakyProvider::spawn(Scenario::from_name("outage").unwrap()).unwrap();
    let client = client();
    // However often the same logical request comes back, by key or by
    // `user`, it is never answered: unlike `503`, it does not recover.
    for (key, user) in [(Some("k"), None), (None, Some("u")), (None, None)] {
        for _ in 0..4 {
            let resp = chat(&client, &provider, key, user).await.unwrap();
            assert_eq!(resp.status(), 503, "{key:?} {user:?}");
            assert_eq!(header(&resp, "idempotent-replayed"), None);
            let json: Value = resp.json().await.unwrap();
            assert_eq!(json["error"]["code"], "service_unavailable");
        }
    }
    let stats = provider.stats();
    assert_eq!(stats.requests, 12);
    assert_eq!((stats.processed, stats.replayed), (0, 0));
    assert_eq!(stats.faults.get("503"), Some(&12));
    assert!(outcomes(&provider).iter().all(|o| o == "503"));
}

#[tokio::test]
async fn the_recoverable_scenarios_answer_the_third_attempt() {
    for name in ["500", "503", "529"] {
        let provider = FlakyProvider::spawn(Scenario::from_name(name).unwrap()).unwrap();
        let client = client();
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let resp = chat(&client, &provider, Some("k"), None).await.unwrap();
            statuses.push(resp.status().as_u16().to_string());
        }
        assert_eq!(statuses, [name, name, "200"]);
        assert_eq!(provider.stats().processed, 1, "{name}");
    }
}

#[tokio::test]
async fn a_repeated_key_gets_the_stored_response() {
    let provider = FlakyProvider::spawn(Scenario::Healthy).unwrap();
    let client = client();
    let first = chat(&client, &provider, Some("key-1"), None).await.unwrap();
    assert_eq!(header(&first, "idempotent-replayed"), None);
    let first: Value = first.json().await.unwrap();
    let second = chat(&client, &provider, Some("key-1"), None).await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(header(&second, "idempotent-replayed"), Some("true"));
    assert_eq!(header(&second, "x-request-id"), Some("req_2"));
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second, "the very same completion");
    // Another key is another logical request.
    let third: Value = chat(&client, &provider, Some("key-2"), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(first["id"], third["id"]);

    let stats = provider.stats();
    assert_eq!(
        (stats.processed, stats.replayed, stats.billed_twice),
        (2, 1, 0)
    );
    assert_eq!(outcomes(&provider), ["200", "replayed", "200"]);
}

#[tokio::test]
async fn a_dropped_connection_is_billed_twice_only_without_a_key() {
    let provider = FlakyProvider::spawn(Scenario::FailFirst {
        failures: 1,
        fault: Fault::DropAfterProcessing,
    })
    .unwrap();
    let client = client();

    // With a key: the retry gets the stored answer.
    let err = chat(&client, &provider, Some("k1"), None)
        .await
        .expect_err("the connection is dropped");
    let predicates = [
        ("is_request", err.is_request()),
        ("is_connect", err.is_connect()),
        ("is_timeout", err.is_timeout()),
        ("is_body", err.is_body()),
        ("is_decode", err.is_decode()),
        ("is_status", err.is_status()),
        ("is_builder", err.is_builder()),
        ("is_redirect", err.is_redirect()),
    ];
    let true_ones: Vec<&str> = predicates
        .iter()
        .filter(|(_, v)| *v)
        .map(|(n, _)| *n)
        .collect();
    eprintln!("dropped connection: {err} ({err:?}); true predicates: {true_ones:?}");
    assert!(err.is_request(), "{err:?}");
    assert!(!err.is_timeout() && !err.is_status(), "{err:?}");
    let retry = chat(&client, &provider, Some("k1"), None).await.unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    let stats = provider.stats();
    assert_eq!(
        (stats.processed, stats.replayed, stats.billed_twice),
        (1, 1, 0)
    );

    // Without a key, the same `user`: the work is done twice.
    assert!(chat(&client, &provider, None, Some("bob")).await.is_err());
    let retry = chat(&client, &provider, None, Some("bob")).await.unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(header(&retry, "idempotent-replayed"), None);
    let stats = provider.stats();
    assert_eq!((stats.processed, stats.billed_twice), (3, 1));
    assert_eq!(stats.faults.get("drop"), Some(&2));
    assert_eq!(
        outcomes(&provider),
        ["dropped", "replayed", "dropped", "200"]
    );
}

#[test]
fn a_dropped_connection_closes_without_a_byte() {
    // From sync code, with no runtime around.
    let provider = FlakyProvider::spawn(Scenario::Always(Fault::DropAfterProcessing)).unwrap();
    let mut stream = TcpStream::connect(provider.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let body = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap();
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert_eq!(provider.stats().processed, 1);
}

#[tokio::test]
async fn a_slow_answer_is_processed_before_the_client_gives_up() {
    let provider = FlakyProvider::spawn(Scenario::FailFirst {
        failures: 1,
        fault: Fault::Slow(Duration::from_secs(3)),
    })
    .unwrap();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = chat(&impatient, &provider, Some("s"), None)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    // The retry with the same key gets the answer that was already made.
    let started = Instant::now();
    let retry = chat(&impatient, &provider, Some("s"), None).await.unwrap();
    assert_eq!(retry.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    let stats = provider.stats();
    assert_eq!(
        (stats.processed, stats.replayed, stats.billed_twice),
        (1, 1, 0)
    );
    assert_eq!(stats.faults.get("slow"), Some(&1));
    assert_eq!(outcomes(&provider), ["slow", "replayed"]);
}

#[tokio::test]
async fn a_key_in_progress_gets_409() {
    let provider = FlakyProvider::spawn(Scenario::FailFirst {
        failures: 1,
        fault: Fault::SlowProcessing(Duration::from_millis(800)),
    })
    .unwrap();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    assert!(chat(&impatient, &provider, Some("p"), None)
        .await
        .unwrap_err()
        .is_timeout());
    let conflict = chat(&impatient, &provider, Some("p"), None).await.unwrap();
    assert_eq!(conflict.status(), 409);
    let json: Value = conflict.json().await.unwrap();
    assert_eq!(json["error"]["type"], "conflict");
    assert_eq!(
        json["error"]["message"],
        "a request with this Idempotency-Key is in progress"
    );
    // Once the work is done (even though its client left), it is replayed.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let done = chat(&impatient, &provider, Some("p"), None).await.unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(header(&done, "idempotent-replayed"), Some("true"));
    let stats = provider.stats();
    assert_eq!(stats.in_progress_conflicts, 1);
    assert_eq!(
        (stats.processed, stats.replayed, stats.billed_twice),
        (1, 1, 0)
    );
    assert_eq!(outcomes(&provider), ["slow_processing", "409", "replayed"]);
}

#[tokio::test]
async fn the_token_bucket_refuses_beyond_its_burst_and_recovers() {
    let provider = FlakyProvider::spawn(Scenario::TokenBucket {
        rate: 2.0,
        burst: 3,
    })
    .unwrap();
    let client = client();
    for _ in 0..3 {
        assert_eq!(
            chat(&client, &provider, None, None).await.unwrap().status(),
            200
        );
    }
    let refused = chat(&client, &provider, None, None).await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(
        header(&refused, "x-ratelimit-remaining-requests"),
        Some("0")
    );
    let json: Value = refused.json().await.unwrap();
    assert_eq!(json["error"]["code"], "rate_limit_exceeded");
    // One token comes back every 500 ms.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        chat(&client, &provider, None, None).await.unwrap().status(),
        200
    );
    let stats = provider.stats();
    assert_eq!(stats.processed, 4);
    assert_eq!(stats.faults.get("token_bucket"), Some(&1));
    assert_eq!(outcomes(&provider), ["200", "200", "200", "429", "200"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_scenario_says_retry_after_one_second() {
    // 100/s with a burst of 20: 60 requests at once overflow it.
    let provider = FlakyProvider::spawn(Scenario::from_name("rate-limit").unwrap()).unwrap();
    let client = client();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let (client, url) = (client.clone(), provider.chat_completions_url());
        tasks.spawn(async move { client.post(url).json(&body(None, "hi")).send().await });
    }
    let mut retry_afters = Vec::new();
    while let Some(resp) = tasks.join_next().await {
        let resp = resp.unwrap().unwrap();
        if resp.status() == 429 {
            retry_afters.push(header(&resp, "retry-after").map(str::to_owned));
        }
    }
    assert!(
        !retry_afters.is_empty(),
        "the burst of 20 was never exceeded"
    );
    assert!(
        retry_afters.iter().all(|r| r.as_deref() == Some("1")),
        "{retry_afters:?}"
    );
}

#[tokio::test]
async fn chaos_is_deterministic_for_a_seed() {
    let run = |seed| async move {
        let provider = FlakyProvider::spawn(Scenario::Chaos {
            seed,
            fault_rate: 0.5,
        })
        .unwrap();
        let impatient = reqwest::Client::builder()
            .timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        for _ in 0..30 {
            let _ = chat(&impatient, &provider, None, None).await;
        }
        (outcomes(&provider), provider.stats())
    };
    let (a, stats) = run(11).await;
    let (b, _) = run(11).await;
    assert_eq!(a, b);
    let failed = a.iter().filter(|o| *o != "200").count();
    assert!((5..=25).contains(&failed), "{failed} of 30 failed: {a:?}");
    assert_eq!(stats.faults.values().sum::<u64>(), failed as u64);
    let (c, _) = run(12).await;
    assert_ne!(a, c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_returns_promptly_with_a_slow_request_in_flight() {
    let provider =
        FlakyProvider::spawn(Scenario::Always(Fault::Slow(Duration::from_secs(30)))).unwrap();
    let url = provider.chat_completions_url();
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&body(None, "hi"))
            .send()
            .await
    });
    let started = Instant::now();
    while provider.stats().requests == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    drop(provider);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        started.elapsed()
    );
    // The client sees the connection go, not a 30 s wait.
    let result = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("the client is not left hanging")
        .unwrap();
    assert!(result.is_err());
}

#[test]
fn spawn_works_inside_another_runtime_and_names_all_parse() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for name in Scenario::names() {
            let scenario = Scenario::from_name(name).unwrap();
            let provider = FlakyProvider::spawn(scenario.clone()).unwrap();
            assert_eq!(provider.scenario(), &scenario);
        }
    });
}

/// Sends `n` requests of `content` one after the other; the statuses.
async fn statuses(client: &reqwest::Client, provider: &FlakyProvider, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        let resp = chat(client, provider, None, None).await.unwrap();
        out.push(resp.status().as_u16());
    }
    out
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Parses a Go duration as OpenAI writes it (`20ms`, `1.5s`, `6m0s`).
fn parse_go_duration(s: &str) -> Duration {
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let value: f64 = number
            .parse()
            .unwrap_or_else(|_| panic!("bad duration {s:?}"));
        number.clear();
        total += match c {
            'h' => value * 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                value / 1000.0
            }
            'm' => value * 60.0,
            's' => value,
            _ => panic!("bad unit in {s:?}"),
        };
    }
    assert!(number.is_empty(), "no unit at the end of {s:?}");
    Duration::from_secs_f64(total)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.mmm]Z` as seconds since the epoch.
fn parse_rfc3339(s: &str) -> f64 {
    let (date, time) = s.strip_suffix('Z').unwrap().split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let t: Vec<f64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days as f64 * 86_400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

fn since_epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn openai_limits_are_announced_on_successes_and_refusals() {
    let provider = FlakyProvider::spawn_with_manual_clock(Scenario::Limited(
        Limits::requests(2.0, 3).announce(Announce::OpenAi),
    ))
    .unwrap();
    let client = client();
    let mut remaining = Vec::new();
    for want in [200, 200, 200, 429] {
        let resp = chat(&client, &provider, None, None).await.unwrap();
        assert_eq!(resp.status(), want);
        assert_eq!(header(&resp, "x-ratelimit-limit-requests"), Some("120"));
        remaining.push(
            header(&resp, "x-ratelimit-remaining-requests")
                .unwrap()
                .to_owned(),
        );
        // The bucket refills at 2/s: each missing request is 500 ms.
        let reset = parse_go_duration(header(&resp, "x-ratelimit-reset-requests").unwrap());
        let missing = 3 - remaining.last().unwrap().parse::<u64>().unwrap();
        assert_eq!(reset, Duration::from_millis(500 * missing), "{remaining:?}");
        assert!(header(&resp, "x-ratelimit-limit-tokens").is_none());
        if want == 429 {
            assert_eq!(header(&resp, "retry-after"), Some("1"));
            let json: Value = resp.json().await.unwrap();
            assert_eq!(json["error"]["code"], "rate_limit_exceeded");
        }
    }
    assert_eq!(remaining, ["2", "1", "0", "0"]);
    // Half a second later one request is back.
    provider.advance_clock(Duration::from_millis(500));
    let resp = chat(&client, &provider, None, None).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(provider.stats().faults.get("token_bucket"), Some(&1));
}

#[tokio::test]
async fn anthropic_limits_are_announced_on_successes_and_refusals() {
    let provider = FlakyProvider::spawn_with_manual_clock(Scenario::Limited(
        Limits::requests(1.0, 2)
            .tokens_per_minute(6000, 1000)
            .announce(Announce::Anthropic),
    ))
    .unwrap();
    let client = client();
    let cost = request_tokens(&body(None, "hello there"));
    for (want, left) in [(200, 1), (200, 0), (429, 0)] {
        let before = since_epoch(SystemTime::now());
        let resp = chat(&client, &provider, None, None).await.unwrap();
        let after = since_epoch(SystemTime::now());
        assert_eq!(resp.status(), want);
        let h = |name: &str| header(&resp, name).unwrap().to_owned();
        assert_eq!(h("anthropic-ratelimit-requests-limit"), "60");
        assert_eq!(
            h("anthropic-ratelimit-requests-remaining"),
            left.to_string()
        );
        // Full again in (2 - left) s at 1/s.
        let reset = parse_rfc3339(&h("anthropic-ratelimit-requests-reset"));
        let full_in = (2 - left) as f64;
        assert!(
            reset >= before + full_in - 0.01 && reset <= after + full_in + 0.01,
            "{reset} vs {before}..{after}"
        );
        let used = if want == 200 { 2 - left } else { 2 };
        assert_eq!(h("anthropic-ratelimit-input-tokens-limit"), "6000");
        assert_eq!(
            h("anthropic-ratelimit-input-tokens-remaining"),
            (1000 - used * cost).to_string()
        );
        let tokens_reset = parse_rfc3339(&h("anthropic-ratelimit-input-tokens-reset"));
        let tokens_full_in = (used * cost) as f64 / 100.0;
        assert!(
            (tokens_reset - (before + tokens_full_in)).abs() < 1.0,
            "{tokens_reset}"
        );
        if want == 429 {
            assert_eq!(h("retry-after"), "1");
            let json: Value = resp.json().await.unwrap();
            assert_eq!(json["type"], "error");
            assert_eq!(json["error"]["type"], "rate_limit_error");
        }
    }
}

#[tokio::test]
async fn a_large_prompt_is_refused_by_tokens_while_requests_remain() {
    // 100 requests a second, but 600 tokens a minute (10 a second) from a
    // bucket of 100.
    let provider = FlakyProvider::spawn_with_manual_clock(Scenario::Limited(
        Limits::requests(100.0, 100)
            .tokens_per_minute(600, 100)
            .announce(Announce::OpenAi),
    ))
    .unwrap();
    let client = client();
    let prompt = |chars: usize| json!({"model": "gpt-test", "messages": [{"role": "user", "content": "x".repeat(chars)}]});
    let send = |body: Value| {
        client
            .post(provider.chat_completions_url())
            .json(&body)
            .send()
    };
    assert_eq!(request_tokens(&prompt(240)), 60);
    let first = send(prompt(240)).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-remaining-tokens"), Some("40"));
    assert_eq!(header(&first, "x-ratelimit-reset-tokens"), Some("6s"));
    let refused = send(prompt(240)).await.unwrap();
    assert_eq!(refused.status(), 429);
    // Requests remain; 20 tokens are missing, 2 s at 10 a second.
    assert_eq!(
        header(&refused, "x-ratelimit-remaining-requests"),
        Some("99")
    );
    assert_eq!(header(&refused, "x-ratelimit-remaining-tokens"), Some("40"));
    assert_eq!(header(&refused, "retry-after"), Some("2"));
    let json: Value = refused.json().await.unwrap();
    assert_eq!(json["error"]["code"], "rate_limit_exceeded");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("tokens per min"), "{message}");
    // A small prompt still fits.
    assert_eq!(send(prompt(40)).await.unwrap().status(), 200);
    provider.advance_clock(Duration::from_secs(3));
    assert_eq!(send(prompt(240)).await.unwrap().status(), 200);
    let stats = provider.stats();
    assert_eq!(stats.faults.get("tokens_per_minute"), Some(&1));
    assert_eq!(stats.faults.get("token_bucket"), None);
    assert_eq!(stats.processed, 3);
}

#[tokio::test]
async fn the_rate_schedule_admits_the_scheduled_rate() {
    // 20/s, 2/s from 2 s to 5 s, 20/s again; a bucket of 5.
    let provider = FlakyProvider::spawn_with_manual_clock(Scenario::Limited(
        Limits::requests(20.0, 5)
            .then(Duration::from_secs(2), 2.0)
            .then(Duration::from_secs(5), 20.0),
    ))
    .unwrap();
    let client = client();
    // Each step: 100 ms of clock, then more requests than can pass.
    let mut admitted = Vec::new();
    for _ in 0..70 {
        let got = statuses(&client, &provider, 4).await;
        admitted.push(count(&got, 200));
        assert_eq!(count(&got, 200) + count(&got, 429), 4, "{got:?}");
        provider.advance_clock(Duration::from_millis(100));
    }
    let per_second: Vec<usize> = admitted.chunks(10).map(|c| c.iter().sum()).collect();
    // The first second: the burst, then 2 every 100 ms (give or take the
    // rounding of fractions of a request).
    let about = |n: usize, want: usize| n + 1 >= want && n <= want;
    assert!(about(per_second[0], 5 + 9 * 2), "{per_second:?}");
    assert!(about(per_second[1], 20), "{per_second:?}");
    for second in 2..5 {
        assert!(
            (1..=3).contains(&per_second[second]),
            "{second}: {per_second:?}"
        );
    }
    // Back at 20/s (4 a step is the most asked) once the bucket, nearly
    // empty at the return, has a whole request again.
    assert!((18..=20).contains(&per_second[5]), "{per_second:?}");
    assert!(about(per_second[6], 20), "{per_second:?}");
    // The timeline says the same, and sums to what was processed.
    let timeline = provider.admitted_per_second();
    assert_eq!(
        timeline,
        per_second.iter().map(|&n| n as u64).collect::<Vec<_>>()
    );
    assert_eq!(timeline.iter().sum::<u64>(), provider.stats().processed);
}

#[tokio::test]
async fn the_timeline_counts_admitted_requests_by_second() {
    let provider = FlakyProvider::spawn_with_manual_clock(Scenario::Healthy).unwrap();
    assert!(provider.admitted_per_second().is_empty());
    let client = client();
    statuses(&client, &provider, 3).await;
    provider.advance_clock(Duration::from_secs(2));
    statuses(&client, &provider, 2).await;
    assert_eq!(provider.admitted_per_second(), [3, 0, 2]);
    assert_eq!(provider.stats().processed, 5);
    // A provider on the real clock cannot be moved.
    let real = FlakyProvider::spawn(Scenario::Healthy).unwrap();
    assert!(!real.advance_clock(Duration::from_secs(1)));
    assert!(provider.advance_clock(Duration::MAX));
}
