//! What one user may pick in the `/break-glass` modal: the allow rules that cover them, and
//! the deny rules that take whole accounts away. The modal's type-ahead asks it for accounts
//! and permission sets; a submission is still decided from scratch by [`Policy::decide`].
//!
//! `"*"` in a rule means every account (or permission set): the caller fills those in from
//! the organization (or the instance), and the policy's named ones are offered either way.

use std::collections::BTreeSet;

use super::{ANY, Effect, Grant, Policy, Rule, Subject};
use crate::domain::AccountId;

/// The rules that decide what `who` may pick.
#[derive(Debug)]
pub struct Choices<'p> {
    allows: Vec<&'p Rule>,
    denies: Vec<&'p Rule>,
}

/// Permission sets offered: as the rules write them (ARNs or names), and whether a rule
/// allows every one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PermissionSetChoices {
    pub any: bool,
    pub named: BTreeSet<String>,
}

impl Policy {
    /// What `who` may pick: nothing at all when no allow rule covers them.
    pub fn choices(&self, who: &Subject<'_>) -> Choices<'_> {
        let covering = |effect: Effect| {
            self.rules
                .iter()
                .filter(move |r| r.effect == effect && r.covers(who))
                .collect::<Vec<_>>()
        };
        Choices {
            allows: covering(Effect::Allow),
            denies: covering(Effect::Deny),
        }
    }
}

impl Choices<'_> {
    pub fn is_empty(&self) -> bool {
        self.allows.is_empty()
            || self
                .denies
                .iter()
                .any(|d| d.accounts.contains(ANY) && d.permission_sets.contains(ANY))
    }

    /// The terms of every rule that may apply (durations, reason, incident).
    pub fn grants(&self) -> impl Iterator<Item = Grant> + '_ {
        self.allows.iter().map(|r| r.grant())
    }

    /// Whether some rule allows every account (the organization's are offered).
    pub fn any_account(&self) -> bool {
        self.allows.iter().any(|r| r.accounts.contains(ANY))
    }

    /// The accounts the rules name.
    pub fn named_accounts(&self) -> BTreeSet<AccountId> {
        self.allows
            .iter()
            .flat_map(|r| r.accounts.iter())
            .filter_map(|a| AccountId::parse(a).ok())
            .filter(|a| self.offers_account(a))
            .collect()
    }

    /// Whether `account` may be offered: a rule names it (or every account), and no deny rule
    /// takes every permission set on it away.
    pub fn offers_account(&self, account: &AccountId) -> bool {
        let names = |r: &Rule| r.accounts.contains(ANY) || r.accounts.contains(account.as_str());
        self.allows.iter().any(|r| names(r))
            && !self
                .denies
                .iter()
                .any(|d| names(d) && d.permission_sets.contains(ANY))
    }

    /// Whether a deny rule takes permission set `set` (its ARN or name as a rule writes it;
    /// `name` too when known) away from the user on `account` (when `None`: on every
    /// account).
    pub fn denies_set(&self, account: Option<&AccountId>, set: &str, name: Option<&str>) -> bool {
        self.denies.iter().any(|d| {
            let on = d.accounts.contains(ANY)
                || account.is_some_and(|a| d.accounts.contains(a.as_str()));
            on && (d.permission_sets.contains(ANY)
                || d.permission_sets.contains(set)
                || name.is_some_and(|n| d.permission_sets.contains(n)))
        })
    }

    /// The permission sets offered on `account` (on any account when `None`), less those a
    /// deny rule names.
    pub fn permission_sets(&self, account: Option<&AccountId>) -> PermissionSetChoices {
        let mut out = PermissionSetChoices::default();
        if account.is_some_and(|a| !self.offers_account(a)) {
            return out;
        }
        for r in self.allows.iter().filter(|r| {
            account.is_none_or(|a| r.accounts.contains(ANY) || r.accounts.contains(a.as_str()))
        }) {
            for p in &r.permission_sets {
                if p == ANY {
                    out.any = true;
                } else if !self.denies_set(account, p, None) {
                    out.named.insert(p.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: &str = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";

    fn policy(rules: &str) -> Policy {
        Policy::parse(&format!("version = 1\n{rules}")).unwrap()
    }

    fn rule(name: &str, effect: &str, users: &str, accounts: &str, sets: &str) -> String {
        format!(
            "[[rule]]\nname = \"{name}\"\neffect = \"{effect}\"\nslack_users = [{users}]\naccounts = [{accounts}]\npermission_sets = [{sets}]\n{}",
            if effect == "allow" {
                "default_duration = \"1h\"\nmax_duration = \"2h\"\n"
            } else {
                ""
            }
        )
    }

    #[test]
    fn choices_follow_the_rules_that_cover_the_user() {
        let p = policy(&format!(
            "{}{}{}",
            rule(
                "named",
                "allow",
                "\"U0USER00001\"",
                "\"111111111111\", \"222222222222\"",
                &format!("\"{PS}\"")
            ),
            rule(
                "everywhere",
                "allow",
                "\"U0USER00002\"",
                "\"*\"",
                "\"ReadOnly\", \"*\""
            ),
            rule(
                "not-prod",
                "deny",
                "\"U0USER00001\", \"U0USER00002\"",
                "\"222222222222\"",
                "\"*\""
            ),
        ));
        let groups = BTreeSet::new();
        let who = |u| Subject {
            slack_user: u,
            sso_groups: &groups,
        };
        let u1 = p.choices(&who("U0USER00001"));
        assert!(!u1.any_account());
        assert_eq!(
            u1.named_accounts()
                .into_iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>(),
            ["111111111111"],
            "a deny of every permission set takes the account away"
        );
        assert!(u1.permission_sets(None).named.contains(PS));
        let nowhere = AccountId::parse("333333333333").unwrap();
        assert!(!u1.offers_account(&nowhere));
        assert_eq!(
            u1.permission_sets(Some(&nowhere)),
            PermissionSetChoices::default()
        );

        let u2 = p.choices(&who("U0USER00002"));
        assert!(u2.any_account());
        assert!(
            u2.offers_account(&nowhere),
            "every account: the organization's"
        );
        assert!(!u2.offers_account(&AccountId::parse("222222222222").unwrap()));
        let sets = u2.permission_sets(Some(&nowhere));
        assert!(sets.any && sets.named.contains("ReadOnly"));

        assert!(
            p.choices(&who("U0USER00003")).is_empty(),
            "no rule covers U0USER00003"
        );

        let p = policy(&format!(
            "{}{}",
            rule(
                "everything",
                "allow",
                "\"U0USER00001\"",
                "\"*\"",
                &format!("\"*\", \"{PS}\"")
            ),
            rule(
                "never-admin",
                "deny",
                "\"U0USER00001\"",
                "\"*\"",
                "\"AdministratorAccess\""
            ),
        ));
        let c = p.choices(&who("U0USER00001"));
        let admin = "arn:aws:sso:::permissionSet/ssoins-1/ps-9";
        assert!(c.denies_set(Some(&nowhere), admin, Some("AdministratorAccess")));
        assert!(!c.denies_set(Some(&nowhere), PS, Some("ReadOnly")));
        assert!(c.permission_sets(Some(&nowhere)).named.contains(PS));
    }
}
