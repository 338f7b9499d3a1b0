// The request pipeline's contract, checked from outside: the default
// configuration answers a first request with nothing else running; a
// provider's configured headers replace a client's; budget and rate-limit
// refusals say whether to retry and keep the model in the ledger; key
// updates keep what they do not change; /v1/messages answers carry
// request-id; a stream cut by the drain deadline ends with an error event;
// /admin/targets shows the breakers.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import {
  REPO, SLUICE_BIN, makeTmpDir, startStack, freePort, waitFor, request, sleep, withTimeout,
  sluiceCli, createKey, usageJson, writePricing,
} from '../lib/harness.mjs';

describe('the default configuration', () => {
  let dir, proc, port, key, stderr = '';

  before(async () => {
    dir = await makeTmpDir('default-config');
    port = await freePort();
    let yaml = await fsp.readFile(path.join(REPO, 'etc/sluice.yaml'), 'utf8');
    // only where it listens and keeps its files changes: the models and providers are the shipped ones
    yaml = yaml.replace(/^  listen: .*$/m, `  listen: 127.0.0.1:${port}`)
      .replace(/^  admin_listen: .*$/m, '  admin_listen:')
      .replace(/^  pid_file: .*$/m, `  pid_file: ${dir}/sluice.pid`)
      .replace(/^  path: var\/$/m, `  path: ${dir}/var/`)
      .replace('static_keys: [file:var/sluice.key]', `static_keys: [file:${dir}/sluice.key]`)
      .replace(/^pricing: etc\/pricing.yaml$/m, `pricing: ${path.join(REPO, 'etc/pricing.yaml')}`);
    key = 'sk-sluice-default-config-test';
    await fsp.writeFile(path.join(dir, 'sluice.key'), key + '\n', { mode: 0o600 });
    await fsp.writeFile(path.join(dir, 'sluice.yaml'), yaml);
    proc = spawn(SLUICE_BIN, ['serve', '-c', path.join(dir, 'sluice.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr.on('data', (c) => { stderr += c; });
    await waitFor(async () => (await request(`http://127.0.0.1:${port}/healthz`, { timeoutMs: 500 })).status === 200,
      { timeoutMs: 10000, msg: 'the default configuration serving' });
  });

  after(async () => {
    if (proc) {
      proc.kill('SIGTERM');
      await withTimeout(new Promise((r) => proc.on('exit', r)), 5000, 'sluice exit').catch(() => proc.kill('SIGKILL'));
    }
    assert.doesNotMatch(stderr, /\[alert\]|\[emerg\]|AddressSanitizer|runtime error:/);
  });

  it('answers the README\'s first request through the built-in echo provider', async () => {
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: key, maxRetries: 0 });
    const r = await client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.choices[0].message.content, 'echo: hi');
    assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
    const s = await client.chat.completions.create({ model: 'demo', stream: true, messages: [{ role: 'user', content: 'hello stream' }] });
    let text = '';
    for await (const c of s) text += c.choices[0]?.delta?.content || '';
    assert.equal(text, 'echo: hello stream');
  });
});

describe('gateway contract', () => {
  let stack, sluice, mock, adminPort;
  const ADMIN_KEY = 'admin-key-for-gateway-test';
  const admin = (p, key = ADMIN_KEY) => request(`http://127.0.0.1:${adminPort}${p}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });

  before(async () => {
    adminPort = await freePort();
    stack = await startStack({
      name: 'gateway',
      config: (cfg, { dir }) => {
        cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
        cfg.server.drain_timeout = '1s';
        cfg.auth.admin_key = 'env:ADMIN_KEY';
        cfg.providers.mock.headers = { 'x-team-tag': 'from-provider' };
        cfg.providers.anth = { kind: 'anthropic', base_url: cfg.providers.mock.base_url.replace(/\/v1$/, ''), api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.models.claude = { targets: ['anth/claude-haiku-4-5'] };
        fs.writeFileSync(path.join(dir, 'pricing.yaml'), 'models:\n  "openai/gpt-4o-mini": {input: 0.15, output: 0.6}\n');
        cfg.pricing = path.join(dir, 'pricing.yaml');
        return cfg;
      },
      env: { ADMIN_KEY },
    });
    ({ sluice, mock } = stack);
  });

  after(async () => { if (stack) await stack.stop(); });

  it('a provider\'s configured header replaces the client\'s header of the same name', async () => {
    await mock.reset();
    const r = await sluice.chat({}, { headers: { 'X-Team-Tag': 'from-client' } });
    assert.equal(r.status, 200, r.body);
    const [q] = await mock.requests();
    assert.equal(q.headers['x-team-tag'], 'from-provider');
  });

  it('a budget refusal says not to retry, and the SDK does not retry it', async () => {
    await writePricing(path.join(sluice.dir, 'pricing.yaml'), { 'openai/gpt-4o-mini': { input: 1000, output: 1000 } });
    sluice.signal('SIGHUP');
    await sleep(1500);
    const k = await createKey(sluice, 'tight', ['--budget', '0.000001', '--period', 'day']);
    /* the first request fits under its capped reservation (budgets.max_reservation) and overspends */
    const first = await request(`${sluice.baseURL}/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
    });
    assert.equal(first.status, 200, first.body);
    const r = await request(`${sluice.baseURL}/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
    });
    assert.equal(r.status, 429, r.body);
    assert.equal(r.json().error.code, 'insufficient_quota');
    assert.equal(r.headers['x-should-retry'], 'false');
    const client = new OpenAI({ baseURL: sluice.baseURL, apiKey: k.key, maxRetries: 2 });
    await mock.reset();
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }), (e) => e.status === 429);
    const rows = (await usageJson(sluice, 'key')).filter((g) => g.name === 'tight');
    assert.equal(rows[0].requests, 3, 'the spending request, the raw refusal, one for the SDK\'s (not four)');
  });

  it('a rate-limited request\'s ledger row records the model', async () => {
    const k = await createKey(sluice, 'rpm1', ['--rpm', '1']);
    const hdr = { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' };
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
    assert.equal((await request(`${sluice.baseURL}/chat/completions`, { method: 'POST', headers: hdr, body })).status, 200);
    const r = await request(`${sluice.baseURL}/chat/completions`, { method: 'POST', headers: { ...hdr, 'x-request-id': 'rpm-limited-1' }, body });
    assert.equal(r.status, 429);
    const rows = (await usageJson(sluice, 'request')).filter((g) => g.id === 'rpm-limited-1');
    assert.equal(rows.length, 1);
    assert.equal(rows[0].name, 'gpt-4o-mini');
  });

  it('keys update --budget keeps the key\'s period', async () => {
    const k = await createKey(sluice, 'weekly-ish', ['--budget', '5', '--period', 'total']);
    const r = await sluiceCli(sluice, ['keys', 'update', k.id, '--budget', '7', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.budget_usd, '7.00');
    assert.equal(j.period, 'total');
    const none = await createKey(sluice, 'no-budget-yet');
    const r2 = await sluiceCli(sluice, ['keys', 'update', none.id, '--budget', '7']);
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /--period/);
  });

  it('/v1/messages answers carry request-id', async () => {
    const client = new Anthropic({ baseURL: sluice.root, apiKey: sluice.key, maxRetries: 0 });
    const m = await client.messages.create({ model: 'claude', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.ok(m.response.headers.get('request-id'), 'request-id header');
    assert.equal(m.response.headers.get('request-id'), m.response.headers.get('x-request-id'));
  });

  it('/admin/targets shows breakers, latency and in-flight per target', async () => {
    const r = await admin('/admin/targets');
    assert.equal(r.status, 200, r.body);
    const j = r.json();
    assert.ok(Array.isArray(j.targets));
    const t = j.targets.find((x) => x.provider === 'mock' && x.model === 'gpt-4o-mini-2024-07-18');
    assert.ok(t, JSON.stringify(j));
    assert.equal(t.breaker, 'closed');
    assert.ok(t.latency_us > 0);
    assert.equal(t.in_flight, 0);
    assert.equal((await admin('/admin/targets', null)).status, 401);
  });

  it('a stream cut by the drain deadline ends with an error event, never cleanly', async () => {
    const r = request(`${sluice.baseURL}/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${sluice.key}`, 'content-type': 'application/json', 'x-mock-chunks': '20', 'x-mock-chunk-delay-ms': '300' },
      body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'a long answer please, word by word' }] },
      timeoutMs: 15000,
    });
    await sleep(700);
    sluice.signal('SIGHUP');
    const res = await r;
    assert.equal(res.status, 200);
    assert.doesNotMatch(res.body, /\[DONE\]/);
    assert.match(res.body, /"code":"gateway_shutting_down"/);
  });
});
