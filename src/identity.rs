//! Who is clicking: Slack user → Identity Center user (and groups).
//!
//! An explicit mapping in the policy wins. Otherwise Slack's `users.info` gives the user's
//! e-mail, and Identity Store `GetUserId` on `emails.value` finds the Identity Center user (never a
//! `ListUsers` scan). Bots, deleted, restricted (guest) and external users are refused.
//! Answers are cached for a bounded time (`IDENTITY_CACHE_SECONDS`, 5 minutes by default), so
//! a user added to a deny group or removed from an allowing one is refused within that time;
//! refusals are not cached, so a fixed account works at once.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::aws::sso::{Instance, Sso};
use crate::cache::TtlCache;
use crate::error::Error;
use crate::policy::Policy;
use crate::slack::api::{SlackApi, SlackError, SlackUser};

/// An Identity Center user a Slack user maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub sso_user_name: String,
    /// The Identity Store user id, when it had to be looked up anyway.
    pub principal_id: Option<String>,
    /// Groups (display names) the user is in, among those the policy mentions.
    pub groups: BTreeSet<String>,
    /// Their e-mail addresses, lower-cased (Slack profile, Identity Center user): who they
    /// are to an on-call service. Looked up only when the policy gates a rule on one.
    pub emails: BTreeSet<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// This Slack user may not break glass at all; the reason is shown to them.
    #[error("{0}")]
    Refused(String),
    /// A lookup failed; try again.
    #[error("could not look you up: {0}")]
    Unavailable(String),
}

impl From<Error> for IdentityError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(_) => IdentityError::Refused(
                "no Identity Center user has your Slack e-mail address".into(),
            ),
            other => IdentityError::Unavailable(other.to_string()),
        }
    }
}

impl From<SlackError> for IdentityError {
    fn from(e: SlackError) -> Self {
        match e {
            SlackError::Api { error, .. } if error == "user_not_found" => {
                IdentityError::Refused("Slack does not know your user".into())
            }
            other => IdentityError::Unavailable(other.to_string()),
        }
    }
}

/// Why a Slack user may never break glass, if they may not.
pub fn refusal(user: &SlackUser, our_team: Option<&str>) -> Option<&'static str> {
    if user.is_bot {
        Some("bots cannot break glass")
    } else if user.deleted {
        Some("deactivated users cannot break glass")
    } else if user.is_restricted || user.is_ultra_restricted {
        Some("guest accounts cannot break glass")
    } else if user.is_stranger
        || matches!((our_team, user.team_id.as_deref()), (Some(ours), Some(theirs)) if ours != theirs)
    {
        Some("users from other workspaces cannot break glass")
    } else {
        None
    }
}

pub struct Directory {
    pub slack: SlackApi,
    pub sso: Sso,
    pub instance: Instance,
    pub team_id: Option<String>,
    cache: TtlCache<String, Person>,
}

impl Directory {
    pub fn new(
        slack: SlackApi,
        sso: Sso,
        instance: Instance,
        team_id: Option<String>,
        cache_for: std::time::Duration,
    ) -> Self {
        Self {
            slack,
            sso,
            instance,
            team_id,
            cache: TtlCache::new(cache_for),
        }
    }

    pub async fn resolve(
        &self,
        policy: &Policy,
        slack_user: &str,
    ) -> Result<Person, IdentityError> {
        self.resolve_with(policy, slack_user, false).await
    }

    /// [`Directory::resolve`], with the person's e-mail addresses when `emails` (a request
    /// gated on who is on call needs them; for a user mapped by name that is one more
    /// Identity Center call, made only then).
    pub async fn resolve_with(
        &self,
        policy: &Policy,
        slack_user: &str,
        emails: bool,
    ) -> Result<Person, IdentityError> {
        let cached = self.cache.get(&slack_user.to_owned(), Instant::now());
        if let Some(p) = &cached
            && !(emails && p.emails.is_empty())
        {
            return Ok(p.clone());
        }
        let mut person = match cached {
            Some(p) => p,
            None => self.look_up(policy, slack_user).await?,
        };
        if emails && person.emails.is_empty() {
            // Mapped by name: the Identity Center user's own e-mail.
            let id = self.principal_of(&person).await?;
            if let Some(e) = self.sso.user_email(&self.instance, &id).await? {
                person.emails.insert(e.to_ascii_lowercase());
            }
            person.principal_id = Some(id);
        }
        self.cache
            .insert(slack_user.to_owned(), person.clone(), Instant::now());
        Ok(person)
    }

    /// The person's Identity Store user id (looked up by user name when not yet known).
    async fn principal_of(&self, person: &Person) -> Result<String, IdentityError> {
        Ok(match &person.principal_id {
            Some(id) => id.clone(),
            None => {
                self.sso
                    .user_id(&self.instance, &person.sso_user_name)
                    .await?
            }
        })
    }

    /// Who a Slack user is, asked afresh (the mapping or Slack and Identity Center), with
    /// their groups among those the policy mentions.
    async fn look_up(&self, policy: &Policy, slack_user: &str) -> Result<Person, IdentityError> {
        let mut person = match policy.users.get(slack_user) {
            Some(name) => Person {
                sso_user_name: name.clone(),
                principal_id: None,
                groups: BTreeSet::new(),
                emails: BTreeSet::new(),
            },
            None => {
                let user = self.slack.user_info(slack_user).await?;
                if let Some(why) = refusal(&user, self.team_id.as_deref()) {
                    return Err(IdentityError::Refused(why.into()));
                }
                let email = user
                    .profile
                    .email
                    .filter(|e| !e.is_empty())
                    .ok_or_else(|| {
                        IdentityError::Refused("your Slack profile has no e-mail address".into())
                    })?;
                let id = self.sso.user_id_by_email(&self.instance, &email).await?;
                let name = self.sso.user_name(&self.instance, &id).await?;
                Person {
                    sso_user_name: name,
                    principal_id: Some(id),
                    groups: BTreeSet::new(),
                    emails: BTreeSet::from([email.to_ascii_lowercase()]),
                }
            }
        };
        let wanted = policy.groups();
        if !wanted.is_empty() {
            let id = self.principal_of(&person).await?;
            person.groups = self.sso.member_of(&self.instance, &id, &wanted).await?;
            person.principal_id = Some(id);
        }
        Ok(person)
    }
}

/// The Slack users of the members of `groups` (Identity Center display names) as
/// `(Slack id, Identity Center user name)`: the policy's `[users]` mapping where it names the
/// member, else the Slack user with the member's e-mail address. At most `limit` members are
/// looked at. Members Slack does not know, and Slack users who may never break glass (see
/// [`refusal`]), are left out. Best effort: a failed look-up is logged and skipped.
pub async fn slack_users_in_groups(
    slack: &SlackApi,
    sso: &Sso,
    instance: &Instance,
    policy: &Policy,
    groups: &BTreeSet<String>,
    team_id: Option<&str>,
    limit: usize,
) -> Vec<(String, String)> {
    let mut members = Vec::new();
    for group in groups {
        match sso.group_members(instance, group, limit).await {
            Ok(ids) => members.extend(ids),
            Err(e) => tracing::warn!(error = %e, group, "could not list a group's members"),
        }
    }
    members.sort();
    members.dedup();
    members.truncate(limit);
    let found = futures_util::future::join_all(members.iter().map(|id| async move {
        let (name, email) = match sso.user_name_and_email(instance, id).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, user_id = id.as_str(), "could not describe a member");
                return Vec::new();
            }
        };
        let mapped: Vec<(String, String)> = policy
            .users
            .iter()
            .filter(|(_, n)| **n == name)
            .map(|(slack_id, _)| (slack_id.clone(), name.clone()))
            .collect();
        if !mapped.is_empty() {
            return mapped;
        }
        let Some(email) = email else {
            return Vec::new();
        };
        match slack.user_by_email(&email).await {
            Ok(Some(user)) if refusal(&user, team_id).is_none() => vec![(user.id, name)],
            Ok(_) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, user_id = id.as_str(), "could not find a member in Slack");
                Vec::new()
            }
        }
    }))
    .await;
    found.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An approver group's members are found in Slack through the policy's `[users]` mapping
    /// first (no Slack call), and a member with no e-mail to look up is left out.
    #[tokio::test]
    async fn group_members_mapped_by_the_policy_need_no_slack_lookup() {
        use aws_sdk_identitystore::Client;
        use aws_sdk_identitystore::operation::describe_user::DescribeUserOutput;
        use aws_sdk_identitystore::operation::get_group_id::GetGroupIdOutput;
        use aws_sdk_identitystore::operation::list_group_memberships::ListGroupMembershipsOutput;
        use aws_sdk_identitystore::types::{GroupMembership, MemberId};
        use aws_smithy_mocks::{RuleMode, mock, mock_client};

        let group = mock!(Client::get_group_id).then_output(|| {
            GetGroupIdOutput::builder()
                .group_id("g-leads")
                .group_arn("arn:aws:identitystore::123456789012:group/g-leads")
                .identity_store_id("d-1")
                .build()
                .unwrap()
        });
        let members = mock!(Client::list_group_memberships).then_output(|| {
            let member = |id: &str| {
                GroupMembership::builder()
                    .identity_store_id("d-1")
                    .membership_id(format!("m-{id}"))
                    .membership_arn(format!(
                        "arn:aws:identitystore::123456789012:membership/m-{id}"
                    ))
                    .member_id(MemberId::UserId(id.into()))
                    .build()
                    .unwrap()
            };
            ListGroupMembershipsOutput::builder()
                .group_memberships(member("u-lead"))
                .group_memberships(member("u-nomail"))
                .build()
                .unwrap()
        });
        let user = |id: &'static str, name: &'static str| {
            mock!(Client::describe_user)
                .match_requests(move |r| r.user_id() == Some(id))
                .then_output(move || {
                    DescribeUserOutput::builder()
                        .identity_store_id("d-1")
                        .user_id(id)
                        .user_arn(format!("arn:aws:identitystore::123456789012:user/{id}"))
                        .revision("1")
                        .user_name(name)
                        .build()
                        .unwrap()
                })
        };
        let (lead, nomail) = (user("u-lead", "lead"), user("u-nomail", "nomail"));
        let store = mock_client!(
            aws_sdk_identitystore,
            RuleMode::MatchAny,
            [&group, &members, &lead, &nomail]
        );
        let policy = Policy::parse(
            "version = 1\n[users]\nU0LEAD = \"lead\"\n[[rule]]\nname = \"r\"\neffect = \"allow\"\nslack_users = [\"*\"]\naccounts = [\"*\"]\npermission_sets = [\"*\"]\ndefault_duration = \"1h\"\nmax_duration = \"1h\"\n",
        )
        .unwrap();
        // Any call to Slack would fail: nothing listens there.
        let slack = SlackApi::new("http://127.0.0.1:9", Some("xoxb-test".into()));
        let found = slack_users_in_groups(
            &slack,
            &crate::aws::sso::tests::sso_of_store(store),
            &crate::aws::sso::tests::instance(),
            &policy,
            &BTreeSet::from(["Leads".to_owned()]),
            Some("T1"),
            25,
        )
        .await;
        assert_eq!(found, [("U0LEAD".to_owned(), "lead".to_owned())]);
        assert_eq!(lead.num_calls() + nomail.num_calls(), 2);
    }

    fn user(f: impl FnOnce(&mut SlackUser)) -> SlackUser {
        let mut u = SlackUser {
            id: "U1".into(),
            team_id: Some("T1".into()),
            is_bot: false,
            deleted: false,
            is_restricted: false,
            is_ultra_restricted: false,
            is_stranger: false,
            profile: Default::default(),
        };
        f(&mut u);
        u
    }

    #[test]
    fn refuses_bots_deleted_guests_and_strangers() {
        assert_eq!(refusal(&user(|_| {}), Some("T1")), None);
        assert!(
            refusal(&user(|u| u.is_bot = true), Some("T1"))
                .unwrap()
                .contains("bots")
        );
        assert!(
            refusal(&user(|u| u.deleted = true), Some("T1"))
                .unwrap()
                .contains("deactivated")
        );
        assert!(
            refusal(&user(|u| u.is_restricted = true), Some("T1"))
                .unwrap()
                .contains("guest")
        );
        assert!(
            refusal(&user(|u| u.is_ultra_restricted = true), Some("T1"))
                .unwrap()
                .contains("guest")
        );
        assert!(
            refusal(&user(|u| u.team_id = Some("T2".into())), Some("T1"))
                .unwrap()
                .contains("other workspaces")
        );
        assert!(
            refusal(&user(|u| u.is_stranger = true), None)
                .unwrap()
                .contains("other workspaces")
        );
    }
}
