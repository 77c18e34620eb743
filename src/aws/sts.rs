//! STS: who we are.

/// The account the credentials belong to (the Identity Center account, where we run), for
/// telling the target account's CloudTrail from ours. `None` (logged) when STS cannot say.
pub async fn own_account(sdk: &aws_config::SdkConfig) -> Option<String> {
    match aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
    {
        Ok(out) => out.account,
        Err(e) => {
            tracing::warn!(error = %aws_sdk_sts::error::DisplayErrorContext(&e), "could not tell our own account");
            None
        }
    }
}
