use llm_resilience::retry;

trait Provider {
    #[retry]
    fn complete(&self, prompt: &str) -> Result<String, std::io::Error>;
}

fn main() {}
