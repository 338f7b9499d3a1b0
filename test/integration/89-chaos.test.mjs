// Chaos: mixed streaming and JSON load (SDK clients and raw ones) on
// budgeted keys while workers are killed with SIGKILL and the master is sent
// SIGHUP, over and over; then the ledger is compared with what the clients
// and the provider saw. Every request the client saw succeed has exactly one
// row, no request id has two, every request that reached the provider has a
// row (worker_died rows included), and no budget reservation is left behind.
// A failed request is allowed only where a SIGKILL cut its connection: it has
// a worker_died row, or it failed right after a kill, either without reaching
// auth or with its row committed (the kill fell between the commit and the
// write of the response's last bytes: the provider answered and billed it).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  makeTmpDir, startMock, startSluice, request, sleep, waitFor, withTimeout, sluiceCli, createKey, usageJson,
  collectStream, writePricing,
} from '../lib/harness.mjs';

const LOAD_MS = 30000;
const CHAOS_EVERY_MS = 700;
const KILL_WINDOW_MS = 1500; // a failure this soon after a SIGKILL may be one it cut
// A reload no longer closes a keep-alive connection under a client (it
// answers the next request on it with Connection: close, busy or idle):
// only a SIGKILL may explain a failure. Kept as a switch for bisecting that bug.
const TOLERATE_RELOAD_BUG = false;
const DRAIN_MS = 3000;

describe('chaos: SIGKILL and SIGHUP under mixed load', () => {
  let dir, mock, sluice;

  before(async () => {
    dir = await makeTmpDir('chaos');
    mock = await startMock();
    const pricing = await writePricing(path.join(dir, 'pricing.yaml'), {
      'mock/gpt-4o-mini-2024-07-18': { input: 1, output: 2, checked: '2026-11-01' },
    });
    sluice = await startSluice({
      dir, mock,
      allowLog: [/signal 9/],
      config: { pricing, server: { workers: 2, drain_timeout: '3s' }, storage: { sync_interval: '200ms' } },
    });
  });
  after(async () => {
    const errs = [];
    if (sluice) await sluice.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
    if (dir && !process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('keeps the ledger exact through kill -9 and reloads', async (t) => {
    const ts = await sluiceCli(sluice, ['teams', 'set', 'chaos', '--budget', '1000', '--period', 'total']);
    assert.equal(ts.code, 0, ts.stderr);
    const keys = [
      await createKey(sluice, 'chaos-a', ['--team', 'chaos', '--budget', '500', '--period', 'total']),
      await createKey(sluice, 'chaos-b', ['--budget', '500', '--period', 'day']),
    ];
    await mock.reset();
    const runId = Math.random().toString(36).slice(2, 8);
    const issued = new Map(); // id -> {ok, err, at}
    const kills = [];
    const hups = [];
    let reloads = 0;
    const t0 = Date.now();
    const more = () => Date.now() - t0 < LOAD_MS;
    const begin = (id) => { issued.set(id, { ok: false, err: null, at: 0 }); return id; };
    const fail = (id, e) => Object.assign(issued.get(id), { err: String(e).slice(0, 160), at: Date.now() });
    const headersFor = (id) => ({ 'x-request-id': id, 'x-mock-tag': id });

    // raw JSON clients, a fresh connection each, some held back by the provider
    const raw = async (c) => {
      const key = keys[c % 2].key;
      for (let n = 0; more(); n++) {
        const id = begin(`chaos-${runId}-r${c}-${n}`);
        try {
          const r = await request(`${sluice.root}/v1/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-mock-delay-ms': String(n % 4 * 60), ...headersFor(id) },
            body: { model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: `raw ${id}` }] },
            timeoutMs: 10000,
          });
          if (r.status === 200 && r.json().choices[0].message.content === `mock reply: raw ${id}`) issued.get(id).ok = true;
          else fail(id, `${r.status} ${r.body.slice(0, 100)}`);
        } catch (e) { fail(id, e.code || e.message); }
      }
    };
    // SDK clients: keep-alive, no retries (a retry would reuse the request id)
    const sdk = async (c, stream) => {
      const client = sluice.client({ apiKey: keys[c % 2].key, maxRetries: 0, timeout: 10000 });
      for (let n = 0; more(); n++) {
        const id = begin(`chaos-${runId}-${stream ? 's' : 'j'}${c}-${n}`);
        const text = `sdk ${id}`;
        try {
          if (stream) {
            const s = await collectStream(await client.chat.completions.create(
              { model: 'gpt-4o-mini', max_tokens: 50, stream: true, messages: [{ role: 'user', content: text }] },
              { headers: { ...headersFor(id), 'x-mock-chunks': '5', 'x-mock-chunk-delay-ms': '40' } }));
            if (s.content === `mock reply: ${text}` && s.finishReason === 'stop') issued.get(id).ok = true;
            else fail(id, `stream ended early: ${JSON.stringify(s.content)}`);
          } else {
            const r = await client.chat.completions.create(
              { model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: text }] }, { headers: headersFor(id) });
            if (r.choices[0].message.content === `mock reply: ${text}`) issued.get(id).ok = true;
            else fail(id, `content ${r.choices[0].message.content}`);
          }
        } catch (e) { fail(id, `${e.status || ''} ${e.message} ${e.cause ? e.cause.code || e.cause.message : ''}`); }
      }
    };
    // the chaos, in rounds of six ticks: a reload, then two SIGKILLs of current workers
    const seen = new Map(); // pid -> first seen
    const chaos = async () => {
      for (let i = 0; more(); i++) {
        await sleep(CHAOS_EVERY_MS);
        const now = Date.now();
        for (const p of sluice.workerPids()) if (!seen.has(p)) seen.set(p, now);
        if (i % 6 === 3 || i % 6 === 5) {
          // never one younger than 2.05 s (the master calls quick deaths a crash loop), and
          // the youngest of those: the current generation, which takes the new requests
          const old = [...seen].filter(([p, at]) => now - at > 2050 && sluice.workerPids().includes(p))
            .sort((a, b) => b[1] - a[1]);
          if (old.length) {
            const [victim] = old[0];
            process.kill(victim, 'SIGKILL');
            kills.push(Date.now());
          }
        } else if (i % 6 === 0) {
          sluice.signal('SIGHUP');
          hups.push(Date.now());
          reloads++;
        }
      }
    };
    await withTimeout(Promise.all([raw(0), raw(1), raw(2), sdk(0, true), sdk(1, true), sdk(2, false), chaos()]), LOAD_MS + 20000, 'load and chaos');

    // whether a random kill above met a request in flight is luck on a loaded machine: this
    // one surely does. A slow stream is under way in some worker; every worker is killed.
    {
      const id = begin(`chaos-${runId}-s9-0`);
      const client = sluice.client({ apiKey: keys[0].key, maxRetries: 0, timeout: 20000 });
      try {
        const stream = await client.chat.completions.create(
          { model: 'gpt-4o-mini', max_tokens: 50, stream: true, messages: [{ role: 'user', content: `sdk ${id}` }] },
          { headers: { ...headersFor(id), 'x-mock-chunks': '60', 'x-mock-chunk-delay-ms': '200' } });
        const chunks = stream[Symbol.asyncIterator]();
        await chunks.next();
        // none younger than 2.05 s (a quick death counts toward a crash loop)
        const pids = sluice.workerPids();
        for (const p of pids) if (!seen.has(p)) seen.set(p, Date.now());
        await sleep(Math.max(0, ...pids.map((p) => seen.get(p) + 2100 - Date.now())));
        for (const p of sluice.workerPids()) {
          try { process.kill(p, 'SIGKILL'); } catch { /* gone already */ }
        }
        kills.push(Date.now());
        for (let c = await chunks.next(); !c.done; c = await chunks.next()) { /* until the cut */ }
        fail(id, 'the stream ended although every worker was killed');
      } catch (e) { fail(id, `${e.status || ''} ${e.message}`); }
    }

    // the last generation is up, the old ones are gone and the dead are settled
    await sluice.waitWorkers({ timeoutMs: 15000 });
    await waitFor(async () => {
      const b = JSON.parse((await sluiceCli(sluice, ['budgets', '--json'])).stdout);
      return b.every((x) => x.reserved_nano_usd === 0) ? b : null;
    }, { timeoutMs: 10000, intervalMs: 300, msg: 'every reservation released' });

    const rows = await usageJson(sluice, 'request');
    const byId = new Map();
    for (const g of rows) {
      assert.ok(!byId.has(g.id), `usage --by request lists ${g.id} twice`);
      byId.set(g.id, g);
    }
    const ours = rows.filter((g) => g.id.startsWith(`chaos-${runId}-`));
    const ok = [...issued].filter(([, v]) => v.ok).map(([id]) => id);
    const failed = [...issued].filter(([, v]) => !v.ok);
    const died = ours.filter((g) => g.worker_died > 0);
    const tags = (await request(`${mock.root}/__mock/tags`, { headers: { authorization: `Bearer ${mock.apiKey}` } })).json()
      .filter((x) => x.startsWith(`chaos-${runId}-`));
    t.diagnostic(`${issued.size} requests, ${ok.length} ok, ${failed.length} failed; ${kills.length} kills, ${reloads} reloads; ` +
      `${ours.length} rows (${died.length} worker_died); the provider got ${tags.length} (${new Set(tags).size} distinct)`);
    assert.ok(kills.length >= 4, `${kills.length} kills`);
    assert.ok(reloads >= 4, `${reloads} reloads`);
    assert.ok(ok.length >= 100, `only ${ok.length} successes`);

    // no duplicate, and no row nobody asked for
    assert.deepEqual(ours.filter((g) => g.requests !== 1).map((g) => `${g.id}: ${g.requests}`), [], 'ids with more than one row');
    assert.deepEqual(ours.filter((g) => !issued.has(g.id)).map((g) => g.id), [], 'rows under ids nobody sent');
    // every success has its row, a clean one; a stream may end up worker_died when the
    // worker died after its last chunk but before [DONE], which the SDK takes for an end
    const missing = ok.filter((id) => !byId.has(id));
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${ok.length} successes without a row`);
    const bad = ok.filter((id) => byId.get(id).errors !== 0
      && !(/-s\d+-\d+$/.test(id) && byId.get(id).worker_died === 1));
    assert.deepEqual(bad.slice(0, 20), [], 'successes recorded as errors');
    // every request that reached the provider has its row
    const unrecorded = [...new Set(tags)].filter((id) => !byId.has(id));
    assert.deepEqual(unrecorded.slice(0, 20), [], `${unrecorded.length} requests reached the provider without a row`);
    // when a failure came, against the chaos before it (for the message)
    const since = (at) => {
      const last = (xs) => xs.filter((x) => x <= at).pop();
      const k = last(kills);
      const h = last(hups);
      return `${k === undefined ? 'no kill' : `${at - k} ms after a kill`}, ${h === undefined ? 'no reload' : `${at - h} ms after a reload`}`;
    };
    // a failure is one a SIGKILL cut: recorded as worker_died, or just after a kill either
    // before auth (no row) or after its row's commit, before its last bytes left (a clean row:
    // the last bytes go out only once the row is committed, and a worker the scheduler set
    // aside there, or busy answering a batch of rows, can be killed in between)
    const reloadBug = [];
    const cutAfterCommit = [];
    const unexplained = failed.filter(([id, v]) => {
      const g = byId.get(id);
      if (g && g.worker_died > 0) return false;
      const afterKill = kills.some((k) => v.at >= k && v.at - k <= KILL_WINDOW_MS);
      if (g === undefined && afterKill) return false;
      if (g !== undefined && g.errors === 0 && afterKill) {
        cutAfterCommit.push(id);
        return false;
      }
      if (TOLERATE_RELOAD_BUG && g === undefined && /-[sj]\d+-\d+$/.test(id) && /Connection error|fetch failed|ECONNRESET|EPIPE|socket/i.test(v.err)
        && hups.some((h) => v.at >= h && v.at - h <= DRAIN_MS + 2000)) {
        reloadBug.push(id);
        return false;
      }
      return true;
    }).map(([id, v]) => `${id}: ${v.err} (${byId.has(id) ? JSON.stringify(byId.get(id)) : 'no row'}; ${since(v.at)})`);
    t.diagnostic(`failures: ${failed.length - reloadBug.length} cut by SIGKILL (${cutAfterCommit.length} after their row's commit), ` +
      `${reloadBug.length} by the known reload bug on keep-alive SDK connections`);
    assert.deepEqual(unexplained.slice(0, 20), [], `${unexplained.length} failures no SIGKILL explains`);
    // and the master did the writing of the worker_died rows
    assert.match(sluice.readLog(), /usage ledger row\(s\) for worker process \d+/);
  });
});
