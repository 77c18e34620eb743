//! The modal's type-ahead (`block_suggestion`): the accounts and permission sets this user
//! may pick, filtered by what they typed, at most 100 (Slack's limit).
//!
//! Accounts are the ones the policy names, plus, where a rule allows every account, the
//! organization's (AWS Organizations, cached; without it, the policy's `[accounts]`).
//! Friendly names from the policy win over the organization's. Permission sets are those the
//! rules name on the chosen account, plus every one of the instance where a rule says `*`.
//! Offering is a convenience: the submission is decided from scratch, so a crafted value
//! gains nothing.

use std::collections::BTreeMap;

use super::{Reply, Webhook};
use crate::aws::organizations::Known;
use crate::domain::{AccountId, PermissionSetArn};
use crate::identity::IdentityError;
use crate::policy::{Choices, Subject};
use crate::slack::modal::suggestions;
use crate::slack::payload::{Picker, Suggestion};

/// The longest a keystroke waits for the organization's account list (Slack waits 3 s for
/// the whole answer).
pub const ORGANIZATION_DEADLINE: std::time::Duration = std::time::Duration::from_millis(1500);

impl Webhook {
    /// Answers one keystroke of a picker: `{"options": [...]}` (none when nothing matches
    /// or the user may pick nothing).
    pub(super) async fn suggest(&self, s: Suggestion) -> Reply {
        let none = || Reply::json(suggestions(Vec::new(), ""));
        if !self.policy.may_cover(&s.origin.user_id) {
            return none();
        }
        let person = match self
            .directory
            .resolve(&self.policy, &s.origin.user_id)
            .await
        {
            Ok(p) => p,
            Err(IdentityError::Refused(_)) => return none(),
            Err(IdentityError::Unavailable(why)) => {
                tracing::error!(error = %why, "identity lookup failed");
                return none();
            }
        };
        let choices = self.policy.choices(&Subject {
            slack_user: &s.origin.user_id,
            sso_groups: &person.groups,
        });
        if choices.is_empty() {
            return none();
        }
        let candidates = match s.picker {
            Picker::Account => self.accounts(&choices).await,
            Picker::PermissionSet => {
                let account = s.account.as_deref().and_then(|a| AccountId::parse(a).ok());
                self.permission_sets(&choices, account.as_ref()).await
            }
        };
        Reply::json(suggestions(candidates, &s.typed))
    }

    /// (value, label) of every account the user may pick.
    async fn accounts(&self, choices: &Choices<'_>) -> Vec<(String, String)> {
        let label = |id: &AccountId, fallback: Option<&str>| match self
            .policy
            .account_name(id)
            .or(fallback)
            .filter(|n| !n.is_empty())
        {
            Some(name) => format!("{name} ({id})"),
            None => id.to_string(),
        };
        let mut out: BTreeMap<AccountId, String> = choices
            .named_accounts()
            .into_iter()
            .map(|a| {
                let l = label(&a, None);
                (a, l)
            })
            .collect();
        if choices.any_account() {
            let org = match self
                .organizations
                .accounts_within(ORGANIZATION_DEADLINE)
                .await
            {
                Ok(Known::Accounts(org)) => Some(org),
                Ok(Known::Unavailable) => None,
                Ok(Known::Loading) => {
                    tracing::info!(
                        "the organization's accounts are still being read: offering the policy's meanwhile"
                    );
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not list the organization's accounts");
                    None
                }
            };
            match org {
                Some(org) => {
                    for a in org.iter().filter(|a| choices.offers_account(&a.id)) {
                        out.entry(a.id.clone())
                            .or_insert_with(|| label(&a.id, Some(&a.name)));
                    }
                }
                None => {
                    for a in self
                        .policy
                        .accounts
                        .keys()
                        .filter(|a| choices.offers_account(a))
                    {
                        out.entry(a.clone()).or_insert_with(|| label(a, None));
                    }
                }
            }
        }
        out.into_iter().map(|(a, l)| (a.to_string(), l)).collect()
    }

    /// (value, label) of every permission set the user may pick on `account` (any account
    /// when none is chosen yet).
    async fn permission_sets(
        &self,
        choices: &Choices<'_>,
        account: Option<&AccountId>,
    ) -> Vec<(String, String)> {
        let sets = choices.permission_sets(account);
        // Keyed by label: a set named by ARN and by name is offered once.
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for ps in &sets.named {
            let label = match PermissionSetArn::parse(ps) {
                Ok(arn) => self
                    .names
                    .name_of(&arn)
                    .await
                    .unwrap_or_else(|_| ps.clone()),
                Err(_) => ps.clone(),
            };
            if !choices.denies_set(account, ps, Some(&label)) {
                out.entry(label).or_insert_with(|| ps.clone());
            }
        }
        if sets.any {
            match self.names.all().await {
                Ok(all) => {
                    for (arn, name) in all.iter() {
                        if !choices.denies_set(account, arn, Some(name)) {
                            out.entry(name.clone()).or_insert_with(|| arn.clone());
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not list the permission sets"),
            }
        }
        out.into_iter()
            .map(|(label, value)| (value, label))
            .collect()
    }
}
