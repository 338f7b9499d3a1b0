// A damaged store is reported, never trusted and never a crash. A data.mdb
// truncated to 0 bytes stops sluice from starting (LMDB would silently
// begin an empty store in it) unless `serve --init-storage` asks for that.
// Damaged ledger pages make `sluice usage` and `sluice stats` exit non-zero
// with a message naming the file and what to do, whether LMDB reports the
// damage, the row decoder does, or LMDB crashes on the page; and the store
// comes back from a `sluice backup` as README.md says.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  makeTmpDir, startMock, startSluice, request, waitFor, withTimeout, run, sluiceCli, usageJson,
  restartSluice, SLUICE_BIN,
} from '../lib/harness.mjs';

const PAGE = 4096;

describe('a damaged store', () => {
  let dir, mock, sluice;

  before(async () => {
    dir = await makeTmpDir('damage');
    mock = await startMock();
    sluice = await startSluice({
      dir, mock,
      // the start refused on purpose
      allowLog: [/\[emerg\] .*cannot open the storage at .*storage is damaged/],
      // a small map keeps the copies of data.mdb below small
      config: { storage: { map_size: '2MiB' } },
    });
  });
  after(async () => {
    const errs = [];
    if (sluice && !sluice.exitInfo) await sluice.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
    if (dir && !process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true });
  });

  const storage = () => sluice.cfg.storage.path;

  it('reports damaged ledger pages from usage and stats without crashing, and restores from a backup', async () => {
    for (let i = 0; i < 300; i++) {
      const r = await sluice.chat({ messages: [{ role: 'user', content: `row ${i}` }] }, { headers: { 'x-request-id': `dmg-${i}` } });
      assert.equal(r.status, 200, r.body);
    }
    const backup = path.join(dir, 'backup.mdb');
    const b = await sluiceCli(sluice, ['backup', backup]);
    assert.equal(b.code, 0, b.stderr);
    const good = await usageJson(sluice, 'request');
    assert.equal(good.filter((g) => g.id.startsWith('dmg-')).length, 300);

    // a copy of the live store, with a config of its own
    const copyDir = path.join(dir, 'copy');
    await fsp.mkdir(path.join(copyDir, 'var'), { recursive: true, mode: 0o700 });
    const cfgText = fs.readFileSync(sluice.configPath, 'utf8').replace(storage(), path.join(copyDir, 'var'));
    const cfg = path.join(copyDir, 'sluice.yaml');
    fs.writeFileSync(cfg, cfgText);
    const src = fs.readFileSync(path.join(storage(), 'data.mdb'));
    // every page that holds ledger rows (old copies too: the live ones are among them)
    const pages = new Set();
    for (let off = src.indexOf('gpt-4o-mini'); off >= 0; off = src.indexOf('gpt-4o-mini', off + 1)) pages.add(Math.floor(off / PAGE));
    assert.ok(pages.size > 0, 'rows found in data.mdb');

    const damages = {
      // page flags and bounds zeroed: LMDB walks into a page it cannot read (it asserts or faults)
      header: (buf, p) => buf.fill(0, p * PAGE + 8, p * PAGE + 16),
      // node offsets and data overwritten: rows that do not decode, or wild lengths
      body: (buf, p) => buf.fill(0xff, p * PAGE + 16, (p + 1) * PAGE),
    };
    for (const [name, damage] of Object.entries(damages)) {
      const buf = Buffer.from(src);
      for (const p of pages) damage(buf, p);
      fs.writeFileSync(path.join(copyDir, 'var', 'data.mdb'), buf);
      await fsp.rm(path.join(copyDir, 'var', 'lock.mdb'), { force: true });
      for (const cmd of [['usage', '--by', 'request', '--since', 'all', '--format', 'json'], ['stats']]) {
        const r = await run(SLUICE_BIN, [...cmd, '-c', cfg], { env: sluice.env, timeoutMs: 15000 });
        const what = `${name} damage, sluice ${cmd[0]}: code ${r.code} signal ${r.signal}\n${r.stderr.slice(-600)}`;
        assert.equal(r.signal, null, `no crash: ${what}`);
        assert.equal(r.timedOut, false, what);
        assert.equal(r.code, 1, what);
        assert.match(r.stderr, /data\.mdb" is damaged/, what);
        assert.match(r.stderr, /restore the last backup/, what);
        assert.doesNotMatch(r.stderr, /AddressSanitizer|runtime error/, what);
      }
    }

    // recovery as README.md says: the backup as data.mdb in an empty storage.path
    await fsp.rm(path.join(copyDir, 'var'), { recursive: true });
    await fsp.mkdir(path.join(copyDir, 'var'), { mode: 0o700 });
    await fsp.copyFile(backup, path.join(copyDir, 'var', 'data.mdb'));
    const r = await run(SLUICE_BIN, ['usage', '--by', 'request', '--since', 'all', '--format', 'json', '-c', cfg], { env: sluice.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).filter((g) => g.id.startsWith('dmg-')).length, 300, 'every row is back');
  });

  it('refuses to start on a 0-byte data.mdb unless --init-storage says so', async () => {
    sluice.signal('SIGTERM');
    await withTimeout(sluice.exited, 6000, 'sluice exit');
    const file = path.join(storage(), 'data.mdb');
    fs.truncateSync(file, 0);

    const logBefore = sluice.readLog().length;
    const r = await run(SLUICE_BIN, ['serve', '-c', sluice.configPath], { env: sluice.env, timeoutMs: 10000 });
    assert.equal(r.timedOut, false, 'it exits rather than serve');
    assert.equal(r.code, 1, r.stderr);
    const log = sluice.readLog().slice(logBefore);
    assert.match(log, /data\.mdb" is empty \(0 bytes\): the store was truncated or never written\. Restore data\.mdb from a backup/);
    assert.match(log, /sluice serve --init-storage/);
    assert.equal(fs.statSync(file).size, 0, 'the file is left as it was');
    // commands that write refuse too
    const k = await sluiceCli(sluice, ['keys', 'list']);
    assert.equal(k.code, 1);
    assert.match(k.stderr, /storage is damaged/);

    // asked for: an empty store starts in it
    const p = spawn(SLUICE_BIN, ['serve', '--init-storage', '-c', sluice.configPath], { env: sluice.env, stdio: 'ignore' });
    try {
      await waitFor(async () => (await request(`${sluice.root}/healthz`, { timeoutMs: 1000 }).catch(() => ({}))).status === 200,
        { timeoutMs: 10000, msg: 'serve --init-storage up' });
      const c = await sluice.chat({}, { headers: { 'x-request-id': 'after-init' } });
      assert.equal(c.status, 200, c.body);
    } finally {
      p.kill('SIGTERM');
      await withTimeout(new Promise((res) => p.on('exit', res)), 6000, 'serve --init-storage exit');
    }
    assert.match(sluice.readLog(), /starting a new, empty store in it as --init-storage asks/);
    // a normal start works again, on the new store
    await restartSluice(sluice);
    const rows = await usageJson(sluice, 'request');
    assert.deepEqual(rows.map((g) => g.id), ['after-init']);
  });
});
