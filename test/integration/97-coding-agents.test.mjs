// Coding agents and the SDKs new users reach for: a recorded Codex-style
// Responses request replayed through every kind, the Vercel AI SDK (`ai`
// with @ai-sdk/openai, whose default is the Responses API, and
// @ai-sdk/anthropic), LangChain JS (ChatOpenAI with useResponsesApi,
// ChatAnthropic), and what Claude Code needs from /v1/messages: thinking
// round trips with signatures intact, anthropic-beta forwarded, count_tokens,
// Anthropic's error shape on every /v1/messages path, and translation of
// thinking, output_config and server tools across formats.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { generateText, streamText, tool, jsonSchema, stepCountIs } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';
import { ChatOpenAI } from '@langchain/openai';
import { ChatAnthropic } from '@langchain/anthropic';
import { startStack, request } from '../lib/harness.mjs';

const FIXTURE = JSON.parse(fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)),
  'fixtures/codex-request.json'), 'utf8'));

const WEATHER = {
  name: 'get_weather', description: 'Current weather for a city',
  input_schema: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
};

describe('coding agents and SDKs', () => {
  let stack, sluice, mock, oai, ant;

  before(async () => {
    stack = await startStack({
      name: 'agents',
      config: (cfg) => {
        const root = cfg.providers.mock.base_url.replace(/\/v1$/, '');
        cfg.providers.anth = { kind: 'anthropic', base_url: root, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.providers.gem = { kind: 'gemini', base_url: `${root}/v1beta`, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.providers.compat = { kind: 'vllm', base_url: cfg.providers.mock.base_url, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.models.compat = { targets: ['compat/qwen-coder'] };
        cfg.models.claude = { targets: ['anth/claude-sonnet-4-5'] };
        cfg.models.gemini = { targets: ['gem/gemini-2.5-pro'] };
        return cfg;
      },
    });
    ({ sluice, mock } = stack);
    oai = new OpenAI({ baseURL: sluice.baseURL, apiKey: sluice.key, maxRetries: 0 });
    ant = new Anthropic({ baseURL: sluice.root, apiKey: sluice.key, maxRetries: 0 });
  });
  after(async () => { if (stack) await stack.stop(); });

  const lastUpstream = async () => (await mock.requests()).at(-1);

  for (const model of ['compat', 'claude', 'gemini', 'gpt-4o-mini']) {
    it(`a recorded Codex request (store: false, reasoning items, namespaced tools, stream) on ${model}`, async () => {
      const stream = await oai.responses.create({ ...FIXTURE, model });
      const events = [];
      for await (const ev of stream) events.push(ev);
      const done = events.at(-1);
      assert.equal(done.type, 'response.completed', events.map((e) => e.type).join());
      events.forEach((e, i) => assert.equal(e.sequence_number, i));
      const call = done.response.output.find((o) => o.type === 'function_call');
      assert.ok(call, JSON.stringify(done.response.output));
      assert.equal(call.name, 'shell');
      assert.ok(done.response.usage.input_tokens > 0 && done.response.usage.output_tokens > 0);
      // store: false keeps nothing
      await assert.rejects(oai.responses.retrieve(done.response.id), (e) => e instanceof OpenAI.NotFoundError);
      const up = await lastUpstream();
      const text = JSON.stringify(up.json);
      assert.ok(text.includes('Rule 119'), 'the long instructions arrive whole');
      if (model !== 'gpt-4o-mini') {
        assert.ok(!text.includes('"get.forecast"') && !text.includes('"alerts/active"'),
          'names a provider would refuse are replaced on translated targets');
        assert.ok(!text.includes('gAAAAABo-opaque'), 'OpenAI\'s reasoning blob only goes to OpenAI');
      } else {
        assert.deepEqual(up.json, { ...FIXTURE, model: 'gpt-4o-mini-2024-07-18' });
      }
    });
  }

  it('@anthropic-ai/sdk countTokens: forwarded to Anthropic, an estimate elsewhere', async () => {
    const body = { model: 'claude', system: 'be brief', messages: [{ role: 'user', content: 'count these words please' }], tools: [WEATHER] };
    const { data, response } = await ant.messages.countTokens(body).withResponse();
    assert.ok(data.input_tokens > 0);
    assert.equal(response.headers.get('x-sluice-token-count'), 'provider');
    const up = await lastUpstream();
    assert.equal(up.path, '/v1/messages/count_tokens');
    assert.equal(up.json.model, 'claude-sonnet-4-5');
    const est = await ant.messages.countTokens({ ...body, model: 'gpt-4o-mini' }).withResponse();
    assert.equal(est.response.headers.get('x-sluice-token-count'), 'estimated');
    const bytes = 'be brief'.length + JSON.stringify(body.messages).length + JSON.stringify(body.tools).length;
    assert.equal(est.data.input_tokens, Math.ceil(bytes / 4));
  });

  it('every /v1/messages path answers in Anthropic\'s error shape, 404 included', async () => {
    for (const [method, p] of [['GET', '/v1/messages/batches'], ['POST', '/v1/messages/nope'], ['DELETE', '/v1/messages/x']]) {
      const r = await request(`${sluice.root}${p}`, { method, headers: { 'x-api-key': sluice.key, 'content-type': 'application/json' }, body: method === 'GET' ? undefined : '{}' });
      assert.equal(r.status, 404, `${method} ${p}: ${r.body}`);
      assert.equal(r.json().type, 'error');
      assert.equal(r.json().error.type, 'not_found_error');
    }
    const bad = await request(`${sluice.root}/v1/messages/count_tokens`, { method: 'POST', headers: { 'x-api-key': 'nope', 'content-type': 'application/json' }, body: '{}' });
    assert.equal(bad.status, 401);
    assert.equal(bad.json().error.type, 'authentication_error');
  });

  it('thinking round trip on an Anthropic target: signatures byte-identical, anthropic-beta forwarded', async () => {
    const beta = 'interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14';
    const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const thinking = { type: 'enabled', budget_tokens: 2048 };
    const m = await ant.messages.create({ model: 'claude', max_tokens: 4096, thinking, messages, tools: [WEATHER] },
      { headers: { 'anthropic-beta': beta } });
    const up = await lastUpstream();
    assert.equal(up.headers['anthropic-beta'], beta);
    assert.deepEqual(up.json.thinking, thinking);
    const think = m.content.find((b) => b.type === 'thinking');
    assert.ok(think && think.signature.startsWith('sig_'), JSON.stringify(m.content));
    const use = m.content.find((b) => b.type === 'tool_use');
    // the mock refuses a thinking block whose signature does not match its text
    const follow = await ant.messages.create({
      model: 'claude', max_tokens: 4096, thinking, tools: [WEATHER],
      messages: [...messages, { role: 'assistant', content: m.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' }] }],
    });
    assert.equal(follow.type, 'message');

    // streamed: the SDK's accumulator gets the same thinking block and signature
    const final = await ant.messages.stream({ model: 'claude', max_tokens: 4096, thinking, messages, tools: [WEATHER] }).finalMessage();
    const st = final.content.find((b) => b.type === 'thinking');
    assert.equal(st.signature, think.signature);
    assert.equal(st.thinking, think.thinking);
    const again = await ant.messages.create({
      model: 'claude', max_tokens: 4096, thinking, tools: [WEATHER],
      messages: [...messages, { role: 'assistant', content: final.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: final.content.find((b) => b.type === 'tool_use').id, content: 'sunny' }] }],
    });
    assert.equal(again.type, 'message');
  });

  it('thinking, top_k and output_config map onto Gemini and OpenAI-shaped targets', async () => {
    const base = {
      max_tokens: 100, top_k: 5, thinking: { type: 'enabled', budget_tokens: 3000 },
      output_config: { format: { type: 'json_schema', schema: { type: 'object', properties: { a: { type: 'string' } } } } },
      messages: [{ role: 'user', content: 'think it over' }],
    };
    await ant.messages.create({ ...base, model: 'gemini' });
    let up = (await lastUpstream()).json;
    assert.deepEqual(up.generationConfig.thinkingConfig, { thinkingBudget: 3000, includeThoughts: true });
    assert.equal(up.generationConfig.topK, 5);
    assert.equal(up.generationConfig.responseMimeType, 'application/json');
    await ant.messages.create({ ...base, model: 'compat' });
    up = (await lastUpstream()).json;
    assert.equal(up.reasoning_effort, 'medium');
    assert.equal(up.top_k, 5);
    assert.equal(up.response_format.type, 'json_schema');
    assert.deepEqual(Object.keys(up).filter((k) => k.startsWith('sluice_')), []);
  });

  it('a server tool is served by an Anthropic target and refused, naming it, elsewhere', async () => {
    const body = { max_tokens: 100, tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 2 }],
      messages: [{ role: 'user', content: 'look it up' }] };
    const ok = await ant.messages.create({ ...body, model: 'claude' });
    assert.equal(ok.type, 'message');
    assert.deepEqual((await lastUpstream()).json.tools, body.tools);
    await assert.rejects(ant.messages.create({ ...body, model: 'compat' }), (e) => {
      assert.ok(e instanceof Anthropic.BadRequestError, String(e));
      assert.match(e.message, /web_search_20250305/);
      return true;
    });
  });

  it('a stream translated from an OpenAI-shaped target has input tokens in message_start', async () => {
    const stream = await ant.messages.create({ model: 'compat', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'count my input' }] });
    let start;
    for await (const ev of stream) if (ev.type === 'message_start') start = ev;
    assert.ok(start.message.usage.input_tokens > 0, JSON.stringify(start));
  });

  it('reasoning_effort on chat maps to Anthropic thinking and Gemini thinkingConfig', async () => {
    await oai.chat.completions.create({ model: 'claude', reasoning_effort: 'high', max_tokens: 100, messages: [{ role: 'user', content: 'hard one' }] });
    let up = (await lastUpstream()).json;
    assert.deepEqual(up.thinking, { type: 'enabled', budget_tokens: 24576 });
    assert.ok(up.max_tokens > 24576);
    await oai.chat.completions.create({ model: 'gemini', reasoning_effort: 'low', messages: [{ role: 'user', content: 'easy one' }] });
    up = (await lastUpstream()).json;
    assert.deepEqual(up.generationConfig.thinkingConfig, { thinkingBudget: 1024, includeThoughts: true });
  });

  it('Responses reasoning items carry Anthropic\'s signature back (translated target)', async () => {
    const tools = [{ type: 'function', name: 'get_weather', parameters: WEATHER.input_schema }];
    const input = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const r = await oai.responses.create({ model: 'claude', input, tools, reasoning: { effort: 'low' }, store: false });
    const up = (await lastUpstream()).json;
    assert.deepEqual(up.thinking, { type: 'enabled', budget_tokens: 2048 });
    const reasoning = r.output.find((o) => o.type === 'reasoning');
    assert.ok(reasoning && reasoning.encrypted_content.startsWith('sl1.a.sig_'), JSON.stringify(r.output));
    assert.match(reasoning.summary[0].text, /Thinking about/);
    const call = r.output.find((o) => o.type === 'function_call');
    // the mock checks the signature against the thinking text it gets back
    const next = await oai.responses.create({
      model: 'claude', tools, reasoning: { effort: 'low' }, store: false,
      input: [...input, ...r.output, { type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
    });
    assert.equal(next.status, 'completed');
    const back = (await lastUpstream()).json.messages[1].content[0];
    assert.equal(back.type, 'thinking');
    assert.equal(back.signature, reasoning.encrypted_content.slice(6));
    // streamed, the same
    const s = await oai.responses.stream({ model: 'claude', input, tools, reasoning: { effort: 'low' } }).finalResponse();
    assert.equal(s.output.find((o) => o.type === 'reasoning').encrypted_content, reasoning.encrypted_content);
  });

  it('the Vercel AI SDK (@ai-sdk/openai default = Responses, @ai-sdk/anthropic) on every kind', async () => {
    const openai = createOpenAI({ baseURL: sluice.baseURL, apiKey: sluice.key });
    const anthropic = createAnthropic({ baseURL: `${sluice.root}/v1`, apiKey: sluice.key });
    const weather = tool({
      description: 'Current weather for a city',
      inputSchema: jsonSchema({ type: 'object', properties: { location: { type: 'string' } }, required: ['location'] }),
      execute: async ({ location }) => ({ location, temperature: 21 }),
    });
    for (const model of ['compat', 'claude', 'gemini', 'gpt-4o-mini']) {
      for (const [name, m] of [['openai', openai(model)], ['anthropic', anthropic(model)]]) {
        const g = await generateText({ model: m, prompt: `hi from ${name}`, maxRetries: 0 });
        assert.equal(g.text, `mock reply: hi from ${name}`, `${name} on ${model}`);
        assert.ok(g.usage.inputTokens > 0 && g.usage.outputTokens > 0, `${name} on ${model}: ${JSON.stringify(g.usage)}`);
        const s = streamText({ model: m, prompt: `stream from ${name}`, maxRetries: 0 });
        let text = '';
        for await (const part of s.textStream) text += part;
        assert.equal(text, `mock reply: stream from ${name}`, `${name} stream on ${model}`);
        const t = await generateText({ model: m, prompt: 'What is the weather in Paris?', tools: { get_weather: weather },
          stopWhen: stepCountIs(2), maxRetries: 0 });
        assert.equal(t.steps[0].toolCalls[0].toolName, 'get_weather', `${name} tools on ${model}`);
        assert.equal(t.steps.length, 2, `${name} on ${model}: the tool result went back`);
      }
    }
    const up = await mock.requests();
    assert.ok(up.some((q) => q.path === '/v1/responses'), 'the openai provider spoke Responses to the native target');
  });

  it('LangChain JS: ChatOpenAI with useResponsesApi, and ChatAnthropic', async () => {
    for (const model of ['compat', 'claude', 'gemini', 'gpt-4o-mini']) {
      const lc = new ChatOpenAI({ model, useResponsesApi: true, apiKey: sluice.key, configuration: { baseURL: sluice.baseURL }, maxRetries: 0 });
      const r = await lc.invoke('hello langchain');
      assert.equal(r.text, 'mock reply: hello langchain', model);
      assert.ok(r.usage_metadata.input_tokens > 0, JSON.stringify(r.usage_metadata));
      let text = '';
      for await (const chunk of await lc.stream('stream langchain')) text += chunk.text;
      assert.equal(text, 'mock reply: stream langchain', model);
      const withTools = lc.bindTools([{ type: 'function', function: { name: 'get_weather', description: 'weather', parameters: WEATHER.input_schema } }]);
      const tc = await withTools.invoke('What is the weather in Paris?');
      assert.equal(tc.tool_calls[0].name, 'get_weather', model);
      assert.deepEqual(tc.tool_calls[0].args, { location: 'Paris' });

      const la = new ChatAnthropic({ model, apiKey: sluice.key, anthropicApiUrl: sluice.root, maxRetries: 0 });
      const a = await la.invoke('hello anthropic');
      assert.equal(a.text, 'mock reply: hello anthropic', model);
      assert.ok(a.usage_metadata.input_tokens > 0, JSON.stringify(a.usage_metadata));
    }
  });
});
