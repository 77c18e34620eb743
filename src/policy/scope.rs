//! What the deploy derives from a policy (`break-glass policy scope --json`): the accounts
//! and permission sets the allow rules can reach, which end sessions, which remove standing
//! access, and the Slack channels it names.

use std::collections::BTreeSet;

use super::{ANY, Effect, Policy, Rule, Standing};

/// What the allow rules of a policy can ever reach, as the deploy needs it (IAM is derived
/// from it): each dimension a sorted list, or `*` when a rule names any (or names permission
/// sets by name, whose ARNs are only known at run time). The CDK app derives the same from the
/// same file; the shared corpus in `config/testdata/policy/` proves they agree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Scope {
    pub accounts: Wide,
    pub permission_sets: Wide,
    /// The allow rules that made each dimension `*`.
    pub widened_by: WidenedBy,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Wide {
    /// `"*"`.
    Any(&'static str),
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WidenedBy {
    pub accounts: Vec<String>,
    pub permission_sets: Vec<String>,
}

/// Everything about a policy the deploy depends on (`break-glass policy scope --json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeployScope {
    /// What the allow rules can grant.
    pub grants: Scope,
    /// What the rules with `end_sessions = true` can end sessions of (none: no such rule).
    pub end_sessions: Option<Scope>,
    /// The allow rules with `standing_access = "remove"`.
    pub remove_standing: Vec<String>,
    /// Every Slack channel the policy names (notify channels, the reconcile channel).
    pub channels: Vec<String>,
}

impl Policy {
    /// What the deploy depends on: see [`DeployScope`].
    pub fn deploy_scope(&self) -> DeployScope {
        let allows: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.effect == Effect::Allow)
            .collect();
        let ends: Vec<&Rule> = allows.iter().copied().filter(|r| r.end_sessions).collect();
        let mut channels: BTreeSet<String> = self
            .rules
            .iter()
            .filter_map(|r| r.notify_channel.clone())
            .collect();
        channels.extend(self.reconcile_channel.clone());
        if let Some(r) = &self.review {
            channels.insert(r.channel.clone());
            if let Some(super::Escalation::Channel(c)) = &r.escalate_to {
                channels.insert(c.clone());
            }
        }
        DeployScope {
            grants: scope_of(&allows),
            end_sessions: (!ends.is_empty()).then(|| scope_of(&ends)),
            remove_standing: allows
                .iter()
                .filter(|r| r.standing_access == Standing::Remove)
                .map(|r| r.name.clone())
                .collect(),
            channels: channels.into_iter().collect(),
        }
    }
}

fn scope_of(rules: &[&Rule]) -> Scope {
    let wide_accounts: Vec<String> = rules
        .iter()
        .filter(|r| r.accounts.contains(ANY))
        .map(|r| r.name.clone())
        .collect();
    let wide_sets: Vec<String> = rules
        .iter()
        .filter(|r| {
            r.permission_sets
                .iter()
                .any(|p| p == ANY || !p.starts_with("arn:"))
        })
        .map(|r| r.name.clone())
        .collect();
    let union = |f: fn(&Rule) -> &BTreeSet<String>| -> Vec<String> {
        let all: BTreeSet<&String> = rules.iter().flat_map(|r| f(r)).collect();
        all.into_iter().cloned().collect()
    };
    Scope {
        accounts: if wide_accounts.is_empty() {
            Wide::List(union(|r| &r.accounts))
        } else {
            Wide::Any(ANY)
        },
        permission_sets: if wide_sets.is_empty() {
            Wide::List(union(|r| &r.permission_sets))
        } else {
            Wide::Any(ANY)
        },
        widened_by: WidenedBy {
            accounts: wide_accounts,
            permission_sets: wide_sets,
        },
    }
}
