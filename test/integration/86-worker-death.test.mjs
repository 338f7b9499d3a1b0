// A worker killed with SIGKILL while its requests are in flight: the master
// writes one ledger row for each of them (status 499, flags worker_died and,
// for those that reached the provider, estimated), releases their budget
// reservations, and the key keeps working. Before, the rows were missing and
// the reservations held the budget until the next cold start.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  makeTmpDir, startMock, startSluice, request, sleep, waitFor, sluiceCli, createKey, usageJson,
  usdToNano, writePricing,
} from '../lib/harness.mjs';

describe('a worker killed mid-request', () => {
  let dir, mock, sluice;

  before(async () => {
    dir = await makeTmpDir('worker-death');
    mock = await startMock();
    const pricing = await writePricing(path.join(dir, 'pricing.yaml'), {
      'mock/gpt-4o-mini-2024-07-18': { input: 1000, output: 1000, checked: '2026-11-01' },
    });
    sluice = await startSluice({
      dir, mock,
      allowLog: [/signal 9/],
      config: { pricing, server: { workers: 1 } },
    });
  });
  after(async () => {
    const errs = [];
    if (sluice) await sluice.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
    if (dir && !process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true });
  });

  async function budgets() {
    const r = await sluiceCli(sluice, ['budgets', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  }

  it('gets one worker_died row per request in flight, and its reservations back', async (t) => {
    const ts = await sluiceCli(sluice, ['teams', 'set', 'red', '--budget', '100', '--period', 'total']);
    assert.equal(ts.code, 0, ts.stderr);
    // max_tokens: 500 makes each reservation about 0.6 USD
    const k = await createKey(sluice, 'victim', ['--team', 'red', '--budget', '20', '--period', 'total']);
    const runId = Math.random().toString(36).slice(2, 8);
    const ids = [];
    const pending = [];
    const send = (id, stream, headers) => {
      ids.push(id);
      const p = request(`${sluice.root}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json', 'x-request-id': id, ...headers },
        body: { model: 'gpt-4o-mini', max_tokens: 500, stream, messages: [{ role: 'user', content: `in flight ${id} ${'x'.repeat(400)}` }] },
        timeoutMs: 20000,
      }).then((r) => ({ id, status: r.status }), (e) => ({ id, error: e.code || e.message }));
      pending.push(p);
    };
    // streams that relay a chunk every 300 ms, and JSON answers held back by the mock
    for (let i = 0; i < 4; i++) send(`wd-${runId}-s${i}`, true, { 'x-mock-chunks': '40', 'x-mock-chunk-delay-ms': '300' });
    for (let i = 0; i < 4; i++) send(`wd-${runId}-j${i}`, false, { 'x-mock-delay-ms': '15000' });

    // the requests are upstream (the mock takes them one connection at a time), and the
    // streams relayed something
    await waitFor(async () => (await mock.stats()).requests >= 2, { timeoutMs: 8000, msg: 'requests at the mock' });
    await sleep(1000);
    const reserved = (await budgets()).find((b) => b.kind === 'key' && b.id === k.id);
    assert.ok(BigInt(reserved.reserved_nano_usd) > 0n, `reservations in flight: ${JSON.stringify(reserved)}`);
    t.diagnostic(`reserved before the kill: ${reserved.reserved_usd} USD`);

    const [victim] = sluice.workerPids();
    process.kill(victim, 'SIGKILL');
    const results = await Promise.all(pending);
    t.diagnostic(JSON.stringify(results.map((r) => r.status ?? r.error)));
    assert.equal(results.filter((r) => r.status === 200 && !/-s\d+$/.test(r.id)).length, 0, 'no JSON answer got through');
    await sluice.waitWorkers({ notIn: [victim], timeoutMs: 8000 });
    await waitFor(() => /wrote 8 usage ledger row\(s\) for worker process \d+ \(8 cut short/.test(sluice.readLog()),
      { timeoutMs: 5000, msg: 'the master settled the dead worker' });

    const rows = await usageJson(sluice, 'request');
    for (const id of ids) {
      const g = rows.filter((x) => x.id === id);
      assert.equal(g.length, 1, `${id}: ${g.length} ledger groups`);
      assert.equal(g[0].requests, 1, `${id}: ${g[0].requests} rows`);
      assert.equal(g[0].errors, 1, `${id}: a cut request is an error`);
      assert.equal(g[0].worker_died, 1, `${id}: ${JSON.stringify(g[0])}`);
      assert.ok(g[0].flags.includes('worker_died') && g[0].flags.includes('estimated'), `${id}: flags ${g[0].flags}`);
      // prompt estimated from the body (about 4 bytes a token), priced
      assert.ok(g[0].prompt_tokens >= 100, `${id}: prompt_tokens ${g[0].prompt_tokens}`);
      assert.ok(usdToNano(g[0].cost_usd) > 0n, `${id}: cost ${g[0].cost_usd}`);
      if (/-s\d+$/.test(id)) assert.ok(g[0].completion_tokens > 0, `${id}: relayed stream has completion tokens`);
    }

    // the table shows the flag too
    const table = await sluiceCli(sluice, ['usage', '--by', 'request', '--since', 'all']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /FLAGS/);
    assert.match(table.stdout, new RegExp(`wd-${runId}-j0 .*worker_died`));

    // nothing stays reserved, and what the requests cost is spent
    const after = await budgets();
    for (const b of after) {
      assert.equal(b.reserved_nano_usd, 0, `${b.kind} ${b.id} still holds ${b.reserved_usd} USD: ${JSON.stringify(b)}`);
    }
    const key = after.find((b) => b.kind === 'key' && b.id === k.id);
    const spent = rows.filter((x) => ids.includes(x.id)).reduce((s, x) => s + usdToNano(x.cost_usd), 0n);
    assert.equal(BigInt(key.spent_nano_usd), spent, 'the key is charged what the rows say');
    const team = after.find((b) => b.kind === 'team' && b.id === 'red');
    assert.equal(BigInt(team.spent_nano_usd), spent, 'and so is its team');

    // and the key still works
    const r = await request(`${sluice.root}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
      body: { model: 'gpt-4o-mini', max_tokens: 500, messages: [{ role: 'user', content: 'after' }] },
    });
    assert.equal(r.status, 200, r.body);
  });
});
