// Memory of open streams, for `scripts/bench streams`: opens N concurrent
// streamed chat completions against sluice (one connection each, raw
// sockets), waits until every one of them has received content, samples the
// workers' RSS, then ends them (BENCH_STREAM_END=abort, the default: the
// clients close, so a round does not depend on how long opening 10,000
// streams takes on a busy machine; =wait: each stream runs to [DONE]),
// waits BENCH_IDLE_WAIT_MS (6 s) and samples the idle RSS; ROUNDS times.
// Prints one line per sample and a summary. Exits non-zero when a round
// does not get every stream open (or, with wait, to [DONE]).
//
//   node streams.mjs PORT KEY MASTER_PID STREAMS ROUNDS CHUNKS DELAY_MS
//
// The workers are the master's children; RSS is VmRSS and RssAnon from
// /proc (RssAnon leaves out the binary, libraries and LMDB's file-backed map).

import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [port, key, masterPid, streams, rounds, chunks, delayMs] = process.argv.slice(2);
const N = Number(streams);
const END = process.env.BENCH_STREAM_END || 'abort';
const TLS = process.env.BENCH_STREAM_TLS === '1';
const ROUNDS = Number(rounds);
// connections opened at once; the next batch once these are connected (TLS
// handshakes cost the worker far more than a plain accept: smaller batches)
const BATCH = Number(process.env.BENCH_STREAM_BATCH || (process.env.BENCH_STREAM_TLS === '1' ? 25 : 250));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function workers() {
  const out = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const st = fs.readFileSync(`/proc/${ent}/stat`, 'utf8');
      const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (rest[1] === masterPid && rest[0] !== 'Z') out.push(Number(ent));
    } catch { /* gone */ }
  }
  return out.sort((a, b) => a - b);
}

// {rss, anon} in KiB, summed over the workers
function rss() {
  let r = 0;
  let a = 0;
  for (const pid of workers()) {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    r += Number(/^VmRSS:\s+(\d+)/m.exec(s)?.[1] || 0);
    a += Number(/^RssAnon:\s+(\d+)/m.exec(s)?.[1] || 0);
  }
  return { rss: r, anon: a };
}

const body = (i) => JSON.stringify({
  model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: `stream ${i} of the memory bench` }],
});

// One stream: resolves {first} once content arrived; .done resolves at close.
function openStream(i) {
  const b = body(i);
  const sock = TLS
    ? tls.connect({ port: Number(port), host: '127.0.0.1', rejectUnauthorized: false })
    : net.connect({ port: Number(port), host: '127.0.0.1' });
  const st = { sock, bytes: 0, first: false, ok: false, error: null };
  let text = '';
  st.firstP = new Promise((resolve) => {
    sock.on('data', (d) => {
      st.bytes += d.length;
      if (text.length < 4096) text += d.toString('latin1');
      if (!st.first && /data: \{/.test(text)) { st.first = true; resolve(); }
      if (/data: \[DONE\]/.test(text.slice(-64)) || d.includes('data: [DONE]')) st.ok = true;
    });
    sock.on('close', () => resolve());
  });
  st.done = new Promise((resolve) => sock.on('close', resolve));
  st.connected = new Promise((resolve) => {
    sock.once(TLS ? 'secureConnect' : 'connect', resolve);
    sock.once('close', resolve);
  });
  sock.on('error', (e) => { st.error = e.code || e.message; });
  sock.setNoDelay(true);
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer ${key}\r\n` +
    `Content-Type: application/json\r\nConnection: close\r\nx-mock-chunks: ${chunks}\r\n` +
    `x-mock-chunk-delay-ms: ${delayMs}\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`);
  return st;
}

function fmt(kib) { return `${(kib / 1024).toFixed(1)} MiB`; }

async function main() {
  const lines = [];
  const say = (s) => { console.log(s); lines.push(s); };
  await sleep(500);
  const base = rss();
  say(`idle before:      workers ${workers().length}, RSS ${fmt(base.rss)}, anon ${fmt(base.anon)}`);
  let failed = 0;
  let before = base;
  const perK = [];
  const idle = [base];
  for (let r = 1; r <= ROUNDS; r++) {
    const all = [];
    const t0 = Date.now();
    for (let i = 0; i < N; i += BATCH) {
      const batch = [];
      for (let k = i; k < Math.min(N, i + BATCH); k++) batch.push(openStream(k));
      all.push(...batch);
      await Promise.race([Promise.all(batch.map((s) => s.connected)), sleep(20000)]);
    }
    await Promise.race([Promise.all(all.map((s) => s.firstP)), sleep(Number(delayMs) + 60000)]);
    const open = all.filter((s) => s.first && !s.sock.destroyed).length;
    if (open !== N) {
      failed += N - open;
      const errs = all.filter((s) => s.error).map((s) => s.error);
      say(`round ${r}: only ${open} of ${N} streams open; errors: ${[...new Set(errs)].join(', ') || 'none'}`);
    }
    await sleep(300);
    const at = rss();
    const per = ((at.rss - before.rss) / open) * 1000;
    const perAnon = ((at.anon - before.anon) / open) * 1000;
    perK.push({ per, perAnon });
    say(`round ${r}: ${open}/${N} streams open after ${((Date.now() - t0) / 1000).toFixed(1)} s: ` +
      `RSS ${fmt(at.rss)} (anon ${fmt(at.anon)}); per 1,000 open streams ${fmt(per)} (anon ${fmt(perAnon)})`);
    if (END === 'wait') {
      await Promise.race([Promise.all(all.map((s) => s.done)), sleep(Number(chunks) * Number(delayMs) + 120000)]);
      const ok = all.filter((s) => s.ok).length;
      const errs = all.filter((s) => s.error).map((s) => s.error);
      if (ok !== N) {
        failed += N - ok;
        say(`round ${r}: only ${ok} of ${N} streams ended with [DONE]; errors: ${[...new Set(errs)].join(', ') || 'none'}`);
      }
    }
    all.forEach((s) => s.sock.destroy());
    // the idle timer of the workers (if any) gets a few seconds
    await sleep(Number(process.env.BENCH_IDLE_WAIT_MS || 6000));
    before = rss();
    idle.push(before);
    say(`round ${r}: idle again: RSS ${fmt(before.rss)} (anon ${fmt(before.anon)})`);
  }
  const avg = (f) => perK.reduce((s, x) => s + f(x), 0) / perK.length;
  say(`summary: ${N} streams x ${ROUNDS} rounds; RSS per 1,000 open streams ${fmt(avg((x) => x.per))} ` +
    `(anon ${fmt(avg((x) => x.perAnon))}); idle RSS ${idle.map((x) => fmt(x.rss)).join(' -> ')}` +
    `${failed ? `; ${failed} streams failed` : ''}`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(2); });
