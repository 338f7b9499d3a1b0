// sluice dashboard: vanilla JavaScript, inline SVG charts, nothing fetched
// from anywhere but this admin listener. It reads /admin/session, /admin/stats,
// /admin/budgets, /admin/targets, /admin/alerts, /admin/tail and /admin/keys;
// requests that change something carry the session's CSRF token.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const SVGNS = 'http://www.w3.org/2000/svg';
  const PALETTE = ['#2f7fc1', '#f08c2e', '#3aa676', '#d1495b', '#8a63d2', '#1fb5b5', '#c9a227', '#e377c2'];
  const OTHER = '#b7c1cc';
  const state = {
    csrf: null, since: '24h', spendBy: 'model', stats: null, tailSeq: 0, tail: [],
    timers: [], charts: {}, busy: false,
  };

  // ------------------------------------------------------------ helpers

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, v);
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  const nf = new Intl.NumberFormat('en-US');
  function num(n) { return n === null || n === undefined ? '–' : nf.format(n); }
  function compact(n) {
    if (n === null || n === undefined) return '–';
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + 'M';
    if (Math.abs(n) >= 1e3) return (n / 1e3).toFixed(n >= 1e4 ? 0 : 1) + 'k';
    return String(Math.round(n * 100) / 100);
  }
  // nano-USD -> "$12.34", small amounts with enough digits to show
  function usd(nusd) {
    const d = Number(nusd) / 1e9;
    if (!isFinite(d)) return '–';
    if (d === 0) return '$0';
    if (d < 0.0001) return '<$0.0001';
    if (d < 0.01) return '$' + d.toPrecision(2).replace(/0+$/, '');
    if (d < 1000) return '$' + d.toFixed(2);
    return '$' + nf.format(Math.round(d));
  }
  function usdText(s) { return s === null || s === undefined ? '–' : usd(Math.round(parseFloat(s) * 1e9)); }
  function dur(us) {
    if (us === null || us === undefined) return '–';
    if (us === 0) return '0';
    if (us < 1000) return (us / 1000).toFixed(2) + ' ms';
    if (us < 1e6) return Math.round(us / 1000) + ' ms';
    return (us / 1e6).toFixed(us < 1e7 ? 2 : 1) + ' s';
  }
  function pct(x, digits = 1) { return x === null || x === undefined || !isFinite(x) ? '–' : (x * 100).toFixed(digits) + '%'; }
  const pad = (n) => String(n).padStart(2, '0');
  function timeLabel(ms, bucketMs) {
    const d = new Date(ms);
    if (bucketMs >= 86400000) return `${d.getUTCMonth() + 1}/${d.getUTCDate()}`;
    return `${pad(d.getUTCHours())}:00`;
  }
  function clock(ms) { const d = new Date(ms); return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`; }
  function ago(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + 's ago';
    if (s < 3600) return Math.round(s / 60) + 'm ago';
    if (s < 86400) return Math.round(s / 3600) + 'h ago';
    return Math.round(s / 86400) + 'd ago';
  }
  // "nice" axis maximum and ticks for 0..max
  function niceTicks(max, count = 4) {
    if (!(max > 0)) return { max: 1, ticks: [0, 1] };
    const raw = max / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
    const top = Math.ceil(max / step) * step;
    const ticks = [];
    for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
    return { max: top, ticks };
  }

  // ---------------------------------------------------------------- API

  class HttpError extends Error {}

  async function api(path, { method = 'GET', body } = {}) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && state.csrf) headers['x-csrf-token'] = state.csrf;
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
    let j = null;
    try { j = await r.json(); } catch { /* empty */ }
    if (r.status === 401) { showLogin(); throw new HttpError('not logged in'); }
    if (!r.ok) throw new HttpError((j && j.error && j.error.message) || `${r.status} ${r.statusText}`);
    return j;
  }

  // -------------------------------------------------------------- charts

  // A chart sized to its box: bars (stacked) and/or lines over buckets.
  // opts: {x: [ms], bucketMs, bars: [{name, color, values}], lines: [{name,
  // color, values, dash, axis: 'right'}], fmt, fmtRight, rightMax}
  function drawChart(box, opts) {
    state.charts[box.id] = opts;
    box.replaceChildren();
    const W = Math.max(box.clientWidth, 200), H = Math.max(box.clientHeight, 120);
    const m = { l: 52, r: opts.lines && opts.lines.some((l) => l.axis === 'right') ? 44 : 10, t: 8, b: 22 };
    const w = W - m.l - m.r, h = H - m.t - m.b, n = opts.x.length;
    if (n === 0) return;
    const bars = opts.bars || [], lines = (opts.lines || []).filter((l) => l.axis !== 'right');
    const right = (opts.lines || []).filter((l) => l.axis === 'right');
    let maxL = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (const b of bars) s += b.values[i] || 0;
      maxL = Math.max(maxL, s);
      for (const l of lines) if (l.values[i] !== null) maxL = Math.max(maxL, l.values[i] || 0);
    }
    const left = niceTicks(maxL);
    let rightT = null;
    if (right.length) {
      let mr = opts.rightMax || 0;
      for (const l of right) for (const v of l.values) if (v !== null) mr = Math.max(mr, v);
      rightT = niceTicks(mr);
    }
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': box.dataset.chart || 'chart' });
    const g = svg('g', { transform: `translate(${m.l},${m.t})` });
    s.append(g);
    const y = (v) => h - (v / left.max) * h;
    const yr = (v) => h - (v / rightT.max) * h;
    const band = w / n, x = (i) => i * band + band / 2;
    const axis = svg('g', { class: 'axis' });
    for (const t of left.ticks) {
      axis.append(svg('line', { class: t === 0 ? 'baseline' : 'gridline', x1: 0, x2: w, y1: y(t), y2: y(t) }));
      axis.append(svg('text', { x: -8, y: y(t) + 4, 'text-anchor': 'end' }, (opts.fmt || compact)(t)));
    }
    if (rightT) {
      for (const t of rightT.ticks) axis.append(svg('text', { x: w + 8, y: yr(t) + 4, 'text-anchor': 'start' }, (opts.fmtRight || compact)(t)));
    }
    const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(w / 62))));
    for (let i = 0; i < n; i += every) {
      axis.append(svg('text', { x: x(i), y: h + 16, 'text-anchor': 'middle' }, timeLabel(opts.x[i], opts.bucketMs)));
    }
    g.append(axis);
    const bw = Math.max(1, Math.min(28, band * 0.72));
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (const b of bars) {
        const v = b.values[i] || 0;
        if (v <= 0) continue;
        const y0 = y(acc), y1 = y(acc + v);
        g.append(svg('rect', { x: x(i) - bw / 2, y: y1, width: bw, height: Math.max(0.5, y0 - y1), fill: b.color, rx: Math.min(2, bw / 4) }));
        acc += v;
      }
    }
    for (const l of [...lines, ...right]) {
      const ys = l.axis === 'right' ? yr : y;
      let d = '', pen = false;
      l.values.forEach((v, i) => {
        if (v === null || v === undefined) { pen = false; return; }
        d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${ys(v).toFixed(1)}`;
        pen = true;
      });
      if (d) g.append(svg('path', { d, fill: 'none', stroke: l.color, 'stroke-width': l.width || 2, 'stroke-dasharray': l.dash, 'stroke-linejoin': 'round', 'stroke-linecap': 'round' }));
      l.values.forEach((v, i) => {
        const prev = l.values[i - 1], next = l.values[i + 1];
        if (v !== null && v !== undefined && (prev === null || prev === undefined) && (next === null || next === undefined)) {
          g.append(svg('circle', { cx: x(i), cy: ys(v), r: 2.5, fill: l.color }));
        }
      });
    }
    // hover: a guide line and a tooltip with every series at that bucket
    const guide = svg('line', { class: 'hover', y1: 0, y2: h, visibility: 'hidden' });
    g.append(guide);
    const hit = svg('rect', { x: 0, y: 0, width: w, height: h, fill: 'transparent' });
    g.append(hit);
    const tip = el('div', { class: 'tip', hidden: true });
    box.append(s, tip);
    const move = (ev) => {
      const rect = s.getBoundingClientRect();
      const px = (ev.clientX - rect.left) * (W / rect.width) - m.l;
      const i = Math.min(n - 1, Math.max(0, Math.floor(px / band)));
      guide.setAttribute('x1', x(i)); guide.setAttribute('x2', x(i)); guide.setAttribute('visibility', 'visible');
      const rows = [];
      for (const b of bars) if (b.values[i]) rows.push([b.color, b.name, (opts.fmt || compact)(b.values[i])]);
      for (const l of lines) if (l.values[i] !== null && l.values[i] !== undefined) rows.push([l.color, l.name, (opts.fmt || compact)(l.values[i])]);
      for (const l of right) if (l.values[i] !== null && l.values[i] !== undefined) rows.push([l.color, l.name, (opts.fmtRight || compact)(l.values[i])]);
      const d = new Date(opts.x[i]);
      tip.replaceChildren(el('div', { class: 't', text: opts.bucketMs >= 86400000 ? d.toISOString().slice(0, 10) : d.toISOString().slice(0, 13).replace('T', ' ') + ':00 UTC' }),
        ...(rows.length ? rows : [[OTHER, 'no requests', '']]).map(([c, nm, v]) => {
          const sw = el('span', { class: 'sw' }); sw.style.background = c;
          return el('div', { class: 'row' }, sw, `${nm}${v !== '' ? ': ' : ''}`, el('strong', { text: v }));
        }));
      tip.hidden = false;
      const bx = box.getBoundingClientRect();
      let left = ev.clientX - bx.left + 14;
      if (left + tip.offsetWidth > bx.width) left = ev.clientX - bx.left - tip.offsetWidth - 14;
      tip.style.left = Math.max(0, left) + 'px';
      tip.style.top = Math.max(0, ev.clientY - bx.top - 10) + 'px';
    };
    hit.addEventListener('pointermove', move);
    hit.addEventListener('pointerleave', () => { tip.hidden = true; guide.setAttribute('visibility', 'hidden'); });
  }

  function legend(box, items) {
    box.replaceChildren(...items.map(({ color, name, value, line }) => {
      const sw = el('span', { class: line ? 'sw line' : 'sw' }); sw.style.background = color;
      return el('span', { class: 'item', title: name }, sw, el('span', { class: 'nm', text: name }), value !== undefined ? el('span', { class: 'v', text: value }) : null);
    }));
  }

  function sparkline(points, budgetNusd, projected, start, end) {
    const W = 300, H = 46;
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'spend this period' });
    if (!points.length || !end) return s;
    const max = Math.max(budgetNusd, projected, ...points.map((p) => p.spent_nusd)) || 1;
    const x = (t) => ((t - start) / (end - start)) * W, y = (v) => H - 2 - (v / max) * (H - 4);
    s.append(svg('line', { x1: 0, x2: W, y1: y(budgetNusd), y2: y(budgetNusd), stroke: '#d1495b', 'stroke-width': 1, 'stroke-dasharray': '4 3', 'vector-effect': 'non-scaling-stroke' }));
    let d = `M0,${y(0)}`;
    for (const p of points) d += `L${x(p.t + (p.step || 0)).toFixed(1)},${y(p.spent_nusd).toFixed(1)}`;
    const last = points[points.length - 1];
    const nowX = Math.min(W, x(Date.now()));
    s.append(svg('path', { d: d + `L${nowX.toFixed(1)},${y(last.spent_nusd).toFixed(1)}L${nowX.toFixed(1)},${H}L0,${H}Z`, fill: 'rgba(47,127,193,.12)' }));
    s.append(svg('path', { d: d + `L${nowX.toFixed(1)},${y(last.spent_nusd).toFixed(1)}`, fill: 'none', stroke: '#2f7fc1', 'stroke-width': 2, 'vector-effect': 'non-scaling-stroke' }));
    s.append(svg('path', { d: `M${nowX.toFixed(1)},${y(last.spent_nusd).toFixed(1)}L${W},${y(projected).toFixed(1)}`, fill: 'none', stroke: '#37495a', 'stroke-width': 1.5, 'stroke-dasharray': '3 3', 'vector-effect': 'non-scaling-stroke' }));
    return s;
  }

  // ------------------------------------------------------------- panels

  function card(label, value, note, cls) {
    return el('div', { class: 'card' }, el('div', { class: 'label', text: label }), el('div', { class: 'value' + (cls ? ' ' + cls : ''), text: value, title: value }), el('div', { class: 'note', text: note || '\u00a0' }));
  }

  function renderCards(st) {
    const t = st.total;
    const er = t.requests ? t.errors / t.requests : null;
    const hit = t.requests ? t.cache_hits / t.requests : null;
    $('cards').replaceChildren(
      card('Spend', usd(t.cost_nusd), `${num(t.prompt_tokens + t.completion_tokens)} tokens · last ${state.since}`),
      card('Requests', num(t.requests), `${compact(t.requests / Math.max(1, st.buckets.length))} per ${st.bucket}`),
      card('Error rate', pct(er), `${num(t.errors)} errors (4xx and 5xx)`, er > 0.05 ? 'bad' : er !== null ? 'good' : ''),
      card('Latency p95', dur(t.latency_us.p95), `p50 ${dur(t.latency_us.p50)} · p99 ${dur(t.latency_us.p99)}`),
      card('First token p50', dur(t.ttft_us.p50), `p95 ${dur(t.ttft_us.p95)} · streams only`),
      card('Cache hit ratio', pct(hit), `${num(t.cache_hits)} hits · saved ${usdText(t.saved_usd)}`),
    );
  }

  function renderSpend(st) {
    const series = (st.series[state.spendBy] || []).filter((s) => s.requests > 0);
    const bars = series.map((s, i) => ({ name: s.name, color: s.name === 'other' ? OTHER : PALETTE[i % PALETTE.length], values: s.cost_nusd }));
    drawChart($('c-spend'), { x: st.buckets, bucketMs: st.bucket_ms, bars, fmt: usd });
    legend($('l-spend'), bars.length ? bars.map((b, i) => ({ color: b.color, name: b.name, value: usdText(series[i].cost_usd) })) : [{ color: OTHER, name: 'no spend in this window' }]);
  }

  function renderTraffic(st) {
    const ok = st.requests.map((r, i) => r - st.errors[i]);
    const rate = st.requests.map((r, i) => (r ? st.errors[i] / r : null));
    drawChart($('c-traffic'), {
      x: st.buckets, bucketMs: st.bucket_ms, fmt: compact, fmtRight: (v) => pct(v, 0), rightMax: 0.05,
      bars: [{ name: 'ok', color: '#3aa676', values: ok }, { name: 'errors', color: '#d1495b', values: st.errors }],
      lines: [{ name: 'error rate', color: '#7a2a8c', values: rate, axis: 'right', dash: '4 3', width: 1.5 }],
    });
    legend($('l-traffic'), [{ color: '#3aa676', name: 'answered', value: num(st.total.requests - st.total.errors) }, { color: '#d1495b', name: 'errors', value: num(st.total.errors) }, { color: '#7a2a8c', name: 'error rate (right axis)', line: true }]);
  }

  function renderLatency(st) {
    const lines = [
      { name: 'p50', color: '#3aa676', values: st.latency_us.p50 },
      { name: 'p95', color: '#f08c2e', values: st.latency_us.p95 },
      { name: 'p99', color: '#d1495b', values: st.latency_us.p99 },
      { name: 'TTFT p50', color: '#2f7fc1', values: st.ttft_us.p50, dash: '5 4' },
    ];
    drawChart($('c-latency'), { x: st.buckets, bucketMs: st.bucket_ms, lines, fmt: dur });
    const t = st.total;
    legend($('l-latency'), [
      { color: '#3aa676', name: 'p50', value: dur(t.latency_us.p50), line: true },
      { color: '#f08c2e', name: 'p95', value: dur(t.latency_us.p95), line: true },
      { color: '#d1495b', name: 'p99', value: dur(t.latency_us.p99), line: true },
      { color: '#2f7fc1', name: 'time to first token p50', value: dur(t.ttft_us.p50), line: true },
    ]);
  }

  function renderCache(st) {
    if (!st.total.cache_hits) {
      state.charts['c-cache'] = null;
      $('c-cache').replaceChildren(el('div', { class: 'empty', text: 'No cache hits in this window. Hits show here with what they saved (cache: in the configuration).' }));
      legend($('l-cache'), []);
      return;
    }
    drawChart($('c-cache'), {
      x: st.buckets, bucketMs: st.bucket_ms, fmt: compact, fmtRight: usd,
      bars: [{ name: 'cache hits', color: '#1fb5b5', values: st.cache_hits }],
      rightMax: 1e7,
      lines: [{ name: 'saved', color: '#3aa676', values: st.saved_nusd.map((v) => v || null), axis: 'right', width: 1.5 }],
    });
    const t = st.total;
    legend($('l-cache'), [
      { color: '#1fb5b5', name: 'hits', value: `${num(t.cache_hits)} (${pct(t.requests ? t.cache_hits / t.requests : null)})` },
      { color: '#3aa676', name: 'saved', value: usdText(t.saved_usd), line: true },
    ]);
  }

  function table(id, head, rows, empty) {
    const t = $(id);
    if (!rows.length) { t.replaceChildren(el('tbody', {}, el('tr', {}, el('td', { class: 'empty', colspan: head.length, text: empty })))); return; }
    t.replaceChildren(
      el('thead', {}, el('tr', {}, head.map(([h, cls]) => el('th', { class: cls, text: h })))),
      el('tbody', {}, rows.flatMap((r) => [el('tr', r.attrs || {}, r.cells.map((c, i) => el('td', { class: head[i][1] }, c))),
        r.below ? el('tr', { class: 'below' }, el('td', { colspan: head.length }, r.below)) : null])),
    );
  }

  function renderModels(st) {
    table('t-models', [['Model'], ['Served by'], ['Requests', 'num'], ['Errors', 'num'], ['p95', 'num'], ['Spend', 'num']],
      st.models.map((m) => ({
        attrs: { 'data-model': m.model },
        cells: [el('strong', { text: m.model }),
          m.served.length ? el('span', {}, m.served.map((s, i) => el('span', { class: 'served', 'data-served': `${s.provider}/${s.model}` }, i ? ', ' : '', `${s.provider}/${s.model}`))) : el('span', { class: 'sub', text: 'none' }),
          num(m.requests), m.errors ? el('span', { class: 'st s5', text: pct(m.errors / m.requests) }) : '0',
          dur(m.p95_us), usdText(m.cost_usd)],
      })), 'No requests in this window yet.');
  }

  // guardrail decisions over the window: policy, action (never the matched text: the ledger has none)
  const GUARD_CLS = { block: 'bad', redact: 'warn', log: 'mute' };
  function renderGuard(st) {
    const list = st.guard || [];
    const max = Math.max(1, ...list.map((g) => g.decisions));
    $('h-guard').textContent = st.guard_requests ? `${num(st.guard_requests)} requests with a decision` : 'decisions by policy and action';
    table('t-guard', [['Policy'], ['Action'], ['Decisions', 'num'], ['Requests', 'num']],
      list.map((g) => {
        const bar = el('span', { class: 'gbar ' + (GUARD_CLS[g.action] || '') }); bar.style.width = (g.decisions / max * 100).toFixed(1) + '%';
        return { attrs: { 'data-guard': `${g.policy}/${g.action}` }, cells: [
          el('strong', { text: g.policy }), el('span', { class: 'badge ' + (GUARD_CLS[g.action] || 'mute'), text: g.action }),
          el('span', { class: 'gnum' }, bar, el('span', { text: num(g.decisions) })), num(g.requests)] };
      }), 'No guardrail decisions in this window.');
  }

  // a row's decisions, "policy/rule/action;...", as badges
  function guardBadges(s) {
    if (!s) return el('span', { class: 'sub', text: '–' });
    return el('span', { class: 'gds' }, ...s.split(';').filter(Boolean).map((d) => {
      const parts = d.split('/');
      const action = parts[parts.length - 1];
      return el('span', { class: 'badge ' + (GUARD_CLS[action] || 'mute'), title: d, text: `${parts.slice(1, -1).join('/')} ${action}` });
    }));
  }

  function renderBudgets(list) {
    const box = $('budgets');
    if (!list.length) { box.replaceChildren(el('div', { class: 'empty', text: 'No key or team has a budget. Give one with sluice keys create --budget, or New key below.' })); return; }
    box.replaceChildren(...list.map((b) => {
      const used = b.budget_nusd ? b.spent_nusd / b.budget_nusd : 0;
      const proj = b.projected_nusd !== undefined && b.budget_nusd ? b.projected_nusd / b.budget_nusd : null;
      const cls = used >= 1 ? 'bad' : used >= 0.8 ? 'warn' : '';
      // a share far past the budget (1519500%) says nothing a reader can use: past 10x it is capped
      const share = (x) => (x >= 10 ? '> 10× the budget' : pct(x, 0));
      const fill = el('div', { class: 'fill ' + cls }); fill.style.width = Math.min(100, used * 100).toFixed(1) + '%';
      const bar = el('div', { class: 'bar', title: `${pct(used)} used` }, fill);
      if (proj !== null) { const m = el('div', { class: 'proj', title: `projected ${share(proj)}` }); m.style.left = `calc(${Math.min(100, proj * 100).toFixed(1)}% - 1px)`; bar.append(m); }
      const step = b.period === 'day' ? 3600000 : 86400000;
      const pts = (b.points || []).map((p) => ({ ...p, step }));
      return el('div', { class: 'budget', 'data-budget': `${b.kind}:${b.name}` },
        el('div', { class: 'head' }, el('div', { class: 'who', title: b.name }, el('span', { class: 'kind', text: b.kind }), b.name),
          el('div', { class: 'amt' }, el('strong', { text: usdText(b.spent_usd) }), ` of ${usdText(b.budget_usd)} / ${b.period === 'total' ? 'lifetime' : b.period}`)),
        bar,
        el('div', { class: 'foot' }, el('span', { class: cls, text: (used >= 10 ? 'over budget' : `${pct(used, 0)} used`) + (b.reserved_usd && parseFloat(b.reserved_usd) > 0 ? ` · ${usdText(b.reserved_usd)} in flight` : '') }),
          proj !== null ? el('span', { class: 'proj-text ' + (proj >= 1 ? 'bad' : proj >= 0.8 ? 'warn' : ''), text: `→ ${usdText(b.projected_usd)} by ${b.period_end.slice(0, 10)}` + (used >= 10 ? '' : ` (${share(proj)})`) }) : el('span', { text: 'no period end' })),
        b.period !== 'total' ? el('div', { class: 'spark' }, sparkline(pts, b.budget_nusd, b.projected_nusd || 0, b.period_start_ms, b.period_end_ms)) : null);
    }));
  }

  function renderTargets(j) {
    const rows = (j.targets || []).map((t) => {
      const b = t.breaker === 'closed' ? ['ok', 'closed'] : t.breaker === 'open' ? ['bad', 'open'] : ['warn', 'half-open'];
      return { attrs: { 'data-target': `${t.provider}/${t.model}` }, cells: [
        el('span', {}, el('span', { class: 'sub', text: t.provider + '/' }), t.model),
        el('span', { class: 'badge ' + b[0], text: b[1], title: t.open_until_ms ? 'probe at ' + new Date(t.open_until_ms).toISOString() : undefined }),
        t.failures ? String(t.failures) : '0', dur(t.latency_us), dur(t.ttft_us), num(t.in_flight)] };
    });
    table('t-targets', [['Target'], ['Breaker'], ['Fails', 'num'], ['Latency', 'num'], ['TTFT', 'num'], ['In flight', 'num']], rows, 'No target has been used yet.');
  }

  function renderAlerts(j) {
    const ul = $('alerts');
    $('h-alerts').textContent = j.webhook ? 'also posted to the webhook' : 'no webhook configured (alerts.webhook)';
    if (!j.data.length) { ul.replaceChildren(el('li', { class: 'empty' }, el('span', {}), el('span', { text: 'Nothing to report.' }))); return; }
    ul.replaceChildren(...j.data.map((a) => el('li', { 'data-kind': a.kind },
      el('span', { class: 'sev ' + a.severity, title: a.severity }),
      el('div', {}, el('div', { class: 'txt', text: a.text.replace(/^:[a-z_]+:\s*/, '') }),
        el('div', { class: 'meta', text: `${a.kind.replace('_', ' ')} · ${ago(a.time_ms)} · ${a.delivery === 'none' ? 'shown here only' : a.delivery}${a.tries > 1 ? ` (${a.tries} tries)` : ''}` })))));
  }

  function renderTail() {
    const rows = state.tail.slice(-40).reverse().map((e) => ({
      attrs: { class: e.fresh ? 'fresh' : undefined, 'data-request': e.request_id },
      cells: [clock(e.time_ms), e.key + (e.team ? ` (${e.team})` : ''),
        el('span', {}, e.model, e.provider ? el('span', { class: 'to', text: ` → ${e.provider}/${e.served_model}` }) : null),
        e.provider ? `${e.provider}/${e.served_model}` : el('span', { class: 'sub', text: '–' }),
        el('span', { class: 'st s' + String(e.status)[0], text: String(e.status) }),
        String(e.attempts), dur(e.latency_us), e.ttft_us ? dur(e.ttft_us) : '–',
        `${num(e.prompt_tokens)} / ${num(e.completion_tokens)}`, usd(e.cost_nusd), e.cache || '–', guardBadges(e.guard)],
      // only with dashboard.tail_text: the start of the prompt and of the answer
      below: 'prompt' in e ? el('div', { class: 'said' },
        el('div', { class: 'q' }, el('b', { text: 'asked ' }), e.prompt || '–'),
        e.answer ? el('div', { class: 'a' }, el('b', { text: 'answer ' }), e.answer) : null) : null,
    }));
    for (const e of state.tail) e.fresh = false;
    table('t-tail', [['Time'], ['Key'], ['Model'], ['Served by'], ['Status'], ['Tries', 'num'], ['Latency', 'num'], ['TTFT', 'num'], ['Tokens in / out', 'num'], ['Cost', 'num'], ['Cache'], ['Guardrails']], rows, 'Waiting for requests…');
  }

  function renderKeys(list) {
    const now = Date.now();
    table('t-keys', [['Name'], ['Team'], ['Status'], ['Budget'], ['Models'], ['Expires'], ['']],
      list.map((k) => ({ attrs: { 'data-key': k.name }, cells: [
        el('span', {}, el('strong', { text: k.name }), el('span', { class: 'sub', text: ` …${k.last4}` })),
        k.team || '–',
        el('span', { class: 'badge ' + (k.status === 'active' ? 'ok' : k.status === 'revoked' ? 'mute' : 'warn'), text: k.status }),
        k.budget_usd ? `${usdText(k.budget_usd)} / ${k.period}` : '–',
        k.models && k.models.length ? k.models.join(', ') : 'all',
        k.expires ? k.expires.slice(0, 10) + (Date.parse(k.expires) < now ? ' (past)' : '') : 'never',
        k.status === 'active' ? el('button', { type: 'button', class: 'small danger', 'data-revoke': k.id, text: 'Revoke', onclick: () => revokeKey(k) }) : '',
      ] })), 'No keys yet: create one with New key.');
  }

  // --------------------------------------------------------------- keys

  async function revokeKey(k) {
    if (!confirm(`Revoke key "${k.name}"? Clients using it are refused at once.`)) return;
    try {
      await api(`/admin/keys/${encodeURIComponent(k.id)}/revoke`, { method: 'POST' });
      loadKeys();
    } catch (e) { alert(e.message); }
  }

  async function createKey(ev) {
    ev.preventDefault();
    const f = ev.target, err = $('key-error');
    err.textContent = '';
    const v = (n) => f.elements[n].value.trim();
    const body = { name: v('name') };
    if (v('team')) body.team = v('team');
    if (v('budget')) { body.budget_usd = v('budget').replace(/^\$/, ''); body.period = v('period'); }
    if (v('models') && v('models') !== 'all') body.models = v('models').split(',').map((s) => s.trim()).filter(Boolean);
    if (v('expires') && v('expires') !== 'never') body.expires = v('expires');
    try {
      const k = await api('/admin/keys', { method: 'POST', body });
      f.reset();
      f.hidden = true;
      $('key-text').textContent = k.key;
      $('key-secret').hidden = false;
      loadKeys();
    } catch (e) { err.textContent = e.message; }
  }

  // -------------------------------------------------------------- loads

  async function loadStats() {
    const st = await api(`/admin/stats?since=${encodeURIComponent(state.since)}`);
    state.stats = st;
    renderCards(st); renderSpend(st); renderTraffic(st); renderLatency(st); renderCache(st); renderModels(st); renderGuard(st);
    $('h-traffic').textContent = `per ${st.bucket}, UTC`;
  }
  const loadBudgets = async () => renderBudgets((await api('/admin/budgets')).data);
  const loadTargets = async () => renderTargets(await api('/admin/targets'));
  const loadAlerts = async () => renderAlerts(await api('/admin/alerts'));
  const loadKeys = async () => renderKeys((await api('/admin/keys')).data);
  async function loadTail() {
    const j = await api(`/admin/tail?after=${state.tailSeq}&limit=100`);
    if (j.seq < state.tailSeq) state.tail = []; // the gateway restarted
    for (const e of j.data) { e.fresh = state.tailSeq > 0; state.tail.push(e); }
    state.tail = state.tail.slice(-200);
    state.tailSeq = j.seq;
    $('h-tail').textContent = j.text ? 'with the start of prompt and answer (dashboard.tail_text)' : 'metadata only: no prompt or answer text';
    renderTail();
  }

  async function refresh(all) {
    if (state.busy) return;
    state.busy = true;
    const jobs = [loadStats(), loadBudgets(), loadTargets(), loadAlerts()];
    if (all) jobs.push(loadKeys());
    const res = await Promise.allSettled(jobs);
    state.busy = false;
    const failed = res.find((r) => r.status === 'rejected');
    $('live').classList.toggle('stale', !!failed);
    $('updated').textContent = failed ? 'update failed' : 'updated ' + clock(Date.now());
  }

  function stopTimers() { for (const t of state.timers) clearInterval(t); state.timers = []; }

  function startApp() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('controls').hidden = false;
    refresh(true);
    loadTail().catch(() => {});
    stopTimers();
    state.timers.push(setInterval(() => refresh(false), 10000));
    state.timers.push(setInterval(() => loadTail().catch(() => {}), 2000));
  }

  function showLogin() {
    stopTimers();
    state.csrf = null;
    $('app').hidden = true;
    $('controls').hidden = true;
    $('login').hidden = false;
  }

  async function boot() {
    try {
      const s = await api('/admin/session');
      state.csrf = s.csrf;
      startApp();
    } catch { /* showLogin ran on 401 */ }
  }

  // -------------------------------------------------------------- events

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      $('login-error').textContent = '';
      try {
        const s = await api('/admin/session', { method: 'POST', body: { admin_key: ev.target.elements.admin_key.value } });
        ev.target.reset();
        state.csrf = s.csrf;
        startApp();
      } catch (e) { $('login-error').textContent = e.message === 'not logged in' ? 'Incorrect admin key.' : e.message; }
    });
    $('logout').addEventListener('click', async () => {
      try { await api('/admin/session', { method: 'DELETE' }); } catch { /* gone already */ }
      showLogin();
    });
    $('range').addEventListener('click', (ev) => {
      const b = ev.target.closest('button'); if (!b) return;
      for (const x of $('range').children) x.classList.toggle('on', x === b);
      state.since = b.dataset.since;
      refresh(false);
    });
    $('spend-by').addEventListener('click', (ev) => {
      const b = ev.target.closest('button'); if (!b) return;
      for (const x of $('spend-by').children) x.classList.toggle('on', x === b);
      state.spendBy = b.dataset.by;
      if (state.stats) renderSpend(state.stats);
    });
    $('new-key').addEventListener('click', () => { $('key-form').hidden = false; $('key-secret').hidden = true; $('key-form').elements.name.focus(); });
    $('key-cancel').addEventListener('click', () => { $('key-form').hidden = true; });
    $('key-form').addEventListener('submit', createKey);
    $('key-copy').addEventListener('click', () => navigator.clipboard && navigator.clipboard.writeText($('key-text').textContent));
    $('key-done').addEventListener('click', () => { $('key-text').textContent = ''; $('key-secret').hidden = true; });
    let t;
    window.addEventListener('resize', () => {
      clearTimeout(t);
      t = setTimeout(() => { if (state.stats) { const st = state.stats; renderSpend(st); renderTraffic(st); renderLatency(st); renderCache(st); } }, 120);
    });
    boot();
  });
})();
