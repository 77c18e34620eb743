//! One adapter per AWS service. SDK types stop here; errors become [`crate::error::Error`].

pub mod cloudtrail;
pub mod mail;
pub mod organizations;
pub mod pace;
pub mod secrets;
pub mod sfn;
pub mod sso;
pub mod store;
pub mod sts;

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the shared SDK configuration (region, credentials, `AWS_ENDPOINT_URL…`) once.
/// Each attempt of a call is cut off after `attempt_timeout` (the SDK then retries it), so a
/// hung connection cannot eat a task's whole Lambda timeout.
pub async fn sdk_config(attempt_timeout: std::time::Duration) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(3))
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .load()
        .await
}
