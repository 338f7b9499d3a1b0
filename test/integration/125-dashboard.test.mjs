// The dashboard on the admin listener: `sluice dashboard` prints a one-time
// link that Chromium opens into a logged-in page showing the charts and the
// model that served the requests; keys are created (shown once) and revoked
// from the page. The admin endpoints refuse missing and wrong credentials,
// and a session's changes need its CSRF token and the dashboard's own origin:
// a page on another port of the same host (same-site, so the SameSite=Strict
// cookie does go along) cannot create a key.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import Anthropic from '@anthropic-ai/sdk';
import {
  startStack, request, freePort, randomKey, writePricing, makeTmpDir, sluiceCli, createKey, waitFor,
} from '../lib/harness.mjs';

const ADMIN_KEY = randomKey('sk-admin-');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run'];

// The session cookie from a response's Set-Cookie: {pair: "name=value", attrs}.
function sessionCookie(r) {
  const raw = [].concat(r.headers['set-cookie'] || []);
  const c = raw.find((x) => /^sluice_session_\d+=/.test(x));
  assert.ok(c, `no session cookie in ${JSON.stringify(r.headers)}`);
  return { pair: c.split(';')[0], attrs: c };
}

describe('dashboard', () => {
  let stack, sluice, adminPort, admin, origin, tmp;
  const made = [];

  before(async () => {
    adminPort = await freePort();
    tmp = await makeTmpDir('dashboard-pricing');
    const pricing = await writePricing(path.join(tmp, 'pricing.yaml'), {
      'mock/gpt-4o-mini-2024-07-18': { input: 150, output: 600 },
    });
    stack = await startStack({
      name: 'dashboard',
      config: (cfg) => {
        cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
        cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
        cfg.pricing = pricing;
        return cfg;
      },
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY },
    });
    ({ sluice } = stack);
    origin = `http://127.0.0.1:${adminPort}`;
    admin = (p, opts = {}) => request(origin + p, { timeoutMs: 5000, ...opts });
    // traffic for the charts: plain and streamed
    const client = sluice.client();
    for (let i = 0; i < 4; i++) {
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `dashboard ${i}` }] });
    }
    const s = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'stream' }] });
    for await (const _ of s) { /* drain */ }
  });

  after(async () => {
    if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
    if (!stack) return;
    const logs = sluice.allLogs() + sluice.stderr;
    await stack.stop();
    for (const secret of [ADMIN_KEY, ...made]) assert.ok(!logs.includes(secret), 'a secret appears in the logs');
  });

  async function link() {
    const r = await sluiceCli(sluice, ['dashboard']);
    assert.equal(r.code, 0, r.stderr);
    const url = r.stdout.trim().split('\n').pop();
    assert.match(url, new RegExp(`^http://127\\.0\\.0\\.1:${adminPort}/login\\?token=[0-9A-Za-z]{43}$`));
    made.push(new URL(url).searchParams.get('token'));
    return url;
  }

  async function session() {
    const r = await request(await link(), { timeoutMs: 5000 });
    assert.equal(r.status, 200, r.body);
    const c = sessionCookie(r);
    const s = await admin('/admin/session', { headers: { cookie: c.pair } });
    assert.equal(s.status, 200, s.body);
    return { cookie: c.pair, csrf: s.json().csrf, attrs: c.attrs };
  }

  it('refuses missing and wrong credentials on every data endpoint', async () => {
    const paths = ['/admin/stats', '/admin/budgets', '/admin/tail', '/admin/alerts', '/admin/session', '/admin/keys', '/admin/targets'];
    for (const p of paths) {
      for (const headers of [{}, { authorization: 'Bearer sk-admin-wrong' }, { cookie: `sluice_session_${adminPort}=${'x'.repeat(43)}` }]) {
        const r = await admin(p, { headers });
        assert.equal(r.status, 401, `${p} with ${JSON.stringify(headers)}: ${r.status} ${r.body}`);
        assert.ok(!r.body.includes('sk-admin-wrong'));
      }
      const ok = await admin(p, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      assert.equal(ok.status, 200, `${p} with the admin key: ${ok.body}`);
    }
    // the page itself holds no data and needs no login; a wrong admin-key login is refused
    assert.equal((await admin('/')).status, 200);
    const bad = await admin('/admin/session', { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: { admin_key: 'nope' } });
    assert.equal(bad.status, 401);
    assert.equal(bad.headers['set-cookie'], undefined);
  });

  it('serves its assets with an ETag, gzip and a strict CSP', async () => {
    const r = await admin('/assets/dashboard.js', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.match(r.headers['content-security-policy'], /script-src 'self'/);
    const again = await admin('/assets/dashboard.js', { headers: { 'if-none-match': r.headers.etag } });
    assert.equal(again.status, 304);
    assert.equal((await admin('/assets/nope.js')).status, 404);
  });

  it('exchanges a link once for an HttpOnly SameSite=Strict session; logout ends it', async () => {
    const url = await link();
    const r = await request(url, { timeoutMs: 5000 });
    assert.equal(r.status, 200);
    const c = sessionCookie(r);
    assert.match(c.attrs, /HttpOnly/);
    assert.match(c.attrs, /SameSite=Strict/);
    assert.match(c.attrs, /Path=\//);
    const again = await request(url, { timeoutMs: 5000 });
    assert.equal(again.status, 401, 'a link works once');
    assert.equal(again.headers['set-cookie'], undefined);
    const s = await admin('/admin/session', { headers: { cookie: c.pair } });
    assert.equal(s.json().via, 'session');
    assert.match(s.json().csrf, /^[0-9A-Za-z]{43}$/);
    const out = await admin('/admin/session', { method: 'DELETE', headers: { cookie: c.pair, origin, 'x-csrf-token': s.json().csrf } });
    assert.equal(out.status, 200);
    assert.equal((await admin('/admin/stats', { headers: { cookie: c.pair } })).status, 401);
  });

  it('refuses a session change without its CSRF token or from another origin', async () => {
    const { cookie, csrf } = await session();
    const post = (headers, name) => admin('/admin/keys', {
      method: 'POST', headers: { cookie, 'content-type': 'application/json', ...headers }, body: { name },
    });
    const cases = [
      [{ origin }, 'no-token'],
      [{ origin, 'x-csrf-token': 'x'.repeat(43) }, 'wrong-token'],
      [{ origin: 'http://evil.example', 'x-csrf-token': csrf }, 'evil-origin'],
      [{ origin: `http://127.0.0.1:${sluice.port}`, 'x-csrf-token': csrf }, 'other-port'],
      [{ 'x-csrf-token': csrf }, 'no-origin'],
      [{ origin, 'x-csrf-token': csrf, 'sec-fetch-site': 'same-site' }, 'same-site'],
    ];
    for (const [headers, name] of cases) {
      const r = await post(headers, `csrf-${name}`);
      assert.equal(r.status, 403, `${name}: ${r.status} ${r.body}`);
    }
    // a login with the admin key from another origin is refused too
    const login = await admin('/admin/session', { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'application/json' }, body: { admin_key: ADMIN_KEY } });
    assert.equal(login.status, 403);
    const list = await admin('/admin/keys', { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.deepEqual(list.json().data.filter((k) => k.name.startsWith('csrf-')), []);
    // the same request from the dashboard's origin with the token goes through
    const ok = await post({ origin, 'x-csrf-token': csrf, 'sec-fetch-site': 'same-origin' }, 'csrf-ok');
    assert.equal(ok.status, 201, ok.body);
    made.push(ok.json().key);
  });

  it('opens in Chromium from the link with charts, the served model and key management', async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    // a page on another port of this host: same-site, so the Strict cookie is sent along
    let evilHits = 0;
    const evil = http.createServer((req, res) => {
      evilHits++;
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><script>
        fetch('${origin}/admin/keys', { method: 'POST', mode: 'no-cors', credentials: 'include',
          headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ name: 'evil-key' }) })
          .then(() => { document.title = 'sent'; }, () => { document.title = 'sent'; });
      </script>`);
    });
    await new Promise((r) => evil.listen(0, '127.0.0.1', r));
    try {
      const shots = sluice.dir;
      for (const [name, viewport] of [['desktop', { width: 1440, height: 900 }], ['narrow', { width: 390, height: 844 }]]) {
        const ctx = await browser.newContext({ viewport });
        const page = await ctx.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(await link());
        await page.waitForURL(`${origin}/`);
        await page.waitForSelector('#c-spend svg rect', { timeout: 10000 });
        for (const id of ['c-spend', 'c-traffic', 'c-latency']) {
          assert.equal(await page.locator(`#${id} svg`).count(), 1, `chart ${id}`);
        }
        // no cache configured here: the cache panel says so instead of drawing an empty chart
        assert.match(await page.locator('#c-cache .empty').textContent(), /No cache hits/);
        const served = await page.locator('#t-models tr[data-model="gpt-4o-mini"] [data-served]').first().textContent();
        assert.equal(served, 'mock/gpt-4o-mini-2024-07-18');
        await page.waitForSelector('#t-tail tr[data-request]');
        assert.match(await page.locator('#cards').textContent(), /Requests\s*[5-9]/);
        assert.equal(await page.locator('#t-targets tr[data-target="mock/gpt-4o-mini-2024-07-18"] .badge').textContent(), 'closed');
        // narrow or wide, nothing sticks out sideways
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `${name}: the page is ${overflow}px wider than the window`);
        await page.screenshot({ path: path.join(shots, `dashboard-${name}.png`), fullPage: true });

        if (name === 'desktop') {
          // create a key from the page: shown once, usable at once
          await page.click('#new-key');
          await page.fill('#key-form input[name=name]', 'from-the-page');
          await page.fill('#key-form input[name=budget]', '2.50');
          await page.fill('#key-form input[name=models]', 'gpt-4o-mini');
          // a bad expiry is refused with the API's message in the form
          await page.fill('#key-form input[name=expires]', 'soon');
          await page.click('#key-form button[type=submit]');
          await waitFor(async () => /expires/i.test(await page.locator('#key-error').textContent()), { msg: 'the form shows the error' });
          await page.fill('#key-form input[name=expires]', '30d');
          await page.click('#key-form button[type=submit]');
          await page.waitForSelector('#key-secret:not([hidden])');
          const key = await page.locator('#key-text').textContent();
          made.push(key);
          assert.match(key, /^sk-sluice-/);
          const c = sluice.client({ apiKey: key });
          await c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'new key' }] });
          await page.waitForSelector('#t-keys tr[data-key="from-the-page"]');
          const cells = await page.locator('#t-keys tr[data-key="from-the-page"] td').allTextContents();
          assert.equal(cells[3], '$2.50 / month');
          assert.equal(cells[4], 'gpt-4o-mini');
          assert.match(cells[5], /^\d{4}-\d{2}-\d{2}$/);
          page.once('dialog', (d) => d.accept());
          await page.click('#t-keys tr[data-key="from-the-page"] button[data-revoke]');
          await waitFor(async () => (await page.locator('#t-keys tr[data-key="from-the-page"] .badge').textContent()) === 'revoked',
            { msg: 'the key shows as revoked' });
          await assert.rejects(c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'revoked' }] }),
            (e) => e.status === 401);

          // the same browser, logged in, visits the page on the other port
          const other = await ctx.newPage();
          await other.goto(`http://127.0.0.1:${evil.address().port}/`);
          await other.waitForFunction(() => document.title === 'sent');
          await other.close();
          assert.equal(evilHits >= 1, true);
        }
        assert.deepEqual(errors, []);
        await ctx.close();
      }
      const list = await admin('/admin/keys', { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      assert.deepEqual(list.json().data.filter((k) => k.name === 'evil-key'), [], 'the cross-site POST created a key');
    } finally {
      await browser.close();
      await new Promise((r) => evil.close(r));
    }
  });

  it('reports stats, budgets and the tail as the ledger has them', async () => {
    const key = await createKey(sluice, 'budgeted', ['--budget', '1', '--period', 'month']);
    made.push(key.key);
    await sluice.client({ apiKey: key.key }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'budget' }] });
    const auth = { authorization: `Bearer ${ADMIN_KEY}` };
    const st = (await admin('/admin/stats?since=24h', { headers: auth })).json();
    const usage = await sluiceCli(sluice, ['usage', '--since', '24h', '--by', 'model', '--format', 'json']);
    const u = JSON.parse(usage.stdout).find((g) => g.id === 'gpt-4o-mini');
    const m = st.models.find((x) => x.model === 'gpt-4o-mini');
    assert.equal(m.requests, u.requests);
    assert.equal(m.cost_usd.replace(/0+$/, ''), u.cost_usd.replace(/0+$/, ''));
    assert.equal(st.requests.reduce((a, b) => a + b, 0), st.total.requests);
    assert.ok(st.total.ttft_us.p50 > 0, 'a stream gives a time to first token');
    const b = (await admin('/admin/budgets', { headers: auth })).json().data.find((x) => x.name === 'budgeted');
    assert.equal(b.kind, 'key');
    assert.equal(b.budget_usd, '1.00');
    assert.ok(b.spent_nusd > 0);
    assert.ok(b.projected_nusd >= b.spent_nusd);
    assert.ok(b.points.length >= 1);
    const tail = (await admin('/admin/tail?after=0&limit=5', { headers: auth })).json();
    assert.ok(tail.data.length >= 1 && tail.data.length <= 5);
    const last = tail.data[tail.data.length - 1];
    assert.equal(last.key, 'budgeted');
    assert.equal(last.served_model, 'gpt-4o-mini-2024-07-18');
    for (const e of tail.data) for (const k of ['prompt', 'messages', 'content', 'answer']) assert.ok(!(k in e));
    assert.equal((await admin('/admin/tail?limit=0', { headers: auth })).status, 400);
    assert.equal((await admin('/admin/stats?since=all', { headers: auth })).status, 400);
    assert.equal((await admin('/admin/stats?bucket=week', { headers: auth })).status, 400);
  });
});

// dashboard.tail_text: the tail also keeps the start of the prompt and of
// the answer (plain and streamed, Anthropic's format too, cache hits), on
// one line, bounded, cut between characters; a prompt as the guardrails
// redacted it, and no answer when they rewrite answers.
describe('dashboard with tail_text', () => {
  let stack, sluice, origin;

  before(async () => {
    const adminPort = await freePort();
    stack = await startStack({
      name: 'dashboard-text',
      config: (cfg) => {
        cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
        cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
        cfg.dashboard = { tail_text: true };
        cfg.cache = { enabled: true, ttl: '1h', scope: 'key' };
        cfg.guardrails = { policies: { rest: [{ detect: ['email'], action: 'redact', restore: true }] } };
        cfg.models.restored = { targets: ['mock/gpt-4o-mini-2024-07-18'], guard: 'rest' };
        return cfg;
      },
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY },
    });
    ({ sluice } = stack);
    origin = `http://127.0.0.1:${adminPort}`;
  });

  after(async () => { if (stack) await stack.stop(); });

  it('shows the start of the prompt and of the answer', async () => {
    const client = sluice.client();
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'an earlier question' },
      { role: 'assistant', content: 'an earlier answer' },
      { role: 'user', content: [{ type: 'text', text: 'which lock\nopens first?' }] }] });
    const s = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true,
      messages: [{ role: 'user', content: 'streamed question' }] });
    for await (const _ of s) { /* drain */ }
    const long = 'é'.repeat(300); // 600 bytes: cut at 240, between two characters
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: long }] });
    const claude = new Anthropic({ baseURL: sluice.root, apiKey: sluice.key, maxRetries: 0 });
    const ms = await claude.messages.create({ model: 'gpt-4o-mini', max_tokens: 64, stream: true,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'from claude code' }] }] });
    for await (const _ of ms) { /* drain */ }
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'streamed question' }] });
    const red = await client.chat.completions.create({ model: 'restored', messages: [{ role: 'user', content: 'write to ann@example.com' }] });
    assert.equal(red.choices[0].message.content, 'mock reply: write to ann@example.com'); // restored for the client
    const r = await request(`${origin}/admin/tail?after=0`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(r.status, 200, r.body);
    const j = r.json();
    assert.equal(j.text, true);
    assert.equal(j.data.length, 6);
    assert.equal(j.data[4].cache, 'hit');
    assert.equal(j.data[4].prompt, 'streamed question');
    assert.equal(j.data[4].answer, 'mock reply: streamed question');
    assert.match(j.data[5].prompt, /^write to \[EMAIL_1\]$/);
    assert.equal(j.data[5].answer, '');
    assert.ok(!JSON.stringify(j).includes('ann@example.com'), 'the tail shows a redacted address');
    assert.equal(j.data[0].prompt, 'which lock opens first?');
    assert.equal(j.data[0].answer, 'mock reply: which lock opens first?');
    assert.equal(j.data[1].prompt, 'streamed question');
    assert.equal(j.data[1].answer, 'mock reply: streamed question');
    assert.equal(j.data[2].prompt, 'é'.repeat(120));
    assert.ok(Buffer.byteLength(j.data[2].answer) <= 240 && j.data[2].answer.startsWith('mock reply: éé'));
    assert.ok(!j.data[2].answer.includes('?') && !j.data[2].answer.includes('\ufffd'));
    assert.equal(j.data[3].endpoint, 'messages');
    assert.equal(j.data[3].prompt, 'from claude code');
    assert.equal(j.data[3].answer, 'mock reply: from claude code');
  });
});
