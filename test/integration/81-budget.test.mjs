// Budgets from outside: a pricing file makes each request cost a known
// amount; a key whose budget covers ten requests, hit by fifty at once, lets
// some through and refuses the rest with 429 insufficient_quota, and the
// ledger never shows more spent than the budget plus one reservation. A team
// budget, once spent, refuses every key of the team.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  makeTmpDir, startMock, startSluice, request, errorShape, sluiceCli, createKey, usageJson, usdToNano, writePricing,
  freePort,
} from '../lib/harness.mjs';

const ADMIN_KEY = 'sk-admin-' + 'b'.repeat(32);

// input free, output 1000 USD per 1M tokens: 1,000,000 nano-USD per completion token
const PRICE_OUT_NUSD = 1000000n;
const TEXT = 'budget';                  // reply "mock reply: budget": 3 words = 3 completion tokens
const COMPLETION = 3;
const COST_NUSD = BigInt(COMPLETION) * PRICE_OUT_NUSD; // 0.003 USD per request
const nanoToUsd = (n) => `${n / 1000000000n}.${String(n % 1000000000n).padStart(9, '0')}`;

describe('budgets', () => {
  let dir, mock, sluice, adminPort;

  before(async () => {
    dir = await makeTmpDir('budget');
    mock = await startMock();
    const pricing = await writePricing(path.join(dir, 'pricing.yaml'), {
      'mock/gpt-4o-mini-2024-07-18': { input: 0, output: 1000, checked: '2026-11-01' },
    });
    adminPort = await freePort();
    sluice = await startSluice({
      dir, mock,
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY },
      config: { pricing, server: { admin_listen: `127.0.0.1:${adminPort}` }, auth: { admin_key: 'env:SLUICE_TEST_ADMIN_KEY' } },
    });
  });
  after(async () => {
    const errs = [];
    if (sluice) await sluice.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
    if (dir && !process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true });
  });

  // One chat costing COST_NUSD (max_tokens = the real completion, so the
  // reservation estimate equals the cost), on a fresh connection.
  const chatWith = (key, content = TEXT) => request(`${sluice.root}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: { model: 'gpt-4o-mini', max_tokens: COMPLETION, messages: [{ role: 'user', content }] },
    timeoutMs: 10000,
  });

  function assertQuota(r, what) {
    assert.equal(r.status, 429, `${what}: ${r.status} ${r.body}`);
    const e = errorShape(r.json());
    assert.equal(e.type, 'insufficient_quota', `${what}: ${r.body}`);
    assert.equal(e.code, 'insufficient_quota', `${what}: ${r.body}`);
  }

  async function keyUsage(id) {
    const g = (await usageJson(sluice, 'key')).find((x) => x.id === id);
    assert.ok(g, `usage --by key has no group for ${id}`);
    return g;
  }

  it('prices a request as the pricing file says and reports the remaining budget', async () => {
    const k = await createKey(sluice, 'priced', ['--budget', '1', '--period', 'total']);
    const r = await chatWith(k.key);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().usage.completion_tokens, COMPLETION, r.body);
    const rem = r.headers['x-sluice-budget-remaining-usd'];
    assert.ok(rem !== undefined, `no x-sluice-budget-remaining-usd: ${JSON.stringify(r.headers)}`);
    const remN = usdToNano(rem);
    assert.ok(remN <= 1000000000n && remN >= 1000000000n - 2n * COST_NUSD, `remaining ${rem} of a 1 USD budget after one request`);
    const g = await keyUsage(k.id);
    assert.equal(g.requests, 1);
    assert.equal(usdToNano(g.cost_usd), COST_NUSD, `cost of one request: ${g.cost_usd}`);
    // an unbudgeted key gets no budget header
    const free = await createKey(sluice, 'unbudgeted');
    const f = await chatWith(free.key);
    assert.equal(f.status, 200);
    assert.equal(f.headers['x-sluice-budget-remaining-usd'], undefined);
  });

  it('50 concurrent requests on a 10-request budget: some 200, the rest 429, spend within the budget', async (t) => {
    const budget = 10n * COST_NUSD;
    const k = await createKey(sluice, 'ten-requests', ['--budget', nanoToUsd(budget), '--period', 'total']);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => chatWith(k.key).catch((e) => ({ status: -1, body: `${i}: ${e.message}` }))));
    const ok = results.filter((r) => r.status === 200);
    const denied = results.filter((r) => r.status === 429);
    const other = results.filter((r) => r.status !== 200 && r.status !== 429);
    t.diagnostic(`${ok.length} ok, ${denied.length} denied`);
    assert.deepEqual(other.map((r) => `${r.status} ${r.body}`), [], 'only 200 and 429');
    for (const r of denied) assertQuota(r, 'over budget');
    for (const r of ok) assert.equal(r.json().choices[0].message.content, `mock reply: ${TEXT}`);
    assert.ok(ok.length >= 1, 'some requests fit the budget');
    assert.ok(ok.length <= 11, `${ok.length} requests served on a budget of 10`);
    // the reservation is exact here, so a working budget admits all ten
    assert.ok(ok.length >= 9, `only ${ok.length} requests served on a budget of 10`);

    const g = await keyUsage(k.id);
    assert.equal(g.requests, 50, 'one ledger row per request past auth, refused ones included');
    assert.equal(g.errors, denied.length);
    const spent = usdToNano(g.cost_usd);
    assert.equal(spent, BigInt(ok.length) * COST_NUSD, `ledger cost ${g.cost_usd} for ${ok.length} served requests`);
    assert.ok(spent <= budget + COST_NUSD, `ledger cost ${g.cost_usd} > budget ${nanoToUsd(budget)} + one reservation`);

    // and it stays shut
    assertQuota(await chatWith(k.key), 'after the burst');
    // raising the budget opens it again without a reload
    const up = await sluiceCli(sluice, ['keys', 'update', k.id, '--budget', nanoToUsd(budget + 5n * COST_NUSD), '--period', 'total']);
    assert.equal(up.code, 0, up.stderr);
    const again = await chatWith(k.key);
    assert.equal(again.status, 200, `after raising the budget: ${again.body}`);
  });

  it('a spent team budget refuses a second key of the team', async () => {
    const teamBudget = 3n * COST_NUSD;
    const ts = await sluiceCli(sluice, ['teams', 'set', 'blue', '--budget', nanoToUsd(teamBudget), '--period', 'total']);
    assert.equal(ts.code, 0, `teams set: ${ts.stderr}`);
    const a = await createKey(sluice, 'blue-a', ['--team', 'blue']);
    const b = await createKey(sluice, 'blue-b', ['--team', 'blue']);
    const outsider = await createKey(sluice, 'no-team');

    let served = 0;
    for (let i = 0; i < 8; i++) {
      const r = await chatWith(a.key);
      if (r.status === 200) { served++; continue; }
      assertQuota(r, `key a, request ${i}`);
      break;
    }
    assert.equal(served, 3, 'the team budget covers three requests');
    assertQuota(await chatWith(b.key), 'second key of the spent team');
    assertQuota(await chatWith(b.key, 'another text'), 'second key of the spent team, again');
    assert.equal((await chatWith(outsider.key)).status, 200, 'a key outside the team is unaffected');

    const team = (await usageJson(sluice, 'team')).find((g) => g.id === 'blue');
    assert.ok(team, 'usage --by team shows the team');
    assert.ok(usdToNano(team.cost_usd) <= teamBudget, `team spent ${team.cost_usd} of ${nanoToUsd(teamBudget)}`);
    assert.equal(team.requests, served + 1 + 2, 'rows for served and refused requests of both keys');
  });

  it('settles the real cost when the provider exceeds max_tokens, and counts the overrun', async () => {
    const metric = async (name) => {
      const r = await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      assert.equal(r.status, 200, r.body);
      const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(r.body);
      assert.ok(m, `${name} in /metrics`);
      return BigInt(m[1]);
    };
    const k = await createKey(sluice, 'overrun', ['--budget', '1', '--period', 'total']);
    const before = await metric('sluice_budget_overrun_total');
    const beforeNusd = await metric('sluice_budget_overrun_nanodollars_total');
    // the reservation trusts max_tokens: 1, the OpenAI mock answers 5 words anyway
    const one = await request(`${sluice.root}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
      body: { model: 'gpt-4o-mini', max_tokens: 1, messages: [{ role: 'user', content: 'budget overrun check' }] },
    });
    assert.equal(one.status, 200, one.body);
    assert.equal(one.json().usage.completion_tokens, 5, one.body);
    const g = await keyUsage(k.id);
    assert.equal(usdToNano(g.cost_usd), 5n * PRICE_OUT_NUSD, `the ledger has the real cost: ${g.cost_usd}`);
    const b = JSON.parse((await sluiceCli(sluice, ['budgets', '--json'])).stdout).find((x) => x.id === k.id);
    assert.equal(BigInt(b.spent_nano_usd), 5n * PRICE_OUT_NUSD, `the budget is charged the real cost: ${JSON.stringify(b)}`);
    assert.equal(b.reserved_nano_usd, 0);
    assert.equal(await metric('sluice_budget_overrun_total') - before, 1n, 'the request overran its reservation');
    assert.equal(await metric('sluice_budget_overrun_nanodollars_total') - beforeNusd, 4n * PRICE_OUT_NUSD);
  });
});
