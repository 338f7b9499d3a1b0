// The admin API on server.admin_listen: the admin key guards every route
// (and is never echoed), keys made over HTTP work with the SDK at once and
// PATCH / DELETE reach every worker within a second without a reload, usage
// matches `sluice usage --format json`, teams and write-only secrets, reload
// replaces the workers, and the error statuses are the documented ones.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import OpenAI from 'openai';
import {
  startStack, request, errorShape, freePort, randomKey, randomMasterKey, usageJson,
  sluiceCli, sleep, waitFor, portAccepts, SLUICE_BIN,
} from '../lib/harness.mjs';

const ADMIN_KEY = randomKey('sk-admin-');
const MASTER_KEY = randomMasterKey();
const SECRET_VALUE = `sk-upstream-${randomKey('')}`;

// Polls fn() (a request) until pred(response) holds; returns the time it took, or throws after ms.
async function within(ms, fn, pred, what) {
  const t0 = Date.now();
  let last;
  for (;;) {
    last = await fn();
    if (pred(last)) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms; last ${last.status} ${last.body}`);
    await sleep(20);
  }
}

describe('admin API', () => {
  let stack, sluice, adminPort, admin;
  const made = []; // key texts created here, to check that logs never show them

  before(async () => {
    adminPort = await freePort();
    stack = await startStack({
      name: 'admin',
      config: (cfg) => {
        cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
        cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
        cfg.models['other-model'] = { targets: ['mock/other-target'] };
        return cfg;
      },
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY, SLUICE_MASTER_KEY: MASTER_KEY },
    });
    ({ sluice } = stack);
    admin = (path, { method = 'GET', body, key = ADMIN_KEY, headers = {} } = {}) => request(
      `http://127.0.0.1:${adminPort}${path}`, {
        method,
        body,
        timeoutMs: 5000,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
      });
  });
  after(async () => {
    if (!stack) return;
    const logs = sluice.allLogs() + sluice.stderr;
    await stack.stop();
    for (const s of [ADMIN_KEY, MASTER_KEY, SECRET_VALUE, ...made]) {
      assert.ok(!logs.includes(s), 'a secret appears in the logs');
    }
  });

  const sdk = (key) => new OpenAI({ baseURL: sluice.baseURL, apiKey: key, maxRetries: 0, timeout: 10000 });
  const chatWith = (key, model = 'gpt-4o-mini') => request(`${sluice.root}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: { model, messages: [{ role: 'user', content: 'admin test' }] },
    timeoutMs: 5000,
  });

  function assertError(r, status, what) {
    assert.equal(r.status, status, `${what}: ${r.status} ${r.body}`);
    return errorShape(r.json());
  }

  it('refuses requests without the admin key or with a wrong one, never echoing it', async () => {
    for (const path of ['/admin/keys', '/admin/usage', '/admin/secrets', '/admin/teams']) {
      const e = assertError(await admin(path, { key: null }), 401, `${path} without key`);
      assert.equal(e.code, 'invalid_api_key');
    }
    const wrong = randomKey('sk-wrong-');
    for (const headers of [{ authorization: `Bearer ${wrong}` }, { 'x-api-key': wrong }]) {
      const r = await admin('/admin/keys', { key: null, headers });
      assertError(r, 401, 'wrong key');
      assert.ok(!r.body.includes(wrong), 'the wrong key is not echoed');
    }
    // a client key is not an admin key, and a mutation without the key changes nothing
    assertError(await admin('/admin/keys', { key: sluice.key }), 401, 'client key');
    const r = await admin('/admin/keys', { method: 'POST', key: null, body: { name: 'sneaky' } });
    assertError(r, 401, 'POST without key');
    assert.ok(!(await admin('/admin/keys')).json().data.some((k) => k.name === 'sneaky'));
    // x-api-key works like Bearer
    assert.equal((await admin('/admin/keys', { key: null, headers: { 'x-api-key': ADMIN_KEY } })).status, 200);
  });

  it('creates a key the SDK can use; PATCH models and DELETE reach every worker within 1 s', async () => {
    const c = await admin('/admin/keys', {
      method: 'POST',
      body: { name: 'api-made', models: ['gpt-4o*'], rpm: 100, budget_usd: 12.5, period: 'month',
        expires: '30d', metadata: { owner: 'test' } },
    });
    assert.equal(c.status, 201, c.body);
    const k = c.json();
    made.push(k.key);
    assert.match(k.key, /^sk-sluice-[A-Za-z0-9]{43}$/);
    assert.match(k.id, /^key_[0-9a-f]{16}$/);
    assert.equal(k.name, 'api-made');
    assert.equal(k.status, 'active');
    assert.deepEqual(k.models, ['gpt-4o*']);
    assert.equal(k.rpm, 100);
    assert.equal(k.budget_usd, '12.50');
    assert.equal(k.budget_nano_usd, 12500000000);
    assert.equal(k.period, 'month');
    assert.deepEqual(k.metadata, { owner: 'test' });
    assert.equal(k.last4, k.key.slice(-4));
    const exp = Date.parse(k.expires) / 1000 - Date.now() / 1000;
    assert.ok(exp > 29 * 86400 && exp < 31 * 86400, `expires ${k.expires}`);

    const r = await sdk(k.key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello admin' }] });
    assert.equal(r.choices[0].message.content, 'mock reply: hello admin');

    // listed and shown without the text, as the CLI shows it
    const list = await admin('/admin/keys');
    assert.equal(list.status, 200);
    assert.equal(list.json().object, 'list');
    const row = list.json().data.find((x) => x.id === k.id);
    assert.ok(row, 'the new key is listed');
    assert.ok(!list.body.includes(k.key), 'the list never shows key text');
    assert.equal(row.key, undefined);
    const cli = await sluiceCli(sluice, ['keys', 'show', k.id, '--json']);
    assert.equal(cli.code, 0, cli.stderr);
    const shown = JSON.parse(cli.stdout);
    assert.deepEqual({ ...row, status: shown.status }, shown, 'same JSON as sluice keys show --json');
    for (const id of [k.id, 'api-made']) {
      const g = await admin(`/admin/keys/${id}`);
      assert.equal(g.status, 200, g.body);
      assert.ok(!g.body.includes(k.key));
      assert.equal(g.json().id, k.id);
    }

    // PATCH the models to a glob that leaves gpt-4o-mini out: 403 within 1 s, no reload
    const pids0 = sluice.workerPids();
    const p = await admin('/admin/keys/api-made', { method: 'PATCH', body: { models: ['claude-*'], budget_usd: null } });
    assert.equal(p.status, 200, p.body);
    assert.deepEqual(p.json().models, ['claude-*']);
    assert.equal(p.json().budget_usd, null);
    assert.equal(p.json().rpm, 100, 'fields not named stay');
    await within(1000, () => chatWith(k.key), (x) => x.status === 403, 'PATCH models -> 403');
    for (let i = 0; i < 6; i++) {
      const x = await chatWith(k.key);
      assert.equal(x.status, 403, x.body);
      assert.equal(errorShape(x.json()).code, 'model_not_allowed');
    }
    // and back: null allows every model again
    const back = await admin(`/admin/keys/${k.id}`, { method: 'PATCH', body: { models: null, expires: null } });
    assert.equal(back.status, 200, back.body);
    assert.deepEqual(back.json().models, []);
    assert.equal(back.json().expires, null);
    await within(1000, () => chatWith(k.key), (x) => x.status === 200, 'PATCH models null -> 200');

    // DELETE revokes: 401 within 1 s on every worker, no reload
    const d = await admin('/admin/keys/api-made', { method: 'DELETE' });
    assert.equal(d.status, 200, d.body);
    assert.equal(d.json().status, 'revoked');
    assert.ok(d.json().revoked);
    await within(1000, () => chatWith(k.key), (x) => x.status === 401, 'DELETE -> 401');
    for (let i = 0; i < 6; i++) {
      const x = await chatWith(k.key);
      assert.equal(x.status, 401, x.body);
      assert.ok(!x.body.includes(k.key));
    }
    assert.deepEqual(sluice.workerPids(), pids0, 'no reload happened');

    // POST .../revoke on a revoked key keeps its first revocation time
    const again = await admin(`/admin/keys/${k.id}/revoke`, { method: 'POST' });
    assert.equal(again.status, 200, again.body);
    assert.equal(again.json().revoked, d.json().revoked);
  });

  it('takes budgets exactly, validates like the CLI and refuses a taken name', async () => {
    const mk = (body) => admin('/admin/keys', { method: 'POST', body });
    let r = await mk({ name: 'exact-1', budget_usd: '0.000000001', period: 'day' });
    assert.equal(r.status, 201, r.body);
    made.push(r.json().key);
    assert.equal(r.json().budget_nano_usd, 1);
    r = await mk({ name: 'exact-2', budget_usd: 0.1, period: 'total' });
    assert.equal(r.status, 201, r.body);
    made.push(r.json().key);
    assert.equal(r.json().budget_usd, '0.10');
    r = await mk({ name: 'exact-3', budget_usd: 25, period: 'month', team: 'eng' });
    assert.equal(r.status, 201, r.body);
    made.push(r.json().key);
    assert.equal(r.json().budget_nano_usd, 25000000000);
    r = await mk({ name: 'exact-4', budget_usd: '7.5', period: 'week' });
    assert.equal(r.status, 201, r.body);
    made.push(r.json().key);
    assert.equal(r.json().period, 'week');

    const bad = [
      [{ name: 'x1', budget_usd: 0.1234567, period: 'day' }, 'budget_usd'],
      [{ name: 'x2', budget_usd: '12.3456789012', period: 'day' }, 'budget_usd'],
      [{ name: 'x3', budget_usd: -1, period: 'day' }, 'budget_usd'],
      [{ name: 'x4', budget_usd: '5' }, 'period'],
      [{ name: 'x5', period: 'fortnight', budget_usd: '5' }, 'period'],
      [{ name: 'bad name!' }, 'name'],
      [{ name: 'key_abc' }, 'name'],
      [{ name: 'x6', models: [] }, 'models'],
      [{ name: 'x7', models: ['has space'] }, 'models'],
      [{ name: 'x8', rpm: -3 }, 'rpm'],
      [{ name: 'x9', expires: 'yesterday' }, 'expires'],
      [{ name: 'x10', expires: 1000 }, 'expires'],
      [{ name: 'x11', metadata: [1] }, 'metadata'],
      [{ name: 'x12', colour: 'blue' }, 'colour'],
      [{ team: 'eng' }, 'name'],
    ];
    for (const [body, param] of bad) {
      const e = assertError(await mk(body), 400, JSON.stringify(body));
      assert.equal(e.param, param, `${JSON.stringify(body)} -> ${JSON.stringify(e)}`);
    }
    const names = (await admin('/admin/keys')).json().data.map((k) => k.name);
    assert.ok(!names.some((n) => /^x\d+$/.test(n)), 'nothing was created by a bad request');

    const e = assertError(await mk({ name: 'exact-1' }), 409, 'taken name');
    assert.equal(e.param, 'name');
    const p = await admin('/admin/keys/exact-2', { method: 'PATCH', body: { name: 'exact-1' } });
    assertError(p, 409, 'rename to a taken name');
    assertError(await admin('/admin/keys/exact-2', { method: 'PATCH', body: {} }), 400, 'empty PATCH');
  });

  it('reports usage as sluice usage --format json does', async () => {
    const c = await admin('/admin/keys', { method: 'POST', body: { name: 'usage-key' } });
    assert.equal(c.status, 201, c.body);
    const k = c.json();
    made.push(k.key);
    for (let i = 0; i < 3; i++) {
      assert.equal((await chatWith(k.key)).status, 200);
    }
    assert.equal((await chatWith(k.key, 'no-such-model')).status, 404);
    const u = await admin('/admin/usage?since=all&by=key');
    assert.equal(u.status, 200, u.body);
    assert.equal(u.json().object, 'list');
    const row = u.json().data.find((g) => g.id === k.id);
    assert.ok(row, `usage has the key: ${u.body}`);
    assert.equal(row.name, 'usage-key');
    assert.equal(row.requests, 4);
    assert.equal(row.errors, 1);
    for (const f of ['prompt_tokens', 'completion_tokens', 'cached_tokens']) assert.equal(typeof row[f], 'number');
    assert.match(row.cost_usd, /^\d+\.\d+$/);
    assert.deepEqual(u.json().data, await usageJson(sluice, 'key', 'all'));
    for (const by of ['team', 'model', 'provider', 'day']) {
      const r = await admin(`/admin/usage?by=${by}&since=7d`);
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(r.json().data, await usageJson(sluice, by, '7d'), `by ${by}`);
    }
    assert.equal(assertError(await admin('/admin/usage?by=colour'), 400, 'by').param, 'by');
    assert.equal(assertError(await admin('/admin/usage?since=soon'), 400, 'since').param, 'since');
    assert.equal(assertError(await admin('/admin/usage?limit=3'), 400, 'unknown param').param, 'limit');
  });

  it('exports shared counters on /metrics: unpriced requests, outcomes, rate limits', async () => {
    // the sum of a family's samples whose labels include the given ones ({} for none)
    const counter = (text, name, labels = {}) => {
      let sum = NaN;
      for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\d+)$`, 'gm'))) {
        const have = Object.fromEntries([...(m[1] || '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum = (Number.isNaN(sum) ? 0 : sum) + Number(m[2]);
      }
      return sum;
    };
    assert.equal((await fetch(`http://127.0.0.1:${adminPort}/metrics`)).status, 401);
    const before = await admin('/metrics');
    assert.equal(before.status, 200, before.body);
    assert.match(before.headers['content-type'], /^text\/plain/);
    const unpriced0 = counter(before.body, 'sluice_unpriced_requests_total');
    const ok0 = counter(before.body, 'sluice_requests_total', { outcome: '2xx' }) || 0;
    assert.ok(Number.isFinite(unpriced0), before.body);

    // the test config has no pricing: every answered request is unpriced, in whichever worker
    const c = await admin('/admin/keys', { method: 'POST', body: { name: 'metrics-key', rpm: 2 } });
    assert.equal(c.status, 201, c.body);
    made.push(c.json().key);
    assert.equal((await chatWith(c.json().key)).status, 200);
    assert.equal((await chatWith(c.json().key)).status, 200);
    // rpm 2: the third request in this minute is refused with Retry-After
    const limited = await chatWith(c.json().key);
    assert.equal(limited.status, 429, limited.body);
    assert.match(limited.body, /rate_limit_exceeded/);
    assert.ok(Number(limited.headers['retry-after']) >= 1, JSON.stringify(limited.headers));

    const after = await admin('/metrics');
    assert.equal(counter(after.body, 'sluice_unpriced_requests_total'), unpriced0 + 2, after.body);
    assert.equal(counter(after.body, 'sluice_requests_total', { outcome: '2xx' }), ok0 + 2, after.body);
    assert.ok(counter(after.body, 'sluice_requests_total', { outcome: '4xx', model: 'gpt-4o-mini', frontend: 'chat' }) >= 1, after.body);
  });

  it('sets, lists and removes team budgets', async () => {
    let r = await admin('/admin/teams/eng', { method: 'PUT', body: { budget_usd: '500', period: 'month' } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().team, 'eng');
    assert.equal(r.json().budget_usd, '500.00');
    assert.equal(r.json().period, 'month');
    r = await admin('/admin/teams/eng', { method: 'PUT', body: { budget_usd: 12.5, period: 'day' } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().budget_nano_usd, 12500000000);
    r = await admin('/admin/teams');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json().data.map((t) => [t.team, t.budget_usd, t.period]), [['eng', '12.50', 'day']]);
    const cli = await sluiceCli(sluice, ['teams', 'list', '--json']);
    assert.deepEqual(r.json().data, JSON.parse(cli.stdout), 'same JSON as sluice teams list --json');
    assert.equal((await admin('/admin/teams/eng')).json().team, 'eng');
    assertError(await admin('/admin/teams/eng', { method: 'PUT', body: { budget_usd: '5' } }), 400, 'no period');
    assertError(await admin('/admin/teams/eng', { method: 'PUT', body: { budget_usd: '0', period: 'day' } }), 400, 'zero');
    assertError(await admin('/admin/teams/-bad', { method: 'PUT', body: { budget_usd: '1', period: 'day' } }), 400, 'name');
    r = await admin('/admin/teams/eng', { method: 'DELETE' });
    assert.equal(r.status, 204, r.body);
    assertError(await admin('/admin/teams/eng', { method: 'DELETE' }), 404, 'gone');
    assertError(await admin('/admin/teams/eng'), 404, 'gone');
    assert.deepEqual((await admin('/admin/teams')).json().data, []);
  });

  it('stores secrets write-only', async () => {
    let r = await admin('/admin/secrets/openai', { method: 'PUT', body: { value: SECRET_VALUE } });
    assert.equal(r.status, 204, r.body);
    r = await admin('/admin/secrets/openai', { method: 'PUT', body: { value: SECRET_VALUE + '2' } });
    assert.equal(r.status, 204, r.body);
    r = await admin('/admin/secrets');
    assert.equal(r.status, 200, r.body);
    assert.ok(!r.body.includes(SECRET_VALUE), 'the list never shows a value');
    const [s] = r.json().data;
    assert.deepEqual(Object.keys(s).sort(), ['created', 'name', 'updated']);
    assert.equal(s.name, 'openai');
    // there is no way to read a value
    const g = await admin('/admin/secrets/openai');
    assert.equal(g.status, 405);
    assert.ok(!g.body.includes(SECRET_VALUE));
    // the CLI opens it with the same master key
    const cli = await sluiceCli(sluice, ['secrets', 'list', '--json']);
    assert.equal(JSON.parse(cli.stdout)[0].name, 'openai');
    // bad input, echoed nowhere
    r = await admin('/admin/secrets/openai', { method: 'PUT', body: `{"value": "${SECRET_VALUE}"` });
    assert.ok(!r.body.includes(SECRET_VALUE));
    assertError(r, 400, 'bad JSON');
    assertError(await admin('/admin/secrets/openai', { method: 'PUT', body: { value: '' } }), 400, 'empty');
    assertError(await admin('/admin/secrets/openai', { method: 'PUT', body: { value: 5 } }), 400, 'number');
    r = await admin('/admin/secrets/openai', { method: 'DELETE' });
    assert.equal(r.status, 204, r.body);
    assertError(await admin('/admin/secrets/openai', { method: 'DELETE' }), 404, 'gone');
    assert.deepEqual((await admin('/admin/secrets')).json().data, []);
  });

  it('answers 400 for bad JSON, 404 for unknown paths and 405 for wrong methods', async () => {
    let e = assertError(await admin('/admin/keys', { method: 'POST', body: '{"name":' }), 400, 'bad JSON');
    assert.equal(e.code, 'invalid_json');
    assertError(await admin('/admin/keys', { method: 'POST', body: '[1]' }), 400, 'not an object');
    assertError(await admin('/admin/keys', { method: 'POST', body: '' }), 400, 'empty body');
    assertError(await admin('/admin/nope'), 404, 'unknown path');
    assertError(await admin('/v1/chat/completions'), 404, 'client path on the admin port');
    assertError(await admin('/admin/keys/no-such-key'), 404, 'unknown key');
    const pasted = randomKey('sk-sluice-');
    const r = await admin(`/admin/keys/${pasted}`);
    assertError(r, 404, 'key text as id');
    assert.ok(!r.body.includes(pasted));
    assertError(await admin('/admin/keys/exact-1/other', { method: 'POST' }), 404, 'unknown sub-path');
    let m = await admin('/admin/keys', { method: 'PUT', body: {} });
    assertError(m, 405, 'PUT /admin/keys');
    assert.match(m.headers.allow, /GET/);
    m = await admin('/admin/keys/exact-1', { method: 'POST' });
    assertError(m, 405, 'POST on a key');
    assert.equal(m.headers.allow, 'GET, PATCH, DELETE');
    m = await admin('/admin/keys/exact-1/revoke');
    assertError(m, 405, 'GET revoke');
    assert.equal(m.headers.allow, 'POST');
    assertError(await admin('/admin/reload'), 405, 'GET reload');
    // the client port has no admin routes
    e = assertError(await request(`${sluice.root}/admin/keys`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }), 404, 'admin path on the client port');
  });

  it('reloads: 202 and the workers are replaced', async () => {
    const pids0 = await sluice.waitWorkers();
    const r = await admin('/admin/reload', { method: 'POST' });
    assert.equal(r.status, 202, r.body);
    assert.deepEqual(r.json(), { status: 'reloading' });
    const pids1 = await sluice.waitWorkers({ notIn: pids0, timeoutMs: 10000 });
    assert.equal(pids1.length, 2);
    // the new generation serves the admin API too
    assert.equal((await admin('/admin/keys')).status, 200);
    assert.equal((await sluice.chat({})).status, 200);
  });
});

describe('admin API without auth.admin_key', () => {
  let stack, adminPort;

  before(async () => {
    adminPort = await freePort();
    stack = await startStack({
      name: 'admin-nokey',
      config: (cfg) => { cfg.server.admin_listen = `127.0.0.1:${adminPort}`; return cfg; },
    });
  });
  after(async () => { if (stack) await stack.stop(); });

  it('refuses every request with 401 naming auth.admin_key', async () => {
    for (const [method, path] of [['GET', '/admin/keys'], ['POST', '/admin/reload'], ['GET', '/admin/usage']]) {
      const r = await request(`http://127.0.0.1:${adminPort}${path}`, {
        method, headers: { authorization: `Bearer ${randomKey()}` }, timeoutMs: 5000,
      });
      assert.equal(r.status, 401, r.body);
      assert.match(errorShape(r.json()).message, /auth\.admin_key is not configured/);
    }
    assert.ok(fs.existsSync(stack.sluice.pidFile));
  });
});

describe('admin API in --single mode', () => {
  it('answers reload with 409: there is no master', async (t) => {
    // the harness runs the master; --single is started by hand on the same config
    const adminPort = await freePort();
    const stack = await startStack({
      name: 'admin-single',
      config: (cfg) => {
        cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
        cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
        return cfg;
      },
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY },
    });
    try {
      await stack.sluice.stop();
      const proc = spawn(SLUICE_BIN, ['serve', '--single', '-c', stack.sluice.configPath],
        { env: stack.sluice.env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      proc.stderr.on('data', (c) => { stderr += c; });
      try {
        await waitFor(() => portAccepts(adminPort), { timeoutMs: 10000, msg: 'single-mode admin port' });
        const r = await request(`http://127.0.0.1:${adminPort}/admin/reload`, {
          method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` }, timeoutMs: 5000,
        });
        assert.equal(r.status, 409, r.body);
        assert.match(errorShape(r.json()).message, /--single/);
        assert.equal((await request(`http://127.0.0.1:${adminPort}/admin/keys`, {
          headers: { authorization: `Bearer ${ADMIN_KEY}` }, timeoutMs: 5000,
        })).status, 200);
      } finally {
        proc.kill('SIGTERM');
        await new Promise((res) => { if (proc.exitCode !== null) res(); else proc.on('exit', res); });
        t.diagnostic(stderr.split('\n').filter((l) => /\[(alert|emerg)\]/.test(l)).join('\n'));
      }
    } finally {
      await stack.stop();
    }
  });
});
