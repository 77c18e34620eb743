//! Reads a session's events with `cloudtrail:LookupEvents` (CloudTrail Lake is closed to new
//! customers, so we do not depend on it).
//!
//! Two sources, each in every configured region (IAM and other global services log in
//! us-east-1):
//! - the **target account**, through a read-only role assumed there (`REPORT_ROLE_NAME`), for
//!   what the user did with the permission set;
//! - the **Identity Center account** (our own credentials), for their portal sign-ins.
//!
//! LookupEvents allows 2 requests per second per account and region and returns at most 50
//! events a page. We ask for exactly the user's events (`Username`) in the window, page
//! through them with pacing, back off on throttling, and read all (account, region) pairs at
//! once: exactly ⌈N/50⌉ calls for N events when nothing throttles. A source that cannot be
//! read completely is named in the result, never dropped silently.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Event, Session};
use crate::aws::cloudtrail::{Keep, Source, Trail};
use crate::error::Error;

/// At most 2 calls a second per (account, region).
pub const MIN_CALL_INTERVAL: Duration = Duration::from_millis(500);
const MAX_ATTEMPTS: u32 = 6;

/// What a collection found.
#[derive(Debug, Default)]
pub struct Collection {
    /// The session's events in the target account, oldest first.
    pub events: Vec<Event>,
    /// The user's Identity Center portal events (sign-ins), oldest first.
    pub portal: Vec<Event>,
    /// LookupEvents calls made.
    pub calls: usize,
    /// Sources that could not be read completely, with the reason.
    pub incomplete: Vec<String>,
}

/// Collects the session's events between `from` and `to` from every source, concurrently.
pub async fn collect(
    sources: Vec<Source>,
    session: &Session,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Collection {
    let mut tasks = tokio::task::JoinSet::new();
    for source in sources {
        let user = session.user_name.clone();
        tasks.spawn(async move {
            let result = lookup(&source.trail, &user, from, to).await;
            (source.label, source.keep, result)
        });
    }
    let mut out = Collection::default();
    while let Some(joined) = tasks.join_next().await {
        let Ok((label, keep, (records, calls, error))) = joined else {
            out.incomplete
                .push("a CloudTrail source failed unexpectedly".into());
            continue;
        };
        out.calls += calls;
        if let Some(e) = error {
            out.incomplete.push(format!("{label}: {e}"));
        }
        for e in records.iter().filter_map(|r| Event::from_json(r)) {
            if matches!(keep, Keep::Session | Keep::Both) && session.owns(&e) {
                out.events.push(e);
            } else if matches!(keep, Keep::Portal | Keep::Both) && session.signed_in(&e) {
                out.portal.push(e);
            }
        }
    }
    for list in [&mut out.events, &mut out.portal] {
        list.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        list.dedup_by(|a, b| !a.id.is_empty() && a.id == b.id);
    }
    out.incomplete.sort();
    out
}

/// Pages through one source. Returns the raw records, the number of calls, and the error
/// that stopped it early, if any.
async fn lookup(
    trail: &Trail,
    user: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> (Vec<String>, usize, Option<Error>) {
    let mut records = Vec::new();
    let mut calls = 0;
    let mut token: Option<String> = None;
    let mut last_call: Option<tokio::time::Instant> = None;
    loop {
        let mut attempt = 0;
        let page = loop {
            if let Some(t) = last_call {
                tokio::time::sleep_until(t + MIN_CALL_INTERVAL).await;
            }
            last_call = Some(tokio::time::Instant::now());
            calls += 1;
            attempt += 1;
            match trail.page(user, from, to, token.clone()).await {
                Ok(page) => break page,
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    let backoff = Duration::from_millis(500 * 2u64.pow(attempt - 1))
                        .min(Duration::from_secs(8));
                    tracing::warn!(attempt, ?backoff, error = %e, "LookupEvents retry");
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => return (records, calls, Some(e)),
            }
        };
        records.extend(page.records);
        token = page.next;
        if token.is_none() {
            return (records, calls, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{ALICE, record};
    use aws_sdk_cloudtrail::Client;
    use aws_sdk_cloudtrail::operation::lookup_events::LookupEventsOutput;
    use aws_sdk_cloudtrail::types::Event as CtEvent;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn session() -> Session {
        Session {
            account_id: "123456789012".into(),
            more_accounts: Vec::new(),
            permission_set_name: "BreakGlassAdmin".into(),
            user_name: "alice@example.com".into(),
        }
    }

    fn page(n: usize, start: usize, next: Option<&str>) -> LookupEventsOutput {
        let events = (start..start + n)
            .map(|i| {
                let mut r = record("GetObject", "s3.amazonaws.com", ALICE, true);
                r["eventID"] = serde_json::json!(format!("e{i}"));
                if i % 10 == 0 {
                    // Someone else's session, under a look-alike name.
                    r["userIdentity"]["arn"] = serde_json::json!(format!("{ALICE}.evil"));
                }
                CtEvent::builder().cloud_trail_event(r.to_string()).build()
            })
            .collect();
        LookupEventsOutput::builder()
            .set_events(Some(events))
            .set_next_token(next.map(str::to_owned))
            .build()
    }

    fn source(client: Client) -> Vec<Source> {
        vec![Source {
            label: "123456789012/us-east-1".into(),
            trail: Trail::new(client),
            keep: Keep::Session,
        }]
    }

    fn window() -> (OffsetDateTime, OffsetDateTime) {
        let t = crate::time_util::from_rfc3339("2026-11-24T08:00:00Z").unwrap();
        (t, t + time::Duration::hours(1))
    }

    /// 120 events are 3 pages: exactly 3 calls, at most 2 a second, the look-alike session
    /// filtered out.
    #[tokio::test(start_paused = true)]
    async fn pages_paces_and_keeps_exactly_the_session() {
        let rule = mock!(Client::lookup_events)
            .sequence()
            .output(|| page(50, 0, Some("t1")))
            .output(|| page(50, 50, Some("t2")))
            .output(|| page(20, 100, None))
            .build();
        let client = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, [&rule]);
        let (from, to) = window();
        let started = tokio::time::Instant::now();
        let c = collect(source(client), &session(), from, to).await;
        assert_eq!(rule.num_calls(), 3);
        assert_eq!(c.calls, 3);
        assert!(
            started.elapsed() >= MIN_CALL_INTERVAL * 2,
            "paced: {:?}",
            started.elapsed()
        );
        assert_eq!(c.events.len(), 108, "12 look-alike events dropped");
        assert!(c.incomplete.is_empty());
    }

    /// Throttling backs off and retries; the collection is complete.
    #[tokio::test(start_paused = true)]
    async fn backs_off_on_throttling() {
        let throttled = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
        let rule = mock!(Client::lookup_events)
            .sequence()
            .http_status(400, Some(throttled.into()))
            .times(2)
            .output(|| page(5, 0, None))
            .build();
        let client = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, [&rule], |c| c
            .retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled()));
        let (from, to) = window();
        let c = collect(source(client), &session(), from, to).await;
        assert_eq!(c.events.len(), 4);
        assert_eq!(c.calls, 3);
        assert!(c.incomplete.is_empty());
    }

    /// A source that keeps failing is reported as incomplete, with what was read before.
    #[tokio::test(start_paused = true)]
    async fn a_partial_collection_says_so() {
        let denied = r#"{"__type":"AccessDeniedException","message":"not authorized"}"#;
        let rule = mock!(Client::lookup_events)
            .sequence()
            .output(|| page(50, 0, Some("t1")))
            .http_status(400, Some(denied.into()))
            .build();
        let client = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, [&rule]);
        let (from, to) = window();
        let c = collect(source(client), &session(), from, to).await;
        assert_eq!(c.events.len(), 45);
        assert_eq!(c.incomplete.len(), 1);
        assert!(
            c.incomplete[0].starts_with("123456789012/us-east-1: ")
                && c.incomplete[0].contains("AccessDenied"),
            "{:?}",
            c.incomplete
        );
    }
}
