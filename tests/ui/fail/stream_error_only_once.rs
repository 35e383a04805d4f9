use futures_util::stream;
use llm_resilience::retry;
use llm_resilience::stream::{OpenAi, RetriedStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

// One mistake in the arguments: one error, and none about the body, which
// returns the byte stream as a streamed function's body does.
#[retry(stream = OpenAi, idle_timeout = 0s)]
async fn chat(prompt: &str) -> Result<RetriedStream<'_, Error>, Error> {
    let body = format!("data: {prompt}\n\n");
    Ok(stream::iter([Ok::<_, Error>(body)]))
}

fn main() {}
