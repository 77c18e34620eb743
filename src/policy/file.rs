//! The policy file: TOML read into raw types (unknown keys refused), then validated into a
//! [`Policy`], naming the field and the problem of the first thing wrong.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::gate::{Gate, RawGate};
use super::{
    ANY, Effect, Escalation, MAX_ACCOUNTS, Policy, PolicyError, ReviewPolicy, Rule, Standing, err,
};
use crate::domain::{AccountId, Duration, PermissionSetArn};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    version: u32,
    #[serde(default)]
    users: BTreeMap<String, String>,
    #[serde(default)]
    accounts: BTreeMap<String, String>,
    #[serde(default)]
    responders: Vec<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
    reconcile: Option<RawReconcile>,
    review: Option<RawReview>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReview {
    channel: String,
    reviewers: Vec<String>,
    within: String,
    escalate_to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    notify_channel: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    effect: String,
    #[serde(default)]
    slack_users: Vec<String>,
    #[serde(default)]
    sso_groups: Vec<String>,
    accounts: Vec<String>,
    permission_sets: Vec<String>,
    default_duration: Option<String>,
    max_duration: Option<String>,
    #[serde(default)]
    reason_required: bool,
    notify_channel: Option<String>,
    #[serde(default)]
    end_sessions: bool,
    standing_access: Option<String>,
    #[serde(default)]
    oncall: Vec<String>,
    oncall_levels: Option<Vec<u32>>,
    otherwise: Option<String>,
    oncall_unreachable: Option<String>,
    #[serde(default)]
    approvers: Vec<String>,
    approval_timeout: Option<String>,
    #[serde(default)]
    incident_required: bool,
    max_accounts: Option<i64>,
}

fn is_slack_user_id(s: &str) -> bool {
    (s.starts_with('U') || s.starts_with('W'))
        && (3..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Identity Center permission set names: 1–32 of `[\w+=,.@-]`.
fn is_permission_set_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

fn is_slack_channel_id(s: &str) -> bool {
    (s.starts_with('C') || s.starts_with('G'))
        && (3..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl RawPolicy {
    pub(super) fn validate(self) -> Result<Policy, PolicyError> {
        if self.version != 1 {
            return Err(err(
                "version",
                format!("unsupported version {} (expected 1)", self.version),
            ));
        }
        for (slack, sso) in &self.users {
            if !is_slack_user_id(slack) {
                return Err(err(
                    format!("users.{slack}"),
                    "not a Slack user id (U… or W…)",
                ));
            }
            if sso.trim().is_empty() || sso.len() > 128 || sso.chars().any(char::is_control) {
                return Err(err(
                    format!("users.{slack}"),
                    "Identity Center user name must be 1–128 printable characters",
                ));
            }
        }
        let mut accounts = BTreeMap::new();
        for (id, name) in self.accounts {
            let acct =
                AccountId::parse(&id).map_err(|e| err(format!("accounts.{id}"), e.to_string()))?;
            accounts.insert(acct, name);
        }
        let responders = checked_set("responders", self.responders, true, |u| {
            (u != ANY && is_slack_user_id(u))
                .then_some(())
                .ok_or("not a Slack user id (U… or W…)".into())
        })?;
        if self.rules.is_empty() {
            return Err(err("rule", "no rules: nobody could break glass"));
        }
        let mut names = BTreeSet::new();
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, r) in self.rules.into_iter().enumerate() {
            let at = |f: &str| format!("rule[{i}].{f}");
            if r.name.trim().is_empty() {
                return Err(err(at("name"), "must not be empty"));
            }
            if !names.insert(r.name.clone()) {
                return Err(err(at("name"), format!("duplicate rule name {:?}", r.name)));
            }
            let effect = match r.effect.as_str() {
                "allow" => Effect::Allow,
                "deny" => Effect::Deny,
                other => {
                    return Err(err(
                        at("effect"),
                        format!("expected \"allow\" or \"deny\", got {other:?}"),
                    ));
                }
            };
            if r.slack_users.is_empty() && r.sso_groups.is_empty() {
                return Err(err(
                    at("slack_users"),
                    "a rule needs slack_users or sso_groups (use \"*\" for anyone)",
                ));
            }
            let slack_users = checked_set(&at("slack_users"), r.slack_users, true, |u| {
                is_slack_user_id(u)
                    .then_some(())
                    .ok_or("not a Slack user id (U… or W…)".into())
            })?;
            let sso_groups = checked_set(&at("sso_groups"), r.sso_groups, true, |g| {
                (!g.trim().is_empty() && g.len() <= 1024 && !g.chars().any(char::is_control))
                    .then_some(())
                    .ok_or("not a group display name".into())
            })?;
            let accounts = checked_set(&at("accounts"), r.accounts, false, |a| {
                AccountId::parse(a).map(drop).map_err(|e| e.to_string())
            })?;
            let permission_sets =
                checked_set(&at("permission_sets"), r.permission_sets, false, |p| {
                    if p.starts_with("arn:") {
                        PermissionSetArn::parse(p)
                            .map(drop)
                            .map_err(|e| e.to_string())
                    } else if is_permission_set_name(p) {
                        Ok(())
                    } else {
                        Err(format!(
                            "{p:?} is neither a permission set ARN nor a permission set name"
                        ))
                    }
                })?;
            let duration = |f: &str, v: Option<String>| -> Result<Option<Duration>, PolicyError> {
                v.map(|s| Duration::parse(&s).map_err(|e| err(at(f), e.to_string())))
                    .transpose()
            };
            let default_duration = duration("default_duration", r.default_duration)?;
            let max_duration = duration("max_duration", r.max_duration)?;
            let (default_duration, max_duration) = match (effect, default_duration, max_duration) {
                (Effect::Allow, Some(d), Some(m)) if d <= m => (d, m),
                (Effect::Allow, Some(_), Some(_)) => {
                    return Err(err(at("default_duration"), "longer than max_duration"));
                }
                (Effect::Allow, None, _) => {
                    return Err(err(at("default_duration"), "required for an allow rule"));
                }
                (Effect::Allow, _, None) => {
                    return Err(err(at("max_duration"), "required for an allow rule"));
                }
                (Effect::Deny, None, None) => (Duration::from_secs(0), Duration::from_secs(0)),
                (Effect::Deny, _, _) => {
                    return Err(err(at("max_duration"), "a deny rule takes no durations"));
                }
            };
            if let Some(ch) = &r.notify_channel
                && !is_slack_channel_id(ch)
            {
                return Err(err(
                    at("notify_channel"),
                    "not a Slack channel id (C… or G…)",
                ));
            }
            if effect == Effect::Deny && r.end_sessions {
                return Err(err(at("end_sessions"), "a deny rule grants nothing to end"));
            }
            let standing_access = match (effect, r.standing_access.as_deref()) {
                (_, None) => Standing::Warn,
                (Effect::Deny, Some(_)) => {
                    return Err(err(
                        at("standing_access"),
                        "only an allow rule says what happens to standing access",
                    ));
                }
                (Effect::Allow, Some("warn")) => Standing::Warn,
                (Effect::Allow, Some("remove"))
                    if accounts.contains(ANY) || permission_sets.contains(ANY) =>
                {
                    return Err(err(
                        at("standing_access"),
                        "\"remove\" needs the rule to name its accounts and permission sets (no \"*\"): it deletes access",
                    ));
                }
                (Effect::Allow, Some("remove")) => Standing::Remove,
                (Effect::Allow, Some(other)) => {
                    return Err(err(
                        at("standing_access"),
                        format!("expected \"warn\" or \"remove\", got {other:?}"),
                    ));
                }
            };
            if effect == Effect::Deny && r.incident_required {
                return Err(err(at("incident_required"), "a deny rule grants nothing"));
            }
            let max_accounts = match (effect, r.max_accounts) {
                (_, None) => 1,
                (Effect::Deny, Some(_)) => {
                    return Err(err(at("max_accounts"), "a deny rule grants nothing"));
                }
                (Effect::Allow, Some(n)) if (1..=MAX_ACCOUNTS as i64).contains(&n) => n as usize,
                (Effect::Allow, Some(n)) => {
                    return Err(err(
                        at("max_accounts"),
                        format!("expected 1 to {MAX_ACCOUNTS}, got {n}"),
                    ));
                }
            };
            let gate = RawGate {
                oncall: r.oncall,
                oncall_levels: r.oncall_levels,
                otherwise: r.otherwise,
                oncall_unreachable: r.oncall_unreachable,
                approvers: r.approvers,
                approval_timeout: r.approval_timeout,
            }
            .validate(&at, effect == Effect::Allow, is_slack_user_id)?;
            if gate.as_ref().is_some_and(Gate::may_ask) && r.notify_channel.is_none() {
                return Err(err(
                    at("notify_channel"),
                    "needed: where this rule's approval requests are posted",
                ));
            }
            rules.push(Rule {
                name: r.name,
                effect,
                slack_users,
                sso_groups,
                accounts,
                permission_sets,
                default_duration,
                max_duration,
                reason_required: r.reason_required,
                notify_channel: r.notify_channel,
                end_sessions: r.end_sessions,
                standing_access,
                gate,
                incident_required: r.incident_required,
                max_accounts,
            });
        }
        let reconcile_channel = self.reconcile.and_then(|r| r.notify_channel);
        if let Some(ch) = &reconcile_channel
            && !is_slack_channel_id(ch)
        {
            return Err(err(
                "reconcile.notify_channel",
                "not a Slack channel id (C… or G…)",
            ));
        }
        let review = self.review.map(RawReview::validate).transpose()?;
        Ok(Policy {
            users: self.users,
            accounts,
            responders,
            rules,
            reconcile_channel,
            review,
        })
    }
}

/// The longest a review may wait before it is reminded.
const MAX_REVIEW_WITHIN: Duration = Duration::from_secs_const(7 * 24 * 3600);

impl RawReview {
    fn validate(self) -> Result<ReviewPolicy, PolicyError> {
        if !is_slack_channel_id(&self.channel) {
            return Err(err("review.channel", "not a Slack channel id (C… or G…)"));
        }
        if self.reviewers.is_empty() {
            return Err(err(
                "review.reviewers",
                "must name at least one Slack user id or Identity Center group",
            ));
        }
        // An entry shaped like a Slack user id is one; anything else is a group's name.
        let mut reviewers = BTreeSet::new();
        let mut reviewer_groups = BTreeSet::new();
        for (j, r) in self.reviewers.into_iter().enumerate() {
            let at = format!("review.reviewers[{j}]");
            if r == ANY {
                return Err(err(at, "\"*\" is not allowed: name who reviews"));
            }
            if r.trim().is_empty() || r.len() > 1024 || r.chars().any(char::is_control) {
                return Err(err(at, "neither a Slack user id nor a group display name"));
            }
            let fresh = if is_slack_user_id(&r) {
                reviewers.insert(r.clone())
            } else {
                reviewer_groups.insert(r.clone())
            };
            if !fresh {
                return Err(err(at, format!("duplicate entry {r:?}")));
            }
        }
        let within = Duration::parse_at_most(&self.within, MAX_REVIEW_WITHIN)
            .map_err(|e| err("review.within", e.to_string()))?;
        let escalate_to = match self.escalate_to {
            None => None,
            Some(c) if is_slack_channel_id(&c) => Some(Escalation::Channel(c)),
            Some(m) if is_user_group_mention(&m) => Some(Escalation::Mention(m)),
            Some(_) => {
                return Err(err(
                    "review.escalate_to",
                    "expected a Slack channel id (C… or G…) or a user group mention (<!subteam^S…>)",
                ));
            }
        };
        Ok(ReviewPolicy {
            channel: self.channel,
            reviewers,
            reviewer_groups,
            within,
            escalate_to,
        })
    }
}

/// `<!subteam^S0123ABC>`: how a message mentions a Slack user group.
fn is_user_group_mention(s: &str) -> bool {
    s.strip_prefix("<!subteam^")
        .and_then(|r| r.strip_suffix('>'))
        .is_some_and(|id| {
            id.starts_with('S')
                && (3..=32).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
}

/// Checks every entry of a rule list: non-empty, no duplicates, each `*` or valid.
fn checked_set(
    field: &str,
    items: Vec<String>,
    may_be_empty: bool,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<BTreeSet<String>, PolicyError> {
    if items.is_empty() && !may_be_empty {
        return Err(err(field, "must not be empty (use \"*\" for any)"));
    }
    let mut set = BTreeSet::new();
    for (j, item) in items.into_iter().enumerate() {
        let at = format!("{field}[{j}]");
        if item != ANY {
            check(&item).map_err(|p| err(&at, p))?;
        }
        if !set.insert(item.clone()) {
            return Err(err(at, format!("duplicate entry {item:?}")));
        }
    }
    Ok(set)
}

/// Turns a TOML error into one line: `line N: message`.
pub(super) fn toml_error(text: &str, e: &toml::de::Error) -> PolicyError {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let field = match line {
        Some(n) => format!("line {n}"),
        None => "policy".to_owned(),
    };
    err(field, e.message().replace('\n', " "))
}
