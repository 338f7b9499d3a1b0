// The official openai SDK against the translating adapters: sluice speaks
// OpenAI to the client and Anthropic's Messages API or Gemini's API to the
// mock, for plain answers, streams and tool calls, and maps their errors.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, collectStream } from '../lib/harness.mjs';

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  },
};

describe('providers through translation', () => {
  let stack, sluice, mock, client;

  before(async () => {
    stack = await startStack({
      name: 'providers',
      config: (cfg, { }) => {
        const root = cfg.providers.mock.base_url.replace(/\/v1$/, '');
        cfg.providers.anth = { kind: 'anthropic', base_url: root, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.providers.gem = { kind: 'gemini', base_url: `${root}/v1beta`, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.models.claude = { targets: ['anth/claude-haiku-4-5'] };
        cfg.models.gemini = { targets: ['gem/gemini-2.5-flash'] };
        return cfg;
      },
    });
    ({ sluice, mock } = stack);
    client = sluice.client();
  });
  after(async () => { if (stack) await stack.stop(); });

  for (const model of ['claude', 'gemini']) {
    it(`${model}: a plain answer in OpenAI's shape, with usage`, async () => {
      const r = await client.chat.completions.create({
        model,
        messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello there' }],
      });
      assert.equal(r.object, 'chat.completion');
      assert.equal(r.choices[0].message.role, 'assistant');
      assert.equal(r.choices[0].message.content, 'mock reply: hello there');
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0, JSON.stringify(r.usage));
    });

    it(`${model}: a stream of OpenAI chunks, usage on request`, async () => {
      const stream = await client.chat.completions.create({
        model, stream: true, stream_options: { include_usage: true },
        messages: [{ role: 'user', content: 'stream me please' }],
      }, { headers: { 'x-mock-chunks': '4' } });
      const s = await collectStream(stream);
      assert.equal(s.content, 'mock reply: stream me please');
      assert.equal(s.finishReason, 'stop');
      assert.ok(s.usage && s.usage.completion_tokens > 0, `usage: ${JSON.stringify(s.usage)}`);
      for (const c of s.chunks) assert.equal(c.object, 'chat.completion.chunk');
    });

    it(`${model}: tool calls, plain and streamed, and the tool result goes back`, async () => {
      const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
      const r = await client.chat.completions.create({ model, messages, tools: [WEATHER_TOOL] });
      const m = r.choices[0].message;
      assert.equal(r.choices[0].finish_reason, 'tool_calls');
      assert.equal(m.tool_calls.length, 1);
      assert.equal(m.tool_calls[0].function.name, 'get_weather');
      assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), { location: 'Paris' });

      const stream = await client.chat.completions.create({ model, messages, tools: [WEATHER_TOOL], stream: true });
      const s = await collectStream(stream);
      assert.equal(s.finishReason, 'tool_calls');
      assert.equal(s.toolCalls[0].function.name, 'get_weather');
      assert.deepEqual(JSON.parse(s.toolCalls[0].function.arguments), { location: 'Paris' });

      const follow = await client.chat.completions.create({
        model, tools: [WEATHER_TOOL],
        messages: [...messages, m, { role: 'tool', tool_call_id: m.tool_calls[0].id, content: '{"temp":21}' },
          { role: 'user', content: 'thanks' }],
      });
      assert.equal(follow.choices[0].message.content, 'mock reply: thanks');
    });

    it(`${model}: provider errors keep their message and map to OpenAI's statuses`, async () => {
      await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-mock-status': '429', 'x-mock-retry-after': '3' } }), (e) => e.status === 429);
      await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-mock-status': '500' } }), (e) => e.status === 502 && e.type === 'api_error');
    });
  }

  it('the upstream requests are in each provider\'s own format, with its own key header', async () => {
    await fetch(`${mock.baseURL.replace(/\/v1$/, '')}/__mock/reset`, { method: 'POST' });
    await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'a' }] });
    await client.chat.completions.create({ model: 'gemini', messages: [{ role: 'user', content: 'b' }] });
    const reqs = await (await fetch(`${mock.baseURL.replace(/\/v1$/, '')}/__mock/requests`)).json();
    const a = reqs.find((q) => q.path === '/v1/messages');
    const g = reqs.find((q) => q.path.startsWith('/v1beta/models/gemini-2.5-flash:generateContent'));
    assert.ok(a && g, JSON.stringify(reqs.map((q) => q.path)));
    assert.equal(a.headers['x-api-key'], mock.apiKey);
    assert.ok(a.headers['anthropic-version']);
    assert.equal(JSON.parse(a.body).model, 'claude-haiku-4-5');
    assert.ok(JSON.parse(a.body).max_tokens > 0);
    assert.equal(g.headers['x-goog-api-key'], mock.apiKey);
    assert.ok(Array.isArray(JSON.parse(g.body).contents));
    for (const q of [a, g]) {
      assert.ok(!JSON.stringify(q).includes(sluice.key), 'the client key reached the provider');
    }
  });
});
