// Integration-test harness: one place for temp dirs, free ports, the mock
// provider, the sluice master and its workers, raw HTTP helpers, log checks
// and bounded waits. Every wait here has a timeout; every process started
// here is killed at teardown (and, as a last resort, when node exits).

import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SLUICE_BIN = process.env.SLUICE_BIN || path.join(REPO, 'build/cmd/sluice');
export const SLUICE_MOCK = process.env.SLUICE_MOCK || path.join(REPO, 'build/test/mock/sluice-mock');
export const CERTS_SH = path.join(REPO, 'test/lib/certs.sh');
export const TMP_ROOT = path.join(REPO, 'test/integration/.tmp');

// Lines that fail a test when they appear in the error log or on stderr.
export const BAD_LOG = [/\[alert\]/, /\[emerg\]/, /AddressSanitizer/, /LeakSanitizer/, /runtime error:/];
const SANITIZER_LOG = [/AddressSanitizer/, /LeakSanitizer/, /runtime error:/];

// ---------------------------------------------------------------- basics

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function randomKey(prefix = 'sk-test-') {
  return prefix + crypto.randomBytes(18).toString('hex');
}

// Polls fn() until it returns a truthy value; throws after timeoutMs with msg.
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 50, msg = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      if (e && e.fatal) throw e;
      lastErr = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${msg}` +
        (lastErr ? ` (last error: ${lastErr.message})` : ''));
    }
    await sleep(intervalMs);
  }
}

// Rejects if p does not settle within ms.
export function withTimeout(p, ms, what = 'operation') {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]);
}

export async function makeTmpDir(name) {
  await fsp.mkdir(TMP_ROOT, { recursive: true });
  return fsp.mkdtemp(path.join(TMP_ROOT, `${name}-`));
}

// A port for a server a test starts later (sluice binds it itself). It is
// taken below the kernel's ephemeral range: a port from that range, free a
// moment ago, may be the source port of any outgoing connection by the time
// sluice binds it (this made start-ups fail with "Address already in use"
// under load). Falls back to a kernel-chosen port when the range leaves no
// room below it.
const EPHEMERAL_LOW = (() => {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32768;
  }
})();

function tryListen(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', () => resolve(null));
    srv.listen(port, '127.0.0.1', () => {
      const got = srv.address().port;
      srv.close(() => resolve(got));
    });
  });
}

export async function freePort() {
  const low = 20000;
  for (let i = 0; EPHEMERAL_LOW - low > 1000 && i < 50; i++) {
    const port = await tryListen(low + Math.floor(Math.random() * (EPHEMERAL_LOW - low)));
    if (port !== null) return port;
  }
  const port = await tryListen(0);
  if (port === null) throw new Error('no free port');
  return port;
}

export function portAccepts(port, host = '127.0.0.1', timeoutMs = 1000) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.setTimeout(timeoutMs, () => done(false));
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}

// ------------------------------------------------------- process tracking

const livePids = new Set();
process.on('exit', () => {
  for (const pid of livePids) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

export function pidAlive(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = st.slice(st.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

// Live (non-zombie) children of pid, found by scanning /proc/*/stat.
export function childPids(ppid) {
  const out = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    let st;
    try { st = fs.readFileSync(`/proc/${ent}/stat`, 'utf8'); } catch { continue; }
    const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
    if (Number(rest[1]) === ppid && rest[0] !== 'Z' && rest[0] !== 'X') out.push(Number(ent));
  }
  return out.sort((a, b) => a - b);
}

// ------------------------------------------------------------ raw HTTP

// One HTTP(S) request on a fresh connection. Resolves {status, headers, body,
// json()} (body a string). Never follows redirects; rejects on timeout.
export function request(url, { method = 'GET', headers = {}, body, ca, timeoutMs = 15000, agent = false } = {}) {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  headers = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined && v !== null));
  if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body)) body = JSON.stringify(body);
  const lower = Object.keys(headers).map((k) => k.toLowerCase());
  if (body !== undefined && !lower.includes('content-length') && !lower.includes('transfer-encoding')) {
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method, headers, ca, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: text,
          json() { return JSON.parse(text); },
        });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// A fetch() for the SDKs (their `fetch` option) on node's http/https modules
// with the given Agent: keep-alive pools a test controls, and https with a
// test CA (new https.Agent({ ca, keepAlive: true })). Bodies may be strings,
// Buffers or typed arrays; response bodies stream.
export function agentFetch(agent) {
  return (input, init = {}) => new Promise((resolve, reject) => {
    const u = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const mod = u.protocol === 'https:' ? https : http;
    const method = (init.method || 'GET').toUpperCase();
    const headers = {};
    new Headers(init.headers || {}).forEach((v, k) => { headers[k] = v; });
    let body = init.body;
    if (body instanceof ArrayBuffer) body = Buffer.from(body);
    else if (ArrayBuffer.isView(body)) body = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    else if (body !== undefined && body !== null && typeof body !== 'string') {
      reject(new TypeError(`agentFetch: unsupported body type ${Object.prototype.toString.call(body)}`));
      return;
    }
    if (body !== undefined && body !== null) headers['content-length'] = String(Buffer.byteLength(body));
    const req = mod.request(u, { method, headers, agent }, (res) => {
      const h = new Headers();
      for (let i = 0; i < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
      const empty = method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
      if (empty) res.resume();
      resolve(new Response(empty ? null : Readable.toWeb(res),
        { status: res.statusCode, statusText: res.statusMessage, headers: h }));
    });
    req.on('error', reject);
    if (init.signal) {
      const abort = () => req.destroy(Object.assign(new Error('The operation was aborted.'), { name: 'AbortError' }));
      if (init.signal.aborted) abort();
      else init.signal.addEventListener('abort', abort, { once: true });
    }
    req.end(body ?? undefined);
  });
}

// Parses as many complete HTTP/1.x responses as buf holds (Content-Length,
// chunked, or no body for 1xx/204/304/HEAD). Returns {responses, rest}.
// Each response: {version, status, reason, headers (lowercase, last wins),
// headerList, body (string)}.
export function parseResponses(buf, { head = false, closed = true } = {}) {
  const responses = [];
  let off = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const headText = buf.subarray(off, end).toString('latin1');
    const lines = headText.split('\r\n');
    const m = /^HTTP\/(\d\.\d) (\d{3}) ?(.*)$/.exec(lines[0]);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
    const headers = {};
    const headerList = [];
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      const k = l.slice(0, i).trim().toLowerCase();
      const v = l.slice(i + 1).trim();
      headers[k] = v;
      headerList.push([k, v]);
    }
    const status = Number(m[2]);
    let p = end + 4;
    let body = Buffer.alloc(0);
    if (status < 200 || status === 204 || status === 304 || head) {
      // no body
    } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
      const parts = [];
      let complete = false;
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) break;
        const size = parseInt(buf.subarray(p, le).toString('latin1'), 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size');
        if (size === 0) {
          const te = buf.indexOf('\r\n\r\n', le);
          if (te < 0) break;
          p = te + 4;
          complete = true;
          break;
        }
        if (buf.length < le + 2 + size + 2) break;
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (buf.length < p + n) break;
      body = buf.subarray(p, p + n);
      p += n;
    } else {
      // close-delimited: the rest of the buffer, complete once closed
      if (!closed) break;
      body = buf.subarray(p);
      p = buf.length;
    }
    responses.push({ version: m[1], status, reason: m[3], headers, headerList, body: body.toString('utf8') });
    off = p;
    if (off >= buf.length) break;
  }
  return { responses, rest: buf.subarray(off) };
}

// Runs curl with a hard time limit. Resolves {code, stdout, stderr}.
export function curl(args, { timeoutMs = 15000, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile('curl', ['--max-time', String(Math.ceil(timeoutMs / 1000)), ...args],
      { timeout: timeoutMs + 2000, maxBuffer: 16 << 20, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: err ? err.code : 0, stdout, stderr });
      });
    if (input !== undefined) child.stdin.end(input);
  });
}

// Runs a command to completion with a time limit (then SIGTERM, and SIGKILL
// 3 s later, so that a sluice master still takes its workers down).
// Resolves {code, signal, stdout, stderr, timedOut}.
export function run(cmd, args, { env, timeoutMs = 15000, cwd } = {}) {
  return new Promise((resolve) => {
    let timedOut = false;
    const child = execFile(cmd, args, { env: { ...process.env, ...env }, cwd, encoding: 'utf8', maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        clearTimeout(timer);
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0,
          signal: err ? err.signal : null, stdout, stderr, timedOut });
      });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    }, timeoutMs);
  });
}

// -------------------------------------------------------------- YAML out

function yamlScalar(v) {
  if (v === null) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  if (/^[A-Za-z0-9_.\/@-][A-Za-z0-9_.\/@:+-]*$/.test(s) && !/^(true|false|null|yes|no|on|off|~)$/i.test(s)) return s;
  return JSON.stringify(s);
}

// Block-style YAML for plain objects; arrays of scalars in flow style.
export function toYaml(obj, indent = '') {
  let out = '';
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      if (v.every((x) => x === null || typeof x !== 'object')) {
        out += `${indent}${k}: [${v.map(yamlScalar).join(', ')}]\n`;
      } else {
        out += `${indent}${k}:\n`;
        for (const item of v) {
          const inner = toYaml(item, indent + '    ');
          out += `${indent}  - ${inner.trimStart()}`;
        }
      }
    } else if (v !== null && typeof v === 'object') {
      out += `${indent}${k}:\n${toYaml(v, indent + '  ')}`;
    } else {
      out += `${indent}${k}: ${yamlScalar(v)}\n`;
    }
  }
  return out;
}

export function deepMerge(base, over) {
  const out = structuredClone(base);
  for (const [k, v] of Object.entries(over || {})) {
    if (v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' && !Array.isArray(out[k])) {
      out[k] = deepMerge(out[k], v);
    } else {
      out[k] = structuredClone(v);
    }
  }
  return out;
}

// ------------------------------------------------------------------ mock

export async function makeCerts(dir) {
  const r = await run('sh', [CERTS_SH, dir], { timeoutMs: 30000 });
  if (r.code !== 0) throw new Error(`certs.sh failed (${r.code}): ${r.stderr}`);
  for (const f of ['ca.pem', 'server.pem', 'server.key', 'other-ca.pem']) {
    if (!fs.existsSync(path.join(dir, f))) throw new Error(`certs.sh did not create ${f}`);
  }
  return {
    ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'server.pem'),
    key: path.join(dir, 'server.key'), otherCa: path.join(dir, 'other-ca.pem'),
  };
}

// Starts sluice-mock; resolves a handle once it printed port=N.
export async function startMock({ apiKey = randomKey('mk-'), tls, chunks, chunkDelayMs, args = [] } = {}) {
  const argv = ['--listen', '127.0.0.1:0', ...(apiKey === null ? [] : ['--api-key', apiKey]), ...args];
  if (tls) argv.push('--tls-cert', tls.cert, '--tls-key', tls.key);
  if (chunks !== undefined) argv.push('--chunks', String(chunks));
  if (chunkDelayMs !== undefined) argv.push('--chunk-delay-ms', String(chunkDelayMs));
  if (!fs.existsSync(SLUICE_MOCK)) throw new Error(`mock binary not found: ${SLUICE_MOCK} (set SLUICE_MOCK)`);
  const proc = spawn(SLUICE_MOCK, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  livePids.add(proc.pid);
  let stdout = '';
  let stderr = '';
  proc.stderr.on('data', (c) => { stderr += c; });
  const exited = new Promise((r) => proc.on('exit', (code, sig) => { livePids.delete(proc.pid); r({ code, sig }); }));
  const port = await withTimeout(new Promise((resolve, reject) => {
    proc.stdout.on('data', (c) => {
      stdout += c;
      const m = /^port=(\d+)\s*$/m.exec(stdout);
      if (m) resolve(Number(m[1]));
    });
    exited.then(({ code, sig }) => reject(new Error(`mock exited early (code ${code}, signal ${sig}): ${stderr}`)));
  }), 10000, 'mock start').catch((e) => { proc.kill('SIGKILL'); throw e; });
  proc.stdout.resume();

  const scheme = tls ? 'https' : 'http';
  const ca = tls ? fs.readFileSync(tls.ca) : undefined;
  const root = `${scheme}://127.0.0.1:${port}`;
  const auth = apiKey === null ? {} : { authorization: `Bearer ${apiKey}` };
  const mock = {
    proc, port, apiKey, root,
    baseURL: `${root}/v1`,
    stderr: () => stderr,
    async requests() {
      const r = await request(`${root}/__mock/requests`, { headers: auth, ca });
      if (r.status !== 200) throw new Error(`/__mock/requests -> ${r.status}: ${r.body}`);
      return r.json().map((q) => {
        let parsed = q.body;
        if (typeof parsed === 'string') { try { parsed = JSON.parse(parsed); } catch { /* leave */ } }
        return { ...q, rawBody: typeof q.body === 'string' ? q.body : JSON.stringify(q.body), json: parsed };
      });
    },
    async reset() {
      const r = await request(`${root}/__mock/reset`, { method: 'POST', headers: auth, ca, body: '' });
      if (r.status >= 300) throw new Error(`/__mock/reset -> ${r.status}`);
    },
    async stats() {
      const r = await request(`${root}/__mock/stats`, { headers: auth, ca });
      return r.json();
    },
    // The next `count` API requests (all: -1) behave as if they carried these
    // x-mock-* fault headers; faults({}) clears them.
    async faults(headers, count = -1) {
      const r = await request(`${root}/__mock/faults`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, ca, body: JSON.stringify({ headers, count }) });
      if (r.status !== 200) throw new Error(`/__mock/faults -> ${r.status}: ${r.body}`);
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await withTimeout(exited, 3000, 'mock stop').catch(() => proc.kill('SIGKILL'));
      }
      const bad = SANITIZER_LOG.filter((re) => re.test(stderr));
      if (bad.length) throw new Error(`mock stderr shows sanitizer output:\n${stderr.slice(-4000)}`);
    },
  };
  return mock;
}

// ---------------------------------------------------------------- sluice

// The config every test file starts from; `over` is deep-merged into it.
export function baseConfig({ dir, port, mock, over }) {
  const cfg = {
    server: {
      listen: `127.0.0.1:${port}`,
      workers: 2,
      pid_file: path.join(dir, 'sluice.pid'),
      error_log: path.join(dir, 'error.log'),
      log_level: 'info',
      drain_timeout: '5s',
      stop_timeout: '3s',
    },
    auth: { static_keys: ['env:SLUICE_TEST_KEY'] },
    // the map is reserved on disk up front: keep it small, it grows as a test needs
    storage: { path: path.join(dir, 'var'), map_size: '64MiB' },
    // one attempt per request and no breaker, so a test that makes the mock
    // fail sees that failure; 100-routing tests retries and breakers
    routing: { retries: 0, breaker: { failures: 0 } },
    providers: {
      mock: { kind: 'openai', base_url: mock ? mock.baseURL : 'http://127.0.0.1:9/v1', api_key: 'env:MOCK_UPSTREAM_KEY' },
    },
    models: {
      'gpt-4o-mini': { targets: ['mock/gpt-4o-mini-2024-07-18'] },
    },
  };
  return deepMerge(cfg, over);
}

// Starts `sluice serve -c <dir>/<name>.yaml`. Options: dir (required), mock
// (handle from startMock), config (function cfg => cfg, or object merged),
// name, allowLog (regexes of bad-looking lines a test expects, e.g. a
// worker killed on purpose), env, wrap (a command line that execs the
// sluice command line appended to it, e.g. ['prlimit', '--core=0']: the
// pid stays sluice's).
export async function startSluice({ dir, mock, config, name = 'sluice', allowLog = [], env = {}, readyTimeoutMs = 10000, wrap = [] }) {
  if (!fs.existsSync(SLUICE_BIN)) throw new Error(`sluice binary not found: ${SLUICE_BIN} (set SLUICE_BIN)`);
  const port = await freePort();
  const sub = path.join(dir, name);
  await fsp.mkdir(sub, { recursive: true });
  let cfg = baseConfig({ dir: sub, port, mock });
  if (typeof config === 'function') cfg = config(cfg, { dir: sub, port }) || cfg;
  else if (config) cfg = deepMerge(cfg, config);
  const configPath = path.join(sub, 'sluice.yaml');
  await fsp.writeFile(configPath, toYaml(cfg));
  const key = randomKey();
  const fullEnv = {
    ...process.env,
    SLUICE_TEST_KEY: key,
    MOCK_UPSTREAM_KEY: mock ? mock.apiKey : randomKey('mk-'),
    ...env,
  };
  const s = new Sluice({ dir: sub, port, cfg, configPath, key, env: fullEnv, allowLog, mock, wrap });
  await s.start(readyTimeoutMs);
  return s;
}

export class Sluice {
  constructor({ dir, port, cfg, configPath, key, env, allowLog, mock, wrap = [] }) {
    Object.assign(this, { dir, port, cfg, configPath, key, env, allowLog, mock, wrap });
    this.pidFile = cfg.server.pid_file;
    this.errorLog = cfg.server.error_log;
    this.baseURL = `http://127.0.0.1:${port}/v1`;
    this.root = `http://127.0.0.1:${port}`;
    this.stderr = '';
    this.stdout = '';
    this.seenPids = new Set();
    this.logChecked = false;
  }

  async start(readyTimeoutMs) {
    const argv = [...this.wrap, SLUICE_BIN, 'serve', '-c', this.configPath];
    this.proc = spawn(argv[0], argv.slice(1), { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.pid = this.proc.pid;
    livePids.add(this.pid);
    this.proc.stdout.on('data', (c) => { this.stdout += c; });
    this.proc.stderr.on('data', (c) => { this.stderr += c; });
    this.exited = new Promise((r) => this.proc.on('exit', (code, signal) => {
      livePids.delete(this.pid);
      this.exitInfo = { code, signal, at: Date.now() };
      r(this.exitInfo);
    }));
    try {
      await waitFor(async () => {
        if (this.exitInfo) {
          throw Object.assign(new Error(`sluice exited during start-up (code ${this.exitInfo.code}, signal ${this.exitInfo.signal})`), { fatal: true });
        }
        if (!fs.existsSync(this.pidFile)) return false;
        if (!(await portAccepts(this.port))) return false;
        const r = await request(`${this.root}/healthz`, { timeoutMs: 1000 });
        return r.status === 200;
      }, { timeoutMs: readyTimeoutMs, intervalMs: 50, msg: `sluice ready on port ${this.port}` });
    } catch (e) {
      const logs = `\n--- stderr ---\n${this.stderr.slice(-3000)}\n--- error.log ---\n${this.readLog().slice(-3000)}`;
      await this.kill();
      throw new Error(e.message + logs);
    }
    this.workerPids();
  }

  readLog() {
    try { return fs.readFileSync(this.errorLog, 'utf8'); } catch { return ''; }
  }

  // Every log file that may hold this instance's lines (USR1 tests rename).
  allLogs() {
    let out = '';
    for (const f of fs.readdirSync(path.dirname(this.errorLog))) {
      if (f.startsWith(path.basename(this.errorLog))) {
        try { out += fs.readFileSync(path.join(path.dirname(this.errorLog), f), 'utf8'); } catch { /* raced */ }
      }
    }
    return out;
  }

  workerPids() {
    const pids = childPids(this.pid);
    for (const p of pids) { this.seenPids.add(p); livePids.add(p); }
    return pids;
  }

  // Waits until the master has exactly `count` live children, none of them in
  // `notIn`. Returns the new pid list.
  async waitWorkers({ count = this.cfg.server.workers, notIn = [], timeoutMs = 10000 } = {}) {
    const old = new Set(notIn);
    let last = [];
    try {
      return await waitFor(() => {
        last = this.workerPids();
        return last.length === count && last.every((p) => !old.has(p)) ? last : null;
      }, { timeoutMs, intervalMs: 50, msg: `${count} workers` });
    } catch (e) {
      throw new Error(`${e.message}; last seen children ${JSON.stringify(last)}, excluded ${JSON.stringify([...old])}`);
    }
  }

  signal(sig) { process.kill(this.pid, sig); }

  async writeConfig(cfgOrText) {
    const text = typeof cfgOrText === 'string' ? cfgOrText : toYaml(cfgOrText);
    // write + rename so the master never reads a half-written file
    const tmp = this.configPath + '.tmp';
    await fsp.writeFile(tmp, text);
    await fsp.rename(tmp, this.configPath);
    if (typeof cfgOrText !== 'string') this.cfg = cfgOrText;
  }

  client(opts = {}) {
    return new OpenAI({ baseURL: this.baseURL, apiKey: this.key, maxRetries: 0, timeout: 15000, ...opts });
  }

  // Authenticated request on a fresh connection, relative to the root.
  req(pathname, opts = {}) {
    const headers = { authorization: `Bearer ${this.key}`, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers };
    return request(this.root + pathname, { ...opts, headers });
  }

  chat(body, opts = {}) {
    return this.req('/v1/chat/completions', { method: 'POST', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...body }, ...opts });
  }

  logProblems(text, where) {
    const problems = [];
    for (const line of text.split('\n')) {
      if (BAD_LOG.some((re) => re.test(line)) && !this.allowLog.some((re) => re.test(line))) {
        problems.push(`${where}: ${line}`);
      }
    }
    return problems;
  }

  // Throws when the error log or stderr holds alert/emerg/sanitizer lines.
  checkLogs() {
    const problems = [...this.logProblems(this.allLogs(), 'error.log'), ...this.logProblems(this.stderr, 'stderr')];
    if (problems.length) {
      throw new Error(`bad log lines from sluice (${this.dir}):\n${problems.slice(0, 20).join('\n')}`);
    }
  }

  async kill() {
    this.workerPids();
    for (const p of [this.pid, ...this.seenPids]) {
      try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      livePids.delete(p);
    }
    await withTimeout(this.exited, 3000, 'sluice SIGKILL').catch(() => {});
  }

  // SIGTERM, wait for exit (stop_timeout + 2 s), kill leftovers, check logs.
  async stop() {
    let failure;
    if (!this.exitInfo) {
      this.workerPids();
      this.signal('SIGTERM');
      try {
        await withTimeout(this.exited, 5000, 'sluice SIGTERM exit');
      } catch (e) {
        failure = e;
      }
    }
    const leftovers = [...this.seenPids].filter(pidAlive);
    await this.kill();
    if (failure) throw failure;
    if (leftovers.length) throw new Error(`worker processes left after master exit: ${leftovers.join(', ')}`);
    this.checkLogs();
  }
}

// ------------------------------------------------------------ test stack

// One temp dir + mock + sluice. stop() tears down in the right order and
// reports every problem.
export async function startStack({ name, mockOpts = {}, config, allowLog, env } = {}) {
  const dir = await makeTmpDir(name);
  const mock = await startMock(mockOpts);
  let sluice;
  try {
    sluice = await startSluice({ dir, mock, config, allowLog, env });
  } catch (e) {
    await mock.stop().catch(() => {});
    throw e;
  }
  return {
    dir, mock, sluice,
    async stop() {
      const errs = [];
      await sluice.stop().catch((e) => errs.push(e));
      await mock.stop().catch((e) => errs.push(e));
      if (errs.length) throw errs[0];
      if (!process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
}

// ---------------------------------------------------------------- errors

// Asserts the OpenAI error shape and returns the error object.
export function errorShape(json) {
  if (!json || typeof json !== 'object' || !json.error || typeof json.error !== 'object') {
    throw new Error(`not an OpenAI error body: ${JSON.stringify(json)}`);
  }
  const e = json.error;
  for (const k of ['message', 'type', 'param', 'code']) {
    if (!(k in e)) throw new Error(`error body lacks "${k}": ${JSON.stringify(json)}`);
  }
  if (typeof e.message !== 'string' || !e.message) throw new Error(`error.message empty: ${JSON.stringify(json)}`);
  return e;
}

// Collects a chat stream from the SDK: {chunks, times (ms since start), content, toolCalls, usage, finishReason}.
export async function collectStream(stream, { onChunk } = {}) {
  const t0 = Date.now();
  const out = { chunks: [], times: [], content: '', toolCalls: [], usage: null, finishReason: null };
  for await (const chunk of stream) {
    out.chunks.push(chunk);
    out.times.push(Date.now() - t0);
    if (chunk.usage) out.usage = chunk.usage;
    for (const ch of chunk.choices || []) {
      const d = ch.delta || {};
      if (typeof d.content === 'string') out.content += d.content;
      for (const tc of d.tool_calls || []) {
        const slot = (out.toolCalls[tc.index ?? 0] ||= { id: '', type: '', function: { name: '', arguments: '' } });
        if (tc.id) slot.id = tc.id;
        if (tc.type) slot.type = tc.type;
        if (tc.function?.name) slot.function.name += tc.function.name;
        if (tc.function?.arguments) slot.function.arguments += tc.function.arguments;
      }
      if (ch.finish_reason) out.finishReason = ch.finish_reason;
    }
    if (onChunk) await onChunk(chunk, out);
  }
  return out;
}

// ------------------------------------------------------- raw connection

// A persistent raw TCP connection for keep-alive, pipelining and timeouts.
export class RawConn {
  static async open(port, host = '127.0.0.1', timeoutMs = 3000) {
    const c = new RawConn();
    c.buf = Buffer.alloc(0);
    c.closed = false;
    c.waiters = [];
    c.sock = net.connect({ port, host });
    c.sock.on('data', (d) => { c.buf = Buffer.concat([c.buf, d]); c.wake(); });
    c.sock.on('close', () => { c.closed = true; c.closedAt = Date.now(); c.wake(); });
    c.sock.on('error', (e) => { c.error = e; });
    await withTimeout(new Promise((res, rej) => { c.sock.once('connect', res); c.sock.once('error', rej); }), timeoutMs, 'connect');
    return c;
  }

  wake() { const w = this.waiters; this.waiters = []; w.forEach((f) => f()); }

  write(data) { this.sock.write(data); }

  // Resolves when pred(this) is truthy; rejects after timeoutMs.
  until(pred, timeoutMs, what) {
    return withTimeout(new Promise((resolve, reject) => {
      const check = () => {
        let v;
        try { v = pred(this); } catch (e) { reject(e); return; }
        if (v) resolve(v); else this.waiters.push(check);
      };
      check();
    }), timeoutMs, what);
  }

  // Waits for n complete responses (counting from the start of the
  // connection, interim 1xx included) and returns them all.
  async responses(n, timeoutMs = 5000, opts) {
    return this.until(() => {
      const { responses } = parseResponses(this.buf, { ...opts, closed: this.closed });
      if (responses.length >= n) return responses;
      if (this.closed) throw new Error(`connection closed after ${responses.length} responses: ${this.buf.toString('latin1').slice(0, 500)}`);
      return null;
    }, timeoutMs, `${n} responses`);
  }

  waitClose(timeoutMs = 5000) { return this.until((c) => c.closed, timeoutMs, 'server close'); }

  text() { return this.buf.toString('latin1'); }

  destroy() { this.sock.destroy(); }
}

// ------------------------------------------------------------- load loop

// Runs `clients` concurrent loops of non-streamed chats against sluice until
// stop() is called, maxRequests are done or maxMs passed. Raw clients use a
// fresh connection per request; `sdkClients` use the SDK (keep-alive, with
// the SDK's default retries, as real applications run it). Returns a handle:
// {stats, stop(): Promise<{ok, failed, errors, exhausted, ms}>}. Each client
// pauses pauseMs between requests, which caps the rate so that a count
// limit sized for the test's duration is not used up early on fast machines.
export function loadLoop(sluice, { clients = 3, sdkClients = 1, maxRequests = 1500, maxMs = 25000, pauseMs = 5, headers = {} } = {}) {
  const t0 = Date.now();
  const stats = { ok: 0, failed: 0, errors: [], exhausted: false };
  let stopped = false;
  let issued = 0;
  const more = () => {
    if (stopped) return false;
    if (issued >= maxRequests || Date.now() - t0 >= maxMs) { stats.exhausted = true; return false; }
    return true;
  };
  const fail = (what) => { stats.failed++; if (stats.errors.length < 20) stats.errors.push(`${Date.now() - t0}ms: ${what}`); };
  const raw = async (id) => {
    while (more()) {
      issued++;
      const text = `load ${id} ${issued}`;
      try {
        const r = await sluice.chat({ messages: [{ role: 'user', content: text }] }, { headers, timeoutMs: 10000 });
        if (r.status === 200 && JSON.parse(r.body).choices[0].message.content === `mock reply: ${text}`) stats.ok++;
        else fail(`status ${r.status}: ${r.body.slice(0, 200)}`);
      } catch (e) { fail(`raw: ${e.code || ''} ${e.message}`); }
      if (pauseMs) await sleep(pauseMs);
    }
  };
  const sdk = async (id) => {
    const c = sluice.client({ maxRetries: 2, timeout: 10000 });
    while (more()) {
      issued++;
      const text = `sdk ${id} ${issued}`;
      try {
        const r = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] }, { headers });
        if (r.choices[0].message.content === `mock reply: ${text}`) stats.ok++;
        else fail(`sdk content ${r.choices[0].message.content}`);
      } catch (e) { fail(`sdk: ${e.status || ''} ${e.message} ${e.cause ? e.cause.message : ''}`); }
      if (pauseMs) await sleep(pauseMs);
    }
  };
  const all = Promise.all([
    ...Array.from({ length: clients }, (_, i) => raw(i)),
    ...Array.from({ length: sdkClients }, (_, i) => sdk(i)),
  ]);
  return {
    stats,
    async stop() {
      stopped = true;
      await withTimeout(all, 15000, 'load loop stop');
      return { ...stats, ms: Date.now() - t0 };
    },
  };
}

// ------------------------------------------------------- storage helpers

// Runs `sluice ARGS... -c <config>` with the instance's environment (plus
// env), stdin from input. Resolves run()'s {code, stdout, stderr, timedOut}.
export function sluiceCli(sluice, args, { env = {}, input, timeoutMs = 10000 } = {}) {
  const argv = [...args, '-c', sluice.configPath];
  if (input === undefined) return run(SLUICE_BIN, argv, { env: { ...sluice.env, ...env }, timeoutMs });
  return new Promise((resolve) => {
    let timedOut = false;
    const child = execFile(SLUICE_BIN, argv, { env: { ...sluice.env, ...env }, encoding: 'utf8', maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        clearTimeout(timer);
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0,
          signal: err ? err.signal : null, stdout, stderr, timedOut });
      });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

// `sluice keys create --json` with extra options; resolves the parsed JSON
// ({id, key, name, ...}); throws with the CLI's stderr when it fails.
export async function createKey(sluice, name, opts = []) {
  const r = await sluiceCli(sluice, ['keys', 'create', '--name', name, ...opts, '--json']);
  if (r.code !== 0) throw new Error(`keys create ${name} exited ${r.code}: ${r.stderr}`);
  const j = JSON.parse(r.stdout);
  if (typeof j.key !== 'string' || !j.key.startsWith('sk-sluice-') || !j.id) {
    throw new Error(`keys create --json printed no id/key: ${r.stdout}`);
  }
  return j;
}

// `sluice usage --by BY --since SINCE --format json`, parsed (an array).
export async function usageJson(sluice, by = 'key', since = 'all') {
  const r = await sluiceCli(sluice, ['usage', '--by', by, '--since', since, '--format', 'json']);
  if (r.code !== 0) throw new Error(`usage --by ${by} exited ${r.code}: ${r.stderr}`);
  const j = JSON.parse(r.stdout);
  if (!Array.isArray(j)) throw new Error(`usage --format json is not an array: ${r.stdout.slice(0, 300)}`);
  return j;
}

// Exact USD decimal string ("0.004000000") -> integer nano-USD (BigInt).
export function usdToNano(s) {
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(String(s));
  if (!m) throw new Error(`not a USD amount: ${s}`);
  return BigInt(m[1]) * 1000000000n + BigInt((m[2] || '').padEnd(9, '0'));
}

// A pricing file at file: models maps "PREFIX/MODEL" to {input, output, ...}
// (USD per 1M tokens). Returns file.
export async function writePricing(file, models) {
  let text = 'models:\n';
  for (const [k, v] of Object.entries(models)) {
    const fields = Object.entries(v).map(([f, x]) => `${f}: ${x}`).join(', ');
    text += `  ${JSON.stringify(k)}: {${fields}}\n`;
  }
  await fsp.writeFile(file, text);
  return file;
}

// Starts a stopped (or killed) Sluice again with the same config and port.
export async function restartSluice(sluice, readyTimeoutMs = 10000) {
  if (!sluice.exitInfo) throw new Error('restartSluice: the instance is still running');
  sluice.exitInfo = undefined;
  sluice.seenPids = new Set();
  await sluice.start(readyTimeoutMs);
  return sluice;
}

// A 64-hex-digit master key for the vault.
export function randomMasterKey() {
  return crypto.randomBytes(32).toString('hex');
}
