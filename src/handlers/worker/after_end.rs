//! After the end: credentials the session was issued before its access ended stay valid for the
//! permission set's session duration (unless the rule ends sessions). Once they have all
//! expired, and CloudTrail has caught up, the session's events after the end are looked for: a
//! critical addendum is mailed and the thread told when there are any, and the thread told in
//! one line when there are none. The report itself already lists what it found up to its time.

use time::OffsetDateTime;

use super::output::AfterEndChecked;
use super::{ACTOR, Worker};
use crate::aws::mail::Mail;
use crate::domain::RequestId;
use crate::domain::request::{Audit, Change};
use crate::error::Error;
use crate::report::collect::collect;
use crate::report::render::View;
use crate::slack::messages::{self, UsedAfter};
use crate::time_util::rfc3339;

impl Worker {
    pub async fn after_end(&self, id: &RequestId) -> Result<AfterEndChecked, Error> {
        let rec = self.load(id).await?;
        if rec.after_end_checked_at.is_some() {
            return Ok(AfterEndChecked {
                already_checked: true,
                ..AfterEndChecked::default()
            });
        }
        let (Some(granted), Some(revoked)) = (rec.granted_at, rec.revoked_at) else {
            return Err(Error::StateConflict(format!(
                "request {id} was never granted and revoked"
            )));
        };
        let (session, ps_name) = self.session_of(&rec).await?;
        let session_duration = self
            .sso
            .session_duration(&self.instance, &rec.permission_set_arn)
            .await?;
        let until = revoked + session_duration;
        let margin = time::Duration::seconds(self.report_margin.as_secs() as i64);
        let sources = self
            .collector
            .sources_of(&super::report::account_ids(&rec), id.as_str())
            .await;
        let found = collect(sources, &session, revoked, until + margin).await;
        let used: Vec<_> = found
            .events
            .iter()
            .filter(|e| e.time > revoked)
            .cloned()
            .collect();
        let detail = if used.is_empty() {
            format!("no use after the end (checked until {})", rfc3339(until))
        } else {
            tracing::warn!(events = used.len(), "used after access ended");
            let header = self.header_of(&rec, ps_name, granted, revoked);
            let view = View::new(
                &header,
                &[],
                &[],
                &used,
                self.coverage_of(&found),
                self.max_rows,
            );
            let render_err =
                |e: askama::Error| Error::InvalidInput(format!("rendering the addendum: {e}"));
            let subject = format!(
                "Break-glass addendum: {} used {} on {} after the access ended — {} events",
                header.user,
                header.permission_set,
                rec.accounts_text(),
                used.len()
            );
            let message_id = self
                .mailer
                .send(&Mail {
                    to: &self.recipients,
                    subject: &subject,
                    html: &view.html().map_err(render_err)?,
                    text: &view.text().map_err(render_err)?,
                    attachments: &[],
                })
                .await?;
            format!(
                "{} events after the end, until {}: addendum mailed to {} (SES {message_id})",
                used.len(),
                rfc3339(until),
                self.recipients.join(", ")
            )
        };
        let mut changes = vec![Change::AfterEndCheckedAt(OffsetDateTime::now_utc())];
        // What the reviewer is shown counts it too: this look covers the report's window
        // after the end and more, so its count replaces the report's when larger.
        let grown = rec
            .digest
            .clone()
            .filter(|d| used.len() > d.after_end)
            .map(|mut d| {
                d.after_end = used.len();
                d
            });
        if let Some(d) = grown.clone() {
            changes.push(Change::Digest(d));
        }
        let rec = self
            .store
            .note(
                &rec,
                changes,
                Audit {
                    event: if used.is_empty() {
                        "after_end_checked"
                    } else {
                        "used_after_end"
                    },
                    actor: ACTOR,
                    detail,
                },
            )
            .await?;
        let rows: Vec<UsedAfter> = used
            .iter()
            .map(|e| UsedAfter {
                time: e.time,
                service: e.service(),
                action: &e.name,
                resource: &e.resource,
                source_ip: &e.source_ip,
            })
            .collect();
        if grown.is_some() {
            self.update_review_request(&rec).await;
        }
        self.tell(rec, |a| messages::after_end(a, &rows, until))
            .await;
        Ok(AfterEndChecked {
            events: used.len(),
            until: Some(rfc3339(until)),
            already_checked: false,
        })
    }
}
