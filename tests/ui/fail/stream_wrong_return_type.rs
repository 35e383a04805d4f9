use llm_resilience::retry;
use llm_resilience::stream::OpenAi;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[retry(stream = OpenAi)]
async fn chat() -> Result<Vec<String>, Error> {
    Ok(futures_util::stream::iter([Ok::<_, Error>("data: [DONE]\n\n")]))
}

fn main() {}
