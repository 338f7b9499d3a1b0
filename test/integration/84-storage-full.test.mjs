// A full storage from outside. On a real full filesystem (a 6 MiB tmpfs,
// filled up while sluice serves) no worker dies: the map cannot grow, the
// storage enters the full state with one alert, and with ledger.on_full
// refuse every new request gets 503 storage_full before any upstream call;
// freeing the disk ends the episode (one notice) and requests are recorded
// again. A full map (at 16 x map_size) with on_full serve keeps answering,
// counts what it serves unrecorded in /metrics, leaves no reservation
// behind, and a reload with a bigger map_size ends it.
//
// The tmpfs needs root (mount). Where it cannot be mounted the test fails,
// saying so: it never passes without having filled a filesystem.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  makeTmpDir, startMock, startSluice, request, errorShape, sleep, waitFor, withTimeout, run, freePort,
  sluiceCli, createKey, usageJson, SLUICE_BIN,
} from '../lib/harness.mjs';

const ADMIN_KEY = 'sk-admin-' + 'f'.repeat(32);

// Runs `count` requests through `conc` clients; returns [{id, status, code}].
async function drive(sluice, { count, conc = 8, key = sluice.key, model = 'gpt-4o-mini', prefix, stopWhen }) {
  const out = [];
  let n = 0;
  const one = async () => {
    while (n < count && !(stopWhen && stopWhen(out))) {
      const id = `${prefix}-${n++}`;
      try {
        const r = await request(`${sluice.root}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': id },
          body: { model, messages: [{ role: 'user', content: `fill ${id}` }] },
          timeoutMs: 10000,
        });
        let code = null;
        if (r.status !== 200) code = errorShape(r.json()).code;
        out.push({ id, status: r.status, code });
      } catch (e) {
        out.push({ id, status: -1, code: e.code || e.message });
      }
    }
  };
  await Promise.all(Array.from({ length: conc }, one));
  return out;
}

async function metrics(port) {
  const r = await request(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(r.status, 200, r.body);
  const m = {};
  for (const line of r.body.split('\n')) {
    const x = /^([a-z_]+(?:\{[^}]*\})?) (\d+)$/.exec(line);
    if (x) m[x[1]] = Number(x[2]);
  }
  return m;
}

const count = (text, re) => text.split('\n').filter((l) => re.test(l)).length;

describe('a full filesystem', () => {
  let dir, mnt, mock, sluice, adminPort, mounted = false;

  before(async () => {
    dir = await makeTmpDir('disk-full');
    mnt = path.join(dir, 'fs');
    await fsp.mkdir(mnt);
    const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=6m,mode=0700', 'tmpfs', mnt], { timeoutMs: 10000 });
    if (m.code !== 0) {
      throw new Error(`this test fills a real filesystem and needs root to mount a 6 MiB tmpfs; mount failed (${m.code}): ${m.stderr}`);
    }
    mounted = true;
    mock = await startMock();
    adminPort = await freePort();
    sluice = await startSluice({
      dir, mock,
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY },
      // the one alert of the episode
      allowLog: [/\[alert\].*is full: .*the filesystem has no room to grow its map/],
      config: (cfg) => {
        cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
        cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
        cfg.storage = { path: path.join(mnt, 'var'), map_size: '1MiB', sync_interval: '200ms' };
        cfg.ledger = { on_full: 'refuse' };
        return cfg;
      },
    });
  });
  after(async () => {
    const errs = [];
    if (sluice) await sluice.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (mounted) {
      const u = await run('umount', [mnt], { timeoutMs: 10000 });
      if (u.code !== 0) errs.push(new Error(`umount ${mnt}: ${u.stderr}`));
    }
    if (errs.length) throw errs[0];
    if (dir && !process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('refuses with 503 storage_full, kills no worker, logs once, and recovers when space returns', async (t) => {
    const pids = await sluice.waitWorkers();
    // the map (1 MiB) is reserved on disk: fill what is left of the filesystem
    const filler = path.join(mnt, 'filler');
    const fd = fs.openSync(filler, 'w');
    const chunk = Buffer.alloc(64 << 10, 1);
    let filled = 0;
    for (;;) {
      try { filled += fs.writeSync(fd, chunk); } catch (e) { assert.equal(e.code, 'ENOSPC'); break; }
    }
    fs.closeSync(fd);
    t.diagnostic(`filled ${filled} bytes: the filesystem is full`);

    // a long direct model name makes each row about 2 KB: the map fills in a few hundred requests
    const results = await withTimeout(drive(sluice, {
      count: 40000, prefix: 'full', model: `mock/${'m'.repeat(900)}`,
      stopWhen: (o) => o.filter((r) => r.status === 503).length >= 50,
    }), 50000, 'load until storage_full');
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 503);
    const other = results.filter((r) => r.status !== 200 && r.status !== 503);
    t.diagnostic(`full disk: ${results.length} requests, ${ok.length} 200, ${refused.length} 503, ${other.length} other`);
    assert.deepEqual(other.slice(0, 5), [], 'only 200 and 503');
    assert.ok(refused.length >= 50, `${refused.length} refusals`);
    for (const r of refused) assert.equal(r.code, 'storage_full');
    // no worker died of SIGBUS (or anything else)
    assert.deepEqual(sluice.workerPids(), pids, 'the same workers serve');
    const log = sluice.readLog();
    assert.equal(count(log, /exited on signal/), 0, 'no worker was killed');
    assert.equal(count(log, /\[alert\]/), 1, 'one alert for the episode');
    assert.equal(count(log, /\[(crit|error)\]/), 0, `nothing logged per request:\n${log.slice(-2000)}`);
    const m = await metrics(adminPort);
    assert.equal(m.sluice_storage_full, 1);
    assert.ok(m.sluice_storage_full_refused_total >= refused.length, JSON.stringify(m));

    // every answered request has its row; the refused ones have none
    const rows = new Map((await usageJson(sluice, 'request')).map((g) => [g.id, g]));
    const missing = ok.filter((r) => rows.get(r.id)?.requests !== 1).map((r) => r.id);
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${ok.length} answered requests without exactly one row`);
    assert.equal(refused.filter((r) => rows.has(r.id)).length, 0, 'refused requests have no row');

    // space returns: the next check grows the map and ends the episode
    await fsp.rm(filler);
    await waitFor(() => /has room again/.test(sluice.readLog()), { timeoutMs: 10000, msg: 'the notice that room is back' });
    const again = await drive(sluice, { count: 20, prefix: 'again' });
    assert.deepEqual(again.filter((r) => r.status !== 200), [], 'served again');
    const rows2 = new Map((await usageJson(sluice, 'request')).map((g) => [g.id, g]));
    assert.ok(again.every((r) => rows2.get(r.id)?.requests === 1), 'and recorded again');
    assert.equal((await metrics(adminPort)).sluice_storage_full, 0);
    assert.equal(count(sluice.readLog(), /has room again/), 1, 'one notice');
  });

  it('refuses to start a new store on a full filesystem, with a clear error', async () => {
    const filler = path.join(mnt, 'filler2');
    const fd = fs.openSync(filler, 'w');
    const chunk = Buffer.alloc(64 << 10, 1);
    for (;;) {
      try { fs.writeSync(fd, chunk); } catch { break; }
    }
    fs.closeSync(fd);
    const cfg = path.join(dir, 'fresh.yaml');
    const text = fs.readFileSync(sluice.configPath, 'utf8')
      .replace(/path: .*\/var\S*/, `path: ${path.join(mnt, 'fresh')}`)
      .replace(/pid_file: .*/, `pid_file: ${path.join(dir, 'fresh.pid')}`)
      .replace(/error_log: .*/, 'error_log: stderr')
      .replace(/listen: 127\.0\.0\.1:\d+/g, (() => { let p = 8; return () => `listen: 127.0.0.1:${++p}`; })());
    fs.writeFileSync(cfg, text);
    const r = await run(SLUICE_BIN, ['serve', '-c', cfg],
      { env: sluice.env, timeoutMs: 10000 });
    await fsp.rm(filler);
    assert.notEqual(r.code, 0, `it does not start: ${JSON.stringify(r)}\n${text}`);
    assert.equal(r.timedOut, false);
    assert.match(r.stderr, /storage ".*fresh" cannot be set up: the filesystem has no room for its (lock file|\d+-byte map)/);
    assert.match(r.stderr, /free disk space/);
    assert.equal(r.signal, null, 'no crash');
  });
});

describe('a full map with ledger.on_full: serve', () => {
  let dir, mock, sluice, adminPort;

  before(async () => {
    dir = await makeTmpDir('map-full');
    mock = await startMock();
    adminPort = await freePort();
    sluice = await startSluice({
      dir, mock,
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY },
      allowLog: [/\[alert\].*is full: .* kept for requests in flight, and it is at its map limit/],
      config: (cfg) => {
        cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
        cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
        cfg.storage.map_size = '1MiB';
        cfg.storage.sync_interval = '200ms';
        cfg.ledger = { on_full: 'serve' };
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

  it('serves unrecorded, counted, with no reservation left; a reload with a bigger map ends it', async (t) => {
    const k = await createKey(sluice, 'big-spender', ['--budget', '1000', '--period', 'total']);
    const tpmKey = await createKey(sluice, 'tpm-one', ['--tpm', '1']); // before the map fills
    // a direct model name at the ledger's 1024-byte string cap makes each row larger than
    // half a page, so it takes an overflow page of its own (4 KiB of map per row however the
    // ledger's leaves are packed: appends fill them): 16 MiB of map fills in a few thousand requests
    const model = `mock/${'m'.repeat(1019)}`;
    let enough = false;
    const load = drive(sluice, { count: 40000, key: k.key, model, prefix: 'map', stopWhen: () => enough });
    const watch = (async () => {
      while (!enough) {
        await sleep(200);
        enough = (await metrics(adminPort)).sluice_ledger_unrecorded_total >= 50;
      }
    })();
    const results = await withTimeout(load, 55000, 'load until full').finally(() => { enough = true; });
    await watch;
    const m = await metrics(adminPort);
    t.diagnostic(`full map: ${results.length} requests, ${results.filter((r) => r.status === 200).length} 200; metrics ${JSON.stringify({ full: m.sluice_storage_full, unrecorded: m.sluice_ledger_unrecorded_total })}`);
    assert.deepEqual(results.filter((r) => r.status !== 200).slice(0, 5), [], 'serve keeps serving');
    assert.equal(m.sluice_storage_full, 1, 'the storage is full');
    assert.ok(m.sluice_ledger_unrecorded_total > 0, 'what is served unrecorded is counted');
    const rows = new Map((await usageJson(sluice, 'request')).map((g) => [g.id, g]));
    const recorded = results.filter((r) => rows.get(r.id)?.requests === 1).length;
    assert.equal(recorded + m.sluice_ledger_unrecorded_total, results.length, 'every request is either in the ledger or counted unrecorded');
    assert.equal(results.filter((r) => (rows.get(r.id)?.requests ?? 0) > 1).length, 0, 'no id twice');
    const log = sluice.readLog();
    assert.equal(count(log, /\[alert\]/), 1, 'one alert');
    assert.equal(count(log, /\[(crit|error)\]/), 0, 'nothing per request');
    // a request served unrecorded still counts its tokens against its key's tpm
    const c = sluice.client({ apiKey: tpmKey.key });
    const ask = () => c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'count me' }] });
    const first = await ask();
    assert.ok(first.usage.total_tokens > 1, JSON.stringify(first.usage));
    await assert.rejects(ask(), (e) => e.status === 429 && /tokens per minute/.test(e.message));
    // nothing is left reserved (no settlement failed half-way)
    const b = JSON.parse((await sluiceCli(sluice, ['budgets', '--json'])).stdout);
    assert.deepEqual(b.map((x) => x.reserved_nano_usd), [0]);

    // a bigger map on reload ends the episode
    const cfg = { ...sluice.cfg, storage: { ...sluice.cfg.storage, map_size: '64MiB' } };
    await sluice.writeConfig(cfg);
    const old = sluice.workerPids();
    sluice.signal('SIGHUP');
    await sluice.waitWorkers({ notIn: old, timeoutMs: 10000 });
    await waitFor(() => /has room again/.test(sluice.readLog()), { timeoutMs: 10000, msg: 'room again after the reload' });
    const again = await drive(sluice, { count: 10, key: k.key, prefix: 'bigger' });
    const rows2 = new Map((await usageJson(sluice, 'request')).map((g) => [g.id, g]));
    assert.ok(again.every((r) => r.status === 200 && rows2.get(r.id)?.requests === 1), 'recorded again');
  });
});
