//! Permission sets: their names and session durations, the inline policy (for the deny on
//! old sessions) and provisioning it to accounts.

use std::time::Duration;

use aws_sdk_ssoadmin::types::StatusValues;

use super::{Instance, Sso, poll};
use crate::domain::{AccountId, PermissionSetArn};
use crate::error::{Error, code_of, from_sdk};

impl Sso {
    /// How long the permission set's sessions last (`SessionDuration`, 1 h when unset).
    pub async fn session_duration(
        &self,
        inst: &Instance,
        ps: &PermissionSetArn,
    ) -> Result<Duration, Error> {
        Ok(self
            .describe_permission_set(inst, ps)
            .await?
            .and_then(|p| p.session_duration)
            .map_or(Duration::from_secs(3600), |d| {
                crate::sessions::session_duration(&d)
            }))
    }

    async fn describe_permission_set(
        &self,
        inst: &Instance,
        ps: &PermissionSetArn,
    ) -> Result<Option<aws_sdk_ssoadmin::types::PermissionSet>, Error> {
        let out = self
            .admin
            .describe_permission_set()
            .instance_arn(&inst.instance_arn)
            .permission_set_arn(ps.as_str())
            .send()
            .await
            .map_err(|e| from_sdk("SSO Admin DescribePermissionSet", e))?;
        Ok(out.permission_set)
    }

    /// The permission set's inline policy; `None` when it has none.
    pub async fn inline_policy(
        &self,
        inst: &Instance,
        ps: &PermissionSetArn,
    ) -> Result<Option<String>, Error> {
        let out = self
            .admin
            .get_inline_policy_for_permission_set()
            .instance_arn(&inst.instance_arn)
            .permission_set_arn(ps.as_str())
            .send()
            .await
            .map_err(|e| from_sdk("SSO Admin GetInlinePolicyForPermissionSet", e))?;
        Ok(out.inline_policy.filter(|p| !p.trim().is_empty()))
    }

    /// Replaces the permission set's inline policy (`None` deletes it).
    pub async fn set_inline_policy(
        &self,
        inst: &Instance,
        ps: &PermissionSetArn,
        policy: Option<&str>,
    ) -> Result<(), Error> {
        match policy {
            Some(p) => self
                .admin
                .put_inline_policy_to_permission_set()
                .instance_arn(&inst.instance_arn)
                .permission_set_arn(ps.as_str())
                .inline_policy(p)
                .send()
                .await
                .map(drop)
                .map_err(|e| from_sdk("SSO Admin PutInlinePolicyToPermissionSet", e)),
            None => match self
                .admin
                .delete_inline_policy_from_permission_set()
                .instance_arn(&inst.instance_arn)
                .permission_set_arn(ps.as_str())
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if code_of(&e) == Some("ResourceNotFoundException") => Ok(()),
                Err(e) => Err(from_sdk("SSO Admin DeleteInlinePolicyFromPermissionSet", e)),
            },
        }
    }

    /// Provisions the permission set's current version to `account` and waits until done.
    pub async fn provision(
        &self,
        inst: &Instance,
        ps: &PermissionSetArn,
        account: &AccountId,
    ) -> Result<(), Error> {
        let out = self
            .admin
            .provision_permission_set()
            .instance_arn(&inst.instance_arn)
            .permission_set_arn(ps.as_str())
            .target_type(aws_sdk_ssoadmin::types::ProvisionTargetType::AwsAccount)
            .target_id(account.as_str())
            .send()
            .await
            .map_err(|e| from_sdk("SSO Admin ProvisionPermissionSet", e))?;
        let status = out.permission_set_provisioning_status();
        match status.and_then(|s| s.status()) {
            Some(StatusValues::Succeeded) => return Ok(()),
            Some(StatusValues::Failed) => {
                return Err(Error::AssignmentFailed(
                    status
                        .and_then(|s| s.failure_reason())
                        .unwrap_or("provisioning failed")
                        .to_owned(),
                ));
            }
            _ => {}
        }
        let request_id = status
            .and_then(|s| s.request_id())
            .ok_or_else(|| {
                Error::Aws("Identity Center returned no provisioning request id".into())
            })?
            .to_owned();
        poll(|| async {
            let out = self
                .admin
                .describe_permission_set_provisioning_status()
                .instance_arn(&inst.instance_arn)
                .provision_permission_set_request_id(&request_id)
                .send()
                .await
                .map_err(|e| from_sdk("SSO Admin DescribePermissionSetProvisioningStatus", e))?;
            let st = out.permission_set_provisioning_status();
            Ok((
                st.and_then(|s| s.status().cloned()),
                st.and_then(|s| s.failure_reason().map(str::to_owned)),
            ))
        })
        .await
    }

    /// The permission set's name (the `<name>` in `AWSReservedSSO_<name>_<suffix>` roles).
    pub async fn permission_set_name(
        &self,
        inst: &Instance,
        ps: &PermissionSetArn,
    ) -> Result<String, Error> {
        self.describe_permission_set(inst, ps)
            .await?
            .and_then(|p| p.name)
            .ok_or_else(|| Error::NotFound(format!("name of permission set {ps}")))
    }
}

/// How many `DescribePermissionSet` calls [`PermissionSetNames::all`] makes at a time.
const NAMES_AT_ONCE: usize = 8;

/// Permission set names ↔ ARNs, looked up once per container; the whole list (for the
/// modal's type-ahead where a rule allows every permission set) for five minutes.
pub struct PermissionSetNames {
    sso: Sso,
    instance: Instance,
    by_arn: std::sync::Mutex<std::collections::HashMap<String, String>>,
    all: crate::cache::TtlCache<(), std::sync::Arc<Vec<(String, String)>>>,
}

impl PermissionSetNames {
    pub fn new(sso: Sso, instance: Instance) -> Self {
        Self {
            sso,
            instance,
            by_arn: Default::default(),
            all: crate::cache::TtlCache::new(std::time::Duration::from_secs(300)),
        }
    }

    /// Every permission set of the instance: (ARN, name), by name. Names are looked up a few
    /// at a time. One that cannot be named just now is left out of this answer, which is then
    /// not kept, so the next asks again; only when none can be named is it an error.
    pub async fn all(&self) -> Result<std::sync::Arc<Vec<(String, String)>>, Error> {
        use futures_util::StreamExt;
        if let Some(all) = self.all.get(&(), std::time::Instant::now()) {
            return Ok(all);
        }
        let mut pages = self
            .sso
            .admin
            .list_permission_sets()
            .instance_arn(&self.instance.instance_arn)
            .into_paginator()
            .send();
        let mut arns = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("SSO Admin ListPermissionSets", e))?;
            arns.extend(
                page.permission_sets()
                    .iter()
                    .filter_map(|a| PermissionSetArn::parse(a).ok()),
            );
        }
        let named: Vec<_> = futures_util::stream::iter(
            arns.iter()
                .map(|arn| async move { (arn.as_str().to_owned(), self.name_of(arn).await) }),
        )
        .buffered(NAMES_AT_ONCE)
        .collect()
        .await;
        let (mut out, mut failed) = (Vec::new(), None);
        for (arn, name) in named {
            match name {
                Ok(name) => out.push((arn, name)),
                Err(e) => {
                    tracing::warn!(error = %e, permission_set = arn.as_str(), "could not name a permission set");
                    failed.get_or_insert(e);
                }
            }
        }
        let complete = failed.is_none();
        if let Some(e) = failed
            && out.is_empty()
        {
            return Err(e);
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        let out = std::sync::Arc::new(out);
        if complete {
            self.all.insert((), out.clone(), std::time::Instant::now());
        }
        Ok(out)
    }

    pub async fn name_of(&self, ps: &PermissionSetArn) -> Result<String, Error> {
        if let Some(n) = self.by_arn.lock().expect("cache lock").get(ps.as_str()) {
            return Ok(n.clone());
        }
        let name = self.sso.permission_set_name(&self.instance, ps).await?;
        self.by_arn
            .lock()
            .expect("cache lock")
            .insert(ps.as_str().to_owned(), name.clone());
        Ok(name)
    }

    /// The ARN of the permission set with this name (lists the instance's permission sets).
    pub async fn arn_of(&self, name: &str) -> Result<PermissionSetArn, Error> {
        let known = self
            .by_arn
            .lock()
            .expect("cache lock")
            .iter()
            .find_map(|(arn, n)| (n == name).then(|| arn.clone()));
        let found = match known {
            Some(arn) => Some(arn),
            None => self
                .all()
                .await?
                .iter()
                .find_map(|(arn, n)| (n == name).then(|| arn.clone())),
        };
        if let Some(arn) = found {
            return PermissionSetArn::parse(&arn).map_err(|e| Error::InvalidInput(e.to_string()));
        }
        Err(Error::NotFound(format!("permission set named {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ssoadmin::Client;
    use aws_sdk_ssoadmin::operation::describe_permission_set::DescribePermissionSetOutput;
    use aws_sdk_ssoadmin::operation::list_permission_sets::ListPermissionSetsOutput;
    use aws_sdk_ssoadmin::types::PermissionSet;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    const ARNS: [&str; 3] = [
        "arn:aws:sso:::permissionSet/ssoins-1/ps-a",
        "arn:aws:sso:::permissionSet/ssoins-1/ps-b",
        "arn:aws:sso:::permissionSet/ssoins-1/ps-c",
    ];

    fn names(admin: Client) -> PermissionSetNames {
        use crate::aws::sso::tests::{instance, sso};
        PermissionSetNames::new(sso(admin), instance())
    }

    /// One permission set Identity Center cannot name just now leaves the others offered,
    /// and the list is asked for again next time (not kept without it); once every one is
    /// named, the list is kept.
    #[tokio::test]
    async fn a_permission_set_that_cannot_be_named_leaves_the_others() {
        let list = mock!(Client::list_permission_sets).then_output(|| {
            ListPermissionSetsOutput::builder()
                .set_permission_sets(Some(ARNS.map(str::to_owned).to_vec()))
                .build()
        });
        let describe = |arn: &'static str, name: &'static str| {
            mock!(Client::describe_permission_set)
                .match_requests(move |r| r.permission_set_arn() == Some(arn))
                .then_output(move || {
                    DescribePermissionSetOutput::builder()
                        .permission_set(PermissionSet::builder().name(name).build())
                        .build()
                })
        };
        let (a, c) = (describe(ARNS[0], "Zeta"), describe(ARNS[2], "Alpha"));
        let b_fails = mock!(Client::describe_permission_set)
            .match_requests(|r| r.permission_set_arn() == Some(ARNS[1]))
            .sequence()
            .http_status(500, None)
            .times(2)
            .output(|| {
                DescribePermissionSetOutput::builder()
                    .permission_set(PermissionSet::builder().name("Beta").build())
                    .build()
            })
            .build();
        let client = mock_client!(
            aws_sdk_ssoadmin,
            RuleMode::MatchAny,
            [&list, &a, &c, &b_fails],
            |c| c.retry_config(aws_sdk_ssoadmin::config::retry::RetryConfig::disabled())
        );
        let names = names(client);
        let first = names.all().await.unwrap();
        assert_eq!(
            *first,
            [
                (ARNS[2].to_owned(), "Alpha".to_owned()),
                (ARNS[0].to_owned(), "Zeta".to_owned())
            ]
        );
        let second = names.all().await.unwrap();
        assert_eq!(second.len(), 2, "b still fails");
        assert_eq!(list.num_calls(), 2, "an incomplete list is not kept");
        let third = names.all().await.unwrap();
        assert_eq!(
            third.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(),
            ["Alpha", "Beta", "Zeta"]
        );
        names.all().await.unwrap();
        assert_eq!(list.num_calls(), 3, "a complete list is kept");
    }

    /// When no permission set can be named, the caller hears why.
    #[tokio::test]
    async fn none_named_is_an_error() {
        let list = mock!(Client::list_permission_sets).then_output(|| {
            ListPermissionSetsOutput::builder()
                .permission_sets(ARNS[0])
                .build()
        });
        let fails = mock!(Client::describe_permission_set)
            .sequence()
            .http_status(500, None)
            .build();
        let client = mock_client!(aws_sdk_ssoadmin, RuleMode::MatchAny, [&list, &fails], |c| c
            .retry_config(aws_sdk_ssoadmin::config::retry::RetryConfig::disabled()));
        assert!(names(client).all().await.is_err());
    }
}
