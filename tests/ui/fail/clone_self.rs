use llm_resilience::retry;

#[derive(Clone)]
struct Client;

impl Client {
    #[retry(clone(self))]
    fn call(self) -> Result<(), std::io::Error> {
        Ok(())
    }
}

fn main() {}
