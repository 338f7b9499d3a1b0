// Guardrails through the official SDKs: every built-in detector redacted
// before the request leaves (the mock sees placeholders, near misses pass
// untouched) and restored for the client, on /v1/chat/completions,
// /v1/messages and /v1/responses (to an OpenAI-shaped and to an Anthropic
// target), JSON and
// streaming with placeholders split across chunks, and embeddings; a
// prompt with JSON escapes (line breaks, quotes, backslashes) around every
// match under a detectors-only policy, which reads it in place; deny
// lists blocking with each frontend's error shape and no upstream request;
// an output deny list ending a committed stream with an in-band error;
// per-key and per-team policies beating the global one; limits with their
// status; the decisions in the ledger and /metrics; `sluice guard test`; a
// long text resent turn after turn (the detector memo) redacted alike.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import {
  startStack, request, freePort, collectStream, errorShape, createKey, sluiceCli, usageJson,
} from '../lib/harness.mjs';

const ADMIN_KEY = 'adm-guard-test-key-0123456789';

const TRUE = {
  email: 'john.doe@example.com',
  card: '4111 1111 1111 1111',
  phone: '+44 20 7946 0958',
  iban: 'DE89 3704 0044 0532 0130 00',
  ip: '10.20.30.40',
  secret: 'sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv',
};
const NEAR = ['order 4111111111111112', 'iban DE89 3704 0044 0532 0130 01', 'v1.2.3', 'at 12:30:45'];
const PROMPT = `mail ${TRUE.email}, card ${TRUE.card}, phone ${TRUE.phone}, IBAN ${TRUE.iban}, ` +
  `host ${TRUE.ip}, key ${TRUE.secret}; ${NEAR.join(', ')}`;
const PLACEHOLDERS = ['[EMAIL_1]', '[CARD_1]', '[PHONE_1]', '[IBAN_1]', '[IP_1]', '[SECRET_1]'];

describe('guardrails', () => {
  let stack, sluice, mock, openai, anthropic, adminPort;

  before(async () => {
    adminPort = await freePort();
    stack = await startStack({
      name: 'guard',
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY },
      config: (cfg) => {
        const root = cfg.providers.mock.base_url.replace(/\/v1$/, '');
        cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
        cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
        cfg.providers.anth = { kind: 'anthropic', base_url: root, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.guardrails = {
          policies: {
            strict: [
              { detect: ['email', 'phone', 'card', 'iban', 'ip', 'secret'], action: 'redact', restore: true },
              { deny: ['project falcon', 're:internal[- ]only'], action: 'block', on: 'input' },
              { limits: { max_messages: 6, max_output_tokens: 500, max_prompt_tokens: 3000, max_body: '16KiB' } },
            ],
            outdeny: [
              { detect: ['email'], action: 'redact', restore: true },
              { deny: ['forbidden'], action: 'block', on: 'output' },
              { detect: ['secret', 'card'], action: 'redact', on: 'output' },
            ],
            noemail: [{ detect: ['email'], action: 'block' }],
            nophone: [{ detect: ['phone'], action: 'block' }],
            onlymini: [{ models: ['gpt-4o-mini'] }],
            // detectors only: request strings with escapes are scanned as their twins
            pii: [{ detect: ['email', 'phone', 'card', 'iban', 'ip', 'secret'], action: 'redact', restore: true }],
          },
          apply: 'strict',
        };
        cfg.models.claude = { targets: ['anth/claude-haiku-4-5'] };
        cfg.models.watched = { targets: ['mock/gpt-4o-mini-2024-07-18'], guard: 'outdeny' };
        cfg.models.open = { targets: ['mock/gpt-4o-mini-2024-07-18'], guard: 'none' };
        cfg.models.pii = { targets: ['mock/gpt-4o-mini-2024-07-18'], guard: 'pii' };
        cfg.models['pii-claude'] = { targets: ['anth/claude-haiku-4-5'], guard: 'pii' };
        return cfg;
      },
    });
    ({ sluice, mock } = stack);
    openai = sluice.client();
    anthropic = new Anthropic({ baseURL: sluice.root, apiKey: sluice.key, maxRetries: 0 });
  });
  after(async () => { if (stack) await stack.stop(); });

  const lastUpstream = async () => (await mock.requests()).at(-1).rawBody;
  const upstreamCount = async () => (await mock.stats()).requests;

  function assertRedacted(body) {
    for (const [what, text] of Object.entries(TRUE)) {
      assert.ok(!body.includes(text), `${what} "${text}" went upstream: ${body}`);
    }
    for (const p of PLACEHOLDERS) assert.ok(body.includes(p), `${p} missing upstream: ${body}`);
    for (const n of NEAR) assert.ok(body.includes(n), `near miss "${n}" was changed: ${body}`);
  }

  it('chat, JSON: every detector redacted upstream, restored for the client', async () => {
    const r = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }] });
    assertRedacted(await lastUpstream());
    assert.equal(r.choices[0].message.content, `mock reply: ${PROMPT}`);
  });

  it('chat, an agent resending its conversation: a long text is redacted alike every time', async () => {
    // over 1 KiB: the workers' detector memo keeps such a text from its second
    // scan on and answers from the third; every turn must still go up redacted
    const long = `${PROMPT}. ${'The shipment was split into two parcels and the second is late. '.repeat(24)}`;
    assert.ok(long.length > 1024);
    const bodies = [];
    for (let turn = 0; turn < 5; turn++) {
      const r = await openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'user', content: long },
          { role: 'assistant', content: 'Noted.' },
          { role: 'user', content: `turn ${turn}: and ${TRUE.email} again?` },
        ],
      });
      const up = await lastUpstream();
      assertRedacted(up);
      bodies.push(JSON.parse(up).messages[0].content);
      assert.equal(r.choices[0].message.content, `mock reply: turn ${turn}: and ${TRUE.email} again?`);
    }
    assert.ok(bodies.every((b) => b === bodies[0]), 'the long text went up the same each turn');
  });

  it('chat, streaming: placeholders cut across chunks are restored', async () => {
    const stream = await openai.chat.completions.create(
      { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: PROMPT }] },
      { headers: { 'x-mock-chunks': '60' } });
    const s = await collectStream(stream);
    assertRedacted(await lastUpstream());
    assert.equal(s.content, `mock reply: ${PROMPT}`);
    assert.equal(s.finishReason, 'stop');
  });

  it('embeddings: the input is redacted too', async () => {
    await openai.embeddings.create({ model: 'gpt-4o-mini', input: [`contact ${TRUE.email}`, 'plain'] });
    const body = await lastUpstream();
    assert.ok(body.includes('[EMAIL_1]') && !body.includes(TRUE.email), body);
  });

  for (const model of ['gpt-4o-mini', 'claude']) {
    it(`messages to ${model}: JSON and streaming, redacted upstream and restored`, async () => {
      const m = await anthropic.messages.create({
        model, max_tokens: 100, messages: [{ role: 'user', content: [{ type: 'text', text: PROMPT }] }],
      });
      const up = await lastUpstream();
      assertRedacted(up);
      if (model === 'claude') assert.ok(JSON.parse(up).messages, 'the Anthropic target got its own body');
      assert.equal(m.content[0].text, `mock reply: ${PROMPT}`);

      const stream = await anthropic.messages.create(
        { model, max_tokens: 100, stream: true, messages: [{ role: 'user', content: PROMPT }] },
        { headers: { 'x-mock-chunks': '50' } });
      let text = '';
      const types = [];
      for await (const ev of stream) {
        types.push(ev.type);
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      }
      assertRedacted(await lastUpstream());
      assert.equal(text, `mock reply: ${PROMPT}`);
      assert.equal(types.at(-1), 'message_stop');
    });
  }

  // line breaks, tabs, quotes and backslashes (JSON escapes) next to every
  // match: a detectors-only policy reads such a string in place (its twin);
  // a private key across lines is a match holding escapes: its string decoded
  const PEM = '-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END RSA PRIVATE KEY-----';
  const ESCAPED = `mail\n"${TRUE.email}"\tcard ${TRUE.card}\\ phone ${TRUE.phone}\r\nIBAN ${TRUE.iban}\n` +
    `host "${TRUE.ip}"\nkey\t${TRUE.secret}\n${NEAR.join('\n')}\nC:\\dir\\`;
  const KEYED = `and the key:\n${PEM}\n`;
  const TURNS = [{ role: 'user', content: ESCAPED }, { role: 'assistant', content: 'Noted.' }, { role: 'user', content: KEYED }];
  for (const model of ['pii', 'pii-claude']) {
    it(`escapes around the matches (${model}): redacted upstream with the escapes kept, restored`, async () => {
      const r = await openai.chat.completions.create({ model, messages: TURNS });
      const up = await lastUpstream();
      assertRedacted(up);
      assert.ok(!up.includes('MIIBOgIBAAJBAKj34GkxFhD9'), `the private key went upstream: ${up}`);
      const text = (c) => (typeof c === 'string' ? c : c[0].text);
      const sent = JSON.parse(up).messages.map((m) => text(m.content));
      let want = ESCAPED;
      for (const [i, t] of Object.values(TRUE).entries()) want = want.replace(t, PLACEHOLDERS[i]);
      assert.deepEqual(sent, [want, 'Noted.', 'and the key:\n[SECRET_2]\n']);
      assert.equal(r.choices[0].message.content, `mock reply: ${KEYED}`);

      const m = await anthropic.messages.create({ model, max_tokens: 100, messages: [TURNS[0]] });
      assertRedacted(await lastUpstream());
      assert.equal(m.content[0].text, `mock reply: ${ESCAPED}`);
    });
  }

  for (const model of ['gpt-4o-mini', 'claude']) {
    it(`responses to ${model}: JSON and streaming, redacted upstream and restored`, async () => {
      const r = await openai.responses.create({ model, input: PROMPT });
      assertRedacted(await lastUpstream());
      assert.equal(r.output_text, `mock reply: ${PROMPT}`);

      const stream = await openai.responses.create({ model, input: PROMPT, stream: true },
        { headers: { 'x-mock-chunks': '40' } });
      let text = '';
      let done;
      for await (const ev of stream) {
        if (ev.type === 'response.output_text.delta') text += ev.delta;
        if (ev.type === 'response.output_text.done') done = ev.text;
        if (ev.type === 'response.completed') assert.equal(ev.response.output[0].content[0].text, `mock reply: ${PROMPT}`);
      }
      assertRedacted(await lastUpstream());
      assert.equal(text, `mock reply: ${PROMPT}`);
      assert.equal(done, `mock reply: ${PROMPT}`);

      const before = await upstreamCount();
      await assert.rejects(openai.responses.create({ model, input: 'about project falcon' }),
        (err) => err.status === 400 && err.code === 'guardrail_blocked' && /rule "deny\[2\]"/.test(err.message));
      assert.equal(await upstreamCount(), before, 'nothing reached the provider');
    });
  }

  it('a deny list blocks in each frontend\'s shape, with no upstream request', async () => {
    const before = await upstreamCount();
    const r = await sluice.chat({ messages: [{ role: 'user', content: 'tell me about Project\n  FALCON' }] });
    assert.equal(r.status, 400);
    const e = errorShape(r.json());
    assert.equal(e.code, 'guardrail_blocked');
    assert.match(e.message, /policy "strict", rule "deny\[2\]"/);
    assert.ok(!e.message.toLowerCase().includes('falcon'), 'the error does not echo the match');

    await assert.rejects(
      anthropic.messages.create({ model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: 'this is Internal-Only' }] }),
      (err) => err.status === 400 && err.error?.type === 'error' && err.error.error.type === 'invalid_request_error'
        && /rule "deny\[2\]"/.test(err.error.error.message));
    await assert.rejects(
      openai.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'project falcon' }] }),
      (err) => err.status === 400 && err.code === 'guardrail_blocked');
    assert.equal(await upstreamCount(), before, 'nothing reached the provider');
  });

  it('an output deny list ends a committed stream with an in-band error', async () => {
    const long = 'alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november ' +
      'oscar papa quebec romeo sierra tango forbidden uniform';
    const stream = await openai.chat.completions.create(
      { model: 'watched', stream: true, messages: [{ role: 'user', content: long }] },
      { headers: { 'x-mock-chunks': '20' } });
    let content = '';
    await assert.rejects(async () => {
      for await (const chunk of stream) content += chunk.choices[0]?.delta?.content || '';
    }, (err) => /rule "output:deny\[2\]": the answer contains/.test(err.message));
    assert.ok(content.startsWith('mock reply: alpha bravo'), `committed output first: "${content}"`);
    assert.ok(!content.includes('forbidden'), content);

    // the Messages frontend: an error event, never message_stop
    const events = [];
    await assert.rejects(async () => {
      const s = await anthropic.messages.create(
        { model: 'watched', max_tokens: 200, stream: true, messages: [{ role: 'user', content: long }] },
        { headers: { 'x-mock-chunks': '20' } });
      for await (const ev of s) events.push(ev.type);
    }, (err) => /guardrail policy \\?"outdeny\\?", rule \\?"output:deny\[2\]/.test(err.message));
    assert.ok(events.includes('content_block_delta') && !events.includes('message_stop'), events.join());

    // a whole answer: an error instead of it
    const r = await sluice.chat({ model: 'watched', messages: [{ role: 'user', content: 'say forbidden' }] });
    assert.equal(r.status, 400);
    assert.equal(errorShape(r.json()).code, 'guardrail_blocked');
    // input checks of that policy still redact and restore
    const ok = await openai.chat.completions.create({ model: 'watched', messages: [{ role: 'user', content: `hi ${TRUE.email}` }] });
    assert.equal(ok.choices[0].message.content, `mock reply: hi ${TRUE.email}`);
  });

  it('output redaction rewrites streamed deltas without cutting a match', async () => {
    const prompt = `key ${TRUE.secret} and card ${TRUE.card} end`;
    const want = 'mock reply: key [SECRET_1] and card [CARD_1] end';
    for (const chunks of ['7', '23']) {
      const stream = await openai.chat.completions.create(
        { model: 'watched', stream: true, messages: [{ role: 'user', content: prompt }] },
        { headers: { 'x-mock-chunks': chunks } });
      const pieces = [];
      const s = await collectStream(stream, { onChunk: (c) => pieces.push(c.choices[0]?.delta?.content || '') });
      assert.equal(s.content, want);
      // no piece carries a part of a match or of a placeholder
      assert.ok(pieces.every((p) => !/sk-|4111/.test(p) && p.split('[').length === p.split(']').length),
        pieces.join('|'));
      assert.ok((await lastUpstream()).includes(TRUE.secret), 'an output-only check leaves the request alone');
    }
    let text = '';
    const ms = await anthropic.messages.create(
      { model: 'watched', max_tokens: 100, stream: true, messages: [{ role: 'user', content: prompt }] },
      { headers: { 'x-mock-chunks': '11' } });
    for await (const ev of ms) {
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
    }
    assert.equal(text, want);
    const r = await openai.chat.completions.create({ model: 'watched', messages: [{ role: 'user', content: prompt }] });
    assert.equal(r.choices[0].message.content, want);
  });

  it('a key\'s policy beats its team\'s, the model\'s and the global one', async () => {
    const t = await sluiceCli(sluice, ['teams', 'set', 'ops', '--guard', 'nophone']);
    assert.equal(t.code, 0, t.stderr);
    assert.equal((await sluiceCli(sluice, ['teams', 'set', 'ops', '--guard', 'nope'])).code, 2);
    assert.equal((await sluiceCli(sluice, ['keys', 'create', '--name', 'x', '--guard', 'nope'])).code, 2);
    const keyed = await createKey(sluice, 'keyed', ['--guard', 'noemail', '--team', 'ops']);
    const teamed = await createKey(sluice, 'teamed', ['--team', 'ops']);
    const unguarded = await createKey(sluice, 'unguarded', ['--guard', 'none']);
    assert.equal(keyed.guard, 'noemail');
    const as = (k, content, model = 'gpt-4o-mini') => request(`${sluice.root}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
      body: { model, messages: [{ role: 'user', content }] },
    });

    // global: redacted; key: blocked; team: its phone rule, emails pass
    let r = await as(keyed, `mail ${TRUE.email}`);
    assert.equal(r.status, 400);
    assert.match(errorShape(r.json()).message, /policy "noemail", rule "email"/);
    r = await as(keyed, `call ${TRUE.phone}`);
    assert.equal(r.status, 200, 'the team\'s policy does not apply to a key with its own');
    r = await as(teamed, `call ${TRUE.phone}`);
    assert.equal(r.status, 400);
    assert.match(errorShape(r.json()).message, /policy "nophone", rule "phone"/);
    r = await as(teamed, `mail ${TRUE.email}`);
    assert.equal(r.status, 200);
    assert.ok((await lastUpstream()).includes(TRUE.email), 'the team policy replaced the global one');
    r = await as(unguarded, `mail ${TRUE.email} about project falcon`);
    assert.equal(r.status, 200);
    assert.ok((await lastUpstream()).includes(TRUE.email));

    // a model's policy beats the global one; the key's beats the model's
    r = await sluice.chat({ model: 'open', messages: [{ role: 'user', content: `mail ${TRUE.email}` }] });
    assert.equal(r.status, 200);
    assert.ok((await lastUpstream()).includes(TRUE.email));
    r = await as(keyed, `mail ${TRUE.email}`, 'open');
    assert.equal(r.status, 400);

    // update and the admin API: a models allow-list policy, then back to the global one
    const u = await sluiceCli(sluice, ['keys', 'update', 'keyed', '--guard', 'onlymini']);
    assert.equal(u.code, 0, u.stderr);
    r = await as(keyed, 'hi', 'claude');
    assert.equal(r.status, 403);
    assert.equal(errorShape(r.json()).code, 'model_not_allowed');
    const admin = (path, method, body) => request(`http://127.0.0.1:${adminPort}${path}`, {
      method, body, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    });
    let a = await admin('/admin/keys/keyed', 'PATCH', { guard: 'nope' });
    assert.equal(a.status, 400);
    assert.equal(a.json().error.param, 'guard');
    a = await admin('/admin/keys/keyed', 'PATCH', { guard: null });
    assert.equal(a.status, 200, a.body);
    assert.equal(a.json().guard, null);
    a = await admin('/admin/teams/ops', 'PUT', { guard: null });
    assert.equal(a.status, 200, a.body);
    assert.equal(a.json().guard, null);
    r = await as(keyed, `mail ${TRUE.email}`);
    assert.equal(r.status, 200);
    assert.ok((await lastUpstream()).includes('[EMAIL_1]'), 'back to the global policy');
  });

  it('limits answer with their status', async () => {
    const before = await upstreamCount();
    const msgs = Array.from({ length: 7 }, (_, i) => ({ role: 'user', content: `m${i}` }));
    let r = await sluice.chat({ messages: msgs });
    assert.equal(r.status, 400);
    let e = errorShape(r.json());
    assert.equal(e.code, 'guardrail_limit_exceeded');
    assert.match(e.message, /rule "max_messages": The request has 7 messages; at most 6/);
    r = await sluice.chat({ max_tokens: 600 });
    assert.equal(r.status, 400);
    assert.equal(errorShape(r.json()).param, 'max_tokens');
    r = await sluice.chat({ messages: [{ role: 'user', content: 'word '.repeat(2600) }] });
    assert.equal(r.status, 400);
    assert.match(errorShape(r.json()).message, /max_prompt_tokens/);
    r = await sluice.chat({ messages: [{ role: 'user', content: 'x'.repeat(17 * 1024) }] });
    assert.equal(r.status, 413);
    assert.match(errorShape(r.json()).message, /max_body/);
    await assert.rejects(
      anthropic.messages.create({ model: 'claude', max_tokens: 600, messages: [{ role: 'user', content: 'hi' }] }),
      (err) => err.status === 400 && err.error.error.type === 'invalid_request_error');
    await assert.rejects(
      anthropic.messages.create({ model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: 'y'.repeat(17 * 1024) }] }),
      (err) => err.status === 413 && err.error.error.type === 'request_too_large');
    assert.equal(await upstreamCount(), before, 'nothing reached the provider');
  });

  it('decisions are in the ledger (never the matched text) and in /metrics', async () => {
    const rows = await usageJson(sluice, 'request');
    const guards = rows.map((g) => g.guard);
    assert.ok(guards.includes('strict/email/redact;strict/card/redact;strict/phone/redact;strict/iban/redact;' +
      'strict/ip/redact;strict/secret/redact'), guards.join('\n'));
    assert.ok(guards.includes('strict/deny[2]/block'), guards.join('\n'));
    assert.ok(guards.includes('strict/max_messages/block'), guards.join('\n'));
    assert.ok(guards.some((g) => g === 'outdeny/output:deny[2]/block'), guards.join('\n'));
    assert.ok(guards.includes('noemail/email/block'));
    const all = JSON.stringify(rows);
    for (const text of Object.values(TRUE)) assert.ok(!all.includes(text), `ledger shows ${text}`);
    const table = await sluiceCli(sluice, ['usage', '--by', 'request', '--since', 'all']);
    assert.match(table.stdout, /GUARD/);
    assert.match(table.stdout, /strict\/deny\[2\]\/block/);

    const m = await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(m.status, 200);
    const count = (policy, action) => Number(new RegExp(
      `^sluice_guard_decisions_total\\{policy="${policy}",action="${action}"\\} (\\d+)$`, 'm').exec(m.body)?.[1]);
    assert.ok(count('strict', 'redact') >= 6, m.body);
    assert.ok(count('strict', 'block') >= 3, m.body);
    assert.ok(count('outdeny', 'block') >= 2, m.body);
  });

  it('sluice guard test shows what would be redacted or blocked', async () => {
    let r = await sluiceCli(sluice, ['guard', 'test', 'strict'], { input: PROMPT });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /policy strict: redacted, then let through/);
    assert.match(r.stdout, /line 1, column 6: email \(rule email, redact\) "john.doe@example.com" -> \[EMAIL_1\]/);
    assert.match(r.stdout, /secret \(rule secret, redact\) "sk-a… \(35 characters\)"/);
    assert.ok(!r.stdout.includes(TRUE.secret), 'the secret is not printed');
    assert.ok(r.stdout.includes(PLACEHOLDERS.join('').slice(0, 0) + 'order 4111111111111112'));
    r = await sluiceCli(sluice, ['guard', 'test', 'strict', '--json'], { input: 'about project falcon' });
    assert.equal(r.code, 1);
    const j = JSON.parse(r.stdout);
    assert.equal(j.verdict, 'block');
    assert.deepEqual(j.decisions.map((d) => d.rule), ['deny[2]']);
    r = await sluiceCli(sluice, ['guard', 'test', 'outdeny', '--output'], { input: 'this is forbidden' });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /blocked by rule "output:deny\[2\]"/);
    r = await sluiceCli(sluice, ['guard', 'test', 'nope'], { input: 'x' });
    assert.equal(r.code, 2);
  });
});
