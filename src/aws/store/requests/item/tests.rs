//! A request item written and read back, field for field.

use super::*;
use crate::aws::store::tests::sample;

#[test]
fn item_round_trip() {
    let r = sample();
    assert_eq!(from_item(&to_item(&r)).unwrap(), r);
    let mut reviewed = sample();
    reviewed.digest = Some(crate::domain::review::Digest {
        events: 12,
        flags: [1, 2, 0, 3],
        top: vec!["CloudTrail logging stopped".into()],
        left_behind: 1,
        after_end: 0,
        mailed_to: "security@example.com".into(),
    });
    reviewed.review = Review {
        pending: true,
        channel: Some("C0REVIEW".into()),
        ts: Some("1.000001".into()),
        requested_at: from_rfc3339("2026-11-24T10:00:00Z"),
        outcome: Some(Outcome::FollowUp),
        by: Some("U0REVIEWER".into()),
        at: from_rfc3339("2026-11-24T10:05:00Z"),
        note: Some("ask why".into()),
        reminded_at: None,
        escalated_at: from_rfc3339("2026-11-24T12:00:00Z"),
    };
    reviewed.reconciled_at = from_rfc3339("2026-11-24T09:30:00Z");
    reviewed.more_accounts = vec![
        crate::domain::request::Part {
            account: AccountId::parse("210987654321").unwrap(),
            preexisting: false,
            shared: true,
            creation_request_id: Some("c-1".into()),
        },
        crate::domain::request::Part::new(AccountId::parse("333333333333").unwrap()),
    ];
    reviewed.approval = Approval {
        state: Some(ApprovalState::Approved),
        why: Some("not on call".into()),
        timeout: Some(Duration::from_secs(1800)),
        token: Some("tok".into()),
        channel: Some("C0SEC".into()),
        ts: Some("2.000001".into()),
        copies: vec![crate::domain::approval::Posted {
            channel: "D0LEAD".into(),
            ts: "2.000002".into(),
        }],
        by: Some("U0LEAD".into()),
        at: from_rfc3339("2026-11-24T08:01:00Z"),
    };
    reviewed.incident_id = Some("Q1ABC".into());
    reviewed.incident_url = Some("https://acme.pagerduty.com/incidents/Q1ABC".into());
    let item = to_item(&reviewed);
    assert_eq!(item["day"], s("2026-11-24"));
    assert_eq!(item[REVIEW_PENDING], s(PENDING));
    assert_eq!(from_item(&item).unwrap(), reviewed);
    // Out of the index once reviewed: the attribute is removed, not set to something else.
    assert_eq!(
        attribute(&Change::ReviewPending(false)),
        (REVIEW_PENDING, None)
    );
    assert!(!to_item(&r).contains_key(REVIEW_PENDING));
    assert!(!to_item(&r).contains_key("approval_copies"));
    let mut item = to_item(&r);
    item.insert("status".into(), s("exploded"));
    assert!(from_item(&item).is_err());
    item = to_item(&r);
    item.remove("account_id");
    assert!(from_item(&item).is_err());
}
