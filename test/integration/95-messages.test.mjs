// POST /v1/messages: the official @anthropic-ai/sdk against sluice, which
// takes Anthropic's Messages API in and serves it from any target: the
// OpenAI-format mock, an Anthropic target and a Gemini target. Plain
// answers, streams in Anthropic's event format, tool use and tool results,
// Anthropic's error shape for errors, and ledger rows with endpoint messages.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startStack, request, usageJson } from '../lib/harness.mjs';

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
};

function assertAnthropicError(body, type) {
  assert.equal(body.type, 'error', JSON.stringify(body));
  assert.equal(body.error.type, type, JSON.stringify(body));
  assert.ok(typeof body.error.message === 'string' && body.error.message.length > 0, JSON.stringify(body));
}

describe('POST /v1/messages (Anthropic shape in and out)', () => {
  let stack, sluice, client;
  const counts = {};

  before(async () => {
    stack = await startStack({
      name: 'messages',
      config: (cfg) => {
        const root = cfg.providers.mock.base_url.replace(/\/v1$/, '');
        cfg.providers.anth = { kind: 'anthropic', base_url: root, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.providers.gem = { kind: 'gemini', base_url: `${root}/v1beta`, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.models.claude = { targets: ['anth/claude-haiku-4-5'] };
        cfg.models.gemini = { targets: ['gem/gemini-2.5-flash'] };
        return cfg;
      },
    });
    ({ sluice } = stack);
    client = new Anthropic({ baseURL: sluice.root, apiKey: sluice.key, maxRetries: 0 });
  });
  after(async () => { if (stack) await stack.stop(); });

  const count = (model) => { counts[model] = (counts[model] || 0) + 1; };

  for (const model of ['gpt-4o-mini', 'claude', 'gemini']) {
    it(`${model}: a plain message, with usage`, async () => {
      const m = await client.messages.create({
        model, max_tokens: 100, system: 'be brief',
        messages: [{ role: 'user', content: 'hello there' }],
      });
      count(model);
      assert.equal(m.type, 'message');
      assert.equal(m.role, 'assistant');
      assert.equal(m.content.length, 1, JSON.stringify(m));
      assert.equal(m.content[0].type, 'text');
      assert.equal(m.content[0].text, 'mock reply: hello there');
      assert.equal(m.stop_reason, 'end_turn');
      assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0, JSON.stringify(m.usage));
    });

    it(`${model}: a stream of Anthropic events`, async () => {
      const stream = await client.messages.create({
        model, max_tokens: 100, stream: true,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'stream me please' }] }],
      }, { headers: { 'x-mock-chunks': '4' } });
      count(model);
      const events = [];
      let text = '';
      for await (const ev of stream) {
        events.push(ev);
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      }
      assert.equal(text, 'mock reply: stream me please');
      const types = events.map((e) => e.type);
      assert.equal(types[0], 'message_start');
      assert.equal(types.at(-1), 'message_stop');
      assert.equal(types.at(-2), 'message_delta');
      assert.ok(types.includes('content_block_start') && types.includes('content_block_stop'), types.join());
      const delta = events.at(-2);
      assert.equal(delta.delta.stop_reason, 'end_turn');
      assert.ok(delta.usage.output_tokens > 0, JSON.stringify(delta.usage));

      // the SDK's own accumulator agrees
      const final = await client.messages.stream({
        model, max_tokens: 100, messages: [{ role: 'user', content: 'and again' }],
      }).finalMessage();
      count(model);
      assert.equal(final.content[0].text, 'mock reply: and again');
      assert.ok(final.usage.input_tokens > 0 && final.usage.output_tokens > 0, JSON.stringify(final.usage));
    });

    it(`${model}: tool use, plain and streamed, and the tool result goes back`, async () => {
      const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
      const m = await client.messages.create({ model, max_tokens: 100, messages, tools: [WEATHER_TOOL] });
      count(model);
      assert.equal(m.stop_reason, 'tool_use');
      const use = m.content.find((b) => b.type === 'tool_use');
      assert.ok(use, JSON.stringify(m.content));
      assert.equal(use.name, 'get_weather');
      assert.deepEqual(use.input, { location: 'Paris' });
      assert.ok(use.id);

      const final = await client.messages.stream({ model, max_tokens: 100, messages, tools: [WEATHER_TOOL] }).finalMessage();
      count(model);
      assert.equal(final.stop_reason, 'tool_use');
      const suse = final.content.find((b) => b.type === 'tool_use');
      assert.ok(suse, JSON.stringify(final.content));
      assert.equal(suse.name, 'get_weather');
      assert.deepEqual(suse.input, { location: 'Paris' });

      const follow = await client.messages.create({
        model, max_tokens: 100, tools: [WEATHER_TOOL],
        messages: [...messages, { role: 'assistant', content: m.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '{"temp":21}' },
            { type: 'text', text: 'thanks' }] }],
      });
      count(model);
      assert.equal(follow.content[0].text, 'mock reply: thanks');
    });

    it(`${model}: an upstream 429 is a RateLimitError in Anthropic's shape`, async () => {
      await assert.rejects(client.messages.create({ model, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-mock-status': '429', 'x-mock-retry-after': '3' } }), (e) => {
        assert.ok(e instanceof Anthropic.RateLimitError, String(e));
        assert.equal(e.status, 429);
        assertAnthropicError(e.error, 'rate_limit_error');
        return true;
      });
      count(model);
    });
  }

  it('a failure mid-stream reaches the SDK as an error event, not as a short answer', async () => {
    for (const [model, headers] of [['claude', { 'x-mock-stream-error': '1' }], ['gpt-4o-mini', { 'x-mock-reset-after': '2' }]]) {
      const stream = await client.messages.create({
        model, max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'break please' }],
      }, { headers });
      count(model);
      await assert.rejects((async () => { for await (const ev of stream) { void ev; } })(),
        (e) => e instanceof Anthropic.APIError, `${model}: the stream must fail`);
    }
  });

  it('a bad key is an AuthenticationError (x-api-key and Bearer)', async () => {
    const bad = new Anthropic({ baseURL: sluice.root, apiKey: 'sk-wrong-key', maxRetries: 0 });
    await assert.rejects(bad.messages.create({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
      (e) => {
        assert.ok(e instanceof Anthropic.AuthenticationError, String(e));
        assert.equal(e.status, 401);
        assertAnthropicError(e.error, 'authentication_error');
        return true;
      });
    const bearer = new Anthropic({ baseURL: sluice.root, authToken: sluice.key, apiKey: null, maxRetries: 0 });
    const m = await bearer.messages.create({ model: 'gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: 'bearer' }] });
    count('gpt-4o-mini');
    assert.equal(m.content[0].text, 'mock reply: bearer');
  });

  it('an unknown model is a NotFoundError', async () => {
    await assert.rejects(client.messages.create({ model: 'no-such-model', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
      (e) => {
        assert.ok(e instanceof Anthropic.NotFoundError, String(e));
        assert.equal(e.status, 404);
        assertAnthropicError(e.error, 'not_found_error');
        return true;
      });
  });

  it('the HTTP server\'s own errors on /v1/messages are in Anthropic\'s shape too', async () => {
    const wrong = await request(`${sluice.root}/v1/messages`, { method: 'GET', timeoutMs: 5000 });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.json().type, 'error', wrong.body);
    assert.equal(wrong.json().error.type, 'invalid_request_error');
    assert.match(wrong.headers.allow, /POST/);
    const big = await request(`${sluice.root}/v1/messages`, {
      method: 'POST', headers: { 'x-api-key': sluice.key, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 8, messages: [{ role: 'user', content: 'x'.repeat(9 * 1024 * 1024) }] }),
      timeoutMs: 10000,
    });
    assert.equal(big.status, 413);
    assert.equal(big.json().type, 'error', big.body);
    assert.equal(big.json().error.type, 'request_too_large');
  });

  it('bad requests get 400 invalid_request_error in Anthropic\'s shape', async () => {
    const post = (body) => request(`${sluice.root}/v1/messages`, {
      method: 'POST', headers: { 'x-api-key': sluice.key, 'content-type': 'application/json' }, body,
    });
    for (const body of ['{"model":"claude","messages":[{"role":"user","content":"x"}]}', '{not json', '[]',
      '{"model":"claude","max_tokens":10,"messages":[]}', '']) {
      const r = await post(body);
      assert.equal(r.status, 400, `${body}: ${r.body}`);
      assertAnthropicError(r.json(), 'invalid_request_error');
    }
    const r = await post('{"model":"claude","messages":[{"role":"user","content":"x"}]}');
    assert.match(r.json().error.message, /max_tokens/);
  });

  it('the ledger has rows for /v1/messages, per model', async () => {
    const rows = await usageJson(sluice, 'model');
    for (const [model, n] of Object.entries(counts)) {
      const g = rows.find((x) => x.id === model || x.name === model);
      assert.ok(g, `usage has ${model}: ${JSON.stringify(rows)}`);
      assert.equal(g.requests, n, `${model}: ${JSON.stringify(g)}`);
    }
    const claude = rows.find((x) => x.id === 'claude' || x.name === 'claude');
    assert.ok(claude.errors >= 1 && claude.completion_tokens > 0, JSON.stringify(claude));
    // every one of them is recorded as coming through the messages endpoint
    const byEndpoint = await usageJson(sluice, 'endpoint');
    const messages = byEndpoint.find((x) => x.id === 'messages');
    assert.ok(messages, JSON.stringify(byEndpoint));
    assert.equal(messages.requests, rows.reduce((n, g) => n + g.requests, 0), JSON.stringify(byEndpoint));
  });
});
