//! Errors with stable names. A worker task's error reaches Step Functions as `errorType`, and
//! the state machine's `Retry`/`Catch` match on those names: never rename one without the ASL.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_smithy_types::error::metadata::ErrorMetadata;

/// What went wrong, by how the caller should react.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An AWS API throttled us. Retry with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// A network failure, timeout, 5xx or concurrent-operation conflict. Retry with backoff.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Identity Center reported the assignment's provisioning as FAILED.
    #[error("account assignment failed: {0}")]
    AssignmentFailed(String),
    /// The payload or a stored record is not what it must be. Retrying cannot help.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Something the task needs does not exist (request record, user, permission set).
    #[error("not found: {0}")]
    NotFound(String),
    /// A conditional write lost: someone else changed the record first.
    #[error("state conflict: {0}")]
    StateConflict(String),
    /// Configuration is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// Any other AWS error (access denied, validation, …). Not retried.
    #[error("AWS error: {0}")]
    Aws(String),
}

impl Error {
    /// Every name [`Error::name`] can return: what the state machine may match on.
    pub const NAMES: &'static [&'static str] = &[
        "Throttled",
        "Transient",
        "AssignmentFailed",
        "InvalidInput",
        "NotFound",
        "StateConflict",
        "ConfigError",
        "AwsError",
    ];

    /// The stable name Step Functions sees as the error.
    pub fn name(&self) -> &'static str {
        match self {
            Error::Throttled(_) => "Throttled",
            Error::Transient(_) => "Transient",
            Error::AssignmentFailed(_) => "AssignmentFailed",
            Error::InvalidInput(_) => "InvalidInput",
            Error::NotFound(_) => "NotFound",
            Error::StateConflict(_) => "StateConflict",
            Error::Config(_) => "ConfigError",
            Error::Aws(_) => "AwsError",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Throttled(_) | Error::Transient(_))
    }

    /// The message, without the kind [`Error`]'s `Display` puts first.
    pub fn detail(&self) -> &str {
        match self {
            Error::Throttled(s)
            | Error::Transient(s)
            | Error::AssignmentFailed(s)
            | Error::InvalidInput(s)
            | Error::NotFound(s)
            | Error::StateConflict(s)
            | Error::Config(s)
            | Error::Aws(s) => s,
        }
    }

    /// The same kind of error with its message changed.
    fn reworded(self, f: impl FnOnce(String) -> String) -> Error {
        match self {
            Error::Throttled(s) => Error::Throttled(f(s)),
            Error::Transient(s) => Error::Transient(f(s)),
            Error::AssignmentFailed(s) => Error::AssignmentFailed(f(s)),
            Error::InvalidInput(s) => Error::InvalidInput(f(s)),
            Error::NotFound(s) => Error::NotFound(f(s)),
            Error::StateConflict(s) => Error::StateConflict(f(s)),
            Error::Config(s) => Error::Config(f(s)),
            Error::Aws(s) => Error::Aws(f(s)),
        }
    }

    /// One error for the failures of several parts of one task (`(what, error)`, none when
    /// nothing failed): named after the first that retrying cannot help, or else the first, so
    /// the state machine never retries what cannot succeed; its message names every part
    /// that failed and why.
    pub fn of_parts(failures: Vec<(String, Error)>) -> Option<Error> {
        let lead = failures
            .iter()
            .position(|(_, e)| !e.is_retryable())
            .unwrap_or(0);
        let kind = failures.get(lead)?.1.name();
        // The error's own kind says it once; another kind is named where it occurs.
        let message = failures
            .iter()
            .map(|(what, e)| match e.name() == kind {
                true => format!("{what}: {}", e.detail()),
                false => format!("{what}: {e}"),
            })
            .collect::<Vec<_>>()
            .join("; ");
        let (_, lead) = failures.into_iter().nth(lead)?;
        Some(lead.reworded(|_| message))
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.name().to_owned(),
            error_message: e.to_string(),
        }
    }
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "LimitExceededException",
];

const TRANSIENT_CODES: &[&str] = &[
    "ConflictException",
    "InternalServerException",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalServerError",
    "TransactionConflictException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Maps an SDK error to ours: `what` says which call failed. SDK types stop here.
pub fn from_sdk<E, R>(what: &str, e: aws_sdk_dynamodb::error::SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::SdkError;
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::Transient(format!(
                "{what}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ))
        }
        SdkError::ServiceError(se) => classify(what, se.err().meta()),
        _ => Error::Aws(format!(
            "{what}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&e)
        )),
    }
}

fn classify(what: &str, meta: &ErrorMetadata) -> Error {
    let code = meta.code().unwrap_or("Unknown");
    let msg = format!("{what}: {code}: {}", meta.message().unwrap_or(""));
    if THROTTLING_CODES.contains(&code) {
        Error::Throttled(msg)
    } else if TRANSIENT_CODES.contains(&code) {
        Error::Transient(msg)
    } else if code == "ResourceNotFoundException" || code == "ExecutionDoesNotExist" {
        Error::NotFound(msg)
    } else {
        Error::Aws(msg)
    }
}

/// The error code of a service error, for callers that treat one code specially.
pub fn code_of<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match e {
        aws_sdk_dynamodb::error::SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn failures_of_parts_are_named_after_the_one_retrying_cannot_help() {
        use super::Error;
        assert!(Error::of_parts(Vec::new()).is_none(), "nothing failed");
        let e = Error::of_parts(vec![
            (
                "account 111111111111".into(),
                Error::Transient("slow".into()),
            ),
            (
                "account 222222222222".into(),
                Error::AssignmentFailed("FAILED".into()),
            ),
        ])
        .unwrap();
        assert_eq!(e.name(), "AssignmentFailed");
        assert_eq!(
            e.to_string(),
            "account assignment failed: account 111111111111: transient failure: slow; account 222222222222: FAILED",
            "each kind said once"
        );
        let e = Error::of_parts(vec![("a".into(), Error::Throttled("x".into()))]).unwrap();
        assert_eq!(e.name(), "Throttled", "all retryable: retried");
    }

    use super::*;

    #[test]
    fn classification() {
        let m = |code: &str| ErrorMetadata::builder().code(code).message("m").build();
        assert!(matches!(
            classify("x", &m("ThrottlingException")),
            Error::Throttled(_)
        ));
        assert!(matches!(
            classify("x", &m("ConflictException")),
            Error::Transient(_)
        ));
        assert!(matches!(
            classify("x", &m("ResourceNotFoundException")),
            Error::NotFound(_)
        ));
        assert!(matches!(
            classify("x", &m("AccessDeniedException")),
            Error::Aws(_)
        ));
        assert_eq!(Error::Throttled(String::new()).name(), "Throttled");
        let every = [
            Error::Throttled(String::new()),
            Error::Transient(String::new()),
            Error::AssignmentFailed(String::new()),
            Error::InvalidInput(String::new()),
            Error::NotFound(String::new()),
            Error::StateConflict(String::new()),
            Error::Config(String::new()),
            Error::Aws(String::new()),
        ];
        let names: Vec<&str> = every.iter().map(Error::name).collect();
        assert_eq!(names, Error::NAMES, "NAMES lists every variant's name");
        assert!(Error::Transient(String::new()).is_retryable());
        assert!(!Error::AssignmentFailed(String::new()).is_retryable());
    }
}
