use std::future::Future;
use std::pin::Pin;

use llm_resilience::retry;

struct Client;

impl Client {
    // What `#[async_trait]` turns an `async fn` into.
    #[retry]
    fn call<'a>(
        &'a self,
    ) -> Pin<Box<dyn Future<Output = Result<u32, std::io::Error>> + Send + 'a>> {
        Box::pin(async { Ok(1) })
    }
}

fn main() {}
