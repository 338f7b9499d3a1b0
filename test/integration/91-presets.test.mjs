// The official openai SDK through every OpenAI-compatible preset and Azure:
// each kind answers plain and streamed chats with usage, drops the chat
// parameters its provider refuses (its quirk table in providers/openai.c)
// and nothing else, and Azure uses its own path, api-version and api-key.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startStack, collectStream, withTimeout, waitFor, usageJson, SLUICE_MOCK } from '../lib/harness.mjs';

// kind -> the top-level chat keys sluice must drop for it (providers/openai.c)
const PRESETS = {
  deepseek: ['seed', 'logit_bias'],
  mistral: ['stream_options', 'logit_bias', 'logprobs', 'top_logprobs', 'user', 'seed'],
  groq: ['logprobs', 'top_logprobs', 'logit_bias', 'n'],
  perplexity: ['stream_options', 'logit_bias', 'logprobs', 'top_logprobs', 'n'],
  cerebras: ['logit_bias', 'n'],
  together: [],
  fireworks: [],
  xai: [],
  openrouter: [],
  ollama: [],
  vllm: [],
  azure: [],
};
const KINDS = Object.keys(PRESETS);

// Every parameter some quirk table drops, each with a value OpenAI takes.
const EXTRA = { logit_bias: { 50256: -100 }, seed: 7, n: 1, user: 'u-91', logprobs: true, top_logprobs: 1 };

// A mock without --api-key (startMock always sets one), for the keyless ollama.
async function startKeylessMock() {
  const proc = spawn(SLUICE_MOCK, ['--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((r) => proc.on('exit', r));
  let out = '';
  const port = await withTimeout(new Promise((resolve, reject) => {
    proc.stdout.on('data', (c) => {
      out += c;
      const m = /^port=(\d+)\s*$/m.exec(out);
      if (m) resolve(Number(m[1]));
    });
    exited.then(() => reject(new Error('keyless mock exited early')));
  }), 10000, 'keyless mock start').catch((e) => { proc.kill('SIGKILL'); throw e; });
  const root = `http://127.0.0.1:${port}`;
  return {
    root,
    async requests() { return (await fetch(`${root}/__mock/requests`)).json(); },
    async reset() { await fetch(`${root}/__mock/reset`, { method: 'POST' }); },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await withTimeout(exited, 3000, 'keyless mock stop').catch(() => proc.kill('SIGKILL'));
      }
    },
  };
}

describe('OpenAI-compatible presets and Azure', () => {
  let stack, sluice, mock, local, client;

  // The mock's requests since the last reset (both mocks), bodies parsed.
  async function upstream() {
    const reqs = [...await mock.requests(), ...await local.requests()];
    return reqs.map((q) => ({ ...q, json: typeof q.body === 'string' ? JSON.parse(q.body) : q.body }));
  }
  async function reset() { await mock.reset(); await local.reset(); }

  before(async () => {
    local = await startKeylessMock();
    stack = await startStack({
      name: 'presets',
      config: (cfg) => {
        const root = cfg.providers.mock.base_url.replace(/\/v1$/, '');
        for (const kind of KINDS) {
          const p = { kind, base_url: `${root}/v1`, api_key: 'env:MOCK_UPSTREAM_KEY' };
          if (kind === 'ollama') { p.base_url = `${local.root}/v1`; delete p.api_key; }
          if (kind === 'azure') Object.assign(p, { base_url: root, deployments: { 'gpt-4o-mini': 'my-deploy' } });
          cfg.providers[`p-${kind}`] = p;
          cfg.models[`m-${kind}`] = { targets: [`p-${kind}/gpt-4o-mini`] };
        }
        cfg.models['m-azure-embed'] = { targets: ['p-azure/text-embedding-3-small'] };
        return cfg;
      },
    }).catch(async (e) => { await local.stop(); throw e; });
    ({ sluice, mock } = stack);
    client = sluice.client();
  });
  after(async () => {
    const errs = [];
    if (stack) await stack.stop().catch((e) => errs.push(e));
    if (local) await local.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
  });

  for (const kind of KINDS) {
    const model = `m-${kind}`;
    const dropped = PRESETS[kind];

    it(`${kind}: a plain answer with usage; the refused parameters are dropped, the rest kept`, async () => {
      await reset();
      const r = await client.chat.completions.create({
        model, ...EXTRA, temperature: 0.5,
        messages: [{ role: 'user', content: `hello ${kind}` }],
      });
      assert.equal(r.choices[0].message.content, `mock reply: hello ${kind}`);
      assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0, JSON.stringify(r.usage));

      const reqs = await upstream();
      assert.equal(reqs.length, 1, JSON.stringify(reqs.map((q) => q.path)));
      const body = reqs[0].json;
      assert.equal(body.model, 'gpt-4o-mini');
      assert.equal(body.temperature, 0.5);
      assert.deepEqual(body.messages, [{ role: 'user', content: `hello ${kind}` }]);
      for (const k of Object.keys(EXTRA)) {
        if (dropped.includes(k)) assert.ok(!(k in body), `${kind} should drop ${k}: ${reqs[0].body}`);
        else assert.deepEqual(body[k], EXTRA[k], `${kind} should keep ${k}: ${reqs[0].body}`);
      }
    });

    it(`${kind}: a stream with usage; stream_options only where the provider takes it`, async () => {
      await reset();
      const stream = await client.chat.completions.create({
        model, ...EXTRA, stream: true, stream_options: { include_usage: true },
        messages: [{ role: 'user', content: `stream ${kind} please` }],
      }, { headers: { 'x-mock-chunks': '3' } });
      const s = await collectStream(stream);
      assert.equal(s.content, `mock reply: stream ${kind} please`);
      assert.equal(s.finishReason, 'stop');
      if (dropped.includes('stream_options')) {
        // Mistral and Perplexity put usage in their last chunk unasked; the
        // mock sends it only on include_usage, so here none reaches the
        // client (the ledger gets the core's estimate, checked below)
        assert.equal(s.usage, null, `usage: ${JSON.stringify(s.usage)}`);
      } else {
        assert.ok(s.usage && s.usage.prompt_tokens > 0 && s.usage.completion_tokens > 0,
          `usage: ${JSON.stringify(s.usage)}`);
      }

      // without stream_options: sluice asks for usage itself, unless the kind refuses the key
      const plain = await collectStream(await client.chat.completions.create({
        model, stream: true, messages: [{ role: 'user', content: 'again' }],
      }));
      assert.equal(plain.content, 'mock reply: again');

      const [withOpts, without] = await upstream();
      assert.equal(withOpts.json.stream, true);
      for (const k of Object.keys(EXTRA)) {
        assert.equal(k in withOpts.json, !dropped.includes(k), `${kind}, ${k}: ${withOpts.body}`);
      }
      if (dropped.includes('stream_options')) {
        assert.ok(!('stream_options' in withOpts.json), withOpts.body);
        assert.ok(!('stream_options' in without.json), without.body);
      } else {
        assert.deepEqual(withOpts.json.stream_options, { include_usage: true });
        assert.deepEqual(without.json.stream_options, { include_usage: true });
      }
    });
  }

  it('the presets send the key as a bearer token, ollama without a key sends none', async () => {
    await reset();
    for (const kind of KINDS) {
      await client.chat.completions.create({ model: `m-${kind}`, messages: [{ role: 'user', content: 'k' }] });
    }
    const reqs = await upstream();
    assert.equal(reqs.length, KINDS.length);
    const azure = reqs.filter((q) => q.path.startsWith('/openai/'));
    const local_ = reqs.filter((q) => !q.headers.authorization && !q.headers['api-key']);
    const bearer = reqs.filter((q) => q.headers.authorization === `Bearer ${mock.apiKey}`);
    assert.equal(azure.length, 1);
    assert.equal(local_.length, 1, JSON.stringify(reqs.map((q) => q.headers)));
    assert.equal(local_[0].path, '/v1/chat/completions');
    assert.equal(bearer.length, KINDS.length - 2);
    for (const q of bearer) assert.equal(q.path, '/v1/chat/completions');
    for (const q of reqs) assert.ok(!JSON.stringify(q).includes(sluice.key), 'the client key reached the provider');
  });

  it('azure: deployment path, api-version, api-key and no Authorization', async () => {
    await reset();
    await client.chat.completions.create({ model: 'm-azure', messages: [{ role: 'user', content: 'az' }] });
    const e = await client.embeddings.create({ model: 'm-azure-embed', input: 'vector me' });
    assert.equal(e.data.length, 1);
    assert.equal(e.data[0].embedding.length, 64);
    const [chat, emb] = await upstream();
    assert.equal(chat.path, '/openai/deployments/my-deploy/chat/completions?api-version=2024-10-21');
    // a model without a deployments entry is its own deployment name
    assert.equal(emb.path, '/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21');
    for (const q of [chat, emb]) {
      assert.equal(q.headers['api-key'], mock.apiKey);
      assert.ok(!('authorization' in q.headers), JSON.stringify(q.headers));
    }
  });

  it('the ledger has tokens for every provider', async () => {
    const want = KINDS.map((k) => `p-${k}`);
    let rows = [];
    await waitFor(async () => {
      rows = await usageJson(sluice, 'provider');
      return want.every((p) => rows.some((g) => JSON.stringify(g).includes(`"${p}"`)));
    }, { timeoutMs: 10000, msg: 'a ledger row per provider' }).catch(() => {
      assert.fail(`ledger rows: ${JSON.stringify(rows)}`);
    });
    for (const p of want) {
      const g = rows.find((x) => JSON.stringify(x).includes(`"${p}"`));
      const n = (k) => Number(g[k] ?? 0);
      assert.ok(n('requests') >= 4, `${p}: ${JSON.stringify(g)}`);
      assert.ok(n('prompt_tokens') > 0 && n('completion_tokens') > 0, `${p}: ${JSON.stringify(g)}`);
    }
  });

  it('the mock itself: Azure paths need api-key and api-version', async () => {
    const url = (q) => `${mock.root}/openai/deployments/d1/chat/completions${q}`;
    const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    const post = (q, headers) => fetch(url(q), { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
    assert.equal((await post('?api-version=2024-10-21', { 'api-key': mock.apiKey })).status, 200);
    assert.equal((await post('?api-version=2024-10-21', { authorization: `Bearer ${mock.apiKey}` })).status, 401);
    assert.equal((await post('?api-version=2024-10-21', { 'api-key': 'wrong' })).status, 401);
    assert.equal((await post('', { 'api-key': mock.apiKey })).status, 404);
    assert.equal((await post('?api-version=', { 'api-key': mock.apiKey })).status, 404);
  });
});
