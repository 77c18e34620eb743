//! IAM Identity Center: account assignments (SSO Admin) here; users (Identity Store) in
//! `users.rs`; permission sets (names, inline policies, provisioning) in `permission_sets.rs`.
//!
//! Provisioning is asynchronous: create/delete return a request id whose status we poll with
//! backoff until SUCCEEDED or FAILED.

mod permission_sets;
mod users;

pub use permission_sets::PermissionSetNames;

use std::time::Duration;

use aws_sdk_ssoadmin::types::{PrincipalType, StatusValues, TargetType};

use crate::domain::{AccountId, PermissionSetArn};
use crate::error::{Error, code_of, from_sdk};

/// The Identity Center instance and its identity store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub instance_arn: String,
    pub identity_store_id: String,
}

impl Instance {
    /// The partition of the instance's ARN (`aws`, `aws-us-gov`, `aws-cn`): every ARN we
    /// build takes it from here, never a hard-coded `arn:aws:`.
    pub fn partition(&self) -> &str {
        self.instance_arn
            .split(':')
            .nth(1)
            .filter(|p| !p.is_empty())
            .unwrap_or("aws")
    }
}

/// How long we wait for one provisioning request before giving up (and letting the state
/// machine retry the task).
const PROVISIONING_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct Sso {
    admin: aws_sdk_ssoadmin::Client,
    store: aws_sdk_identitystore::Client,
}

impl Sso {
    pub fn new(admin: aws_sdk_ssoadmin::Client, store: aws_sdk_identitystore::Client) -> Self {
        Self { admin, store }
    }

    /// The one Identity Center instance of the organization.
    pub async fn discover_instance(&self) -> Result<Instance, Error> {
        let out = self
            .admin
            .list_instances()
            .send()
            .await
            .map_err(|e| from_sdk("SSO Admin ListInstances", e))?;
        let instances = out.instances();
        match instances {
            [one] => Ok(Instance {
                instance_arn: one.instance_arn().unwrap_or_default().to_owned(),
                identity_store_id: one.identity_store_id().unwrap_or_default().to_owned(),
            }),
            [] => Err(Error::Config("no IAM Identity Center instance found".into())),
            _ => Err(Error::Config(
                "more than one Identity Center instance: set SSO_INSTANCE_ARN and IDENTITY_STORE_ID".into(),
            )),
        }
    }

    /// Whether `principal` already holds `ps` on `account`.
    pub async fn has_assignment(
        &self,
        inst: &Instance,
        account: &AccountId,
        ps: &PermissionSetArn,
        principal: &str,
    ) -> Result<bool, Error> {
        let mut pages = self
            .admin
            .list_account_assignments()
            .instance_arn(&inst.instance_arn)
            .account_id(account.as_str())
            .permission_set_arn(ps.as_str())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("SSO Admin ListAccountAssignments", e))?;
            if page.account_assignments().iter().any(|a| {
                a.principal_type() == Some(&PrincipalType::User)
                    && a.principal_id() == Some(principal)
            }) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Starts creating the assignment; returns the provisioning request id.
    pub async fn create_assignment(
        &self,
        inst: &Instance,
        account: &AccountId,
        ps: &PermissionSetArn,
        principal: &str,
    ) -> Result<String, Error> {
        let out = self
            .admin
            .create_account_assignment()
            .instance_arn(&inst.instance_arn)
            .target_id(account.as_str())
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(ps.as_str())
            .principal_type(PrincipalType::User)
            .principal_id(principal)
            .send()
            .await
            .map_err(|e| from_sdk("SSO Admin CreateAccountAssignment", e))?;
        request_id(out.account_assignment_creation_status())
    }

    /// Every assignment of `ps` on `account`, users and groups.
    pub async fn assignments(
        &self,
        inst: &Instance,
        account: &AccountId,
        ps: &PermissionSetArn,
    ) -> Result<Vec<Assignment>, Error> {
        let mut pages = self
            .admin
            .list_account_assignments()
            .instance_arn(&inst.instance_arn)
            .account_id(account.as_str())
            .permission_set_arn(ps.as_str())
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("SSO Admin ListAccountAssignments", e))?;
            for a in page.account_assignments() {
                let kind = match a.principal_type() {
                    Some(PrincipalType::User) => Principal::User,
                    Some(PrincipalType::Group) => Principal::Group,
                    _ => continue,
                };
                if let Some(id) = a.principal_id() {
                    out.push(Assignment {
                        kind,
                        principal_id: id.to_owned(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Every (account, permission set) a user is assigned, across the organization: one
    /// call a page for a user, however many accounts the policy names or `*` covers.
    pub async fn assignments_of_user(
        &self,
        inst: &Instance,
        user_id: &str,
    ) -> Result<Vec<(AccountId, PermissionSetArn)>, Error> {
        let mut pages = self
            .admin
            .list_account_assignments_for_principal()
            .instance_arn(&inst.instance_arn)
            .principal_id(user_id)
            .principal_type(PrincipalType::User)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| from_sdk("SSO Admin ListAccountAssignmentsForPrincipal", e))?;
            // Only the user's own assignments: never one that reaches them through a group.
            for a in page.account_assignments().iter().filter(|a| {
                a.principal_type() == Some(&PrincipalType::User)
                    && a.principal_id() == Some(user_id)
            }) {
                let account = a.account_id().and_then(|id| AccountId::parse(id).ok());
                let ps = a
                    .permission_set_arn()
                    .and_then(|arn| PermissionSetArn::parse(arn).ok());
                if let (Some(account), Some(ps)) = (account, ps) {
                    out.push((account, ps));
                }
            }
        }
        Ok(out)
    }

    /// Starts deleting a user's assignment. `None` when there was nothing to delete.
    pub async fn delete_assignment(
        &self,
        inst: &Instance,
        account: &AccountId,
        ps: &PermissionSetArn,
        principal: &str,
    ) -> Result<Option<String>, Error> {
        self.delete_assignment_of(inst, account, ps, Principal::User, principal)
            .await
    }

    /// Starts deleting a user's or group's assignment. `None` when there was nothing to delete.
    pub async fn delete_assignment_of(
        &self,
        inst: &Instance,
        account: &AccountId,
        ps: &PermissionSetArn,
        kind: Principal,
        principal: &str,
    ) -> Result<Option<String>, Error> {
        let result = self
            .admin
            .delete_account_assignment()
            .instance_arn(&inst.instance_arn)
            .target_id(account.as_str())
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(ps.as_str())
            .principal_type(match kind {
                Principal::User => PrincipalType::User,
                Principal::Group => PrincipalType::Group,
            })
            .principal_id(principal)
            .send()
            .await;
        match result {
            Ok(out) => request_id(out.account_assignment_deletion_status()).map(Some),
            Err(e) if code_of(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(from_sdk("SSO Admin DeleteAccountAssignment", e)),
        }
    }

    /// Polls a creation request until it SUCCEEDED (Ok) or FAILED (`AssignmentFailed`).
    pub async fn wait_created(&self, inst: &Instance, request_id: &str) -> Result<(), Error> {
        poll(|| async {
            let out = self
                .admin
                .describe_account_assignment_creation_status()
                .instance_arn(&inst.instance_arn)
                .account_assignment_creation_request_id(request_id)
                .send()
                .await
                .map_err(|e| from_sdk("SSO Admin DescribeAccountAssignmentCreationStatus", e))?;
            Ok(progress(out.account_assignment_creation_status()))
        })
        .await
    }

    /// Polls a deletion request until it SUCCEEDED (Ok) or FAILED (`AssignmentFailed`).
    pub async fn wait_deleted(&self, inst: &Instance, request_id: &str) -> Result<(), Error> {
        poll(|| async {
            let out = self
                .admin
                .describe_account_assignment_deletion_status()
                .instance_arn(&inst.instance_arn)
                .account_assignment_deletion_request_id(request_id)
                .send()
                .await
                .map_err(|e| from_sdk("SSO Admin DescribeAccountAssignmentDeletionStatus", e))?;
            Ok(progress(out.account_assignment_deletion_status()))
        })
        .await
    }
}

/// Who an assignment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Principal {
    User,
    Group,
}

impl Principal {
    pub fn as_str(self) -> &'static str {
        match self {
            Principal::User => "USER",
            Principal::Group => "GROUP",
        }
    }
}

/// One assignment of a permission set on an account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Assignment {
    pub kind: Principal,
    pub principal_id: String,
}

/// Status and failure reason of a provisioning request, for [`poll`].
fn progress(
    st: Option<&aws_sdk_ssoadmin::types::AccountAssignmentOperationStatus>,
) -> (Option<StatusValues>, Option<String>) {
    (
        st.and_then(|s| s.status().cloned()),
        st.and_then(|s| s.failure_reason().map(str::to_owned)),
    )
}

fn request_id(
    status: Option<&aws_sdk_ssoadmin::types::AccountAssignmentOperationStatus>,
) -> Result<String, Error> {
    status
        .and_then(|s| s.request_id())
        .map(str::to_owned)
        .ok_or_else(|| Error::Aws("Identity Center returned no provisioning request id".into()))
}

/// Polls with exponential backoff (0.25 s doubling to 4 s) until a terminal status or the
/// deadline. Throttled polls count as "still in progress".
async fn poll<F, Fut>(mut check: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(Option<StatusValues>, Option<String>), Error>>,
{
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        match check().await {
            Ok((Some(StatusValues::Succeeded), _)) => return Ok(()),
            Ok((Some(StatusValues::Failed), reason)) => {
                return Err(Error::AssignmentFailed(
                    reason.unwrap_or_else(|| "no reason given".into()),
                ));
            }
            Ok(_) => {}
            Err(Error::Throttled(_)) => {}
            Err(e) => return Err(e),
        }
        if started.elapsed() + delay > PROVISIONING_DEADLINE {
            return Err(Error::Transient(
                "provisioning still in progress after 120 s".into(),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(4));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_sdk_ssoadmin::Client;
    use aws_sdk_ssoadmin::operation::describe_account_assignment_creation_status::DescribeAccountAssignmentCreationStatusOutput as Out;
    use aws_sdk_ssoadmin::types::AccountAssignmentOperationStatus;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn status(s: StatusValues, reason: Option<&str>) -> Out {
        Out::builder()
            .account_assignment_creation_status(
                AccountAssignmentOperationStatus::builder()
                    .status(s)
                    .set_failure_reason(reason.map(str::to_owned))
                    .request_id("r-1")
                    .build(),
            )
            .build()
    }

    /// Identity Center with this (mocked) SSO Admin client; the Identity Store is never asked.
    pub(crate) fn sso(admin: Client) -> Sso {
        let store = aws_sdk_identitystore::Client::from_conf(
            aws_sdk_identitystore::Config::builder()
                .behavior_version(aws_sdk_identitystore::config::BehaviorVersion::latest())
                .region(aws_sdk_identitystore::config::Region::new("us-east-1"))
                .build(),
        );
        Sso::new(admin, store)
    }

    /// Identity Center with this (mocked) Identity Store client; SSO Admin is never asked.
    pub(crate) fn sso_of_store(store: aws_sdk_identitystore::Client) -> Sso {
        let admin = Client::from_conf(
            aws_sdk_ssoadmin::Config::builder()
                .behavior_version(aws_sdk_ssoadmin::config::BehaviorVersion::latest())
                .region(aws_sdk_ssoadmin::config::Region::new("us-east-1"))
                .build(),
        );
        Sso::new(admin, store)
    }

    pub(crate) fn instance() -> Instance {
        Instance {
            instance_arn: "arn:aws:sso:::instance/ssoins-1".into(),
            identity_store_id: "d-1".into(),
        }
    }

    /// Provisioning reported IN_PROGRESS (and a throttled poll) before SUCCEEDED: we keep
    /// polling, with backoff, until it is done.
    #[tokio::test(start_paused = true)]
    async fn polls_in_progress_until_succeeded() {
        let rule = mock!(Client::describe_account_assignment_creation_status)
            .sequence()
            .output(|| status(StatusValues::InProgress, None))
            .times(3)
            .http_status(
                400,
                Some(r#"{"__type":"ThrottlingException","message":"slow"}"#.into()),
            )
            .output(|| status(StatusValues::Succeeded, None))
            .build();
        let client = mock_client!(aws_sdk_ssoadmin, RuleMode::Sequential, [&rule], |c| c
            .retry_config(aws_sdk_ssoadmin::config::retry::RetryConfig::disabled()));
        assert!(sso(client).wait_created(&instance(), "r-1").await.is_ok());
        assert_eq!(rule.num_calls(), 5);
    }

    /// FAILED is an error the state machine sees by name, with Identity Center's reason.
    #[tokio::test(start_paused = true)]
    async fn failed_provisioning_is_assignment_failed() {
        let rule = mock!(Client::describe_account_assignment_creation_status)
            .sequence()
            .output(|| status(StatusValues::InProgress, None))
            .output(|| {
                status(
                    StatusValues::Failed,
                    Some("Received a 404 status error: the permission set is not provisioned"),
                )
            })
            .build();
        let client = mock_client!(aws_sdk_ssoadmin, RuleMode::Sequential, [&rule]);
        let e = sso(client)
            .wait_created(&instance(), "r-1")
            .await
            .unwrap_err();
        assert_eq!(e.name(), "AssignmentFailed");
        assert!(e.to_string().contains("not provisioned"), "{e}");
    }

    /// Provisioning that never finishes gives up after the deadline as a retryable error.
    #[tokio::test(start_paused = true)]
    async fn endless_in_progress_is_transient() {
        let rule = mock!(Client::describe_account_assignment_creation_status)
            .sequence()
            .output(|| status(StatusValues::InProgress, None))
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_ssoadmin, RuleMode::Sequential, [&rule]);
        let e = sso(client)
            .wait_created(&instance(), "r-1")
            .await
            .unwrap_err();
        assert_eq!(e.name(), "Transient");
        assert!(
            rule.num_calls() < 60,
            "backed off: {} polls in 120 s",
            rule.num_calls()
        );
    }

    fn provisioning(
        s: StatusValues,
        reason: Option<&str>,
    ) -> aws_sdk_ssoadmin::types::PermissionSetProvisioningStatus {
        aws_sdk_ssoadmin::types::PermissionSetProvisioningStatus::builder()
            .status(s)
            .set_failure_reason(reason.map(str::to_owned))
            .request_id("p-1")
            .build()
    }

    fn ps() -> PermissionSetArn {
        PermissionSetArn::parse("arn:aws:sso:::permissionSet/ssoins-1/ps-1").unwrap()
    }

    fn account() -> AccountId {
        AccountId::parse("123456789012").unwrap()
    }

    /// Provisioning the deny on old sessions: IN_PROGRESS is polled until SUCCEEDED.
    #[tokio::test(start_paused = true)]
    async fn provisioning_in_progress_is_polled_until_done() {
        use aws_sdk_ssoadmin::operation::describe_permission_set_provisioning_status::DescribePermissionSetProvisioningStatusOutput as Status;
        use aws_sdk_ssoadmin::operation::provision_permission_set::ProvisionPermissionSetOutput as Started;
        let start = mock!(Client::provision_permission_set)
            .match_requests(|r| {
                r.target_id() == Some("123456789012")
                    && r.target_type()
                        == Some(&aws_sdk_ssoadmin::types::ProvisionTargetType::AwsAccount)
            })
            .then_output(|| {
                Started::builder()
                    .permission_set_provisioning_status(provisioning(
                        StatusValues::InProgress,
                        None,
                    ))
                    .build()
            });
        let poll = mock!(Client::describe_permission_set_provisioning_status)
            .match_requests(|r| r.provision_permission_set_request_id() == Some("p-1"))
            .sequence()
            .output(|| {
                Status::builder()
                    .permission_set_provisioning_status(provisioning(
                        StatusValues::InProgress,
                        None,
                    ))
                    .build()
            })
            .times(2)
            .output(|| {
                Status::builder()
                    .permission_set_provisioning_status(provisioning(StatusValues::Succeeded, None))
                    .build()
            })
            .build();
        let client = mock_client!(aws_sdk_ssoadmin, RuleMode::MatchAny, [&start, &poll]);
        sso(client)
            .provision(&instance(), &ps(), &account())
            .await
            .unwrap();
        assert_eq!((start.num_calls(), poll.num_calls()), (1, 3));
    }

    /// A provisioning that fails is an error by name, with Identity Center's reason.
    #[tokio::test(start_paused = true)]
    async fn failed_provisioning_of_the_deny_is_an_error() {
        use aws_sdk_ssoadmin::operation::provision_permission_set::ProvisionPermissionSetOutput as Started;
        let start = mock!(Client::provision_permission_set).then_output(|| {
            Started::builder()
                .permission_set_provisioning_status(provisioning(
                    StatusValues::Failed,
                    Some("inline policy too large"),
                ))
                .build()
        });
        let client = mock_client!(aws_sdk_ssoadmin, RuleMode::MatchAny, [&start]);
        let e = sso(client)
            .provision(&instance(), &ps(), &account())
            .await
            .unwrap_err();
        assert_eq!(e.name(), "AssignmentFailed");
        assert!(e.to_string().contains("too large"), "{e}");
    }

    /// Lifting the last deny deletes the inline policy; one already gone is fine, other
    /// errors are not swallowed.
    #[tokio::test]
    async fn deleting_an_absent_inline_policy_is_fine() {
        let gone = mock!(Client::delete_inline_policy_from_permission_set)
            .sequence()
            .http_status(
                400,
                Some(
                    r#"{"__type":"ResourceNotFoundException","message":"no inline policy"}"#.into(),
                ),
            )
            .http_status(
                400,
                Some(r#"{"__type":"AccessDeniedException","message":"no"}"#.into()),
            )
            .build();
        let client = mock_client!(aws_sdk_ssoadmin, RuleMode::Sequential, [&gone], |c| c
            .retry_config(aws_sdk_ssoadmin::config::retry::RetryConfig::disabled()));
        let sso = sso(client);
        sso.set_inline_policy(&instance(), &ps(), None)
            .await
            .unwrap();
        let e = sso
            .set_inline_policy(&instance(), &ps(), None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("DeleteInlinePolicy"), "{e}");
    }
}
