// Stored responses written with their request's ledger row: one LMDB write
// transaction holds both (the group commit of the ledger), read from the
// transaction id LMDB keeps in data.mdb's meta pages; the row count in
// /metrics is not inflated by the stored records; an answer (whole or
// streamed) leaves only once its response is stored, so it is retrieved
// and chained at once; responses.max_size keeps a large one out while its
// request still answers and gets its row. And GET .../input_items lists
// the items as OpenAI does (through the official openai SDK): a string
// input is one user message with an input_text part, a message's string
// content becomes one part (output_text for the assistant's), and every
// message has a status.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import OpenAI from 'openai';
import { makeTmpDir, startMock, startSluice, request, freePort, usageJson } from '../lib/harness.mjs';

const ADMIN_KEY = 'sk-admin-' + 'r'.repeat(32);

// LMDB's last committed transaction id: the larger one of the two meta pages
// (page header 16 bytes, then magic, version, address, map size, two 48-byte
// database records and the last page: the txnid is at byte 144).
async function lastTxnId(file) {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(4096 * 2);
    await fh.read(buf, 0, buf.length, 0);
    let best = -1n;
    for (const at of [0, 4096]) {
      assert.equal(buf.readUInt32LE(at + 16), 0xbeefc0de, 'an LMDB meta page');
      const id = buf.readBigUInt64LE(at + 144);
      if (id > best) best = id;
    }
    return best;
  } finally {
    await fh.close();
  }
}

describe('stored responses in the ledger row\'s commit', () => {
  let dir, mock, sluice, client, adminPort;

  before(async () => {
    dir = await makeTmpDir('responses-store');
    mock = await startMock();
    adminPort = await freePort();
    sluice = await startSluice({
      dir, mock,
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY },
      config: (cfg) => {
        const root = cfg.providers.mock.base_url.replace(/\/v1$/, '');
        cfg.providers.anth = { kind: 'anthropic', base_url: root, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.models.claude = { targets: ['anth/claude-haiku-4-5'] };
        cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
        cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
        cfg.responses = { max_size: '2KiB' };
        return cfg;
      },
    });
    client = new OpenAI({ baseURL: sluice.baseURL, apiKey: sluice.key, maxRetries: 0 });
  });
  after(async () => {
    const errs = [];
    if (sluice) await sluice.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
    if (dir && !process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true });
  });

  const dataFile = () => path.join(sluice.dir, 'var', 'data.mdb');
  const metric = async (name) => {
    const r = await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(r.status, 200, r.body);
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(r.body);
    assert.ok(m, `${name} in /metrics`);
    return Number(m[1]);
  };

  it('a stored response takes no write transaction of its own, and is not counted as a row', async () => {
    const N = 8;
    // warm up: both workers have written once
    for (let i = 0; i < 4; i++) await client.responses.create({ model: 'claude', input: `warm ${i}`, store: false });
    const run = async (store) => {
      const t0 = await lastTxnId(dataFile());
      const rows0 = await metric('sluice_ledger_committed_rows_total');
      const ids = [];
      for (let i = 0; i < N; i++) {
        ids.push((await client.responses.create({ model: 'claude', input: `txn ${store} ${i}`, store })).id);
      }
      return {
        txns: Number((await lastTxnId(dataFile())) - t0),
        rows: (await metric('sluice_ledger_committed_rows_total')) - rows0,
        ids,
      };
    };
    const off = await run(false);
    const on = await run(true);
    assert.equal(off.rows, N, 'one row per request');
    assert.equal(on.rows, N, 'one row per request: a stored response is not a row');
    assert.ok(off.txns >= N, `store: false, ${off.txns} write transactions for ${N} requests`);
    // before, each stored response was a second transaction (2N); a few
    // writes of something else in the meantime are tolerated
    assert.ok(on.txns < off.txns + N / 2,
      `store: true took ${on.txns} write transactions for ${N} requests, store: false ${off.txns}`);
    for (const id of on.ids) assert.equal((await client.responses.retrieve(id)).id, id);
    for (const id of off.ids) await assert.rejects(client.responses.retrieve(id), (e) => e instanceof OpenAI.NotFoundError);
  });

  it('whole and streamed answers are stored before they arrive: retrieved and chained at once', async () => {
    const whole = await client.responses.create({ model: 'claude', input: 'whole one' });
    const stream = await client.responses.create({ model: 'claude', input: 'streamed one', stream: true });
    let done;
    for await (const ev of stream) if (ev.type === 'response.completed') done = ev.response;
    assert.ok(done, 'response.completed');
    for (const [r, text] of [[whole, 'mock reply: whole one'], [done, 'mock reply: streamed one']]) {
      const got = await client.responses.retrieve(r.id);
      assert.equal(got.output_text, text);
      assert.deepEqual(got.usage, r.usage);
      const next = await client.responses.create({ model: 'claude', input: 'and then', previous_response_id: r.id });
      assert.equal(next.previous_response_id, r.id);
      const up = JSON.stringify((await mock.requests()).at(-1).json.messages);
      assert.ok(up.includes(text.replace('mock reply: ', '')) && up.includes(text), up);
    }
  });

  it('a response larger than responses.max_size is answered and has its row, but is not kept', async () => {
    const rid = `big-${Date.now()}`;
    const big = 'x'.repeat(3000);
    const { data: r, response } = await client.responses.create({ model: 'claude', input: big },
      { headers: { 'x-request-id': rid } }).withResponse();
    assert.equal(response.status, 200);
    assert.match(r.output_text, /^mock reply: x+$/);
    await assert.rejects(client.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
    const rows = (await usageJson(sluice, 'request')).filter((g) => g.id === rid);
    assert.equal(rows.length, 1, 'its row');
    const log = await fsp.readFile(sluice.errorLog, 'utf8');
    assert.match(log, /response not stored: larger than responses\.max_size \(2048 bytes\)/);
  });

  it('input_items of a string input: one user message with an input_text part', async () => {
    const r = await client.responses.create({ model: 'claude', input: 'just a string' });
    const page = await client.responses.inputItems.list(r.id);
    assert.equal(page.data.length, 1);
    const [item] = page.data;
    assert.equal(item.type, 'message');
    assert.equal(item.role, 'user');
    assert.equal(item.status, 'completed');
    assert.deepEqual(item.content, [{ type: 'input_text', text: 'just a string' }]);
    assert.equal(typeof item.id, 'string');
  });

  it('input_items: string contents become parts, as OpenAI lists them', async () => {
    const r = await client.responses.create({ model: 'claude', input: [
      { role: 'developer', content: 'be terse' },
      { role: 'user', content: 'first "quoted" \u00e9' },
      { type: 'message', role: 'assistant', content: 'an earlier answer' },
      { role: 'user', content: [{ type: 'input_text', text: 'parts already' }] },
      { type: 'function_call_output', call_id: 'call_1', output: 'sunny' },
    ] });
    const items = (await client.responses.inputItems.list(r.id, { order: 'asc' })).data;
    assert.deepEqual(items.map((x) => [x.type, x.role, x.content]), [
      ['message', 'developer', [{ type: 'input_text', text: 'be terse' }]],
      ['message', 'user', [{ type: 'input_text', text: 'first "quoted" \u00e9' }]],
      ['message', 'assistant', [{ type: 'output_text', text: 'an earlier answer', annotations: [] }]],
      ['message', 'user', [{ type: 'input_text', text: 'parts already' }]],
      ['function_call_output', undefined, undefined],
    ]);
    assert.deepEqual(items.slice(0, 4).map((x) => x.status), ['completed', 'completed', 'completed', 'completed']);
    assert.equal(items[4].output, 'sunny');
    // the stored conversation still chains (string and part contents alike)
    await client.responses.create({ model: 'claude', input: 'more', previous_response_id: r.id });
    const up = JSON.stringify((await mock.requests()).at(-1).json);
    for (const s of ['be terse', 'first \\"quoted\\" \u00e9', 'an earlier answer', 'parts already', 'sunny']) {
      assert.ok(up.includes(s), `${s} in ${up}`);
    }
  });
});

describe('stored responses without the ledger, and large ones', () => {
  let dir, mock, sluice, client;

  before(async () => {
    dir = await makeTmpDir('responses-store-noledger');
    mock = await startMock();
    sluice = await startSluice({
      dir, mock,
      config: (cfg) => {
        const root = cfg.providers.mock.base_url.replace(/\/v1$/, '');
        cfg.providers.anth = { kind: 'anthropic', base_url: root, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.models.claude = { targets: ['anth/claude-haiku-4-5'] };
        cfg.ledger = { enabled: false };
        return cfg;
      },
    });
    client = new OpenAI({ baseURL: sluice.baseURL, apiKey: sluice.key, maxRetries: 0 });
  });
  after(async () => {
    const errs = [];
    if (sluice) await sluice.stop().catch((e) => errs.push(e));
    if (mock) await mock.stop().catch((e) => errs.push(e));
    if (errs.length) throw errs[0];
    if (dir && !process.env.SLUICE_KEEP_TMP) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('with the ledger off, a response is still stored before its answer leaves', async () => {
    const r = await client.responses.create({ model: 'claude', input: 'no ledger here' });
    assert.equal((await client.responses.retrieve(r.id)).output_text, 'mock reply: no ledger here');
    const next = await client.responses.create({ model: 'claude', input: 'next', previous_response_id: r.id });
    assert.equal(next.previous_response_id, r.id);
  });

  it('a large one (written off the loop) is stored before its answer, whole and streamed', async () => {
    const big = 'y'.repeat(300 * 1024);
    const whole = await client.responses.create({ model: 'claude', input: big });
    const stream = await client.responses.create({ model: 'claude', input: [{ role: 'user', content: big }], stream: true });
    let done;
    for await (const ev of stream) if (ev.type === 'response.completed') done = ev.response;
    for (const r of [whole, done]) {
      const got = await client.responses.retrieve(r.id);
      assert.equal(got.id, r.id);
      const items = (await client.responses.inputItems.list(r.id)).data;
      assert.equal(items.length, 1);
      assert.equal(items[0].content[0].text.length, big.length);
    }
  });
});
