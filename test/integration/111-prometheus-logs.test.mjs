// Prometheus that answers questions, and JSON access logs. /metrics passes
// `promtool check metrics` (its lint included) with requests by frontend,
// model, provider and status class, duration, time-to-first-token and
// upstream latency histograms, and tokens and cost by model, provider, key
// and team; a real Prometheus (Debian's, on loopback with its own data
// directory) scrapes it and answers a PromQL query for cost by model. With
// server.access_log_format: json every request is one JSON object a line,
// with its ids, key and team, models, provider, attempts, tokens, cost,
// cache status, latency and time to first token, and no secret.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import {
  startMock, startSluice, makeTmpDir, writePricing, freePort, request, randomKey, waitFor, run,
  collectStream, usdToNano,
} from '../lib/harness.mjs';

const ADMIN_KEY = randomKey('sk-admin-');
const PROMPT = `do not log this prompt ${randomKey('')}`;

describe('Prometheus metrics and JSON access logs', () => {
  let dir, mock, sluice, adminPort, prom;
  const keys = {};

  const admin = (p, opts = {}) => request(`http://127.0.0.1:${adminPort}${p}`, {
    ...opts,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(opts.body ? { 'content-type': 'application/json' } : {}) },
  });

  before(async () => {
    dir = await makeTmpDir('prom');
    mock = await startMock();
    const pricing = await writePricing(path.join(dir, 'pricing.yaml'), {
      'mock/gpt-4o-mini-2024-07-18': { input: 1000, output: 2000 },
      'mock/other-target': { input: 3000, output: 3000 },
    });
    adminPort = await freePort();
    sluice = await startSluice({
      dir, mock,
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY },
      config: (cfg) => {
        cfg.pricing = pricing;
        cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
        cfg.server.access_log = path.join(cfg.server.pid_file, '..', 'access.log');
        cfg.server.access_log_format = 'json';
        cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
        cfg.models['other-model'] = { targets: ['mock/other-target'] };
        return cfg;
      },
    });
    for (const [name, team] of [['alice', 'eng'], ['bob', 'ops']]) {
      const r = await admin('/admin/keys', { method: 'POST', body: { name, team } });
      assert.equal(r.status, 201, r.body);
      keys[name] = r.json().key;
    }
  });
  after(async () => {
    const errs = [];
    if (prom && prom.exitCode === null) {
      prom.kill('SIGTERM');
      await new Promise((r) => { prom.on('exit', r); setTimeout(r, 5000); });
    }
    if (sluice) {
      const logs = sluice.allLogs() + sluice.stderr;
      await sluice.stop().catch((e) => errs.push(e));
      for (const s of [ADMIN_KEY, ...Object.values(keys)]) assert.ok(!logs.includes(s), 'a key is in the logs');
    }
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
  });

  const chat = (key, body) => request(`${sluice.root}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }], ...body },
  });

  it('answers with labelled series that promtool accepts', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await chat(keys.alice, {})).status, 200);
    assert.equal((await chat(keys.bob, { model: 'other-model' })).status, 200);
    const stream = await sluice.client({ apiKey: keys.bob }).chat.completions.create({
      model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: PROMPT }],
    });
    await collectStream(stream);
    assert.equal((await chat(keys.alice, { model: 'no-such-model' })).status, 404);
    await mock.faults({ 'x-mock-status': '503' }, 1);
    assert.equal((await chat(keys.alice, {})).status, 503);

    const m = await admin('/metrics');
    assert.equal(m.status, 200);
    const text = m.body;
    const has = (re) => assert.match(text, re);
    has(/^sluice_requests_total\{frontend="chat",model="gpt-4o-mini",provider="mock",outcome="2xx"\} 4$/m);
    has(/^sluice_requests_total\{frontend="chat",model="other-model",provider="mock",outcome="2xx"\} 1$/m);
    has(/^sluice_requests_total\{frontend="chat",model="gpt-4o-mini",provider="mock",outcome="5xx"\} 1$/m);
    // a model nobody configured is not a label value of its own
    assert.doesNotMatch(text, /no-such-model/);
    has(/^sluice_requests_total\{frontend="chat",model="",provider="",outcome="4xx"\} 1$/m);
    has(/^sluice_request_duration_seconds_bucket\{frontend="chat",model="gpt-4o-mini",provider="mock",le="\+Inf"\} 5$/m);
    has(/^sluice_time_to_first_token_seconds_count\{frontend="chat",model="gpt-4o-mini",provider="mock"\} 1$/m);
    has(/^sluice_upstream_latency_seconds_count\{provider="mock",model="gpt-4o-mini-2024-07-18",outcome="ok"\} 4$/m);
    has(/^sluice_upstream_latency_seconds_count\{provider="mock",model="gpt-4o-mini-2024-07-18",outcome="error"\} 1$/m);
    has(/^sluice_tokens_total\{model="gpt-4o-mini",provider="mock",key="alice",team="eng",kind="prompt"\} \d+$/m);
    has(/^sluice_cost_nanodollars_total\{model="other-model",provider="mock",key="bob",team="ops"\} [1-9]\d*$/m);
    has(/^sluice_ledger_write_seconds_count [1-9]\d*$/m);
    has(/^sluice_target_breaker_state\{provider="mock",model="gpt-4o-mini-2024-07-18"\} 0$/m);

    const file = path.join(dir, 'metrics.txt');
    await fsp.writeFile(file, text);
    const r = await run('sh', ['-c', `promtool check metrics < ${file}`], { timeoutMs: 20000 });
    assert.equal(r.code, 0, `promtool: ${r.stdout}${r.stderr}`);
    assert.equal((r.stdout + r.stderr).trim(), '', `promtool lint: ${r.stdout}${r.stderr}`);
  });

  it('is scraped by a real Prometheus that answers cost by model', async () => {
    const promPort = await freePort();
    const data = path.join(dir, 'prom-data');
    await fsp.mkdir(data, { recursive: true });
    await fsp.writeFile(path.join(dir, 'admin.key'), ADMIN_KEY);
    const conf = path.join(dir, 'prometheus.yml');
    await fsp.writeFile(conf, [
      'global: {scrape_interval: 1s, evaluation_interval: 1s}',
      'scrape_configs:',
      '  - job_name: sluice',
      `    authorization: {type: Bearer, credentials_file: ${path.join(dir, 'admin.key')}}`,
      `    static_configs: [{targets: ["127.0.0.1:${adminPort}"]}]`,
      '',
    ].join('\n'));
    let out = '';
    prom = spawn('prometheus', [`--config.file=${conf}`, `--storage.tsdb.path=${data}`,
      `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    prom.stdout.on('data', (c) => { out += c; });
    prom.stderr.on('data', (c) => { out += c; });
    const query = async (q) => {
      const r = await request(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`, { timeoutMs: 3000 });
      return r.status === 200 ? r.json() : null;
    };
    const q = 'sum by (model) (sluice_cost_nanodollars_total) / 1e9';
    const res = await waitFor(async () => {
      const j = await query(q);
      return j && j.status === 'success' && j.data.result.length >= 2 ? j.data.result : null;
    }, { timeoutMs: 30000, intervalMs: 500, msg: `Prometheus answering ${q} (${out.slice(-500)})` });
    const byModel = Object.fromEntries(res.map((x) => [x.metric.model, Number(x.value[1])]));

    // the same numbers the ledger has
    const rows = JSON.parse((await run(process.env.SLUICE_BIN || path.join(process.cwd(), '../build/cmd/sluice'),
      ['usage', '--by', 'model', '--since', 'all', '--format', 'json', '-c', sluice.configPath],
      { env: sluice.env })).stdout);
    for (const row of rows) {
      const usd = Number(usdToNano(row.cost_usd)) / 1e9;
      assert.ok(Math.abs((byModel[row.id] ?? 0) - usd) < 1e-9, `${row.id}: Prometheus ${byModel[row.id]}, ledger ${usd}`);
    }
    assert.ok(byModel['other-model'] > 0 && byModel['gpt-4o-mini'] > 0, JSON.stringify(byModel));
    // and the questions people ask: cost by key, requests by status class
    const byKey = await query('sum by (key) (sluice_cost_nanodollars_total)');
    assert.deepEqual(byKey.data.result.map((x) => x.metric.key).sort(), ['alice', 'bob']);
    const errors = await query('sum by (outcome) (sluice_requests_total)');
    assert.ok(errors.data.result.some((x) => x.metric.outcome === '5xx'));
  });

  it('writes one JSON object per request to the access log', async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const r = await request(`${sluice.root}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.alice}`, 'content-type': 'application/json', traceparent: tp, 'x-request-id': 'json-log-1' },
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }] },
    });
    assert.equal(r.status, 200);
    const stream = await sluice.client({ apiKey: keys.bob }).chat.completions.create({
      model: 'other-model', stream: true, messages: [{ role: 'user', content: PROMPT }],
    }, { headers: { 'x-request-id': 'json-log-2' } });
    await collectStream(stream);
    assert.equal((await request(`${sluice.root}/v1/models`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    const file = path.join(path.dirname(sluice.pidFile), 'access.log');
    const lines = await waitFor(() => {
      const l = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
      return l.some((x) => x.includes('json-log-2')) ? l : null;
    }, { timeoutMs: 5000, msg: 'the access log lines' });
    const objs = lines.map((l) => JSON.parse(l)); // every line is one JSON object
    const a = objs.find((o) => o.request_id === 'json-log-1');
    assert.equal(a.method, 'POST');
    assert.equal(a.path, '/v1/chat/completions');
    assert.equal(a.status, 200);
    assert.equal(a.trace_id, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(a.key, 'alice');
    assert.equal(a.team, 'eng');
    assert.equal(a.model, 'gpt-4o-mini');
    assert.equal(a.served_model, 'gpt-4o-mini-2024-07-18');
    assert.equal(a.provider, 'mock');
    assert.equal(a.attempts, 1);
    assert.equal(a.stream, false);
    assert.ok(a.prompt_tokens > 0 && a.completion_tokens > 0);
    assert.equal(a.cost_usd, (a.prompt_tokens * 1000 + a.completion_tokens * 2000) / 1e6);
    assert.equal(a.cache, 'bypass');
    assert.ok(a.duration_ms >= 0);
    assert.equal(a.ttft_ms, null);
    const b = objs.find((o) => o.request_id === 'json-log-2');
    assert.equal(b.key, 'bob');
    assert.equal(b.team, 'ops');
    assert.equal(b.model, 'other-model');
    assert.equal(b.stream, true);
    assert.ok(b.ttft_ms >= 0 && b.ttft_ms <= b.duration_ms, JSON.stringify(b));
    assert.equal(b.trace_id, null); // tracing is off and the client sent none
    // a request that never got past authentication: the server's fields only
    const unauth = objs.find((o) => o.path === '/v1/models' && o.status === 401);
    assert.ok(unauth && unauth.key === undefined, JSON.stringify(unauth));
    const text = lines.join('\n');
    for (const s of [PROMPT, ADMIN_KEY, ...Object.values(keys), mock.apiKey, sluice.key, 'Bearer']) {
      assert.ok(!text.includes(s), 'a secret or the prompt is in the access log');
    }
  });
});
