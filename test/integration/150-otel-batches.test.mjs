// OpenTelemetry export in small batches (batch_size 3, queue_size 9: the
// worker's ring of batch buffers is reused many times over), over
// http/protobuf and http/json: every span that leaves is whole and arrives
// once, no export holds more than a batch, and spans sent plus spans
// dropped are all the spans there were. The model's name needs escaping in
// JSON and is not ASCII: the span name and gen_ai.request.model arrive as
// they were sent, in both encodings.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startMock, startSluice, makeTmpDir, freePort, request, randomKey, waitFor } from '../lib/harness.mjs';
import {
  OTLP, startCollector, hex, anyValue, spansOf, allSpans, traceSpans, metric as otlpMetric,
} from '../lib/otlp.mjs';

const ADMIN_KEY = randomKey('sk-admin-');
const MODEL = 'mod\u00e8le-"q"-\\-\u00fcn\u00ef-\u{1F600}';
const REQUESTS = 25;

const metric = (adminPort, re) => otlpMetric(adminPort, ADMIN_KEY, re);


describe('OpenTelemetry batches', () => {
  let dir, mock;
  const running = [];

  before(async () => {
    dir = await makeTmpDir('otel-batches');
    mock = await startMock();
  });
  after(async () => {
    const errs = [];
    for (const x of running.reverse()) await x.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
  });

  for (const protocol of ['http/protobuf', 'http/json']) {
    it(`sends every span once and whole, in batches of at most 3 (${protocol})`, async () => {
      const collector = await startCollector();
      running.push({ stop: () => collector.close() });
      const adminPort = await freePort();
      const sluice = await startSluice({
        dir, mock, name: protocol.replace('/', '-'),
        env: {
          SLUICE_TEST_ADMIN_KEY: ADMIN_KEY,
          OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
          OTEL_BSP_SCHEDULE_DELAY: '100',
          OTEL_BSP_MAX_QUEUE_SIZE: '9',
          OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '3',
        },
        config: (cfg) => {
          cfg.models[MODEL] = { targets: ['mock/gpt-4o-mini-2024-07-18'] };
          cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
          cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
          return cfg;
        },
      });
      running.push({ stop: () => sluice.stop() });
      const client = sluice.client();
      for (let i = 0; i < REQUESTS; i++) {
        const res = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `hi ${i}` }] });
        assert.match(res.choices[0].message.content, /mock reply/);
      }

      // one request span and one attempt span per request: each exported or dropped
      const counts = await waitFor(async () => {
        const exported = await metric(adminPort, /^sluice_trace_spans_exported_total (\d+)$/m);
        const full = await metric(adminPort, /^sluice_trace_spans_dropped_total\{reason="queue_full"\} (\d+)$/m);
        const failed = await metric(adminPort, /^sluice_trace_spans_dropped_total\{reason="export_failed"\} (\d+)$/m);
        return exported + full + failed === 2 * REQUESTS ? { exported, full, failed } : null;
      }, { timeoutMs: 15000, msg: 'every span exported or dropped' });
      assert.equal(counts.failed, 0);
      assert.ok(counts.exported > 0);

      const spans = [];
      for (const e of collector.exports) {
        assert.equal(e.headers['content-type'], protocol === 'http/json' ? 'application/json' : 'application/x-protobuf');
        const s = spansOf(e);
        assert.ok(s.length >= 1 && s.length <= 3, `an export of ${s.length} spans`);
        spans.push(...s);
      }
      assert.equal(spans.length, counts.exported);
      assert.equal(new Set(spans.map((s) => s.spanId)).size, spans.length, 'a span arrived twice');
      const byId = new Map(spans.map((s) => [s.spanId, s]));
      for (const s of spans) {
        assert.match(s.traceId, /^[0-9a-f]{32}$/);
        assert.ok(s.end >= s.start && s.start > 0n);
        assert.equal(s.attrs['gen_ai.request.model'], s.kind === 2 ? MODEL : 'gpt-4o-mini-2024-07-18');
        if (s.kind === 2) {
          assert.equal(s.name, `chat ${MODEL}`);
          assert.equal(s.attrs['http.response.status_code'], 200);
          assert.equal(s.attrs['sluice.attempts'], 1);
        } else {
          assert.equal(s.kind, 3);
          assert.equal(s.name, 'chat gpt-4o-mini-2024-07-18');
          assert.equal(s.attrs['sluice.attempt.outcome'], 'ok');
          const parent = byId.get(s.parentSpanId);
          if (parent) assert.equal(parent.traceId, s.traceId);
        }
      }
    });
  }
});
