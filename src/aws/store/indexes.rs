//! The table's two sparse indexes, read: the requests waiting for review
//! (`reviews_pending`, by report time) and the requests of one UTC day (`by_day`, by request
//! time). Queries only, every page; the items are requests, mapped by `requests.rs`.

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::requests::{BY_DAY_INDEX, PENDING, REVIEW_PENDING, REVIEWS_PENDING_INDEX, from_item};
use super::{Store, s, ts};
use crate::domain::request::RequestRecord;
use crate::domain::review::day_of;
use crate::error::{Error, from_sdk};

impl Store {
    /// Every request an index holds under `condition`, page after page.
    async fn query_index(
        &self,
        index: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<Vec<RequestRecord>, Error> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(condition);
            for (name, attribute) in names {
                query = query.expression_attribute_names(*name, *attribute);
            }
            for (name, value) in values {
                query = query.expression_attribute_values(*name, value.clone());
            }
            let page = query
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| from_sdk("DynamoDB Query", e))?;
            for item in page.items() {
                out.push(from_item(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// The requests waiting for review, oldest report first (the pending-review index holds
    /// nothing else).
    pub async fn pending_reviews(&self) -> Result<Vec<RequestRecord>, Error> {
        self.query_index(
            REVIEWS_PENDING_INDEX,
            "#p = :pending",
            &[("#p", REVIEW_PENDING)],
            &[(":pending", s(PENDING))],
        )
        .await
    }

    /// The requests made on one UTC day (`YYYY-MM-DD`) between `from` and `to` (inclusive),
    /// oldest first.
    pub async fn requests_on(
        &self,
        day: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<RequestRecord>, Error> {
        self.query_index(
            BY_DAY_INDEX,
            "#d = :day AND requested_at BETWEEN :from AND :to",
            &[("#d", "day")],
            &[(":day", s(day)), (":from", ts(from)), (":to", ts(to))],
        )
        .await
    }

    /// The requests of the last `days` UTC days up to `now` (today included), newest first:
    /// one Query a day, all at once (a Home view is answered within Slack's 3 s).
    pub async fn requests_since(
        &self,
        days: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<RequestRecord>, Error> {
        let from = now - time::Duration::days(i64::from(days.max(1)) - 1);
        let start = from.date().midnight().assume_offset(from.offset());
        let mut reads = tokio::task::JoinSet::new();
        for i in 0..days.max(1) {
            let (store, day) = (
                self.clone(),
                day_of(start + time::Duration::days(i64::from(i))),
            );
            reads.spawn(async move { store.requests_on(&day, start, now).await });
        }
        let mut out = Vec::new();
        while let Some(read) = reads.join_next().await {
            out.extend(read.map_err(|e| Error::Transient(format!("a day's read: {e}")))??);
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.requested_at));
        Ok(out)
    }
}
