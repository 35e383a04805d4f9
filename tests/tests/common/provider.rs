//! What the tests of the integrations share: the flaky provider, a chat
//! request body, and hyper's client.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use examples::flaky::{FlakyProvider, Scenario};
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use llm_resilience::{Policy, Wait};
use serde_json::{json, Value};

/// A provider playing `scenario`.
pub fn provider(scenario: Scenario) -> FlakyProvider {
    FlakyProvider::spawn(scenario).expect("the flaky provider starts")
}

/// A reqwest client that opens a connection per request, so that a
/// connection one test's fault cut is never reused.
pub fn reqwest_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a reqwest client")
}

/// The idempotency keys `provider` was sent, in order.
pub fn keys(provider: &FlakyProvider) -> Vec<String> {
    provider
        .requests()
        .into_iter()
        .filter_map(|r| r.idempotency_key)
        .collect()
}

/// The policy the integrations are tested under: what `#[retry]` is given in
/// `http_provider.rs`.
pub const POLICY: Policy = Policy::new()
    .max_attempts(4)
    .wait(Wait::exponential(
        Duration::from_millis(1),
        Duration::from_millis(20),
    ))
    .attempt_timeout(Duration::from_millis(300))
    .deadline(Duration::from_secs(30));

/// A chat completion request body from `user`.
pub fn chat_body(user: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "test",
        "messages": [{"role": "user", "content": format!("hello from {user}")}],
        "user": user,
    }))
    .expect("a JSON body")
}

/// The reply's text.
pub fn reply_text(body: &[u8]) -> String {
    let reply: Value = serde_json::from_slice(body).expect("a JSON reply");
    reply["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// hyper's pooled client, over plain HTTP.
pub type HyperClient = Client<HttpConnector, Full<Bytes>>;

/// A hyper client.
pub fn hyper_client() -> HyperClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A chat completion request for hyper.
pub fn hyper_request(url: &str, user: &str) -> Request<Full<Bytes>> {
    Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat_body(user))))
        .expect("a valid request")
}
