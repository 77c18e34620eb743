//! Report: the session's CloudTrail, rendered to HTML and text, mailed (the security team's
//! copy on its own), and summarised in the request's Slack thread.

use time::OffsetDateTime;

use super::output::Reported;
use super::{ACTOR, Worker};
use crate::aws::mail::{Attachment, Mail};
use crate::domain::RequestId;
use crate::domain::request::{Audit, Change, Status};
use crate::error::Error;
use crate::report::Session;
use crate::report::analysis::Coverage;
use crate::report::collect::collect;
use crate::report::render::{Header, View, csv};
use crate::slack::messages::{self, Flagged};
use crate::time_util::rfc3339;

impl Worker {
    /// Reads the session's CloudTrail events and mails the report.
    pub async fn report(&self, id: &RequestId) -> Result<Reported, Error> {
        let rec = self.load(id).await?;
        match rec.status {
            Status::Reported => {
                // A retried Report still posts the review request if the first stopped
                // before it, and says when to look after the end: neither is lost because
                // the first answer was.
                let rec = self.request_review(rec).await;
                let after_end_check_at = match rec.revoked_at {
                    Some(revoked) => {
                        self.after_end_check_at(&rec.permission_set_arn, revoked)
                            .await
                    }
                    None => None,
                };
                return Ok(Reported {
                    already_reported: true,
                    after_end_check_at,
                    ..Reported::default()
                });
            }
            Status::Revoked => {}
            other => {
                return Err(Error::StateConflict(format!(
                    "request {id} is {} and cannot be reported before it is revoked",
                    other.as_str()
                )));
            }
        }
        let (Some(granted), Some(revoked)) = (rec.granted_at, rec.revoked_at) else {
            return Err(Error::StateConflict(format!(
                "request {id} was never granted"
            )));
        };
        let margin = time::Duration::seconds(self.report_margin.as_secs() as i64);
        // Up to now: what the session did after its access ended (its credentials outlive the
        // assignment) is reported too, apart.
        let (from, to) = (
            granted - margin,
            (revoked + margin).max(OffsetDateTime::now_utc()),
        );
        let (session, ps_name) = self.session_of(&rec).await?;
        let sources = self
            .collector
            .sources_of(&account_ids(&rec), id.as_str())
            .await;
        let mut found = collect(sources, &session, from, to).await;
        let after_end = found
            .events
            .split_off(found.events.partition_point(|e| e.time <= revoked));
        let header = Header {
            slack_link: rec
                .notify_channel
                .as_ref()
                .or(rec.channel_id.as_ref())
                .map(|c| crate::slack::review::channel_link(&rec.team_id, c)),
            ..self.header_of(&rec, ps_name, granted, revoked)
        };
        let view = View::new(
            &header,
            &found.events,
            &found.portal,
            &after_end,
            self.coverage_of(&found),
            self.max_rows,
        );
        let render_err =
            |e: askama::Error| Error::InvalidInput(format!("rendering the report: {e}"));
        let html = view.html().map_err(render_err)?;
        let text = view.text().map_err(render_err)?;
        let full = (view.omitted > 0).then(|| csv(&found.events));
        let csv_name = format!("break-glass-{id}.csv");
        let json = view
            .json()
            .map_err(|e| Error::InvalidInput(format!("the report's JSON: {e}")))?;
        let json_name = format!("break-glass-{id}.json");
        let subject = view.subject();
        let mut attachments = vec![Attachment {
            filename: &json_name,
            content_type: "application/json",
            content: &json,
        }];
        if let Some(c) = full.as_deref() {
            attachments.push(Attachment {
                filename: &csv_name,
                content_type: "text/csv",
                content: c,
            });
        }
        // The security team's copy goes on its own: nothing about the requester's address can
        // stop it.
        let team_copy = Mail {
            to: &self.recipients,
            subject: &subject,
            html: &html,
            text: &text,
            attachments: &attachments,
        };
        let message_id = self.mailer.send(&team_copy).await?;
        let mut to = self.recipients.clone();
        let mut requester_copy = String::new();
        if self.report_to_requester
            && let Some(principal) = &rec.principal_id
        {
            requester_copy = match self.sso.user_email(&self.instance, principal).await {
                Ok(Some(email)) if to.contains(&email) => String::new(),
                Ok(Some(email)) => match crate::aws::mail::valid_address(&email) {
                    Err(e) => format!("; the requester's copy was not sent: {e}"),
                    Ok(()) => match self
                        .mailer
                        .send(&Mail {
                            to: std::slice::from_ref(&email),
                            ..team_copy
                        })
                        .await
                    {
                        Ok(m) => {
                            to.push(email);
                            format!("; the requester's copy: SES {m}")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the requester's copy of the report failed");
                            format!("; the requester's copy failed: {e}")
                        }
                    },
                },
                Ok(None) => "; the requester has no e-mail address".to_owned(),
                Err(e) => {
                    tracing::warn!(error = %e, "no e-mail for the requester");
                    format!("; no e-mail for the requester: {e}")
                }
            };
        }
        let rec_permission_set = rec.permission_set_arn.clone();
        let mut changes = vec![
            Change::ReportedAt(OffsetDateTime::now_utc()),
            Change::Digest(super::review::digest_of(&view, &to.join(", "))),
        ];
        if self.policy.review.is_some() {
            // In the pending-review index from the moment it is reported: if posting the
            // review request fails, the reconcile finds it there and posts it.
            changes.push(Change::ReviewPending(true));
        }
        let rec = self
            .store
            .advance(
                &rec,
                Status::Reported,
                changes,
                Audit {
                    event: "reported",
                    actor: ACTOR,
                    detail: format!(
                        "{} events in {} LookupEvents calls, mailed to {} (SES {message_id}){requester_copy}{}",
                        found.events.len(),
                        found.calls,
                        self.recipients.join(", "),
                        if found.incomplete.is_empty() {
                            ""
                        } else {
                            "; collection incomplete"
                        }
                    ),
                },
            )
            .await?;
        tracing::info!(events = found.events.len(), calls = found.calls, "reported");
        let flagged: Vec<Flagged> = view
            .flags
            .iter()
            .map(|f| Flagged {
                severity: f.severity.as_str(),
                title: &f.title,
                service: &f.service,
                action: &f.action,
                count: f.count,
                failed: f.failed,
            })
            .collect();
        let summary = messages::ReportSummary {
            events: view.total,
            writes: view.writes,
            errors: view.errors,
            severities: view.severity_line(),
            flagged: &flagged,
            left_behind: view.left_behind.len(),
            after_end: view.after_end.len(),
            recipients: &to.join(", "),
            incomplete: !found.incomplete.is_empty(),
        };
        let rec = self.tell(rec, |a| messages::reported(a, &summary)).await;
        self.note_on_incident(&rec, &view, &to.join(", ")).await;
        self.request_review(rec).await;
        let after_end_check_at = self.after_end_check_at(&rec_permission_set, revoked).await;
        Ok(Reported {
            events: Some(found.events.len()),
            calls: found.calls,
            incomplete: found.incomplete,
            message_id: Some(message_id),
            already_reported: false,
            after_end_check_at,
        })
    }

    /// Adds the report's summary to the PagerDuty incident the request named, as a note.
    /// Best effort: the report is mailed and recorded whatever PagerDuty says.
    async fn note_on_incident(
        &self,
        rec: &crate::domain::request::RequestRecord,
        view: &View<'_>,
        mailed_to: &str,
    ) {
        let (Some(incident), Some(oncall)) = (&rec.incident_id, &self.oncall) else {
            return;
        };
        let mut note = format!(
            "Break-glass report for request {}: {} had {} on account{} {} from {} to {}. {} events, {} writes, {} errors, {} flagged ({}).",
            rec.id,
            rec.sso_user_name,
            view.header.permission_set,
            if rec.more_accounts.is_empty() {
                ""
            } else {
                "s"
            },
            view.header.accounts_line(),
            view.from,
            view.to,
            view.total,
            view.writes,
            view.errors,
            view.flagged,
            view.severity_line(),
        );
        for f in view.flags.iter().take(3) {
            note.push_str(&format!(
                "\n- {} ({} x{})",
                f.title,
                f.severity.as_str(),
                f.count
            ));
        }
        if !view.left_behind.is_empty() {
            note.push_str(&format!(
                "\n{} thing(s) left behind.",
                view.left_behind.len()
            ));
        }
        note.push_str(&format!("\nThe full report was mailed to {mailed_to}."));
        match oncall.add_note(incident, &note).await {
            Ok(()) => tracing::info!(incident, "report added to the incident"),
            Err(e) => {
                tracing::warn!(incident, error = %e, "could not add the report to the incident")
            }
        }
    }

    /// What the collection covered: the configured regions, its calls, what it could not read.
    pub(super) fn coverage_of(&self, found: &crate::report::collect::Collection) -> Coverage {
        Coverage::new(
            self.collector.regions().to_vec(),
            Some(found.calls),
            &found.incomplete,
        )
    }

    /// Whose events belong to the request's report (the session), and the permission set's
    /// name it was found by.
    pub(super) async fn session_of(
        &self,
        rec: &crate::domain::request::RequestRecord,
    ) -> Result<(Session, String), Error> {
        let ps_name = self
            .sso
            .permission_set_name(&self.instance, &rec.permission_set_arn)
            .await?;
        let session = Session {
            account_id: rec.account_id.as_str().to_owned(),
            more_accounts: rec
                .more_accounts
                .iter()
                .map(|p| p.account.as_str().to_owned())
                .collect(),
            permission_set_name: ps_name.clone(),
            user_name: rec.sso_user_name.clone(),
        };
        Ok((session, ps_name))
    }

    /// The report's header for the request (no Slack link: the caller adds one if wanted).
    pub(super) fn header_of(
        &self,
        rec: &crate::domain::request::RequestRecord,
        permission_set: String,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Header {
        Header {
            user: rec.sso_user_name.clone(),
            account_id: rec.account_id.as_str().to_owned(),
            account_name: self.policy.account_name(&rec.account_id).map(str::to_owned),
            more_accounts: rec
                .more_accounts
                .iter()
                .map(|p| {
                    let name = self.policy.account_name(&p.account).map(str::to_owned);
                    (p.account.as_str().to_owned(), name)
                })
                .collect(),
            permission_set,
            from,
            to,
            request_id: Some(rec.id.as_str().to_owned()),
            reason: rec.reason.clone(),
            slack_link: None,
            // Only an https link is ever a link (PagerDuty's own `html_url`).
            incident: rec.incident_id.clone().zip(
                rec.incident_url
                    .clone()
                    .filter(|u| u.starts_with("https://")),
            ),
            ended_at: rec.ended_at,
        }
    }

    /// When every credential the session was issued has expired and CloudTrail has caught up:
    /// the revoke plus the permission set's session duration plus the CloudTrail delay. `None`
    /// when Identity Center does not say (the look after the end is then skipped, not guessed).
    async fn after_end_check_at(
        &self,
        permission_set: &crate::domain::PermissionSetArn,
        revoked: OffsetDateTime,
    ) -> Option<String> {
        let session = self
            .sso
            .session_duration(&self.instance, permission_set)
            .await
            .inspect_err(
                |e| tracing::warn!(error = %e, "no session duration: no look after the end"),
            )
            .ok()?;
        Some(rfc3339(
            revoked + session + std::time::Duration::from_secs(self.cloudtrail_delay.as_secs()),
        ))
    }
}

/// The request's account ids, for the CloudTrail sources.
pub(super) fn account_ids(rec: &crate::domain::request::RequestRecord) -> Vec<String> {
    rec.accounts()
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect()
}
