// Alerts: a webhook receiver gets exactly one budget alert at 80% and one at
// 100% (the key spends across two workers), one for a breaker that opened
// and one for a model whose every target failed, each as Slack-compatible
// JSON ({"text", "alert"}), and the dashboard lists them as sent. A dead
// webhook (it accepts and never answers) leaves requests alone: while the
// post hangs, the same worker answers every request, and the alert shows
// as pending, then failed. A post the receiver refuses is retried.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import {
  startStack, request, freePort, randomKey, writePricing, makeTmpDir, createKey, sluiceCli, waitFor,
} from '../lib/harness.mjs';

const ADMIN_KEY = randomKey('sk-admin-');
const HOOK_TOKEN = randomKey('hooktoken');
const COMPLETION = 3; // "mock reply: budget": 3 words
// output 1000 USD per 1M tokens: 3 tokens cost 0.003 USD; max_tokens 3 makes the reservation that
const chat = (sluice, key, content = 'budget') => request(`${sluice.root}/v1/chat/completions`, {
  method: 'POST',
  headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
  body: { model: 'gpt-4o-mini', max_tokens: COMPLETION, messages: [{ role: 'user', content }] },
  timeoutMs: 10000,
});

async function pricingFile() {
  const dir = await makeTmpDir('alerts-pricing');
  const file = await writePricing(path.join(dir, 'pricing.yaml'), {
    'mock/gpt-4o-mini-2024-07-18': { input: 0, output: 1000 },
  });
  return { dir, file };
}

describe('alerts', () => {
  const tmps = [];
  after(async () => { for (const d of tmps) await fsp.rm(d, { recursive: true, force: true }); });

  describe('to a live webhook', () => {
    let stack, sluice, receiver, hooks, adminPort, pricing;

    before(async () => {
      hooks = [];
      let posts = 0;
      receiver = http.createServer((req, res) => {
        let body = '';
        req.on('data', (c) => { body += c; });
        req.on('end', () => {
          // the very first post fails: it must be retried, and counted once
          if (posts++ === 0) {
            res.statusCode = 503;
            res.end('busy');
            return;
          }
          hooks.push({ url: req.url, type: req.headers['content-type'], body: JSON.parse(body) });
          res.end('ok');
        });
      });
      await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
      adminPort = await freePort();
      pricing = await pricingFile();
      tmps.push(pricing.dir);
      stack = await startStack({
        name: 'alerts',
        config: (cfg) => {
          cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
          cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
          cfg.pricing = pricing.file;
          cfg.alerts = { webhook: 'env:SLUICE_ALERT_URL', backoff: '100ms', error_rate: false };
          cfg.providers.dead = { kind: 'openai', base_url: 'http://127.0.0.1:9/v1', api_key: 'env:MOCK_UPSTREAM_KEY' };
          cfg.models.broken = { targets: ['dead/model-a'], breaker: { failures: 2, cooldown: '10m' } };
          return cfg;
        },
        env: {
          SLUICE_TEST_ADMIN_KEY: ADMIN_KEY,
          SLUICE_ALERT_URL: `http://127.0.0.1:${receiver.address().port}/hook?token=${HOOK_TOKEN}`,
        },
        allowLog: [],
      });
      ({ sluice } = stack);
    });

    after(async () => {
      if (stack) {
        const logs = sluice.allLogs() + sluice.stderr;
        await stack.stop();
        assert.ok(!logs.includes(HOOK_TOKEN), 'the webhook URL token appears in the logs');
        assert.ok(!logs.includes(ADMIN_KEY));
      }
      await new Promise((r) => receiver.close(r));
    });

    const ofKind = (kind) => hooks.filter((h) => h.body.alert.kind === kind);

    it('posts one budget alert at 80% and one at 100%', async () => {
      // two workers: every request on a fresh connection, two at a time
      await sluiceCli(sluice, ['teams', 'set', 'ops', '--budget', '100', '--period', 'month']);
      const key = await createKey(sluice, 'alice', ['--team', 'ops', '--budget', '0.030', '--period', 'month']);
      const statuses = [];
      for (let i = 0; i < 12; i += 2) {
        const rs = await Promise.all([chat(sluice, key.key), chat(sluice, key.key)]);
        statuses.push(...rs.map((r) => r.status));
      }
      assert.equal(statuses.filter((s) => s === 200).length, 10, `statuses ${statuses}`);
      assert.equal(statuses.filter((s) => s === 429).length, 2, `statuses ${statuses}`);
      await waitFor(() => ofKind('budget').length >= 2, { timeoutMs: 10000, msg: 'two budget alerts' });
      // and no third one comes, however long we look (the refused requests raised none)
      await chat(sluice, key.key);
      await waitFor(async () => (await request(`http://127.0.0.1:${adminPort}/admin/alerts`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }))
        .json().data.filter((a) => a.kind === 'budget').every((a) => a.delivery === 'sent'), { msg: 'budget alerts sent' });
      const budget = ofKind('budget');
      assert.equal(budget.length, 2, JSON.stringify(budget.map((h) => h.body.alert)));
      const [a80, a100] = budget.map((h) => h.body).sort((x, y) => parseInt(x.alert.threshold, 10) - parseInt(y.alert.threshold, 10));
      assert.equal(a80.alert.threshold, '80%');
      assert.equal(a100.alert.threshold, '100%');
      for (const b of [a80, a100]) {
        assert.equal(typeof b.text, 'string');
        assert.match(b.text, /key "alice"/);
        assert.equal(b.alert.subject, 'key alice');
        assert.equal(b.alert.scope, 'key');
        assert.equal(b.alert.budget_usd, '0.03');
        assert.equal(b.alert.period, 'month');
        assert.match(b.alert.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      }
      assert.equal(a80.alert.severity, 'warning');
      assert.equal(a100.alert.severity, 'critical');
      assert.ok(parseFloat(a80.alert.spent_usd) >= 0.024 && parseFloat(a80.alert.spent_usd) < 0.030, a80.alert.spent_usd);
      assert.equal(a100.alert.spent_usd, '0.03');
      // Slack-compatible: JSON with "text"; the URL's query went along
      for (const h of budget) {
        assert.equal(h.type, 'application/json');
        assert.equal(h.url, `/hook?token=${HOOK_TOKEN}`);
      }
      const shown = (await request(`http://127.0.0.1:${adminPort}/admin/alerts`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json().data;
      assert.deepEqual(shown.filter((a) => a.kind === 'budget').map((a) => a.tries).sort(), [1, 2], 'the first post was retried');
      // the team (0.03 of 100 USD) stayed quiet
      assert.equal(budget.filter((h) => h.body.alert.scope === 'team').length, 0);
    });

    it('posts one alert when a breaker opens and one when every target of a model fails', async () => {
      for (let i = 0; i < 4; i++) {
        const r = await request(`${sluice.root}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${sluice.key}`, 'content-type': 'application/json' },
          body: { model: 'broken', messages: [{ role: 'user', content: 'x' }] },
          timeoutMs: 10000,
        });
        assert.ok(r.status >= 500, `${r.status} ${r.body}`);
      }
      await waitFor(() => ofKind('breaker').length >= 1 && ofKind('model_down').length >= 1,
        { timeoutMs: 10000, msg: 'breaker and model_down alerts' });
      const list = await request(`http://127.0.0.1:${adminPort}/admin/alerts`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      const shown = list.json().data;
      assert.ok(shown.some((a) => a.kind === 'breaker' && a.subject === 'target dead/model-a'), JSON.stringify(shown));
      assert.ok(shown.some((a) => a.kind === 'model_down' && a.subject === 'model broken'));
      assert.equal(ofKind('breaker').length, 1);
      assert.equal(ofKind('breaker')[0].body.alert.target, 'dead/model-a');
      assert.equal(ofKind('model_down').length, 1, 'once per episode, whatever the failures');
    });
  });

  describe('to a dead webhook', () => {
    let stack, sluice, hole, held, adminPort, pricing;

    before(async () => {
      // accepts connections and reads, never answers
      held = [];
      hole = net.createServer((s) => { held.push(s); s.on('error', () => {}); s.resume(); });
      await new Promise((r) => hole.listen(0, '127.0.0.1', r));
      adminPort = await freePort();
      pricing = await pricingFile();
      tmps.push(pricing.dir);
      stack = await startStack({
        name: 'alerts-dead',
        config: (cfg) => {
          cfg.server.workers = 1;
          cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
          cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
          cfg.pricing = pricing.file;
          cfg.alerts = { webhook: 'env:SLUICE_ALERT_URL', timeout: '10s', retries: 0 };
          return cfg;
        },
        env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY, SLUICE_ALERT_URL: `http://127.0.0.1:${hole.address().port}/hook` },
      });
      ({ sluice } = stack);
    });

    after(async () => {
      if (stack) await stack.stop();
      for (const s of held) s.destroy();
      await new Promise((r) => hole.close(r));
    });

    it('answers every request while the alert post hangs', async () => {
      const key = await createKey(sluice, 'bob', ['--budget', '0.030', '--period', 'month']);
      for (let i = 0; i < 8; i++) assert.equal((await chat(sluice, key.key)).status, 200);
      // the 80% alert is being posted: the receiver holds the connection open
      await waitFor(() => held.length >= 1, { timeoutMs: 5000, msg: 'the webhook post' });
      const alerts = () => request(`http://127.0.0.1:${adminPort}/admin/alerts`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
        .then((r) => r.json().data.filter((a) => a.kind === 'budget'));
      assert.equal((await alerts())[0].delivery, 'pending');
      const hooked = held.length;
      // meanwhile the one worker serves: 40 requests, 8 at a time, all answered
      const other = sluice.key;
      for (let round = 0; round < 5; round++) {
        const rs = await Promise.all(Array.from({ length: 8 }, () => chat(sluice, other, 'meanwhile')));
        for (const r of rs) assert.equal(r.status, 200, r.body);
      }
      // not one of them waited for the receiver: its post is still unanswered (10 s timeout)
      assert.equal((await alerts())[0].delivery, 'pending', 'the post is still hanging');
      assert.equal(held.length, hooked, 'no retry yet: the first post is still open');
      // then it times out and, with no retries configured, gives up: shown on the dashboard
      await waitFor(async () => (await alerts())[0].delivery === 'failed', { timeoutMs: 30000, msg: 'delivery failed' });
      assert.equal((await alerts())[0].tries, 1);
      assert.equal((await chat(sluice, other, 'after')).status, 200);
    });
  });
});
