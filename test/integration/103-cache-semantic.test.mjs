// The semantic cache (cache.semantic) against the mock, whose embeddings
// are a bag of words: a paraphrase with the same content words is answered
// from the cache (x-sluice-cache: semantic), a prompt about something else
// is not even when its embedding is as close (Spain -> Germany), the
// context must match, tool turns and long conversations are not embedded,
// a failing embedding provider only costs the lookup, the embedding calls
// are the gateway's own usage in the ledger; and, with cache.scope global,
// other keys read entries, but a key whose budget is spent gets no hit.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startStack, request, sluiceCli, createKey, usageJson, usdToNano, collectStream, waitFor,
} from '../lib/harness.mjs';

const MODEL = 'gpt-4o-mini';
const THRESHOLD = 0.75;

describe('response cache (semantic, global scope)', () => {
  let stack, sluice, mock, client;
  let seq = 0;

  before(async () => {
    stack = await startStack({
      name: 'cache-semantic',
      allowLog: [],
      config: (cfg, { dir }) => {
        cfg.pricing = path.join(dir, 'pricing.yaml');
        fs.writeFileSync(cfg.pricing, 'models:\n'
          + '  "mock/gpt-4o-mini-2024-07-18": {input: 1000, output: 2000}\n'
          + '  "mock/text-embedding-3-small": {input: 20}\n');
        cfg.cache = {
          enabled: true, scope: 'global',
          semantic: { embedding: 'mock/text-embedding-3-small', threshold: THRESHOLD, max_messages: 4 },
        };
        return cfg;
      },
    });
    ({ sluice, mock } = stack);
    client = sluice.client();
  });
  after(async () => { if (stack) await stack.stop(); });

  const chats = async (text) => (await mock.requests()).filter((q) => q.path === '/v1/chat/completions'
    && JSON.stringify(q.json.messages).includes(text)).length;
  const embeddings = async () => (await mock.requests()).filter((q) => q.path === '/v1/embeddings').length;
  const entries = async () => {
    const r = await sluiceCli(sluice, ['cache', 'stats', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).entries;
  };
  const waitEntries = (n) => waitFor(async () => (await entries()) >= n, { msg: `${n} cache entries` });
  const ask = (messages, opts = {}) => client.chat.completions.create({ model: MODEL, messages, ...opts }).withResponse();
  const user = (content) => [{ role: 'user', content }];
  // the mock's own vectors: what sluice compared
  const vector = async (text) => (await request(`${mock.baseURL}/embeddings`, {
    method: 'POST', headers: { authorization: `Bearer ${mock.apiKey}`, 'content-type': 'application/json' },
    body: { model: 'text-embedding-3-small', input: text },
  })).json().data[0].embedding;
  const cosine = (a, b) => {
    let d = 0, x = 0, y = 0;
    for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; x += a[i] * a[i]; y += b[i] * b[i]; }
    return d / Math.sqrt(x * y);
  };

  it('answers a paraphrase with the same content words from the cache', async () => {
    const n = ++seq;
    const first = `What is the capital of Spain, case ${n}?`;
    const para = `What's the capital of Spain, case ${n}?`;
    const e0 = await embeddings();
    const before = await entries();
    const s = await collectStream(await client.chat.completions.create({ model: MODEL, messages: user(first), stream: true }));
    assert.equal(s.content, `mock reply: ${first}`);
    await waitEntries(before + 1);
    const b = await ask(user(para));
    assert.equal(b.response.headers.get('x-sluice-cache'), 'semantic');
    assert.match(b.response.headers.get('age'), /^\d+$/);
    assert.equal(b.data.choices[0].message.content, `mock reply: ${first}`, 'the cached answer');
    assert.equal(await chats(para), 0, 'the paraphrase never reached the provider');
    assert.equal(await embeddings(), e0 + 2, 'both prompts were embedded');
    // the exact request still hits exactly, without an embedding
    const c = await ask(user(first));
    assert.equal(c.response.headers.get('x-sluice-cache'), 'hit');
    assert.equal(await embeddings(), e0 + 2);
  });

  it('does not answer a prompt about something else, however close its embedding', async () => {
    const n = ++seq;
    const spain = `What is the capital of Spain, test ${n}?`;
    const germany = `What is the capital of Germany, test ${n}?`;
    assert.ok(cosine(await vector(spain), await vector(germany)) >= THRESHOLD, 'the embeddings are close');
    const before = await entries();
    await ask(user(spain));
    await waitEntries(before + 1);
    const g = await ask(user(germany));
    assert.equal(g.response.headers.get('x-sluice-cache'), 'miss');
    assert.equal(g.data.choices[0].message.content, `mock reply: ${germany}`);
    assert.equal(await chats(germany), 1);
  });

  it('needs the same context: another system prompt misses', async () => {
    const n = ++seq;
    const q1 = `Where is the Louvre museum, run ${n}?`;
    const q2 = `Where's the Louvre museum, run ${n}?`;
    const before = await entries();
    await ask([{ role: 'system', content: 'answer in French' }, ...user(q1)]);
    await waitEntries(before + 1);
    const other = await ask([{ role: 'system', content: 'answer in German' }, ...user(q2)]);
    assert.equal(other.response.headers.get('x-sluice-cache'), 'miss');
    const same = await ask([{ role: 'system', content: 'answer in French' }, ...user(q2)]);
    assert.equal(same.response.headers.get('x-sluice-cache'), 'semantic');
  });

  it('skips tool turns and conversations longer than max_messages: no embedding', async () => {
    const n = ++seq;
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }];
    const e0 = await embeddings();
    const withTool = [
      { role: 'user', content: `weather in Paris ${n}` },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      { role: 'user', content: `and tomorrow ${n}?` },
    ];
    const t = await ask(withTool, { tools });
    assert.equal(t.response.headers.get('x-sluice-cache'), 'miss');
    const long = [];
    for (let i = 0; i < 5; i++) long.push({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i} of ${n}` });
    const l = await ask(long);
    assert.equal(l.response.headers.get('x-sluice-cache'), 'miss');
    assert.equal(await embeddings(), e0, 'neither was embedded');
  });

  it('goes on as a miss when the embedding provider fails', async () => {
    const text = `a question while embeddings fail ${++seq}`;
    await mock.faults({ 'x-mock-status': '500' }, 1); // the next upstream request: the embedding
    const r = await ask(user(text));
    assert.equal(r.response.headers.get('x-sluice-cache'), 'miss');
    assert.equal(r.data.choices[0].message.content, `mock reply: ${text}`);
  });

  it('records the embedding calls as the gateway\'s own usage and semantic hits with savings', async () => {
    const groups = await usageJson(sluice, 'key');
    const gw = groups.find((g) => g.name === 'sluice');
    assert.ok(gw, `a group for the gateway's own key name: ${JSON.stringify(groups)}`);
    assert.ok(gw.requests >= 6, `embedding calls: ${gw.requests}`);
    assert.ok(gw.flags.includes('gateway'), gw.flags);
    assert.ok(usdToNano(gw.cost_usd) > 0n, `priced: ${gw.cost_usd}`);
    const byEndpoint = await usageJson(sluice, 'endpoint');
    assert.ok(byEndpoint.find((g) => g.id === 'embeddings').requests >= 6);
    const stat = await sluiceCli(sluice, ['cache', 'stats', '--json']);
    const j = JSON.parse(stat.stdout);
    assert.ok(j.semantic_hits >= 2, stat.stdout);
    assert.equal(j.embedding_requests, gw.requests);
    assert.equal(j.embedding_cost_usd, gw.cost_usd);
    const sem = (await usageJson(sluice, 'request')).filter((g) => g.flags.includes('cache_semantic'));
    assert.ok(sem.length >= 2 && sem.every((g) => g.cache_hits === 1 && usdToNano(g.saved_usd) > 0n), JSON.stringify(sem));
  });

  it('global scope: another key reads an entry; a key whose budget is spent gets no hit', async () => {
    const text = `shared answer ${++seq}`;
    const before = await entries();
    await ask(user(text));
    await waitEntries(before + 1);
    const other = await createKey(sluice, `other-${seq}`);
    const broke = await createKey(sluice, `broke-${seq}`, ['--budget', '0.000000001', '--period', 'total']);
    const o = await sluice.client({ apiKey: other.key }).chat.completions.create({ model: MODEL, messages: user(text) }).withResponse();
    assert.equal(o.response.headers.get('x-sluice-cache'), 'hit');
    const bc = sluice.client({ apiKey: broke.key, maxRetries: 0 });
    // the broke key's first request holds a capped reservation (budgets.max_reservation) and overspends
    await bc.chat.completions.create({ model: MODEL, messages: user(`zebra quartz ${seq} violin`) });
    // the budget rule holds on cache hits too: a spent budget gets nothing, not even a free hit
    await assert.rejects(bc.chat.completions.create({ model: MODEL, messages: user(text) }),
      (e) => e.status === 429 && e.code === 'insufficient_quota');
    await assert.rejects(bc.chat.completions.create({ model: MODEL, messages: user(`${text} but new`) }),
      (e) => e.status === 429 && e.code === 'insufficient_quota');
    assert.equal(await chats(text), 1);
  });
});
