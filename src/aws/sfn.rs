//! Step Functions: starting one execution per request, named by the request id, and
//! completing the Hold state's callback when a lease ends early.

use crate::domain::RequestId;
use crate::error::{Error, code_of, from_sdk};

#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    /// Started now, or already running with the same input (StartExecution is idempotent).
    Running(String),
    /// An execution of that name exists and has finished.
    AlreadyFinished,
}

/// What the reconciler needs to know of an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED` (or `PENDING_REDRIVE`).
    pub status: String,
    pub stopped_at: Option<time::OffsetDateTime>,
}

#[derive(Clone)]
pub struct Executions {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl Executions {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    pub async fn start(&self, id: &RequestId, input: &serde_json::Value) -> Result<Started, Error> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(id.as_str())
            .input(input.to_string())
            .send()
            .await;
        match result {
            Ok(out) => Ok(Started::Running(out.execution_arn)),
            Err(e) if code_of(&e) == Some("ExecutionAlreadyExists") => Ok(Started::AlreadyFinished),
            Err(e) => Err(from_sdk("Step Functions StartExecution", e)),
        }
    }

    /// Completes a waiting task (the Hold state) with `output`. `Ok(false)` when the token is
    /// no longer waiting (timed out, already completed, or its execution ended): whoever
    /// waits next reads the request and sees the same end.
    pub async fn complete(&self, token: &str, output: &serde_json::Value) -> Result<bool, Error> {
        let result = self
            .client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await;
        delivered(result, "Step Functions SendTaskSuccess")
    }

    /// Fails a waiting task (a denied approval) with `error`. `Ok(false)` when the token is
    /// no longer waiting.
    pub async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<bool, Error> {
        let result = self
            .client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await;
        delivered(result, "Step Functions SendTaskFailure")
    }

    /// The execution of a request; `None` if it was never started.
    pub async fn status(&self, id: &RequestId) -> Result<Option<Execution>, Error> {
        let result = self
            .client
            .describe_execution()
            .execution_arn(execution_arn(&self.state_machine_arn, id))
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(Execution {
                status: out.status.as_str().to_owned(),
                stopped_at: out
                    .stop_date
                    .and_then(|d| time::OffsetDateTime::from_unix_timestamp(d.secs()).ok()),
            })),
            Err(e) if code_of(&e) == Some("ExecutionDoesNotExist") => Ok(None),
            Err(e) => Err(from_sdk("Step Functions DescribeExecution", e)),
        }
    }
}

/// Whether a callback reached its waiting task: `Ok(false)` when the token no longer waits
/// (timed out, already completed, or its execution ended).
fn delivered<T, E, R>(
    result: Result<T, aws_sdk_sfn::error::SdkError<E, R>>,
    what: &'static str,
) -> Result<bool, Error>
where
    E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                code_of(&e),
                Some("TaskTimedOut" | "TaskDoesNotExist" | "InvalidToken")
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(from_sdk(what, e)),
    }
}

/// `arn:…:stateMachine:<name>` + request id → `arn:…:execution:<name>:<request id>`.
pub fn execution_arn(state_machine_arn: &str, id: &RequestId) -> String {
    format!(
        "{}:{id}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arns() {
        let id = RequestId::derive(&["x"]);
        assert_eq!(
            execution_arn("arn:aws:states:eu-west-1:123456789012:stateMachine:bg", &id),
            format!("arn:aws:states:eu-west-1:123456789012:execution:bg:{id}")
        );
    }
}
