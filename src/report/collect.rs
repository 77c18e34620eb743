//! Reads a session's events with `cloudtrail:LookupEvents` (CloudTrail Lake is closed to new
//! customers, so we do not depend on it).
//!
//! LookupEvents allows 2 requests per second per account and region and returns at most 50
//! events a page. We ask for exactly the user's events (`Username` = session name) in the
//! window, page through them with pacing, back off on throttling, and read all regions at
//! once. A region that cannot be read completely is named in the result, never dropped.

use std::time::Duration;

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_smithy_types::DateTime;
use time::OffsetDateTime;

use super::{Event, Session};
use crate::error::{Error, from_sdk};

/// At most 2 calls a second per (account, region).
pub const MIN_CALL_INTERVAL: Duration = Duration::from_millis(500);
const PAGE_SIZE: i32 = 50;
const MAX_ATTEMPTS: u32 = 6;

/// What a collection found.
#[derive(Debug, Default)]
pub struct Collection {
    /// The session's events, oldest first.
    pub events: Vec<Event>,
    /// LookupEvents calls made.
    pub calls: usize,
    /// Regions that could not be read completely, with the reason.
    pub incomplete: Vec<String>,
}

#[derive(Clone)]
pub struct Collector {
    regions: Vec<(String, aws_sdk_cloudtrail::Client)>,
}

impl Collector {
    /// One client per region to read, from the shared SDK configuration.
    pub fn new(sdk: &aws_config::SdkConfig, regions: &[String]) -> Self {
        let regions = regions
            .iter()
            .map(|r| {
                let conf = aws_sdk_cloudtrail::config::Builder::from(sdk)
                    .region(aws_sdk_cloudtrail::config::Region::new(r.clone()))
                    .build();
                (r.clone(), aws_sdk_cloudtrail::Client::from_conf(conf))
            })
            .collect();
        Self { regions }
    }

    pub fn from_clients(regions: Vec<(String, aws_sdk_cloudtrail::Client)>) -> Self {
        Self { regions }
    }

    /// Collects the session's events between `from` and `to` in every region, concurrently.
    pub async fn collect(
        &self,
        session: &Session,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Collection {
        let mut tasks = tokio::task::JoinSet::new();
        for (region, client) in self.regions.clone() {
            let user = session.user_name.clone();
            tasks.spawn(async move {
                let result = lookup(&client, &user, from, to).await;
                (region, result)
            });
        }
        let mut out = Collection::default();
        while let Some(joined) = tasks.join_next().await {
            let Ok((region, (records, calls, error))) = joined else {
                out.incomplete.push("a region task panicked".into());
                continue;
            };
            out.calls += calls;
            if let Some(e) = error {
                out.incomplete.push(format!("{region}: {e}"));
            }
            out.events.extend(
                records
                    .iter()
                    .filter_map(|r| Event::from_json(r))
                    .filter(|e| session.owns(e)),
            );
        }
        out.events
            .sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        out.events.dedup_by(|a, b| !a.id.is_empty() && a.id == b.id);
        out
    }
}

/// Pages through one region. Returns the raw records, the number of calls, and the error that
/// stopped it early, if any.
async fn lookup(
    client: &aws_sdk_cloudtrail::Client,
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
            let result = client
                .lookup_events()
                .lookup_attributes(
                    LookupAttribute::builder()
                        .attribute_key(LookupAttributeKey::Username)
                        .attribute_value(user)
                        .build()
                        .expect("key and value are set"),
                )
                .start_time(DateTime::from_secs(from.unix_timestamp()))
                .end_time(DateTime::from_secs(to.unix_timestamp()))
                .max_results(PAGE_SIZE)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| from_sdk("CloudTrail LookupEvents", e));
            match result {
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
        records.extend(
            page.events()
                .iter()
                .filter_map(|e| e.cloud_trail_event().map(str::to_owned)),
        );
        token = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            return (records, calls, None);
        }
    }
}
