//! CloudTrail: one (account, region) source of events, read with `LookupEvents` through a
//! client holding that account's credentials (our own, or the read-only report role assumed
//! in the target account). Pacing, paging and filtering are the report's business
//! ([`crate::report::collect`]); this adapter makes one call.

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_smithy_types::DateTime;
use time::OffsetDateTime;

use crate::error::{Error, from_sdk};

/// At most 50 events a page.
const PAGE_SIZE: i32 = 50;

/// One page of a lookup: the raw CloudTrail records, and the token of the next page.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<String>,
    pub next: Option<String>,
}

/// LookupEvents in one account and region.
#[derive(Clone)]
pub struct Trail {
    client: aws_sdk_cloudtrail::Client,
}

impl Trail {
    pub fn new(client: aws_sdk_cloudtrail::Client) -> Self {
        Self { client }
    }

    /// One page of `user`'s events between `from` and `to`.
    pub async fn page(
        &self,
        user: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
        token: Option<String>,
    ) -> Result<Page, Error> {
        let page = self
            .client
            .lookup_events()
            .lookup_attributes(
                LookupAttribute::builder()
                    .attribute_key(LookupAttributeKey::Username)
                    .attribute_value(user)
                    .build()
                    .map_err(|e| Error::InvalidInput(e.to_string()))?,
            )
            .start_time(DateTime::from_secs(from.unix_timestamp()))
            .end_time(DateTime::from_secs(to.unix_timestamp()))
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| from_sdk("CloudTrail LookupEvents", e))?;
        Ok(Page {
            records: page
                .events()
                .iter()
                .filter_map(|e| e.cloud_trail_event().map(str::to_owned))
                .collect(),
            next: page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        })
    }
}

/// Which events of a source to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The break-glass session in the target account.
    Session,
    /// Portal and sign-in events of the user in the Identity Center account.
    Portal,
    /// Both: the target account is the Identity Center account.
    Both,
}

/// One (account, region) to read, with a client holding that account's credentials.
#[derive(Clone)]
pub struct Source {
    pub label: String,
    pub trail: Trail,
    pub keep: Keep,
}

/// Builds the sources of one report: the target account through its report role, and the
/// Identity Center account, in each region.
#[derive(Clone)]
pub struct Collector {
    sdk: aws_config::SdkConfig,
    regions: Vec<String>,
    own_account: Option<String>,
    role_name: Option<String>,
    /// `aws`, `aws-us-gov` or `aws-cn`: the partition of the Identity Center instance, which
    /// the target accounts share.
    partition: String,
}

impl Collector {
    /// `own_account` is the Identity Center account (where we run); `role_name` the
    /// read-only role in member accounts. Without a role name (or for our own account) our
    /// own credentials read the target account.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        regions: &[String],
        own_account: Option<String>,
        role_name: Option<String>,
        partition: &str,
    ) -> Self {
        Self {
            sdk: sdk.clone(),
            regions: regions.to_vec(),
            own_account,
            role_name,
            partition: partition.to_owned(),
        }
    }

    /// The regions read.
    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    /// The report role's ARN in `account`.
    pub fn role_arn(&self, account: &str, role: &str) -> String {
        format!("arn:{}:iam::{account}:role/{role}", self.partition)
    }

    fn client(&self, conf: &aws_config::SdkConfig, region: &str) -> aws_sdk_cloudtrail::Client {
        let conf = aws_sdk_cloudtrail::config::Builder::from(conf)
            .region(aws_sdk_cloudtrail::config::Region::new(region.to_owned()))
            .build();
        aws_sdk_cloudtrail::Client::from_conf(conf)
    }

    /// The sources for a report on `target_account`.
    pub async fn sources(&self, target_account: &str, request_id: &str) -> Vec<Source> {
        self.sources_of(&[target_account.to_owned()], request_id)
            .await
    }

    /// The sources for a report on a request's accounts: each one through its own reader
    /// role, and the Identity Center account's portal sign-ins once.
    pub async fn sources_of(&self, targets: &[String], request_id: &str) -> Vec<Source> {
        let mut sources = Vec::new();
        for target in targets {
            sources.extend(self.target_sources(target, request_id).await);
        }
        let own_read = targets
            .iter()
            .any(|t| self.own_account.as_deref() == Some(t.as_str()));
        if !own_read {
            let own = self
                .own_account
                .clone()
                .unwrap_or_else(|| "identity-center".into());
            for region in &self.regions {
                sources.push(Source {
                    label: format!("{own}/{region} (portal)"),
                    trail: Trail::new(self.client(&self.sdk, region)),
                    keep: Keep::Portal,
                });
            }
        }
        sources
    }

    /// One target account's sources, one a region (ours also give the portal sign-ins).
    async fn target_sources(&self, target_account: &str, request_id: &str) -> Vec<Source> {
        let same = self.own_account.as_deref() == Some(target_account);
        let target_conf = match (&self.role_name, same) {
            (Some(role), false) => {
                let arn = self.role_arn(target_account, role);
                let provider = aws_config::sts::AssumeRoleProvider::builder(arn)
                    .session_name(format!("break-glass-report-{request_id}"))
                    .configure(&self.sdk)
                    .build()
                    .await;
                self.sdk
                    .to_builder()
                    .credentials_provider(
                        aws_sdk_cloudtrail::config::SharedCredentialsProvider::new(provider),
                    )
                    .build()
            }
            _ => self.sdk.clone(),
        };
        self.regions
            .iter()
            .map(|region| Source {
                label: format!("{target_account}/{region}"),
                trail: Trail::new(self.client(&target_conf, region)),
                keep: if same { Keep::Both } else { Keep::Session },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_report_role_is_in_the_instance_s_partition() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        for (partition, want) in [
            ("aws", "arn:aws:iam::111111111111:role/reader"),
            ("aws-us-gov", "arn:aws-us-gov:iam::111111111111:role/reader"),
            ("aws-cn", "arn:aws-cn:iam::111111111111:role/reader"),
        ] {
            let instance = crate::aws::sso::Instance {
                instance_arn: format!("arn:{partition}:sso:::instance/ssoins-1"),
                identity_store_id: "d-1".into(),
            };
            let c = Collector::new(&sdk, &[], None, None, instance.partition());
            assert_eq!(c.role_arn("111111111111", "reader"), want);
        }
    }
}
