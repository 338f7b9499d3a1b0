// Core dumps carry decrypted secrets, so by default neither the master nor
// any worker can be dumped: RLIMIT_CORE's soft limit is 0 and the process is
// not dumpable (PR_SET_DUMPABLE 0). server.core_dumps: true turns both back
// on, also through a reload. sluice is started with its core limit raised
// first (prlimit), so a limit of 0 can only come from sluice itself.
//
// "Not dumpable" is read from /proc: the kernel makes a non-dumpable
// process's /proc/PID files owned by root instead of the process's user.
// That needs sluice to run as a user other than root, so when the suite runs
// as root sluice runs as nobody (setpriv); otherwise it runs as the suite's
// own user.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { makeTmpDir, startMock, startSluice, waitFor } from '../lib/harness.mjs';

const ROOT = process.getuid() === 0;
const RUN_AS = ROOT ? 65534 : process.getuid();

// The hard core limit of this process, in prlimit's words.
function ownHardCoreLimit() {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max core file size'));
  return line.trim().split(/\s+/)[5];
}

// Runs sluice with a soft core limit as high as the hard one (both unlimited as root), as RUN_AS.
function wrap() {
  if (ROOT) {
    return ['prlimit', '--core=unlimited:unlimited', 'setpriv', `--reuid=${RUN_AS}`, `--regid=${RUN_AS}`,
      '--clear-groups', '--'];
  }
  return ['prlimit', `--core=${ownHardCoreLimit()}:`, '--'];
}

// {soft, hard} of "Max core file size" for pid (strings as /proc prints them).
function coreLimit(pid) {
  const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max core file size'));
  const f = line.trim().split(/\s+/);
  return { soft: f[4], hard: f[5] };
}

// The process's effective uid and the owner of its /proc entry (root when it is not dumpable).
function dumpable(pid) {
  const uid = Number(/^Uid:\s+\d+\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  assert.equal(uid, RUN_AS, `process ${pid} runs as ${uid}, expected ${RUN_AS}`);
  // (the /proc/PID directory itself always shows the process's user)
  return fs.statSync(`/proc/${pid}/status`).uid === uid;
}

describe('core dumps', () => {
  const cleanup = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });

  async function start(name, coreDumps) {
    const dir = await makeTmpDir(name);
    fs.chmodSync(dir, 0o755); // mkdtemp's 0700 would keep RUN_AS out
    const mock = await startMock();
    cleanup.push(() => mock.stop());
    const sluice = await startSluice({
      dir, mock, wrap: wrap(),
      config: (cfg, { dir: sub }) => {
        fs.chownSync(sub, RUN_AS, RUN_AS); // pid file, log and storage are written as RUN_AS
        cfg.server.core_dumps = coreDumps;
        return cfg;
      },
    });
    cleanup.push(async () => { await sluice.stop(); fs.rmSync(dir, { recursive: true, force: true }); });
    const workers = await sluice.waitWorkers();
    const r = await sluice.chat({});
    assert.equal(r.status, 200, r.body);
    return { sluice, workers };
  }

  it('off by default: master and workers have a core limit of 0 and are not dumpable', async () => {
    const { sluice, workers } = await start('core-off');
    for (const pid of [sluice.pid, ...workers]) {
      const lim = coreLimit(pid);
      assert.equal(lim.soft, '0', `pid ${pid}: soft core limit ${lim.soft}`);
      // the hard limit stays, so a reload can turn dumps back on
      assert.notEqual(lim.hard, '0', `pid ${pid}: hard core limit lowered`);
      assert.equal(dumpable(pid), false, `pid ${pid} is dumpable`);
    }
  });

  it('server.core_dumps: true lets master and workers dump, up to the hard limit', async () => {
    const { sluice, workers } = await start('core-on', true);
    for (const pid of [sluice.pid, ...workers]) {
      const lim = coreLimit(pid);
      assert.equal(lim.soft, lim.hard, `pid ${pid}: soft core limit ${lim.soft}, hard ${lim.hard}`);
      assert.notEqual(lim.soft, '0');
      assert.equal(dumpable(pid), true, `pid ${pid} is not dumpable`);
    }
    assert.match(sluice.readLog(), /\[warn\].*server\.core_dumps is on/);
  });

  it('a reload applies the switch to the master and the new workers', async () => {
    const { sluice, workers } = await start('core-reload', false);
    assert.equal(dumpable(sluice.pid), false);
    await sluice.writeConfig({ ...sluice.cfg, server: { ...sluice.cfg.server, core_dumps: true } });
    sluice.signal('SIGHUP');
    const next = await sluice.waitWorkers({ notIn: workers });
    await waitFor(() => dumpable(sluice.pid), { msg: 'master dumpable after reload' });
    for (const pid of [sluice.pid, ...next]) {
      assert.equal(dumpable(pid), true, `pid ${pid} is not dumpable after the reload`);
      const lim = coreLimit(pid);
      assert.equal(lim.soft, lim.hard, `pid ${pid}: soft core limit ${lim.soft}`);
    }

    await sluice.writeConfig({ ...sluice.cfg, server: { ...sluice.cfg.server, core_dumps: false } });
    sluice.signal('SIGHUP');
    const last = await sluice.waitWorkers({ notIn: next });
    await waitFor(() => !dumpable(sluice.pid), { msg: 'master not dumpable after reload' });
    for (const pid of [sluice.pid, ...last]) {
      assert.equal(dumpable(pid), false, `pid ${pid} is dumpable after the second reload`);
      assert.equal(coreLimit(pid).soft, '0');
    }
  });
});
