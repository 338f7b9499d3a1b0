// The guardrails on the dashboard: a blocked and a redacted request show
// their decisions (policy, rule, action; never the matched text) in the live
// tail, and the Guardrails panel counts the decisions by policy and action
// over the window (/admin/stats guard). An overspent budget's projection
// reads "over budget" instead of a share past 1000%. Chromium at desktop
// and phone widths; the screenshots are kept in the instance's directory.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  startStack, request, freePort, randomKey, writePricing, makeTmpDir, sluiceCli, createKey,
} from '../lib/harness.mjs';

const ADMIN_KEY = randomKey('sk-admin-');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run'];
const EMAIL = 'dana.secret@example.org';

describe('dashboard: guardrail decisions', () => {
  let stack, sluice, adminPort, admin, origin, tmp;

  before(async () => {
    adminPort = await freePort();
    tmp = await makeTmpDir('dashboard-guard');
    const pricing = await writePricing(path.join(tmp, 'pricing.yaml'), {
      'mock/gpt-4o-mini-2024-07-18': { input: 150000, output: 600000 },
    });
    stack = await startStack({
      name: 'dashboard-guard',
      config: (cfg) => {
        cfg.server.admin_listen = `127.0.0.1:${adminPort}`;
        cfg.auth.admin_key = 'env:SLUICE_TEST_ADMIN_KEY';
        cfg.pricing = pricing;
        cfg.guardrails = {
          policies: {
            pii: [
              { deny: ['project falcon'], action: 'block', name: 'falcon' },
              { detect: ['email', 'card'], action: 'redact', restore: true },
            ],
          },
          apply: 'pii',
        };
        return cfg;
      },
      env: { SLUICE_TEST_ADMIN_KEY: ADMIN_KEY },
    });
    ({ sluice } = stack);
    origin = `http://127.0.0.1:${adminPort}`;
    admin = (p, opts = {}) => request(origin + p, { timeoutMs: 5000, ...opts });
    const client = sluice.client();
    // redacted (and restored), then blocked before any upstream call
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `write to ${EMAIL} today` }] });
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'status of Project Falcon?' }] }),
      (e) => e.status === 400 && /guardrail policy "pii", rule "falcon"/.test(e.message));
    // a budget far overspent: a tiny one and an expensive request
    const key = await createKey(sluice, 'overspent', ['--budget', '0.01', '--period', 'month']);
    await sluice.client({ apiKey: key.key }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(4000) }] });
  });

  after(async () => {
    if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
    if (!stack) return;
    const logs = sluice.allLogs() + sluice.stderr;
    await stack.stop();
    assert.ok(!logs.includes(ADMIN_KEY), 'the admin key appears in the logs');
  });

  async function link() {
    const r = await sluiceCli(sluice, ['dashboard']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').pop();
  }

  it('has the decisions in the tail and by policy and action in the stats, never the text', async () => {
    const auth = { authorization: `Bearer ${ADMIN_KEY}` };
    const tail = (await admin('/admin/tail?limit=50', { headers: auth })).json();
    const guards = tail.data.map((e) => e.guard);
    assert.ok(guards.includes('pii/email/redact'), JSON.stringify(guards));
    assert.ok(guards.includes('pii/falcon/block'), JSON.stringify(guards));
    assert.ok(guards.includes(''), 'a request without a decision has an empty guard');
    const st = (await admin('/admin/stats?since=24h', { headers: auth })).json();
    const by = Object.fromEntries(st.guard.map((g) => [`${g.policy}/${g.action}`, g]));
    assert.deepEqual(Object.keys(by).sort(), ['pii/block', 'pii/redact']);
    assert.equal(by['pii/block'].decisions, 1);
    assert.equal(by['pii/redact'].decisions, 1);
    assert.equal(st.guard_requests, 2);
    for (const body of [JSON.stringify(tail), JSON.stringify(st)]) {
      assert.ok(!body.includes(EMAIL) && !/falcon\?/i.test(body), 'matched text on the admin API');
    }
    const b = (await admin('/admin/budgets', { headers: auth })).json().data.find((x) => x.name === 'overspent');
    assert.ok(b.spent_nusd > 10 * b.budget_nusd, `spent ${b.spent_usd} of ${b.budget_usd}`);
  });

  it('shows them on the page at desktop and phone widths; an overspent budget reads "over budget"', async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      for (const [name, viewport] of [['desktop', { width: 1440, height: 900 }], ['narrow', { width: 390, height: 844 }]]) {
        const ctx = await browser.newContext({ viewport });
        const page = await ctx.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(await link());
        await page.waitForURL(`${origin}/`);
        await page.waitForSelector('#t-guard tr[data-guard]', { timeout: 10000 });
        await page.waitForSelector('#t-tail tr[data-request] .gds .badge');
        // the panel: a row per policy and action, block first in red, redact in amber
        assert.equal(await page.locator('#t-guard tr[data-guard="pii/block"] .badge.bad').textContent(), 'block');
        assert.equal(await page.locator('#t-guard tr[data-guard="pii/redact"] .badge.warn').textContent(), 'redact');
        assert.match(await page.locator('#h-guard').textContent(), /2 requests with a decision/);
        // the tail: each request's decision as a badge, the rule and action
        const badges = await page.locator('#t-tail .gds .badge').allTextContents();
        assert.ok(badges.includes('falcon block'), JSON.stringify(badges));
        assert.ok(badges.includes('email redact'), JSON.stringify(badges));
        assert.equal(await page.locator('#t-tail .gds .badge.bad', { hasText: 'falcon block' }).count(), 1);
        const text = await page.locator('body').textContent();
        assert.ok(!text.includes(EMAIL), 'the matched text is on the page');
        // the overspent budget: no four-digit share, the bar and its marker capped
        const budget = page.locator('[data-budget="key:overspent"]');
        const foot = await budget.locator('.foot').textContent();
        assert.match(foot, /over budget/);
        assert.match(foot, /→ \$[0-9.,]+ by \d{4}-\d\d-\d\d/);
        assert.doesNotMatch(foot, /\d{4,}%/);
        const bar = await budget.locator('.bar').boundingBox();
        const fill = await budget.locator('.bar .fill').boundingBox();
        assert.ok(fill.width <= bar.width + 0.5, `fill ${fill.width} past bar ${bar.width}`);
        const mark = await budget.locator('.bar .proj').boundingBox();
        assert.ok(mark.x <= bar.x + bar.width, 'projection marker outside the bar');
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `${name}: the page is ${overflow}px wider than the window`);
        await page.locator('#p-guard').screenshot({ path: path.join(sluice.dir, `guard-panel-${name}.png`) });
        await page.locator('#p-tail').screenshot({ path: path.join(sluice.dir, `guard-tail-${name}.png`) });
        await page.locator('#p-budgets').screenshot({ path: path.join(sluice.dir, `guard-budgets-${name}.png`) });
        await page.screenshot({ path: path.join(sluice.dir, `guard-${name}.png`), fullPage: true });
        assert.deepEqual(errors, []);
        await ctx.close();
      }
    } finally {
      await browser.close();
    }
  });
});
