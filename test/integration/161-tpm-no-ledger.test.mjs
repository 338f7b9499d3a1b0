// A key's tokens-per-minute limit holds without a ledger row: the tokens of
// a finished request were counted only once its row committed, so with
// `ledger: {enabled: false}` a key with tpm 1 was never stopped. Its first
// request uses up the minute's tokens; the next is refused with 429.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, createKey } from '../lib/harness.mjs';

const MODEL = 'gpt-4o-mini';

describe('tpm with the ledger off', () => {
  let stack, sluice;

  before(async () => {
    stack = await startStack({
      name: 'tpm-noledger',
      config: (cfg) => {
        cfg.server.workers = 1;
        cfg.ledger = { enabled: false };
        return cfg;
      },
    });
    ({ sluice } = stack);
  });
  after(async () => { if (stack) await stack.stop(); });

  it("a request's tokens count against tpm though no row is written", async () => {
    const k = await createKey(sluice, 'tpm-noledger', ['--tpm', '1']);
    const c = sluice.client({ apiKey: k.key });
    const ask = () => c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'count me' }] });
    const first = await ask();
    assert.ok(first.usage.total_tokens > 1, JSON.stringify(first.usage));
    await assert.rejects(ask(), (e) => e.status === 429 && /tokens per minute/.test(e.message));
  });
});
