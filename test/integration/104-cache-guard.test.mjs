// The response cache under guardrails: a request whose input a policy
// redacted, or whose answer a policy filters (restore, output checks),
// never reads nor fills the cache, so one request's placeholders never
// come back with another request's text; a policy that only counts
// (limits) leaves the cache alone.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';

const TARGET = 'mock/gpt-4o-mini-2024-07-18';

describe('response cache and guardrails', () => {
  let stack, mock, client;
  let seq = 0;

  before(async () => {
    stack = await startStack({
      name: 'cache-guard',
      config: (cfg) => {
        cfg.cache = { enabled: true, ttl: '1h', scope: 'key' };
        cfg.guardrails = {
          policies: {
            red: [{ detect: ['email'], action: 'redact' }],
            rest: [{ detect: ['email'], action: 'redact', restore: true }],
            lim: [{ limits: { max_messages: 6 } }],
          },
          apply: 'red',
        };
        cfg.models.restored = { targets: [TARGET], guard: 'rest' };
        cfg.models.limited = { targets: [TARGET], guard: 'lim' };
        return cfg;
      },
    });
    ({ mock } = stack);
    client = stack.sluice.client({ maxRetries: 0 });
  });
  after(async () => { if (stack) await stack.stop(); });

  const ask = async (model, content) => {
    const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content }] }).withResponse();
    return { status: r.response.headers.get('x-sluice-cache'), text: r.data.choices[0].message.content };
  };
  const upstream = async (needle) => (await mock.requests()).filter((q) => q.path === '/v1/chat/completions'
    && JSON.stringify(q.json.messages).includes(needle)).length;

  it('caches what the policy leaves untouched', async () => {
    const text = `plain question ${++seq}`;
    assert.equal((await ask('gpt-4o-mini', text)).status, 'miss');
    assert.equal((await ask('gpt-4o-mini', text)).status, 'hit');
    assert.equal(await upstream(text), 1);
  });

  it('neither reads nor fills the cache for a redacted request', async () => {
    const n = ++seq;
    const a = await ask('gpt-4o-mini', `mail ann@example.com about case ${n}`);
    assert.equal(a.status, 'bypass');
    assert.doesNotMatch(a.text, /ann@example\.com/, 'the provider never saw the address');
    const b = await ask('gpt-4o-mini', `mail bob@example.org about case ${n}`);
    assert.equal(b.status, 'bypass', 'the same redacted text is not a hit');
    assert.equal(await upstream(`about case ${n}`), 2);
  });

  it('bypasses the cache when the answer is restored, and each client gets its own text back', async () => {
    const n = ++seq;
    const a = await ask('restored', `greet ann@example.com for case ${n}`);
    const b = await ask('restored', `greet bob@example.org for case ${n}`);
    assert.deepEqual([a.status, b.status], ['bypass', 'bypass']);
    assert.match(a.text, /ann@example\.com/);
    assert.match(b.text, /bob@example\.org/);
    assert.doesNotMatch(b.text, /ann@example\.com/);
    // with nothing redacted there is nothing to restore: such a request is cached
    assert.equal((await ask('restored', `nothing personal ${n}`)).status, 'miss');
    assert.equal((await ask('restored', `nothing personal ${n}`)).status, 'hit');
  });

  it('caches under a limits-only policy', async () => {
    const text = `limited question ${++seq}`;
    assert.equal((await ask('limited', text)).status, 'miss');
    assert.equal((await ask('limited', text)).status, 'hit');
    assert.equal(await upstream(text), 1);
  });
});
