// Hostile JSON bodies (issue 7): about 1 MiB of the JSON reader's worst
// shapes (tiny arrays and objects, groups nested 2000 deep, many keys,
// escaped keys, escaped strings, numbers) in a valid chat request, sent with
// a valid key to a single worker over /v1/chat/completions and /v1/messages.
// Each is answered (the mock's reply; a 400 for nesting past the limit or a
// bad last byte, with the reader's reason), and the same worker answers
// /healthz while one is in flight. Before the fix the tiny-arrays body alone
// held the worker for half a minute, well past the harness's request
// timeout.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, errorShape } from '../lib/harness.mjs';

const MIB = 1 << 20;

// A chat body ({model, max_tokens, messages}) plus `extra`, the raw JSON of
// more top-level members (without the leading comma), padded to about `size`.
function body(extra) {
  return `{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"hi"}],${extra}}`;
}

function list(item, size) {
  return `"x":[${new Array(Math.floor(size / (item.length + 1))).fill(item).join(',')}]`;
}

function nest(size) {
  const group = '['.repeat(2000) + '0' + ']'.repeat(2000);
  return `"x":[${new Array(Math.floor(size / (group.length + 1))).fill(group).join(',')}]`;
}

function keys(size, escaped) {
  const out = [];
  const n = size / (escaped ? 20 : 15);
  for (let i = 0; i < n; i++) out.push(`"${escaped ? '\\u006b' : 'k'}${String(i).padStart(8, '0')}":0`);
  return out.join(',');
}

const SHAPES = {
  arrays: () => list('[]', MIB),
  objects: () => list('{}', MIB),
  nest: () => nest(MIB),
  keys: () => keys(MIB, false),
  esckeys: () => keys(MIB, true),
  string: () => `"x":"${'\\"\\\\\\n\\u00e9\\ud83d\\ude00 abc'.repeat(MIB / 28)}"`,
  numbers: () => list('-1.5e+10', MIB),
};

describe('hostile JSON bodies', () => {
  let stack, sluice;

  before(async () => {
    stack = await startStack({
      name: 'hostile-json',
      config: (cfg) => {
        cfg.server.workers = 1;
        const root = cfg.providers.mock.base_url.replace(/\/v1$/, '');
        cfg.providers.gem = { kind: 'gemini', base_url: `${root}/v1beta`, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.models.gemini = { targets: ['gem/gemini-2.5-flash'] };
        return cfg;
      },
    });
    ({ sluice } = stack);
  });
  after(async () => { if (stack) await stack.stop(); });

  for (const [name, make] of Object.entries(SHAPES)) {
    it(`${name}: answered on /v1/chat/completions and /v1/messages, /healthz meanwhile`, async () => {
      const text = body(make());
      assert.ok(text.length > 0.9 * MIB, `${name} body is ${text.length} bytes`);
      const headers = { 'content-type': 'application/json' };
      const [chat, health] = await Promise.all([
        sluice.req('/v1/chat/completions', { method: 'POST', headers, body: text, timeoutMs: 20000 }),
        sluice.req('/healthz'),
      ]);
      assert.equal(chat.status, 200, chat.body.slice(0, 300));
      assert.equal(chat.json().choices[0].message.content, 'mock reply: hi');
      assert.equal(health.status, 200);
      const msg = await sluice.req('/v1/messages', { method: 'POST', headers, body: text, timeoutMs: 20000 });
      assert.equal(msg.status, 200, msg.body.slice(0, 300));
      assert.equal(msg.json().content[0].text, 'mock reply: hi');
    });
  }

  it('a hostile body for a translating target: its DOM is built off the loop, /healthz meanwhile', async () => {
    const text = body(list('[]', MIB)).replace('"gpt-4o-mini"', '"gemini"');
    const headers = { 'content-type': 'application/json' };
    const [r, health] = await Promise.all([
      sluice.req('/v1/chat/completions', { method: 'POST', headers, body: text, timeoutMs: 20000 }),
      sluice.req('/healthz'),
    ]);
    assert.equal(health.status, 200);
    assert.equal(r.status, 200, r.body.slice(0, 300));
    assert.equal(r.json().choices[0].message.content, 'mock reply: hi');
  });

  it('refused at its last byte: a 400 with the reader\'s reason, no second parse', async () => {
    const good = body(list('{}', MIB));
    const text = good.slice(0, -1) + ']';
    const r = await sluice.req('/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: text,
    });
    assert.equal(r.status, 400, r.body.slice(0, 300));
    assert.equal(errorShape(r.json()).message,
      `We could not parse the JSON body of your request: ',' or '}' expected (line 1, column ${text.length}).`);
  });

  it('nesting past the limit: a 400 that says so, at once', async () => {
    const depth = MIB / 2;
    const text = body(`"x":${'['.repeat(depth)}${']'.repeat(depth)}`);
    const r = await sluice.req('/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: text,
    });
    assert.equal(r.status, 400, r.body.slice(0, 300));
    const e = errorShape(r.json());
    assert.equal(e.type, 'invalid_request_error');
    assert.match(e.message, /depth/);
  });
});
