// Accounting from outside (issue 11): prices read from a LiteLLM-format table
// as it is, exactly; the long-context tier of a 250k-token prompt; Anthropic's
// 1-hour cache writes at their own rate; `sluice pricing show|check`;
// `unpriced: reject`; a key with a large max_tokens and a small budget that is
// not blocked while its real spend is low; a weekly budget; the budget rule on
// embeddings; and rpm across a minute boundary, where no 60-second window may
// hold more than rpm admitted requests.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import {
  makeTmpDir, startMock, startSluice, request, errorShape, sluiceCli, createKey, usageJson, usdToNano,
  writePricing, run, toYaml, sleep, SLUICE_BIN, REPO,
} from '../lib/harness.mjs';

// A LiteLLM table as operators download it: prices in USD per token, written
// the way LiteLLM writes them (exponents), entries sluice has no kind for
// beside the ones it maps. acme-* models are made up: no real price applies.
const LITELLM = `{
  "sample_spec": {"litellm_provider": "one of https://docs.litellm.ai/docs/providers", "input_cost_per_token": 0.0},
  "acme-sonic-1": {
    "litellm_provider": "openai", "mode": "chat", "max_output_tokens": 32000,
    "input_cost_per_token": 1.234567e-06, "output_cost_per_token": 9.876543e-06
  },
  "acme-long-1": {
    "litellm_provider": "openai", "mode": "chat",
    "input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06,
    "input_cost_per_token_above_200k_tokens": 2.5e-06, "output_cost_per_token_above_200k_tokens": 6e-06
  },
  "text-embedding-acme": {"litellm_provider": "openai", "mode": "embedding", "input_cost_per_token": 2e-08, "output_cost_per_token": 0},
  "vertex-acme": {"litellm_provider": "vertex_ai-language-models", "input_cost_per_token": 1e-06}
}
`;
const SONIC_LINE = 3; // the line of "acme-sonic-1"

// Anthropic's prices for a made-up model, in sluice's YAML (USD per 1M tokens)
const ANT = { input: 3, output: 15, cache_write: 3.75, cache_write_1h: 6 };

const BIG = 1000000000n; // nano-USD per USD
// cost in nano-USD of tokens at a price in USD per 1M tokens given as an integer of micro-USD
const part = (tokens, microPerM) => BigInt(tokens) * BigInt(microPerM); // pico-USD
const roundNano = (pico) => (pico + 500n) / 1000n;

describe('accounting', { concurrency: true }, () => {
  let dir, mock, sluice, litellm, yaml;

  before(async () => {
    dir = await makeTmpDir('accounting');
    mock = await startMock();
    litellm = path.join(dir, 'model_prices_and_context_window.json');
    await fsp.writeFile(litellm, LITELLM);
    yaml = await writePricing(path.join(dir, 'overrides.yaml'), {
      'anth/claude-acme': { ...ANT, checked: '2026-07-24' },
    });
    sluice = await startSluice({
      dir, mock,
      config: (cfg) => {
        cfg.pricing = [litellm, yaml];
        cfg.unpriced = 'reject';
        cfg.providers.anth = { kind: 'anthropic', base_url: mock.root, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.models = {
          sonic: { targets: ['mock/acme-sonic-1'] },
          long: { targets: ['mock/acme-long-1'] },
          embed: { targets: ['mock/text-embedding-acme'] },
          claude: { targets: ['anth/claude-acme'] },
          nope: { targets: ['mock/unpriced-acme'] },
          fallback: { targets: ['mock/unpriced-acme', 'mock/acme-sonic-1'] },
          demo: { targets: ['demo/echo'] },
        };
        cfg.providers.demo = { kind: 'echo' };
        return cfg;
      },
    });
  });
  after(async () => {
    const errs = [];
    if (sluice) await sluice.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
    if (dir && !process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true });
  });

  const rowOf = async (id) => {
    const g = (await usageJson(sluice, 'request')).find((x) => x.id === id);
    assert.ok(g, `no ledger row for request ${id}`);
    return g;
  };

  it('prices a made-up model from a LiteLLM-format table exactly', async () => {
    const client = new OpenAI({ baseURL: sluice.baseURL, apiKey: sluice.key, maxRetries: 0 });
    const { data, response } = await client.chat.completions.create({
      model: 'sonic', messages: [{ role: 'user', content: 'price me exactly, please, to the nano dollar' }],
    }, { headers: { 'x-request-id': 'litellm-exact-1' } }).withResponse();
    assert.equal(response.headers.get('x-request-id'), 'litellm-exact-1');
    const u = data.usage;
    assert.ok(u.prompt_tokens > 0 && u.completion_tokens > 0, JSON.stringify(u));
    // 1.234567e-06 and 9.876543e-06 USD per token are 1234567 and 9876543 pico-USD
    const want = roundNano(part(u.prompt_tokens, 1234567) + part(u.completion_tokens, 9876543));
    const g = await rowOf('litellm-exact-1');
    assert.equal(usdToNano(g.cost_usd), want, `ledger ${g.cost_usd} for ${JSON.stringify(u)}`);
    assert.equal(g.flags.includes('unpriced'), false);
  });

  it('prices a 250k-token prompt at the long-context tier, a short one at the base rate', async () => {
    const client = new OpenAI({ baseURL: sluice.baseURL, apiKey: sluice.key, maxRetries: 0 });
    // the mock counts (characters / 4) + 1 prompt tokens
    const big = 'x'.repeat(1000000);
    const a = await client.chat.completions.create({ model: 'long', messages: [{ role: 'user', content: big }] },
      { headers: { 'x-request-id': 'long-250k' }, timeout: 60000 });
    assert.ok(a.usage.prompt_tokens > 200000, JSON.stringify(a.usage));
    const wantLong = roundNano(part(a.usage.prompt_tokens, 2500000) + part(a.usage.completion_tokens, 6000000));
    assert.equal(usdToNano((await rowOf('long-250k')).cost_usd), wantLong);

    const b = await client.chat.completions.create({ model: 'long', messages: [{ role: 'user', content: 'short' }] },
      { headers: { 'x-request-id': 'long-short' } });
    const wantShort = roundNano(part(b.usage.prompt_tokens, 1000000) + part(b.usage.completion_tokens, 4000000));
    assert.equal(usdToNano((await rowOf('long-short')).cost_usd), wantShort);
  });

  it('prices Anthropic 1-hour cache writes at the 1-hour rate', async () => {
    const client = new Anthropic({ baseURL: sluice.root, apiKey: sluice.key, maxRetries: 0 });
    const msg = await client.messages.create({
      model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: 'cache this for an hour' }],
    }, { headers: { 'x-mock-cache-write': '10000', 'x-mock-cache-write-1h': '8000', 'x-request-id': 'cache-1h' } });
    const u = msg.usage;
    assert.equal(u.cache_creation_input_tokens, 10000, JSON.stringify(u));
    assert.equal(u.cache_creation.ephemeral_1h_input_tokens, 8000, JSON.stringify(u));
    // input at 3, 2000 written for 5 minutes at 3.75, 8000 for 1 hour at 6, output at 15
    const want = roundNano(part(u.input_tokens, 3000000) + part(2000, 3750000) + part(8000, 6000000)
      + part(u.output_tokens, 15000000));
    const g = await rowOf('cache-1h');
    assert.equal(usdToNano(g.cost_usd), want, `ledger ${g.cost_usd}, usage ${JSON.stringify(u)}`);
    // all ten thousand at the 5-minute rate would have been 16% less on the writes
    assert.ok(want > roundNano(part(u.input_tokens, 3000000) + part(10000, 3750000) + part(u.output_tokens, 15000000)));
  });

  it('sluice pricing show names the file and line, sluice pricing check the unpriced targets', async () => {
    let r = await sluiceCli(sluice, ['pricing', 'show', 'sonic', '--json']);
    assert.equal(r.code, 0, r.stderr);
    let j = JSON.parse(r.stdout);
    assert.equal(j.length, 1);
    assert.equal(j[0].key, 'openai/acme-sonic-1');
    assert.equal(j[0].file, litellm);
    assert.equal(j[0].line, SONIC_LINE);
    assert.equal(j[0].source, 'litellm:acme-sonic-1');
    assert.equal(j[0].input, '1.234567');
    assert.equal(j[0].output, '9.876543');
    assert.equal(j[0].max_output, 32000);

    r = await sluiceCli(sluice, ['pricing', 'show', 'mock/acme-long-1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    j = JSON.parse(r.stdout)[0];
    assert.equal(j.above, 200000);
    assert.deepEqual(j.above_rates, { input: '2.5', output: '6', cached_input: '1', cache_write: '1', cache_write_1h: '1' });

    r = await sluiceCli(sluice, ['pricing', 'show', 'anthropic/claude-acme']);
    assert.equal(r.code, 1, 'no anthropic/ line: the override is under the provider name');
    r = await sluiceCli(sluice, ['pricing', 'show', 'claude']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`file +${yaml.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2\\b`));
    assert.match(r.stdout, /cache_write_1h +6\b/);

    r = await sluiceCli(sluice, ['pricing', 'check']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /nope -> mock\/unpriced-acme \(kind openai\): NO PRICE/);
    assert.match(r.stdout, /demo -> demo\/echo \(kind echo\): no price needed/);
    assert.match(r.stderr, /5 target\(s\) priced, 2 without a price \(unpriced: reject refuses their requests\)/);

    // a configuration whose every target is priced passes
    const ok = { ...sluice.cfg, models: { sonic: { targets: ['mock/acme-sonic-1'] } } };
    const okPath = path.join(dir, 'all-priced.yaml');
    await fsp.writeFile(okPath, toYaml(ok));
    r = await run(SLUICE_BIN, ['pricing', 'check', '-c', okPath], { env: sluice.env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it('scripts/pricing-import writes sluice\'s YAML with the very same prices, stamped', async () => {
    const out = path.join(dir, 'imported.yaml');
    const r = await run('python3', [path.join(REPO, 'scripts/pricing-import'), '--date', '2026-07-24', '--out', out, litellm]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /wrote 3 prices/);
    const text = await fsp.readFile(out, 'utf8');
    assert.match(text, /^ {2}openai\/acme-sonic-1: \{input: 1\.234567, output: 9\.876543, max_output: 32000, checked: 2026-07-24, source: "litellm:acme-sonic-1"\}$/m);
    assert.match(text, /^ {2}openai\/acme-long-1: \{input: 1, output: 4, above_200k: \{input: 2\.5, output: 6\}, checked: 2026-07-24, source: "litellm:acme-long-1"\}$/m);
    assert.doesNotMatch(text, /vertex-acme/);
    // read back by sluice: the same numbers as the JSON itself
    const cfg = { ...sluice.cfg, pricing: out, unpriced: 'allow' };
    const cfgPath = path.join(dir, 'imported-sluice.yaml');
    await fsp.writeFile(cfgPath, toYaml(cfg));
    const show = async (c, m) => JSON.parse((await run(SLUICE_BIN, ['pricing', 'show', m, '--json', '-c', c], { env: sluice.env })).stdout)[0];
    for (const m of ['sonic', 'long', 'embed']) {
      const a = await show(cfgPath, m);
      const b = await show(sluice.configPath, m);
      for (const f of ['key', 'input', 'output', 'cached_input', 'cache_write', 'cache_write_1h', 'above', 'above_rates']) {
        assert.deepEqual(a[f], b[f], `${m}.${f}`);
      }
      assert.equal(a.checked, '2026-07-24');
    }
  });

  it('unpriced: reject answers 403 model_not_priced before any upstream call; a priced fallback serves', async () => {
    const tag = `unpriced-${Date.now()}`;
    const r = await sluice.chat({ model: 'nope' }, { headers: { 'x-mock-tag': tag } });
    assert.equal(r.status, 403, r.body);
    const e = errorShape(r.json());
    assert.equal(e.code, 'model_not_priced');
    assert.match(e.message, /unpriced-acme.*no price/);
    const f = await sluice.chat({ model: 'fallback' }, { headers: { 'x-mock-tag': tag } });
    assert.equal(f.status, 200, f.body);
    assert.equal(f.headers['x-sluice-model'], 'acme-sonic-1');
    const seen = (await mock.requests()).filter((q) => q.headers['x-mock-tag'] === tag);
    assert.deepEqual(seen.map((q) => JSON.parse(q.body).model), ['acme-sonic-1'], 'the unpriced target was never called');
    // the echo kind costs nothing and is never refused
    assert.equal((await sluice.chat({ model: 'demo' })).status, 200);
  });

  it('a large max_tokens on a small budget is not blocked while the real spend is low', async () => {
    // 0.05 USD: max_tokens 1000000 at 9.876543 USD per 1M would reserve 9.88 USD (0.32 at the
    // model's max_output of 32000): the reservation is capped at 10% of the budget instead
    const k = await createKey(sluice, 'agent', ['--budget', '0.05', '--period', 'total']);
    const client = new OpenAI({ baseURL: sluice.baseURL, apiKey: k.key, maxRetries: 0 });
    let spent = 0n;
    for (let i = 0; i < 5; i++) {
      const { data, response } = await client.chat.completions.create({
        model: 'sonic', max_tokens: 1000000, messages: [{ role: 'user', content: `step ${i} of the agent loop` }],
      }).withResponse();
      // what was left when it went out: budget - spent - the capped reservation of 0.005
      assert.equal(usdToNano(response.headers.get('x-sluice-budget-remaining-usd')), 50000000n - spent - 5000000n);
      spent += roundNano(part(data.usage.prompt_tokens, 1234567) + part(data.usage.completion_tokens, 9876543));
    }
    const b = JSON.parse((await sluiceCli(sluice, ['budgets', '--json'])).stdout).find((x) => x.id === k.id);
    assert.equal(BigInt(b.spent_nano_usd), spent);
    assert.equal(BigInt(b.reserved_nano_usd), 0n);
  });

  it('a weekly budget: keys and teams take --period week, spend lands in the ISO week', async () => {
    const ts = await sluiceCli(sluice, ['teams', 'set', 'weekly-team', '--budget', '2', '--period', 'week']);
    assert.equal(ts.code, 0, ts.stderr);
    const k = await createKey(sluice, 'weekly', ['--budget', '1', '--period', 'week', '--team', 'weekly-team']);
    assert.equal(k.period, 'week');
    const r = await sluice.chat({ model: 'sonic' }, { headers: { authorization: `Bearer ${k.key}` } });
    assert.equal(r.status, 200, r.body);
    const all = JSON.parse((await sluiceCli(sluice, ['budgets', '--json'])).stdout);
    const kb = all.find((x) => x.id === k.id);
    const tb = all.find((x) => x.kind === 'team' && x.id === 'weekly-team');
    assert.equal(kb.period, 'week');
    assert.equal(tb.period, 'week');
    assert.ok(BigInt(kb.spent_nano_usd) > 0n && kb.spent_nano_usd === tb.spent_nano_usd, JSON.stringify([kb, tb]));
    const list = await sluiceCli(sluice, ['keys', 'show', k.id]);
    assert.match(list.stdout, /\$1(\.00)?\/week/);
  });

  it('the budget rule holds on embeddings', async () => {
    const k = await createKey(sluice, 'embedder', ['--budget', '0.000000001', '--period', 'day']);
    const client = new OpenAI({ baseURL: sluice.baseURL, apiKey: k.key, maxRetries: 0 });
    const first = await client.embeddings.create({ model: 'embed', input: 'spend the only nano-dollar there is' });
    assert.equal(first.data.length, 1);
    await assert.rejects(client.embeddings.create({ model: 'embed', input: 'and then some' }),
      (e) => e.status === 429 && e.code === 'insufficient_quota');
  });

  it('rpm across a minute boundary: no 60-second window holds more than rpm requests', async () => {
    const RPM = 6;
    const k = await createKey(sluice, 'boundary', ['--rpm', String(RPM)]);
    // start 2.5 s before the next minute's boundary (a fixed-window limiter lets 2 x rpm through)
    let wait = 60000 - (Date.now() % 60000) - 2500;
    if (wait < 0) wait += 60000;
    await sleep(wait);
    const results = [];
    const end = Date.now() + 5500;
    while (Date.now() < end) {
      const at = Date.now();
      const r = await sluice.chat({ model: 'sonic' }, { headers: { authorization: `Bearer ${k.key}` } });
      results.push({ at, status: r.status, headers: r.headers, body: r.body });
      await sleep(250);
    }
    const ok = results.filter((x) => x.status === 200);
    const limited = results.filter((x) => x.status === 429);
    assert.ok(results.some((x) => x.at % 60000 < 30000) && results.some((x) => x.at % 60000 > 30000),
      'the requests straddle a minute boundary');
    for (const x of results) assert.ok(x.status === 200 || x.status === 429, `${x.status} ${x.body}`);
    // every request came within 6 s: one window holds them all
    assert.equal(ok.length, RPM, `${ok.length} admitted in ${results.length} requests over a minute boundary`);
    assert.ok(limited.length > 0);
    for (const x of limited) {
      assert.equal(errorShape(JSON.parse(x.body)).code, 'rate_limit_exceeded');
      const ms = Number(x.headers['retry-after-ms']);
      assert.ok(Number.isInteger(ms) && ms >= 1, JSON.stringify(x.headers));
      assert.equal(Number(x.headers['retry-after']), Math.ceil(ms / 1000));
      // exact: the first admitted request leaves the window 60 to 61 s after it came in
      const due = x.at + ms - ok[0].at;
      assert.ok(due >= 59000 && due <= 62000, `retry-after-ms ${ms} puts the next admission ${due} ms after the first`);
    }
  });
});
