// OTLP/HTTP for the tracing tests: a tiny receiver that keeps every export,
// the opentelemetry-proto schema sluice writes (decoded with protobufjs),
// and the exports' spans normalised for assertions (ids as hex, attributes
// as plain objects), for http/protobuf and http/json alike.

import assert from 'node:assert/strict';
import http from 'node:http';
import protobuf from 'protobufjs';
import { request } from './harness.mjs';

// opentelemetry-proto (trace/v1, common/v1, resource/v1, collector/trace/v1),
// the fields sluice writes, with their numbers and types
export const OTLP = protobuf.Root.fromJSON({
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
export async function startCollector({ hang = false } = {}) {
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

export const hex = (b) => Buffer.from(b).toString('hex');

export function anyValue(v) {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return undefined;
}

// Every span of every export, normalised: ids hex, attributes a plain object.
export function spansOf(exp) {
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

export const allSpans = (collector) => collector.exports.flatMap(spansOf);
export const traceSpans = (collector, traceId) => allSpans(collector).filter((s) => s.traceId === traceId);

// The first capture group of re in /metrics of the admin listener, as a number (0: absent).
export async function metric(adminPort, adminKey, re) {
  const r = await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } });
  assert.equal(r.status, 200, r.body);
  const m = r.body.match(re);
  return m ? Number(m[1]) : 0;
}
