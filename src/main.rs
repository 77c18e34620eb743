//! Wiring only: CLI when given arguments, otherwise a Lambda function.

use std::process::ExitCode;

use break_glass::config::Config;
use break_glass::handlers::App;
use lambda_runtime::{LambdaEvent, service_fn};

fn main() -> ExitCode {
    if std::env::args_os().len() > 1 {
        return break_glass::cli::run(std::env::args_os());
    }
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        eprintln!(
            "{}\nWithout arguments, break-glass runs as an AWS Lambda function (AWS_LAMBDA_RUNTIME_API must be set); see break-glass --help.",
            break_glass::cli::usage()
        );
        return ExitCode::from(2);
    }
    init_tracing();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "break-glass stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), lambda_runtime::Error> {
    let cfg = Config::from_env()?;
    let sdk = break_glass::aws::sdk_config(std::time::Duration::from_secs(
        cfg.aws_call_timeout.as_secs(),
    ))
    .await;
    let app = App::init(cfg, sdk).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        async move { app.handle(event.payload).await }
    }))
    .await
}

/// JSON logs (one object a line, as CloudWatch wants), each with the fields of the task or
/// Slack request it belongs to (`span`); `RUST_LOG` sets the level.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(false)
        .with_target(false)
        .init();
}
