// The process model from outside: a killed worker is respawned, TERM/INT
// stop everything within stop_timeout, QUIT drains open streams, USR1 reopens
// the log file. Each test runs its own sluice (they end it); one mock.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import {
  makeTmpDir, startMock, startSluice, loadLoop, collectStream, sleep, waitFor, withTimeout, pidAlive, portAccepts,
  baseConfig, toYaml, run, randomKey, SLUICE_BIN,
} from '../lib/harness.mjs';

describe('process model', () => {
  let dir, mock;
  const started = [];
  let n = 0;

  async function sluiceFor(opts = {}) {
    const s = await startSluice({ dir, mock, name: `p${n++}`, ...opts });
    started.push(s);
    return s;
  }

  before(async () => {
    dir = await makeTmpDir('process');
    mock = await startMock();
  });
  after(async () => {
    const errs = [];
    for (const s of started) await s.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
    if (dir && !process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('respawns a worker killed with SIGKILL; service continues', async (t) => {
    // the master reports the killed worker; that report may be an alert
    const s = await sluiceFor({ allowLog: [/signal 9|SIGKILL|killed/i] });
    const pids0 = await s.waitWorkers();
    const load = loadLoop(s, { clients: 2, sdkClients: 0, maxRequests: 4000, maxMs: 10000 });
    await sleep(300);
    const victim = pids0[0];
    process.kill(victim, 'SIGKILL');
    const pids1 = await waitFor(() => {
      const p = s.workerPids();
      return p.length === 2 && !p.includes(victim) ? p : null;
    }, { timeoutMs: 5000, msg: 'a respawned worker' });
    assert.ok(pids1.includes(pids0[1]), 'the other worker was left alone');
    await sleep(500);
    const res = await load.stop();
    t.diagnostic(`${res.ok} ok, ${res.failed} failed around the kill`);
    assert.equal(res.exhausted, false, 'the load lasted until the respawn');
    assert.ok(res.failed <= 5, `${res.failed} failures around the kill (at most a handful allowed):\n${res.errors.join('\n')}`);
    assert.ok(res.ok > 0);
    for (let i = 0; i < 20; i++) {
      const r = await s.chat({ messages: [{ role: 'user', content: `after respawn ${i}` }] });
      assert.equal(r.status, 200, `request ${i} after respawn: ${r.status} ${r.body}`);
    }
    const line = await waitFor(() => s.readLog().split('\n').find((l) => l.includes(String(victim)) && /exit|signal|died|kill/i.test(l)),
      { timeoutMs: 3000, msg: `a log line about worker ${victim}` });
    assert.ok(line);
    await s.stop();
  });

  it('SIGTERM stops master and workers within stop_timeout + 1 s, even with a stream open', async () => {
    const s = await sluiceFor();
    const workers = await s.waitWorkers();
    const stream = await s.client({ timeout: 20000 }).chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'long one' }], stream: true },
      { headers: { 'x-mock-chunks': '50', 'x-mock-chunk-delay-ms': '200' } });
    let first;
    const gotFirst = new Promise((r) => { first = r; });
    const collecting = collectStream(stream, { onChunk: () => first() }).then((x) => ({ ok: true, x }), (e) => ({ ok: false, e }));
    await withTimeout(gotFirst, 5000, 'first chunk');
    const t0 = Date.now();
    s.signal('SIGTERM');
    await withTimeout(s.exited, 6000, 'master exit after SIGTERM');
    await waitFor(() => workers.every((p) => !pidAlive(p)), { timeoutMs: 6000, msg: 'workers gone' });
    const dt = Date.now() - t0;
    assert.ok(dt <= 4000, `stop took ${dt} ms (stop_timeout 3 s)`);
    const outcome = await withTimeout(collecting, 5000, 'client stream end after SIGTERM');
    if (outcome.ok) assert.notEqual(outcome.x.content.length, 0);
    assert.equal(await portAccepts(s.port), false, 'listener closed');
    await s.stop();
  });

  it('SIGINT is a fast stop too', async () => {
    const s = await sluiceFor();
    const workers = await s.waitWorkers();
    const t0 = Date.now();
    s.signal('SIGINT');
    await withTimeout(s.exited, 5000, 'master exit after SIGINT');
    await waitFor(() => workers.every((p) => !pidAlive(p)), { timeoutMs: 5000, msg: 'workers gone' });
    assert.ok(Date.now() - t0 <= 4000);
    await s.stop();
  });

  it('SIGQUIT lets an open stream finish, then exits', async () => {
    const s = await sluiceFor();
    const workers = await s.waitWorkers();
    const stream = await s.client({ timeout: 20000 }).chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'drain me gently' }], stream: true },
      { headers: { 'x-mock-chunks': '8', 'x-mock-chunk-delay-ms': '300' } });
    let quitAt = 0;
    const got = await collectStream(stream, {
      onChunk: () => { if (!quitAt) { quitAt = Date.now(); s.signal('SIGQUIT'); } },
    });
    assert.equal(got.content, 'mock reply: drain me gently');
    assert.equal(got.finishReason, 'stop');
    await withTimeout(s.exited, 7000, 'master exit after SIGQUIT drain');
    await waitFor(() => workers.every((p) => !pidAlive(p)), { timeoutMs: 3000, msg: 'workers gone' });
    assert.equal(await portAccepts(s.port), false);
    await s.stop();
  });

  it('SIGUSR1 reopens the error log', async () => {
    const s = await sluiceFor();
    await s.waitWorkers();
    assert.ok(fs.existsSync(s.errorLog));
    const rotated = `${s.errorLog}.1`;
    await fsp.rename(s.errorLog, rotated);
    s.signal('SIGUSR1');
    await waitFor(() => fs.existsSync(s.errorLog), { timeoutMs: 3000, msg: 'a new error.log after USR1' });
    await sleep(500); // let the master pass USR1 on to the workers
    const sizeRotated = fs.statSync(rotated).size;
    // make the master and the workers write something
    const pids0 = s.workerPids();
    s.signal('SIGHUP');
    await s.waitWorkers({ notIn: pids0, timeoutMs: 10000 });
    for (let i = 0; i < 3; i++) await s.chat({}, { headers: { 'x-mock-status': '500' } });
    await waitFor(() => fs.statSync(s.errorLog).size > 0, { timeoutMs: 5000, msg: 'lines in the new error.log' });
    assert.equal(fs.statSync(rotated).size, sizeRotated, 'nothing more written to the rotated file');
    await s.stop();
  });
  it('refuses to start on a port that is taken, saying so', async () => {
    const blocker = net.createServer();
    await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = blocker.address().port;
    try {
      const sub = path.join(dir, 'taken');
      await fsp.mkdir(sub, { recursive: true });
      const cfg = baseConfig({ dir: sub, port: taken, mock });
      const cfgPath = path.join(sub, 'sluice.yaml');
      await fsp.writeFile(cfgPath, toYaml(cfg));
      const r = await run(SLUICE_BIN, ['serve', '-c', cfgPath],
        { env: { SLUICE_TEST_KEY: randomKey(), MOCK_UPSTREAM_KEY: mock.apiKey }, timeoutMs: 8000 });
      assert.equal(r.timedOut, false, 'serve still running after 8 s on a taken port');
      assert.notEqual(r.code, 0);
      let log = '';
      try { log = fs.readFileSync(cfg.server.error_log, 'utf8'); } catch { /* none */ }
      assert.match(r.stderr + log, new RegExp(`${taken}|address already in use|EADDRINUSE`, 'i'), r.stderr + log);
    } finally {
      blocker.close();
    }
  });
  it('a second instance on the same listen address refuses to start', async () => {
    const a = await sluiceFor();
    const sub = path.join(dir, 'second');
    await fsp.mkdir(sub, { recursive: true });
    const cfg = baseConfig({ dir: sub, port: a.port, mock });
    const cfgPath = path.join(sub, 'sluice.yaml');
    await fsp.writeFile(cfgPath, toYaml(cfg));
    // SO_REUSEPORT must not let two gateways split one port's traffic silently
    const r = await run(SLUICE_BIN, ['serve', '-c', cfgPath],
      { env: { SLUICE_TEST_KEY: randomKey(), MOCK_UPSTREAM_KEY: mock.apiKey }, timeoutMs: 5000 });
    assert.equal(r.timedOut, false, `a second sluice started on port ${a.port}, which the first one serves`);
    assert.notEqual(r.code, 0);
    assert.equal((await a.chat({})).status, 200);
    await a.stop();
  });
});
