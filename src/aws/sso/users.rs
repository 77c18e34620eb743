//! Identity Store: users by name or e-mail, their names and e-mail addresses, their group
//! memberships, and a group's members.

use aws_sdk_identitystore::types::{AlternateIdentifier, UniqueAttribute};
use aws_smithy_types::Document;

use super::{Instance, Sso};
use crate::error::{Error, code_of, from_sdk};

impl Sso {
    /// Identity Store user id of a user name (`GetUserId`, never a `ListUsers` scan).
    pub async fn user_id(&self, inst: &Instance, user_name: &str) -> Result<String, Error> {
        self.get_user_id(inst, "userName", user_name).await
    }

    async fn get_user_id(&self, inst: &Instance, path: &str, value: &str) -> Result<String, Error> {
        let out = self
            .store
            .get_user_id()
            .identity_store_id(&inst.identity_store_id)
            .alternate_identifier(unique_attribute(path, value)?)
            .send()
            .await
            .map_err(|e| from_sdk("Identity Store GetUserId", e))?;
        Ok(out.user_id)
    }

    /// Identity Store user id of the user with this e-mail (`GetUserId` on `emails.value`).
    pub async fn user_id_by_email(&self, inst: &Instance, email: &str) -> Result<String, Error> {
        self.get_user_id(inst, "emails.value", email).await
    }

    async fn describe_user(
        &self,
        inst: &Instance,
        user_id: &str,
    ) -> Result<aws_sdk_identitystore::operation::describe_user::DescribeUserOutput, Error> {
        self.store
            .describe_user()
            .identity_store_id(&inst.identity_store_id)
            .user_id(user_id)
            .send()
            .await
            .map_err(|e| from_sdk("Identity Store DescribeUser", e))
    }

    /// The user name of an Identity Store user (what their CloudTrail sessions are named).
    pub async fn user_name(&self, inst: &Instance, user_id: &str) -> Result<String, Error> {
        self.describe_user(inst, user_id)
            .await?
            .user_name
            .ok_or_else(|| Error::NotFound(format!("user name of {user_id}")))
    }

    /// The user's primary e-mail address (or the first one), if the identity store has one.
    pub async fn user_email(
        &self,
        inst: &Instance,
        user_id: &str,
    ) -> Result<Option<String>, Error> {
        Ok(primary_email(&self.describe_user(inst, user_id).await?))
    }

    /// The user name and primary e-mail address of an Identity Store user, in one call.
    pub async fn user_name_and_email(
        &self,
        inst: &Instance,
        user_id: &str,
    ) -> Result<(String, Option<String>), Error> {
        let out = self.describe_user(inst, user_id).await?;
        let email = primary_email(&out);
        let name = out
            .user_name
            .ok_or_else(|| Error::NotFound(format!("user name of {user_id}")))?;
        Ok((name, email))
    }

    /// The Identity Store group id of a group's display name (`None`: no such group).
    async fn group_id(&self, inst: &Instance, group: &str) -> Result<Option<String>, Error> {
        let found = self
            .store
            .get_group_id()
            .identity_store_id(&inst.identity_store_id)
            .alternate_identifier(unique_attribute("displayName", group)?)
            .send()
            .await;
        match found {
            Ok(out) => Ok(Some(out.group_id)),
            Err(e) if code_of(&e) == Some("ResourceNotFoundException") => {
                tracing::warn!(group, "a group the policy names does not exist");
                Ok(None)
            }
            Err(e) => Err(from_sdk("Identity Store GetGroupId", e)),
        }
    }

    /// The user ids of a group's direct members (by display name; none if the group does not
    /// exist), at most `limit` of them (`ListGroupMemberships`, page by page).
    pub async fn group_members(
        &self,
        inst: &Instance,
        group: &str,
        limit: usize,
    ) -> Result<Vec<String>, Error> {
        let Some(group_id) = self.group_id(inst, group).await? else {
            return Ok(Vec::new());
        };
        let mut members = Vec::new();
        let mut next = None;
        loop {
            let out = self
                .store
                .list_group_memberships()
                .identity_store_id(&inst.identity_store_id)
                .group_id(&group_id)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| from_sdk("Identity Store ListGroupMemberships", e))?;
            for m in out.group_memberships() {
                if let Some(aws_sdk_identitystore::types::MemberId::UserId(id)) = m.member_id() {
                    members.push(id.clone());
                    if members.len() >= limit {
                        return Ok(members);
                    }
                }
            }
            next = out.next_token;
            if next.is_none() {
                return Ok(members);
            }
        }
    }

    /// Which of `groups` (display names) the user is a member of.
    pub async fn member_of(
        &self,
        inst: &Instance,
        user_id: &str,
        groups: &std::collections::BTreeSet<&str>,
    ) -> Result<std::collections::BTreeSet<String>, Error> {
        let mut ids = Vec::new();
        for g in groups {
            if let Some(id) = self.group_id(inst, g).await? {
                ids.push((id, (*g).to_owned()));
            }
        }
        let mut member = std::collections::BTreeSet::new();
        // IsMemberInGroups takes at most 100 groups a call.
        for chunk in ids.chunks(100) {
            let out = self
                .store
                .is_member_in_groups()
                .identity_store_id(&inst.identity_store_id)
                .member_id(aws_sdk_identitystore::types::MemberId::UserId(
                    user_id.to_owned(),
                ))
                .set_group_ids(Some(chunk.iter().map(|(id, _)| id.clone()).collect()))
                .send()
                .await
                .map_err(|e| from_sdk("Identity Store IsMemberInGroups", e))?;
            for r in out.results() {
                if r.membership_exists()
                    && let Some((_, name)) = chunk
                        .iter()
                        .find(|(id, _)| Some(id.as_str()) == r.group_id())
                {
                    member.insert(name.clone());
                }
            }
        }
        Ok(member)
    }
}

/// A described user's primary e-mail address (or the first one).
fn primary_email(
    user: &aws_sdk_identitystore::operation::describe_user::DescribeUserOutput,
) -> Option<String> {
    let emails = user.emails();
    emails
        .iter()
        .find(|e| e.primary())
        .or(emails.first())
        .and_then(|e| e.value().map(str::to_owned))
}

/// A user or group found by a unique attribute (`userName`, `emails.value`, `displayName`).
fn unique_attribute(path: &str, value: &str) -> Result<AlternateIdentifier, Error> {
    Ok(AlternateIdentifier::UniqueAttribute(
        UniqueAttribute::builder()
            .attribute_path(path)
            .attribute_value(Document::String(value.to_owned()))
            .build()
            .map_err(|e| Error::InvalidInput(e.to_string()))?,
    ))
}
