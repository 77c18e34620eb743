//! Step Functions tasks. The payload's `type` picks the task; every task is idempotent and
//! fenced by the request's status and version, so a duplicated or retried delivery never
//! acts twice.

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::aws::mail::Mailer;
use crate::aws::sso::{Instance, PermissionSetNames, Sso};
use crate::aws::store::{Audit, RequestRecord, Status, Store, flag, s, ts};
use crate::domain::RequestId;
use crate::error::Error;
use crate::policy::Policy;
use crate::report::Session;
use crate::report::collect::Collector;
use crate::report::render::{Header, View};
use crate::slack::api::SlackApi;
use crate::slack::messages::{self, About, Flagged};
use crate::time_util::rfc3339;

/// A task as Step Functions sends it: `{"type": "grant", "request_id": "bg-…"}`.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Task {
    Grant { request_id: RequestId },
    Revoke { request_id: RequestId },
    Report { request_id: RequestId },
}

impl Task {
    pub fn parse(v: Value) -> Result<Self, Error> {
        serde_json::from_value(v).map_err(|e| Error::InvalidInput(format!("task payload: {e}")))
    }
}

pub struct Worker {
    pub store: Store,
    pub sso: Sso,
    pub names: PermissionSetNames,
    pub slack: SlackApi,
    pub instance: Instance,
    pub collector: Collector,
    pub mailer: Mailer,
    pub recipients: Vec<String>,
    pub policy: Policy,
    pub report_margin: crate::domain::Duration,
}

const ACTOR: &str = "break-glass";

impl Worker {
    pub async fn handle(&self, payload: Value) -> Result<Value, Error> {
        match Task::parse(payload)? {
            Task::Grant { request_id } => self.grant(&request_id).await,
            Task::Revoke { request_id } => self.revoke(&request_id).await,
            Task::Report { request_id } => self.report(&request_id).await,
        }
    }

    async fn load(&self, id: &RequestId) -> Result<RequestRecord, Error> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("request {id}")))
    }

    /// Creates the assignment and waits until it is provisioned. Returns `granted_at` and
    /// `expires_at` (the Hold state waits until the latter).
    pub async fn grant(&self, id: &RequestId) -> Result<Value, Error> {
        let mut rec = self.load(id).await?;
        if rec.status == Status::Requested {
            let principal = match &rec.principal_id {
                Some(p) => p.clone(),
                None => self.sso.user_id(&self.instance, &rec.sso_user_name).await?,
            };
            let ps_name = match &rec.permission_set_name {
                Some(n) => n.clone(),
                None => self.names.name_of(&rec.permission_set_arn).await?,
            };
            // Standing access is recorded before we touch anything, and never deleted by us.
            let preexisting = self
                .sso
                .has_assignment(
                    &self.instance,
                    &rec.account_id,
                    &rec.permission_set_arn,
                    &principal,
                )
                .await?;
            rec = self
                .store
                .advance(
                    &rec,
                    Status::Granting,
                    vec![
                        ("principal_id", s(&principal)),
                        ("preexisting", flag(preexisting)),
                        ("permission_set_name", s(&ps_name)),
                    ],
                    Audit {
                        event: "granting",
                        actor: ACTOR,
                        detail: if preexisting {
                            format!("principal {principal} already holds this assignment (standing access)")
                        } else {
                            format!("assigning to principal {principal}")
                        },
                    },
                )
                .await?;
        }
        if rec.status == Status::Granting {
            if let (Some(principal), false) = (rec.principal_id.clone(), rec.preexisting) {
                // A retried task resumes here and polls the provisioning request it started.
                let creation = match rec.creation_request_id.clone() {
                    Some(c) => c,
                    None => {
                        let c = self
                            .sso
                            .create_assignment(
                                &self.instance,
                                &rec.account_id,
                                &rec.permission_set_arn,
                                &principal,
                            )
                            .await?;
                        rec = self
                            .store
                            .advance(
                                &rec,
                                Status::Granting,
                                vec![("creation_request_id", s(&c))],
                                Audit {
                                    event: "assignment_requested",
                                    actor: ACTOR,
                                    detail: format!("CreateAccountAssignment request {c}"),
                                },
                            )
                            .await?;
                        c
                    }
                };
                self.sso.wait_created(&self.instance, &creation).await?;
            }
            let now = OffsetDateTime::now_utc();
            let expires = now + time::Duration::seconds(rec.duration.as_secs() as i64);
            rec = self
                .store
                .advance(
                    &rec,
                    Status::Granted,
                    vec![("granted_at", ts(now)), ("expires_at", ts(expires))],
                    Audit {
                        event: "granted",
                        actor: ACTOR,
                        detail: format!(
                            "{} on {} until {}",
                            rec.permission_set_arn,
                            rec.account_id,
                            rfc3339(expires)
                        ),
                    },
                )
                .await?;
            tracing::info!(request = %id, expires = %rfc3339(expires), "granted");
            rec = self.tell(rec, |a| messages::granted(a, expires)).await;
        }
        match (rec.granted_at, rec.expires_at) {
            (Some(g), Some(e)) => Ok(json!({"granted_at": rfc3339(g), "expires_at": rfc3339(e)})),
            _ => Err(Error::StateConflict(format!(
                "request {id} is {} and was never granted",
                rec.status.as_str()
            ))),
        }
    }

    /// Removes the assignment we created (never standing access) and waits until it is gone.
    /// Safe to call in any state: it is also where every failure after Grant ends up.
    pub async fn revoke(&self, id: &RequestId) -> Result<Value, Error> {
        let rec = self.load(id).await?;
        let rec = match rec.status {
            Status::Revoked | Status::Reported => rec,
            Status::Requested | Status::Granting | Status::Granted => {
                let deleted = match (&rec.principal_id, rec.preexisting, rec.status) {
                    (Some(p), false, Status::Granting | Status::Granted) => {
                        if let Some(req) = self
                            .sso
                            .delete_assignment(
                                &self.instance,
                                &rec.account_id,
                                &rec.permission_set_arn,
                                p,
                            )
                            .await?
                        {
                            self.sso.wait_deleted(&self.instance, &req).await?;
                        }
                        "assignment deleted"
                    }
                    (_, true, _) => {
                        "standing access kept: the assignment existed before break glass"
                    }
                    _ => "nothing to delete: access was never granted",
                };
                let now = OffsetDateTime::now_utc();
                let rec = self
                    .store
                    .advance(
                        &rec,
                        Status::Revoked,
                        vec![("revoked_at", ts(now))],
                        Audit {
                            event: "revoked",
                            actor: ACTOR,
                            detail: deleted.to_owned(),
                        },
                    )
                    .await?;
                tracing::info!(request = %id, outcome = deleted, "revoked");
                let why = if rec.expires_at.is_some_and(|e| now < e) {
                    "ended early"
                } else {
                    "expired"
                };
                self.tell(rec, |a| messages::revoked(a, why)).await
            }
        };
        Ok(json!({"revoked_at": rec.revoked_at.map(rfc3339)}))
    }

    /// Reads the session's CloudTrail events and mails the report.
    pub async fn report(&self, id: &RequestId) -> Result<Value, Error> {
        let rec = self.load(id).await?;
        match rec.status {
            Status::Reported => return Ok(json!({"events": null, "already_reported": true})),
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
        let found = self.collector.collect(&session, from, to).await;
        let header = Header {
            user: rec.sso_user_name.clone(),
            account_id: rec.account_id.as_str().to_owned(),
            account_name: self.policy.account_name(&rec.account_id).map(str::to_owned),
            permission_set: ps_name,
            from: granted,
            to: revoked,
            request_id: Some(id.as_str().to_owned()),
        };
        let view = View::new(&header, &found.events, &found.incomplete);
        let render_err =
            |e: askama::Error| Error::InvalidInput(format!("rendering the report: {e}"));
        let html = view.html().map_err(render_err)?;
        let text = view.text().map_err(render_err)?;
        let message_id = self
            .mailer
            .send(&self.recipients, &view.subject(), &html, &text)
            .await?;
        let rec = self
            .store
            .advance(
                &rec,
                Status::Reported,
                vec![("reported_at", ts(OffsetDateTime::now_utc()))],
                Audit {
                    event: "reported",
                    actor: ACTOR,
                    detail: format!(
                        "{} events in {} LookupEvents calls, mailed to {} (SES {message_id}){}",
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
        tracing::info!(request = %id, events = found.events.len(), calls = found.calls, "reported");
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
        let recipients = self.recipients.join(", ");
        let incomplete = !found.incomplete.is_empty();
        self.tell(rec, |a| {
            messages::reported(a, counts, &flagged, &recipients, incomplete)
        })
        .await;
        Ok(json!({
            "events": found.events.len(),
            "calls": found.calls,
            "incomplete": found.incomplete,
            "message_id": message_id,
        }))
    }
}

impl Worker {
    /// Tells the requester (through the click's `response_url`, else a direct message) and
    /// the policy's channel (in the request's thread; the first message starts it). Best
    /// effort: a failed follow-up is logged and never fails the task. Returns the record
    /// as it is afterwards (with the thread's `ts` once known).
    async fn tell(
        &self,
        rec: RequestRecord,
        message: impl FnOnce(&About<'_>) -> Value,
    ) -> RequestRecord {
        let account_name = self.policy.account_name(&rec.account_id).map(str::to_owned);
        let about = About {
            request_id: rec.id.as_str(),
            user: &rec.sso_user_name,
            account_id: rec.account_id.as_str(),
            account_name: account_name.as_deref(),
            permission_set: rec
                .permission_set_name
                .as_deref()
                .unwrap_or(rec.permission_set_arn.as_str()),
        };
        let message = message(&about);
        let mut reply = message.clone();
        reply["response_type"] = json!("ephemeral");
        reply["replace_original"] = json!(false);
        let answered = match &rec.response_url {
            Some(url) => self.slack.respond(url, &reply).await,
            None => false,
        };
        if !answered
            && let Err(e) = self
                .slack
                .post_message(&rec.slack_user_id, &message, None)
                .await
        {
            tracing::warn!(request = %rec.id, error = %e, "could not tell the requester");
        }
        let Some(channel) = rec.notify_channel.clone() else {
            return rec;
        };
        match self
            .slack
            .post_message(&channel, &message, rec.thread_ts.as_deref())
            .await
        {
            Ok(ts) if rec.thread_ts.is_none() && !ts.is_empty() => {
                let status = rec.status;
                let audit = Audit {
                    event: "announced",
                    actor: ACTOR,
                    detail: format!("thread {ts} in {channel}"),
                };
                match self
                    .store
                    .advance(&rec, status, vec![("thread_ts", s(&ts))], audit)
                    .await
                {
                    Ok(updated) => updated,
                    Err(e) => {
                        tracing::warn!(request = %rec.id, error = %e, "could not record the thread");
                        rec
                    }
                }
            }
            Ok(_) => rec,
            Err(e) => {
                tracing::warn!(request = %rec.id, error = %e, "could not post to the channel");
                rec
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_payloads() {
        let id = RequestId::derive(&["a"]);
        assert_eq!(
            Task::parse(json!({"type": "grant", "request_id": id.as_str()})).unwrap(),
            Task::Grant {
                request_id: id.clone()
            }
        );
        for bad in [
            json!({"type": "explode", "request_id": id.as_str()}),
            json!({"type": "grant"}),
            json!({"type": "grant", "request_id": "../../etc"}),
            json!({"type": "grant", "request_id": id.as_str(), "extra": 1}),
            json!("grant"),
        ] {
            let e = Task::parse(bad).unwrap_err();
            assert_eq!(e.name(), "InvalidInput");
        }
    }
}
