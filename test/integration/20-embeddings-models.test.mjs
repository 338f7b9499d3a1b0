// Embeddings (the SDK's default base64 path and plain floats), the model
// list and the health check.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, request } from '../lib/harness.mjs';

const ALIASES = ['gpt-4o-mini', 'embed-small', 'fast'];

describe('embeddings, models, healthz', () => {
  let stack, sluice, mock, client;

  before(async () => {
    stack = await startStack({
      name: 'embed',
      config: {
        models: {
          'embed-small': { targets: ['mock/text-embedding-3-small'] },
          fast: { targets: ['mock/gpt-4o-mini-2024-07-18'], strategy: 'fallback' },
        },
      },
    });
    ({ sluice, mock } = stack);
    client = sluice.client();
  });
  after(async () => { if (stack) await stack.stop(); });

  it('embeds with the SDK default (base64 on the wire, floats to the caller)', async () => {
    await mock.reset();
    const r = await client.embeddings.create({ model: 'embed-small', input: ['alpha', 'beta'] });
    assert.equal(r.object, 'list');
    assert.equal(r.data.length, 2);
    for (const [i, d] of r.data.entries()) {
      assert.equal(d.object, 'embedding');
      assert.equal(d.index, i);
      assert.ok(Array.isArray(d.embedding) && d.embedding.length > 0, 'decoded to an array');
      assert.ok(d.embedding.every((x) => typeof x === 'number' && Number.isFinite(x)), 'finite floats');
    }
    const up = (await mock.requests()).find((q) => /\/embeddings$/.test(q.path));
    assert.ok(up, 'the mock saw the embeddings request');
    assert.equal(up.json.encoding_format, 'base64', 'SDK asked for base64 and sluice passed it on');
    assert.equal(up.json.model, 'text-embedding-3-small');
  });

  it('embeds with encoding_format float, same vectors as base64', async () => {
    const f = await client.embeddings.create({ model: 'embed-small', input: 'gamma', encoding_format: 'float' });
    assert.equal(f.data.length, 1);
    const v = f.data[0].embedding;
    assert.ok(Array.isArray(v) && v.length > 0);
    assert.ok(f.usage && f.usage.prompt_tokens > 0, JSON.stringify(f.usage));
    const b = await client.embeddings.create({ model: 'embed-small', input: 'gamma' });
    assert.equal(b.data[0].embedding.length, v.length);
    b.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - v[i]) < 1e-6, `component ${i}: ${x} vs ${v[i]}`));
  });

  it('returns raw base64 untouched when asked for it', async () => {
    const r = await sluice.req('/v1/embeddings', {
      method: 'POST', body: { model: 'embed-small', input: 'delta', encoding_format: 'base64' },
    });
    assert.equal(r.status, 200, r.body);
    const e = r.json().data[0].embedding;
    assert.equal(typeof e, 'string');
    const buf = Buffer.from(e, 'base64');
    assert.ok(buf.length > 0 && buf.length % 4 === 0, `base64 decodes to ${buf.length} bytes`);
    assert.equal(r.headers['x-sluice-provider'], 'mock');
    assert.equal(r.headers['x-sluice-model'], 'text-embedding-3-small');
  });

  it('lists exactly the configured aliases', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      ids.push(m.id);
      assert.equal(m.object, 'model');
      assert.equal(m.owned_by, 'sluice');
      assert.equal(typeof m.created, 'number');
    }
    assert.deepEqual([...ids].sort(), [...ALIASES].sort());

    const raw = await sluice.req('/v1/models');
    assert.equal(raw.status, 200);
    assert.match(raw.headers['content-type'], /^application\/json/);
    assert.equal(raw.json().object, 'list');
    assert.ok(raw.headers['x-request-id']);
  });

  it('requires a key for /v1/models', async () => {
    const r = await request(`${sluice.root}/v1/models`);
    assert.equal(r.status, 401);
  });

  it('answers /healthz without a key', async () => {
    const r = await request(`${sluice.root}/healthz`);
    assert.equal(r.status, 200);
    assert.ok(r.headers['x-request-id']);
    const bad = await request(`${sluice.root}/healthz`, { headers: { authorization: 'Bearer wrong' } });
    assert.equal(bad.status, 200, 'health does not depend on auth');
  });
});
