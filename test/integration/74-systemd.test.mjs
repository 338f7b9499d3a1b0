// sluice under systemd: the unit in etc/ passes `systemd-analyze verify`
// (with ExecStart pointing at the binary under test), and the master speaks
// Type=notify's protocol: READY=1 once its workers run, RELOADING=1 then
// READY=1 around every SIGHUP (also one that keeps the old generation),
// STOPPING=1 on shutdown. The service manager's socket is played by socat
// (UNIX-RECV prints each datagram it gets).

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, SLUICE_BIN, makeTmpDir, startMock, startSluice, sluiceCli, run, waitFor, withTimeout } from '../lib/harness.mjs';

const UNIT = path.join(REPO, 'etc/sluice.service');

describe('systemd', () => {
  const cleanup = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });

  it('etc/sluice.service passes systemd-analyze verify', async () => {
    const dir = await makeTmpDir('unit');
    cleanup.push(() => fs.promises.rm(dir, { recursive: true, force: true }));
    const text = fs.readFileSync(UNIT, 'utf8');
    // what the README promises about the unit
    for (const line of ['Type=notify', 'PIDFile=/run/sluice/sluice.pid', 'Restart=on-failure', 'LimitCORE=0',
      'ExecStart=/usr/local/bin/sluice serve -c /etc/sluice/sluice.yaml',
      'ExecReload=/usr/local/bin/sluice reload -c /etc/sluice/sluice.yaml',
      'NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'ProtectHome=yes']) {
      assert.ok(text.split('\n').includes(line), `the unit lacks "${line}"`);
    }
    // verify checks that the executables exist: point them at the binary under test
    const unit = path.join(dir, 'sluice.service');
    fs.writeFileSync(unit, text.replaceAll('/usr/local/bin/sluice', SLUICE_BIN));
    const r = await run('systemd-analyze', ['verify', unit], { timeoutMs: 30000 });
    assert.equal(r.code, 0, `systemd-analyze verify failed:\n${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trim(), '', `systemd-analyze verify warned:\n${r.stderr}`);
  });

  it('tells a Type=notify service manager about start, reloads and stop', async () => {
    const dir = await makeTmpDir('notify');
    cleanup.push(() => fs.promises.rm(dir, { recursive: true, force: true }));
    const sock = path.join(dir, 'notify');
    const sink = spawn('socat', ['-u', `UNIX-RECV:${sock},unlink-early`, 'STDOUT'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let got = '';
    let sinkErr = '';
    sink.stdout.on('data', (c) => { got += c; });
    sink.stderr.on('data', (c) => { sinkErr += c; });
    cleanup.push(async () => { sink.kill('SIGKILL'); });
    await waitFor(() => fs.existsSync(sock), { msg: `socat listening on ${sock} (${sinkErr})` });

    const mock = await startMock();
    cleanup.push(() => mock.stop());
    const sluice = await startSluice({ dir, mock, env: { NOTIFY_SOCKET: sock }, allowLog: [/unknown key/] });
    cleanup.push(() => sluice.stop());

    // each message: STATE=1, MONOTONIC_USEC, STATUS with the generation
    const messages = () => [...got.matchAll(/(READY|RELOADING|STOPPING)=1\nMONOTONIC_USEC=(\d+)\nSTATUS=generation (\d+), (\d+) workers/g)]
      .map((m) => ({ state: m[1], usec: Number(m[2]), generation: Number(m[3]), workers: Number(m[4]) }));
    const waitMessages = (n, what) => waitFor(() => messages().length >= n, { msg: `${what}; got ${JSON.stringify(got)}` });

    await waitMessages(1, 'READY=1 after start');
    assert.deepEqual(messages().map((m) => [m.state, m.generation, m.workers]), [['READY', 1, 2]]);

    // a good reload, as ExecReload does it
    const workers = await sluice.waitWorkers();
    const r = await sluiceCli(sluice, ['reload']);
    assert.equal(r.code, 0, r.stderr);
    await waitMessages(3, 'RELOADING=1 and READY=1 after a reload');
    await sluice.waitWorkers({ notIn: workers });
    assert.deepEqual(messages().slice(1).map((m) => [m.state, m.generation]), [['RELOADING', 1], ['READY', 2]]);

    // a SIGHUP with a broken file keeps generation 2, and still ends in READY=1
    fs.appendFileSync(sluice.configPath, 'bogus_key: 1\n');
    sluice.signal('SIGHUP');
    await waitMessages(5, 'READY=1 after a failed reload');
    assert.deepEqual(messages().slice(3).map((m) => [m.state, m.generation]), [['RELOADING', 2], ['READY', 2]]);
    const chat = await sluice.chat({});
    assert.equal(chat.status, 200, chat.body);

    sluice.signal('SIGTERM');
    await withTimeout(sluice.exited, 6000, 'sluice exit');
    await waitMessages(6, 'STOPPING=1');
    const all = messages();
    assert.equal(all[5].state, 'STOPPING');
    for (let i = 1; i < all.length; i++) assert.ok(all[i].usec >= all[i - 1].usec, 'MONOTONIC_USEC goes forward');
    assert.equal(got.replace(/(READY|RELOADING|STOPPING)=1\nMONOTONIC_USEC=\d+\nSTATUS=generation \d+, \d+ workers/g, ''), '',
      'nothing else was sent');
  });
});
