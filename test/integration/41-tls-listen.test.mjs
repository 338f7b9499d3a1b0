// HTTPS on the client listener: one plain and one TLS address, certificates
// from a test CA (test/lib/certs.sh). The OpenAI SDK (an https agent that
// trusts the CA) and curl --cacert talk to it; TLS 1.2+, ALPN http/1.1; a
// plain HTTP client on the TLS port gets a 400 and a clean close; SIGHUP
// re-reads the certificates, and a bad one keeps the old generation.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import OpenAI from 'openai';
import {
  makeTmpDir, makeCerts, startMock, startSluice, freePort, agentFetch, collectStream, curl,
  parseResponses, waitFor, withTimeout, errorShape,
} from '../lib/harness.mjs';

const CHAT = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'over https' }] });

describe('TLS on the client listener', () => {
  let dir, certs, certs2, mock, sluice, tlsPort, adminPort, certFile, keyFile, ca, ca2;

  before(async () => {
    dir = await makeTmpDir('tls-listen');
    certs = await makeCerts(path.join(dir, 'ca1'));
    certs2 = await makeCerts(path.join(dir, 'ca2'));
    ca = fs.readFileSync(certs.ca);
    ca2 = fs.readFileSync(certs2.ca);
    // the files sluice reads; a reload test replaces them
    certFile = path.join(dir, 'live.pem');
    keyFile = path.join(dir, 'live.key');
    await fsp.copyFile(certs.cert, certFile);
    await fsp.copyFile(certs.key, keyFile);
    mock = await startMock();
    tlsPort = await freePort();
    adminPort = await freePort();
    sluice = await startSluice({
      dir, mock, name: 'sluice',
      // the reload tests provoke config errors on purpose
      allowLog: [/\.yaml:\d+:\d+/],
      config: (cfg, { dir: sub, port }) => {
        // server.tls applies to every listen address that does not say tls: false
        cfg.server.tls = { cert: certFile, key: keyFile, session_timeout: '2h' };
        cfg.server.listen = [{ address: `127.0.0.1:${port}`, tls: false }, { address: `127.0.0.1:${tlsPort}` }];
        // the admin listener takes only its own tls
        cfg.server.admin_listen = {
          address: `127.0.0.1:${adminPort}`, tls: { cert: certFile, key: keyFile, session_tickets: false },
        };
        cfg.server.header_timeout = '1s';
        cfg.server.access_log = path.join(sub, 'access.log');
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

  const root = () => `https://localhost:${tlsPort}`;
  const sdk = (agent) => new OpenAI({
    baseURL: `${root()}/v1`, apiKey: sluice.key, maxRetries: 0, timeout: 15000, fetch: agentFetch(agent),
  });

  // Opens a TLS connection; resolves the socket once it is secure (or rejects).
  function tlsConnect(opts = {}) {
    return withTimeout(new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', ca, ...opts });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    }), 5000, 'TLS connect');
  }

  it('serves the OpenAI SDK over HTTPS (an https agent trusting the test CA), JSON and streams', async () => {
    let connections = 0;
    const agent = new https.Agent({ ca, keepAlive: true });
    const create = agent.createConnection.bind(agent);
    agent.createConnection = (...a) => { connections++; return create(...a); };
    try {
      const client = sdk(agent);
      const { data, response } = await client.chat.completions.create({
        model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello over tls' }],
      }).withResponse();
      assert.equal(data.choices[0].message.content, 'mock reply: hello over tls');
      assert.equal(response.headers.get('x-sluice-provider'), 'mock');
      assert.match(response.headers.get('x-request-id') || '', /\S/);
      const s = await collectStream(await client.chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'stream over tls' }], stream: true },
        { headers: { 'x-mock-chunks': '4', 'x-mock-chunk-delay-ms': '20' } }));
      assert.equal(s.content, 'mock reply: stream over tls');
      assert.equal(s.finishReason, 'stop');
      const models = await client.models.list();
      assert.ok(models.data.some((m) => m.id === 'gpt-4o-mini'));
      assert.equal(connections, 1, 'three requests on one kept-alive TLS connection');
      // the key is refused over TLS as over plain HTTP
      await assert.rejects(new OpenAI({ baseURL: `${root()}/v1`, apiKey: 'sk-wrong', maxRetries: 0, fetch: agentFetch(agent) })
        .models.list(), (e) => e.status === 401);
    } finally { agent.destroy(); }
  });

  it('answers curl --cacert; curl without the CA refuses the certificate', async () => {
    const r = await curl(['-sS', '--cacert', certs.ca, '-w', '\\n%{http_code} %{http_version}', `${root()}/healthz`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\n200 1\.1$/);
    const c = await curl(['-sS', '--cacert', certs.ca, '-H', `Authorization: Bearer ${sluice.key}`,
      '-H', 'Content-Type: application/json', '--data-binary', CHAT, `${root()}/v1/chat/completions`]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(JSON.parse(c.stdout).choices[0].message.content, 'mock reply: over https');
    const byIp = await curl(['-sS', '--cacert', certs.ca, `https://127.0.0.1:${tlsPort}/healthz`]);
    assert.equal(byIp.code, 0, byIp.stderr);
    const untrusted = await curl(['-sS', '--cacert', certs.otherCa, `${root()}/healthz`]);
    assert.equal(untrusted.code, 60, `curl trusting another CA: ${untrusted.code} ${untrusted.stderr}`);
  });

  it('serves the admin listener over its own TLS', async () => {
    const r = await curl(['-sS', '--cacert', certs.ca, '-o', '/dev/null', '-w', '%{http_code}',
      `https://localhost:${adminPort}/metrics`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^(401|403)$/, 'the admin API answers (and wants its key)');
    const plain = await curl(['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${adminPort}/metrics`]);
    assert.equal(plain.stdout, '400', plain.stderr);
  });

  it('negotiates TLS 1.2+ with ALPN http/1.1 and refuses TLS 1.1', async () => {
    const s = await tlsConnect({ ALPNProtocols: ['h2', 'http/1.1'] });
    try {
      assert.equal(s.alpnProtocol, 'http/1.1');
      assert.ok(['TLSv1.2', 'TLSv1.3'].includes(s.getProtocol()), s.getProtocol());
      const cipher = s.getCipher();
      assert.match(cipher.standardName || cipher.name, /GCM|CHACHA20/, JSON.stringify(cipher));
    } finally { s.destroy(); }
    await assert.rejects(tlsConnect({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
      /protocol version|alert|handshake/i);
    // a client that only speaks CBC suites finds nothing it may use
    await assert.rejects(tlsConnect({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA' }),
      /handshake|alert|cipher/i);
  });

  it('answers pipelined requests and a half-closed request over one TLS connection', async () => {
    const s = await tlsConnect();
    let buf = Buffer.alloc(0);
    const closed = new Promise((r) => s.on('close', r));
    s.on('data', (d) => { buf = Buffer.concat([buf, d]); });
    const auth = `Authorization: Bearer ${sluice.key}\r\n`;
    s.write(`GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n` +
      `POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n${auth}Content-Type: application/json\r\nContent-Length: ${CHAT.length}\r\n\r\n${CHAT}` +
      `GET /v1/models HTTP/1.1\r\nHost: t\r\n${auth}\r\n`);
    s.end(); // close_notify + FIN after the requests: the answers are still wanted
    await withTimeout(closed, 10000, 'server close after the answers');
    const final = parseResponses(buf).responses.filter((r) => r.status >= 200);
    assert.deepEqual(final.map((r) => r.status), [200, 200, 200], buf.toString('latin1').slice(0, 600));
    assert.equal(JSON.parse(final[1].body).choices[0].message.content, 'mock reply: over https');
  });

  it('gives a plain HTTP client on the TLS port a 400 and a clean close', async () => {
    const sock = net.connect({ host: '127.0.0.1', port: tlsPort });
    let buf = Buffer.alloc(0);
    let error = null;
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
    sock.on('error', (e) => { error = e; });
    const ended = new Promise((r) => sock.on('end', r));
    const closed = new Promise((r) => sock.on('close', r));
    await withTimeout(new Promise((r) => sock.once('connect', r)), 3000, 'connect');
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: ${CHAT.length}\r\n\r\n${CHAT}`);
    await withTimeout(ended, 5000, 'FIN from the server');
    sock.end();
    await withTimeout(closed, 5000, 'close');
    assert.equal(error, null, `the connection ended with ${error}`);
    const [r] = parseResponses(buf).responses;
    assert.equal(r.status, 400, buf.toString('latin1'));
    assert.equal(r.headers.connection, 'close');
    assert.equal(errorShape(JSON.parse(r.body)).code, 'https_required');
    const c = await curl(['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${tlsPort}/healthz`]);
    assert.equal(c.stdout, '400', c.stderr);
  });

  it('closes a connection that does not complete its handshake within header_timeout', async () => {
    const sock = net.connect({ host: '127.0.0.1', port: tlsPort });
    sock.on('error', () => {});
    const closed = new Promise((r) => sock.on('close', r));
    await withTimeout(new Promise((r) => sock.once('connect', r)), 3000, 'connect');
    sock.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40])); // a ClientHello record that never comes
    await withTimeout(closed, 5000, 'close of a stalled handshake (header_timeout 1s)');
    await waitFor(() => /timed out in the TLS handshake/.test(sluice.readLog()), { timeoutMs: 3000, msg: 'the timeout in the log' });
  });

  it('writes the access log for TLS requests', async () => {
    const r = await curl(['-sS', '--cacert', certs.ca, '-H', 'x-request-id: tls-access-log-1', `${root()}/healthz`]);
    assert.equal(r.code, 0, r.stderr);
    const file = sluice.cfg.server.access_log;
    const line = await waitFor(() => fs.readFileSync(file, 'utf8').split('\n').find((l) => l.includes('tls-access-log-1')),
      { timeoutMs: 3000, msg: 'the access log line' });
    assert.match(line, /"GET \/healthz HTTP\/1\.1" 200 /);
  });

  // Connects, waits for the session (with its ticket) the server sent; resolves
  // { reused, session } and closes the connection.
  function tlsSession(port, session) {
    return withTimeout(new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, session });
      let got = null;
      s.once('session', (buf) => { got = buf; });
      s.once('secureConnect', () => {
        // the ticket follows the handshake; one round trip makes sure it arrived
        s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      });
      s.on('data', () => {});
      s.once('end', () => resolve({ reused: s.isSessionReused(), session: got }));
      s.once('error', reject);
    }), 5000, 'TLS session');
  }

  it('resumes sessions from tickets on every worker and across a reload; session_tickets: false does not', async () => {
    const first = await tlsSession(tlsPort);
    assert.equal(first.reused, false);
    assert.ok(first.session, 'the server sent a session ticket');
    // reuse_port spreads these over both workers: every one resumes
    for (let i = 0; i < 12; i++) {
      const r = await tlsSession(tlsPort, first.session);
      assert.equal(r.reused, true, `connection ${i} resumed`);
    }
    const pids0 = sluice.workerPids();
    sluice.signal('SIGHUP');
    await sluice.waitWorkers({ notIn: pids0, timeoutMs: 12000 });
    for (let i = 0; i < 4; i++) {
      assert.equal((await tlsSession(tlsPort, first.session)).reused, true, `after the reload, connection ${i}`);
    }
    // the ticket's lifetime hint is session_timeout
    const sc = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${tlsPort}`, '-CAfile', certs.ca,
      '-servername', 'localhost'], { input: '', encoding: 'utf8', timeout: 10000 });
    assert.match(sc.stdout, /TLS session ticket lifetime hint: 7200 \(seconds\)/, sc.stdout + sc.stderr);
    // a ticket from nowhere: a full handshake, not an error
    const forged = Buffer.from(first.session);
    forged[forged.length - 20] ^= 0xff;
    const r = await tlsSession(tlsPort, forged).catch((e) => ({ error: e }));
    assert.equal(r.error, undefined, String(r.error));
    // the admin listener has tickets off: it never resumes
    const admin = await tlsSession(adminPort);
    assert.equal((await tlsSession(adminPort, admin.session)).reused, false);
  });

  it('re-reads the certificate on SIGHUP; a bad one keeps the old generation with file:line:col', async () => {
    const get = (caPem) => new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', path: '/healthz', ca: caPem, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      }).on('error', reject);
    });
    assert.equal(await get(ca), 200);
    let pids0 = sluice.workerPids();
    await fsp.copyFile(certs2.cert, certFile + '.tmp');
    await fsp.copyFile(certs2.key, keyFile + '.tmp');
    await fsp.rename(certFile + '.tmp', certFile);
    await fsp.rename(keyFile + '.tmp', keyFile);
    sluice.signal('SIGHUP');
    await sluice.waitWorkers({ notIn: pids0, timeoutMs: 12000 });
    assert.equal(await get(ca2), 200, 'the new certificate is served');
    await assert.rejects(get(ca), /self.signed|unable to verify|certificate/i);

    // a certificate file that is not PEM: the reload is refused, the old one stays
    pids0 = sluice.workerPids();
    const logBefore = sluice.readLog().length;
    await fsp.writeFile(certFile, 'not a certificate\n');
    sluice.signal('SIGHUP');
    const base = path.basename(sluice.configPath).replace('.', '\\.');
    const line = await waitFor(() => sluice.readLog().slice(logBefore).split('\n').find((l) => new RegExp(`${base}:\\d+:\\d+`).test(l)),
      { timeoutMs: 5000, msg: 'a FILE:LINE:COL line in error.log' });
    assert.match(line, /certificate/, line);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(sluice.workerPids(), pids0, 'the old generation runs untouched');
    assert.equal(await get(ca2), 200);
    await fsp.copyFile(certs2.cert, certFile);
  });
});
