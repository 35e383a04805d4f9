//! The flaky provider on its own: an OpenAI-compatible server on
//! 127.0.0.1 that fails on purpose, for any client to call (the `demo` and
//! `stream` examples with `--base-url`, curl, another language's SDK). It
//! serves until stopped (Ctrl-C), and prints what it saw every few seconds
//! when that changed.
//!
//! ```sh
//! cargo run --release -p examples --bin provider -- --port 8080 --scenario stream-chaos
//! # in another terminal:
//! OPENAI_API_KEY=none cargo run --release -p examples --bin demo -- \
//!     --base-url http://127.0.0.1:8080/v1 --stream
//! ```
//!
//! It answers `POST /v1/chat/completions` (OpenAI's shape) and
//! `POST /v1/messages` (Anthropic's), streamed when the body asks for
//! `"stream": true`; any API key is accepted. The scenarios are the demo's
//! (`--help` lists them; see `examples::flaky::Scenario::from_name`).

use std::process::ExitCode;
use std::time::Duration;

use clap::builder::PossibleValuesParser;
use clap::Parser;
use examples::flaky::{FlakyProvider, Scenario};

/// Serves the flaky provider on 127.0.0.1 until stopped.
#[derive(Parser, Debug)]
#[command(name = "provider")]
struct Options {
    /// The port to listen on (0: any free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,

    /// What goes wrong, and when.
    #[arg(long, default_value = "stream-chaos", value_parser = PossibleValuesParser::new(Scenario::names()))]
    scenario: String,
}

fn main() -> ExitCode {
    let options = Options::parse();
    let Some(scenario) = Scenario::from_name(&options.scenario) else {
        eprintln!("provider: unknown scenario {:?}", options.scenario);
        return ExitCode::from(2);
    };
    let provider = match FlakyProvider::spawn_on_port(scenario, options.port) {
        Ok(provider) => provider,
        Err(e) => {
            eprintln!(
                "provider: could not listen on 127.0.0.1:{}: {e}",
                options.port
            );
            return ExitCode::FAILURE;
        }
    };
    println!(
        "Flaky provider (scenario {}) at {}; stop with Ctrl-C.",
        options.scenario,
        provider.base_url()
    );
    let mut last = provider.stats();
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let stats = provider.stats();
        if stats != last {
            println!(
                "requests {}, processed {}, replayed {}, billed twice {}, faults {:?}",
                stats.requests, stats.processed, stats.replayed, stats.billed_twice, stats.faults
            );
            last = stats;
        }
    }
}
