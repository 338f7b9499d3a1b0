// The ledger's group commit (issue 11): rows of concurrent requests are
// written together (fewer LMDB write transactions than rows, counted in
// /metrics), and a worker killed with SIGKILL while rows wait in its commit
// queue (a 500 ms ledger.commit_window keeps them there) breaks nothing: every
// request the client saw answered 2xx has exactly one row, a clean one (its
// last byte left only after the commit), no request id has two, every request
// that reached the provider has a row, and no budget reservation is left.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  makeTmpDir, startMock, startSluice, request, sleep, waitFor, withTimeout, sluiceCli, createKey, usageJson,
  writePricing, freePort,
} from '../lib/harness.mjs';

const ADMIN_KEY = 'sk-admin-' + 'g'.repeat(32);
const LOAD_MS = 9000;
const CLIENTS = 16;
const KILL_EVERY_MS = 2200; // the master calls deaths younger than 2 s a crash loop

describe('ledger group commit', () => {
  let dir, mock, sluice, adminPort;

  before(async () => {
    dir = await makeTmpDir('group-commit');
    mock = await startMock();
    adminPort = await freePort();
    const pricing = await writePricing(path.join(dir, 'pricing.yaml'), {
      'mock/gpt-4o-mini-2024-07-18': { input: 1, output: 2, checked: '2026-11-01' },
    });
    sluice = await startSluice({
      dir, mock,
      allowLog: [/signal 9/],
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY },
      config: {
        pricing,
        server: { workers: 2, admin_listen: `127.0.0.1:${adminPort}` },
        auth: { admin_key: 'env:SLUICE_TEST_ADMIN_KEY' },
        ledger: { commit_window: '500ms' },
        storage: { sync_interval: '200ms' },
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

  const metric = async (name) => {
    const r = await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(r.status, 200, r.body);
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(r.body);
    assert.ok(m, `${name} in /metrics`);
    return Number(m[1]);
  };

  it('writes the rows of concurrent requests in shared transactions', async () => {
    const k = await createKey(sluice, 'batch');
    const commits0 = await metric('sluice_ledger_commits_total');
    const rows0 = await metric('sluice_ledger_committed_rows_total');
    const ids = Array.from({ length: 40 }, (_, i) => `gc-batch-${i}`);
    const rs = await Promise.all(ids.map((id) => request(`${sluice.root}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json', 'x-request-id': id },
      body: { model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: id }] },
    })));
    assert.deepEqual(rs.map((r) => r.status), ids.map(() => 200));
    const rows = await metric('sluice_ledger_committed_rows_total') - rows0;
    const commits = await metric('sluice_ledger_commits_total') - commits0;
    assert.equal(rows, 40, 'one row per request');
    assert.ok(commits < rows, `${rows} rows in ${commits} write transactions`);
    const got = (await usageJson(sluice, 'request')).filter((g) => g.id.startsWith('gc-batch-'));
    assert.equal(got.length, 40);
  });

  it('keeps exactly one row per 2xx through kill -9 during group commit', async (t) => {
    const key = await createKey(sluice, 'gc-kill', ['--budget', '1000', '--period', 'total']);
    await mock.reset();
    const runId = Math.random().toString(36).slice(2, 8);
    const issued = new Map(); // id -> {ok, err}
    const kills = [];
    const t0 = Date.now();
    const more = () => Date.now() - t0 < LOAD_MS;
    const client = async (c) => {
      for (let n = 0; more(); n++) {
        const id = `gc-${runId}-${c}-${n}`;
        issued.set(id, { ok: false, err: null });
        try {
          const r = await request(`${sluice.root}/v1/chat/completions`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${key.key}`, 'content-type': 'application/json', 'x-request-id': id, 'x-mock-tag': id,
            },
            body: { model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: id }] },
            timeoutMs: 10000,
          });
          if (r.status === 200 && r.json().choices[0].message.content === `mock reply: ${id}`) issued.get(id).ok = true;
          else issued.get(id).err = `${r.status} ${r.body.slice(0, 100)}`;
        } catch (e) { issued.get(id).err = e.code || e.message; }
      }
    };
    const seen = new Map(); // pid -> first seen
    const killer = async () => {
      while (more()) {
        await sleep(100);
        const now = Date.now();
        for (const p of sluice.workerPids()) if (!seen.has(p)) seen.set(p, now);
        if (kills.length && now - kills[kills.length - 1] < KILL_EVERY_MS) continue;
        const old = [...seen].filter(([p, at]) => now - at > 2050 && sluice.workerPids().includes(p));
        if (old.length) {
          process.kill(old[0][0], 'SIGKILL');
          kills.push(now);
        }
      }
    };
    await withTimeout(Promise.all([...Array.from({ length: CLIENTS }, (_, c) => client(c)), killer()]),
      LOAD_MS + 20000, 'load and kills');
    await sluice.waitWorkers({ timeoutMs: 15000 });
    await waitFor(async () => {
      const b = JSON.parse((await sluiceCli(sluice, ['budgets', '--json'])).stdout);
      return b.every((x) => x.reserved_nano_usd === 0) ? b : null;
    }, { timeoutMs: 10000, intervalMs: 300, msg: 'every reservation released' });

    const rows = await usageJson(sluice, 'request');
    const ours = rows.filter((g) => g.id.startsWith(`gc-${runId}-`));
    const byId = new Map(ours.map((g) => [g.id, g]));
    const ok = [...issued].filter(([, v]) => v.ok).map(([id]) => id);
    const tags = (await request(`${mock.root}/__mock/tags`, { headers: { authorization: `Bearer ${mock.apiKey}` } })).json()
      .filter((x) => x.startsWith(`gc-${runId}-`));
    t.diagnostic(`${issued.size} requests, ${ok.length} ok, ${kills.length} kills; ${ours.length} rows ` +
      `(${ours.filter((g) => g.worker_died > 0).length} worker_died); the provider got ${tags.length}`);
    const why = new Map();
    for (const [, v] of issued) if (!v.ok) why.set(v.err, (why.get(v.err) || 0) + 1);
    t.diagnostic(`failures: ${JSON.stringify([...why])}`);
    assert.ok(kills.length >= 2, `${kills.length} kills`);
    assert.ok(ok.length >= 100, `only ${ok.length} successes`);
    assert.equal(byId.size, ours.length, 'a request id with two rows');
    assert.deepEqual(ours.filter((g) => g.requests !== 1).map((g) => g.id), [], 'ids with more than one row');
    assert.deepEqual(ours.filter((g) => !issued.has(g.id)).map((g) => g.id), [], 'rows nobody asked for');
    const missing = ok.filter((id) => !byId.has(id));
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${ok.length} 2xx without a row`);
    const unclean = ok.filter((id) => byId.get(id).errors !== 0 || byId.get(id).worker_died !== 0);
    assert.deepEqual(unclean.slice(0, 20), [], '2xx recorded as errors or worker_died');
    const unrecorded = [...new Set(tags)].filter((id) => !byId.has(id));
    assert.deepEqual(unrecorded.slice(0, 20), [], `${unrecorded.length} requests reached the provider without a row`);
  });
});
