// The ledger's promise from outside: under load with client-chosen request
// ids, a worker killed with SIGKILL and a reload in the middle, every request
// the client saw succeed has exactly one ledger row under its id, no id has
// two, and the rows are still there after SIGTERM and a restart.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import {
  makeTmpDir, startMock, startSluice, collectStream, sleep, waitFor, withTimeout, usageJson, restartSluice,
} from '../lib/harness.mjs';

describe('ledger durability', () => {
  let dir, mock, sluice;

  before(async () => {
    dir = await makeTmpDir('durability');
    mock = await startMock();
    sluice = await startSluice({
      dir, mock,
      // the master reports the worker killed on purpose
      allowLog: [/signal 9|SIGKILL|killed/i],
      config: { storage: { sync_interval: '1s' } },
    });
  });
  after(async () => {
    const errs = [];
    if (sluice) await sluice.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
    if (dir && !process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true });
  });

  // id -> group of `usage --by request`, failing on a duplicated group id
  async function byRequest() {
    const rows = await usageJson(sluice, 'request');
    const m = new Map();
    for (const g of rows) {
      assert.ok(!m.has(g.id), `usage --by request lists id ${g.id} twice`);
      m.set(g.id, g);
    }
    return m;
  }

  it('one ledger row per successful request across SIGKILL of a worker, SIGHUP and a restart', async (t) => {
    const pids0 = await sluice.waitWorkers();
    const runId = Math.random().toString(36).slice(2, 8);
    const issued = new Set();
    const ok = new Set();
    const failed = [];
    let stop = false;
    const t0 = Date.now();
    const MAX_MS = 9000;
    const more = () => !stop && Date.now() - t0 < MAX_MS;

    // raw clients: a fresh connection per request
    const raw = async (c) => {
      for (let n = 0; more(); n++) {
        const id = `dur-${runId}-r${c}-${n}`;
        issued.add(id);
        try {
          const r = await sluice.chat({ messages: [{ role: 'user', content: `durable ${id}` }] },
            { headers: { 'x-request-id': id }, timeoutMs: 8000 });
          if (r.status >= 200 && r.status < 300) {
            assert.equal(r.headers['x-request-id'], id, 'sluice kept the client request id');
            assert.equal(r.json().choices[0].message.content, `mock reply: durable ${id}`);
            ok.add(id);
          } else {
            failed.push(`${id}: ${r.status} ${r.body.slice(0, 120)}`);
          }
        } catch (e) {
          if (e.code === 'ERR_ASSERTION') throw e;
          failed.push(`${id}: ${e.code || ''} ${e.message}`);
        }
        await sleep(3);
      }
    };
    // one SDK client streaming, keep-alive, no retries (a retry would reuse the id)
    const streamer = async () => {
      const client = sluice.client({ maxRetries: 0, timeout: 8000 });
      for (let n = 0; more(); n++) {
        const id = `dur-${runId}-s-${n}`;
        issued.add(id);
        try {
          const stream = await client.chat.completions.create(
            { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `streamed ${id}` }], stream: true },
            { headers: { 'x-request-id': id, 'x-mock-chunks': '3' } });
          const s = await collectStream(stream);
          if (s.content === `mock reply: streamed ${id}` && s.finishReason === 'stop') ok.add(id);
          else failed.push(`${id}: stream ended early: ${JSON.stringify(s.content)}`);
        } catch (e) {
          failed.push(`${id}: sdk ${e.status || ''} ${e.message}`);
        }
        await sleep(3);
      }
    };
    const all = Promise.all([raw(0), raw(1), raw(2), streamer()]);

    await sleep(2000);
    const victim = pids0[0];
    process.kill(victim, 'SIGKILL');
    await waitFor(() => {
      const p = sluice.workerPids();
      return p.length === 2 && !p.includes(victim);
    }, { timeoutMs: 5000, msg: 'the killed worker respawned' });
    await sleep(1500);
    const pids1 = sluice.workerPids();
    sluice.signal('SIGHUP');
    await sluice.waitWorkers({ notIn: pids1, timeoutMs: 8000 });
    await sleep(1000);
    stop = true;
    await withTimeout(all, 12000, 'load clients');
    const ms = Date.now() - t0;
    t.diagnostic(`${ok.size} ok, ${failed.length} failed of ${issued.size} in ${ms} ms`);
    assert.ok(ok.size >= 100, `only ${ok.size} requests succeeded in ${ms} ms`);
    assert.ok(failed.length <= 10, `${failed.length} failures around the kill:\n${failed.slice(0, 20).join('\n')}`);

    const check = async (when) => {
      const m = await byRequest();
      const missing = [...ok].filter((id) => !m.has(id));
      assert.deepEqual(missing.slice(0, 20), [], `${when}: ${missing.length} of ${ok.size} successful requests have no ledger row`);
      const doubled = [...m.values()].filter((g) => g.id.startsWith(`dur-${runId}-`) && g.requests !== 1);
      assert.deepEqual(doubled.map((g) => `${g.id}: ${g.requests} rows`).slice(0, 20), [], `${when}: request ids with more than one row`);
      const foreign = [...m.keys()].filter((id) => id.startsWith(`dur-${runId}-`) && !issued.has(id));
      assert.deepEqual(foreign, [], `${when}: rows under ids nobody sent`);
      for (const id of ok) {
        const g = m.get(id);
        assert.equal(g.name, 'gpt-4o-mini', `${when}: ${id} row names model ${g.name}`);
        assert.equal(g.errors, 0, `${when}: ${id} succeeded on the client but its row is an error`);
        assert.ok(g.completion_tokens > 0, `${when}: ${id} row has no completion tokens`);
      }
      return m;
    };
    const before = await check('before the restart');

    const workers = sluice.workerPids();
    sluice.signal('SIGTERM');
    await withTimeout(sluice.exited, 6000, 'sluice exit after SIGTERM');
    assert.equal(sluice.exitInfo.code, 0, `exit code after SIGTERM: ${JSON.stringify(sluice.exitInfo)}`);
    await waitFor(() => workers.every((p) => !sluice.workerPids().includes(p)), { timeoutMs: 3000, msg: 'workers gone' });
    sluice.checkLogs();
    await restartSluice(sluice);

    const after = await check('after the restart');
    const ours = (m) => [...m.values()].filter((g) => g.id.startsWith(`dur-${runId}-`))
      .map((g) => `${g.id} ${g.requests} ${g.prompt_tokens} ${g.completion_tokens} ${g.cost_usd}`).sort();
    assert.deepEqual(ours(after), ours(before), 'the same rows after SIGTERM and restart');
    // and the restarted gateway appends to the same ledger
    const id = `dur-${runId}-after`;
    const r = await sluice.chat({ messages: [{ role: 'user', content: 'after' }] }, { headers: { 'x-request-id': id } });
    assert.equal(r.status, 200, r.body);
    assert.equal((await byRequest()).get(id)?.requests, 1);
  });
});
