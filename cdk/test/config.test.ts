import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_RECONCILE_SCHEDULE, EXAMPLE, readConfig, scheduleExpressionProblem } from '../lib/config';
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

  it('runs the reconciler hourly unless -c reconcileSchedule=… says otherwise', () => {
    assert.equal(DEFAULT_RECONCILE_SCHEDULE, 'rate(1 hour)');
    assert.equal(read(deployContext()).reconcileSchedule, 'rate(1 hour)');
    assert.equal(read(deployContext({ reconcileSchedule: ' rate(15 minutes) ' })).reconcileSchedule, 'rate(15 minutes)');
  });

  it('accepts EventBridge rate and cron expressions', () => {
    for (const e of [
      'rate(1 minute)', 'rate(5 minutes)', 'rate(1 hour)', 'rate(2 hours)', 'rate(1 day)', 'rate(7 days)',
      'cron(0 * * * ? *)', 'cron(0/15 * * * ? *)', 'cron(30 8 ? * MON-FRI *)', 'cron(0 12 1,15 * ? 2026-2030)',
      'cron(0 6 L * ? *)', 'cron(0 6 ? * 6#3 *)', 'cron(0 6 15W JAN,JUL ? *)',
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
});
