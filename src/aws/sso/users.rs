//! Identity Store: users by name or e-mail, their names and e-mail addresses, and their
//! group memberships.

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
            .alternate_identifier(AlternateIdentifier::UniqueAttribute(
                UniqueAttribute::builder()
                    .attribute_path(path)
                    .attribute_value(Document::String(value.to_owned()))
                    .build()
                    .map_err(|e| Error::InvalidInput(e.to_string()))?,
            ))
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
        let out = self.describe_user(inst, user_id).await?;
        let emails = out.emails();
        Ok(emails
            .iter()
            .find(|e| e.primary())
            .or(emails.first())
            .and_then(|e| e.value().map(str::to_owned)))
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
            let found = self
                .store
                .get_group_id()
                .identity_store_id(&inst.identity_store_id)
                .alternate_identifier(AlternateIdentifier::UniqueAttribute(
                    UniqueAttribute::builder()
                        .attribute_path("displayName")
                        .attribute_value(Document::String((*g).to_owned()))
                        .build()
                        .map_err(|e| Error::InvalidInput(e.to_string()))?,
                ))
                .send()
                .await;
            match found {
                Ok(out) => ids.push((out.group_id, (*g).to_owned())),
                Err(e) if code_of(&e) == Some("ResourceNotFoundException") => {
                    tracing::warn!(group = *g, "a group the policy names does not exist");
                }
                Err(e) => return Err(from_sdk("Identity Store GetGroupId", e)),
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
