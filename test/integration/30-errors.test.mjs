// Errors: client mistakes (auth, unknown model, size, bad JSON) and upstream
// failures (status codes, timeouts, refused connections, resets, garbage),
// each with the right status and OpenAI's error shape.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, freePort, request, errorShape, collectStream, withTimeout, waitFor } from '../lib/harness.mjs';

describe('errors', () => {
  let stack, sluice, mock, client, closedPort;

  before(async () => {
    closedPort = await freePort(); // nothing listens here
    stack = await startStack({
      name: 'errors',
      config: (cfg) => {
        cfg.server.max_body = '1KiB';
        cfg.providers.slow = { ...cfg.providers.mock, first_byte_timeout: '500ms' };
        cfg.providers.down = {
          kind: 'openai', base_url: `http://127.0.0.1:${closedPort}/v1`, api_key: 'env:MOCK_UPSTREAM_KEY', connect_timeout: '2s',
        };
        cfg.providers.idle = { ...cfg.providers.mock, idle_timeout: '500ms' };
        cfg.providers.total = { ...cfg.providers.mock, total_timeout: '800ms' };
        cfg.models['slow-model'] = { targets: ['slow/gpt-4o-mini-2024-07-18'] };
        cfg.models['idle-model'] = { targets: ['idle/gpt-4o-mini-2024-07-18'] };
        cfg.models['total-model'] = { targets: ['total/gpt-4o-mini-2024-07-18'] };
        cfg.models['down-model'] = { targets: ['down/gpt-4o-mini-2024-07-18'] };
        return cfg;
      },
    });
    ({ sluice, mock } = stack);
    client = sluice.client();
  });
  after(async () => { if (stack) await stack.stop(); });

  // What the mock itself answers for a fault header, straight from the mock.
  async function mockDirect(headers) {
    return request(`${mock.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mock.apiKey}`, 'content-type': 'application/json', ...headers },
      body: { model: 'x', messages: [{ role: 'user', content: 'hi' }] },
    });
  }

  function assertNoSecret(r, secret) {
    assert.ok(!r.body.includes(secret), 'secret echoed in the body');
    for (const [k, v] of Object.entries(r.headers)) assert.ok(!String(v).includes(secret), `secret echoed in header ${k}`);
  }

  it('401 without a key', async () => {
    const r = await sluice.chat({}, { headers: { authorization: null } });
    assert.equal(r.status, 401);
    const e = errorShape(r.json());
    assert.equal(e.code, 'invalid_api_key');
    assert.ok(r.headers['x-request-id']);
    assert.match(r.headers['content-type'], /^application\/json/);
  });

  it('401 with a bad key, never echoing it', async () => {
    const bad = 'sk-test-bogus-' + Date.now().toString(36) + 'zzz';
    for (const headers of [{ authorization: `Bearer ${bad}` }, { authorization: null, 'x-api-key': bad }]) {
      const r = await sluice.chat({}, { headers });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(errorShape(r.json()).code, 'invalid_api_key');
      assertNoSecret(r, bad);
    }
    // the SDK maps it to AuthenticationError
    const c = new OpenAI({ baseURL: sluice.baseURL, apiKey: bad, maxRetries: 0, timeout: 10000 });
    await assert.rejects(c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
      (err) => err instanceof OpenAI.AuthenticationError && err.status === 401 && !String(err.message).includes(bad));
  });

  it('404 for an unknown model', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
      (err) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found');
    const r = await sluice.chat({ model: 'nosuchprovider/some-model' });
    assert.equal(r.status, 404, r.body);
    assert.equal(errorShape(r.json()).code, 'model_not_found');
  });

  it('413 for a body over max_body (Content-Length and chunked)', async () => {
    const big = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(4096) }] };
    const r = await sluice.req('/v1/chat/completions', { method: 'POST', body: big });
    assert.equal(r.status, 413);
    errorShape(r.json());
    assert.ok(r.headers['x-request-id']);
    const c = await sluice.req('/v1/chat/completions', { method: 'POST', body: big, headers: { 'transfer-encoding': 'chunked' } });
    assert.equal(c.status, 413);
    // just under the limit still works
    const ok = await sluice.chat({ messages: [{ role: 'user', content: 'y'.repeat(600) }] });
    assert.equal(ok.status, 200, ok.body);
  });

  it('400 for malformed JSON', async () => {
    const res = await fetch(`${sluice.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sluice.key}`, 'content-type': 'application/json' },
      body: '{"model": "gpt-4o-mini", "messages": [',
    });
    assert.equal(res.status, 400);
    const e = errorShape(await res.json());
    assert.equal(e.type, 'invalid_request_error');
    assert.ok(res.headers.get('x-request-id'));
    for (const body of ['', 'null', '[1,2]', 'not json at all', '{"model":"gpt-4o-mini","messages":[]}garbage']) {
      const r = await sluice.req('/v1/chat/completions', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      assert.equal(r.status, 400, `body ${JSON.stringify(body)} -> ${r.status} ${r.body}`);
      assert.equal(errorShape(r.json()).type, 'invalid_request_error');
    }
  });

  it('400 for a missing model and for wrong types', async () => {
    const cases = [
      { messages: [{ role: 'user', content: 'x' }] },
      { model: 7, messages: [{ role: 'user', content: 'x' }] },
      { model: 'gpt-4o-mini', messages: 5 },
      { model: '', messages: [{ role: 'user', content: 'x' }] },
    ];
    for (const body of cases) {
      const r = await sluice.req('/v1/chat/completions', { method: 'POST', body });
      assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.status} ${r.body}`);
      assert.equal(errorShape(r.json()).type, 'invalid_request_error');
    }
    const emb = await sluice.req('/v1/embeddings', { method: 'POST', body: { input: 'x' } });
    assert.equal(emb.status, 400, emb.body);
  });

  it('upstream 500 becomes 502 with the provider message kept', async () => {
    const direct = await mockDirect({ 'x-mock-status': '500' });
    assert.equal(direct.status, 500);
    const upstreamMsg = direct.json().error.message;
    const r = await sluice.chat({}, { headers: { 'x-mock-status': '500' } });
    assert.equal(r.status, 502, r.body);
    const e = errorShape(r.json());
    assert.equal(e.type, 'api_error');
    assert.ok(e.message.includes(upstreamMsg), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(upstreamMsg)}`);
    assert.ok(!r.body.includes(mock.apiKey), 'upstream key leaked');
    for (const st of ['502', '504']) {
      await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-mock-status': st } }), (err) => err.status === 502, `upstream ${st}`);
    }
  });

  it('upstream 503 (overloaded) is a 502/503 with type api_error', async () => {
    // 503 may stay 503 by design (overload, retryable); the type is still api_error
    const ov = await sluice.chat({}, { headers: { 'x-mock-status': '503' } });
    assert.ok(ov.status === 502 || ov.status === 503, `upstream 503 -> ${ov.status}`);
    assert.equal(errorShape(ov.json()).type, 'api_error');
  });

  it('upstream 401 (the gateway\'s own key refused) is not passed on as the client\'s 401', async () => {
    const r = await sluice.chat({}, { headers: { 'x-mock-status': '401' } });
    assert.equal(r.status, 502, r.body);
    assert.equal(errorShape(r.json()).type, 'api_error');
    assert.ok(!r.body.includes(mock.apiKey) && !r.body.includes(sluice.key));
  });

  it('upstream 429 stays 429 with Retry-After', async () => {
    const r = await sluice.chat({}, { headers: { 'x-mock-status': '429', 'x-mock-retry-after': '7' } });
    assert.equal(r.status, 429, r.body);
    assert.equal(r.headers['retry-after'], '7');
    errorShape(r.json());
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
      { headers: { 'x-mock-status': '429', 'x-mock-retry-after': '7' } }), (err) => err instanceof OpenAI.RateLimitError);
  });

  it('upstream 400 passes through with the provider message', async () => {
    const direct = await mockDirect({ 'x-mock-status': '400' });
    const upstreamMsg = direct.json().error.message;
    const r = await sluice.chat({}, { headers: { 'x-mock-status': '400' } });
    assert.equal(r.status, 400, r.body);
    const e = errorShape(r.json());
    assert.ok(e.message.includes(upstreamMsg), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(upstreamMsg)}`);
    assert.equal(r.headers['x-sluice-provider'], 'mock');
  });

  it('upstream first-byte timeout gives 504 quickly', async () => {
    const t0 = Date.now();
    const r = await sluice.chat({ model: 'slow-model' }, { headers: { 'x-mock-delay-ms': '3000' } });
    const dt = Date.now() - t0;
    assert.equal(r.status, 504, r.body);
    errorShape(r.json());
    assert.ok(dt < 2900, `504 took ${dt} ms; first_byte_timeout is 500 ms`);
    // the same provider answers in time when the mock is quick
    const ok = await sluice.chat({ model: 'slow-model' });
    assert.equal(ok.status, 200, ok.body);
  });

  it('upstream down gives 502', async () => {
    const t0 = Date.now();
    const r = await sluice.chat({ model: 'down-model' });
    assert.equal(r.status, 502, r.body);
    assert.equal(errorShape(r.json()).type, 'api_error');
    assert.ok(Date.now() - t0 < 5000);
    assert.ok(r.headers['x-request-id']);
  });

  it('a reset mid-stream ends the client stream (no hang)', async () => {
    const t0 = Date.now();
    let outcome;
    try {
      const stream = await client.chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'reset me in the middle please' }], stream: true },
        { headers: { 'x-mock-chunks': '6', 'x-mock-chunk-delay-ms': '100', 'x-mock-reset-after': '2' }, timeout: 10000 });
      const s = await withTimeout(collectStream(stream), 10000, 'stream after upstream reset');
      outcome = { ok: true, content: s.content };
    } catch (err) {
      if (/^stream after upstream reset timed out/.test(err.message)) throw err;
      outcome = { ok: false, err: err.message };
    }
    assert.ok(Date.now() - t0 < 10000);
    if (outcome.ok) {
      assert.notEqual(outcome.content, 'mock reply: reset me in the middle please', 'stream cannot be complete after a reset');
    }
    // and the gateway is fine afterwards
    const r = await sluice.chat({});
    assert.equal(r.status, 200);
  });

  it('a reset after the upstream headers (non-stream) gives 502', async () => {
    const r = await sluice.chat({}, { headers: { 'x-mock-reset-after': '0' } });
    assert.equal(r.status, 502, r.body);
  });

  it('garbage or truncated upstream answers give 502', async () => {
    for (const h of [{ 'x-mock-garbage': '1' }, { 'x-mock-truncate': '1' }]) {
      const r = await sluice.chat({}, { headers: h, timeoutMs: 15000 });
      assert.equal(r.status, 502, `${JSON.stringify(h)} -> ${r.status} ${r.body}`);
      errorShape(r.json());
    }
  });

  it('an upstream that closes after its answer is not reused', async () => {
    // the mock answers in full, says Connection: close and closes; the next
    // requests must not be sent on that dead pooled connection
    for (let i = 0; i < 6; i++) {
      const h = i % 2 === 0 ? { 'x-mock-close': '1' } : {};
      const r = await sluice.chat({ messages: [{ role: 'user', content: `close ${i}` }] }, { headers: h });
      assert.equal(r.status, 200, `request ${i} ${JSON.stringify(h)} -> ${r.status} ${r.body}`);
      assert.equal(r.json().choices[0].message.content, `mock reply: close ${i}`);
    }
  });

  it('an upstream silent mid-stream past idle_timeout ends the client stream', async () => {
    const t0 = Date.now();
    let content = '';
    let failed = false;
    try {
      const stream = await client.chat.completions.create(
        { model: 'idle-model', messages: [{ role: 'user', content: 'idle upstream stream' }], stream: true },
        { headers: { 'x-mock-chunks': '4', 'x-mock-chunk-delay-ms': '3000' }, timeout: 15000 });
      content = (await withTimeout(collectStream(stream), 10000, 'stream after idle timeout')).content;
    } catch (err) {
      if (/^stream after idle timeout timed out/.test(err.message)) throw err;
      failed = true;
    }
    const dt = Date.now() - t0;
    assert.ok(dt < 2500, `stream ended after ${dt} ms; idle_timeout is 500 ms, chunks come every 3 s`);
    assert.ok(failed || content !== 'mock reply: idle upstream stream', 'the stream cannot be complete');
    // a non-streamed answer that starts and then stalls gives 504
    const r = await sluice.chat({ model: 'idle-model' }, { headers: { 'x-mock-drip-ms': '1000' } });
    assert.equal(r.status, 504, r.body);
  });

  it('total_timeout bounds a slow non-streamed answer: 504', async () => {
    const t0 = Date.now();
    const r = await sluice.chat({ model: 'total-model' }, { headers: { 'x-mock-drip-ms': '20' } });
    const dt = Date.now() - t0;
    assert.equal(r.status, 504, r.body);
    assert.ok(dt < 2500, `504 after ${dt} ms; total_timeout is 800 ms`);
  });

  it('a client that goes away mid-stream releases the upstream connection', async () => {
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'abandon this stream early' }], stream: true },
      { headers: { 'x-mock-chunks': '20', 'x-mock-chunk-delay-ms': '500' }, signal: ac.signal, timeout: 20000 });
    const it = stream[Symbol.asyncIterator]();
    await withTimeout(it.next(), 5000, 'first chunk');
    const during = (await mock.stats()).active;
    ac.abort();
    await it.return?.().catch(() => {});
    // the mock would stream for another ~10 s; sluice must hang up on it
    await waitFor(async () => (await mock.stats()).active < during,
      { timeoutMs: 3000, msg: `mock active connections to drop below ${during}` });
    const r = await sluice.chat({});
    assert.equal(r.status, 200);
  });

  it('accepts the Bearer scheme in any case', async () => {
    for (const scheme of ['bearer', 'BEARER']) {
      const r = await sluice.chat({}, { headers: { authorization: `${scheme} ${sluice.key}` } });
      assert.equal(r.status, 200, `${scheme}: ${r.status} ${r.body}`);
    }
    const basic = await sluice.chat({}, { headers: { authorization: `Basic ${Buffer.from(`x:${sluice.key}`).toString('base64')}` } });
    assert.equal(basic.status, 401);
  });

  it('an upstream error before the first streamed byte is a plain JSON error', async () => {
    for (const [st, want] of [['500', 502], ['429', 429], ['400', 400]]) {
      const r = await sluice.chat({ stream: true }, { headers: { 'x-mock-status': st, 'x-mock-retry-after': '3' } });
      assert.equal(r.status, want, `upstream ${st} on a stream -> ${r.status} ${r.body}`);
      assert.match(r.headers['content-type'] || '', /^application\/json/);
      errorShape(r.json());
    }
    await assert.rejects(client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true },
      { headers: { 'x-mock-status': '500' } }), (err) => err.status === 502);
  });

  it('maps upstream errors on embeddings the same way', async () => {
    const r = await sluice.req('/v1/embeddings', { method: 'POST', body: { model: 'gpt-4o-mini', input: 'x' }, headers: { 'x-mock-status': '500' } });
    assert.equal(r.status, 502, r.body);
    assert.equal(errorShape(r.json()).type, 'api_error');
    const t = await sluice.req('/v1/embeddings', { method: 'POST', body: { model: 'slow-model', input: 'x' }, headers: { 'x-mock-delay-ms': '3000' } });
    assert.equal(t.status, 504, t.body);
  });

  it('a client that gives up while sluice waits for the upstream does no harm', async () => {
    for (let i = 0; i < 5; i++) {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 150);
      await assert.rejects(client.chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-mock-delay-ms': '1000' }, signal: ac.signal }));
    }
    const r = await sluice.chat({});
    assert.equal(r.status, 200);
  });

  it('keeps serving after all of the above', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still here' }] });
    assert.equal(r.choices[0].message.content, 'mock reply: still here');
  });
});
