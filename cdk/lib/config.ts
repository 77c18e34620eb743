// Turns `-c key=value` context into typed stack props, reporting every missing or malformed
// value at once. With `-c example=true`, example values fill whatever is not given, so that
// `cdk synth` works on a fresh clone with no credentials and no Rust build.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The cdk/ directory: default paths are relative to it, not to the caller's working directory. */
export const CDK_DIR = path.resolve(__dirname, '..');

export const DEFAULT_REPORT_ROLE_NAME = 'break-glass-report-reader';

/** Everything a deployment of the main stack is parameterised by. */
export interface DeploymentConfig {
  /** Directory holding the `bootstrap` binary (cargo lambda build output). */
  readonly assetDir: string;
  /** The policy TOML; shipped to both functions as `/opt/policy.toml`. */
  readonly policyFile: string;
  /** `arn:aws:sso:::instance/ssoins-…` */
  readonly ssoInstanceArn: string;
  /** `d-…` (or a UUID for newer identity stores). */
  readonly identityStoreId: string;
  /** Verified SES identity the report is sent from. */
  readonly reportSender: string;
  readonly reportRecipients: readonly string[];
  readonly slackTeamId: string;
  readonly slackApiAppId: string;
  /** Where alarms are e-mailed; no subscription when unset. */
  readonly alarmEmail?: string;
  /** Wait between revoke and report, for CloudTrail to catch up. */
  readonly cloudtrailDelaySeconds: number;
  /** Regions whose CloudTrail the report reads; default: the stack's region and us-east-1. */
  readonly cloudtrailRegions?: readonly string[];
  /** Name of the read-only role in member accounts (the member stack creates it). */
  readonly reportRoleName: string;
  /** Create (and start verifying) the SES e-mail identity of `reportSender` in this stack. */
  readonly createSenderIdentity: boolean;
  /** The worker's role ARN, for the member stack's trust policy (else a stack parameter). */
  readonly workerRoleArn?: string;
  /** True when example values filled gaps: fine for synth, never for deploy (the stack warns). */
  readonly example: boolean;
}

/** Values that make the app synthesize offline; they match config/policy.example.toml. */
export const EXAMPLE: Readonly<Record<string, string>> = {
  ssoInstanceArn: 'arn:aws:sso:::instance/ssoins-1234567890abcdef',
  identityStoreId: 'd-1234567890',
  reportSender: 'break-glass@example.com',
  reportRecipients: 'security@example.com',
  slackTeamId: 'T0EXAMPLE01',
  slackApiAppId: 'A0EXAMPLE01',
};

const REQUIRED = ['ssoInstanceArn', 'identityStoreId', 'reportSender', 'reportRecipients', 'slackTeamId', 'slackApiAppId'] as const;

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const CHECKS: Record<string, [RegExp, string]> = {
  ssoInstanceArn: [/^arn:(aws|aws-us-gov|aws-cn):sso:::instance\/ssoins-[A-Za-z0-9-]{1,64}$/, 'arn:aws:sso:::instance/ssoins-…'],
  identityStoreId: [/^(d-[0-9a-f]{10}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/, 'd-0123456789'],
  slackTeamId: [/^[TE][A-Z0-9]{2,}$/, 'T0123ABCD'],
  slackApiAppId: [/^A[A-Z0-9]{2,}$/, 'A0123ABCD'],
  workerRoleArn: [/^arn:(aws|aws-us-gov|aws-cn):iam::\d{12}:role\/[\w+=,.@/-]+$/, 'arn:aws:iam::123456789012:role/…'],
  reportRoleName: [/^[\w+=,.@-]{1,64}$/, 'an IAM role name'],
};

/** Reads a context value as a trimmed string (context from cdk.json may be a number or boolean). */
export type ContextReader = (key: string) => unknown;

export function readConfig(ctx: ContextReader): DeploymentConfig {
  const str = (key: string): string | undefined => {
    const v = ctx(key);
    if (v === undefined || v === null) return undefined;
    const s = String(v).trim();
    return s === '' ? undefined : s;
  };
  const example = ['true', '1', 'yes'].includes(str('example') ?? '');
  const problems: string[] = [];

  const missing = REQUIRED.filter((k) => str(k) === undefined && !example);
  if (missing.length > 0) {
    problems.push(`missing context: ${missing.map((k) => `-c ${k}=…`).join(' ')} (or -c example=true to synthesize with example values)`);
  }
  const get = (k: string): string => str(k) ?? (example ? EXAMPLE[k] : undefined) ?? '';

  for (const [key, [re, shape]] of Object.entries(CHECKS)) {
    const v = str(key);
    if (v !== undefined && !re.test(v)) problems.push(`${key} must look like ${shape}, got ${JSON.stringify(v)}`);
  }
  const list = (k: string) => (str(k) ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const recipients = get('reportRecipients').split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const e of [get('reportSender'), ...recipients]) {
    if (e !== '' && !EMAIL.test(e)) problems.push(`${JSON.stringify(e)} in reportSender/reportRecipients is not an e-mail address`);
  }
  const alarmEmail = str('alarmEmail');
  if (alarmEmail !== undefined && !EMAIL.test(alarmEmail)) problems.push(`alarmEmail ${JSON.stringify(alarmEmail)} is not an e-mail address`);

  const delay = Number(str('cloudtrailDelaySeconds') ?? '900');
  // The binary refuses more than a day; Step Functions would wait, but the report would be stale.
  if (!Number.isInteger(delay) || delay < 0 || delay > 86_400) {
    problems.push(`cloudtrailDelaySeconds must be whole seconds between 0 and 86400, got ${JSON.stringify(str('cloudtrailDelaySeconds'))}`);
  }
  const regions = list('cloudtrailRegions');
  const badRegion = regions.filter((r) => !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(r));
  if (badRegion.length > 0) problems.push(`cloudtrailRegions: not region names: ${badRegion.join(', ')}`);

  const assetDir = resolvePath(str('assetDir'), '../target/lambda/break-glass');
  const policyFile = str('policyFile') !== undefined ? resolvePath(str('policyFile'), '') : defaultPolicyFile();
  if (!fs.existsSync(policyFile)) problems.push(`policy file ${policyFile} does not exist (-c policyFile=…)`);

  if (problems.length > 0) throw new Error(`break-glass CDK app: invalid context:\n  ${problems.join('\n  ')}`);
  return {
    assetDir,
    policyFile,
    ssoInstanceArn: get('ssoInstanceArn'),
    identityStoreId: get('identityStoreId'),
    reportSender: get('reportSender'),
    reportRecipients: recipients,
    slackTeamId: get('slackTeamId'),
    slackApiAppId: get('slackApiAppId'),
    alarmEmail,
    cloudtrailDelaySeconds: delay,
    cloudtrailRegions: regions.length > 0 ? [...new Set(regions)] : undefined,
    reportRoleName: str('reportRoleName') ?? DEFAULT_REPORT_ROLE_NAME,
    createSenderIdentity: str('createSenderIdentity') === 'true',
    workerRoleArn: str('workerRoleArn'),
    example,
  };
}

/** `../config/policy.toml` when it exists, else the example policy beside it. */
function defaultPolicyFile(): string {
  const real = path.join(CDK_DIR, '..', 'config', 'policy.toml');
  return fs.existsSync(real) ? real : path.join(CDK_DIR, '..', 'config', 'policy.example.toml');
}

/** A path given on the command line is relative to the working directory; a default to cdk/. */
function resolvePath(given: string | undefined, fallback: string): string {
  return given !== undefined ? path.resolve(given) : path.resolve(CDK_DIR, fallback);
}
