// The response cache, exact key: with the official SDKs against the mock.
// A repeated request is answered by sluice (the mock sees one), the key
// ignores JSON key order, whitespace and number spelling but not a changed
// parameter; an entry filled from a JSON answer replays to a streaming
// client and one filled from a stream to a JSON client with the same text;
// Cache-Control no-cache / no-store / max-age; TTL; a model's opt-out; one
// key does not read another's entries; /v1/messages; ledger rows with
// savings; rate limits on hits; `sluice cache` and /admin/cache.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import {
  startStack, request, sluiceCli, createKey, usageJson, usdToNano, freePort,
  collectStream, waitFor, sleep,
} from '../lib/harness.mjs';

const ADMIN_KEY = 'sk-admin-' + 'c'.repeat(32);
const MODEL = 'gpt-4o-mini';

describe('response cache (exact)', () => {
  let stack, sluice, mock, client, admin;
  let seq = 0;
  const unique = (what) => `${what} ${process.pid} ${++seq}`;

  before(async () => {
    const adminPort = await freePort();
    stack = await startStack({
      name: 'cache',
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY },
      config: (cfg, { dir }) => {
        cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
        cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
        cfg.pricing = path.join(dir, 'pricing.yaml');
        fs.writeFileSync(cfg.pricing, 'models:\n'
          + '  "mock/gpt-4o-mini-2024-07-18": {input: 1000, output: 2000}\n'
          + '  "anth/claude-haiku-4-5": {input: 1000, output: 2000}\n');
        cfg.cache = { enabled: true, ttl: '1h', scope: 'key', max_size: '16MiB' };
        const root = cfg.providers.mock.base_url.replace(/\/v1$/, '');
        cfg.providers.anth = { kind: 'anthropic', base_url: root, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.models.claude = { targets: ['anth/claude-haiku-4-5'] };
        cfg.models.nocache = { targets: ['mock/gpt-4o-mini-2024-07-18'], cache: false };
        cfg.models.short = { targets: ['mock/gpt-4o-mini-2024-07-18'], cache: { ttl: '1s' } };
        return cfg;
      },
    });
    ({ sluice, mock } = stack);
    client = sluice.client();
    admin = (p, opts = {}) => request(`http://127.0.0.1:${adminPort}${p}`, {
      ...opts, headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(opts.headers || {}) },
    });
  });
  after(async () => { if (stack) await stack.stop(); });

  // Upstream requests whose last user message is text.
  const upstream = async (text) => (await mock.requests()).filter((q) => {
    const m = q.json && q.json.messages;
    return Array.isArray(m) && JSON.stringify(m.at(-1)).includes(text);
  }).length;

  // The fill is written off the loop after the response: wait until an entry
  // answers (a probe request that must not reach the mock otherwise).
  const fills = async () => {
    const r = await admin('/admin/cache?since=all');
    return r.json().entries;
  };
  const waitEntries = (n) => waitFor(async () => (await fills()) >= n, { msg: `${n} cache entries` });

  it('answers a repeated request from the cache: the mock sees one, the second says hit', async () => {
    const text = unique('repeat');
    const before = await fills();
    const a = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }], temperature: 0.5 }).withResponse();
    assert.equal(a.response.headers.get('x-sluice-cache'), 'miss');
    await waitEntries(before + 1);
    const b = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }], temperature: 0.5 }).withResponse();
    assert.equal(b.response.headers.get('x-sluice-cache'), 'hit');
    assert.match(b.response.headers.get('age'), /^\d+$/);
    assert.equal(b.response.headers.get('x-sluice-provider'), 'mock');
    assert.equal(b.response.headers.get('x-sluice-model'), 'gpt-4o-mini-2024-07-18');
    assert.equal(b.data.choices[0].message.content, `mock reply: ${text}`);
    assert.equal(b.data.choices[0].message.content, a.data.choices[0].message.content);
    for (const f of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
      assert.equal(b.data.usage[f], a.data.usage[f], `usage.${f} as the answer had it`);
    }
    assert.equal(await upstream(text), 1, 'the mock saw the request once');
  });

  it('ignores key order, whitespace, number spelling and escapes; a changed parameter misses', async () => {
    const text = unique('canonical');
    const body1 = `{"model":"${MODEL}","temperature":1,"messages":[{"role":"user","content":"${text}"}],"max_tokens":20}`;
    const esc = text.replace('c', '\\u0063');
    const body2 = `{ "max_tokens" : 2e1 , "messages" : [ { "content" : "${esc}", "role" : "user" } ],\n "temperature" : 1.0, "model" : "${MODEL}", "stream": false }`;
    const before = await fills();
    const r1 = await sluice.req('/v1/chat/completions', { method: 'POST', body: body1 });
    assert.equal(r1.status, 200, r1.body);
    assert.equal(r1.headers['x-sluice-cache'], 'miss');
    await waitEntries(before + 1);
    const r2 = await sluice.req('/v1/chat/completions', { method: 'POST', body: body2 });
    assert.equal(r2.status, 200, r2.body);
    assert.equal(r2.headers['x-sluice-cache'], 'hit', 'the same request, written differently');
    const r3 = await sluice.req('/v1/chat/completions', { method: 'POST', body: body1.replace('"temperature":1', '"temperature":0.9') });
    assert.equal(r3.headers['x-sluice-cache'], 'miss', 'another temperature');
    const r4 = await sluice.req('/v1/chat/completions', { method: 'POST', body: body1.replace('"max_tokens":20', '"max_tokens":21') });
    assert.equal(r4.headers['x-sluice-cache'], 'miss', 'another max_tokens');
    assert.equal(await upstream(text), 3);
  });

  it('replays a JSON-filled entry to a streaming client with the same text', async () => {
    const text = unique('json then stream with several words to make more than one piece of text');
    const before = await fills();
    const a = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }] });
    await waitEntries(before + 1);
    const { data: stream, response } = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: text }], stream: true, stream_options: { include_usage: true },
    }).withResponse();
    assert.equal(response.headers.get('x-sluice-cache'), 'hit');
    assert.match(response.headers.get('content-type'), /text\/event-stream/);
    const s = await collectStream(stream);
    assert.equal(s.content, a.choices[0].message.content);
    assert.equal(s.finishReason, 'stop');
    assert.ok(s.chunks.length >= 3, `a stream of chunks: ${s.chunks.length}`);
    assert.equal(s.usage.completion_tokens, a.usage.completion_tokens);
    assert.equal(await upstream(text), 1);
  });

  it('replays a stream-filled entry to a JSON client with the same text', async () => {
    const text = unique('stream then json');
    const before = await fills();
    const s = await collectStream(await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }], stream: true }));
    assert.equal(s.content, `mock reply: ${text}`);
    await waitEntries(before + 1);
    const b = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }] }).withResponse();
    assert.equal(b.response.headers.get('x-sluice-cache'), 'hit');
    assert.equal(b.data.choices[0].message.content, s.content);
    assert.equal(b.data.choices[0].finish_reason, 'stop');
    assert.equal(await upstream(text), 1);
  });

  it('keeps and replays a tool call', async () => {
    const text = unique('what is the weather');
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } } }];
    const before = await fills();
    const a = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }], tools });
    assert.equal(a.choices[0].finish_reason, 'tool_calls');
    await waitEntries(before + 1);
    const s = await collectStream(await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }], tools, stream: true }));
    assert.equal(s.finishReason, 'tool_calls');
    assert.equal(s.toolCalls[0].function.name, 'get_weather');
    assert.equal(s.toolCalls[0].function.arguments, a.choices[0].message.tool_calls[0].function.arguments);
    assert.equal(s.toolCalls[0].id, a.choices[0].message.tool_calls[0].id);
    assert.equal(await upstream(text), 1);
  });

  it('Cache-Control: no-cache refreshes, no-store bypasses, max-age limits the age', async () => {
    const text = unique('directives');
    const ask = (headers) => client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }] }, { headers }).withResponse();
    let before = await fills();
    assert.equal((await ask({})).response.headers.get('x-sluice-cache'), 'miss');
    await waitEntries(before + 1);
    assert.equal((await ask({ 'cache-control': 'no-cache' })).response.headers.get('x-sluice-cache'), 'miss');
    assert.equal(await upstream(text), 2, 'no-cache went upstream');
    assert.equal((await ask({ 'cache-control': 'no-store' })).response.headers.get('x-sluice-cache'), 'bypass');
    assert.equal(await upstream(text), 3, 'no-store went upstream');
    assert.equal((await ask({})).response.headers.get('x-sluice-cache'), 'hit');
    // max-age: an entry at least a second old is too old for max-age=0
    await waitFor(async () => Number((await ask({})).response.headers.get('age')) >= 1, { msg: 'an entry 1 s old' });
    const old = await ask({ 'cache-control': 'max-age=0' });
    assert.equal(old.response.headers.get('x-sluice-cache'), 'miss');
    assert.equal(await upstream(text), 4, 'max-age=0 went upstream');
    const fresh = await ask({ 'cache-control': 'max-age=3600' });
    assert.equal(fresh.response.headers.get('x-sluice-cache'), 'hit');

    const other = unique('no-store fills nothing');
    before = await fills();
    await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: other }] }, { headers: { 'cache-control': 'no-store' } });
    const again = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: other }] }).withResponse();
    assert.equal(again.response.headers.get('x-sluice-cache'), 'miss', 'no-store stored nothing');
  });

  it('expires entries after the model\'s ttl', async () => {
    const text = unique('ttl');
    const before = await fills();
    const a = await client.chat.completions.create({ model: 'short', messages: [{ role: 'user', content: text }] }).withResponse();
    assert.equal(a.response.headers.get('x-sluice-cache'), 'miss');
    await waitEntries(before + 1);
    await sleep(1100);
    const b = await client.chat.completions.create({ model: 'short', messages: [{ role: 'user', content: text }] }).withResponse();
    assert.equal(b.response.headers.get('x-sluice-cache'), 'miss', 'expired after ttl: 1s');
    assert.equal(await upstream(text), 2);
  });

  it('a model with cache: false bypasses the cache', async () => {
    const text = unique('opt-out');
    for (let i = 0; i < 2; i++) {
      const r = await client.chat.completions.create({ model: 'nocache', messages: [{ role: 'user', content: text }] }).withResponse();
      assert.equal(r.response.headers.get('x-sluice-cache'), 'bypass');
    }
    assert.equal(await upstream(text), 2);
  });

  it('another key does not read a key-scoped entry', async () => {
    const text = unique('scoped');
    const k1 = await createKey(sluice, `scope-a-${seq}`);
    const k2 = await createKey(sluice, `scope-b-${seq}`);
    const c1 = sluice.client({ apiKey: k1.key });
    const c2 = sluice.client({ apiKey: k2.key });
    const before = await fills();
    await c1.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }] });
    await waitEntries(before + 1);
    const b = await c2.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }] }).withResponse();
    assert.equal(b.response.headers.get('x-sluice-cache'), 'miss', 'key b does not see key a\'s entry');
    const a = await c1.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }] }).withResponse();
    assert.equal(a.response.headers.get('x-sluice-cache'), 'hit', 'key a does');
    assert.equal(await upstream(text), 2);
  });

  it('caches /v1/messages, replayed as JSON and as a stream of Anthropic events', async () => {
    const text = unique('anthropic');
    const anthropic = new Anthropic({ baseURL: sluice.root, apiKey: sluice.key, maxRetries: 0 });
    const body = { model: 'claude', max_tokens: 100, system: 'be brief', messages: [{ role: 'user', content: text }] };
    const before = await fills();
    const a = await anthropic.messages.create(body).withResponse();
    assert.equal(a.response.headers.get('x-sluice-cache'), 'miss');
    await waitEntries(before + 1);
    const b = await anthropic.messages.create(body).withResponse();
    assert.equal(b.response.headers.get('x-sluice-cache'), 'hit');
    assert.equal(b.data.content[0].text, a.data.content[0].text);
    assert.equal(b.data.stop_reason, 'end_turn');
    const { data: stream, response } = await anthropic.messages.create({ ...body, stream: true }).withResponse();
    assert.equal(response.headers.get('x-sluice-cache'), 'hit');
    let streamed = '';
    const types = [];
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') streamed += ev.delta.text;
    }
    assert.equal(streamed, a.data.content[0].text);
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    // the chat frontend's entry for the same words is another one
    const c = await client.chat.completions.create({ model: 'claude', max_tokens: 100, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: text }] }).withResponse();
    assert.equal(c.response.headers.get('x-sluice-cache'), 'miss');
    const up = (await mock.requests()).filter((q) => q.path === '/v1/messages' && JSON.stringify(q.json).includes(text));
    assert.equal(up.length, 2, 'one messages request and one chat request reached the provider');
  });

  it('records a hit in the ledger: cost 0, saved_usd the answer\'s price; usage, stats and /metrics show it', async () => {
    const k = await createKey(sluice, `ledger-${seq}`);
    const c = sluice.client({ apiKey: k.key });
    const text = unique('ledger');
    const before = await fills();
    await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }] });
    await waitEntries(before + 1);
    await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }] });
    await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }] });
    const g = (await usageJson(sluice, 'key')).find((x) => x.id === k.id);
    assert.ok(g, 'usage has the key');
    assert.equal(g.requests, 3);
    assert.equal(g.cache_hits, 2);
    const cost = usdToNano(g.cost_usd);
    const saved = usdToNano(g.saved_usd);
    assert.ok(cost > 0n, `the miss cost something: ${g.cost_usd}`);
    assert.equal(saved, 2n * cost, `two hits saved twice the miss's cost: ${g.saved_usd} vs ${g.cost_usd}`);
    const rows = (await usageJson(sluice, 'request')).filter((x) => x.requests === 1 && x.cache_hits === 1 && x.flags.includes('cache_hit'));
    assert.ok(rows.length >= 2, 'by request: rows flagged cache_hit');

    const stats = await sluiceCli(sluice, ['stats']);
    assert.equal(stats.code, 0, stats.stderr);
    assert.match(stats.stdout, /cache\s+\d+ hits .* saved \d+\.\d+ USD/);
    const au = await admin('/admin/usage?since=all&by=key');
    const ag = au.json().data.find((x) => x.id === k.id);
    assert.equal(ag.cache_hits, 2);
    assert.equal(ag.saved_usd, g.saved_usd);
    const m = (await admin('/metrics')).body;
    assert.match(m, /sluice_cache_lookups_total\{result="hit"\} [1-9]/);
    assert.match(m, /sluice_cache_lookups_total\{result="miss"\} [1-9]/);
    assert.match(m, /sluice_cache_hits_total\{[^}]*model="[^"]+"[^}]*\} [1-9]/);
    assert.match(m, /sluice_cache_fills_total [1-9]/);
    assert.match(m, /sluice_cache_saved_nanodollars_total\{[^}]*\} [1-9]/);
  });

  it('a hit counts against rpm but not tpm', async () => {
    const k = await createKey(sluice, `limits-${seq}`, ['--rpm', '3', '--tpm', '1']);
    const c = sluice.client({ apiKey: k.key });
    const text = unique('limits');
    const ask = (t) => c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: t }] }).withResponse();
    const before = await fills();
    await ask(text); // 1 request; its tokens use up the tpm
    await waitEntries(before + 1);
    const hit = await ask(text); // served: a hit needs no tokens
    assert.equal(hit.response.headers.get('x-sluice-cache'), 'hit');
    await assert.rejects(ask(unique('limits miss')), (e) => e.status === 429 && /tokens per minute/.test(e.message));
    await assert.rejects(ask(text), (e) => e.status === 429 && /requests per minute/.test(e.message), 'the 4th request of the minute, a would-be hit');
  });

  it('sluice cache stats and purge, and /admin/cache, show and purge entries', async () => {
    const k = await createKey(sluice, `purge-${seq}`);
    const c = sluice.client({ apiKey: k.key });
    const t1 = unique('purge one');
    const t2 = unique('purge two');
    const before = await fills();
    await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: t1 }] });
    await c.chat.completions.create({ model: 'short', messages: [{ role: 'user', content: t2 }] });
    await waitEntries(before + 2);

    const st = await sluiceCli(sluice, ['cache', 'stats', '--since', 'all', '--json']);
    assert.equal(st.code, 0, st.stderr);
    const j = JSON.parse(st.stdout);
    assert.ok(j.entries >= 2 && j.bytes > 0, st.stdout);
    assert.ok(j.hits >= 1 && j.misses >= 1 && j.hit_ratio > 0 && j.hit_ratio < 1, st.stdout);
    assert.ok(usdToNano(j.saved_usd) > 0n, st.stdout);
    const text = await sluiceCli(sluice, ['cache', 'stats']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^entries\s+\d+/m);
    assert.match(text.stdout, /^hit ratio\s+\d+\.\d\d%/m);
    const aj = (await admin('/admin/cache?since=all')).json();
    assert.equal(aj.entries, j.entries);

    const p1 = await sluiceCli(sluice, ['cache', 'purge', '--model', 'short', '--key', k.name]);
    assert.equal(p1.code, 0, p1.stderr);
    assert.match(p1.stdout, /^1 entries deleted/);
    const r2 = await c.chat.completions.create({ model: 'short', messages: [{ role: 'user', content: t2 }] }).withResponse();
    assert.equal(r2.response.headers.get('x-sluice-cache'), 'miss', 'purged');
    const r1 = await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: t1 }] }).withResponse();
    assert.equal(r1.response.headers.get('x-sluice-cache'), 'hit', 'another model\'s entry stays');

    const d = await admin(`/admin/cache?key=${k.id}`, { method: 'DELETE' });
    assert.equal(d.status, 200, d.body);
    assert.ok(d.json().deleted >= 1, d.body);
    const r3 = await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: t1 }] }).withResponse();
    assert.equal(r3.response.headers.get('x-sluice-cache'), 'miss', 'purged by key id');
    const bad = await admin('/admin/cache?color=red', { method: 'DELETE' });
    assert.equal(bad.status, 400);
    const all = await admin('/admin/cache', { method: 'DELETE' });
    assert.equal(all.status, 200);
    assert.equal((await admin('/admin/cache')).json().entries, 0);
    const usage = await sluiceCli(sluice, ['cache', 'flush']);
    assert.equal(usage.code, 2);
  });
});
