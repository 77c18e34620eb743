//! On-call gating and approvals: a rule may let whoever is **on call right now** break glass
//! at once, and make everybody else wait for a second person's approval (or refuse them).
//!
//! ```toml
//! oncall = ["pagerduty:PABC123", "opsgenie:6f1c…"]   # who is on call, by schedule
//! oncall_levels = [1, 2]            # which escalation levels count (default: [1])
//! otherwise = "approve"             # or "deny": not on call
//! oncall_unreachable = "approve"    # or "allow" (fail open): the service did not answer
//! approvers = ["U0LEAD01", "SRE"]   # Slack ids and/or Identity Center groups
//! approval_timeout = "30m"          # an unanswered approval request expires after this
//! ```
//!
//! `approvers` without `oncall` means every request under the rule needs approval.
//! [`Gate::decide`] is the pure decision on what the on-call services answered; fetching
//! the answers is [`crate::oncall`]'s business.

use std::collections::BTreeSet;

use super::{ANY, PolicyError, err};
use crate::domain::Duration;

/// Where to ask who is on call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OncallSource {
    /// `pagerduty:<schedule id>`: `GET /oncalls?schedule_ids[]=…`.
    PagerDutySchedule(String),
    /// `pagerduty-escalation-policy:<id>`: `GET /oncalls?escalation_policy_ids[]=…`.
    PagerDutyEscalationPolicy(String),
    /// `opsgenie:<schedule id>`: `GET /v2/schedules/{id}/on-calls` (Opsgenie schedules have no
    /// escalation levels: whoever is on call is level 1).
    OpsgenieSchedule(String),
}

impl OncallSource {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (kind, id) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected \"pagerduty:<schedule id>\", \"pagerduty-escalation-policy:<id>\" or \"opsgenie:<schedule id>\""))?;
        let pd_id = |id: &str| {
            ((1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()))
                .then(|| id.to_owned())
                .ok_or_else(|| format!("{id:?} is not a PagerDuty id (letters and digits)"))
        };
        match kind {
            "pagerduty" => pd_id(id).map(Self::PagerDutySchedule),
            "pagerduty-escalation-policy" => pd_id(id).map(Self::PagerDutyEscalationPolicy),
            "opsgenie"
                if (1..=64).contains(&id.len())
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Ok(Self::OpsgenieSchedule(id.to_owned()))
            }
            "opsgenie" => Err(format!("{id:?} is not an Opsgenie schedule id")),
            other => Err(format!(
                "unknown on-call service {other:?} (pagerduty, pagerduty-escalation-policy or opsgenie)"
            )),
        }
    }

    /// The service's name, for messages and the audit trail.
    pub fn service(&self) -> &'static str {
        match self {
            Self::PagerDutySchedule(_) | Self::PagerDutyEscalationPolicy(_) => "PagerDuty",
            Self::OpsgenieSchedule(_) => "Opsgenie",
        }
    }

    pub fn is_pagerduty(&self) -> bool {
        !matches!(self, Self::OpsgenieSchedule(_))
    }
}

impl std::fmt::Display for OncallSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PagerDutySchedule(id) => write!(f, "pagerduty:{id}"),
            Self::PagerDutyEscalationPolicy(id) => write!(f, "pagerduty-escalation-policy:{id}"),
            Self::OpsgenieSchedule(id) => write!(f, "opsgenie:{id}"),
        }
    }
}

/// One person on call, as a service said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCall {
    /// Lower-cased.
    pub email: String,
    /// The escalation level (1 = primary).
    pub level: u32,
}

/// Why a source could not say who is on call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AskFailed {
    /// No answer in time, a connection error, a 5xx or a 429: the service is down or slow.
    /// The rule's `oncall_unreachable` decides.
    Unreachable(String),
    /// It answered, but not who is on call (a token refused, a schedule that does not
    /// exist, no token at all, an answer it should not give): break glass is set up wrong.
    /// Never fails open, whatever `oncall_unreachable` says.
    Misconfigured(String),
}

impl std::fmt::Display for AskFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) | Self::Misconfigured(why) => f.write_str(why),
        }
    }
}

/// What one source answered: who is on call, or why it could not say.
pub type Answer = Result<Vec<OnCall>, AskFailed>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Otherwise {
    Approve,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// Fall back to approval (the default).
    Approve,
    /// Fail open: grant as if on call.
    Allow,
}

/// A rule's gate: who passes at once, and who approves everybody else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    pub oncall: Vec<OncallSource>,
    pub levels: BTreeSet<u32>,
    pub otherwise: Otherwise,
    pub unreachable: Unreachable,
    /// Slack user ids who may approve.
    pub approvers: BTreeSet<String>,
    /// Identity Center groups (display names) whose members may approve.
    pub approver_groups: BTreeSet<String>,
    pub approval_timeout: Duration,
}

/// What the gate says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gated {
    /// Grant at once; why (for the audit trail).
    Allow(String),
    /// Ask the approvers first; why.
    Approve(String),
    /// Refuse; why (shown to the requester).
    Deny(String),
}

impl Gate {
    /// Decides on what the on-call sources answered (`answers`, one per source of
    /// [`Gate::oncall`]; a missing one counts as unreachable) for a requester known by
    /// `emails` (lower-cased).
    pub fn decide(&self, answers: &[(OncallSource, Answer)], emails: &BTreeSet<String>) -> Gated {
        if self.oncall.is_empty() {
            return Gated::Approve("this access always needs approval".into());
        }
        let mut unreachable = Vec::new();
        let mut misconfigured = Vec::new();
        let mut other_level = None;
        for source in &self.oncall {
            match answers.iter().find(|(s, _)| s == source).map(|(_, a)| a) {
                Some(Ok(people)) => {
                    for p in people.iter().filter(|p| emails.contains(&p.email)) {
                        if self.levels.contains(&p.level) {
                            return Gated::Allow(format!("on call: {source} level {}", p.level));
                        }
                        other_level.get_or_insert((source, p.level));
                    }
                }
                Some(Err(AskFailed::Unreachable(why))) => {
                    unreachable.push(format!("{} ({why})", source.service()))
                }
                Some(Err(AskFailed::Misconfigured(why))) => {
                    misconfigured.push(format!("{} ({why})", source.service()))
                }
                None => misconfigured.push(format!("{} (not asked)", source.service())),
            }
        }
        let levels = self
            .levels
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        if !misconfigured.is_empty() {
            // Never fail open on our own mistake: an approver, or no.
            let what = format!(
                "could not ask who is on call: {} (a configuration fault)",
                misconfigured
                    .iter()
                    .chain(&unreachable)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            return if self.has_approvers() {
                Gated::Approve(what)
            } else {
                Gated::Deny(what)
            };
        }
        if !unreachable.is_empty() {
            let what = format!("could not ask who is on call: {}", unreachable.join("; "));
            return match self.unreachable {
                Unreachable::Allow => {
                    Gated::Allow(format!("{what}; allowed (oncall_unreachable = \"allow\")"))
                }
                Unreachable::Approve => Gated::Approve(what),
            };
        }
        let not = match other_level {
            Some((source, level)) => format!(
                "you are on call at level {level} of {source}, and only level {levels} counts"
            ),
            None => format!(
                "you are not on call ({})",
                self.oncall
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        match self.otherwise {
            Otherwise::Approve => Gated::Approve(not),
            Otherwise::Deny => {
                Gated::Deny(format!("{not}: this access is only for whoever is on call"))
            }
        }
    }

    fn has_approvers(&self) -> bool {
        !self.approvers.is_empty() || !self.approver_groups.is_empty()
    }

    /// Whether a request under this gate can ever wait for approval.
    pub fn may_ask(&self) -> bool {
        self.oncall.is_empty()
            || self.otherwise == Otherwise::Approve
            || self.unreachable == Unreachable::Approve
    }

    /// Whether a Slack user (with these groups) may approve under this gate.
    pub fn is_approver(&self, slack_user: &str, groups: &BTreeSet<String>) -> bool {
        self.approvers.contains(slack_user)
            || self.approver_groups.iter().any(|g| groups.contains(g))
    }
}

/// The longest an approval request may wait.
const MAX_APPROVAL_TIMEOUT: Duration = Duration::from_secs_const(24 * 3600);
const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs_const(30 * 60);

/// A rule's gating keys as written.
#[derive(Default)]
pub(super) struct RawGate {
    pub oncall: Vec<String>,
    pub oncall_levels: Option<Vec<u32>>,
    pub otherwise: Option<String>,
    pub oncall_unreachable: Option<String>,
    pub approvers: Vec<String>,
    pub approval_timeout: Option<String>,
}

impl RawGate {
    fn is_empty(&self) -> bool {
        self.oncall.is_empty()
            && self.oncall_levels.is_none()
            && self.otherwise.is_none()
            && self.oncall_unreachable.is_none()
            && self.approvers.is_empty()
            && self.approval_timeout.is_none()
    }

    /// Validates the keys of rule `at` (`rule[3]`); `allow` is whether the rule allows.
    pub(super) fn validate(
        self,
        at: &dyn Fn(&str) -> String,
        allow: bool,
        is_slack_user_id: fn(&str) -> bool,
    ) -> Result<Option<Gate>, PolicyError> {
        if self.is_empty() {
            return Ok(None);
        }
        if !allow {
            let key = if self.oncall.is_empty() {
                "approvers"
            } else {
                "oncall"
            };
            return Err(err(at(key), "only an allow rule can be gated"));
        }
        let mut oncall = Vec::new();
        for (j, s) in self.oncall.iter().enumerate() {
            let source = OncallSource::parse(s).map_err(|e| err(at(&format!("oncall[{j}]")), e))?;
            if oncall.contains(&source) {
                return Err(err(
                    at(&format!("oncall[{j}]")),
                    format!("duplicate entry {s:?}"),
                ));
            }
            oncall.push(source);
        }
        let needs_oncall = |key: &str, given: bool| {
            if given && oncall.is_empty() {
                Err(err(at(key), "only means something with oncall = [...]"))
            } else {
                Ok(())
            }
        };
        needs_oncall("oncall_levels", self.oncall_levels.is_some())?;
        needs_oncall("otherwise", self.otherwise.is_some())?;
        needs_oncall("oncall_unreachable", self.oncall_unreachable.is_some())?;
        let levels = match self.oncall_levels {
            None => BTreeSet::from([1]),
            Some(l) if l.is_empty() => {
                return Err(err(at("oncall_levels"), "must not be empty (default: [1])"));
            }
            Some(l) => {
                let mut set = BTreeSet::new();
                for (j, n) in l.into_iter().enumerate() {
                    if !(1..=20).contains(&n) {
                        return Err(err(
                            at(&format!("oncall_levels[{j}]")),
                            "levels are 1 to 20",
                        ));
                    }
                    if !set.insert(n) {
                        return Err(err(
                            at(&format!("oncall_levels[{j}]")),
                            format!("duplicate level {n}"),
                        ));
                    }
                }
                set
            }
        };
        let otherwise = match self.otherwise.as_deref() {
            None | Some("approve") => Otherwise::Approve,
            Some("deny") => Otherwise::Deny,
            Some(other) => {
                return Err(err(
                    at("otherwise"),
                    format!("expected \"approve\" or \"deny\", got {other:?}"),
                ));
            }
        };
        let unreachable = match self.oncall_unreachable.as_deref() {
            None | Some("approve") => Unreachable::Approve,
            Some("allow") => Unreachable::Allow,
            Some(other) => {
                return Err(err(
                    at("oncall_unreachable"),
                    format!("expected \"approve\" or \"allow\", got {other:?}"),
                ));
            }
        };
        let mut approvers = BTreeSet::new();
        let mut approver_groups = BTreeSet::new();
        for (j, a) in self.approvers.into_iter().enumerate() {
            let here = at(&format!("approvers[{j}]"));
            if a == ANY {
                return Err(err(here, "\"*\" is not allowed: name who approves"));
            }
            if a.trim().is_empty() || a.len() > 1024 || a.chars().any(char::is_control) {
                return Err(err(
                    here,
                    "neither a Slack user id nor a group display name",
                ));
            }
            let fresh = if is_slack_user_id(&a) {
                approvers.insert(a.clone())
            } else {
                approver_groups.insert(a.clone())
            };
            if !fresh {
                return Err(err(here, format!("duplicate entry {a:?}")));
            }
        }
        let may_need_approval = oncall.is_empty()
            || otherwise == Otherwise::Approve
            || unreachable == Unreachable::Approve;
        if may_need_approval && approvers.is_empty() && approver_groups.is_empty() {
            let why = if oncall.is_empty() {
                "needed: nobody could approve"
            } else if otherwise == Otherwise::Approve {
                "needed: who approves when the requester is not on call (or say otherwise = \"deny\")"
            } else {
                "needed: who approves when the on-call service cannot be reached (or say oncall_unreachable = \"allow\")"
            };
            return Err(err(at("approvers"), why));
        }
        if !may_need_approval && self.approval_timeout.is_some() {
            return Err(err(
                at("approval_timeout"),
                "nothing under this rule is ever approved",
            ));
        }
        let approval_timeout = match self.approval_timeout {
            None => DEFAULT_APPROVAL_TIMEOUT,
            Some(t) => Duration::parse_at_most(&t, MAX_APPROVAL_TIMEOUT)
                .map_err(|e| err(at("approval_timeout"), e.to_string()))?,
        };
        Ok(Some(Gate {
            oncall,
            levels,
            otherwise,
            unreachable,
            approvers,
            approver_groups,
            approval_timeout,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(otherwise: Otherwise, unreachable: Unreachable, levels: &[u32]) -> Gate {
        Gate {
            oncall: vec![
                OncallSource::PagerDutySchedule("PSCHED1".into()),
                OncallSource::OpsgenieSchedule("og-1".into()),
            ],
            levels: levels.iter().copied().collect(),
            otherwise,
            unreachable,
            approvers: BTreeSet::from(["U0LEAD".to_owned()]),
            approver_groups: BTreeSet::from(["SRE".to_owned()]),
            approval_timeout: DEFAULT_APPROVAL_TIMEOUT,
        }
    }

    fn on(email: &str, level: u32) -> OnCall {
        OnCall {
            email: email.into(),
            level,
        }
    }

    fn me() -> BTreeSet<String> {
        BTreeSet::from(["alice@example.com".to_owned()])
    }

    fn answers(pd: Answer, og: Answer) -> Vec<(OncallSource, Answer)> {
        vec![
            (OncallSource::PagerDutySchedule("PSCHED1".into()), pd),
            (OncallSource::OpsgenieSchedule("og-1".into()), og),
        ]
    }

    #[test]
    fn whoever_is_on_call_at_a_listed_level_passes() {
        let g = gate(Otherwise::Deny, Unreachable::Approve, &[1]);
        let a = answers(
            Ok(vec![on("bob@example.com", 1)]),
            Ok(vec![on("alice@example.com", 1)]),
        );
        assert_eq!(
            g.decide(&a, &me()),
            Gated::Allow("on call: opsgenie:og-1 level 1".into())
        );
        // On call on one source is enough, even when the other cannot be reached.
        let a = answers(
            Ok(vec![on("alice@example.com", 1)]),
            Err(AskFailed::Unreachable("HTTP 503".into())),
        );
        assert!(matches!(g.decide(&a, &me()), Gated::Allow(_)));
    }

    #[test]
    fn a_secondary_passes_only_when_its_level_is_listed() {
        let a = answers(Ok(vec![on("alice@example.com", 2)]), Ok(vec![]));
        let primary_only = gate(Otherwise::Approve, Unreachable::Approve, &[1]);
        match primary_only.decide(&a, &me()) {
            Gated::Approve(why) => assert!(why.contains("level 2"), "{why}"),
            other => panic!("{other:?}"),
        }
        let both = gate(Otherwise::Approve, Unreachable::Approve, &[1, 2]);
        assert_eq!(
            both.decide(&a, &me()),
            Gated::Allow("on call: pagerduty:PSCHED1 level 2".into())
        );
    }

    #[test]
    fn everybody_else_is_approved_or_denied_as_the_rule_says() {
        let a = answers(Ok(vec![on("bob@example.com", 1)]), Ok(vec![]));
        assert!(matches!(
            gate(Otherwise::Approve, Unreachable::Approve, &[1]).decide(&a, &me()),
            Gated::Approve(_)
        ));
        match gate(Otherwise::Deny, Unreachable::Allow, &[1]).decide(&a, &me()) {
            Gated::Deny(why) => assert!(why.contains("not on call"), "{why}"),
            other => panic!("{other:?}"),
        }
        // No e-mail known: nobody matches.
        assert!(matches!(
            gate(Otherwise::Deny, Unreachable::Allow, &[1]).decide(&a, &BTreeSet::new()),
            Gated::Deny(_)
        ));
    }

    #[test]
    fn an_unreachable_service_falls_back_as_configured() {
        let a = answers(
            Ok(vec![]),
            Err(AskFailed::Unreachable("timed out after 1500 ms".into())),
        );
        match gate(Otherwise::Deny, Unreachable::Approve, &[1]).decide(&a, &me()) {
            Gated::Approve(why) => assert!(why.contains("Opsgenie (timed out"), "{why}"),
            other => panic!("{other:?}"),
        }
        match gate(Otherwise::Deny, Unreachable::Allow, &[1]).decide(&a, &me()) {
            Gated::Allow(why) => assert!(why.contains("oncall_unreachable"), "{why}"),
            other => panic!("{other:?}"),
        }
        // A source nobody asked is a fault of ours: never "not on call", never fail open.
        let g = gate(Otherwise::Deny, Unreachable::Allow, &[1]);
        match g.decide(&[], &me()) {
            Gated::Approve(why) => assert!(why.contains("not asked"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_token_or_a_missing_schedule_never_fails_open() {
        let mut g = gate(Otherwise::Deny, Unreachable::Allow, &[1]);
        let a = answers(
            Ok(vec![]),
            Err(AskFailed::Misconfigured(
                "HTTP 401: the token is refused".into(),
            )),
        );
        match g.decide(&a, &me()) {
            Gated::Approve(why) => assert!(why.contains("configuration fault"), "{why}"),
            other => panic!("falls back to an approver: {other:?}"),
        }
        // With nobody to approve, refused.
        g.approvers.clear();
        g.approver_groups.clear();
        assert!(matches!(g.decide(&a, &me()), Gated::Deny(_)));
        // Whoever is on call on the other source still passes.
        let a = answers(
            Err(AskFailed::Misconfigured("HTTP 404".into())),
            Ok(vec![on("alice@example.com", 1)]),
        );
        assert!(matches!(g.decide(&a, &me()), Gated::Allow(_)));
    }

    #[test]
    fn approvers_without_oncall_always_approve() {
        let mut g = gate(Otherwise::Approve, Unreachable::Approve, &[1]);
        g.oncall.clear();
        assert!(matches!(g.decide(&[], &me()), Gated::Approve(_)));
        assert!(g.is_approver("U0LEAD", &BTreeSet::new()));
        assert!(g.is_approver("U0OTHER", &BTreeSet::from(["SRE".to_owned()])));
        assert!(!g.is_approver("U0OTHER", &BTreeSet::from(["Dev".to_owned()])));
    }

    #[test]
    fn sources_parse() {
        assert_eq!(
            OncallSource::parse("pagerduty:PABC123"),
            Ok(OncallSource::PagerDutySchedule("PABC123".into()))
        );
        assert_eq!(
            OncallSource::parse("pagerduty-escalation-policy:PEP1").map(|s| s.to_string()),
            Ok("pagerduty-escalation-policy:PEP1".into())
        );
        assert_eq!(
            OncallSource::parse("opsgenie:6f1c3c1e-0000-4000-8000-00000000b6a1")
                .map(|s| s.service()),
            Ok("Opsgenie")
        );
        for bad in [
            "pagerduty",
            "pagerduty:",
            "pagerduty:P/../x",
            "victorops:X1",
            "opsgenie:a b",
        ] {
            assert!(OncallSource::parse(bad).is_err(), "{bad}");
        }
    }
}
