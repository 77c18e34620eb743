import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  apiUrlProblem, DEFAULT_DIGEST_SCHEDULE, DEFAULT_LIMITS, DEFAULT_RECONCILE_SCHEDULE, DEFAULT_RECONCILER_AND_ACCOUNTS, EXAMPLE, readConfig, scheduleExpressionProblem,
} from '../lib/config';
import { deployContext, FIXTURES } from './helpers';

const read = (ctx: Record<string, string>) => readConfig((k) => ctx[k]);

describe('context', () => {
  it('lists every missing value at once', () => {
    assert.throws(() => read({ policyFile: path.join(FIXTURES, 'policy.toml') }), (e: Error) => {
      for (const k of ['ssoInstanceArn', 'identityStoreId', 'reportSender', 'reportRecipients', 'slackTeamId', 'slackApiAppId']) {
        assert.ok(e.message.includes(`-c ${k}=`), `${k} in ${e.message}`);
      }
      return true;
    });
  });

  it('fills the gaps with example values when asked to', () => {
    const cfg = read({ example: 'true', slackTeamId: 'T0MINE00001' });
    assert.equal(cfg.example, true);
    assert.equal(cfg.slackTeamId, 'T0MINE00001');
    assert.equal(cfg.ssoInstanceArn, EXAMPLE.ssoInstanceArn);
    assert.equal(cfg.cloudtrailDelaySeconds, 900);
    assert.equal(cfg.reportRoleName, 'break-glass-report-reader');
  });

  it('parses lists and optional values', () => {
    const cfg = read(deployContext({ cloudtrailRegions: 'eu-west-1, us-east-1,eu-west-1', cloudtrailDelaySeconds: '60', alarmEmail: 'oncall@example.com' }));
    assert.deepEqual(cfg.reportRecipients, ['soc@example.com', 'ciso@example.com']);
    assert.deepEqual(cfg.cloudtrailRegions, ['eu-west-1', 'us-east-1']);
    assert.equal(cfg.cloudtrailDelaySeconds, 60);
    assert.equal(cfg.alarmEmail, 'oncall@example.com');
    assert.equal(cfg.example, false);
  });

  it('reports malformed values', () => {
    const bad = deployContext({
      ssoInstanceArn: 'ssoins-1', identityStoreId: 'store', reportSender: 'nobody', slackTeamId: 'team',
      slackApiAppId: 'app', cloudtrailDelaySeconds: 'soon', cloudtrailRegions: 'mars', workerRoleArn: 'role',
      policyFile: '/nonexistent/policy.toml',
    });
    assert.throws(() => read(bad), (e: Error) => {
      for (const k of ['ssoInstanceArn', 'identityStoreId', '"nobody"', 'slackTeamId', 'slackApiAppId', 'cloudtrailDelaySeconds', 'cloudtrailRegions', 'workerRoleArn', '/nonexistent/policy.toml']) {
        assert.ok(e.message.includes(k), `${k} in ${e.message}`);
      }
      return true;
    });
  });

  it('reserves concurrency and throttles the API by default, and takes other limits from the context', () => {
    assert.deepEqual(DEFAULT_LIMITS, { webhookReservedConcurrency: 10, workerReservedConcurrency: 20, apiRateLimit: 50, apiBurstLimit: 100 });
    const defaults = read(deployContext());
    assert.deepEqual(
      [defaults.webhookReservedConcurrency, defaults.workerReservedConcurrency, defaults.apiRateLimit, defaults.apiBurstLimit],
      [10, 20, 50, 100],
    );
    const cfg = read(deployContext({ webhookReservedConcurrency: ' 1 ', workerReservedConcurrency: '1000', apiRateLimit: '200', apiBurstLimit: '200' }));
    assert.deepEqual([cfg.webhookReservedConcurrency, cfg.workerReservedConcurrency, cfg.apiRateLimit, cfg.apiBurstLimit], [1, 1000, 200, 200]);
  });

  it('reports malformed limits with the other context problems', () => {
    const bad = deployContext({
      webhookReservedConcurrency: '0', workerReservedConcurrency: '1001', apiRateLimit: '2.5', apiBurstLimit: 'lots', slackTeamId: 'team',
    });
    assert.throws(() => read(bad), (e: Error) => {
      assert.match(e.message, /webhookReservedConcurrency must be a whole number between 1 and 1000, got "0"/);
      assert.match(e.message, /workerReservedConcurrency must be a whole number between 1 and 1000, got "1001"/);
      assert.match(e.message, /apiRateLimit must be a whole number between 1 and 10000, got "2.5"/);
      assert.match(e.message, /apiBurstLimit must be a whole number between 1 and 10000, got "lots"/);
      assert.match(e.message, /slackTeamId/, 'reported together');
      return true;
    });
    for (const v of ['-1', '1e2', '0x10', '10.0']) {
      assert.throws(() => read(deployContext({ workerReservedConcurrency: v })), /workerReservedConcurrency must be a whole number/, v);
    }
    // A burst below the rate would silently cap the rate.
    assert.throws(() => read(deployContext({ apiRateLimit: '60', apiBurstLimit: '59' })), /apiBurstLimit \(59\) must be at least apiRateLimit \(60\)/);
    assert.throws(() => read(deployContext({ apiRateLimit: '101' })), /apiBurstLimit \(100\) must be at least apiRateLimit \(101\)/);
  });

  it('takes a KMS key ARN, and refuses anything else', () => {
    assert.equal(read(deployContext()).kmsKeyArn, undefined);
    for (const arn of [
      'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      'arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab',
    ]) {
      assert.equal(read(deployContext({ kmsKeyArn: arn })).kmsKeyArn, arn);
    }
    for (const arn of [
      'arn:aws:kms:eu-west-1:123456789012:alias/break-glass', // an alias, not the key
      '1234abcd-12ab-34cd-56ef-1234567890ab', // a key id without its ARN
      'arn:aws:kms:eu-west-1:1234:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      'arn:aws:sqs:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    ]) {
      assert.throws(() => read(deployContext({ kmsKeyArn: arn })), (e: Error) => {
        assert.ok(e.message.includes(`kmsKeyArn must look like arn:aws:kms:`), e.message);
        assert.ok(e.message.includes(JSON.stringify(arn)), e.message);
        return true;
      });
    }
  });

  it('leaves the on-call API URLs and cache time to the binary unless given', () => {
    const cfg = read(deployContext());
    assert.deepEqual([cfg.pagerdutyApiUrl, cfg.opsgenieApiUrl, cfg.oncallCacheSeconds], [undefined, undefined, undefined]);
    const given = read(deployContext({ pagerdutyApiUrl: ' https://api.pagerduty.com ', opsgenieApiUrl: 'https://api.eu.opsgenie.com/', oncallCacheSeconds: ' 300 ' }));
    assert.equal(given.pagerdutyApiUrl, 'https://api.pagerduty.com');
    // Without the trailing "/", so the binary's paths append cleanly.
    assert.equal(given.opsgenieApiUrl, 'https://api.eu.opsgenie.com');
    assert.equal(given.oncallCacheSeconds, 300);
    assert.equal(read(deployContext({ oncallCacheSeconds: '0' })).oncallCacheSeconds, 0);
    // A proxy with a path and a port is fine.
    assert.equal(read(deployContext({ pagerdutyApiUrl: 'https://proxy.example.com:8443/pagerduty' })).pagerdutyApiUrl, 'https://proxy.example.com:8443/pagerduty');
  });

  it('refuses an on-call API URL that is not a plain https:// URL, saying why', () => {
    const cases: Record<string, RegExp> = {
      'http://api.eu.opsgenie.com': /must start with https:\/\//,
      'api.eu.opsgenie.com': /must start with https:\/\//,
      'HTTPS://api.eu.opsgenie.com': /must start with https:\/\//,
      'https://': /not a URL|no host/,
      'https://api.eu.opsgenie.com?x=1': /query or fragment/,
      'https://api.eu.opsgenie.com/#top': /query or fragment/,
      'https://user:pw@api.eu.opsgenie.com': /user name or password/,
      'https://api eu.opsgenie.com': /not a URL|white space/,
    };
    for (const [url, why] of Object.entries(cases)) {
      assert.match(apiUrlProblem(url) ?? 'accepted', why, url);
      for (const key of ['pagerdutyApiUrl', 'opsgenieApiUrl']) {
        assert.throws(() => read(deployContext({ [key]: url })), (e: Error) => {
          assert.ok(e.message.includes(`${key} must be an https:// URL such as https://`), e.message);
          assert.ok(e.message.includes(JSON.stringify(url)), `${url} named in ${e.message}`);
          assert.match(e.message, why, `${key}=${url}: ${e.message}`);
          return true;
        });
      }
    }
    assert.equal(apiUrlProblem('https://api.eu.opsgenie.com'), undefined);
    assert.equal(apiUrlProblem('https://api.pagerduty.com'), undefined);
  });

  it('refuses an oncallCacheSeconds outside 0-300 or not whole seconds, with the other context problems', () => {
    for (const v of ['301', '-1', '1.5', '60s', '1e2', 'ten']) {
      assert.throws(() => read(deployContext({ oncallCacheSeconds: v })), (e: Error) => {
        assert.ok(e.message.includes(`oncallCacheSeconds must be whole seconds between 0 and 300, got ${JSON.stringify(v)}`), e.message);
        return true;
      }, v);
    }
    assert.throws(() => read(deployContext({ oncallCacheSeconds: '900', opsgenieApiUrl: 'http://x', slackTeamId: 'team' })), (e: Error) => {
      assert.match(e.message, /oncallCacheSeconds/);
      assert.match(e.message, /opsgenieApiUrl/);
      assert.match(e.message, /slackTeamId/, 'reported together');
      return true;
    });
  });

  it('lists the organization\'s accounts, keeps them 5 minutes, and paces the reconciler to 2000 pairs a run at 10 calls a second, unless told otherwise', () => {
    assert.deepEqual(DEFAULT_RECONCILER_AND_ACCOUNTS, { listOrganizationAccounts: true, accountsCacheSeconds: 300, reconcilePairsPerRun: 2000, identityCenterCallsPerSecond: 10 });
    const defaults = read(deployContext());
    assert.deepEqual(
      [defaults.listOrganizationAccounts, defaults.accountsCacheSeconds, defaults.reconcilePairsPerRun, defaults.identityCenterCallsPerSecond],
      [true, 300, 2000, 10],
    );
    const cfg = read(deployContext({ listOrganizationAccounts: ' false ', accountsCacheSeconds: ' 0 ', reconcilePairsPerRun: '100000', identityCenterCallsPerSecond: '0.5' }));
    assert.deepEqual([cfg.listOrganizationAccounts, cfg.accountsCacheSeconds, cfg.reconcilePairsPerRun, cfg.identityCenterCallsPerSecond], [false, 0, 100_000, 0.5]);
    assert.equal(read(deployContext({ listOrganizationAccounts: 'true', accountsCacheSeconds: '3600', reconcilePairsPerRun: '1', identityCenterCallsPerSecond: '50' })).listOrganizationAccounts, true);
    // cdk.json gives booleans and numbers, not strings.
    const typed: Record<string, unknown> = { ...deployContext(), listOrganizationAccounts: false, accountsCacheSeconds: 60, reconcilePairsPerRun: 500, identityCenterCallsPerSecond: 2.5 };
    const fromJson = readConfig((k) => typed[k]);
    assert.deepEqual([fromJson.listOrganizationAccounts, fromJson.accountsCacheSeconds, fromJson.reconcilePairsPerRun, fromJson.identityCenterCallsPerSecond], [false, 60, 500, 2.5]);
  });

  it('refuses a listOrganizationAccounts other than true or false, naming it', () => {
    for (const v of ['no', 'off', '0', '1', 'yes', 'False', 'TRUE']) {
      assert.throws(() => read(deployContext({ listOrganizationAccounts: v })), (e: Error) => {
        assert.ok(e.message.includes(`listOrganizationAccounts must be true or false, got ${JSON.stringify(v)}`), e.message);
        return true;
      }, v);
    }
  });

  it('refuses an accountsCacheSeconds outside 0-3600 or a reconcilePairsPerRun outside 1-100000, or not whole, naming it', () => {
    for (const v of ['3601', '-1', '1.5', '60s', '1e2', 'ten']) {
      assert.throws(() => read(deployContext({ accountsCacheSeconds: v })), (e: Error) => {
        assert.ok(e.message.includes(`accountsCacheSeconds must be whole seconds between 0 and 3600, got ${JSON.stringify(v)}`), e.message);
        return true;
      }, v);
    }
    for (const v of ['0', '100001', '-5', '2000.5', '2e3', '0x10', 'all']) {
      assert.throws(() => read(deployContext({ reconcilePairsPerRun: v })), (e: Error) => {
        assert.ok(e.message.includes(`reconcilePairsPerRun must be a whole number between 1 and 100000, got ${JSON.stringify(v)}`), e.message);
        return true;
      }, v);
    }
  });

  it('refuses an identityCenterCallsPerSecond of 0 or less, over 50, or not a plain number, naming it', () => {
    for (const v of ['0', '0.0', '-1', '50.5', '51', '1e1', 'Infinity', 'NaN', '10/s', '.5', 'fast']) {
      assert.throws(() => read(deployContext({ identityCenterCallsPerSecond: v })), (e: Error) => {
        assert.ok(e.message.includes(`identityCenterCallsPerSecond must be a number greater than 0 and at most 50, got ${JSON.stringify(v)}`), e.message);
        return true;
      }, v);
    }
    for (const [v, n] of [['0.1', 0.1], ['50', 50], ['50.0', 50], ['7', 7]] as const) {
      assert.equal(read(deployContext({ identityCenterCallsPerSecond: v })).identityCenterCallsPerSecond, n, v);
    }
    // With the other context problems, each named.
    assert.throws(() => read(deployContext({
      identityCenterCallsPerSecond: '0', reconcilePairsPerRun: '0', accountsCacheSeconds: 'x', listOrganizationAccounts: 'maybe', slackTeamId: 'team',
    })), (e: Error) => {
      for (const k of ['identityCenterCallsPerSecond', 'reconcilePairsPerRun', 'accountsCacheSeconds', 'listOrganizationAccounts', 'slackTeamId']) assert.match(e.message, new RegExp(k));
      return true;
    });
  });

  it('runs the reconciler hourly unless -c reconcileSchedule=… says otherwise', () => {
    assert.equal(DEFAULT_RECONCILE_SCHEDULE, 'rate(1 hour)');
    assert.equal(read(deployContext()).reconcileSchedule, 'rate(1 hour)');
    assert.equal(read(deployContext({ reconcileSchedule: ' rate(15 minutes) ' })).reconcileSchedule, 'rate(15 minutes)');
  });

  it('accepts EventBridge rate and cron expressions', () => {
    for (const e of [
      'rate(1 minute)', 'rate(5 minutes)', 'rate(1 hour)', 'rate(2 hours)', 'rate(1 day)', 'rate(7 days)',
      'cron(0 * * * ? *)', 'cron(0/15 * * * ? *)', 'cron(30 8 ? * MON-FRI *)', 'cron(0 12 1,15 * ? 2026-2030)',
      'cron(0 6 L * ? *)', 'cron(0 6 ? * 6#3 *)', 'cron(0 6 15W JAN,JUL ? *)', DEFAULT_DIGEST_SCHEDULE,
    ]) {
      assert.equal(scheduleExpressionProblem(e), undefined, e);
    }
  });

  it('fails synth on a malformed reconcileSchedule, saying why', () => {
    const cases: Record<string, RegExp> = {
      'every hour': /must start with rate\( or cron\(/,
      'rate(1 hours)': /write "1 hour"/,
      'rate(5 minute)': /write "5 minutes"/,
      'rate(0 minutes)': /at least 1/,
      'rate(1.5 hours)': /whole number/,
      'rate(1 week)': /minute\(s\), hour\(s\) or day\(s\)/,
      'cron(0 * * * *)': /6 fields/,
      'cron(0 * * * * *)': /exactly one of day-of-month and day-of-week/,
      'cron(0 * ? * ? *)': /exactly one of day-of-month and day-of-week/,
      'cron(60 * * * ? *)': /minutes field "60"/,
      'cron(0 24 * * ? *)': /hours field "24"/,
      'cron(0 0 ? FOO * *)': /month field "FOO"/,
      'cron(0 0 ? * 9 *)': /day-of-week field "9"/,
      'cron(0 0 * * ? 1969)': /year field "1969"/,
    };
    for (const [expr, why] of Object.entries(cases)) {
      assert.throws(() => read(deployContext({ reconcileSchedule: expr })), (e: Error) => {
        assert.match(e.message, /reconcileSchedule must be an EventBridge schedule expression/, expr);
        assert.ok(e.message.includes(JSON.stringify(expr)), `${expr} named in ${e.message}`);
        assert.match(e.message, why, `${expr}: ${e.message}`);
        return true;
      });
    }
  });

  it('posts the weekly digest on Mondays at 09:00 UTC unless -c digestSchedule=… says otherwise', () => {
    assert.equal(DEFAULT_DIGEST_SCHEDULE, 'cron(0 9 ? * MON *)');
    const defaults = read(deployContext());
    assert.equal(defaults.digestSchedule, 'cron(0 9 ? * MON *)');
    // Independent of the reconciler's.
    assert.equal(defaults.reconcileSchedule, 'rate(1 hour)');
    const cfg = read(deployContext({ digestSchedule: ' cron(30 7 ? * FRI *) ' }));
    assert.equal(cfg.digestSchedule, 'cron(30 7 ? * FRI *)');
    assert.equal(cfg.reconcileSchedule, 'rate(1 hour)');
    assert.equal(read(deployContext({ digestSchedule: 'rate(7 days)' })).digestSchedule, 'rate(7 days)');
  });

  it('fails synth on a malformed digestSchedule, saying why, with the other context problems', () => {
    const cases: Record<string, RegExp> = {
      'weekly': /must start with rate\( or cron\(/,
      'rate(1 week)': /minute\(s\), hour\(s\) or day\(s\)/,
      'rate(7 day)': /write "7 days"/,
      'cron(0 9 * * MON *)': /exactly one of day-of-month and day-of-week/,
      'cron(0 9 ? * MONDAY *)': /day-of-week field "MONDAY"/,
      'cron(0 25 ? * MON *)': /hours field "25"/,
      'cron(0 9 ? * MON)': /6 fields/,
    };
    for (const [expr, why] of Object.entries(cases)) {
      assert.throws(() => read(deployContext({ digestSchedule: expr })), (e: Error) => {
        assert.match(e.message, /digestSchedule must be an EventBridge schedule expression such as "cron\(0 9 \? \* MON \*\)"/, expr);
        assert.ok(e.message.includes(JSON.stringify(expr)), `${expr} named in ${e.message}`);
        assert.match(e.message, why, `${expr}: ${e.message}`);
        assert.doesNotMatch(e.message, /reconcileSchedule/, `${expr}: only the digest's schedule is wrong`);
        return true;
      });
    }
    assert.throws(() => read(deployContext({ digestSchedule: 'mondays', reconcileSchedule: 'hourly', slackTeamId: 'team' })), (e: Error) => {
      assert.match(e.message, /reconcileSchedule must be an EventBridge schedule expression.*"hourly"/);
      assert.match(e.message, /digestSchedule must be an EventBridge schedule expression.*"mondays"/);
      assert.match(e.message, /slackTeamId/, 'reported together');
      return true;
    });
  });
});
