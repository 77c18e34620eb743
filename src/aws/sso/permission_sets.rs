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

    /// Every permission set of the instance: (ARN, name), by name.
    pub async fn all(&self) -> Result<std::sync::Arc<Vec<(String, String)>>, Error> {
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
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("SSO Admin ListPermissionSets", e))?;
            for arn in page.permission_sets() {
                if let Ok(parsed) = PermissionSetArn::parse(arn) {
                    out.push((arn.clone(), self.name_of(&parsed).await?));
                }
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        let out = std::sync::Arc::new(out);
        self.all.insert((), out.clone(), std::time::Instant::now());
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
