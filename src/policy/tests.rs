//! The policy's decisions and the file's validation, rule by rule and key by key.

use super::*;

const PS: &str = "arn:aws:sso:::permissionSet/ssoins-1111/ps-2222";
const PS2: &str = "arn:aws:sso:::permissionSet/ssoins-1111/ps-3333";

fn policy(extra: &str) -> String {
    format!(
        r#"
version = 1
[users]
U0ALICE = "alice@example.com"
U0BOB = "bob@example.com"
[accounts]
"123456789012" = "production"
[[rule]]
name = "oncall"
effect = "allow"
slack_users = ["U0ALICE", "U0BOB", "U0CAROL"]
accounts = ["123456789012"]
permission_sets = ["{PS}"]
default_duration = "1h"
max_duration = "4h"
{extra}"#
    )
}

fn acct(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}
fn ps(s: &str) -> PermissionSetArn {
    PermissionSetArn::parse(s).unwrap()
}
fn ask(
    p: &Policy,
    user: &str,
    groups: &[&str],
    account: &str,
    set: &str,
    name: Option<&str>,
) -> Decision {
    let groups: BTreeSet<String> = groups.iter().map(|g| g.to_string()).collect();
    let (account, set) = (acct(account), ps(set));
    p.decide(
        &Subject {
            slack_user: user,
            sso_groups: &groups,
        },
        &Target {
            account: &account,
            permission_set: &set,
            permission_set_name: name,
        },
    )
}

#[test]
fn allows_what_a_rule_allows() {
    let p = Policy::parse(&policy("")).unwrap();
    let Decision::Allow(g) = ask(&p, "U0ALICE", &[], "123456789012", PS, None) else {
        panic!("expected allow")
    };
    assert_eq!(g.duration.as_secs(), 3600);
    assert_eq!(g.max_duration.as_secs(), 4 * 3600);
    assert_eq!(g.rule, "oncall");
    assert_eq!(p.account_name(&acct("123456789012")), Some("production"));
}

#[test]
fn denies_by_default() {
    let p = Policy::parse(&policy("")).unwrap();
    for (user, account, set) in [
        ("U0MALLORY", "123456789012", PS),
        ("U0ALICE", "210987654321", PS),
        ("U0ALICE", "123456789012", PS2),
    ] {
        assert!(
            matches!(ask(&p, user, &[], account, set, None), Decision::Deny(_)),
            "{user} {account} {set}"
        );
    }
    assert!(!p.may_cover("U0MALLORY"));
    assert!(p.may_cover("U0ALICE"));
}

#[test]
fn a_matching_deny_wins_over_an_earlier_allow() {
    let p = Policy::parse(&policy(
        "[[rule]]\nname = \"not-bob\"\neffect = \"deny\"\nslack_users = [\"U0BOB\"]\naccounts = [\"*\"]\npermission_sets = [\"*\"]\n",
    ))
    .unwrap();
    assert!(matches!(
        ask(&p, "U0ALICE", &[], "123456789012", PS, None),
        Decision::Allow(_)
    ));
    let Decision::Deny(why) = ask(&p, "U0BOB", &[], "123456789012", PS, None) else {
        panic!()
    };
    assert!(why.contains("not-bob"));
}

#[test]
fn groups_and_permission_set_names() {
    let p = Policy::parse(&policy(
        "[[rule]]\nname = \"sre\"\neffect = \"allow\"\nsso_groups = [\"SRE\"]\naccounts = [\"210987654321\"]\npermission_sets = [\"ReadOnly\"]\ndefault_duration = \"30m\"\nmax_duration = \"1h\"\nreason_required = true\n",
    ))
    .unwrap();
    assert!(p.uses_permission_set_names());
    assert!(p.may_cover("U0ANYONE"), "a group rule may cover anyone");
    assert_eq!(p.groups().into_iter().collect::<Vec<_>>(), ["SRE"]);
    let Decision::Allow(g) = ask(
        &p,
        "U0ANYONE",
        &["SRE"],
        "210987654321",
        PS2,
        Some("ReadOnly"),
    ) else {
        panic!("group member with the named permission set")
    };
    assert!(g.reason_required);
    assert!(matches!(
        ask(
            &p,
            "U0ANYONE",
            &["Dev"],
            "210987654321",
            PS2,
            Some("ReadOnly")
        ),
        Decision::Deny(_)
    ));
    assert!(matches!(
        ask(&p, "U0ANYONE", &["SRE"], "210987654321", PS2, Some("Admin")),
        Decision::Deny(_)
    ));
    assert!(matches!(
        ask(&p, "U0ANYONE", &["SRE"], "210987654321", PS2, None),
        Decision::Deny(_)
    ));
}

#[test]
fn validation_names_the_field() {
    let cases = [
        (
            policy("").replace("\"123456789012\"]", "\"12345\"]"),
            "rule[0].accounts[0]",
        ),
        (
            policy("").replace(&format!("\"{PS}\""), "\"arn:aws:iam::123456789012:role/x\""),
            "rule[0].permission_sets[0]",
        ),
        (
            policy("").replace("\"1h\"", "\"1 hour\""),
            "rule[0].default_duration",
        ),
        (
            policy("").replace("\"1h\"", "\"5h\""),
            "rule[0].default_duration",
        ),
        (
            policy("").replace("\"U0BOB\", ", "\"U0ALICE\", "),
            "rule[0].slack_users[1]",
        ),
        (
            policy("").replace("\"U0BOB\", ", "\"alice\", "),
            "rule[0].slack_users[1]",
        ),
        (policy("colour = \"red\""), "line 16"),
        (policy("").replace("version = 1", "version = 2"), "version"),
        (
            policy(
                "[[rule]]\nname = \"oncall\"\neffect = \"deny\"\nslack_users = [\"*\"]\naccounts = [\"*\"]\npermission_sets = [\"*\"]",
            ),
            "rule[1].name",
        ),
        (
            policy("").replace("effect = \"allow\"", "effect = \"permit\""),
            "rule[0].effect",
        ),
        (
            policy("").replace("\"123456789012\" = ", "\"1234\" = "),
            "accounts.1234",
        ),
        ("version = 1\n".to_owned(), "rule"),
        ("version = \n".to_owned(), "line 1"),
        (
            policy("standing_access = \"delete\""),
            "rule[0].standing_access",
        ),
        (
            policy("standing_access = \"remove\"").replace("\"123456789012\"]", "\"*\"]"),
            "rule[0].standing_access",
        ),
        (
            policy(
                "[[rule]]\nname = \"x\"\neffect = \"deny\"\nslack_users = [\"*\"]\naccounts = [\"*\"]\npermission_sets = [\"*\"]\nend_sessions = true",
            ),
            "rule[1].end_sessions",
        ),
        (
            policy(
                "[[rule]]\nname = \"x\"\neffect = \"deny\"\nslack_users = [\"*\"]\naccounts = [\"*\"]\npermission_sets = [\"*\"]\nstanding_access = \"warn\"",
            ),
            "rule[1].standing_access",
        ),
        (
            format!(
                "{}\n[reconcile]\nnotify_channel = \"#security\"",
                policy("")
            ),
            "reconcile.notify_channel",
        ),
        (policy("max_accounts = 0"), "rule[0].max_accounts"),
        (policy("max_accounts = 11"), "rule[0].max_accounts"),
        (
            policy(
                "[[rule]]\nname = \"x\"\neffect = \"deny\"\nslack_users = [\"*\"]\naccounts = [\"*\"]\npermission_sets = [\"*\"]\nmax_accounts = 2",
            ),
            "rule[1].max_accounts",
        ),
    ];
    for (text, field) in cases {
        let e = Policy::parse(&text).expect_err(field);
        assert_eq!(e.field, field, "{e}");
        assert!(!e.to_string().contains('\n'), "one line: {e}");
    }
}

#[test]
fn the_review_section() {
    let review = |body: &str| format!("{}\n[review]\n{body}\n", policy(""));
    let p = Policy::parse(&review(
        "channel = \"C0REVIEWS\"\nreviewers = [\"U0SECLEAD\", \"Security Team\"]\nwithin = \"48h\"\nescalate_to = \"<!subteam^S0SECLEADS>\"",
    ))
    .unwrap();
    let r = p.review.clone().unwrap();
    assert_eq!(r.channel, "C0REVIEWS");
    assert_eq!(r.within.as_secs(), 48 * 3600);
    assert_eq!(
        r.escalate_to,
        Some(Escalation::Mention("<!subteam^S0SECLEADS>".into()))
    );
    let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert!(r.is_reviewer("U0SECLEAD", &groups(&[])));
    assert!(r.is_reviewer("U0ANYONE", &groups(&["Security Team"])));
    assert!(!r.is_reviewer("U0ANYONE", &groups(&["SRE"])));
    let p = Policy::parse(&review(
        "channel = \"C0REVIEWS\"\nreviewers = [\"U0SECLEAD\"]\nwithin = \"3s\"\nescalate_to = \"C0SECLEADS\"",
    ))
    .unwrap();
    let r = p.review.unwrap();
    assert_eq!(
        r.escalate_to,
        Some(Escalation::Channel("C0SECLEADS".into()))
    );
    assert!(r.reviewer_groups.is_empty());
    assert!(Policy::parse(&policy("")).unwrap().review.is_none());
    let ok = "channel = \"C0REVIEWS\"\nreviewers = [\"U0SECLEAD\"]\nwithin = \"24h\"";
    for (body, field) in [
        (ok.replace("C0REVIEWS", "#reviews"), "review.channel"),
        (ok.replace("[\"U0SECLEAD\"]", "[]"), "review.reviewers"),
        (
            ok.replace("[\"U0SECLEAD\"]", "[\"*\"]"),
            "review.reviewers[0]",
        ),
        (
            ok.replace("[\"U0SECLEAD\"]", "[\"U0SECLEAD\", \"U0SECLEAD\"]"),
            "review.reviewers[1]",
        ),
        (ok.replace("\"24h\"", "\"a day\""), "review.within"),
        (ok.replace("\"24h\"", "\"200h\""), "review.within"),
        (
            format!("{ok}\nescalate_to = \"@security\""),
            "review.escalate_to",
        ),
        (format!("{ok}\ncolour = \"red\""), "line 21"),
        (
            "channel = \"C0REVIEWS\"\nreviewers = [\"U0SECLEAD\"]".to_owned(),
            "line 17",
        ),
    ] {
        let e = Policy::parse(&review(&body)).expect_err(field);
        assert_eq!(e.field, field, "{e}");
    }
}

#[test]
fn end_sessions_and_standing_access_are_per_rule() {
    let text = format!(
        "{}[[rule]]\nname = \"ro\"\neffect = \"allow\"\nslack_users = [\"U0ALICE\"]\naccounts = [\"123456789012\"]\npermission_sets = [\"ReadOnly\"]\ndefault_duration = \"30m\"\nmax_duration = \"1h\"\nend_sessions = true\nstanding_access = \"remove\"\n[reconcile]\nnotify_channel = \"C0RECONCILE\"\n",
        policy("")
    );
    let p = Policy::parse(&text).unwrap();
    assert_eq!(p.reconcile_channel.as_deref(), Some("C0RECONCILE"));
    let Decision::Allow(g) = ask(&p, "U0ALICE", &[], "123456789012", PS, None) else {
        panic!("expected allow")
    };
    assert!(!g.end_sessions, "opt-in: off unless the rule says so");
    let Decision::Allow(g) = ask(&p, "U0ALICE", &[], "123456789012", PS2, Some("ReadOnly")) else {
        panic!("expected allow")
    };
    assert!(g.end_sessions);
    let prod = acct("123456789012");
    assert_eq!(
        p.standing_access(&prod, &ps(PS), Some("Admin")),
        (Standing::Warn, None),
        "warn is the default"
    );
    assert_eq!(
        p.standing_access(&prod, &ps(PS2), Some("ReadOnly")),
        (Standing::Remove, Some("ro"))
    );
    assert_eq!(
        p.standing_access(&acct("210987654321"), &ps(PS2), Some("ReadOnly")),
        (Standing::Warn, None),
        "only where the rule applies"
    );
    let pairs: Vec<(String, String)> = p
        .break_glass_pairs()
        .into_iter()
        .map(|(a, p)| (a.to_string(), p))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("123456789012".to_owned(), "ReadOnly".to_owned()),
            ("123456789012".to_owned(), PS.to_owned()),
        ]
    );
}

#[test]
fn gating_keys() {
    let gated = |keys: &str| Policy::parse(&policy(&format!("notify_channel = \"C0BG\"\n{keys}")));
    let p =
        gated("oncall = [\"pagerduty:PSCHED1\"]\napprovers = [\"U0LEAD\", \"Leads\"]\n").unwrap();
    let g = p.rules[0].gate.clone().expect("gated");
    assert_eq!(g.levels, BTreeSet::from([1]), "primary only by default");
    assert_eq!(
        (g.otherwise, g.unreachable),
        (Otherwise::Approve, Unreachable::Approve)
    );
    assert_eq!(g.approval_timeout.as_secs(), 1800);
    assert!(g.approvers.contains("U0LEAD") && g.approver_groups.contains("Leads"));
    assert!(
        p.groups().contains("Leads"),
        "approver groups are looked up"
    );
    assert_eq!(p.services(), (true, false));
    assert_eq!(
        p.oncall_sources(&acct("123456789012"), &ps(PS)),
        vec![OncallSource::PagerDutySchedule("PSCHED1".into())]
    );
    assert!(p.oncall_sources(&acct("123456789012"), &ps(PS2)).is_empty());
    let p = gated("oncall = [\"opsgenie:og-1\"]\noncall_levels = [1, 2]\notherwise = \"deny\"\noncall_unreachable = \"allow\"\nincident_required = true\n").unwrap();
    let g = p.rules[0].gate.clone().unwrap();
    assert_eq!(g.levels, BTreeSet::from([1, 2]));
    assert_eq!(
        (g.otherwise, g.unreachable),
        (Otherwise::Deny, Unreachable::Allow)
    );
    assert!(p.rules[0].incident_required);
    assert_eq!(
        p.services(),
        (true, true),
        "an incident is checked in PagerDuty"
    );
    assert!(Policy::parse(&policy("")).unwrap().rules[0].gate.is_none());
    let p = gated("approvers = [\"U0LEAD\"]\napproval_timeout = \"2h\"\n").unwrap();
    assert!(matches!(
        p.rules[0]
            .gate
            .as_ref()
            .unwrap()
            .decide(&[], &BTreeSet::new()),
        Gated::Approve(_)
    ));
    for (keys, field) in [
        ("oncall = [\"pagerduty:PSCHED1\"]\n", "rule[0].approvers"),
        (
            "oncall = [\"pagerduty:PSCHED1\"]\notherwise = \"deny\"\n",
            "rule[0].approvers",
        ),
        (
            "oncall = [\"pagerduty:PSCHED1\"]\notherwise = \"deny\"\noncall_unreachable = \"allow\"\napproval_timeout = \"1h\"\n",
            "rule[0].approval_timeout",
        ),
        (
            "oncall = [\"pagerduty:P1\", \"pagerduty:P1\"]\napprovers = [\"U0LEAD\"]\n",
            "rule[0].oncall[1]",
        ),
        (
            "oncall = [\"pagerduty\"]\napprovers = [\"U0LEAD\"]\n",
            "rule[0].oncall[0]",
        ),
        (
            "oncall = [\"splunk:X\"]\napprovers = [\"U0LEAD\"]\n",
            "rule[0].oncall[0]",
        ),
        (
            "oncall_levels = [1]\napprovers = [\"U0LEAD\"]\n",
            "rule[0].oncall_levels",
        ),
        (
            "oncall = [\"pagerduty:P1\"]\noncall_levels = []\napprovers = [\"U0LEAD\"]\n",
            "rule[0].oncall_levels",
        ),
        (
            "oncall = [\"pagerduty:P1\"]\noncall_levels = [0]\napprovers = [\"U0LEAD\"]\n",
            "rule[0].oncall_levels[0]",
        ),
        (
            "oncall = [\"pagerduty:P1\"]\noncall_levels = [2, 2]\napprovers = [\"U0LEAD\"]\n",
            "rule[0].oncall_levels[1]",
        ),
        (
            "oncall = [\"pagerduty:P1\"]\notherwise = \"maybe\"\napprovers = [\"U0LEAD\"]\n",
            "rule[0].otherwise",
        ),
        (
            "oncall = [\"pagerduty:P1\"]\noncall_unreachable = \"deny\"\napprovers = [\"U0LEAD\"]\n",
            "rule[0].oncall_unreachable",
        ),
        (
            "oncall = [\"pagerduty:P1\"]\napprovers = [\"*\"]\n",
            "rule[0].approvers[0]",
        ),
        (
            "oncall = [\"pagerduty:P1\"]\napprovers = [\"U0LEAD\", \"U0LEAD\"]\n",
            "rule[0].approvers[1]",
        ),
        (
            "oncall = [\"pagerduty:P1\"]\napprovers = [\"U0LEAD\"]\napproval_timeout = \"25h\"\n",
            "rule[0].approval_timeout",
        ),
        (
            "otherwise = \"deny\"\napprovers = [\"U0LEAD\"]\n",
            "rule[0].otherwise",
        ),
    ] {
        let e = gated(keys).unwrap_err();
        assert_eq!(e.field, field, "{keys}: {e}");
    }
    let no_channel = Policy::parse(&policy("approvers = [\"U0LEAD\"]\n")).unwrap_err();
    assert_eq!(
        no_channel.field, "rule[0].notify_channel",
        "approval requests go somewhere"
    );
    assert!(
        Policy::parse(&policy(
            "oncall = [\"pagerduty:P1\"]\notherwise = \"deny\"\noncall_unreachable = \"allow\"\n"
        ))
        .is_ok(),
        "a rule that never asks needs no channel"
    );
    let deny = format!(
        "{}[[rule]]\nname = \"no\"\neffect = \"deny\"\nslack_users = [\"U0BOB\"]\naccounts = [\"*\"]\npermission_sets = [\"*\"]\napprovers = [\"U0LEAD\"]\n",
        policy("")
    );
    assert_eq!(Policy::parse(&deny).unwrap_err().field, "rule[1].approvers");
    let deny = deny.replace("approvers = [\"U0LEAD\"]", "incident_required = true");
    assert_eq!(
        Policy::parse(&deny).unwrap_err().field,
        "rule[1].incident_required"
    );
}

#[test]
fn reviewer_groups_are_looked_up_even_when_no_rule_names_them() {
    let p = Policy::parse(&format!(
        "{}\n[review]\nchannel = \"C0REVIEW\"\nreviewers = [\"Security\"]\nwithin = \"1h\"\n",
        policy("")
    ))
    .unwrap();
    assert!(p.groups().contains("Security"), "{:?}", p.groups());
}

#[test]
fn several_accounts_are_each_decided_and_capped_by_the_rule() {
    let subject = |user: &'static str| Subject {
        slack_user: user,
        sso_groups: Box::leak(Box::new(BTreeSet::new())),
    };
    let two = [acct("123456789012"), acct("210987654321")];
    let both_accounts = |extra: &str| {
        Policy::parse(&policy(extra).replace(
            "accounts = [\"123456789012\"]",
            "accounts = [\"123456789012\", \"210987654321\"]",
        ))
        .unwrap()
    };
    let accounts = |r: Result<Grant, AccountsRefused>| match r {
        Err(AccountsRefused::Accounts(why)) => why,
        other => panic!("{other:?}"),
    };

    // max_accounts defaults to 1: nothing changes until a rule allows more.
    let p = both_accounts("");
    assert_eq!(p.rules[0].max_accounts, 1);
    let why = accounts(p.decide_accounts(&subject("U0ALICE"), &two, &ps(PS), None));
    assert!(why.contains("at most 1 account(s)"), "{why}");
    let one = p.decide_accounts(&subject("U0ALICE"), &two[..1], &ps(PS), None);
    assert_eq!(one.unwrap().rule, "oncall");

    let p = both_accounts("max_accounts = 2");
    let g = p
        .decide_accounts(&subject("U0ALICE"), &two, &ps(PS), None)
        .unwrap();
    assert_eq!((g.rule.as_str(), g.max_accounts), ("oncall", 2));
    // One account the policy refuses refuses the request, and is named.
    let three = [two[0].clone(), acct("333333333333")];
    let why = accounts(p.decide_accounts(&subject("U0ALICE"), &three, &ps(PS), None));
    assert!(why.starts_with("account 333333333333: "), "{why}");
    // Twice the same account is no second account.
    let twice = [two[0].clone(), two[0].clone()];
    let why = accounts(p.decide_accounts(&subject("U0ALICE"), &twice, &ps(PS), None));
    assert!(why.contains("chosen twice"), "{why}");
    // A deny rule on one account refuses it, even when the other is fine.
    let p = both_accounts(
        "max_accounts = 2\n[[rule]]\nname = \"no-network\"\neffect = \"deny\"\nslack_users = [\"*\"]\naccounts = [\"210987654321\"]\npermission_sets = [\"*\"]",
    );
    let why = accounts(p.decide_accounts(&subject("U0ALICE"), &two, &ps(PS), None));
    assert!(
        why.contains("210987654321") && why.contains("no-network"),
        "{why}"
    );
    // Accounts under different rules are asked for separately: each rule has its own terms.
    let p = Policy::parse(&policy(
        "max_accounts = 2\n[[rule]]\nname = \"network\"\neffect = \"allow\"\nslack_users = [\"U0ALICE\"]\naccounts = [\"210987654321\"]\npermission_sets = [\"*\"]\ndefault_duration = \"1h\"\nmax_duration = \"1h\"\nmax_accounts = 2",
    ))
    .unwrap();
    let why = accounts(p.decide_accounts(&subject("U0ALICE"), &two, &ps(PS), None));
    assert!(
        why.contains("\"network\"") && why.contains("separately"),
        "{why}"
    );
    // One account refused: the permission set's refusal, as it always was.
    assert!(matches!(
        p.decide_accounts(&subject("U0BOB"), &[acct("333333333333")], &ps(PS), None),
        Err(AccountsRefused::PermissionSet(_))
    ));
}
