//! Properties (proptest): policy decisions against a reference model, lease arithmetic, and
//! the webhook's first stage never panicking on hostile input.

use std::collections::BTreeSet;

use break_glass::domain::{AccountId, Duration, PermissionSetArn};
use break_glass::handlers::webhook::{LeaseChange, Settings, extended_until, lease_change, screen};
use break_glass::handlers::worker::hold::LeaseState;
use break_glass::policy::{Decision, Policy, Subject, Target};
use proptest::prelude::*;
use time::OffsetDateTime;

const USERS: [&str; 3] = ["U0A", "U0B", "U0C"];
const ACCOUNTS: [&str; 2] = ["111111111111", "222222222222"];
const SETS: [&str; 2] = [
    "arn:aws:sso:::permissionSet/ssoins-1/ps-1",
    "arn:aws:sso:::permissionSet/ssoins-1/ps-2",
];

#[derive(Debug, Clone)]
struct RuleSpec {
    deny: bool,
    users: Vec<usize>, // index into USERS, 3 = "*"
    accounts: Vec<usize>,
    sets: Vec<usize>,
}

fn pick(list: &[&str], idx: &[usize]) -> Vec<String> {
    let mut v: Vec<String> = idx
        .iter()
        .map(|&i| list.get(i).copied().unwrap_or("*").to_owned())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (
        any::<bool>(),
        prop::collection::vec(0usize..4, 1..3),
        prop::collection::vec(0usize..3, 1..3),
        prop::collection::vec(0usize..3, 1..3),
    )
        .prop_map(|(deny, users, accounts, sets)| RuleSpec {
            deny,
            users,
            accounts,
            sets,
        })
}

fn toml(rules: &[RuleSpec]) -> String {
    let q = |v: Vec<String>| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from("version = 1\n");
    for (i, r) in rules.iter().enumerate() {
        out += &format!(
            "[[rule]]\nname = \"r{i}\"\neffect = \"{}\"\nslack_users = [{}]\naccounts = [{}]\npermission_sets = [{}]\n",
            if r.deny { "deny" } else { "allow" },
            q(pick(&USERS, &r.users)),
            q(pick(&ACCOUNTS, &r.accounts)),
            q(pick(&SETS, &r.sets)),
        );
        if !r.deny {
            out += "default_duration = \"1h\"\nmax_duration = \"2h\"\n";
        }
    }
    out
}

fn hit(list: &[String], v: &str) -> bool {
    list.iter().any(|x| x == "*" || x == v)
}

proptest! {
    /// Allowed exactly when some allow rule matches and no deny rule does.
    #[test]
    fn policy_matches_the_reference_model(rules in prop::collection::vec(rule_spec(), 1..6), u in 0usize..3, a in 0usize..2, s in 0usize..2) {
        let policy = Policy::parse(&toml(&rules)).unwrap();
        let (user, account, set) = (USERS[u], ACCOUNTS[a], SETS[s]);
        let matches = |r: &RuleSpec| {
            hit(&pick(&USERS, &r.users), user) && hit(&pick(&ACCOUNTS, &r.accounts), account) && hit(&pick(&SETS, &r.sets), set)
        };
        let expected = rules.iter().any(|r| !r.deny && matches(r)) && !rules.iter().any(|r| r.deny && matches(r));
        let groups = BTreeSet::new();
        let (acct, ps) = (AccountId::parse(account).unwrap(), PermissionSetArn::parse(set).unwrap());
        let got = policy.decide(
            &Subject { slack_user: user, sso_groups: &groups },
            &Target { account: &acct, permission_set: &ps, permission_set_name: None },
        );
        prop_assert_eq!(matches!(got, Decision::Allow(_)), expected);
    }

    /// Extend never goes past the maximum, always moves the end forward when it says yes,
    /// and says no only when the maximum is reached.
    #[test]
    fn extend_is_capped_and_monotonic(start in 0i64..1_000_000, used in 0i64..90_000, late in 0i64..7_200, step in 1u64..86_400, max in 1u64..86_400) {
        let granted = OffsetDateTime::from_unix_timestamp(1_800_000_000 + start).unwrap();
        let expires = granted + time::Duration::seconds(used.min(max as i64));
        let now = expires + time::Duration::seconds(late) - time::Duration::seconds(3_600);
        let cap = granted + time::Duration::seconds(max as i64);
        match extended_until(granted, expires, now, Duration::from_secs(step), Duration::from_secs(max)) {
            Some(until) => {
                prop_assert!(until > expires);
                prop_assert!(until <= cap);
            }
            None => prop_assert!(expires >= cap),
        }
    }

    /// The Hold's look at the lease: wait between 1 s and the re-check interval, release
    /// exactly when the end has come.
    #[test]
    fn lease_state_waits_at_most_the_recheck(left in -10_000i64..100_000, cap in 1u64..86_400) {
        let mut rec = sample_record();
        let now = rec.expires_at.unwrap() - time::Duration::seconds(left);
        let v = LeaseState::of(&rec, now, cap);
        prop_assert_eq!(v.release, left <= 0);
        if !v.release { prop_assert!(v.wait_seconds as i64 <= left, "never waits past the end"); }
        if v.release { prop_assert_eq!(v.wait_seconds, 0); } else { prop_assert!((1..=cap).contains(&v.wait_seconds)); }
        rec.status = break_glass::domain::request::Status::Revoked;
        prop_assert!(LeaseState::of(&rec, now, cap).release);
    }

    /// End is final: whatever the order of End and Extend presses (by anyone), once End was
    /// applied no Extend moves the end again and the lease stays released.
    #[test]
    fn end_is_final(mut presses in prop::collection::vec((any::<bool>(), 0i64..7_200), 1..24)) {
        presses.sort_by_key(|(_, at)| *at);
        let mut rec = sample_record();
        let granted = rec.granted_at.unwrap();
        let mut ended = false;
        for (extend, at) in presses {
            let now = granted + time::Duration::seconds(at);
            let before = rec.expires_at;
            match lease_change(&rec, "U", extend, now) {
                LeaseChange::End => {
                    prop_assert!(!ended && !extend);
                    rec.ended_by = Some("U".into());
                    rec.ended_at = Some(now);
                    rec.expires_at = Some(now);
                    ended = true;
                }
                LeaseChange::Extend(until) => {
                    prop_assert!(!ended, "Extend after End");
                    prop_assert!(until > now && Some(until) > before);
                    rec.expires_at = Some(until);
                }
                LeaseChange::EndedAlready => prop_assert!(ended && !extend),
                LeaseChange::Refused(_) | LeaseChange::Repeated => prop_assert_eq!(rec.expires_at, before),
            }
            if ended {
                prop_assert!(LeaseState::of(&rec, now, 3_600).release);
            }
        }
    }

    /// Hostile bodies and headers never panic the first stage, and without a valid signature
    /// nothing gets past it.
    #[test]
    fn screen_never_panics_and_refuses_the_unsigned(body in prop::collection::vec(any::<u8>(), 0..2048), ts in ".{0,20}", sig in ".{0,80}") {
        let settings = Settings {
            signing_secrets: vec!["prop-signing-secret-0123456789".into()],
            team_id: None,
            api_app_id: None,
            cloudtrail_delay: Duration::from_secs(900),
        };
        let mut h = http::HeaderMap::new();
        if let Ok(v) = ts.parse() { h.insert("x-slack-request-timestamp", v); }
        if let Ok(v) = sig.parse() { h.insert("x-slack-signature", v); }
        h.insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
        let out = screen(&settings, &http::Method::POST, &h, &body, 1_800_000_000);
        prop_assert!(matches!(out, break_glass::handlers::webhook::Screened::Done(_)));
        let _ = break_glass::slack::payload::parse_form(&body);
    }
}

fn sample_record() -> break_glass::domain::request::RequestRecord {
    use break_glass::domain::request::{RequestRecord, Status};
    let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    RequestRecord {
        id: break_glass::domain::RequestId::derive(&["p"]),
        status: Status::Granted,
        version: 3,
        team_id: "T".into(),
        slack_user_id: "U".into(),
        sso_user_name: "u".into(),
        account_id: AccountId::parse("111111111111").unwrap(),
        more_accounts: Vec::new(),
        permission_set_arn: PermissionSetArn::parse(SETS[0]).unwrap(),
        duration: Duration::from_secs(3600),
        rule: "r".into(),
        reason: None,
        max_duration: Duration::from_secs(7200),
        channel_id: None,
        response_url: None,
        notify_channel: None,
        thread_ts: None,
        permission_set_name: None,
        requested_at: t,
        principal_id: Some("p".into()),
        preexisting: false,
        shared: false,
        ended_by: None,
        ended_at: None,
        hold_token: None,
        clicks: Vec::new(),
        creation_request_id: None,
        granted_at: Some(t),
        expires_at: Some(t + time::Duration::hours(1)),
        revoked_at: None,
        reported_at: None,
        end_sessions: false,
        sessions_denied_until: None,
        sessions_lifted_at: None,
        revoke_failed_at: None,
        after_end_checked_at: None,
        reconciled_at: None,
        digest: None,
        review: Default::default(),
        approval: Default::default(),
        incident_id: None,
        incident_url: None,
    }
}
