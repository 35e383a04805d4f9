use llm_resilience::retry;
use llm_resilience::stream::{OpenAi, RetriedStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[retry(stream = OpenAi)]
fn chat() -> Result<RetriedStream<'static, Error>, Error> {
    unimplemented!()
}

fn main() {}
