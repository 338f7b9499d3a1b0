// Routing and resilience through the official openai SDK: fallback across
// providers, retries with backoff and Retry-After, the commit point of
// streams, circuit breakers shared by the workers, the strategies, rules and
// several credentials. Three mocks stand for three providers; each can be
// made to fail on its own (POST /__mock/faults).

import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  makeTmpDir, startMock, startSluice, collectStream, sleep, writePricing, usageJson,
} from '../lib/harness.mjs';

const MSG = [{ role: 'user', content: 'route me' }];

describe('routing and resilience', () => {
  let dir, a, b, c, sluice, client;

  before(async () => {
    dir = await makeTmpDir('routing');
    [a, b, c] = await Promise.all([startMock({ apiKey: 'mk-a' }), startMock({ apiKey: 'mk-b' }), startMock({ apiKey: null })]);
    const pricing = await writePricing(path.join(dir, 'pricing.yaml'), {
      'pa/dear-model': { input: 10, output: 30 },
      'pb/dear-model': { input: 0.1, output: 0.3 },
      'pa/cheap-model': { input: 0.1, output: 0.3 },
      'pb/cheap-model': { input: 10, output: 30 },
    });
    sluice = await startSluice({
      dir,
      config: (cfg) => {
        cfg.pricing = pricing;
        cfg.routing = { retries: 0, backoff: '10ms', max_wait: '3s', first_token_timeout: '2s', breaker: { failures: 5, cooldown: '30s' } };
        cfg.providers = {
          pa: { kind: 'openai', base_url: a.baseURL, api_key: 'env:KEY_A', first_byte_timeout: '1s' },
          pb: { kind: 'openai', base_url: b.baseURL, api_key: 'env:KEY_B' },
          pc: { kind: 'openai', base_url: c.baseURL, api_key: ['env:KEY_C1', 'env:KEY_C2'] },
          // the 429 tests have their own providers: a 429 cools the credential
          // down for every model of its provider
          pr: { kind: 'openai', base_url: a.baseURL, api_key: 'env:KEY_A' },
          pq: { kind: 'openai', base_url: b.baseURL, api_key: 'env:KEY_B' },
          ps: { kind: 'openai', base_url: a.baseURL, api_key: 'env:KEY_A' },
          dead: { kind: 'openai', base_url: 'http://127.0.0.1:9/v1', connect_timeout: '1s' },
        };
        // every test has its own upstream model names: breakers and latency
        // estimates are per target, so one test's failures stay its own
        const two = (m) => ({ targets: [`pa/${m}`, `pb/${m}`] });
        cfg.models = {
          fb: two('fb'),
          timeout: two('timeout'),
          no400: two('no400'),
          allfail: { targets: ['pa/allfail', 'pq/allfail'] },
          allfail2: { targets: ['ps/allfail', 'pb/allfail'] },
          streamcut: two('streamcut'),
          stall: two('stall'),
          cutafter: two('cutafter'),
          ledger: two('ledger'),
          deadfirst: { targets: ['dead/deadfirst', 'pb/deadfirst'] },
          retry: { targets: ['pr/retry', 'pb/retry'], retries: 1 },
          brk: { ...two('brk'), breaker: { failures: 3, cooldown: '1500ms' } },
          brkreload: { ...two('brkreload'), breaker: { failures: 2, cooldown: '60s' } },
          w: { targets: [{ target: 'pa/w', weight: 1 }, { target: 'pb/w', weight: 3 }], strategy: 'weighted' },
          dear: { targets: ['pa/dear-model', 'pb/dear-model'], strategy: 'cheapest' },
          cheap: { targets: ['pa/cheap-model', 'pb/cheap-model'], strategy: 'cheapest' },
          fast: { ...two('fast'), strategy: 'fastest' },
          busy: { ...two('busy'), strategy: 'least_busy' },
          creds: { targets: ['pc/creds'], retries: 1, max_wait: '5s' },
          ruled: {
            targets: ['pa/ruled'],
            rules: [
              { when: { header: { 'x-team': 'research' } }, targets: ['pb/rule-header'] },
              { when: { min_prompt_tokens: 1000 }, targets: ['pb/rule-long'] },
              { when: { has_tools: true }, targets: ['pb/rule-tools'] },
              { when: { has_images: true }, targets: ['pb/rule-images'] },
              { when: { key: 'static', complexity: 'complex' }, targets: ['pb/rule-complex'] },
            ],
          },
        };
        return cfg;
      },
      env: { KEY_A: 'mk-a', KEY_B: 'mk-b', KEY_C1: 'cred-one', KEY_C2: 'cred-two' },
    });
    client = sluice.client();
  });

  after(async () => {
    const errs = [];
    for (const x of [sluice, a, b, c]) if (x) await x.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
  });

  beforeEach(async () => {
    await Promise.all([a.reset(), b.reset(), c.reset()]);
  });

  async function raw(model, extra = {}, headers = {}) {
    const r = await sluice.chat({ model, messages: MSG, ...extra }, { headers });
    return r;
  }

  it('falls back to the next provider on 500, 503 and 529, and says so in the headers', async () => {
    for (const status of ['500', '503', '529']) {
      await a.reset();
      await b.reset();
      await a.faults({ 'x-mock-status': status });
      const r = await raw('fb');
      assert.equal(r.status, 200, `${status}: ${r.body}`);
      assert.equal(r.headers['x-sluice-provider'], 'pb');
      assert.equal(r.headers['x-sluice-model'], 'fb');
      assert.equal(r.headers['x-sluice-attempts'], '2');
      assert.equal((await a.stats()).requests, 1);
      assert.equal((await b.stats()).requests, 1);
    }
  });

  it('falls back when the first provider refuses the connection, and names the address', async () => {
    const r = await raw('deadfirst');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['x-sluice-provider'], 'pb');
    assert.equal(r.headers['x-sluice-attempts'], '2');
    assert.match(sluice.readLog(), /provider "dead" \(127\.0\.0\.1:9\) failed/);
  });

  it('falls back when the first provider times out', async () => {
    await a.faults({ 'x-mock-delay-ms': '3000' });
    const r = await raw('timeout');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['x-sluice-provider'], 'pb');
  });

  it('does not retry or fall back on a 400', async () => {
    await a.faults({ 'x-mock-status': '400' });
    const r = await raw('no400');
    assert.equal(r.status, 400, r.body);
    assert.equal(r.headers['x-sluice-attempts'], '1');
    assert.equal((await b.stats()).requests, 0);
  });

  it('retries the same target after its Retry-After, and moves on when it is too long', async () => {
    await a.faults({ 'x-mock-status': '429', 'x-mock-retry-after': '1' }, 1);
    const t0 = Date.now();
    const r = await raw('retry');
    assert.equal(r.status, 200, r.body);
    assert.ok(Date.now() - t0 >= 1000, `retried after ${Date.now() - t0} ms, Retry-After was 1 s`);
    assert.equal(r.headers['x-sluice-provider'], 'pr');
    assert.equal(r.headers['x-sluice-attempts'], '2');
    assert.equal((await a.stats()).requests, 2);

    await a.reset();
    await a.faults({ 'x-mock-status': '429', 'x-mock-retry-after': '30' });
    const r2 = await raw('retry');
    assert.equal(r2.status, 200, r2.body);
    assert.equal(r2.headers['x-sluice-provider'], 'pb', 'a Retry-After beyond max_wait moves on');
    assert.equal((await a.stats()).requests, 1);
  });

  it('returns the last provider\'s error when every target fails', async () => {
    await a.faults({ 'x-mock-status': '500' });
    await b.faults({ 'x-mock-status': '429' });
    await assert.rejects(
      client.chat.completions.create({ model: 'allfail', messages: MSG }),
      (e) => e.status === 429,
    );
    await a.faults({ 'x-mock-status': '429' });
    await b.faults({ 'x-mock-status': '503' });
    const r = await raw('allfail2');
    assert.equal(r.status, 503, r.body);
    assert.equal(r.headers['x-sluice-attempts'], '2');
  });

  it('rescues a stream cut before its first token with the next target', async () => {
    await a.faults({ 'x-mock-reset-after': '0' });
    const stream = await client.chat.completions.create({ model: 'streamcut', messages: MSG, stream: true });
    const s = await collectStream(stream);
    assert.equal(s.content, 'mock reply: route me');
    assert.equal(s.finishReason, 'stop');
    assert.equal((await b.stats()).requests, 1);
  });

  it('rescues a stream that stalls before its first token', async () => {
    await a.faults({ 'x-mock-chunk-delay-ms': '10000' });
    const t0 = Date.now();
    const stream = await client.chat.completions.create({ model: 'stall', messages: MSG, stream: true });
    const s = await collectStream(stream);
    assert.equal(s.content, 'mock reply: route me');
    assert.ok(Date.now() - t0 >= 2000, 'first_token_timeout (2s) waited out');
    assert.equal((await b.stats()).requests, 1);
  });

  it('ends a stream cut after the commit point with an error, never cleanly, and does not retry it', async () => {
    await a.faults({ 'x-mock-reset-after': '2', 'x-mock-chunks': '6' });
    const stream = await client.chat.completions.create({ model: 'cutafter', messages: MSG, stream: true });
    let content = '';
    await assert.rejects(async () => {
      for await (const chunk of stream) content += chunk.choices[0]?.delta?.content || '';
    });
    assert.ok(content.length > 0, 'the client got the output before the cut');
    assert.equal((await b.stats()).requests, 0);
    // and raw: no [DONE]
    await a.reset();
    await a.faults({ 'x-mock-reset-after': '2', 'x-mock-chunks': '6' });
    const r = await raw('cutafter', { stream: true });
    assert.equal(r.status, 200);
    assert.doesNotMatch(r.body, /\[DONE\]/);
    assert.match(r.body, /"error"/);
  });

  it('opens a breaker after N failures for every worker, then closes it after a good probe', async () => {
    await a.faults({ 'x-mock-status': '500' });
    for (let i = 0; i < 3; i++) {
      const r = await raw('brk');
      assert.equal(r.status, 200);
    }
    assert.equal((await a.stats()).requests, 3);
    // fresh connections land on both workers: none of them tries pa now
    for (let i = 0; i < 10; i++) {
      const r = await raw('brk');
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-sluice-attempts'], '1');
      assert.equal(r.headers['x-sluice-provider'], 'pb');
    }
    assert.equal((await a.stats()).requests, 3);
    await a.faults({});
    await sleep(1700);
    const r = await raw('brk');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-sluice-provider'], 'pa', 'the probe after the cooldown went to pa');
    for (let i = 0; i < 3; i++) {
      const r2 = await raw('brk');
      assert.equal(r2.headers['x-sluice-provider'], 'pa');
    }
  });

  it('an open breaker stays open across a reload (shared memory outlives the workers)', async () => {
    await a.faults({ 'x-mock-status': '500' });
    for (let i = 0; i < 2; i++) assert.equal((await raw('brkreload')).status, 200);
    assert.equal((await a.stats()).requests, 2);
    const old = sluice.workerPids();
    sluice.signal('SIGHUP');
    await sluice.waitWorkers({ notIn: old });
    await a.faults({});
    for (let i = 0; i < 4; i++) {
      const r = await raw('brkreload');
      assert.equal(r.headers['x-sluice-provider'], 'pb');
      assert.equal(r.headers['x-sluice-attempts'], '1');
    }
    assert.equal((await a.stats()).requests, 2, 'the new generation skipped the open target too');
  });

  it('splits weighted traffic in proportion', async () => {
    const n = 200;
    let toB = 0;
    for (let i = 0; i < n; i++) {
      const r = await raw('w');
      assert.equal(r.status, 200);
      if (r.headers['x-sluice-provider'] === 'pb') toB++;
    }
    // expected 150 of 200; 6 standard deviations is about +-37
    assert.ok(toB > 113 && toB < 187, `pb got ${toB} of ${n}, expected about 150`);
  });

  it('cheapest picks the cheaper target for the request', async () => {
    let r = await raw('dear');
    assert.equal(r.headers['x-sluice-provider'], 'pb');
    r = await raw('cheap');
    assert.equal(r.headers['x-sluice-provider'], 'pa');
  });

  it('fastest learns the faster target', async () => {
    await a.faults({ 'x-mock-delay-ms': '150' });
    for (let i = 0; i < 6; i++) await raw('fast');
    const seen = [];
    for (let i = 0; i < 5; i++) seen.push((await raw('fast')).headers['x-sluice-provider']);
    assert.deepEqual(seen, ['pb', 'pb', 'pb', 'pb', 'pb']);
  });

  it('least_busy sends a request to the idle target while the other is busy', async () => {
    await a.faults({ 'x-mock-delay-ms': '800' });
    const slow = raw('busy');
    await sleep(300);
    const quick = await raw('busy');
    assert.notEqual(quick.headers['x-sluice-provider'], undefined);
    const first = await slow;
    assert.notEqual(quick.headers['x-sluice-provider'], first.headers['x-sluice-provider']);
  });

  it('rules pick targets by header, prompt size, tools, images and complexity', async () => {
    let r = await raw('ruled', {}, { 'x-team': 'research' });
    assert.equal(r.headers['x-sluice-model'], 'rule-header');
    r = await raw('ruled', { messages: [{ role: 'user', content: 'x'.repeat(8000) }] });
    assert.equal(r.headers['x-sluice-model'], 'rule-long');
    r = await raw('ruled', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] });
    assert.equal(r.headers['x-sluice-model'], 'rule-tools');
    r = await raw('ruled', { messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }] });
    assert.equal(r.headers['x-sluice-model'], 'rule-images');
    const hard = 'Prove step by step why the following algorithm is correct, then analyze its complexity and compare it with two alternatives:\n```python\ndef f(xs):\n    return sorted(set(xs))\n```\nExplain every trade-off in detail.';
    r = await raw('ruled', { messages: [{ role: 'system', content: 'You are a careful reviewer.' }, { role: 'user', content: hard }, { role: 'assistant', content: 'ok' }, { role: 'user', content: hard }] });
    assert.equal(r.headers['x-sluice-model'], 'rule-complex', `complexity ${r.headers['x-sluice-complexity']}`);
    assert.ok(Number(r.headers['x-sluice-complexity']) >= 0);
    r = await raw('ruled');
    assert.equal(r.headers['x-sluice-model'], 'ruled', 'no rule matched');
  });

  it('moves off a credential that got 429 until its Retry-After passed', async () => {
    await c.faults({ 'x-mock-status': '429', 'x-mock-retry-after': '30' }, 1);
    const r = await raw('creds');
    assert.equal(r.status, 200, r.body);
    const reqs = await c.requests();
    assert.equal(reqs.length, 2);
    assert.notEqual(reqs[0].headers.authorization, reqs[1].headers.authorization, 'the retry used the other credential');
    const cooled = reqs[0].headers.authorization;
    await c.reset();
    for (let i = 0; i < 6; i++) assert.equal((await raw('creds')).status, 200);
    for (const q of await c.requests()) assert.notEqual(q.headers.authorization, cooled, 'the cooling credential was used');
  });

  it('records one ledger row per request with the attempts and the target that answered', async () => {
    await a.faults({ 'x-mock-status': '500' }, 1);
    const r = await raw('ledger', {}, { 'x-request-id': 'routing-ledger-1' });
    assert.equal(r.status, 200);
    const rows = await usageJson(sluice, 'request');
    const row = rows.filter((x) => x.id === 'routing-ledger-1');
    assert.equal(row.length, 1, JSON.stringify(rows.slice(0, 3)));
    assert.equal(row[0].requests, 1);
  });
});
