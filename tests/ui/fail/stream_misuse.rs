use llm_resilience::retry;
use llm_resilience::stream::{OpenAi, RetriedStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn other(_: &mut Vec<u8>, _: (u32, u32), _: String) -> Result<RetriedStream<'static, Error>, Error> {
    unimplemented!()
}

#[retry(stream = OpenAi, fallback = other, clone(prompt), idle_timeout = 0s, on_interrupt = again)]
async fn chat(
    buffer: &mut Vec<u8>,
    (a, b): (u32, u32),
    prompt: String,
) -> Result<RetriedStream<'static, Error>, Error> {
    unimplemented!()
}

#[retry(stream = OpenAi, on_interrupt = resume)]
async fn resume() -> Result<RetriedStream<'static, Error>, Error> {
    unimplemented!()
}

#[retry(stream = OpenAi, on_interrupt = restart(received))]
async fn restart() -> Result<RetriedStream<'static, Error>, Error> {
    unimplemented!()
}

struct Chat;

impl Chat {
    #[retry(stream = OpenAi)]
    async fn by_value(self) -> Result<RetriedStream<'static, Error>, Error> {
        unimplemented!()
    }
}

fn main() {}
