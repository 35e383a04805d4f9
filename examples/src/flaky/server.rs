//! The HTTP side: accept loop, one hyper connection per socket, the service.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::responses::{self, Api, Body, Stored};
use super::scenario::StreamFault;
use super::sse::{self, BoxError};
use super::state::{Action, Shared};

/// Bodies larger than this are refused with `400`.
const MAX_BODY: usize = 4 << 20;

/// The error a service returns to make hyper close the connection without
/// answering: the "dropped after processing" fault.
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped on purpose after processing")
    }
}

impl std::error::Error for DropConnection {}

/// Accepts connections until `shutdown` fires (or its sender is dropped).
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let service = service_fn(move |req| handle(Arc::clone(&shared), req));
                        // Errors here are clients going away, or our own drops.
                        let _ = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // Out of file descriptors and the like: back off a little.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
}

/// What a response body is: whole, or streamed.
type ResponseBody = BoxBody<Bytes, BoxError>;

/// What the request asked for: which API, and whether streamed.
#[derive(Debug, Clone, Copy)]
struct Call {
    api: Api,
    stream: bool,
}

/// The response to `call` of `answer`: a stream when the call asked for one
/// and the answer is a processed one (with `fault`, if any), else a whole
/// body.
fn reply(
    answer: &Stored,
    call: Call,
    request_id: &str,
    replayed: bool,
    fault: Option<StreamFault>,
) -> Response<ResponseBody> {
    if let (true, Body::Answer(processed)) = (call.stream, &answer.body) {
        let resp = sse::response(answer, processed, call.api, request_id, replayed, fault);
        return resp.map(BodyExt::boxed);
    }
    answer
        .to_response(call.api, request_id, replayed)
        .map(|body| body.map_err(|never| match never {}).boxed())
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, DropConnection> {
    let meta = shared.meta(req.headers());
    let api = match (req.method(), req.uri().path()) {
        (&Method::POST, "/v1/chat/completions") => Api::ChatCompletions,
        (&Method::POST, "/v1/messages") => Api::Messages,
        (method, path) => {
            let answer = responses::not_found(method.as_str(), path);
            let call = Call {
                api: Api::ChatCompletions,
                stream: false,
            };
            let resp = reply(&answer, call, &meta.request_id, false, None);
            shared.reject(meta, &answer);
            return Ok(resp);
        }
    };
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err("Could not read the request body (too large, or cut off)."),
    };
    let json = match body.map(|b| serde_json::from_slice::<Value>(&b)) {
        Ok(Ok(value @ Value::Object(_))) => Ok(value),
        Ok(Ok(_)) => Err("The request body must be a JSON object."),
        Ok(Err(_)) => Err("We could not parse the JSON body of your request. \
             (HINT: This likely means you aren't using your HTTP library correctly. \
             The OpenAI API expects a JSON payload.)"),
        Err(why) => Err(why),
    };
    let json = match json {
        Ok(json) => json,
        Err(why) => {
            let answer = responses::bad_request(why);
            let call = Call { api, stream: false };
            let resp = reply(&answer, call, &meta.request_id, false, None);
            shared.reject(meta, &answer);
            return Ok(resp);
        }
    };
    let call = Call {
        api,
        stream: json.get("stream").and_then(Value::as_bool) == Some(true),
    };
    let request_id = meta.request_id.clone();
    match shared.decide(meta, &json, call.stream) {
        Action::Respond(answer) => Ok(reply(&answer, call, &request_id, false, None)),
        Action::Replay(answer) => Ok(reply(&answer, call, &request_id, true, None)),
        Action::Late(wait, answer) => {
            tokio::time::sleep(wait).await;
            Ok(reply(&answer, call, &request_id, false, None))
        }
        Action::Drop => Err(DropConnection),
        Action::Work { took, key, answer } => {
            // The work goes on even if the client hangs up meanwhile.
            let work = tokio::spawn(async move {
                tokio::time::sleep(took).await;
                shared.finish_work(key, &answer);
                answer
            });
            match work.await {
                Ok(answer) => Ok(reply(&answer, call, &request_id, false, None)),
                Err(_) => Err(DropConnection),
            }
        }
        Action::Stream(answer, fault) => Ok(reply(&answer, call, &request_id, false, Some(fault))),
    }
}
