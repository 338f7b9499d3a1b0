// The request hot path's shortcuts keep their promises (issue 11's speed
// work): the connection timer is kept lazily (re-armed only when a deadline
// moves earlier), so a keep-alive connection outlives header_timeout and a
// slow request on it still gets its 408 at header_timeout; and the key
// lookup's per-worker cache (text -> id) still reads the key's record on
// every request, so a change made by the CLI in another process applies to
// the next request on a connection that already used the key. A chat answer
// that goes to a chat client as the provider's bytes is read only for its
// usage (its choices skimmed, not parsed): the bytes arrive unchanged and
// the ledger row has the answer's tokens, whatever its text holds.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, RawConn, createKey, sluiceCli, sleep, usageJson } from '../lib/harness.mjs';

const CHAT = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hot' }] });
const post = (key) =>
  `POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${key}\r\n` +
  `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(CHAT)}\r\n\r\n${CHAT}`;

describe('hot path: lazy connection timer, cached key lookup', () => {
  let stack, sluice;

  before(async () => {
    stack = await startStack({
      name: 'hotpath',
      config: { server: { workers: 1, header_timeout: '1s', keepalive_timeout: '20s' } },
    });
    ({ sluice } = stack);
  });
  after(async () => { if (stack) await stack.stop(); });

  it('a keep-alive connection idle past header_timeout serves its next request', async () => {
    const c = await RawConn.open(sluice.port);
    try {
      c.write(post(sluice.key));
      const [r1] = await c.responses(1, 10000);
      assert.equal(r1.status, 200, r1.body);
      // the timer armed for the first request's header deadline fires in
      // this pause: it must re-arm for the idle deadline, not close
      await sleep(1800);
      assert.equal(c.closed, false, 'closed while idle, before keepalive_timeout');
      c.write(post(sluice.key));
      const rs = await c.responses(2, 10000);
      assert.equal(rs[1].status, 200, rs[1].body);
    } finally { c.destroy(); }
  });

  it('slow headers after an idle pause get 408 at header_timeout, not at keepalive_timeout', async () => {
    const c = await RawConn.open(sluice.port);
    try {
      c.write(post(sluice.key));
      const [r1] = await c.responses(1, 10000);
      assert.equal(r1.status, 200, r1.body);
      await sleep(1500);
      // the idle deadline (20 s) is armed; the header deadline (1 s) is earlier
      c.write('GET /healthz HTTP/1.1\r\nHost: t\r\n');
      const rs = await c.responses(2, 6000);
      assert.equal(rs[1].status, 408);
    } finally { c.destroy(); }
  });

  it('a passed-through answer keeps its bytes and its usage reaches the ledger', async () => {
    // brackets, quotes, escapes and non-ASCII in the text the mock echoes back
    const text = 'skim ] } [{ "quoted" \\ back\\slash \u00e9 \u{1F600} ]] }} end';
    const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] });
    const c = await RawConn.open(sluice.port);
    let r;
    try {
      c.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${sluice.key}\r\n` +
        `x-request-id: skim-1\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      [r] = await c.responses(1, 10000);
    } finally { c.destroy(); }
    assert.equal(r.status, 200, r.body);
    const a = JSON.parse(r.body);
    assert.equal(a.choices[0].message.content, `mock reply: ${text}`);
    assert.equal(a.object, 'chat.completion');
    // the provider's own bytes: the gateway's chat encoder writes neither refusal nor system_fingerprint
    assert.equal(r.body.includes('"refusal":null},"logprobs":null'), true, r.body);
    assert.equal(r.body.endsWith(',"system_fingerprint":"fp_mock"}'), true, r.body);
    assert.ok(a.usage.prompt_tokens > 10 && a.usage.completion_tokens > 10, JSON.stringify(a.usage));
    const row = (await usageJson(sluice, 'request')).find((x) => x.id === 'skim-1');
    assert.ok(row, 'no ledger row for skim-1');
    assert.equal(row.prompt_tokens, a.usage.prompt_tokens);
    assert.equal(row.completion_tokens, a.usage.completion_tokens);
  });

  it('a key update by the CLI applies to the next request of a connection that used the key', async () => {
    const k = await createKey(sluice, 'cached-key');
    const c = await RawConn.open(sluice.port);
    try {
      c.write(post(k.key));
      c.write(post(k.key));
      const rs = await c.responses(2, 10000);
      assert.deepEqual(rs.map((r) => r.status), [200, 200]);
      const up = await sluiceCli(sluice, ['keys', 'update', k.id, '--models', 'no-such-model']);
      assert.equal(up.code, 0, `keys update: ${up.stderr}`);
      c.write(post(k.key));
      const [, , r3] = await c.responses(3, 10000);
      assert.ok(r3.status === 403 || r3.status === 404, `after the update: ${r3.status} ${r3.body}`);
      const rv = await sluiceCli(sluice, ['keys', 'revoke', k.id]);
      assert.equal(rv.code, 0, `keys revoke: ${rv.stderr}`);
      c.write(post(k.key));
      const rs4 = await c.responses(4, 10000);
      assert.equal(rs4[3].status, 401, rs4[3].body);
      assert.match(rs4[3].body, /revoked/);
    } finally { c.destroy(); }
  });
});
