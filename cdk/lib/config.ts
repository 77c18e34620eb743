// Turns `-c key=value` context into typed stack props, reporting every missing or malformed
// value at once. With `-c example=true`, example values fill whatever is not given, so that
// `cdk synth` works on a fresh clone with no credentials and no Lambda build (a placeholder
// stands in for `bootstrap`). Synth does need the break-glass binary itself: it reads the
// policy file (`break-glass policy scope --json`, lib/policy.ts). `cargo build` builds it
// (`make synth` and `make test` do), or BREAK_GLASS_BIN names one.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The cdk/ directory: default paths are relative to it, not to the caller's working directory. */
export const CDK_DIR = path.resolve(__dirname, '..');

export const DEFAULT_REPORT_ROLE_NAME = 'break-glass-report-reader';

/** How often the reconciler compares Identity Center with the leases, unless -c reconcileSchedule=… says otherwise. */
export const DEFAULT_RECONCILE_SCHEDULE = 'rate(1 hour)';

/** When the worker posts the weekly review digest (Mondays 09:00 UTC), unless -c digestSchedule=… says otherwise. */
export const DEFAULT_DIGEST_SCHEDULE = 'cron(0 9 ? * MON *)';

/**
 * Reserved concurrency of the functions and throttling of the Slack endpoint, unless -c says
 * otherwise. Reserving caps each function (a flood of requests cannot take the account's whole
 * concurrency) and guarantees it (the rest of the account cannot starve revocation). A handful
 * of responders clicking needs a few webhook instances; the worker runs the tasks of every live
 * execution, the reconciler and the weekly digest. Lambda refuses a reservation that leaves the account fewer than
 * 100 unreserved executions: in an account whose quota is still 10, lower these or raise it.
 */
export const DEFAULT_LIMITS = {
  webhookReservedConcurrency: 10,
  workerReservedConcurrency: 20,
  /** Requests per second, steady, to the Slack endpoint; Slack itself sends a few per click. */
  apiRateLimit: 50,
  /** Requests at once above the steady rate (API Gateway's token bucket); at least the rate. */
  apiBurstLimit: 100,
} as const;

/**
 * The webhook's look-up of the organization's accounts and the reconciler's pace, unless -c
 * says otherwise. The /break-glass modal offers the organization's accounts through type-ahead
 * (organizations:ListAccounts), kept for `accountsCacheSeconds`; the reconciler checks at most
 * `reconcilePairsPerRun` (account, permission set) pairs a run, calling Identity Center at most
 * `identityCenterCallsPerSecond` times a second.
 */
export const DEFAULT_RECONCILER_AND_ACCOUNTS = {
  listOrganizationAccounts: true,
  accountsCacheSeconds: 300,
  reconcilePairsPerRun: 2000,
  identityCenterCallsPerSecond: 10,
} as const;

/** Everything a deployment of the main stack is parameterised by. */
export interface DeploymentConfig {
  /** Directory holding the `bootstrap` binary (cargo lambda build output). */
  readonly assetDir: string;
  /**
   * The policy TOML; shipped to both functions as `/opt/policy.toml`, and read at synth by the
   * break-glass binary (`policy scope --json`) for the worker's IAM.
   */
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
  /** EventBridge schedule expression of the reconciler run: `rate(…)` or `cron(…)`. */
  readonly reconcileSchedule: string;
  /** EventBridge schedule expression of the weekly review digest: `rate(…)` or `cron(…)`. */
  readonly digestSchedule: string;
  /** Reserved concurrent executions of the webhook function. */
  readonly webhookReservedConcurrency: number;
  /** Reserved concurrent executions of the worker function. */
  readonly workerReservedConcurrency: number;
  /** Steady requests per second the HTTP API stage lets through. */
  readonly apiRateLimit: number;
  /** Burst of requests the HTTP API stage lets through (at least apiRateLimit). */
  readonly apiBurstLimit: number;
  /**
   * A customer-managed KMS key of this account and region to use instead of the one the stack
   * creates, for the table, the Slack and on-call secrets, the log groups, the function environments and
   * the dead-letter queue. Its key policy must let the account's IAM policies grant its use
   * (the default key policy does) and let CloudWatch Logs (`logs.<region>.amazonaws.com`) use
   * it for this account's log groups, as the created key's policy does.
   */
  readonly kmsKeyArn?: string;
  /**
   * Base URL of the PagerDuty REST API (`PAGERDUTY_API_URL` of both functions); unset, the
   * binary's default (https://api.pagerduty.com). An https:// URL, trailing "/" removed.
   */
  readonly pagerdutyApiUrl?: string;
  /**
   * Base URL of the Opsgenie API (`OPSGENIE_API_URL` of both functions), e.g.
   * https://api.eu.opsgenie.com for an EU account; unset, the binary's default. An https:// URL,
   * trailing "/" removed.
   */
  readonly opsgenieApiUrl?: string;
  /** How long the functions keep who is on call (`ONCALL_CACHE_SECONDS`, 0–300); unset, the binary's default. */
  readonly oncallCacheSeconds?: number;
  /**
   * Let the webhook call organizations:ListAccounts, so that the /break-glass modal offers the
   * organization's accounts through type-ahead; false leaves the permission out, and the modal
   * offers the accounts the policy names.
   */
  readonly listOrganizationAccounts: boolean;
  /** How long the webhook keeps the organization's accounts (`ACCOUNTS_CACHE_SECONDS`, 0–3600). */
  readonly accountsCacheSeconds: number;
  /** (Account, permission set) pairs the reconciler checks in one run (`RECONCILE_PAIRS_PER_RUN`, 1–100000). */
  readonly reconcilePairsPerRun: number;
  /** Identity Center calls a second the reconciler paces itself to (`IDENTITY_CENTER_CALLS_PER_SECOND`, more than 0, at most 50). */
  readonly identityCenterCallsPerSecond: number;
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
  // A key ARN, not an alias: grants and key policies name the key itself. Multi-Region keys are mrk-….
  kmsKeyArn: [
    /^arn:(aws|aws-us-gov|aws-cn):kms:[a-z]{2}(-[a-z]+)+-\d+:\d{12}:key\/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/,
    'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  ],
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

  const schedule = (key: 'reconcileSchedule' | 'digestSchedule', fallback: string, examples: string): string => {
    const expr = str(key) ?? fallback;
    const problem = scheduleExpressionProblem(expr);
    if (problem !== undefined) problems.push(`${key} must be an EventBridge schedule expression such as ${examples}, got ${JSON.stringify(expr)}: ${problem}`);
    return expr;
  };
  const reconcileSchedule = schedule('reconcileSchedule', DEFAULT_RECONCILE_SCHEDULE, '"rate(1 hour)", "rate(15 minutes)" or "cron(0 * * * ? *)"');
  const digestSchedule = schedule('digestSchedule', DEFAULT_DIGEST_SCHEDULE, '"cron(0 9 ? * MON *)" (Mondays 09:00 UTC) or "rate(7 days)"');

  // Whole numbers only: "10.5" or "ten" is a typo, not a limit.
  const whole = (key: keyof typeof DEFAULT_LIMITS, min: number, max: number): number => {
    const given = str(key);
    const n = given === undefined ? DEFAULT_LIMITS[key] : /^\d+$/.test(given) ? Number(given) : NaN;
    if (!(n >= min && n <= max)) problems.push(`${key} must be a whole number between ${min} and ${max}, got ${JSON.stringify(given)}`);
    return n;
  };
  // A reservation of 0 would stop the function; 1000 is Lambda's default quota for the whole account.
  const webhookReservedConcurrency = whole('webhookReservedConcurrency', 1, 1000);
  const workerReservedConcurrency = whole('workerReservedConcurrency', 1, 1000);
  // API Gateway's account-level default is 10000 requests per second.
  const apiRateLimit = whole('apiRateLimit', 1, 10_000);
  const apiBurstLimit = whole('apiBurstLimit', 1, 10_000);
  // A bucket smaller than the steady rate would cap the rate at the burst, silently.
  if (apiBurstLimit < apiRateLimit) {
    problems.push(`apiBurstLimit (${apiBurstLimit}) must be at least apiRateLimit (${apiRateLimit}): a smaller burst caps the rate`);
  }

  // On-call sources (PagerDuty, Opsgenie): optional, passed on only when given. Their tokens are
  // in the on-call secret, never in the context.
  const apiUrl = (key: 'pagerdutyApiUrl' | 'opsgenieApiUrl', sample: string): string | undefined => {
    const given = str(key);
    if (given === undefined) return undefined;
    const problem = apiUrlProblem(given);
    if (problem !== undefined) problems.push(`${key} must be an https:// URL such as ${sample}, got ${JSON.stringify(given)}: ${problem}`);
    return given.replace(/\/+$/, '');
  };
  const pagerdutyApiUrl = apiUrl('pagerdutyApiUrl', 'https://api.pagerduty.com');
  const opsgenieApiUrl = apiUrl('opsgenieApiUrl', 'https://api.eu.opsgenie.com');
  const cacheGiven = str('oncallCacheSeconds');
  const oncallCacheSeconds = cacheGiven === undefined ? undefined : /^\d+$/.test(cacheGiven) ? Number(cacheGiven) : NaN;
  // 0 (no cache) to 5 minutes: a longer cache would let someone who just went off call keep approving.
  if (oncallCacheSeconds !== undefined && !(oncallCacheSeconds >= 0 && oncallCacheSeconds <= 300)) {
    problems.push(`oncallCacheSeconds must be whole seconds between 0 and 300, got ${JSON.stringify(cacheGiven)}`);
  }

  // The organization's accounts in the modal, and the reconciler's pace.
  const listGiven = str('listOrganizationAccounts');
  const listOrganizationAccounts = listGiven === undefined ? DEFAULT_RECONCILER_AND_ACCOUNTS.listOrganizationAccounts : listGiven === 'true';
  // Only true or false: "no" or "off" read as true would grant what the operator meant to leave out.
  if (listGiven !== undefined && listGiven !== 'true' && listGiven !== 'false') {
    problems.push(`listOrganizationAccounts must be true or false, got ${JSON.stringify(listGiven)}`);
  }
  const wholeOr = (key: 'accountsCacheSeconds' | 'reconcilePairsPerRun', what: string, min: number, max: number): number => {
    const given = str(key);
    const n = given === undefined ? DEFAULT_RECONCILER_AND_ACCOUNTS[key] : /^\d+$/.test(given) ? Number(given) : NaN;
    if (!(n >= min && n <= max)) problems.push(`${key} must be ${what} between ${min} and ${max}, got ${JSON.stringify(given)}`);
    return n;
  };
  // 0 (no cache) to an hour: an account added to the organization shows up within that time.
  const accountsCacheSeconds = wholeOr('accountsCacheSeconds', 'whole seconds', 0, 3600);
  const reconcilePairsPerRun = wholeOr('reconcilePairsPerRun', 'a whole number', 1, 100_000);
  const rateGiven = str('identityCenterCallsPerSecond');
  const identityCenterCallsPerSecond = rateGiven === undefined
    ? DEFAULT_RECONCILER_AND_ACCOUNTS.identityCenterCallsPerSecond
    : /^\d+(\.\d+)?$/.test(rateGiven) ? Number(rateGiven) : NaN;
  // More than 0 (the binary cannot pace to none); at most 50, which catches a slipped digit: the reconciler paces to stay under Identity Center's throttling, and slows down further when throttled.
  if (!(identityCenterCallsPerSecond > 0 && identityCenterCallsPerSecond <= 50)) {
    problems.push(`identityCenterCallsPerSecond must be a number greater than 0 and at most 50, got ${JSON.stringify(rateGiven)}`);
  }

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
    reconcileSchedule,
    digestSchedule,
    webhookReservedConcurrency,
    workerReservedConcurrency,
    apiRateLimit,
    apiBurstLimit,
    kmsKeyArn: str('kmsKeyArn'),
    pagerdutyApiUrl,
    opsgenieApiUrl,
    oncallCacheSeconds,
    listOrganizationAccounts,
    accountsCacheSeconds,
    reconcilePairsPerRun,
    identityCenterCallsPerSecond,
    example,
  };
}

/**
 * Why `given` is not a base URL the functions may send an on-call API token to, or undefined
 * when it is one: https only (the token goes in a header), a host, and nothing the binary's
 * paths could not be appended to (no query, fragment or user info).
 */
export function apiUrlProblem(given: string): string | undefined {
  if (!given.startsWith('https://')) return 'it must start with https://';
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    return 'it is not a URL';
  }
  if (url.hostname === '') return 'it has no host';
  if (/\s/.test(given)) return 'it contains white space';
  if (url.username !== '' || url.password !== '') return 'it must not carry a user name or password';
  if (url.search !== '' || url.hash !== '' || given.includes('?') || given.includes('#')) return 'it must not have a query or fragment';
  return undefined;
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

// ---- EventBridge schedule expressions ------------------------------------------------------
// CloudFormation takes any string and only the deployment fails, minutes later, on a typo:
// check the expression here, as EventBridge documents it, so that synth fails instead.

const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface CronField { readonly name: string; readonly min: number; readonly max: number; readonly names?: readonly string[]; readonly extra?: RegExp }
const CRON_FIELDS: readonly CronField[] = [
  { name: 'minutes', min: 0, max: 59 },
  { name: 'hours', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31, extra: /^(\?|L|LW|\d{1,2}W)$/ },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day-of-week', min: 1, max: 7, names: DAYS, extra: /^(\?|L|[1-7]L|[1-7]#[1-5])$/ },
  { name: 'year', min: 1970, max: 2199 },
];

/** Why `expr` is not an EventBridge `rate(…)` or `cron(…)` expression, or undefined when it is one. */
export function scheduleExpressionProblem(expr: string): string | undefined {
  if (expr.startsWith('rate(')) {
    const m = RATE.exec(expr);
    if (!m) return 'rate(VALUE UNIT) takes a whole number and minute(s), hour(s) or day(s)';
    const n = Number(m[1]);
    if (n < 1) return 'the rate must be at least 1';
    if ((n === 1) !== !m[2].endsWith('s')) return `write "${n} ${n === 1 ? m[2].replace(/s$/, '') : `${m[2]}s`}" (EventBridge wants the singular for 1, the plural otherwise)`;
    return undefined;
  }
  if (expr.startsWith('cron(') && expr.endsWith(')')) {
    const fields = expr.slice(5, -1).trim().split(/\s+/);
    if (fields.length !== 6) return `cron(…) takes 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`;
    for (const [i, f] of CRON_FIELDS.entries()) {
      const bad = cronFieldProblem(fields[i], f);
      if (bad !== undefined) return `${f.name} field ${JSON.stringify(fields[i])}: ${bad}`;
    }
    const [dom, dow] = [fields[2], fields[4]];
    if ((dom === '?') === (dow === '?')) return 'exactly one of day-of-month and day-of-week must be "?"';
    return undefined;
  }
  return 'it must start with rate( or cron(';
}

function cronFieldProblem(field: string, f: CronField): string | undefined {
  const value = (v: string): number | undefined => {
    if (/^\d+$/.test(v)) return Number(v);
    const i = f.names?.indexOf(v.toUpperCase()) ?? -1;
    return i >= 0 ? i + f.min : undefined;
  };
  for (const item of field.split(',')) {
    if (f.extra?.test(item)) {
      const n = /^\d+/.exec(item);
      if (n && (Number(n[0]) < f.min || Number(n[0]) > f.max)) return `${n[0]} is outside ${f.min}-${f.max}`;
      continue;
    }
    const m = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(item);
    if (!m) return `${JSON.stringify(item)} is not a value, a range, a list or */step`;
    if (m[2] !== undefined && Number(m[2]) < 1) return 'a step must be at least 1';
    if (m[1] === '*') continue;
    for (const v of m[1].split('-')) {
      const n = value(v);
      if (n === undefined || n < f.min || n > f.max) return `${JSON.stringify(v)} is outside ${f.min}-${f.max}${f.names ? ` (or ${f.names[0]}-${f.names[f.names.length - 1]})` : ''}`;
    }
  }
  return undefined;
}
