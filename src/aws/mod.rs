//! One adapter per AWS service. SDK types stop here; errors become [`crate::error::Error`].

pub mod mail;
pub mod secrets;
pub mod sfn;
pub mod sso;
pub mod store;

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the shared SDK configuration (region, credentials, `AWS_ENDPOINT_URL…`) once.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}
