// Chat completions through sluice with the official openai SDK: plain and
// streamed answers, tool calls, provider/model routing, request ids, the
// x-sluice-* headers and what actually goes upstream.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, collectStream } from '../lib/harness.mjs';

const TARGET = 'gpt-4o-mini-2024-07-18';
const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

describe('chat completions', () => {
  let stack, sluice, mock, client;

  before(async () => {
    stack = await startStack({ name: 'chat' });
    ({ sluice, mock } = stack);
    client = sluice.client();
  });
  after(async () => { if (stack) await stack.stop(); });

  it('answers a non-streamed chat', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello there' }],
    });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, 'mock reply: hello there');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.ok(r.usage && r.usage.total_tokens > 0, `usage: ${JSON.stringify(r.usage)}`);
  });

  it('streams a chat event by event', async () => {
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'stream me please' }], stream: true },
      { headers: { 'x-mock-chunks': '5' } });
    const s = await collectStream(stream);
    assert.equal(s.content, 'mock reply: stream me please');
    assert.ok(s.chunks.length >= 5, `only ${s.chunks.length} chunks`);
    assert.equal(s.finishReason, 'stop');
    for (const c of s.chunks) assert.equal(c.object, 'chat.completion.chunk');
  });

  it('flushes each stream chunk as it arrives (no buffering)', async () => {
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'slow stream' }], stream: true },
      { headers: { 'x-mock-chunks': '5', 'x-mock-chunk-delay-ms': '300' } });
    const s = await collectStream(stream);
    assert.equal(s.content, 'mock reply: slow stream');
    const first = s.times[0];
    const last = s.times[s.times.length - 1];
    assert.ok(first < last - 800,
      `first chunk at ${first} ms, last at ${last} ms: the stream was buffered (arrivals ${JSON.stringify(s.times)})`);
  });

  it('returns a tool call (non-stream)', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: [WEATHER_TOOL],
    });
    const m = r.choices[0].message;
    assert.ok(Array.isArray(m.tool_calls) && m.tool_calls.length >= 1, `no tool_calls: ${JSON.stringify(m)}`);
    const tc = m.tool_calls[0];
    assert.equal(tc.type, 'function');
    assert.equal(tc.function.name, 'get_weather');
    assert.ok(tc.id, 'tool call has an id');
    assert.doesNotThrow(() => JSON.parse(tc.function.arguments), `arguments not JSON: ${tc.function.arguments}`);
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
  });

  it('streams a tool call', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'weather in Oslo?' }],
      tools: [WEATHER_TOOL],
      stream: true,
    });
    const s = await collectStream(stream);
    assert.equal(s.toolCalls.length >= 1, true, `no tool call deltas in ${JSON.stringify(s.chunks)}`);
    assert.equal(s.toolCalls[0].function.name, 'get_weather');
    assert.doesNotThrow(() => JSON.parse(s.toolCalls[0].function.arguments),
      `joined arguments not JSON: ${s.toolCalls[0].function.arguments}`);
    assert.equal(s.finishReason, 'tool_calls');
  });

  it('routes provider/model straight to that provider', async () => {
    const marker = `direct-${Date.now()}`;
    const { data, response } = await client.chat.completions.create({
      model: 'mock/some-model',
      messages: [{ role: 'user', content: marker }],
    }).withResponse();
    assert.equal(data.choices[0].message.content, `mock reply: ${marker}`);
    assert.equal(response.headers.get('x-sluice-provider'), 'mock');
    assert.equal(response.headers.get('x-sluice-model'), 'some-model');
    const reqs = await mock.requests();
    const up = reqs.find((q) => q.rawBody.includes(marker));
    assert.ok(up, 'request reached the mock');
    assert.equal(up.json.model, 'some-model');
  });

  it('echoes the client request id, and makes one when absent', async () => {
    const id = `it-req-${Date.now()}`;
    const { response } = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'id' }] },
      { headers: { 'x-request-id': id } }).withResponse();
    assert.equal(response.headers.get('x-request-id'), id);

    const r2 = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'id2' }] }).withResponse();
    const gen = r2.response.headers.get('x-request-id');
    assert.ok(gen && gen.length >= 8, `generated x-request-id: ${gen}`);
    const r3 = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'id3' }] }).withResponse();
    assert.notEqual(r3.response.headers.get('x-request-id'), gen, 'request ids are unique');
  });

  it('sets the x-sluice-* headers on proxied answers (plain and streamed)', async () => {
    const { response } = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hdrs' }] }).withResponse();
    assert.equal(response.headers.get('x-sluice-provider'), 'mock');
    assert.equal(response.headers.get('x-sluice-model'), TARGET);
    assert.match(response.headers.get('x-sluice-attempts') || '', /^[1-9]\d*$/);
    assert.ok(response.headers.get('x-request-id'));

    const st = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hdrs' }], stream: true }).withResponse();
    assert.equal(st.response.headers.get('x-sluice-provider'), 'mock');
    assert.equal(st.response.headers.get('x-sluice-model'), TARGET);
    assert.match(st.response.headers.get('content-type') || '', /^text\/event-stream/);
    await collectStream(st.data);
  });

  it('forwards the request with the target model and the upstream key, never the client key', async () => {
    await mock.reset();
    const marker = `fwd-${Date.now()}`;
    await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: marker }],
      temperature: 0.25,
      max_tokens: 17,
    });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: marker + '-s' }], stream: true,
    });
    await collectStream(stream);
    // also the x-api-key form of client auth
    const r = await sluice.chat({ messages: [{ role: 'user', content: marker + '-x' }] },
      { headers: { authorization: null, 'x-api-key': sluice.key } });
    assert.equal(r.status, 200, r.body);

    const reqs = (await mock.requests()).filter((q) => q.rawBody.includes(marker));
    assert.equal(reqs.length, 3, `mock saw ${reqs.length} marked requests`);
    for (const q of reqs) {
      assert.equal(q.method, 'POST');
      assert.match(q.path, /\/v1\/chat\/completions$/);
      assert.equal(q.json.model, TARGET, 'model rewritten to the target name');
      assert.equal(q.headers.authorization, `Bearer ${mock.apiKey}`);
      for (const [k, v] of Object.entries(q.headers)) {
        assert.ok(!String(v).includes(sluice.key), `client key leaked upstream in header ${k}`);
      }
      assert.ok(!q.rawBody.includes(sluice.key), 'client key leaked upstream in the body');
      assert.ok(!('x-api-key' in q.headers) || q.headers['x-api-key'] !== sluice.key);
    }
    const plain = reqs.find((q) => q.json.messages?.[0]?.content === marker);
    assert.equal(plain.json.temperature, 0.25, 'other fields pass through');
    assert.equal(plain.json.max_tokens, 17);
    const streamed = reqs.find((q) => q.json.messages?.[0]?.content === marker + '-s');
    assert.equal(streamed.json.stream, true);
  });

  it('yields usage in a stream with stream_options.include_usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'count my tokens' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const s = await collectStream(stream);
    assert.equal(s.content, 'mock reply: count my tokens');
    assert.ok(s.usage, 'a chunk carried usage');
    assert.ok(s.usage.prompt_tokens > 0 && s.usage.completion_tokens > 0, JSON.stringify(s.usage));
    assert.equal(s.usage.total_tokens, s.usage.prompt_tokens + s.usage.completion_tokens);
  });

  it('serves concurrent requests', async () => {
    const N = 24;
    const rs = await Promise.all(Array.from({ length: N }, (_, i) => client.chat.completions.create({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: `c${i}` }],
    })));
    rs.forEach((r, i) => assert.equal(r.choices[0].message.content, `mock reply: c${i}`));
  });
  it('streams many small chunks intact, multi-byte characters included', async () => {
    const text = 'héllo wörld, ünïcödé 🌍 and 日本語 — ' + 'ça va? '.repeat(12);
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }], stream: true },
      { headers: { 'x-mock-chunks': '300' } });
    const s = await collectStream(stream);
    const want = `mock reply: ${[...text].slice(0, 200).join('')}`;
    assert.equal(s.content, want);
    assert.ok(s.chunks.length >= 100, `${s.chunks.length} chunks`);
  });

  it('keeps 20 concurrent streams apart', async () => {
    const N = 20;
    const results = await Promise.all(Array.from({ length: N }, async (_, i) => {
      const stream = await client.chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `parallel stream number ${i}` }], stream: true },
        { headers: { 'x-mock-chunks': '6', 'x-mock-chunk-delay-ms': '40' } });
      return collectStream(stream);
    }));
    results.forEach((s, i) => assert.equal(s.content, `mock reply: parallel stream number ${i}`));
  });

  it('copes with an upstream that drips its answer byte by byte', async () => {
    const r = await sluice.chat({ messages: [{ role: 'user', content: 'drip' }] },
      { headers: { 'x-mock-drip-ms': '1' }, timeoutMs: 20000 });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().choices[0].message.content, 'mock reply: drip');
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'drip stream' }], stream: true },
      { headers: { 'x-mock-drip-ms': '1', 'x-mock-chunks': '3' }, timeout: 20000 });
    const s = await collectStream(stream);
    assert.equal(s.content, 'mock reply: drip stream');
  });

  it('passes a large request body through unchanged', async () => {
    const big = 'lorem ipsum '.repeat(20000); // ~240 KB
    const marker = `big-${Date.now()}`;
    const r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'system', content: big }, { role: 'user', content: marker }],
    });
    assert.equal(r.choices[0].message.content, `mock reply: ${marker}`);
    const up = (await mock.requests()).find((q) => q.rawBody.includes(marker));
    assert.ok(up);
    assert.equal(up.json.messages[0].content, big);
  });

  it('forwards ordinary client headers, not hop-by-hop or credential ones', async () => {
    const marker = `hdr-${Date.now()}`;
    const r = await sluice.chat({ messages: [{ role: 'user', content: marker }] }, {
      headers: {
        'x-trace-token': 'trace-123',
        'openai-organization': 'org-test',
        connection: 'keep-alive, x-hop-only',
        'x-hop-only': 'must-not-pass',
        'proxy-authorization': 'Basic c2VjcmV0OnNlY3JldA==',
        cookie: 'session=abc',
      },
    });
    assert.equal(r.status, 200, r.body);
    const up = (await mock.requests()).find((q) => q.rawBody.includes(marker));
    assert.ok(up);
    assert.equal(up.headers['x-trace-token'], 'trace-123');
    // an identity header reaches the provider only when its forward_headers lists it (92-upstream-hygiene)
    assert.ok(!('openai-organization' in up.headers), 'openai-organization is not forwarded by default');
    assert.ok(!('x-hop-only' in up.headers), 'a header named in Connection is hop-by-hop');
    assert.ok(!('proxy-authorization' in up.headers), 'proxy-authorization is not forwarded');
    assert.equal(up.headers.authorization, `Bearer ${mock.apiKey}`);
  });
});
