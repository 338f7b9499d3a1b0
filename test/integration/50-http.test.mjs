// The inbound HTTP/1.x server at the byte level: keep-alive, pipelining,
// chunked bodies, Expect: 100-continue, limits, timeouts, CORS, HTTP/1.0.
// Uses curl and raw sockets, not the SDK.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startStack, request, RawConn, curl, errorShape, parseResponses, waitFor, sleep } from '../lib/harness.mjs';

const CHAT = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'raw hello' }] });

describe('inbound HTTP', () => {
  let stack, sluice, port, auth;

  before(async () => {
    stack = await startStack({
      name: 'http',
      config: {
        server: {
          header_timeout: '1s',
          body_timeout: '1s',
          keepalive_timeout: '2s',
          max_header_size: '8KiB',
          max_body: '64KiB',
          cors: { allow_origins: ['*'] },
        },
      },
    });
    ({ sluice } = stack);
    port = sluice.port;
    auth = `Authorization: Bearer ${sluice.key}\r\n`;
  });
  after(async () => { if (stack) await stack.stop(); });

  const get = (path, extra = '') => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;
  const post = (path, body, extra = '') =>
    `POST ${path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

  it('keeps a connection alive across requests (raw socket)', async () => {
    const c = await RawConn.open(port);
    try {
      c.write(get('/healthz'));
      const [r1] = await c.responses(1);
      assert.equal(r1.status, 200);
      assert.ok(!/close/i.test(r1.headers.connection || ''), 'server asked to close');
      c.write(post('/v1/chat/completions', CHAT, auth));
      const [, r2] = await c.responses(2, 10000);
      assert.equal(r2.status, 200, r2.body);
      assert.equal(JSON.parse(r2.body).choices[0].message.content, 'mock reply: raw hello');
      c.write(get('/v1/models', auth));
      const rs = await c.responses(3);
      assert.equal(rs[2].status, 200);
      assert.equal(c.closed, false);
    } finally { c.destroy(); }
  });

  it('keeps a connection alive for curl (second URL reuses it)', async () => {
    const u = `${sluice.root}/healthz`;
    const r = await curl(['-s', '-o', '/dev/null', '-o', '/dev/null', '-w', '%{http_code}:%{num_connects}\\n', u, u]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['200:1', '200:0']);
  });

  it('closes an idle keep-alive connection after keepalive_timeout', async () => {
    const c = await RawConn.open(port);
    try {
      c.write(get('/healthz'));
      await c.responses(1);
      const t0 = Date.now();
      await c.waitClose(5000);
      const dt = Date.now() - t0;
      assert.ok(dt >= 1500, `closed after ${dt} ms, keepalive_timeout is 2 s`);
    } finally { c.destroy(); }
  });

  it('answers 3 pipelined requests in order', async () => {
    const c = await RawConn.open(port);
    try {
      c.write(get('/healthz', 'x-request-id: pipe-1\r\n') +
        post('/v1/chat/completions', CHAT, auth + 'x-request-id: pipe-2\r\n') +
        get('/v1/models', auth + 'x-request-id: pipe-3\r\n'));
      const rs = await c.responses(3, 10000);
      assert.deepEqual(rs.map((r) => r.headers['x-request-id']), ['pipe-1', 'pipe-2', 'pipe-3']);
      assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
      assert.equal(JSON.parse(rs[1].body).choices[0].message.content, 'mock reply: raw hello');
      assert.equal(JSON.parse(rs[2].body).object, 'list');
    } finally { c.destroy(); }
  });

  it('accepts a chunked request body (curl and raw, split across packets)', async () => {
    const r = await curl(['-s', '-H', 'Transfer-Encoding: chunked', '-H', 'Content-Type: application/json',
      '-H', `Authorization: Bearer ${sluice.key}`, '--data-binary', '@-', '-w', '\\n%{http_code}',
      `${sluice.baseURL}/chat/completions`], { input: CHAT });
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.at(-1), '200', r.stdout);
    assert.equal(JSON.parse(lines.slice(0, -1).join('\n')).choices[0].message.content, 'mock reply: raw hello');

    const c = await RawConn.open(port);
    try {
      const body = Buffer.from(CHAT);
      const a = body.subarray(0, 10), b = body.subarray(10, 30), rest = body.subarray(30);
      c.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
      for (const part of [a, b, rest]) {
        await new Promise((res) => setTimeout(res, 40));
        c.write(`${part.length.toString(16)};ext=1\r\n`);
        c.write(Buffer.concat([part, Buffer.from('\r\n')]));
      }
      c.write('0\r\n\r\n');
      const [res] = await c.responses(1, 10000);
      assert.equal(res.status, 200, res.body);
      assert.equal(JSON.parse(res.body).choices[0].message.content, 'mock reply: raw hello');
    } finally { c.destroy(); }
  });

  it('sends 100 Continue before reading the body', async () => {
    const c = await RawConn.open(port);
    try {
      c.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n${auth}Content-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(CHAT)}\r\nExpect: 100-continue\r\n\r\n`);
      await c.until((x) => /^HTTP\/1\.1 100 /.test(x.text()), 3000, '100 Continue');
      c.write(CHAT);
      const rs = await c.responses(2, 10000);
      assert.equal(rs[0].status, 100);
      assert.equal(rs[1].status, 200, rs[1].body);
    } finally { c.destroy(); }
    const r = await curl(['-s', '-H', 'Expect: 100-continue', '-H', 'Content-Type: application/json',
      '-H', `Authorization: Bearer ${sluice.key}`, '--data-binary', CHAT, '-o', '/dev/null', '-w', '%{http_code}',
      `${sluice.baseURL}/chat/completions`]);
    assert.equal(r.stdout, '200');
  });

  it('refuses an oversized body announced with Expect: 100-continue without asking for it', async () => {
    const c = await RawConn.open(port);
    try {
      c.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n${auth}Content-Type: application/json\r\n` +
        `Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n`);
      const [r] = await c.responses(1, 3000);
      assert.equal(r.status, 413);
      errorShape(JSON.parse(r.body));
    } finally { c.destroy(); }
  });

  it('431 for a huge header', async () => {
    const c = await RawConn.open(port);
    try {
      c.write(`GET /v1/models HTTP/1.1\r\nHost: t\r\n${auth}x-big: ${'a'.repeat(32 * 1024)}\r\n\r\n`);
      const [r] = await c.responses(1, 3000);
      assert.equal(r.status, 431);
      assert.ok(r.headers['x-request-id'], 'x-request-id on 431');
      errorShape(JSON.parse(r.body));
      await c.waitClose(3000);
    } finally { c.destroy(); }
    // many small headers adding up past the limit
    const c2 = await RawConn.open(port);
    try {
      let h = '';
      for (let i = 0; i < 400; i++) h += `x-h${i}: ${'b'.repeat(40)}\r\n`;
      c2.write(`GET /healthz HTTP/1.1\r\nHost: t\r\n${h}\r\n`);
      const [r] = await c2.responses(1, 3000);
      assert.equal(r.status, 431);
    } finally { c2.destroy(); }
  });

  it('404 and 405 with the error shape', async () => {
    const nf = await sluice.req('/v1/nope');
    assert.equal(nf.status, 404);
    errorShape(nf.json());
    const nf2 = await sluice.req('/nothing/here', { method: 'POST', body: '{}' });
    assert.equal(nf2.status, 404);
    const na = await sluice.req('/v1/chat/completions');
    assert.equal(na.status, 405);
    assert.match(na.headers.allow || '', /POST/, 'Allow names the method that works');
    errorShape(na.json());
    const na2 = await sluice.req('/v1/models', { method: 'DELETE' });
    assert.equal(na2.status, 405);
    const bad = await RawConn.open(port);
    try {
      bad.write('THIS IS NOT HTTP\r\n\r\n');
      const [r] = await bad.responses(1, 3000);
      assert.equal(r.status, 400);
    } finally { bad.destroy(); }
  });

  it('answers a CORS preflight and marks real responses', async () => {
    const pre = await request(`${sluice.baseURL}/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    assert.ok(pre.status === 200 || pre.status === 204, `preflight status ${pre.status}`);
    assert.ok(['*', 'http://app.example'].includes(pre.headers['access-control-allow-origin']),
      `allow-origin ${pre.headers['access-control-allow-origin']}`);
    assert.match(pre.headers['access-control-allow-methods'] || '', /POST/);
    assert.match(pre.headers['access-control-allow-headers'] || '', /authorization/i);
    const real = await sluice.chat({}, { headers: { origin: 'http://app.example' } });
    assert.equal(real.status, 200);
    assert.ok(real.headers['access-control-allow-origin'], 'allow-origin on the real response');
  });

  it('puts x-request-id on every response, echoing sane ones only', async () => {
    const rs = [
      await request(`${sluice.root}/healthz`),
      await request(`${sluice.baseURL}/models`),
      await sluice.req('/v1/nope'),
      await sluice.req('/v1/chat/completions'),
      await sluice.req('/v1/chat/completions', { method: 'POST', body: '{' }),
      await sluice.chat({ model: 'unknown-model' }),
      await sluice.chat({}),
    ];
    const ids = rs.map((r) => r.headers['x-request-id']);
    ids.forEach((id, i) => assert.ok(id && id.length >= 8, `response ${i} (${rs[i].status}) x-request-id=${id}`));
    assert.equal(new Set(ids).size, ids.length, 'ids are unique');

    const sane = await request(`${sluice.root}/healthz`, { headers: { 'x-request-id': 'client-ID_1.2-3' } });
    assert.equal(sane.headers['x-request-id'], 'client-ID_1.2-3');
    const long = 'z'.repeat(1000);
    const insane = await request(`${sluice.root}/healthz`, { headers: { 'x-request-id': long } });
    assert.ok(insane.headers['x-request-id'] && insane.headers['x-request-id'] !== long, 'a 1000-byte id is replaced');
    const weird = await request(`${sluice.root}/healthz`, { headers: { 'x-request-id': 'a"b<script>' } });
    assert.ok(weird.headers['x-request-id'] && weird.headers['x-request-id'] !== 'a"b<script>', 'an id with quotes/angles is replaced');
  });

  it('408 when headers arrive too slowly (header_timeout 1s)', async () => {
    const c = await RawConn.open(port);
    try {
      const t0 = Date.now();
      c.write('GET /healthz HTTP/1.1\r\nHost: t\r\n');
      const [r] = await c.responses(1, 4000);
      const dt = Date.now() - t0;
      assert.equal(r.status, 408);
      assert.ok(dt >= 800 && dt < 3500, `408 after ${dt} ms`);
      await c.waitClose(2000);
    } finally { c.destroy(); }
  });

  it('408 when the body arrives too slowly (body_timeout 1s)', async () => {
    const c = await RawConn.open(port);
    try {
      c.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n${auth}Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{"model":`);
      const [r] = await c.responses(1, 4000);
      assert.equal(r.status, 408);
      await c.waitClose(2000);
    } finally { c.destroy(); }
  });

  it('speaks HTTP/1.0: close after the answer, no chunked encoding, streams close-delimited', async () => {
    const c = await RawConn.open(port);
    try {
      c.write('GET /healthz HTTP/1.0\r\n\r\n');
      await c.waitClose(3000);
      const { responses } = parseResponses(c.buf);
      assert.equal(responses.length, 1);
      assert.equal(responses[0].status, 200);
      assert.match(c.text(), /^HTTP\/1\.[01] 200/);
    } finally { c.destroy(); }

    const s = await RawConn.open(port);
    try {
      const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'old client' }], stream: true });
      s.write(`POST /v1/chat/completions HTTP/1.0\r\n${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      await s.waitClose(10000);
      const { responses } = parseResponses(s.buf);
      assert.equal(responses.length, 1);
      const r = responses[0];
      assert.equal(r.status, 200);
      assert.ok(!/chunked/i.test(r.headers['transfer-encoding'] || ''), 'no chunked encoding for HTTP/1.0');
      assert.match(r.body, /data: \[DONE\]/);
      const content = r.body.split('\n').filter((l) => l.startsWith('data: {'))
        .map((l) => JSON.parse(l.slice(6))).map((j) => j.choices?.[0]?.delta?.content || '').join('');
      assert.equal(content, 'mock reply: old client');
    } finally { s.destroy(); }
  });

  it('closes after a response when the client sends Connection: close', async () => {
    const c = await RawConn.open(port);
    try {
      c.write(get('/healthz', 'Connection: close\r\n'));
      const [r] = await c.responses(1);
      assert.equal(r.status, 200);
      await c.waitClose(2000);
    } finally { c.destroy(); }
  });
  async function expect400(name, raw) {
    const c = await RawConn.open(port);
    try {
      c.write(raw);
      const [r] = await c.responses(1, 3000);
      assert.equal(r.status, 400, `${name}: got ${r.status}`);
      await c.waitClose(3000);
    } finally { c.destroy(); }
  }

  it('rejects conflicting Content-Length headers and malformed header lines with 400', async () => {
    await expect400('two different Content-Length values',
      `POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n${auth}Content-Length: 5\r\nContent-Length: 7\r\n\r\nhello`);
    await expect400('header line without a colon', 'GET /healthz HTTP/1.1\r\nHost: t\r\nno colon in this line\r\n\r\n');
    await expect400('negative Content-Length', 'GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n');
  });

  it('rejects an HTTP/1.1 request without Host with 400 (RFC 9112 3.2)', async () => {
    await expect400('HTTP/1.1 without Host', 'GET /healthz HTTP/1.1\r\nUser-Agent: no-host\r\n\r\n');
  });

  it('survives clients that vanish mid-request and piles of idle connections', async () => {
    for (let i = 0; i < 20; i++) {
      const c = await RawConn.open(port);
      c.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n${auth}Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{"model":"gpt`);
      if (i % 2) c.write('GET /healthz HT');
      c.destroy();
    }
    const idle = await Promise.all(Array.from({ length: 150 }, () => RawConn.open(port)));
    try {
      const r = await sluice.chat({});
      assert.equal(r.status, 200, 'serves while 150 idle connections are open');
    } finally { idle.forEach((c) => c.destroy()); }
    // junk bytes
    const j = await RawConn.open(port);
    try {
      j.write(Buffer.from([0, 1, 2, 255, 254, 13, 10, 13, 10, 0x47, 0x45, 0x54]));
      await j.waitClose(3000);
    } finally { j.destroy(); }
    const r = await sluice.chat({ messages: [{ role: 'user', content: 'still alive' }] });
    assert.equal(r.status, 200);
    assert.equal(r.json().choices[0].message.content, 'mock reply: still alive');
  });

  it('answers a client that half-closes after its request, then closes (raw socket)', async () => {
    for (const stream of [false, true]) {
      const content = stream ? 'half-closed stream' : 'half-closed json';
      const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], stream });
      const c = await RawConn.open(port);
      try {
        c.write(post('/v1/chat/completions', body, auth + 'x-mock-delay-ms: 300\r\n'));
        c.sock.end(); // shutdown(SHUT_WR): no more requests, but the answer is wanted
        await c.waitClose(10000);
        const final = parseResponses(c.buf).responses.filter((r) => r.status >= 200);
        assert.equal(final.length, 1, c.text().slice(0, 500));
        assert.equal(final[0].status, 200, final[0].body);
        assert.equal(final[0].headers.connection, 'close');
        if (stream) {
          const text = final[0].body.split('\n').filter((l) => l.startsWith('data: {'))
            .map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content || '').join('');
          assert.equal(text, `mock reply: ${content}`);
          assert.match(final[0].body, /data: \[DONE\]/);
        } else {
          assert.equal(JSON.parse(final[0].body).choices[0].message.content, `mock reply: ${content}`);
        }
      } finally { c.destroy(); }
    }
  });

  it('still notices a client that closed its socket while waiting for the answer', async () => {
    const before = sluice.readLog().length;
    const c = await RawConn.open(port);
    c.write(post('/v1/chat/completions', CHAT, auth + 'x-mock-delay-ms: 3000\r\n'));
    await new Promise((r) => setTimeout(r, 200));
    c.destroy();
    await waitFor(() => /closed the connection before the response was complete/.test(sluice.readLog().slice(before)),
      { timeoutMs: 2500, msg: 'the abort in the log before the upstream answered' });
  });

  it('refuses a model name with control characters (DEL included) with 400, before any upstream call', async () => {
    for (const model of ['mock/gpt\x7f-4o', 'mock/gpt\u0001', 'mock/a\r\nx-injected: 1']) {
      const r = await sluice.chat({ model, messages: [{ role: 'user', content: 'ctl model' }] });
      assert.equal(r.status, 400, `${JSON.stringify(model)}: ${r.body}`);
      const e = errorShape(r.json());
      assert.equal(e.param, 'model');
      assert.equal(r.headers['x-injected'], undefined);
      for (const [k, v] of Object.entries(r.headers)) {
        assert.doesNotMatch(String(v), /[\x00-\x08\x0a-\x1f\x7f]/, `header ${k}`);
      }
    }
    const seen = (await stack.mock.requests()).filter((q) => q.rawBody.includes('ctl model'));
    assert.equal(seen.length, 0, 'no such request reached the provider');
  });

  it('ignores the query string when routing', async () => {
    const r = await sluice.req('/v1/models?limit=5&x=%20y');
    assert.equal(r.status, 200);
    assert.equal(r.json().object, 'list');
  });
  it('answers a request pipelined behind a stream after the stream ends', async () => {
    const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'piped stream' }], stream: true });
    const c = await RawConn.open(port);
    try {
      c.write(post('/v1/chat/completions', body, auth + 'x-mock-chunks: 4\r\nx-mock-chunk-delay-ms: 100\r\nx-request-id: ps-1\r\n') +
        get('/healthz', 'x-request-id: ps-2\r\n'));
      const rs = await c.responses(2, 10000);
      assert.deepEqual(rs.map((r) => r.headers['x-request-id']), ['ps-1', 'ps-2']);
      assert.match(rs[0].headers['content-type'], /^text\/event-stream/);
      assert.match(rs[0].body, /data: \[DONE\]\s*$/);
      assert.equal(rs[1].status, 200);
    } finally { c.destroy(); }
  });
});

// Several events of a stream that arrive in one upstream read go to the
// client in one write, one HTTP chunk. The provider here is a socket that
// writes its whole answer (nine events, each its own HTTP chunk, as OpenAI
// sends them) in one write, so sluice reads them at once.
describe('inbound HTTP: stream batching', () => {
  let stack, sluice, burst;
  const EVENTS = 9;

  before(async () => {
    const chunk = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
    let answer = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n';
    for (let i = 0; i < EVENTS - 1; i++) {
      const delta = i === 0 ? { role: 'assistant', content: '' } : { content: `w${i} ` };
      answer += chunk(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'burst-model', choices: [{ index: 0, delta, finish_reason: i === EVENTS - 2 ? 'stop' : null }] })}\n\n`);
    }
    answer += chunk('data: [DONE]\n\n') + '0\r\n\r\n';
    burst = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        const m = /content-length: *(\d+)/i.exec(buf.subarray(0, end).toString());
        if (end >= 0 && buf.length >= end + 4 + Number(m ? m[1] : 0)) {
          buf = Buffer.alloc(0);
          sock.write(answer); // one write: one read on sluice's side
        }
      });
      sock.on('error', () => {});
    });
    await new Promise((r) => burst.listen(0, '127.0.0.1', r));
    stack = await startStack({
      name: 'http-batch',
      config: {
        providers: { burst: { kind: 'openai', base_url: `http://127.0.0.1:${burst.address().port}/v1` } },
        models: { burst: { targets: ['burst/burst-model'] } },
      },
    });
    ({ sluice } = stack);
  });
  after(async () => {
    if (stack) await stack.stop();
    if (burst) burst.close();
  });

  it('writes the events of one upstream read as one chunk', async () => {
    const body = JSON.stringify({ model: 'burst', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const c = await RawConn.open(sluice.port);
    try {
      c.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${sluice.key}\r\n`
        + `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      await c.until((x) => x.buf.includes('\r\n0\r\n\r\n'), 10000, 'the end of the stream');
      const raw = c.buf.toString();
      assert.match(raw, /^HTTP\/1\.1 200 /);
      let at = raw.indexOf('\r\n\r\n') + 4;
      let chunks = 0;
      let text = '';
      for (;;) {
        const eol = raw.indexOf('\r\n', at);
        const size = parseInt(raw.slice(at, eol), 16);
        if (size === 0) break;
        text += raw.slice(eol + 2, eol + 2 + size);
        at = eol + 2 + size + 2;
        chunks++;
      }
      const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
      assert.equal(events.length, EVENTS, text);
      assert.equal(events[EVENTS - 1], 'data: [DONE]');
      assert.equal(events.slice(1, -1).map((e) => JSON.parse(e.slice(6)).choices[0].delta.content).join(''),
        'w1 w2 w3 w4 w5 w6 w7 ');
      // the events before [DONE] in one chunk; [DONE] goes after the ledger row, with the end
      assert.equal(chunks, 2, `${chunks} chunks for ${events.length} events`);
    } finally { c.destroy(); }
  });
});

describe('inbound HTTP: long bodies', () => {
  let stack, sluice;

  before(async () => {
    stack = await startStack({ name: 'http-long' });
    ({ sluice } = stack);
  });
  after(async () => { if (stack) await stack.stop(); });

  // Past the first read, the rest of a long Content-Length body is read
  // straight into its buffer (no copy through the read buffer): the
  // provider must still get it byte for byte, however it arrives, and the
  // next request on the connection must not be taken for body bytes.
  it('passes a long body sent in uneven pieces on byte for byte, then serves the next request', async () => {
    let content = '';
    for (let i = 0; content.length < 400000; i++) content += `line ${i}: ${'abcdefghij'.slice(i % 10)} é\n`;
    const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });
    const bytes = Buffer.from(body);
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${sluice.key}\r\n`
      + `Content-Type: application/json\r\nContent-Length: ${bytes.length}\r\n\r\n`;
    const c = await RawConn.open(sluice.port);
    try {
      c.write(head);
      let at = 0;
      for (const n of [40000, 1, 65536, 3, 70000, 131072, 17]) {
        c.write(bytes.subarray(at, at + n));
        at += n;
        await sleep(15);
      }
      // the rest and a second request in one write: nothing of it may join the body
      c.write(Buffer.concat([bytes.subarray(at), Buffer.from(`GET /v1/models HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${sluice.key}\r\n\r\n`)]));
      const rs = await c.responses(2, 10000);
      assert.equal(rs[0].status, 200, rs[0].body);
      assert.match(JSON.parse(rs[0].body).choices[0].message.content, /^mock reply: line 0: /);
      assert.equal(rs[1].status, 200, rs[1].body);
    } finally { c.destroy(); }
    const reqs = await (await fetch(`${stack.mock.baseURL.replace(/\/v1$/, '')}/__mock/requests`)).json();
    const got = reqs.filter((r) => r.path.endsWith('/chat/completions')).pop();
    // the stack's gpt-4o-mini is the provider's gpt-4o-mini-2024-07-18: only that changes
    const want = body.replace('"model":"gpt-4o-mini"', '"model":"gpt-4o-mini-2024-07-18"');
    assert.equal(got.body.length, want.length);
    assert.ok(got.body === want, 'the provider got another body');
  });
});
