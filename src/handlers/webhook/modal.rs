//! `/break-glass`: a modal whose pickers offer only what the policy allows this user (as
//! they type: `suggest.rs`), and its submission, checked again from scratch with errors
//! shown in the modal.

use serde_json::{Value, json};
use time::OffsetDateTime;

use http::StatusCode;

use super::{Refusal, Reply, Webhook, refuse};
use crate::aws::organizations::Known;
use crate::domain::{AccountId, Duration, PermissionSetArn, RequestId};
use crate::identity::IdentityError;
use crate::policy::Subject;
use crate::slack;
use crate::slack::modal::{modal, modal_channel};
use crate::slack::payload::{Command, Submission};

impl Webhook {
    /// `/break-glass`: the modal, with the durations and fields of the user's rules.
    pub(super) async fn open_modal(&self, cmd: Command) -> Reply {
        let refused =
            |why: &str| Reply::ephemeral(&format!("Break glass refused: {}.", slack::escape(why)));
        if !self.policy.may_cover(&cmd.origin.user_id) {
            return refused("no policy rule covers you");
        }
        let person = match self
            .directory
            .resolve(&self.policy, &cmd.origin.user_id)
            .await
        {
            Ok(p) => p,
            Err(IdentityError::Refused(why)) => return refused(&why),
            Err(IdentityError::Unavailable(why)) => {
                tracing::error!(error = %why, "identity lookup failed");
                return refused("could not look you up right now; try again in a moment");
            }
        };
        let choices = self.policy.choices(&Subject {
            slack_user: &cmd.origin.user_id,
            sso_groups: &person.groups,
        });
        if choices.is_empty() {
            return refused("no policy rule lets you break glass");
        }
        if choices.any_account() {
            // Start reading the organization's accounts now: the type-ahead needs them soon.
            let _ = self
                .organizations
                .accounts_within(std::time::Duration::ZERO)
                .await;
        }
        let grants: Vec<_> = choices.grants().collect();
        let view = modal(&grants, cmd.channel_id.as_deref());
        match self.directory.slack.open_view(&cmd.trigger_id, &view).await {
            Ok(()) => Reply::bare(StatusCode::OK),
            Err(e) => {
                tracing::error!(error = %e, "views.open failed");
                Reply::ephemeral("Could not open the break-glass form; try again.")
            }
        }
    }

    /// The modal's submission: every value checked again; errors shown in the modal.
    pub(super) async fn submit(&self, sub: Submission, now: OffsetDateTime) -> Reply {
        let id = RequestId::derive(&[
            &sub.origin.team_id,
            &sub.origin.user_id,
            "modal",
            &sub.view_id,
        ]);
        tracing::Span::current().record("request", id.as_str());
        let errors = |r: Refusal| {
            Reply::json(json!({"response_action": "errors", "errors": {r.field: r.message}}))
        };
        // More than any rule allows is refused by the policy; this only bounds the work.
        if sub.accounts.len() > crate::policy::MAX_ACCOUNTS {
            return errors(refuse(
                "account",
                format!("at most {} accounts", crate::policy::MAX_ACCOUNTS),
            ));
        }
        let mut accounts = Vec::new();
        for a in &sub.accounts {
            match AccountId::parse(a) {
                Ok(a) => accounts.push(a),
                Err(e) => return errors(refuse("account", e.to_string())),
            }
        }
        if accounts.is_empty() {
            return errors(refuse("account", "choose an account"));
        }
        for account in &accounts {
            if let Some(why) = self.outside_organization(account).await {
                self.audit_denied(&id, &sub.origin.user_id, &why).await;
                return errors(refuse("account", why));
            }
        }
        let permission_set = match sub.permission_set.as_deref() {
            Some(p) if p.starts_with("arn:") => PermissionSetArn::parse(p).ok(),
            Some(name) => self.names.arn_of(name).await.ok(),
            None => None,
        };
        let Some(permission_set) = permission_set else {
            return errors(refuse("permission_set", "choose a permission set"));
        };
        let Some(duration) = sub
            .duration
            .as_deref()
            .and_then(|d| Duration::parse(d).ok())
        else {
            return errors(refuse("duration", "choose a duration"));
        };
        let reason = sub
            .reason
            .map(|r| crate::domain::truncate(r.trim(), 500).to_owned());
        match self
            .approve(
                &id,
                &sub.origin,
                &accounts,
                &permission_set,
                Some(duration),
                reason,
                sub.incident.as_deref(),
            )
            .await
        {
            Ok(a) => {
                let channel = modal_channel(&sub.private_metadata);
                let reply = self.start(a, &sub.origin, channel, None, now, None).await;
                // The modal closes; the requester hears back in a direct message.
                let text = reply
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_str::<Value>(b).ok())
                    .and_then(|v| v["text"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| slack::ACCESS_INCOMING.to_owned());
                if let Err(e) = self
                    .directory
                    .slack
                    .post_message(&sub.origin.user_id, &json!({"text": text}), None)
                    .await
                {
                    tracing::warn!(error = %e, "could not tell the requester");
                }
                Reply::json(json!({"response_action": "clear"}))
            }
            Err(r) => {
                self.audit_denied(&id, &sub.origin.user_id, &r.message)
                    .await;
                errors(r)
            }
        }
    }

    /// Why `account` cannot be asked for, when the organization's accounts are known and it
    /// is not an active one of them (a `*` rule allows it, but nothing could be granted).
    async fn outside_organization(&self, account: &AccountId) -> Option<String> {
        if !self.policy.allows_any_account() {
            return None; // every account a rule allows is named in it
        }
        let known = self
            .organizations
            .accounts_within(super::suggest::ORGANIZATION_DEADLINE)
            .await;
        match known {
            Ok(Known::Accounts(org)) if !org.iter().any(|a| a.id == *account) => Some(format!(
                "account {account} is not an active account of the organization"
            )),
            _ => None,
        }
    }
}
