// Shared by the tests: a stub `bootstrap` (no Lambda build needed), the fixture policy, a full
// context. The policy itself is read by the real break-glass binary (lib/policy.ts): build it first.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { addStacks } from '../lib/app';

export const FIXTURES = path.join(__dirname, 'fixtures');
export const INSTANCE_ARN = 'arn:aws:sso:::instance/ssoins-aaaabbbbccccdddd';
export const PS_ONCALL = 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/ps-1111111111111111';
export const PS_DBA = 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/ps-2222222222222222';

let stubDir: string | undefined;
/** A directory with a stub `bootstrap`, standing in for cargo lambda's output. */
export function stubAssetDir(): string {
  if (!stubDir) {
    stubDir = fs.mkdtempSync(path.join(os.tmpdir(), 'break-glass-test-asset-'));
    fs.writeFileSync(path.join(stubDir, 'bootstrap'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  }
  return stubDir;
}

/** A complete deploy-time context (no example values) over the fixture policy. */
export function deployContext(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    assetDir: stubAssetDir(),
    policyFile: path.join(FIXTURES, 'policy.toml'),
    ssoInstanceArn: INSTANCE_ARN,
    identityStoreId: 'd-9067abcdef',
    reportSender: 'break-glass@security.example.com',
    reportRecipients: 'soc@example.com, ciso@example.com',
    slackTeamId: 'T0TEAM00001',
    slackApiAppId: 'A0APP000001',
    ...overrides,
  };
}

export function synth(context: Record<string, string>) {
  const app = new App({ context });
  const stacks = addStacks(app);
  return { app, ...stacks, template: Template.fromStack(stacks.main), memberTemplate: Template.fromStack(stacks.member) };
}

/** Every IAM statement in a template: role inline policies and AWS::IAM::Policy documents. */
export function iamStatements(template: Template): Array<{ Action: string | string[]; Resource: unknown; Effect: string; Sid?: string }> {
  const out = [];
  for (const r of Object.values(template.toJSON().Resources as Record<string, { Type: string; Properties: any }>)) {
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') out.push(...r.Properties.PolicyDocument.Statement);
    if (r.Type === 'AWS::IAM::Role') for (const p of r.Properties.Policies ?? []) out.push(...p.PolicyDocument.Statement);
  }
  return out;
}

export const asList = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);
