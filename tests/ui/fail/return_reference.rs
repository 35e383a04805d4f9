use llm_resilience::retry;

#[retry]
fn call(r: &Result<u32, std::io::Error>) -> &Result<u32, std::io::Error> {
    r
}

fn main() {}
