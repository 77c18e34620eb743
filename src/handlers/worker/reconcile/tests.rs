//! Tests of the reconciler: its verdicts on every kind of holder and execution.
use super::*;
use crate::time_util::from_rfc3339;

fn rec(status: Status) -> RequestRecord {
    let mut r = crate::aws::store::tests::sample();
    r.status = status;
    r
}

fn ran(status: &str, stopped_at: Option<OffsetDateTime>) -> Execution {
    Execution {
        status: status.into(),
        stopped_at,
    }
}

#[test]
fn judging_lease_holders() {
    let grace = time::Duration::minutes(15);
    let end = from_rfc3339("2026-11-24T09:00:00Z").unwrap();
    let at = |m: i64| end + time::Duration::minutes(m);
    let granted = rec(Status::Granted);
    let running = ran("RUNNING", None);
    let live = |v: Verdict| matches!(v, Verdict::Live(_));
    assert!(live(judge(Some(&granted), Some(&running), at(-30), grace)));
    assert!(
        live(judge(Some(&granted), Some(&running), at(10), grace)),
        "the state machine is trusted within the grace"
    );
    assert_eq!(
        judge(Some(&granted), Some(&running), at(20), grace),
        Verdict::Over(
            "its lease ended at 2026-11-24T09:00:00Z and its execution has not revoked it 20 min later"
                .into()
        )
    );
    for (status, why) in [
        ("ABORTED", "its execution was stopped"),
        ("FAILED", "its execution failed"),
        ("TIMED_OUT", "its execution timed out"),
        ("SUCCEEDED", "its execution is SUCCEEDED, not running"),
    ] {
        assert_eq!(
            judge(
                Some(&granted),
                Some(&ran(status, Some(at(-31)))),
                at(-30),
                grace
            ),
            Verdict::Over(why.into()),
            "a granted lease whose execution is {status} is over even before it ends"
        );
    }
    // Stopped while granting: its grant task may still be creating the assignment.
    let granting = rec(Status::Granting);
    assert!(live(judge(Some(&granting), Some(&running), at(600), grace)));
    let stopped = ran("ABORTED", Some(at(-30)));
    assert!(live(judge(Some(&granting), Some(&stopped), at(-25), grace)));
    assert_eq!(
        judge(Some(&granting), Some(&stopped), at(-10), grace),
        Verdict::Over("its execution was stopped".into())
    );
    // Not started (yet): the webhook records the request before it starts the execution.
    let requested = rec(Status::Requested);
    let asked = requested.requested_at;
    assert!(live(judge(
        Some(&requested),
        None,
        asked + time::Duration::seconds(5),
        grace
    )));
    assert_eq!(
        judge(
            Some(&requested),
            None,
            asked + time::Duration::hours(1),
            grace
        ),
        Verdict::Over("its execution never started".into())
    );
    // Granted without an execution: the reconciler looks at the wrong state machine.
    assert!(matches!(
        judge(Some(&granted), None, at(-30), grace),
        Verdict::Doubt(_)
    ));
    assert_eq!(
        judge(Some(&rec(Status::Revoked)), None, at(0), grace),
        Verdict::Over("its request is already revoked".into())
    );
    assert!(!live(judge(None, Some(&running), at(0), grace)));
}
