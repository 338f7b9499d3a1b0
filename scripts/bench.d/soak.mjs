// Soak, for scripts/soak: SOAK_MS of mixed traffic from SOAK_CONC clients
// through every frontend (chat, messages, responses with chaining,
// embeddings; JSON and streamed), cache hits, a redacting guardrail and
// refused requests, against one sluice (2 workers) and the mock. Samples
// the workers' RSS, anonymous RSS and open descriptors every 20 s, then
// checks: no request failed (a refused one got its status), the ledger has
// exactly one row per request that passed authentication, the workers'
// anonymous memory grew less than SOAK_ANON_KIB after the first minute (the
// LMDB map is file-backed and grows with the rows), no descriptor leaked,
// and the error log holds no alert, emerg or sanitizer line. Exits 1 when a
// check fails.
//
//   SLUICE_BIN=... SLUICE_MOCK=... node scripts/bench.d/soak.mjs

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { startStack, sleep, usageJson, request, childPids } from '../../test/lib/harness.mjs';

// the SDKs are the test suite's (test/node_modules, scripts/setup test)
const fromTest = createRequire(new URL('../../test/package.json', import.meta.url));
const { default: OpenAI } = await import(fromTest.resolve('openai'));
const { default: Anthropic } = await import(fromTest.resolve('@anthropic-ai/sdk'));

const SOAK_MS = Number(process.env.SOAK_MS || 600000);
const CONC = Number(process.env.SOAK_CONC || 12);
const ANON_KIB = Number(process.env.SOAK_ANON_KIB || 8192);
const WARM_MS = Math.min(60000, SOAK_MS / 4);

const stack = await startStack({
  name: 'soak',
  config: (cfg, { dir }) => {
    cfg.server.log_level = 'warn';
    cfg.pricing = path.join(dir, 'pricing.yaml');
    fs.writeFileSync(cfg.pricing, 'models:\n'
      + '  "mock/gpt-4o-mini-2024-07-18": {input: 1, output: 2}\n'
      + '  "mock/text-embedding-3-small": {input: 1}\n'
      + '  "anth/claude-haiku-4-5": {input: 1, output: 2}\n');
    cfg.storage.map_size = '1GiB';
    cfg.cache = { enabled: true, ttl: '1h', scope: 'key', max_size: '16MiB' };
    const root = cfg.providers.mock.base_url.replace(/\/v1$/, '');
    cfg.providers.anth = { kind: 'anthropic', base_url: root, api_key: 'env:MOCK_UPSTREAM_KEY' };
    cfg.models.claude = { targets: ['anth/claude-haiku-4-5'] };
    cfg.models['text-embedding-3-small'] = { targets: ['mock/text-embedding-3-small'] };
    cfg.models.guarded = { targets: ['mock/gpt-4o-mini-2024-07-18'], guard: 'pii', cache: false };
    cfg.guardrails = {
      policies: { pii: [{ detect: ['email', 'phone', 'card', 'iban', 'ip', 'secret'], action: 'redact', restore: true }] },
    };
    return cfg;
  },
});
const { sluice } = stack;
const openai = new OpenAI({ apiKey: sluice.key, baseURL: sluice.baseURL, maxRetries: 0 });
const anthropic = new Anthropic({ apiKey: sluice.key, baseURL: sluice.root, maxRetries: 0 });
const drain = async (s) => { for await (const _ of s) { /* every event */ } };

// each returns how many ledger rows it made (requests that passed authentication)
const kinds = [
  async (i) => { await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${i}` }] }); return 1; },
  async (i) => {
    await drain(await openai.chat.completions.create({
      model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `stream ${i}` }],
    }));
    return 1;
  },
  // fifty prompts over and over: cache hits
  async (i) => { await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `repeat ${i % 50}` }] }); return 1; },
  async (i) => { await anthropic.messages.create({ model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: `msg ${i}` }] }); return 1; },
  async (i) => {
    await drain(await anthropic.messages.create({ model: 'claude', max_tokens: 50, stream: true, messages: [{ role: 'user', content: `smsg ${i}` }] }));
    return 1;
  },
  async (i) => {
    const r = await openai.responses.create({ model: 'claude', input: `resp ${i}` });
    if (i % 3 !== 0) return 1;
    await openai.responses.create({ model: 'claude', input: 'and then', previous_response_id: r.id });
    return 2;
  },
  async (i) => { await drain(await openai.responses.create({ model: 'gpt-4o-mini', input: `sresp ${i}`, stream: true })); return 1; },
  async (i) => { await openai.embeddings.create({ model: 'text-embedding-3-small', input: [`emb ${i}`, 'two'] }); return 1; },
  async (i) => {
    const pad = String(i % 1000).padStart(3, '0');
    await openai.chat.completions.create({
      model: 'guarded', messages: [{ role: 'user', content: `mail jane${i}@example.com or +44 20 7946 0${pad}, card 4111111111111111` }],
    });
    return 1;
  },
  async (i) => {
    await drain(await openai.chat.completions.create({
      model: 'guarded', stream: true, messages: [{ role: 'user', content: `ip 10.0.${i % 250}.1 and jane${i}@example.org` }],
    }));
    return 1;
  },
  // refused: a body that is no JSON (authenticated: a row) and a wrong key (no row)
  async () => {
    const r = await request(`${sluice.baseURL}/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${sluice.key}`, 'content-type': 'application/json' }, body: '{"model":',
    });
    if (r.status !== 400) throw new Error(`a broken body got ${r.status}`);
    return 1;
  },
  async () => {
    const r = await request(`${sluice.baseURL}/chat/completions`, {
      method: 'POST', headers: { authorization: 'Bearer sk-wrong', 'content-type': 'application/json' }, body: '{}',
    });
    if (r.status !== 401) throw new Error(`a wrong key got ${r.status}`);
    return 0;
  },
];

const stat = (pid) => {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k) => Number((new RegExp(`${k}:\\s+(\\d+)`).exec(s) || [0, 0])[1]);
    return { pid, rss: kib('VmRSS'), anon: kib('RssAnon'), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return null;
  }
};
const workers = () => childPids(sluice.pid).map(stat).filter(Boolean);

let started = 0, done = 0, rows = 0;
const failures = new Map();
const t0 = Date.now();
let warm = null;
const sample = () => {
  const w = workers();
  const t = Date.now() - t0;
  if (warm === null && t >= WARM_MS) warm = w;
  console.log(JSON.stringify({ s: Math.round(t / 1000), requests: done, rows, failed: [...failures.values()].reduce((a, b) => a + b, 0), workers: w }));
};
const sampler = setInterval(sample, 20000);
async function client() {
  while (Date.now() - t0 < SOAK_MS) {
    const i = started++;
    try {
      const made = await kinds[i % kinds.length](i);
      rows += made;
    } catch (e) {
      const what = String(e && e.message ? e.message : e).slice(0, 160);
      failures.set(what, (failures.get(what) || 0) + 1);
    }
    done++;
  }
}
await Promise.all(Array.from({ length: CONC }, client));
clearInterval(sampler);
sample();
const end = workers();
await sleep(1500); // the last group commit
const usage = await usageJson(sluice, 'key', 'all');
const ledger = usage.reduce((a, u) => a + u.requests, 0);
await stack.stop(); // checks the error log

const problems = [];
if (failures.size) problems.push(`failed requests: ${JSON.stringify([...failures.entries()].slice(0, 10))}`);
if (ledger !== rows) problems.push(`the ledger has ${ledger} rows for ${rows} requests that passed authentication`);
for (const w of end) {
  const before = (warm || []).find((x) => x.pid === w.pid);
  if (!before) problems.push(`worker ${w.pid} was not there after the first minute (a worker died?)`);
  else {
    if (w.anon - before.anon > ANON_KIB) problems.push(`worker ${w.pid}: anonymous RSS ${before.anon} -> ${w.anon} KiB`);
    if (w.fds > before.fds + 16) problems.push(`worker ${w.pid}: open descriptors ${before.fds} -> ${w.fds}`);
  }
}
console.log(`soak: ${done} requests in ${Math.round((Date.now() - t0) / 1000)} s, ${rows} ledger rows expected, ${ledger} found; `
  + `workers' anonymous RSS ${(warm || []).map((w) => w.anon).join('/')} -> ${end.map((w) => w.anon).join('/')} KiB, `
  + `RSS ${end.map((w) => w.rss).join('/')} KiB, descriptors ${end.map((w) => w.fds).join('/')}`);
for (const p of problems) console.log(`soak: FAILED: ${p}`);
process.exit(problems.length ? 1 : 0);
