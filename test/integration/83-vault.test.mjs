// The vault from outside: `sluice secrets set/list/rm` under SLUICE_MASTER_KEY,
// no plaintext secret or client key in the LMDB files, a wrong or missing
// master key refused with a clear message, a provider key given as
// vault:NAME reaching the provider, and sluice refusing to start when the
// master key does not open the vault.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  makeTmpDir, startMock, startSluice, freePort, run, toYaml, randomKey, sleep, SLUICE_BIN,
  sluiceCli, createKey, randomMasterKey, restartSluice,
} from '../lib/harness.mjs';

describe('vault', () => {
  let dir, mock, sluice, masterKey, secretValue;
  const clientKeys = [];

  before(async () => {
    dir = await makeTmpDir('vault');
    mock = await startMock();
    masterKey = randomMasterKey();
    secretValue = mock.apiKey;
    // the provider key in the environment is wrong: only the vault has the right one
    sluice = await startSluice({
      dir, mock,
      env: { SLUICE_MASTER_KEY: masterKey, MOCK_UPSTREAM_KEY: randomKey('wrong-') },
    });
  });
  after(async () => {
    const errs = [];
    if (sluice) await sluice.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
    if (dir && !process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true });
  });

  const secrets = (args, opts) => sluiceCli(sluice, ['secrets', ...args], opts);
  const varDir = () => sluice.cfg.storage.path;

  it('secrets set stores a value from stdin; list shows names only', async () => {
    const set = await secrets(['set', 'mock'], { input: `${secretValue}\n` });
    assert.equal(set.code, 0, `secrets set: ${set.stderr}`);
    assert.ok(!set.stdout.includes(secretValue) && !set.stderr.includes(secretValue), 'set echoes the value');
    const other = await secrets(['set', 'spare'], { input: 'spare-secret-value-123456' });
    assert.equal(other.code, 0, other.stderr);

    const list = await secrets(['list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /\bmock\b/);
    assert.match(list.stdout, /\bspare\b/);
    const json = await secrets(['list', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const arr = JSON.parse(json.stdout);
    assert.deepEqual(arr.map((e) => e.name).sort(), ['mock', 'spare']);
    for (const text of [list.stdout, list.stderr, json.stdout]) {
      assert.ok(!text.includes(secretValue), 'list shows a value');
      assert.ok(!text.includes('spare-secret-value'), 'list shows a value');
    }

    const rm = await secrets(['rm', 'spare']);
    assert.equal(rm.code, 0, rm.stderr);
    const after = JSON.parse((await secrets(['list', '--json'])).stdout);
    assert.deepEqual(after.map((e) => e.name), ['mock']);
    const rm2 = await secrets(['rm', 'spare']);
    assert.notEqual(rm2.code, 0, 'removing a missing secret fails');
    assert.match(rm2.stderr, /spare/);
  });

  it('the LMDB files hold no plaintext secret and no plaintext client key', async () => {
    for (let i = 0; i < 3; i++) {
      const k = await createKey(sluice, `plain-check-${i}`);
      clientKeys.push(k.key);
      // the key authenticates (no upstream needed for the model list)
      const r = await sluice.req('/v1/models', { headers: { authorization: `Bearer ${k.key}` } });
      assert.equal(r.status, 200, r.body);
    }
    const files = fs.readdirSync(varDir()).filter((f) => f.endsWith('.mdb'));
    assert.ok(files.includes('data.mdb'), `LMDB files: ${files.join(', ')}`);
    const needles = [secretValue, secretValue.slice(3), ...clientKeys, ...clientKeys.map((k) => k.slice('sk-sluice-'.length))];
    for (const f of files) {
      const bytes = fs.readFileSync(path.join(varDir(), f));
      for (const n of needles) {
        assert.equal(bytes.indexOf(Buffer.from(n)), -1, `${f} contains plaintext ${n.slice(0, 12)}...`);
      }
      // the master key is not stored either
      assert.equal(bytes.indexOf(Buffer.from(masterKey)), -1, `${f} contains the master key (hex)`);
      assert.equal(bytes.indexOf(Buffer.from(masterKey, 'hex')), -1, `${f} contains the master key (raw)`);
    }
  });

  it('secrets set with a wrong, missing or malformed master key is refused with a clear message', async () => {
    const wrong = { SLUICE_MASTER_KEY: randomMasterKey() };
    const s = await secrets(['set', 'intruder'], { env: wrong, input: 'x-value' });
    assert.notEqual(s.code, 0, 'secrets set with a wrong master key exited 0');
    assert.match(s.stderr, /master key does not match/i, s.stderr);
    const none = await secrets(['set', 'x'], { env: { SLUICE_MASTER_KEY: '' }, input: 'v' });
    assert.notEqual(none.code, 0, 'secrets set without a master key exited 0');
    assert.match(none.stderr, /SLUICE_MASTER_KEY/, none.stderr);
    const bad = await secrets(['set', 'x'], { env: { SLUICE_MASTER_KEY: 'not-a-key' }, input: 'v' });
    assert.notEqual(bad.code, 0, 'secrets set with a malformed master key exited 0');
    assert.match(bad.stderr, /SLUICE_MASTER_KEY|master key/i, bad.stderr);
    for (const r of [s, none, bad]) assert.ok(!r.stderr.includes(masterKey));
    // nothing was added
    assert.deepEqual(JSON.parse((await secrets(['list', '--json'])).stdout).map((e) => e.name), ['mock']);
  });

  it('secrets list needs no master key and never shows a value', async () => {
    // names and dates are not secret: an operator can audit the vault without the key
    const none = await secrets(['list', '--json'], { env: { SLUICE_MASTER_KEY: '' } });
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(JSON.parse(none.stdout).map((e) => e.name), ['mock']);
    for (const e of JSON.parse(none.stdout)) {
      assert.deepEqual(Object.keys(e).sort(), ['created', 'name', 'updated']);
    }
    // but nothing can be read or written with a wrong key
    const set = await secrets(['set', 'other'], { env: { SLUICE_MASTER_KEY: randomMasterKey() }, input: 'x' });
    assert.notEqual(set.code, 0);
    assert.match(set.stderr, /master key does not match/i, set.stderr);
  });

  // A chat with the given client key (default: the static test key).
  function request(key = sluice.key) {
    return sluice.chat({ messages: [{ role: 'user', content: 'vault test' }] },
      { headers: { authorization: `Bearer ${key}` }, timeoutMs: 8000 });
  }

  it('a provider api_key given as vault:NAME reaches the provider (reload, then cold start)', async () => {
    // with the wrong key from the environment the mock refuses
    const before = await request();
    assert.notEqual(before.status, 200, `the mock accepted a wrong provider key: ${before.body}`);

    const cfg = structuredClone(sluice.cfg);
    cfg.providers.mock.api_key = 'vault:mock';
    const pids0 = sluice.workerPids();
    await sluice.writeConfig(cfg);
    sluice.signal('SIGHUP');
    await sluice.waitWorkers({ notIn: pids0, timeoutMs: 10000 });
    const r = await request();
    assert.equal(r.status, 200, `vault:mock after reload: ${r.status} ${r.body}`);
    assert.equal(r.json().choices[0].message.content, 'mock reply: vault test');

    // a reload naming a secret that does not exist keeps the running generation
    const bad = structuredClone(cfg);
    bad.providers.mock.api_key = 'vault:no-such-secret';
    const pids1 = sluice.workerPids();
    const logBefore = sluice.readLog().length;
    await sluice.writeConfig(bad);
    sluice.signal('SIGHUP');
    await sleep(1000);
    assert.deepEqual(sluice.workerPids(), pids1, 'a reload with a missing secret replaced the workers');
    assert.match(sluice.readLog().slice(logBefore), /no-such-secret/);
    assert.equal((await request()).status, 200);
    await sluice.writeConfig(cfg);

    // a cold start resolves it too
    await sluice.stop();
    await restartSluice(sluice);
    const c = await request();
    assert.equal(c.status, 200, `vault:mock after restart: ${c.status} ${c.body}`);
    // and the secret never shows in the logs
    assert.ok(!sluice.allLogs().includes(secretValue), 'error.log holds the provider key');
    assert.ok(!sluice.stderr.includes(secretValue), 'stderr holds the provider key');
  });

  // `sluice serve` on the same storage with its own port, pid file and log.
  async function serveWith(env, name) {
    const sub = path.join(dir, name);
    await fsp.mkdir(sub, { recursive: true });
    const cfg = structuredClone(sluice.cfg);
    cfg.server.listen = `127.0.0.1:${await freePort()}`;
    cfg.server.pid_file = path.join(sub, 'sluice.pid');
    cfg.server.error_log = path.join(sub, 'error.log');
    const file = path.join(sub, 'sluice.yaml');
    await fsp.writeFile(file, toYaml(cfg));
    const r = await run(SLUICE_BIN, ['serve', '-c', file], { env: { ...sluice.env, ...env }, timeoutMs: 8000 });
    let log = '';
    try { log = fs.readFileSync(cfg.server.error_log, 'utf8'); } catch { /* none */ }
    return { ...r, all: r.stderr + log };
  }

  it('sluice refuses to start with a wrong or missing master key, saying why', async () => {
    const wrong = await serveWith({ SLUICE_MASTER_KEY: randomMasterKey() }, 'wrong-key');
    assert.equal(wrong.timedOut, false, 'serve with a wrong master key was still running after 8 s');
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.all, /master key does not match|master key/i, wrong.all);
    assert.match(wrong.all, /vault:mock/, wrong.all);

    const none = await serveWith({ SLUICE_MASTER_KEY: '' }, 'no-key');
    assert.equal(none.timedOut, false, 'serve without a master key was still running after 8 s');
    assert.notEqual(none.code, 0);
    assert.match(none.all, /SLUICE_MASTER_KEY|master key/i, none.all);
    for (const r of [wrong, none]) {
      assert.ok(!r.all.includes(secretValue), 'a refused start printed the provider key');
    }
    // the running instance is unaffected
    assert.equal((await request()).status, 200);
  });
});
