// Reload: SIGHUP rolls a new generation of workers over while traffic and
// open streams keep going; a broken config is refused with file:line:col and
// the old generation keeps serving; `sluice reload` and `sluice check`.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  startStack, loadLoop, collectStream, sleep, waitFor, withTimeout, run, toYaml, SLUICE_BIN,
  agentFetch,
} from '../lib/harness.mjs';

describe('reload', () => {
  let stack, sluice, goodCfg, goodText;

  before(async () => {
    // the config errors provoked on purpose may be logged at any level
    stack = await startStack({ name: 'reload', allowLog: [/\.yaml:\d+:\d+/] });
    ({ sluice } = stack);
    goodCfg = structuredClone(sluice.cfg);
    goodText = fs.readFileSync(sluice.configPath, 'utf8');
  });
  after(async () => { if (stack) await stack.stop(); });

  async function modelIds() {
    const r = await sluice.req('/v1/models');
    assert.equal(r.status, 200);
    return r.json().data.map((m) => m.id).sort();
  }

  // Restores the original config and waits for a clean generation.
  async function restore() {
    const before = sluice.workerPids();
    await sluice.writeConfig(goodText);
    sluice.cfg = structuredClone(goodCfg);
    sluice.signal('SIGHUP');
    await sluice.waitWorkers({ notIn: before, timeoutMs: 12000 });
  }

  it('replaces every worker on SIGHUP; the master stays', async () => {
    const pids0 = await sluice.waitWorkers();
    assert.equal(pids0.length, 2);
    const masterPid = Number(fs.readFileSync(sluice.pidFile, 'utf8').trim());
    assert.equal(masterPid, sluice.pid, 'pid file holds the master pid');
    sluice.signal('SIGHUP');
    const pids1 = await sluice.waitWorkers({ notIn: pids0, timeoutMs: 10000 });
    assert.equal(pids1.length, 2);
    assert.equal(Number(fs.readFileSync(sluice.pidFile, 'utf8').trim()), sluice.pid);
    const r = await sluice.chat({});
    assert.equal(r.status, 200);
  });

  it('loses no request under load across 20 reloads', async (t) => {
    const pids0 = sluice.workerPids();
    const load = loadLoop(sluice, { clients: 3, sdkClients: 1, maxRequests: 8000, maxMs: 25000 });
    await sleep(300);
    for (let i = 0; i < 20; i++) {
      sluice.signal('SIGHUP');
      await sleep(300);
    }
    assert.equal(load.stats.exhausted, false, 'the load lasted across all the reloads');
    await sleep(700);
    const res = await load.stop();
    t.diagnostic(`${res.ok} ok, ${res.failed} failed in ${res.ms} ms`);
    assert.equal(res.failed, 0, `failed ${res.failed} of ${res.ok + res.failed}:\n${res.errors.join('\n')}`);
    assert.ok(res.ok >= 50, `only ${res.ok} requests done in ${res.ms} ms`);
    const pids = await sluice.waitWorkers({ notIn: pids0, timeoutMs: 12000 });
    assert.equal(pids.length, 2, 'old generations drained, exactly `workers` left');
  });

  // A stream in flight at SIGHUP went out with keep-alive; the draining
  // worker must answer the next request its client sends on that connection
  // (with Connection: close) instead of closing under it. SDK clients with
  // keep-alive pools (fetch's own, and an http.Agent), no SDK retries.
  it('answers every streamed and JSON request on keep-alive connections across 20 reloads', async (t) => {
    const pids0 = sluice.workerPids();
    let connections = 0;
    const agent = new http.Agent({ keepAlive: true });
    const create = agent.createConnection.bind(agent);
    agent.createConnection = (...a) => { connections++; return create(...a); };
    const clients = [
      sluice.client({ maxRetries: 0, timeout: 15000 }),
      sluice.client({ maxRetries: 0, timeout: 15000, fetch: agentFetch(agent) }),
    ];
    const stats = { streams: 0, json: 0, agentRequests: 0, failed: 0, errors: [] };
    let stopped = false;
    const deadline = Date.now() + 20000;
    const fail = (what) => { stats.failed++; if (stats.errors.length < 20) stats.errors.push(what); };
    const loop = async (id, ci, stream) => {
      const client = clients[ci];
      for (let i = 0; !stopped && Date.now() < deadline; i++) {
        const text = `ka ${id} ${i}`;
        const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] };
        if (ci === 1) stats.agentRequests++;
        try {
          if (stream) {
            const s = await collectStream(await client.chat.completions.create({ ...body, stream: true },
              { headers: { 'x-mock-chunks': '4', 'x-mock-chunk-delay-ms': '40' } }));
            if (s.content === `mock reply: ${text}` && s.finishReason === 'stop') stats.streams++;
            else fail(`${id}/${i}: stream content ${JSON.stringify(s.content)} finish ${s.finishReason}`);
          } else {
            const r = await client.chat.completions.create(body);
            if (r.choices[0].message.content === `mock reply: ${text}`) stats.json++;
            else fail(`${id}/${i}: content ${r.choices[0].message.content}`);
            await sleep(5);
          }
        } catch (e) {
          fail(`${id}/${i} ${stream ? 'stream' : 'json'}: ${e.status || ''} ${e.message} ${e.cause ? e.cause.code || e.cause.message : ''}`);
        }
      }
    };
    const loops = [];
    for (let ci = 0; ci < clients.length; ci++) {
      for (let k = 0; k < 3; k++) loops.push(loop(`s${ci}${k}`, ci, true));
      for (let k = 0; k < 2; k++) loops.push(loop(`j${ci}${k}`, ci, false));
    }
    await sleep(300);
    for (let i = 0; i < 20; i++) {
      sluice.signal('SIGHUP');
      await sleep(300);
    }
    await sleep(500);
    stopped = true;
    await withTimeout(Promise.all(loops), 20000, 'keep-alive load loops');
    agent.destroy();
    t.diagnostic(`${stats.streams} streams and ${stats.json} JSON requests ok, ${stats.failed} failed; ` +
      `${stats.agentRequests} requests on ${connections} agent connections`);
    assert.equal(stats.failed, 0, `failed ${stats.failed}:\n${stats.errors.join('\n')}`);
    assert.ok(stats.streams >= 60, `only ${stats.streams} streams done`);
    assert.ok(stats.json >= 20, `only ${stats.json} JSON requests done`);
    assert.ok(connections < stats.agentRequests / 2, `keep-alive barely reused: ${stats.agentRequests} requests on ${connections} connections`);
    const pids = await sluice.waitWorkers({ notIn: pids0, timeoutMs: 12000 });
    assert.equal(pids.length, 2, 'old generations drained, exactly `workers` left');
  });

  // A reload only replaces the process: a keep-alive connection left idle
  // across it stays open (past the 1 s grace a stop gives) until its client
  // uses it, and that request is answered with Connection: close instead of
  // being reset. Raw sockets, so nothing retries.
  it('keeps an idle keep-alive connection across a reload until its client uses it', async () => {
    const pids0 = await sluice.waitWorkers();
    const sock = net.connect(sluice.port, '127.0.0.1');
    await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    let data = '';
    let closed = false;
    sock.on('data', (d) => { data += d.toString('latin1'); });
    sock.on('close', () => { closed = true; });
    sock.on('error', () => {});
    const ask = (id) => {
      const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: id }] });
      sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${sluice.key}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    };
    ask('before the reload');
    await waitFor(() => data.includes('mock reply: before the reload'), { timeoutMs: 5000, msg: 'first answer' });
    assert.match(data, /^HTTP\/1\.1 200/);
    assert.match(data, /\r\nconnection: keep-alive\r\n/i);
    data = '';
    sluice.signal('SIGHUP');
    await waitFor(() => sluice.workerPids().some((p) => !pids0.includes(p)), { timeoutMs: 10000, msg: 'new workers' });
    await sleep(2500);
    assert.equal(closed, false, 'the idle connection was closed under its client');
    ask('after the reload');
    await waitFor(() => data.includes('mock reply: after the reload') || closed, { timeoutMs: 5000, msg: 'second answer' });
    assert.match(data, /^HTTP\/1\.1 200/, `answered on the old connection: ${JSON.stringify(data.slice(0, 200))}`);
    assert.match(data, /\r\nconnection: close\r\n/i);
    await waitFor(() => closed, { timeoutMs: 5000, msg: 'closed after the answer' });
    await sluice.waitWorkers({ notIn: pids0, timeoutMs: 10000 });
  });

  it('finishes a stream that is in flight across a reload', async () => {
    const pids0 = sluice.workerPids();
    const client = sluice.client({ timeout: 20000 });
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'survive the reload please' }], stream: true },
      { headers: { 'x-mock-chunks': '8', 'x-mock-chunk-delay-ms': '300' } });
    let hupped = false;
    const s = await collectStream(stream, {
      onChunk: () => { if (!hupped) { hupped = true; sluice.signal('SIGHUP'); } },
    });
    assert.ok(hupped);
    assert.equal(s.content, 'mock reply: survive the reload please');
    assert.equal(s.finishReason, 'stop');
    await sluice.waitWorkers({ notIn: pids0, timeoutMs: 10000 });
  });

  it('refuses a config with a syntax error and keeps serving the old one', async () => {
    const pids0 = await sluice.waitWorkers();
    const models0 = await modelIds();
    const logBefore = sluice.readLog().length;
    // an unclosed flow sequence on line 3
    const broken = goodText.replace('  workers: 2\n', '  workers: [2\n');
    assert.notEqual(broken, goodText);
    await sluice.writeConfig(broken);
    sluice.signal('SIGHUP');
    const base = path.basename(sluice.configPath);
    const line = await waitFor(() => sluice.readLog().slice(logBefore).split('\n')
      .find((l) => new RegExp(`${base.replace('.', '\\.')}:\\d+:\\d+`).test(l)),
    { timeoutMs: 5000, msg: 'a FILE:LINE:COL line in error.log' });
    assert.match(line, /\[(emerg|alert|crit|error|warn)\]/, line);
    await sleep(500);
    assert.deepEqual(sluice.workerPids(), pids0, 'the old generation runs untouched');
    assert.deepEqual(await modelIds(), models0);
    const r = await sluice.chat({});
    assert.equal(r.status, 200, r.body);
    await restore();
  });

  it('refuses a semantically wrong config with the exact line', async () => {
    const pids0 = await sluice.waitWorkers();
    const logBefore = sluice.readLog().length;
    const broken = goodText.replace('  workers: 2\n', '  workers: banana\n');
    assert.equal(broken.split('\n')[2], '  workers: banana');
    await sluice.writeConfig(broken);
    sluice.signal('SIGHUP');
    const base = path.basename(sluice.configPath).replace('.', '\\.');
    const line = await waitFor(() => sluice.readLog().slice(logBefore).split('\n').find((l) => new RegExp(`${base}:\\d+:\\d+`).test(l)),
      { timeoutMs: 5000, msg: 'a FILE:LINE:COL line in error.log' });
    assert.match(line, new RegExp(`${base}:3:\\d+`), line);
    await sleep(300);
    assert.deepEqual(sluice.workerPids(), pids0);
    assert.equal((await sluice.chat({})).status, 200);
    await restore();
  });

  it('applies a valid change (new alias) on reload', async () => {
    const cfg = structuredClone(goodCfg);
    cfg.models['extra-alias'] = { targets: ['mock/extra-target'] };
    const pids0 = sluice.workerPids();
    await sluice.writeConfig(cfg);
    sluice.signal('SIGHUP');
    // once the old generation is gone, every worker serves the new config
    await sluice.waitWorkers({ notIn: pids0, timeoutMs: 10000 });
    for (let i = 0; i < 6; i++) {
      assert.ok((await modelIds()).includes('extra-alias'), 'extra-alias in /v1/models');
      const r = await sluice.chat({ model: 'extra-alias' });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers['x-sluice-model'], 'extra-target');
    }
    // and removing it again makes it unknown
    await restore();
    for (let i = 0; i < 6; i++) {
      assert.ok(!(await modelIds()).includes('extra-alias'), 'extra-alias gone');
      assert.equal((await sluice.chat({ model: 'extra-alias' })).status, 404);
    }
  });

  it('`sluice reload -c FILE` reloads through the pid file', async () => {
    const pids0 = await sluice.waitWorkers();
    const r = await run(SLUICE_BIN, ['reload', '-c', sluice.configPath], { env: sluice.env, timeoutMs: 10000 });
    assert.equal(r.code, 0, `reload exit ${r.code}: ${r.stderr}`);
    await sluice.waitWorkers({ notIn: pids0, timeoutMs: 10000 });
    assert.equal((await sluice.chat({})).status, 200);
  });

  it('an old worker leaves after drain_timeout even with a stream still open', async () => {
    const pids0 = await sluice.waitWorkers();
    const client = sluice.client({ timeout: 30000 });
    // 40 chunks every 300 ms: ~12 s, longer than drain_timeout (5 s)
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'a stream longer than the drain timeout' }], stream: true },
      { headers: { 'x-mock-chunks': '40', 'x-mock-chunk-delay-ms': '300' } });
    let hupAt = 0;
    let lastAt = 0;
    const collecting = collectStream(stream, {
      onChunk: () => { lastAt = Date.now(); if (!hupAt) { hupAt = Date.now(); sluice.signal('SIGHUP'); } },
    }).then(() => 'ended', () => 'aborted');
    await waitFor(() => hupAt, { timeoutMs: 5000, msg: 'first chunk' });
    await waitFor(() => pids0.every((p) => !sluice.workerPids().includes(p)),
      { timeoutMs: 9000, intervalMs: 100, msg: 'old workers gone within drain_timeout (5 s) + margin' });
    const gone = Date.now() - hupAt;
    assert.ok(gone >= 4000, `old generation left ${gone} ms after HUP, before drain_timeout (5 s) with a stream open`);
    const how = await withTimeout(collecting, 5000, 'client stream end after drain');
    assert.ok(lastAt - hupAt >= 4000, `the stream was served for ${lastAt - hupAt} ms after HUP (${how})`);
    assert.equal((await sluice.chat({})).status, 200);
  });

  it('`sluice serve` with a bad config exits non-zero with FILE:LINE:COL', async () => {
    const bad = path.join(path.dirname(sluice.configPath), 'serve-bad.yaml');
    await fsp.writeFile(bad, goodText.replace('  workers: 2\n', '  workers: banana\n'));
    const r = await run(SLUICE_BIN, ['serve', '-c', bad], { env: sluice.env, timeoutMs: 8000 });
    assert.equal(r.timedOut, false, 'serve was still running after 8 s');
    assert.notEqual(r.code, 0);
    const all = r.stderr + (fs.existsSync(sluice.errorLog) ? sluice.readLog() : '');
    assert.match(all, /serve-bad\.yaml:3:\d+/, r.stderr);
    assert.equal((await sluice.chat({})).status, 200, 'the running instance is unaffected');
  });

  it('`sluice check -c FILE` exit codes and messages', async () => {
    const dir = path.dirname(sluice.configPath);
    const ok = await run(SLUICE_BIN, ['check', '-c', sluice.configPath], { env: sluice.env, timeoutMs: 10000 });
    assert.equal(ok.code, 0, `check of a good file: ${ok.code} ${ok.stderr}`);

    const semantic = path.join(dir, 'bad-semantic.yaml');
    await fsp.writeFile(semantic, goodText.replace('  workers: 2\n', '  workers: banana\n'));
    const r1 = await run(SLUICE_BIN, ['check', '-c', semantic], { env: sluice.env, timeoutMs: 10000 });
    assert.notEqual(r1.code, 0);
    assert.match(r1.stderr, /bad-semantic\.yaml:3:\d+: \S/, r1.stderr);

    const syntax = path.join(dir, 'bad-syntax.yaml');
    await fsp.writeFile(syntax, goodText.replace('  workers: 2\n', '  workers: [2\n'));
    const r2 = await run(SLUICE_BIN, ['check', '-c', syntax], { env: sluice.env, timeoutMs: 10000 });
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /bad-syntax\.yaml:\d+:\d+: \S/, r2.stderr);

    const cfg = structuredClone(goodCfg);
    cfg.models['dangling'] = { targets: ['no-such-provider/x'] };
    const dangling = path.join(dir, 'bad-dangling.yaml');
    await fsp.writeFile(dangling, toYaml(cfg));
    const r3 = await run(SLUICE_BIN, ['check', '-c', dangling], { env: sluice.env, timeoutMs: 10000 });
    assert.notEqual(r3.code, 0, 'a target naming an unknown provider is an error');
    assert.match(r3.stderr, /bad-dangling\.yaml:\d+:\d+: \S/, r3.stderr);

    const missing = await run(SLUICE_BIN, ['check', '-c', path.join(dir, 'does-not-exist.yaml')], { env: sluice.env, timeoutMs: 10000 });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /does-not-exist\.yaml/);
  });
});
