// The same for a method: callers still find it, with its signature.
use llm_resilience::retry;

struct Client;

impl Client {
    #[retry(on = [Auth])]
    async fn chat(&self, prompt: &str) -> Result<usize, std::io::Error> {
        Ok(prompt.len())
    }
}

fn main() {
    let chat = Client.chat("hi");
    drop(chat);
}
