// Issued client keys from outside: `sluice keys create` makes a key the SDK
// can use at once, `keys revoke` shuts it out of every worker within a second
// without a reload, --expires and --models are enforced, the key text is
// shown once and never listed, and keys and the ledger survive a restart.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import OpenAI from 'openai';
import {
  startStack, request, errorShape, waitFor, sluiceCli, createKey, usageJson, restartSluice,
} from '../lib/harness.mjs';

describe('client keys', () => {
  let stack, sluice, revokedKey;

  // a static key spelled like a stored one is still a static key
  const prefixedStatic = `sk-sluice-static-${Math.random().toString(16).slice(2)}`;

  before(async () => {
    stack = await startStack({
      name: 'keys',
      config: {
        auth: { static_keys: ['env:SLUICE_TEST_KEY', 'env:SLUICE_PREFIXED_KEY'] },
        models: { 'other-model': { targets: ['mock/other-target'] } },
      },
      env: { SLUICE_PREFIXED_KEY: prefixedStatic },
    });
    ({ sluice } = stack);
  });
  after(async () => { if (stack) await stack.stop(); });

  const sdk = (key) => new OpenAI({ baseURL: sluice.baseURL, apiKey: key, maxRetries: 0, timeout: 10000 });

  // One chat with key on a fresh connection.
  const chatWith = (key, body = {}, headers = {}) => request(`${sluice.root}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'key test' }], ...body },
    timeoutMs: 5000,
  });

  // The worker that answered: the first 16 hex digits of a generated request id.
  const workerOf = (r) => String(r.headers['x-request-id'] || '').slice(0, 16);

  function assert401(r, what) {
    assert.equal(r.status, 401, `${what}: ${r.status} ${r.body}`);
    assert.equal(errorShape(r.json()).code, 'invalid_api_key', `${what}: ${r.body}`);
  }


  it('a static key with the stored keys\' prefix is compared as a static key', async () => {
    const ok = await chatWith(prefixedStatic);
    assert.equal(ok.status, 200, ok.body);
    assert401(await chatWith(`${prefixedStatic}x`), 'one character more');
    assert401(await chatWith(prefixedStatic.slice(0, -1)), 'one character less');
    // the plain static key and a stored key work beside it
    assert.equal((await chatWith(sluice.key)).status, 200);
    const k = await createKey(sluice, 'beside-static');
    assert.equal((await chatWith(k.key)).status, 200);
  });

  it('a created key works with the SDK and is shut out of every worker by revoke, with no reload', async () => {
    const k = await createKey(sluice, 'revoke-me');
    revokedKey = k.key;
    const r = await sdk(k.key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello key' }] });
    assert.equal(r.choices[0].message.content, 'mock reply: hello key');

    // before the revoke the key works in every worker
    const before = new Set();
    for (let i = 0; i < 40 && before.size < 2; i++) {
      const x = await chatWith(k.key);
      assert.equal(x.status, 200, x.body);
      before.add(workerOf(x));
    }
    assert.equal(before.size, 2, 'fresh connections reached both workers');

    const pids0 = sluice.workerPids();
    const rv = await sluiceCli(sluice, ['keys', 'revoke', k.id]);
    assert.equal(rv.code, 0, `keys revoke: ${rv.stderr}`);
    const t0 = Date.now();
    const seen = new Set();
    for (let i = 0; i < 40 && (seen.size < 2 || i < 8); i++) {
      const x = await chatWith(k.key);
      assert401(x, `request ${i} after revoke (${Date.now() - t0} ms)`);
      seen.add(workerOf(x));
    }
    assert.ok(Date.now() - t0 < 1000, `the 401s took ${Date.now() - t0} ms`);
    assert.equal(seen.size, 2, 'the 401s came from both workers');
    assert.deepEqual(sluice.workerPids(), pids0, 'no reload happened');
    await assert.rejects(
      sdk(k.key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e.status === 401);

    // revoked by name works too, and shows as revoked
    const k2 = await createKey(sluice, 'revoke-by-name');
    assert.equal((await chatWith(k2.key)).status, 200);
    assert.equal((await sluiceCli(sluice, ['keys', 'revoke', 'revoke-by-name'])).code, 0);
    assert401(await chatWith(k2.key), 'revoked by name');
    const show = await sluiceCli(sluice, ['keys', 'show', 'revoke-by-name', '--json']);
    assert.equal(show.code, 0, show.stderr);
    assert.equal(JSON.parse(show.stdout).status, 'revoked', show.stdout);
  });

  it('a key created with --expires 2s works, then gets 401 once it expired', async () => {
    // expiry is kept in whole seconds: 2s is valid for at least one full second
    const k = await createKey(sluice, 'short-lived', ['--expires', '2s']);
    const t0 = Date.now();
    const first = await chatWith(k.key);
    assert.equal(first.status, 200, `right after create (${Date.now() - t0} ms): ${first.body}`);
    const expiredAt = await waitFor(async () => {
      const x = await chatWith(k.key);
      if (x.status === 200) return false;
      assert401(x, 'expired key');
      return Date.now();
    }, { timeoutMs: 4000, intervalMs: 100, msg: 'the key to expire' });
    const dt = expiredAt - t0;
    assert.ok(dt >= 900 && dt <= 3200, `expired ${dt} ms after creation (--expires 2s)`);
    for (let i = 0; i < 6; i++) assert401(await chatWith(k.key), `expired key, request ${i}`);
  });

  it('--models restricts the key to matching models (403 model_not_allowed otherwise)', async () => {
    const k = await createKey(sluice, 'only-4o', ['--models', 'gpt-4o*']);
    const ok = await chatWith(k.key, { model: 'gpt-4o-mini' });
    assert.equal(ok.status, 200, ok.body);
    const other = await chatWith(k.key, { model: 'other-model' });
    assert.equal(other.status, 403, other.body);
    const e = errorShape(other.json());
    assert.equal(e.code, 'model_not_allowed', other.body);
    // the same model is fine with an unrestricted key
    const all = await createKey(sluice, 'all-models');
    assert.equal((await chatWith(all.key, { model: 'other-model' })).status, 200);
    // the SDK sees a 403 too
    await assert.rejects(
      sdk(k.key).chat.completions.create({ model: 'other-model', messages: [{ role: 'user', content: 'x' }] }),
      (err) => err.status === 403);
    // and asking for the provider's model directly does not get around the glob
    const direct = await chatWith(k.key, { model: 'mock/other-target' });
    assert.ok([403, 404].includes(direct.status), `direct provider/model with a restricted key: ${direct.status} ${direct.body}`);
  });

  it('the key text is shown once: never in keys list/show, the log or the ledger', async () => {
    const k = await createKey(sluice, 'secret-text', ['--budget', '5', '--period', 'month']);
    // the plain (non-JSON) create prints the key as the last line
    const plain = await sluiceCli(sluice, ['keys', 'create', '--name', 'plain-create']);
    assert.equal(plain.code, 0, plain.stderr);
    const plainKey = plain.stdout.trim().split('\n').pop();
    assert.match(plainKey, /^sk-sluice-\S+$/, plain.stdout);
    assert.equal((await chatWith(plainKey)).status, 200);
    assert.equal((await chatWith(k.key)).status, 200);

    const list = await sluiceCli(sluice, ['keys', 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const arr = JSON.parse(list.stdout);
    assert.ok(Array.isArray(arr) && arr.some((x) => x.name === 'secret-text'), list.stdout);
    const table = await sluiceCli(sluice, ['keys', 'list']);
    const show = await sluiceCli(sluice, ['keys', 'show', 'secret-text', '--json']);
    assert.equal(show.code, 0, show.stderr);
    const usage = await sluiceCli(sluice, ['usage', '--by', 'key', '--since', 'all', '--format', 'json']);
    for (const key of [k.key, plainKey]) {
      const secretPart = key.slice('sk-sluice-'.length);
      for (const [what, text] of [['keys list --json', list.stdout], ['keys list', table.stdout], ['keys show', show.stdout],
        ['usage', usage.stdout], ['error.log', sluice.allLogs()], ['stderr', sluice.stderr]]) {
        assert.ok(!text.includes(secretPart), `${what} contains the key text`);
      }
    }
  });

  it('keys and the ledger survive a restart', async () => {
    const k = await createKey(sluice, 'durable');
    for (let i = 0; i < 3; i++) {
      const r = await sdk(k.key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `before restart ${i}` }] });
      assert.equal(r.choices[0].message.content, `mock reply: before restart ${i}`);
    }
    const before = (await usageJson(sluice, 'key')).find((g) => g.id === k.id);
    assert.ok(before, 'usage shows the key');
    assert.equal(before.requests, 3);
    assert.equal(before.name, 'durable');

    await sluice.stop();
    await restartSluice(sluice);
    const r = await sdk(k.key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'after restart' }] });
    assert.equal(r.choices[0].message.content, 'mock reply: after restart');
    // a revoked key stays revoked
    if (revokedKey) assert401(await chatWith(revokedKey), 'key revoked before the restart');
    const revoked = await sluiceCli(sluice, ['keys', 'show', 'revoke-me', '--json']);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(JSON.parse(revoked.stdout).status, 'revoked');
    const after = await waitFor(async () => {
      const g = (await usageJson(sluice, 'key')).find((x) => x.id === k.id);
      return g && g.requests === 4 ? g : null;
    }, { timeoutMs: 3000, msg: 'four ledger rows for the key after the restart' });
    assert.equal(after.prompt_tokens > before.prompt_tokens, true);
    assert.ok(fs.existsSync(sluice.pidFile));
  });
});
