// TLS to the upstream: a mock with a certificate from a private CA; sluice
// trusts it through ca_file, and refuses it when given a different CA.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import { makeTmpDir, makeCerts, startMock, startSluice, errorShape, collectStream, waitFor } from '../lib/harness.mjs';

describe('upstream TLS', () => {
  let dir, certs, mock, good, bad;
  const stopped = [];

  before(async () => {
    dir = await makeTmpDir('tls');
    certs = await makeCerts(dir);
    mock = await startMock({ tls: certs });
    good = await startSluice({
      dir, mock, name: 'good',
      config: (cfg) => {
        cfg.providers.mock.base_url = `https://localhost:${mock.port}/v1`;
        cfg.providers.mock.ca_file = certs.ca;
        cfg.providers.byip = { ...cfg.providers.mock, base_url: `https://127.0.0.1:${mock.port}/v1` };
        cfg.models['by-ip'] = { targets: ['byip/gpt-4o-mini-2024-07-18'] };
        return cfg;
      },
    });
    stopped.push(good);
    bad = await startSluice({
      dir, mock, name: 'bad',
      config: (cfg) => {
        cfg.providers.mock.base_url = `https://localhost:${mock.port}/v1`;
        cfg.providers.mock.ca_file = certs.otherCa;
        return cfg;
      },
    });
    stopped.push(bad);
  });

  after(async () => {
    const errs = [];
    for (const s of stopped) await s.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
    if (dir && !process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('talks to an https upstream verified by ca_file', async () => {
    const client = good.client();
    const { data, response } = await client.chat.completions.create({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'over tls' }],
    }).withResponse();
    assert.equal(data.choices[0].message.content, 'mock reply: over tls');
    assert.equal(response.headers.get('x-sluice-provider'), 'mock');
    const up = (await mock.requests()).find((q) => q.rawBody.includes('over tls'));
    assert.ok(up, 'the TLS mock saw the request');
    assert.equal(up.headers.authorization, `Bearer ${mock.apiKey}`);
    assert.match(up.headers.host || '', /^localhost(:\d+)?$/, `Host header ${up.headers.host}`);
  });

  it('streams over TLS', async () => {
    const stream = await good.client().chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'tls stream' }], stream: true },
      { headers: { 'x-mock-chunks': '4', 'x-mock-chunk-delay-ms': '50' } });
    const s = await collectStream(stream);
    assert.equal(s.content, 'mock reply: tls stream');
  });

  it('verifies an IP address against the certificate SAN', async () => {
    const r = await good.chat({ model: 'by-ip', messages: [{ role: 'user', content: 'by ip' }] });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().choices[0].message.content, 'mock reply: by ip');
  });

  it('reuses upstream TLS connections', async () => {
    const before = await mock.stats();
    for (let i = 0; i < 5; i++) {
      const r = await good.chat({ messages: [{ role: 'user', content: `reuse ${i}` }] });
      assert.equal(r.status, 200);
    }
    const afterStats = await mock.stats();
    // each worker keeps its own pool: at most one new connection per worker, plus the stats call's own
    assert.ok(afterStats.connections - before.connections < 5,
      `5 sequential requests opened ${afterStats.connections - before.connections} upstream connections`);
  });

  it('refuses an upstream whose certificate does not chain to ca_file: 502, and the log says why', async () => {
    const r = await bad.chat({ messages: [{ role: 'user', content: 'untrusted' }] });
    assert.equal(r.status, 502, r.body);
    errorShape(r.json());
    const up = (await mock.requests()).find((q) => q.rawBody.includes('untrusted'));
    assert.equal(up, undefined, 'no request may reach an unverified upstream');
    const line = await waitFor(() => bad.readLog().split('\n').find((l) => /certif|verif|x509/i.test(l) && /\[(error|warn|crit|notice|info)\]/.test(l)),
      { timeoutMs: 3000, msg: 'a log line naming the verification error' });
    assert.match(line, /verif|not correctly signed|trusted|unknown ca|issuer/i, `log line: ${line}`);
  });
});
