#!/usr/bin/env node
// The break-glass CDK app. Context values (-c key=value) configure it; see lib/config.ts.
//   cdk synth -c example=true                       offline, example values, no Lambda build needed
//                                                   (the policy is read by the break-glass binary:
//                                                   `cargo build` first, or `make synth`)
//   cdk deploy BreakGlassStack -c ssoInstanceArn=… -c identityStoreId=… -c reportSender=… \
//     -c reportRecipients=… -c slackTeamId=… -c slackApiAppId=… [-c alarmEmail=…]
//     [-c pagerdutyApiUrl=https://… -c opsgenieApiUrl=https://api.eu.opsgenie.com -c oncallCacheSeconds=0..300]
//     [-c listOrganizationAccounts=false -c accountsCacheSeconds=0..3600]
//     [-c reconcilePairsPerRun=1..100000 -c identityCenterCallsPerSecond=…]     (calls a second: more than 0, at most 50)
//   The on-call tokens are not context: put them in the OncallSecretArn output's secret.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { addStacks } from '../lib/app';

const app = new App();
try {
  addStacks(app);
} catch (e) {
  // Bad context or policy: one readable message, not a stack trace.
  console.error((e as Error).message);
  process.exit(1);
}
// Every AwsSolutions finding fails synthesis unless acknowledged in code with a reason.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
