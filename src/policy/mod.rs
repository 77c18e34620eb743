//! Who may break glass into which account with which permission set, and for how long.
//!
//! The policy is one TOML file (see `config/policy.example.toml`). It is read and validated
//! at cold start; a policy that does not validate fails closed (the process refuses to run).
//! Decisions deny by default, and a matching `deny` rule wins over any `allow` rule.
//!
//! `mod.rs` holds the policy and its decisions; `file.rs` reads and validates the TOML;
//! `scope.rs` derives what the deploy needs; `review.rs` is the `[review]` section.

use std::collections::{BTreeMap, BTreeSet};

mod choices;
mod file;
mod gate;
mod review;
mod scope;

pub use choices::{Choices, PermissionSetChoices};
pub use gate::{Answer, AskFailed, Gate, Gated, OnCall, OncallSource, Otherwise, Unreachable};
pub use review::{Escalation, ReviewPolicy};
pub use scope::{DeployScope, Scope, Wide, WidenedBy};

use crate::domain::{AccountId, Duration, PermissionSetArn};
use file::{RawPolicy, toml_error};

/// A policy file that does not validate. `field` names the offending key
/// (`rule[2].accounts[0]`), `problem` says what is wrong; shown as one line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {problem}")]
pub struct PolicyError {
    pub field: String,
    pub problem: String,
}

fn err(field: impl Into<String>, problem: impl Into<String>) -> PolicyError {
    PolicyError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// `*` in a rule's list matches anything.
pub const ANY: &str = "*";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub effect: Effect,
    pub slack_users: BTreeSet<String>,
    /// Identity Center groups (display names) whose members the rule covers.
    pub sso_groups: BTreeSet<String>,
    pub accounts: BTreeSet<String>,
    pub permission_sets: BTreeSet<String>,
    pub default_duration: Duration,
    pub max_duration: Duration,
    pub reason_required: bool,
    pub notify_channel: Option<String>,
    /// When a lease ends, also deny the user's live sessions of the permission set.
    pub end_sessions: bool,
    /// What the reconciler does with standing access (assignments break glass never
    /// granted) to the rule's accounts × permission sets.
    pub standing_access: Standing,
    /// On call passes at once; everybody else is approved (or refused). `None`: ungated.
    pub gate: Option<Gate>,
    /// The request must name an open PagerDuty incident.
    pub incident_required: bool,
    /// How many accounts one request under this rule may cover (1 to [`MAX_ACCOUNTS`]).
    pub max_accounts: usize,
}

/// Why a request for several accounts is refused, by what it is about: the accounts chosen,
/// or (one account) the permission set, as a single-account refusal always was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountsRefused {
    Accounts(String),
    PermissionSet(String),
}

/// The most accounts a rule may let one request cover: each is granted and revoked on its own
/// within the grant and revoke tasks, which must finish within their Lambda's time.
pub const MAX_ACCOUNTS: usize = 10;

/// What the reconciler does with an assignment break glass never granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Standing {
    /// Keep it and name it in the summary (the default).
    #[default]
    Warn,
    /// Delete it: the policy says this permission set is for break glass only.
    Remove,
}

impl Rule {
    fn targets(&self, account: &AccountId, ps: &PermissionSetArn, ps_name: Option<&str>) -> bool {
        (self.accounts.contains(ANY) || self.accounts.contains(account.as_str()))
            && (self.permission_sets.contains(ANY)
                || self.permission_sets.contains(ps.as_str())
                || ps_name.is_some_and(|n| self.permission_sets.contains(n)))
    }

    fn covers(&self, who: &Subject<'_>) -> bool {
        self.slack_users.contains(ANY)
            || self.slack_users.contains(who.slack_user)
            || self.sso_groups.iter().any(|g| who.sso_groups.contains(g))
    }

    fn matches(&self, who: &Subject<'_>, what: &Target<'_>) -> bool {
        self.covers(who)
            && self.targets(what.account, what.permission_set, what.permission_set_name)
    }

    fn grant(&self) -> Grant {
        Grant {
            rule: self.name.clone(),
            duration: self.default_duration,
            max_duration: self.max_duration,
            reason_required: self.reason_required,
            notify_channel: self.notify_channel.clone(),
            end_sessions: self.end_sessions,
            gate: self.gate.clone(),
            incident_required: self.incident_required,
            max_accounts: self.max_accounts,
        }
    }

    /// Whether this rule names permission sets by name (so deciding needs the name).
    pub fn uses_permission_set_names(&self) -> bool {
        self.permission_sets
            .iter()
            .any(|p| p != ANY && PermissionSetArn::parse(p).is_err())
    }
}

/// Who is asking: the Slack user and the Identity Center groups they belong to.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub slack_user: &'a str,
    pub sso_groups: &'a BTreeSet<String>,
}

/// What is asked for. The permission set's name is needed only by rules that use names.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub account: &'a AccountId,
    pub permission_set: &'a PermissionSetArn,
    pub permission_set_name: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Slack user id → Identity Center user name.
    pub users: BTreeMap<String, String>,
    /// Account id → friendly name.
    pub accounts: BTreeMap<AccountId, String>,
    /// Slack users who may end or extend anyone's access (besides the requester).
    pub responders: BTreeSet<String>,
    pub rules: Vec<Rule>,
    /// Where the reconciler posts a summary when it revoked or removed something.
    pub reconcile_channel: Option<String>,
    /// Who reviews each use, where, and how soon (`[review]`; none: uses are reported only).
    pub review: Option<ReviewPolicy>,
}

/// The outcome of asking the policy about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Grant),
    Deny(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub rule: String,
    pub duration: Duration,
    pub max_duration: Duration,
    pub reason_required: bool,
    pub notify_channel: Option<String>,
    /// Deny the user's live sessions when the lease ends.
    pub end_sessions: bool,
    pub gate: Option<Gate>,
    pub incident_required: bool,
    /// How many accounts one request may cover.
    pub max_accounts: usize,
}

impl Policy {
    /// Parses and validates a policy file's text.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        raw.validate()
    }

    /// Reads and validates a policy file.
    pub fn load(path: &std::path::Path) -> Result<Self, PolicyError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| err("file", format!("cannot read: {e}")))?;
        Self::parse(&text)
    }

    /// Decides whether `who` may have `what`. Deny by default; any matching deny rule wins;
    /// otherwise the first matching allow rule gives the terms.
    pub fn decide(&self, who: &Subject<'_>, what: &Target<'_>) -> Decision {
        let mut allow = None;
        for rule in self.rules.iter().filter(|r| r.matches(who, what)) {
            match rule.effect {
                Effect::Deny => {
                    return Decision::Deny(format!("denied by policy rule \"{}\"", rule.name));
                }
                Effect::Allow if allow.is_none() => allow = Some(rule),
                Effect::Allow => {}
            }
        }
        match allow {
            Some(rule) => Decision::Allow(rule.grant()),
            None => Decision::Deny(format!(
                "no policy rule lets you break glass into account {} with this permission set",
                what.account
            )),
        }
    }

    /// Decides a request for several accounts: each account on its own ([`Policy::decide`]),
    /// all allowed by the same rule (its terms are the request's), and no more of them than
    /// that rule's `max_accounts`. A refusal names the account it is about.
    pub fn decide_accounts(
        &self,
        who: &Subject<'_>,
        accounts: &[AccountId],
        permission_set: &PermissionSetArn,
        permission_set_name: Option<&str>,
    ) -> Result<Grant, AccountsRefused> {
        let several = accounts.len() > 1;
        let mut first: Option<Grant> = None;
        for (i, account) in accounts.iter().enumerate() {
            if accounts[..i].contains(account) {
                return Err(AccountsRefused::Accounts(format!(
                    "account {account} is chosen twice"
                )));
            }
            let target = Target {
                account,
                permission_set,
                permission_set_name,
            };
            let grant = match self.decide(who, &target) {
                Decision::Allow(g) => g,
                Decision::Deny(why) if several => {
                    return Err(AccountsRefused::Accounts(format!(
                        "account {account}: {why}"
                    )));
                }
                Decision::Deny(why) => return Err(AccountsRefused::PermissionSet(why)),
            };
            match &first {
                None => first = Some(grant),
                Some(f) if f.rule != grant.rule => {
                    return Err(AccountsRefused::Accounts(format!(
                        "account {account} falls under rule {:?}, the others under {:?}: ask for them separately",
                        grant.rule, f.rule
                    )));
                }
                Some(_) => {}
            }
        }
        let grant =
            first.ok_or_else(|| AccountsRefused::Accounts("choose an account".to_owned()))?;
        if accounts.len() > grant.max_accounts {
            return Err(AccountsRefused::Accounts(format!(
                "rule {:?} allows at most {} account(s) in one request, not {}",
                grant.rule,
                grant.max_accounts,
                accounts.len()
            )));
        }
        Ok(grant)
    }

    /// Whether any allow rule could cover this Slack user (by id, `*`, or any group): when
    /// none can, a request is refused without looking anything up.
    pub fn may_cover(&self, slack_user: &str) -> bool {
        self.rules.iter().any(|r| {
            r.effect == Effect::Allow
                && (r.slack_users.contains(ANY)
                    || r.slack_users.contains(slack_user)
                    || !r.sso_groups.is_empty())
        })
    }

    /// Every group the policy mentions: rules', approvers' and reviewers' (membership is
    /// checked only for these).
    pub fn groups(&self) -> BTreeSet<&str> {
        let rules = self.rules.iter().flat_map(|r| {
            r.sso_groups
                .iter()
                .chain(r.gate.iter().flat_map(|g| g.approver_groups.iter()))
        });
        let reviewers = self.review.iter().flat_map(|r| r.reviewer_groups.iter());
        rules.chain(reviewers).map(String::as_str).collect()
    }

    /// The on-call sources a request for this account and permission set may be gated on:
    /// those of every gated allow rule that could apply (rules naming permission sets by name
    /// included, since the name is not known yet). Asked before the rule is known, at the
    /// same time as who the requester is.
    pub fn oncall_sources(&self, account: &AccountId, ps: &PermissionSetArn) -> Vec<OncallSource> {
        let mut out: Vec<OncallSource> = Vec::new();
        for r in self.rules.iter().filter(|r| {
            r.effect == Effect::Allow
                && (r.targets(account, ps, None) || r.uses_permission_set_names())
        }) {
            for s in r.gate.iter().flat_map(|g| g.oncall.iter()) {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
        }
        out
    }

    /// Which on-call services the policy needs a token for: (PagerDuty, Opsgenie). PagerDuty
    /// also checks the incidents that rules with `incident_required` ask for.
    pub fn services(&self) -> (bool, bool) {
        let sources = || {
            self.rules
                .iter()
                .flat_map(|r| r.gate.iter().flat_map(|g| g.oncall.iter()))
        };
        (
            sources().any(OncallSource::is_pagerduty)
                || self.rules.iter().any(|r| r.incident_required),
            sources().any(|s| !s.is_pagerduty()),
        )
    }

    pub fn uses_permission_set_names(&self) -> bool {
        self.rules.iter().any(Rule::uses_permission_set_names)
    }

    /// Whether some allow rule allows every account (`accounts = ["*"]`).
    pub fn allows_any_account(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.effect == Effect::Allow && r.accounts.contains(ANY))
    }

    /// The break-glass (account, permission set) pairs the allow rules name explicitly; the
    /// permission set as written (an ARN or a name). Wildcards cannot be listed.
    pub fn break_glass_pairs(&self) -> BTreeSet<(AccountId, String)> {
        let mut out = BTreeSet::new();
        for r in self.rules.iter().filter(|r| r.effect == Effect::Allow) {
            for a in r.accounts.iter().filter_map(|a| AccountId::parse(a).ok()) {
                for p in r.permission_sets.iter().filter(|p| *p != ANY) {
                    out.insert((a.clone(), p.clone()));
                }
            }
        }
        out
    }

    /// What the reconciler does with standing access to `ps` on `account`: `Remove` (with
    /// the rule that says so) only where an allow rule covering the pair says so explicitly.
    pub fn standing_access(
        &self,
        account: &AccountId,
        ps: &PermissionSetArn,
        ps_name: Option<&str>,
    ) -> (Standing, Option<&str>) {
        self.rules
            .iter()
            .find(|r| {
                r.effect == Effect::Allow
                    && r.standing_access == Standing::Remove
                    && r.targets(account, ps, ps_name)
            })
            .map_or((Standing::Warn, None), |r| {
                (Standing::Remove, Some(r.name.as_str()))
            })
    }

    /// The allow rule a Break Glass button for this account and permission set would be
    /// granted by (for somebody): none when no allow rule names them, or a deny rule for
    /// everybody covers them.
    pub fn button_rule(
        &self,
        account: &AccountId,
        ps: &PermissionSetArn,
        ps_name: Option<&str>,
    ) -> Result<&str, String> {
        let target = |r: &&Rule| r.targets(account, ps, ps_name);
        if let Some(deny) = self
            .rules
            .iter()
            .filter(|r| r.effect == Effect::Deny && r.slack_users.contains(ANY))
            .find(target)
        {
            return Err(format!("deny rule {:?} refuses it to everybody", deny.name));
        }
        self.rules
            .iter()
            .filter(|r| r.effect == Effect::Allow)
            .find(target)
            .map(|r| r.name.as_str())
            .ok_or_else(|| {
                format!(
                    "no allow rule names account {account} with permission set {}",
                    ps_name.unwrap_or(ps.as_str())
                )
            })
    }

    /// The gate of the rule named `rule`, if it is gated.
    pub fn gate_of(&self, rule: &str) -> Option<&Gate> {
        self.rules
            .iter()
            .find(|r| r.name == rule)
            .and_then(|r| r.gate.as_ref())
    }

    /// Friendly name of an account, if the policy gives one.
    pub fn account_name(&self, account: &AccountId) -> Option<&str> {
        self.accounts.get(account).map(String::as_str)
    }
}

// ---- the file format -------------------------------------------------------------------

#[cfg(test)]
mod tests;
