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
import path from 'node:path';
import protobuf from 'protobufjs';
import { startMock, startSluice, makeTmpDir, freePort, request, randomKey, waitFor } from '../lib/harness.mjs';

const ADMIN_KEY = randomKey('sk-admin-');
const MODEL = 'mod\u00e8le-"q"-\\-\u00fcn\u00ef-\u{1F600}';
const REQUESTS = 25;

// opentelemetry-proto (trace/v1, common/v1, resource/v1, collector/trace/v1),
// the fields sluice writes, with their numbers and types
const OTLP = protobuf.Root.fromJSON({
  nested: {
    ExportTraceServiceRequest: { fields: { resourceSpans: { rule: 'repeated', type: 'ResourceSpans', id: 1 } } },
    ResourceSpans: { fields: { resource: { type: 'Resource', id: 1 }, scopeSpans: { rule: 'repeated', type: 'ScopeSpans', id: 2 }, schemaUrl: { type: 'string', id: 3 } } },
    Resource: { fields: { attributes: { rule: 'repeated', type: 'KeyValue', id: 1 }, droppedAttributesCount: { type: 'uint32', id: 2 } } },
    ScopeSpans: { fields: { scope: { type: 'InstrumentationScope', id: 1 }, spans: { rule: 'repeated', type: 'Span', id: 2 }, schemaUrl: { type: 'string', id: 3 } } },
    InstrumentationScope: { fields: { name: { type: 'string', id: 1 }, version: { type: 'string', id: 2 } } },
    Span: {
      fields: {
        traceId: { type: 'bytes', id: 1 }, spanId: { type: 'bytes', id: 2 }, traceState: { type: 'string', id: 3 },
        parentSpanId: { type: 'bytes', id: 4 }, name: { type: 'string', id: 5 }, kind: { type: 'int32', id: 6 },
        startTimeUnixNano: { type: 'fixed64', id: 7 }, endTimeUnixNano: { type: 'fixed64', id: 8 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 9 }, droppedAttributesCount: { type: 'uint32', id: 10 },
        events: { rule: 'repeated', type: 'Event', id: 11 }, droppedEventsCount: { type: 'uint32', id: 12 },
        status: { type: 'Status', id: 15 }, flags: { type: 'fixed32', id: 16 },
      },
    },
    Event: { fields: { timeUnixNano: { type: 'fixed64', id: 1 }, name: { type: 'string', id: 2 }, attributes: { rule: 'repeated', type: 'KeyValue', id: 3 } } },
    Status: { fields: { message: { type: 'string', id: 2 }, code: { type: 'int32', id: 3 } } },
    KeyValue: { fields: { key: { type: 'string', id: 1 }, value: { type: 'AnyValue', id: 2 } } },
    AnyValue: {
      oneofs: { value: { oneof: ['stringValue', 'boolValue', 'intValue', 'doubleValue'] } },
      fields: { stringValue: { type: 'string', id: 1 }, boolValue: { type: 'bool', id: 2 }, intValue: { type: 'int64', id: 3 }, doubleValue: { type: 'double', id: 4 } },
    },
  },
}).lookupType('ExportTraceServiceRequest');

// A tiny OTLP/HTTP receiver: keeps every export (path, headers, raw body).
// hang: it reads the request and never answers.
async function startCollector({ hang = false } = {}) {
  const exports = [];
  const sockets = new Set();
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      exports.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      if (hang) return;
      const proto = req.headers['content-type'] === 'application/x-protobuf';
      res.writeHead(200, { 'content-type': proto ? 'application/x-protobuf' : 'application/json' });
      res.end(proto ? '' : '{}');
    });
  });
  srv.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: srv.address().port,
    url: `http://127.0.0.1:${srv.address().port}`,
    exports,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); srv.close(r); }),
  };
}

const hex = (b) => Buffer.from(b).toString('hex');

function anyValue(v) {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return undefined;
}

// Every span of every export, normalised: ids hex, attributes a plain object.
function spansOf(exp) {
  const ct = exp.headers['content-type'];
  let doc;
  if (ct === 'application/x-protobuf') {
    doc = OTLP.toObject(OTLP.decode(exp.body), { longs: String, defaults: false });
  } else {
    assert.equal(ct, 'application/json');
    doc = JSON.parse(exp.body.toString('utf8'));
  }
  const out = [];
  for (const rs of doc.resourceSpans) {
    const resource = Object.fromEntries(rs.resource.attributes.map((a) => [a.key, anyValue(a.value)]));
    for (const ss of rs.scopeSpans) {
      assert.equal(ss.scope.name, 'sluice');
      for (const s of ss.spans) {
        const id = (x) => (x === undefined || x === '' ? undefined : typeof x === 'string' ? x : hex(x));
        out.push({
          resource,
          traceId: id(s.traceId),
          spanId: id(s.spanId),
          parentSpanId: id(s.parentSpanId),
          name: s.name,
          kind: s.kind,
          start: BigInt(s.startTimeUnixNano),
          end: BigInt(s.endTimeUnixNano),
          flags: s.flags,
          status: s.status || {},
          attrs: Object.fromEntries((s.attributes || []).map((a) => [a.key, anyValue(a.value)])),
          events: (s.events || []).map((e) => ({ name: e.name, attrs: Object.fromEntries((e.attributes || []).map((a) => [a.key, anyValue(a.value)])) })),
        });
      }
    }
  }
  return out;
}

const allSpans = (collector) => collector.exports.flatMap(spansOf);
const traceSpans = (collector, traceId) => allSpans(collector).filter((s) => s.traceId === traceId);

async function metric(adminPort, re) {
  const r = await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(r.status, 200, r.body);
  const m = r.body.match(re);
  return m ? Number(m[1]) : 0;
}

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
