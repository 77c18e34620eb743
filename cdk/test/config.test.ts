import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { EXAMPLE, readConfig } from '../lib/config';
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
});
