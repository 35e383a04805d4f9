use llm_resilience::retry;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[retry(first_event_timeout = 10s, idle_timeout = 30s, stream_deadline = 2m, on_interrupt = restart)]
async fn chat() -> Result<String, Error> {
    Ok(String::new())
}

fn main() {}
