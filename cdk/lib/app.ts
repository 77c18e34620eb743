// Wires the stacks into an app from its context; shared by bin/app.ts and the tests.
import { App } from 'aws-cdk-lib';
import { BreakGlassStack } from './break-glass-stack';
import { readConfig } from './config';
import { BreakGlassMemberStack } from './member-stack';

export function addStacks(app: App): { main: BreakGlassStack; member: BreakGlassMemberStack } {
  const config = readConfig((k) => app.node.tryGetContext(k));
  const main = new BreakGlassStack(app, 'BreakGlassStack', {
    config,
    description: 'break-glass: time-boxed IAM Identity Center access from a Slack button',
  });
  const member = new BreakGlassMemberStack(app, 'BreakGlassMemberStack', {
    workerRoleArn: config.workerRoleArn,
    reportRoleName: config.reportRoleName,
  });
  return { main, member };
}
