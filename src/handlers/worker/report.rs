//! Report: the session's CloudTrail, rendered to HTML and text, mailed (the security team's
//! copy on its own), and summarised in the request's Slack thread.

use time::OffsetDateTime;

use super::output::Reported;
use super::{ACTOR, Worker};
use crate::aws::mail::Mail;
use crate::domain::RequestId;
use crate::domain::request::{Audit, Change, Status};
use crate::error::Error;
use crate::report::Session;
use crate::report::collect::collect;
use crate::report::render::{Header, View, csv};
use crate::slack::messages::{self, Flagged};

impl Worker {
    /// Reads the session's CloudTrail events and mails the report.
    pub async fn report(&self, id: &RequestId) -> Result<Reported, Error> {
        let rec = self.load(id).await?;
        match rec.status {
            Status::Reported => {
                return Ok(Reported {
                    already_reported: true,
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
        let (from, to) = (granted - margin, revoked + margin);
        let ps_name = self
            .sso
            .permission_set_name(&self.instance, &rec.permission_set_arn)
            .await?;
        let session = Session {
            account_id: rec.account_id.as_str().to_owned(),
            permission_set_name: ps_name.clone(),
            user_name: rec.sso_user_name.clone(),
        };
        let sources = self
            .collector
            .sources(rec.account_id.as_str(), id.as_str())
            .await;
        let found = collect(sources, &session, from, to).await;
        let header = Header {
            user: rec.sso_user_name.clone(),
            account_id: rec.account_id.as_str().to_owned(),
            account_name: self.policy.account_name(&rec.account_id).map(str::to_owned),
            permission_set: ps_name,
            from: granted,
            to: revoked,
            request_id: Some(id.as_str().to_owned()),
            reason: rec.reason.clone(),
            slack_link: rec
                .notify_channel
                .as_ref()
                .or(rec.channel_id.as_ref())
                .map(|c| {
                    format!(
                        "https://slack.com/app_redirect?team={}&channel={c}",
                        rec.team_id
                    )
                }),
        };
        let view = View::new(
            &header,
            &found.events,
            &found.portal,
            &found.incomplete,
            self.max_rows,
        );
        let render_err =
            |e: askama::Error| Error::InvalidInput(format!("rendering the report: {e}"));
        let html = view.html().map_err(render_err)?;
        let text = view.text().map_err(render_err)?;
        let full = (view.omitted > 0).then(|| csv(&found.events));
        let filename = format!("break-glass-{id}.csv");
        let subject = view.subject();
        let attachment = full.as_deref().map(|c| (filename.as_str(), c));
        // The security team's copy goes on its own: nothing about the requester's address can
        // stop it.
        let team_copy = Mail {
            to: &self.recipients,
            subject: &subject,
            html: &html,
            text: &text,
            attachment,
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
        let rec = self
            .store
            .advance(
                &rec,
                Status::Reported,
                vec![Change::ReportedAt(OffsetDateTime::now_utc())],
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
        let flagged: Vec<Flagged> = found
            .events
            .iter()
            .filter_map(|e| {
                crate::report::flag(e).map(|why| Flagged {
                    time: e.time,
                    why,
                    service: e.service(),
                    action: &e.name,
                })
            })
            .collect();
        let counts = (view.total, view.writes, view.errors);
        let recipients = to.join(", ");
        let incomplete = !found.incomplete.is_empty();
        self.tell(rec, |a| {
            messages::reported(a, counts, &flagged, &recipients, incomplete)
        })
        .await;
        Ok(Reported {
            events: Some(found.events.len()),
            calls: found.calls,
            incomplete: found.incomplete,
            message_id: Some(message_id),
            already_reported: false,
        })
    }
}
