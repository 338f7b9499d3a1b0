// OpenTelemetry traces: with nothing but the standard OTEL_* environment
// variables set, sluice exports one SERVER span per request and one CLIENT
// span per upstream attempt (a fallback chain shows both attempts) to an
// OTLP/HTTP receiver, over http/json and http/protobuf (decoded here with
// protobufjs against the opentelemetry-proto field numbers), with the GenAI
// semantic-convention attributes and sluice's own, and no secret in any of
// it. A client's traceparent makes the request span its child (an unsampled
// one records nothing), each attempt sends its own span id upstream, and
// the trace id reaches the ledger. A dead or hanging collector changes
// nothing for requests: they all complete, and the dropped spans are
// counted in /metrics.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import crypto from 'node:crypto';
import {
  startMock, startSluice, makeTmpDir, writePricing, freePort, request, randomKey, waitFor,
  collectStream, usageJson, usdToNano,
} from '../lib/harness.mjs';
import {
  OTLP, startCollector, hex, allSpans, traceSpans, metric as otlpMetric,
} from '../lib/otlp.mjs';

const ADMIN_KEY = randomKey('sk-admin-');
const COLLECTOR_SECRET = randomKey('otlp-secret-');
const PROMPT = `the secret prompt ${randomKey('')}`;

const metric = (adminPort, re) => otlpMetric(adminPort, ADMIN_KEY, re);


describe('OpenTelemetry traces', () => {
  let dir, mock;
  const running = [];

  before(async () => {
    dir = await makeTmpDir('otel');
    mock = await startMock();
  });
  after(async () => {
    const errs = [];
    for (const x of running.reverse()) await x.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
  });

  async function start(name, env, { adminPort, allowLog = [] } = {}) {
    const pricing = await writePricing(path.join(dir, `${name}-pricing.yaml`), {
      'mock/gpt-4o-mini-2024-07-18': { input: 1000, output: 2000 },
    });
    const sluice = await startSluice({
      dir, mock, name, allowLog,
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY, ...env },
      config: (cfg) => {
        cfg.pricing = pricing;
        cfg.models.fallback = { targets: ['mock/first-model', 'mock/gpt-4o-mini-2024-07-18'] };
        if (adminPort) {
          cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
          cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
        }
        return cfg;
      },
    });
    running.push({ stop: () => sluice.stop() });
    return sluice;
  }

  function assertNoSecret(collector, sluice) {
    for (const e of collector.exports) {
      const text = e.body.toString('latin1');
      for (const s of [sluice.key, mock.apiKey, ADMIN_KEY, COLLECTOR_SECRET, PROMPT, 'mock reply', 'Bearer']) {
        assert.ok(!text.includes(s), `an export carries ${s === PROMPT ? 'the prompt' : 'a secret'}`);
      }
    }
    const logs = sluice.allLogs() + sluice.stderr;
    assert.ok(!logs.includes(COLLECTOR_SECRET), 'the collector header value is in the logs');
  }

  it('exports request and attempt spans with GenAI attributes from the standard variables (http/json)', async () => {
    const collector = await startCollector();
    running.push({ stop: () => collector.close() });
    const sluice = await start('json', {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer%20${COLLECTOR_SECRET},x-tenant = acme`,
      OTEL_SERVICE_NAME: 'sluice-under-test',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    const traceId = crypto.randomBytes(16).toString('hex');
    const parentId = crypto.randomBytes(8).toString('hex');
    await mock.reset();
    await mock.faults({ 'x-mock-status': '500' }, 1); // the first target fails: a fallback
    const client = sluice.client();
    const res = await client.chat.completions.create(
      { model: 'fallback', messages: [{ role: 'user', content: PROMPT }], max_tokens: 40 },
      { headers: { traceparent: `00-${traceId}-${parentId}-01` } });
    assert.match(res.choices[0].message.content, /mock reply/);

    const spans = await waitFor(() => {
      const s = traceSpans(collector, traceId);
      return s.length >= 3 ? s : null;
    }, { timeoutMs: 10000, msg: 'three spans of the trace' });
    assert.equal(spans.length, 3, JSON.stringify(spans, (k, v) => (typeof v === "bigint" ? String(v) : v)));
    const req = spans.find((s) => s.kind === 2);
    const atts = spans.filter((s) => s.kind === 3).sort((a, b) => a.attrs['sluice.attempt'] - b.attrs['sluice.attempt']);
    assert.ok(req, 'a SERVER span');
    assert.equal(atts.length, 2);

    // the request span: a child of the client's span, GenAI and sluice attributes
    assert.equal(req.parentSpanId, parentId);
    assert.equal(req.name, 'chat fallback');
    assert.equal(req.resource['service.name'], 'sluice-under-test');
    assert.ok(req.end >= req.start && req.start > 0n);
    const a = req.attrs;
    assert.equal(a['gen_ai.operation.name'], 'chat');
    assert.equal(a['gen_ai.request.model'], 'fallback');
    assert.equal(a['gen_ai.response.model'], res.model);
    assert.equal(a['gen_ai.provider.name'], 'openai');
    assert.equal(a['gen_ai.request.max_tokens'], 40);
    assert.equal(a['gen_ai.request.stream'], false);
    assert.equal(a['gen_ai.usage.input_tokens'], res.usage.prompt_tokens);
    assert.equal(a['gen_ai.usage.output_tokens'], res.usage.completion_tokens);
    assert.equal(a['gen_ai.usage.cache_read.input_tokens'], undefined); // none: not said
    assert.equal(a['gen_ai.usage.reasoning.output_tokens'], undefined);
    // USD 1000 and 2000 per million tokens: 1e6 and 2e6 nano-USD a token
    const nusd = BigInt(res.usage.prompt_tokens) * 1000000n + BigInt(res.usage.completion_tokens) * 2000000n;
    assert.equal(usdToNano(a['sluice.cost_usd']), nusd);
    assert.equal(a['sluice.key.name'], 'static');
    assert.equal(a['sluice.attempts'], 2);
    assert.equal(a['sluice.cache'], 'bypass');
    assert.equal(a['sluice.provider'], 'mock');
    assert.equal(a['http.response.status_code'], 200);
    assert.equal(a['sluice.request_id'], res._request_id);
    assert.ok(!req.status.code, 'an answered request is not an error');

    // one CLIENT span per attempt, children of the request span
    for (const s of atts) {
      assert.equal(s.parentSpanId, req.spanId);
      assert.equal(s.attrs['gen_ai.operation.name'], 'chat');
      assert.equal(s.attrs['gen_ai.provider.name'], 'openai');
      assert.equal(s.attrs['server.address'], '127.0.0.1');
    }
    assert.equal(atts[0].attrs['gen_ai.request.model'], 'first-model');
    assert.equal(atts[0].attrs['sluice.attempt.outcome'], 'fallback');
    assert.equal(atts[0].attrs['http.response.status_code'], 500);
    assert.equal(atts[0].status.code, 2);
    assert.ok(atts[0].attrs['error.type']);
    assert.equal(atts[1].attrs['gen_ai.request.model'], 'gpt-4o-mini-2024-07-18');
    assert.equal(atts[1].attrs['sluice.attempt.outcome'], 'ok');
    assert.equal(atts[1].attrs['gen_ai.response.model'], res.model);
    assert.equal(atts[1].attrs['gen_ai.usage.output_tokens'], res.usage.completion_tokens);
    assert.ok(!atts[1].status.code);

    // each attempt sent its own span id upstream, in the client's trace
    const up = (await mock.requests()).filter((q) => q.path === '/v1/chat/completions');
    assert.equal(up.length, 2);
    assert.equal(up[0].headers.traceparent, `00-${traceId}-${atts[0].spanId}-01`);
    assert.equal(up[1].headers.traceparent, `00-${traceId}-${atts[1].spanId}-01`);

    // the exports: OTLP/HTTP path, content type, the configured headers
    const e = collector.exports[0];
    assert.equal(e.path, '/v1/traces');
    assert.equal(e.headers.authorization, `Bearer ${COLLECTOR_SECRET}`);
    assert.equal(e.headers['x-tenant'], 'acme');

    // the trace id is in the ledger row
    const rows = await usageJson(sluice, 'request');
    assert.ok(rows.some((r) => r.trace_id === traceId), JSON.stringify(rows));

    // a stream with no traceparent: a new trace, time to first token
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: PROMPT }],
    });
    const got = await collectStream(stream);
    assert.match(got.content, /mock reply/);
    const streamed = await waitFor(() => allSpans(collector).find((s) => s.kind === 2 && s.attrs['gen_ai.request.stream'] === true),
      { timeoutMs: 10000, msg: 'the stream span' });
    assert.notEqual(streamed.traceId, traceId);
    assert.equal(streamed.parentSpanId, undefined);
    assert.equal(streamed.attrs['gen_ai.request.model'], 'gpt-4o-mini');
    assert.ok(streamed.attrs['sluice.time_to_first_token_ms'] >= 0);
    assert.equal(streamed.attrs['gen_ai.usage.output_tokens'], got.usage.completion_tokens);

    // a client's unsampled traceparent: nothing recorded, the flag goes upstream
    const quiet = crypto.randomBytes(16).toString('hex');
    await mock.reset();
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'q' }] },
      { headers: { traceparent: `00-${quiet}-${parentId}-00` } });
    const marker = crypto.randomBytes(16).toString('hex');
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'm' }] },
      { headers: { traceparent: `00-${marker}-${parentId}-01` } });
    await waitFor(() => traceSpans(collector, marker).length >= 2, { timeoutMs: 10000, msg: 'the marker trace' });
    assert.equal(traceSpans(collector, quiet).length, 0);
    const upq = (await mock.requests()).filter((q) => q.path === '/v1/chat/completions');
    assert.match(upq[0].headers.traceparent, new RegExp(`^00-${quiet}-[0-9a-f]{16}-00$`));
    assert.ok(!upq[0].headers.traceparent.includes(parentId));

    assertNoSecret(collector, sluice);
  });

  it('exports the same spans over http/protobuf', async () => {
    const collector = await startCollector();
    running.push({ stop: () => collector.close() });
    const sluice = await start('proto', {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/custom/traces`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer%20${COLLECTOR_SECRET}`,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    const traceId = crypto.randomBytes(16).toString('hex');
    const parentId = crypto.randomBytes(8).toString('hex');
    await mock.reset();
    await mock.faults({ 'x-mock-status': '500' }, 1);
    const res = await sluice.client().chat.completions.create(
      { model: 'fallback', messages: [{ role: 'user', content: PROMPT }] },
      { headers: { traceparent: `00-${traceId}-${parentId}-01` } });
    const spans = await waitFor(() => {
      const s = traceSpans(collector, traceId);
      return s.length >= 3 ? s : null;
    }, { timeoutMs: 10000, msg: 'three spans over protobuf' });
    const e = collector.exports[0];
    assert.equal(e.path, '/custom/traces'); // the signal's own variable is used as it is
    assert.equal(e.headers['content-type'], 'application/x-protobuf');
    const req = spans.find((s) => s.kind === 2);
    const atts = spans.filter((s) => s.kind === 3);
    assert.equal(req.parentSpanId, parentId);
    assert.equal(req.resource['service.name'], 'sluice');
    assert.equal(req.attrs['gen_ai.request.model'], 'fallback');
    assert.equal(req.attrs['gen_ai.usage.input_tokens'], res.usage.prompt_tokens);
    assert.equal(req.attrs['gen_ai.usage.output_tokens'], res.usage.completion_tokens);
    assert.equal(req.attrs['sluice.attempts'], 2);
    assert.equal(req.flags & 0x301, 0x301); // sampled, remote parent
    assert.equal(atts.length, 2);
    assert.deepEqual(atts.map((s) => s.attrs['sluice.attempt.outcome']).sort(), ['fallback', 'ok']);
    assert.ok(atts.every((s) => s.parentSpanId === req.spanId));
    assert.equal(atts.find((s) => s.attrs['sluice.attempt.outcome'] === 'fallback').status.code, 2);
    assertNoSecret(collector, sluice);
  });

  it('carries the guardrails\' policy and decisions on the request span, never the matched text', async () => {
    const collector = await startCollector();
    running.push({ stop: () => collector.close() });
    const sluice = await startSluice({
      dir, mock, name: 'guard',
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100' },
      config: (cfg) => {
        cfg.guardrails = { policies: { pii: [{ detect: ['email'], action: 'redact', restore: true }, { deny: ['falcon'], action: 'log' }] }, apply: 'pii' };
        return cfg;
      },
    });
    running.push({ stop: () => sluice.stop() });
    const traceId = crypto.randomBytes(16).toString('hex');
    const res = await sluice.client().chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'mail jo@example.com about falcon' }] },
      { headers: { traceparent: `00-${traceId}-${crypto.randomBytes(8).toString('hex')}-01` } });
    assert.equal(res.choices[0].message.content, 'mock reply: mail jo@example.com about falcon');
    const req = await waitFor(() => traceSpans(collector, traceId).find((s) => s.kind === 2),
      { timeoutMs: 10000, msg: 'the request span' });
    assert.equal(req.attrs['sluice.guard.policy'], 'pii');
    const decisions = req.events.filter((e) => e.name === 'guard_decision').map((e) => e.attrs);
    assert.deepEqual(decisions.map((d) => `${d['sluice.guard.rule']}/${d['sluice.guard.action']}/${d['sluice.guard.count']}`).sort(),
      ['deny[2]/log/1', 'email/redact/1', 'output:deny[2]/log/1']); // deny runs on both sides
    for (const e of collector.exports) assert.ok(!e.body.toString('latin1').includes('jo@example.com'));
  });

  it('serves every request while the collector is down or hangs, and counts the dropped spans', async () => {
    // nothing listens on this port
    const deadPort = await freePort();
    const adminDead = await freePort();
    const dead = await start('dead', {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${deadPort}`,
      OTEL_BSP_SCHEDULE_DELAY: '50',
    }, { adminPort: adminDead });
    for (let i = 0; i < 30; i++) {
      const r = await dead.chat({});
      assert.equal(r.status, 200, r.body);
    }
    await waitFor(async () => (await metric(adminDead, /^sluice_trace_spans_dropped_total\{reason="export_failed"\} (\d+)$/m)) > 0,
      { timeoutMs: 10000, msg: 'failed exports counted' });

    // a collector that takes the request and never answers, a small queue
    const hanging = await startCollector({ hang: true });
    running.push({ stop: () => hanging.close() });
    const adminHang = await freePort();
    const hang = await start('hang', {
      OTEL_EXPORTER_OTLP_ENDPOINT: hanging.url,
      OTEL_EXPORTER_OTLP_TIMEOUT: '60000',
      OTEL_BSP_SCHEDULE_DELAY: '20',
      OTEL_BSP_MAX_QUEUE_SIZE: '4',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2',
    }, { adminPort: adminHang });
    const results = await Promise.all(Array.from({ length: 40 }, () => hang.chat({})));
    assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
    for (let i = 0; i < 20; i++) assert.equal((await hang.chat({ stream: true })).status, 200);
    assert.ok(await metric(adminHang, /^sluice_trace_spans_dropped_total\{reason="queue_full"\} (\d+)$/m) > 0);
    // one export at a time per worker: the hung ones are all there is
    assert.ok(hanging.exports.length >= 1 && hanging.exports.length <= hang.cfg.server.workers,
      `${hanging.exports.length} exports in flight`);
  });
});
