// POST /v1/responses: the official openai SDK's responses API against
// sluice, translated onto an OpenAI-compatible target (chat completions),
// an Anthropic target (Messages) and a Gemini target (generateContent):
// plain, streamed (OpenAI's event sequence, sequence numbers, usage on
// response.completed), a function-tool round trip (namespaced names
// included), structured output, previous_response_id, retrieve, input
// items and delete, visibility per key, and the 400 for hosted tools.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, request, usageJson, createKey, sluiceCli, waitFor } from '../lib/harness.mjs';

const WEATHER = {
  type: 'function', name: 'get_weather', description: 'Current weather for a city',
  parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
};

describe('POST /v1/responses (translated onto every kind)', () => {
  let stack, sluice, mock, client;

  before(async () => {
    stack = await startStack({
      name: 'responses',
      config: (cfg) => {
        const root = cfg.providers.mock.base_url.replace(/\/v1$/, '');
        cfg.providers.anth = { kind: 'anthropic', base_url: root, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.providers.gem = { kind: 'gemini', base_url: `${root}/v1beta`, api_key: 'env:MOCK_UPSTREAM_KEY' };
        // a chat-completions target of the OpenAI family (not native Responses)
        cfg.providers.compat = { kind: 'vllm', base_url: cfg.providers.mock.base_url, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.models.compat = { targets: ['compat/llama-3'] };
        cfg.providers.az = { kind: 'azure', base_url: root, api_key: 'env:MOCK_UPSTREAM_KEY', deployments: { 'gpt-4o': 'prod-4o' } };
        cfg.models.azure = { targets: ['az/gpt-4o'] };
        cfg.models.claude = { targets: ['anth/claude-haiku-4-5'] };
        cfg.models.gemini = { targets: ['gem/gemini-2.5-flash'] };
        cfg.models.cached = { targets: ['anth/claude-haiku-4-5'], cache: true };
        return cfg;
      },
    });
    ({ sluice, mock } = stack);
    client = new OpenAI({ baseURL: sluice.baseURL, apiKey: sluice.key, maxRetries: 0 });
  });
  after(async () => { if (stack) await stack.stop(); });

  const lastUpstream = async () => (await mock.requests()).at(-1);

  for (const model of ['compat', 'claude', 'gemini']) {
    it(`${model}: a plain response with usage, instructions and options translated`, async () => {
      const r = await client.responses.create({
        model, instructions: 'be brief', input: 'hello there', max_output_tokens: 50,
        temperature: 0.5, metadata: { app: 'test' }, user: 'u-1',
      });
      assert.equal(r.object, 'response');
      assert.match(r.id, /^resp_[0-9a-f]{24}$/);
      assert.equal(r.status, 'completed');
      assert.equal(r.output_text, 'mock reply: hello there');
      assert.equal(r.output.length, 1, JSON.stringify(r.output));
      assert.equal(r.output[0].type, 'message');
      assert.equal(r.output[0].content[0].type, 'output_text');
      assert.deepEqual(r.metadata, { app: 'test' });
      assert.equal(r.instructions, 'be brief');
      assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0, JSON.stringify(r.usage));
      assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
      assert.equal(typeof r.usage.input_tokens_details.cached_tokens, 'number');
      assert.equal(typeof r.usage.output_tokens_details.reasoning_tokens, 'number');
      const up = await lastUpstream();
      const body = up.json;
      if (model === 'compat') {
        assert.equal(up.path, '/v1/chat/completions');
        assert.deepEqual(body.messages[0], { role: 'system', content: 'be brief' });
        assert.equal(body.max_completion_tokens, 50);
        assert.equal(body.temperature, 0.5);
        assert.equal(body.user, 'u-1');
        // the gateway's own members never reach an OpenAI-shaped provider
        assert.deepEqual(Object.keys(body).filter((k) => k.startsWith('sluice_')), []);
      } else if (model === 'claude') {
        assert.equal(up.path, '/v1/messages');
        assert.equal(body.system, 'be brief');
        assert.equal(body.max_tokens, 50);
        assert.equal(body.metadata.user_id, 'u-1');
      } else {
        assert.match(up.path, /:generateContent$/);
        assert.equal(body.systemInstruction.parts[0].text, 'be brief');
        assert.equal(body.generationConfig.maxOutputTokens, 50);
      }
    });

    it(`${model}: a stream in OpenAI's event sequence, usage on response.completed`, async () => {
      const stream = await client.responses.create({ model, input: 'stream me please', stream: true },
        { headers: { 'x-mock-chunks': '4' } });
      const events = [];
      let text = '';
      for await (const ev of stream) {
        events.push(ev);
        if (ev.type === 'response.output_text.delta') text += ev.delta;
      }
      assert.equal(text, 'mock reply: stream me please');
      const types = events.map((e) => e.type);
      assert.equal(types[0], 'response.created');
      assert.equal(types[1], 'response.in_progress');
      assert.equal(types.at(-1), 'response.completed');
      for (const t of ['response.output_item.added', 'response.content_part.added', 'response.output_text.done',
        'response.content_part.done', 'response.output_item.done']) {
        assert.ok(types.includes(t), `${t} missing: ${types.join()}`);
      }
      events.forEach((e, i) => assert.equal(e.sequence_number, i, `${e.type} out of sequence`));
      const done = events.at(-1).response;
      assert.equal(done.id, events[0].response.id);
      assert.equal(done.status, 'completed');
      assert.equal(done.output[0].content[0].text, 'mock reply: stream me please');
      assert.ok(done.usage.input_tokens > 0 && done.usage.output_tokens > 0, JSON.stringify(done.usage));

      // the SDK's own accumulator agrees
      const final = await client.responses.stream({ model, input: 'and again' }).finalResponse();
      assert.equal(final.output_text, 'mock reply: and again');
    });

    it(`${model}: a function-tool round trip, namespaced names kept`, async () => {
      const tools = [WEATHER, {
        type: 'namespace', name: 'mcp__files__', description: 'file tools',
        tools: [{ type: 'function', name: 'read.file', parameters: { type: 'object', properties: { path: { type: 'string' } } } }],
      }];
      const input = [{ role: 'user', content: [{ type: 'input_text', text: 'What is the weather in Paris?' }] }];
      const r = await client.responses.create({ model, input, tools, tool_choice: 'auto', parallel_tool_calls: false });
      const call = r.output.find((o) => o.type === 'function_call');
      assert.ok(call, JSON.stringify(r.output));
      assert.equal(call.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.arguments), { location: 'Paris' });
      assert.ok(call.call_id);
      let up = (await lastUpstream()).json;
      const names = JSON.stringify(up.tools);
      assert.ok(!names.includes('read.file'), `a dotted name reached the provider: ${names}`);

      // the namespaced tool first: the mock calls the first tool it is offered
      const s = await client.responses.stream({ model, input, tools: [tools[1], WEATHER] }).finalResponse();
      const ncall = s.output.find((o) => o.type === 'function_call');
      assert.ok(ncall, JSON.stringify(s.output));
      assert.equal(ncall.name, 'read.file');
      assert.equal(ncall.namespace, 'mcp__files__');

      const follow = await client.responses.create({
        model, tools,
        input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: '{"temp":21}' },
          { role: 'user', content: 'thanks' }],
      });
      assert.equal(follow.output_text, 'mock reply: thanks');
      up = (await lastUpstream()).json;
      const text = JSON.stringify(up);
      assert.ok(text.includes('temp'), text);
      if (model !== 'gemini') assert.ok(text.includes(call.call_id), text); // Gemini has no call ids
    });

    it(`${model}: structured output (text.format json_schema) reaches the provider`, async () => {
      const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
      const r = await client.responses.create({
        model, input: 'name a city', text: { format: { type: 'json_schema', name: 'city', schema, strict: true } },
      });
      assert.equal(r.status, 'completed');
      assert.deepEqual(r.text.format.schema, schema);
      const up = (await lastUpstream()).json;
      if (model === 'compat') {
        assert.deepEqual(up.response_format, { type: 'json_schema', json_schema: { name: 'city', schema, strict: true } });
      } else if (model === 'claude') {
        assert.match(up.system, /JSON schema/);
      } else {
        assert.equal(up.generationConfig.responseMimeType, 'application/json');
        assert.equal(up.generationConfig.responseSchema.properties.city.type, 'string');
      }
    });

    it(`${model}: previous_response_id carries the conversation; retrieve, input items, delete`, async () => {
      const first = await client.responses.create({ model, input: 'my name is Ada', instructions: 'first only' });
      const second = await client.responses.create({ model, input: 'what is my name?', previous_response_id: first.id });
      assert.equal(second.output_text, 'mock reply: what is my name?');
      assert.equal(second.previous_response_id, first.id);
      const up = JSON.stringify((await lastUpstream()).json);
      assert.ok(up.includes('my name is Ada') && up.includes('mock reply: my name is Ada'), up);
      assert.ok(!up.includes('first only'), `instructions are not carried over: ${up}`);

      const got = await client.responses.retrieve(first.id);
      assert.equal(got.id, first.id);
      assert.equal(got.output_text, 'mock reply: my name is Ada');
      const items = await client.responses.inputItems.list(first.id);
      assert.equal(items.data.length, 1);
      assert.equal(items.data[0].content[0].text, 'my name is Ada');

      const del = await client.responses.delete(first.id);
      void del;
      await assert.rejects(client.responses.retrieve(first.id), (e) => e instanceof OpenAI.NotFoundError);
      await assert.rejects(client.responses.create({ model, input: 'again', previous_response_id: first.id }),
        (e) => {
          assert.ok(e instanceof OpenAI.BadRequestError, String(e));
          assert.equal(e.error.param, 'previous_response_id');
          assert.equal(e.code, 'previous_response_not_found');
          return true;
        });
    });
  }

  for (const model of ['gpt-4o-mini', 'azure']) {
    it(`${model}: an openai/azure target gets the client's own body, and its answer raw`, async () => {
      const body = {
        model, input: [{ role: 'user', content: 'What is the weather in Paris?' }], store: true,
        tools: [{ type: 'web_search' }, WEATHER], include: ['reasoning.encrypted_content'],
        reasoning: { effort: 'low', summary: 'auto' },
      };
      const r = await client.responses.create(body);
      assert.match(r.id, /^resp_mock\d+$/, 'the provider\'s own response');
      const call = r.output.find((o) => o.type === 'function_call');
      assert.equal(call.name, 'get_weather');
      const up = await lastUpstream();
      assert.equal(up.path, model === 'azure' ? '/openai/v1/responses' : '/v1/responses');
      assert.deepEqual(up.json, { ...body, model: model === 'azure' ? 'prod-4o' : 'gpt-4o-mini-2024-07-18' });
      // stored under the provider's id, for the same key
      assert.equal((await client.responses.retrieve(r.id)).id, r.id);

      // streamed: the provider's events as they came, completed last
      const stream = await client.responses.create({ model, input: 'stream natively', stream: true },
        { headers: { 'x-mock-chunks': '3' } });
      const events = [];
      for await (const ev of stream) events.push(ev);
      assert.equal(events[0].type, 'response.created');
      assert.equal(events.at(-1).type, 'response.completed');
      events.forEach((e, i) => assert.equal(e.sequence_number, i));
      assert.equal(events.at(-1).response.output[0].content[0].text, 'mock reply: stream natively');
      assert.ok(events.at(-1).response.usage.input_tokens > 0);

      // a chain of native responses goes upstream as the client sent it
      const next = await client.responses.create({ model, input: 'and then?', previous_response_id: r.id });
      assert.equal(next.output_text, 'mock reply: and then?');
      const up2 = (await lastUpstream()).json;
      assert.equal(up2.previous_response_id, r.id);
    });
  }

  it('a chain started on a translated target continues natively with the whole conversation', async () => {
    const first = await client.responses.create({ model: 'claude', input: 'remember 42' });
    const next = await client.responses.create({ model: 'gpt-4o-mini', input: 'what number?', previous_response_id: first.id });
    assert.equal(next.output_text, 'mock reply: what number?');
    const up = (await lastUpstream()).json;
    assert.equal(up.previous_response_id, undefined, 'the upstream never saw that response');
    const text = JSON.stringify(up.input);
    assert.ok(text.includes('remember 42') && text.includes('mock reply: remember 42'), text);
  });

  it('a failure after the stream started reaches the SDK as an error, not a short answer', async () => {
    for (const [model, headers] of [['gpt-4o-mini', { 'x-mock-stream-error': '1' }], ['claude', { 'x-mock-stream-error': '1' }],
      ['compat', { 'x-mock-reset-after': '2' }]]) {
      const stream = await client.responses.create({ model, input: 'break please', stream: true }, { headers });
      await assert.rejects((async () => { for await (const ev of stream) { void ev; } })(),
        (e) => e instanceof OpenAI.APIError, `${model}: the stream must fail`);
    }
  });

  it('responses finished together are all stored (one group commit) and chain at once', async () => {
    const rs = await Promise.all(Array.from({ length: 24 }, (_, i) =>
      client.responses.create({ model: i % 2 ? 'compat' : 'claude', input: `batch ${i}` })));
    const next = await Promise.all(rs.map((r, i) =>
      client.responses.create({ model: 'compat', input: `after ${i}`, previous_response_id: r.id })));
    next.forEach((r, i) => assert.equal(r.previous_response_id, rs[i].id));
    const got = await Promise.all(rs.map((r) => client.responses.retrieve(r.id)));
    got.forEach((g, i) => assert.equal(g.output_text, `mock reply: batch ${i}`));
  });

  it('input items of an array input keep their ids, others get one', async () => {
    const r = await client.responses.create({ model: 'compat', input: [
      { role: 'user', content: 'first "quoted" \u00e9' },
      { type: 'message', role: 'assistant', id: 'msg_given', content: [{ type: 'output_text', text: 'hi' }] },
      { role: 'user', content: [{ type: 'input_text', text: 'last' }] }] });
    const items = (await client.responses.inputItems.list(r.id, { order: 'asc' })).data;
    const suffix = r.id.slice(5);
    assert.deepEqual(items.map((x) => [x.type, x.id]),
      [['message', `in_${suffix}_0`], ['message', 'msg_given'], ['message', `in_${suffix}_2`]]);
    assert.deepEqual(items[0].content, [{ type: 'input_text', text: 'first "quoted" \u00e9' }],
      'a string content listed as OpenAI lists it');
    const next = await client.responses.create({ model: 'compat', input: 'more', previous_response_id: r.id });
    const up = JSON.stringify((await lastUpstream()).json.messages);
    assert.ok(up.includes('first \\"quoted\\" \u00e9') && up.includes('last'), up);
    assert.equal(next.output_text, 'mock reply: more');
  });

  it('the response cache: a hit is a response of its own, stored when store is on', async () => {
    const ask = async (store) => {
      const { data, response } = await client.responses.create({ model: 'cached', input: `cache me ${store}`, store })
        .withResponse();
      return { r: data, cache: response.headers.get('x-sluice-cache') };
    };
    const entries = async () => JSON.parse((await sluiceCli(sluice, ['cache', 'stats', '--json'])).stdout).entries;
    // fills are written after the answer, off the loop: wait for the entry before asking again
    const filled = (n) => waitFor(async () => (await entries()) > n, { msg: 'the cache entry' });
    let n = await entries();
    const a = await ask(false);
    await filled(n);
    const b = await ask(false);
    assert.deepEqual([a.cache, b.cache], ['miss', 'hit']);
    assert.equal(b.r.output_text, a.r.output_text);
    assert.notEqual(b.r.id, a.r.id, 'a hit is a response of its own');
    await assert.rejects(client.responses.retrieve(b.r.id), (e) => e instanceof OpenAI.NotFoundError);
    n = await entries();
    const c = await ask(true);
    await filled(n);
    const d = await ask(true);
    assert.deepEqual([c.cache, d.cache], ['miss', 'hit']);
    assert.notEqual(d.r.id, c.r.id);
    assert.equal((await client.responses.retrieve(d.r.id)).output_text, c.r.output_text, 'the hit is stored as usual');
  });

  it('store: false keeps nothing', async () => {
    const r = await client.responses.create({ model: 'compat', input: 'not kept', store: false });
    assert.equal(r.store, false);
    await assert.rejects(client.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
  });

  it('a stored response is visible only to its key (and its team)', async () => {
    const a = await createKey(sluice, 'resp-a', ['--team', 'red']);
    const b = await createKey(sluice, 'resp-b', ['--team', 'red']);
    const c = await createKey(sluice, 'resp-c');
    const ca = new OpenAI({ baseURL: sluice.baseURL, apiKey: a.key, maxRetries: 0 });
    const cb = new OpenAI({ baseURL: sluice.baseURL, apiKey: b.key, maxRetries: 0 });
    const cc = new OpenAI({ baseURL: sluice.baseURL, apiKey: c.key, maxRetries: 0 });
    const r = await ca.responses.create({ model: 'compat', input: 'private' });
    assert.equal((await cb.responses.retrieve(r.id)).id, r.id, 'a key of the same team sees it');
    await assert.rejects(cc.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(client.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(cc.responses.delete(r.id), (e) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(cc.responses.create({ model: 'compat', input: 'x', previous_response_id: r.id }),
      (e) => e instanceof OpenAI.BadRequestError);
    assert.equal((await ca.responses.retrieve(r.id)).id, r.id, 'still there for its owner');
  });

  it('hosted tools get a clear 400 naming them on a translated target', async () => {
    for (const model of ['compat', 'claude', 'gemini']) {
      await assert.rejects(client.responses.create({ model, input: 'search the web', tools: [{ type: 'web_search' }] }),
        (e) => {
          assert.ok(e instanceof OpenAI.BadRequestError, String(e));
          assert.match(e.message, /web_search/);
          return true;
        });
    }
  });

  it('bad requests get 400 in OpenAI\'s shape', async () => {
    const post = (body) => sluice.req('/v1/responses', { method: 'POST', body });
    for (const [body, param] of [['{"input":"x"}', 'model'], ['{"model":"compat"}', 'input'],
      ['{"model":"compat","input":42}', 'input'], ['{"model":"compat","input":[{"type":"nonsense"}]}', 'input[0]'],
      ['{"model":"compat","input":"x","background":true}', 'background']]) {
      const r = await post(body);
      assert.equal(r.status, 400, `${body}: ${r.body}`);
      assert.equal(r.json().error.param, param, r.body);
    }
    const r = await post('{not json');
    assert.equal(r.status, 400);
    assert.equal(r.json().error.type, 'invalid_request_error');
    const nf = await request(`${sluice.root}/v1/responses/resp_nope`, { headers: { authorization: `Bearer ${sluice.key}` } });
    assert.equal(nf.status, 404);
    assert.match(nf.json().error.message, /resp_nope/);
  });

  it('GET /v1/models/{id}: one alias as OpenAI answers, 404 in OpenAI\'s shape otherwise', async () => {
    const m = await client.models.retrieve('claude');
    assert.equal(m.id, 'claude');
    assert.equal(m.object, 'model');
    assert.equal(m.owned_by, 'sluice');
    assert.equal(typeof m.created, 'number');
    await assert.rejects(client.models.retrieve('no-such-model'), (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, String(e));
      assert.equal(e.code, 'model_not_found');
      return true;
    });
    const anon = await request(`${sluice.root}/v1/models/claude`);
    assert.equal(anon.status, 401);
  });

  it('native answers and streams reach the ledger with the usage the provider reported', async () => {
    const k = await createKey(sluice, 'resp-native');
    const c = new OpenAI({ baseURL: sluice.baseURL, apiKey: k.key, maxRetries: 0 });
    const r = await c.responses.create({ model: 'gpt-4o-mini', input: 'count me' });
    const s = await c.responses.stream({ model: 'azure', input: 'count me as well please' }).finalResponse();
    assert.ok(r.usage.input_tokens > 0 && s.usage.output_tokens > 0);
    const row = (await usageJson(sluice, 'key')).find((g) => g.id === k.id);
    assert.ok(row, 'usage shows the key');
    assert.equal(row.requests, 2);
    assert.equal(row.prompt_tokens, r.usage.input_tokens + s.usage.input_tokens);
    assert.equal(row.completion_tokens, r.usage.output_tokens + s.usage.output_tokens);
  });

  it('usage reaches the ledger with endpoint responses', async () => {
    const rows = await usageJson(sluice, 'endpoint');
    const row = rows.find((x) => x.id === 'responses' || x.name === 'responses');
    assert.ok(row, JSON.stringify(rows));
    assert.ok(row.requests >= 15 && row.prompt_tokens > 0 && row.completion_tokens > 0, JSON.stringify(row));
  });
});
