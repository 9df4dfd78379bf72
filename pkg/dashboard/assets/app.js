// wrapi dashboard: fetches the JSON views and draws them. Money arrives as
// exact decimal USD strings and is only ever formatted here (with BigInt),
// never summed as floating point; numbers become floats only for geometry.
'use strict';
(() => {
  const $ = (s, root = document) => root.querySelector(s);
  const body = document.body;
  const admin = body.dataset.admin === 'true';
  const csrf = admin ? $('meta[name="wrapi-csrf"]').content : '';
  const palette = ['#2f5bd3', '#e07b00', '#2e8540', '#8e44ad', '#c2185b', '#00838f', '#6d4c41'];
  const otherColor = '#9aa5b4';
  const SVG = 'http://www.w3.org/2000/svg';
  let loads = 0;

  // ---- money -------------------------------------------------------------
  function nanos(s) {
    s = String(s);
    const neg = s.startsWith('-');
    if (neg) s = s.slice(1);
    const [w, f = ''] = s.split('.');
    const n = BigInt(w || '0') * 1000000000n + BigInt((f + '000000000').slice(0, 9));
    return neg ? -n : n;
  }
  const group = (digits) => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  // usdText rounds half-up to cents from one cent up, and to micro-dollars
  // below, so small amounts stay visible.
  function usdText(s) {
    let a = nanos(s);
    const neg = a < 0n;
    if (neg) a = -a;
    const dec = a === 0n || a >= 10000000n ? 2 : 6;
    const unit = 10n ** BigInt(9 - dec);
    const r = (a + unit / 2n) / unit;
    if (r === 0n && a !== 0n) return (neg ? '>-' : '<') + '$0.000001';
    const p = 10n ** BigInt(dec);
    let frac = (r % p).toString().padStart(dec, '0');
    if (dec === 6) frac = frac.replace(/0+$/, '').padEnd(2, '0');
    return (neg ? '-' : '') + '$' + group((r / p).toString()) + '.' + frac;
  }
  const usdNumber = (s) => Number(nanos(s)) / 1e9; // geometry only
  function permille(part, whole) {
    const w = nanos(whole);
    if (w === 0n) return '';
    const pm = (nanos(part) * 1000n) / w;
    return (pm / 10n).toString() + '.' + (pm % 10n).toString() + '%';
  }
  const int = (n) => Number(n).toLocaleString('en-US');

  // ---- DOM helpers ---------------------------------------------------------
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'style') Object.assign(e.style, v); // CSSOM: allowed by the CSP, unlike style=
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const k of kids) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function money(s, cls) {
    return el('span', { class: 'usd' + (cls ? ' ' + cls : ''), title: s + ' USD', 'data-usd': s }, usdText(s));
  }
  const td = (content, cls) => el('td', { class: cls }, content);
  const tdn = (content) => td(content, 'n');
  function setMoney(id, s) {
    const e = document.getElementById(id);
    e.textContent = usdText(s);
    e.title = s + ' USD';
    e.dataset.usd = s;
  }
  const any = (v) => (v === '*' ? el('span', { class: 'note' }, 'any') : v);

  // ---- query ---------------------------------------------------------------
  function addDays(day, n) {
    const t = new Date(day + 'T00:00:00Z');
    t.setUTCDate(t.getUTCDate() + n);
    return t.toISOString().slice(0, 10);
  }
  const params = () => new URLSearchParams(location.search);
  function apiQuery() {
    const p = params(), q = new URLSearchParams();
    for (const k of ['since', 'until', 'project', 'user', 'model']) if (p.get(k)) q.set(k, p.get(k));
    return q;
  }
  async function get(view, extra) {
    const q = apiQuery();
    for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
    const r = await fetch('api/' + view + '?' + q, { headers: { Accept: 'application/json' } });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error((j.error && j.error.message) || r.status + ' ' + r.statusText);
    return j;
  }
  async function post(path, payload) {
    const r = await fetch('api/' + path, {
      method: 'POST', body: JSON.stringify(payload),
      headers: { 'Content-Type': 'application/json', 'X-Wrapi-CSRF': csrf },
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error((j.error && j.error.message) || r.status + ' ' + r.statusText);
    return j;
  }
  function banner(msg) {
    const b = $('#banner');
    b.textContent = msg || '';
    b.hidden = !msg;
  }

  // ---- filters -------------------------------------------------------------
  const form = $('#filters');
  function fillSelect(sel, values, current) {
    const keep = new Set(values);
    if (current) keep.add(current);
    sel.replaceChildren(el('option', { value: '' }, 'all'), ...[...keep].sort().map((v) => el('option', { value: v }, v)));
    sel.value = current || '';
  }
  function fillFilters(sum) {
    form.from.value = sum.range.since;
    form.to.value = addDays(sum.range.until, -1);
    fillSelect(form.project, sum.options.projects, sum.filter.project);
    fillSelect(form.user, sum.options.users, sum.filter.user);
    fillSelect(form.model, sum.options.models, sum.filter.model);
    form.by.value = params().get('by') || 'project';
  }
  function navigate(p) {
    history.replaceState(null, '', p.toString() ? '?' + p : location.pathname);
    load();
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (form.from.value) p.set('since', form.from.value);
    if (form.to.value) p.set('until', addDays(form.to.value, 1));
    for (const k of ['project', 'user', 'model']) if (form[k].value) p.set(k, form[k].value);
    if (form.by.value !== 'project') p.set('by', form.by.value);
    navigate(p);
  });
  $('#reset').addEventListener('click', () => navigate(new URLSearchParams()));
  function filterTo(project, user, model) {
    const p = params();
    for (const [k, v] of [['project', project], ['user', user], ['model', model]]) {
      if (v) p.set(k, v);
      else p.delete(k);
    }
    navigate(p);
  }

  // ---- charts --------------------------------------------------------------
  function niceStep(max, ticks, integer) {
    const raw = max / ticks;
    const pow = 10 ** Math.floor(Math.log10(raw));
    let step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw);
    if (integer) step = Math.max(1, Math.ceil(step));
    return step;
  }
  // stacked draws one bar per day; stacks are [{label, color, values, exact}]
  // with values as numbers (geometry) and exact as the strings to show.
  function stacked(container, days, stacks, opts) {
    // Drawn at the container's pixel width so text keeps its size; redrawn
    // when the window is resized.
    container.redraw = () => stacked(container, days, stacks, opts);
    const W = Math.max(320, Math.round(container.clientWidth || 1000)), H = opts.height || 250;
    const L = 64, R = 8, T = 10, B = 26;
    const pw = W - L - R, ph = H - T - B, n = days.length;
    const totals = days.map((_, i) => stacks.reduce((a, s) => a + s.values[i], 0));
    const max = Math.max(0, ...totals);
    const step = max > 0 ? niceStep(max, 4, opts.integer) : (opts.integer ? 1 : 0.25);
    const top = max > 0 ? Math.ceil(max / step) * step : step * 4;
    const y = (v) => T + ph - (v / top) * ph;
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': opts.label });
    const decimals = Math.min(6, Math.max(2, -Math.floor(Math.log10(step) + 1e-9)));
    for (let v = 0; v <= top + step / 2; v += step) {
      root.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
      const text = opts.integer ? String(Math.round(v)) : v === 0 ? '$0' : '$' + v.toFixed(decimals);
      root.append(svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, text));
    }
    const bw = pw / n, barw = Math.max(1, Math.min(bw * 0.72, 48));
    const every = Math.ceil(n / Math.max(1, Math.floor(pw / 52)));
    days.forEach((day, i) => {
      const x = L + i * bw + (bw - barw) / 2;
      let acc = 0;
      for (const s of stacks) {
        const v = s.values[i];
        if (!(v > 0)) continue;
        const y0 = y(acc), y1 = y(acc + v);
        acc += v;
        root.append(svg('rect', { x, y: y1, width: barw, height: Math.max(0.5, y0 - y1), fill: s.color, 'data-day': day, 'data-key': s.label },
          svg('title', {}, `${day} · ${s.label}: ${s.exact[i]}`)));
      }
      if (i % every === 0) root.append(svg('text', { x: L + i * bw + bw / 2, y: H - 8, 'text-anchor': 'middle' }, day.slice(5)));
    });
    if (max === 0) root.append(svg('text', { x: L + pw / 2, y: T + ph / 2, 'text-anchor': 'middle' }, opts.empty));
    container.replaceChildren(root);
  }
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => document.querySelectorAll('.chart').forEach((c) => c.redraw && c.redraw()), 150);
  });

  // ---- views ---------------------------------------------------------------
  function renderSummary(sum) {
    const t = sum.totals;
    setMoney('kpi-cost', t.cost_usd);
    $('#kpi-range').textContent = `${sum.range.since} → ${addDays(sum.range.until, -1)} (${sum.range.days} days, UTC)`;
    $('#kpi-requests').textContent = int(t.requests);
    $('#kpi-tokens').textContent = `${int(t.input_tokens)} tokens in · ${int(t.output_tokens)} out`;
    $('#kpi-errors').textContent = int(t.errors);
    $('#kpi-hitrate').textContent = t.hit_rate_pct ? t.hit_rate_pct + '%' : '–';
    $('#kpi-hits').textContent = `${int(t.cache_hits)} of ${int(t.requests)} requests`;
    setMoney('kpi-saved', t.saved_usd);
  }

  function renderSpend(sp) {
    const stacks = sp.series.map((s, i) => ({
      label: s.other ? '(other)' : s.key, color: s.other ? otherColor : palette[i % palette.length],
      values: s.cost_usd.map(usdNumber), exact: s.cost_usd.map(usdText), total: s.total_usd,
    }));
    stacked($('#spend-chart'), sp.days, stacks, { label: 'spend per day by ' + sp.by, empty: 'no spend in this range' });
    $('#spend-legend').replaceChildren(...stacks.map((s) =>
      el('li', {}, el('i', { class: 'sw', style: { background: s.color } }), s.label + ' ', money(s.total))));
  }

  function renderBreakdown(b) {
    const tbody = $('#breakdown-table tbody');
    const rows = [];
    let seq = 0;
    const walk = (nodes, level, parent) => {
      for (const n of nodes) {
        const id = 'b' + seq++;
        const name = level === 0 ? n.project : level === 1 ? n.user : n.model;
        const kids = n.children || [];
        const tog = kids.length
          ? el('button', { class: 'tog', type: 'button', 'aria-expanded': 'false', title: 'show ' + (level === 0 ? 'users' : 'models'),
            onclick: (ev) => toggle(ev.currentTarget, id) }, '▸')
          : el('span', { class: 'tog' }, '');
        const filt = el('button', { class: 'filt', type: 'button', title: 'filter the page to this line',
          onclick: () => filterTo(n.project, level >= 1 ? n.user : '', level >= 2 ? n.model : '') }, 'filter');
        rows.push(el('tr', { class: 'lvl' + level, 'data-id': id, 'data-parent': parent, hidden: level > 0 },
          el('td', { class: 'name', title: name }, tog, name, filt),
          tdn(int(n.requests)), tdn(int(n.errors)), tdn(int(n.input_tokens)), tdn(int(n.output_tokens)),
          tdn(money(n.cost_usd)), tdn(money(n.saved_usd)), tdn(permille(n.cost_usd, b.total.cost_usd))));
        walk(kids, level + 1, id);
      }
    };
    walk(b.projects, 0, '');
    if (!rows.length) rows.push(el('tr', { class: 'empty-row' }, el('td', { colspan: 8 }, 'no usage in this range')));
    tbody.replaceChildren(...rows);
    const t = b.total;
    $('#breakdown-table tfoot').replaceChildren(el('tr', {}, td('total'), tdn(int(t.requests)), tdn(int(t.errors)),
      tdn(int(t.input_tokens)), tdn(int(t.output_tokens)), tdn(money(t.cost_usd)), tdn(money(t.saved_usd)), tdn('')));
  }
  function toggle(btn, id) {
    const open = btn.getAttribute('aria-expanded') !== 'true';
    btn.setAttribute('aria-expanded', String(open));
    btn.textContent = open ? '▾' : '▸';
    const hide = (pid) => {
      for (const r of document.querySelectorAll(`#breakdown-table tr[data-parent="${pid}"]`)) {
        r.hidden = true;
        const b = $('button.tog', r);
        if (b && b.getAttribute('aria-expanded') === 'true') { b.setAttribute('aria-expanded', 'false'); b.textContent = '▸'; }
        hide(r.dataset.id);
      }
    };
    if (open) for (const r of document.querySelectorAll(`#breakdown-table tr[data-parent="${id}"]`)) r.hidden = false;
    else hide(id);
  }

  function renderLimits(l) {
    const rows = l.limits.map((v) => {
      const used = parseFloat(v.used_pct), held = parseFloat(v.held_pct);
      const spentW = Math.min(100, Math.max(0, used - held)), heldW = Math.min(100 - spentW, held);
      const bar = el('div', { class: 'bar ' + v.level, title: `${v.used_pct}% of ${v.limit_usd} USD committed (${v.held_usd} held)` },
        el('div', { class: 'seg spent', style: { width: spentW + '%' } }),
        el('div', { class: 'seg held', style: { left: spentW + '%', width: heldW + '%' } }),
        el('span', { class: 'lbl' }, v.used_pct + '%'));
      const period = v.period === 'total' ? 'total' : `${v.period} ${v.window}`;
      const cells = [td(any(v.project)), td(any(v.user)), td(any(v.model)), td(period), tdn(money(v.limit_usd)),
        tdn(money(v.spent_usd)), tdn(money(v.held_usd)), tdn(money(v.remaining_usd)), td(bar, 'barcol')];
      if (admin) {
        cells.push(td(el('button', { class: 'small ghost', type: 'button', onclick: () => deleteLimit(v) }, 'Delete…')));
      }
      return el('tr', { 'data-limit': v.id, 'data-level': v.level }, ...cells);
    });
    if (!rows.length) rows.push(el('tr', { class: 'empty-row' }, el('td', { colspan: admin ? 10 : 9 }, 'no limit applies to this selection')));
    $('#limits-table tbody').replaceChildren(...rows);
  }

  function renderCache(c) {
    const rows = c.projects.map((p) => el('tr', {}, td(p.project, 'name'), tdn(int(p.requests)), tdn(int(p.cache_hits)),
      tdn(p.hit_rate_pct ? p.hit_rate_pct + '%' : '–'), tdn(money(p.saved_usd)), tdn(money(p.cost_usd))));
    if (!rows.length) rows.push(el('tr', { class: 'empty-row' }, el('td', { colspan: 6 }, 'no requests in this range')));
    $('#cache-table tbody').replaceChildren(...rows);
    const t = c.total;
    $('#cache-table tfoot').replaceChildren(el('tr', {}, td('total'), tdn(int(t.requests)), tdn(int(t.cache_hits)),
      tdn(t.hit_rate_pct ? t.hit_rate_pct + '%' : '–'), tdn(money(t.saved_usd)), tdn(money(t.cost_usd))));
  }

  function renderErrors(e) {
    const known = (d) => d.refusals !== null;
    const stacks = [
      { label: 'budget refusals', color: '#d0342c', values: e.days.map((d) => (known(d) ? d.refusals : 0)) },
      { label: 'other errors', color: '#7d8897', values: e.days.map((d) => (known(d) ? d.errors - d.refusals : 0)) },
      { label: 'errors (codes not read)', color: '#c7ced8', values: e.days.map((d) => (known(d) ? 0 : d.errors)) },
    ];
    for (const s of stacks) s.exact = s.values.map(String);
    stacked($('#errors-chart'), e.days.map((d) => d.day), stacks, { label: 'errors per day', integer: true, height: 200, empty: 'no errors in this range' });
    const codes = Object.entries(e.codes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${int(v)}`).join(' · ');
    $('#errors-codes').textContent = `${int(e.errors)} errors out of ${int(e.requests)} requests` +
      (codes ? ': ' + codes : '') + (e.complete ? '' : ' (codes of the busiest days not read)');
    $('#kpi-refusals').textContent = `${int(e.refusals)} budget refusal${e.refusals === 1 ? '' : 's'}` + (e.complete ? '' : ' or more');
  }

  function renderTop(t) {
    const rows = t.records.map((r) => {
      const err = r.status < 200 || r.status > 299;
      return el('tr', { 'data-id': r.id },
        td(r.time.slice(0, 16).replace('T', ' ')), td(r.project, 'name'), td(r.user, 'name'),
        el('td', { class: 'name', title: r.model_served ? 'served by ' + r.model_served : null }, r.model, r.cache_hit ? el('span', { class: 'hit' }, 'cache hit') : null),
        td(r.endpoint), el('td', { class: 'n' + (err ? ' status-err' : ''), title: r.error_code || null }, String(r.status)),
        tdn(int(r.input_tokens)), tdn(int(r.output_tokens)), tdn(int(r.latency_ms) + ' ms'), tdn(money(r.cost_usd)), tdn(money(r.saved_usd)));
    });
    if (!rows.length) rows.push(el('tr', { class: 'empty-row' }, el('td', { colspan: 11 }, 'no requests in this range')));
    $('#top-table tbody').replaceChildren(...rows);
  }

  function updateCSVLinks() {
    for (const a of document.querySelectorAll('a.csv')) {
      const q = apiQuery();
      if (a.dataset.view === 'spend') q.set('by', params().get('by') || 'project');
      a.href = 'api/' + a.dataset.view + '.csv?' + q;
      a.setAttribute('download', '');
    }
  }

  async function load() {
    body.dataset.loading = 'true';
    updateCSVLinks();
    try {
      const sum = await get('summary');
      fillFilters(sum);
      renderSummary(sum);
      const [spend, br, lim, cache, errs, top] = await Promise.all([
        get('spend', { by: params().get('by') || 'project' }), get('breakdown'), get('limits'), get('cache'), get('errors'), get('top'),
      ]);
      renderSpend(spend);
      renderBreakdown(br);
      renderLimits(lim);
      renderCache(cache);
      renderErrors(errs);
      renderTop(top);
      banner('');
    } catch (e) {
      banner('Could not load the dashboard: ' + e.message);
    }
    body.dataset.loading = 'false';
    body.dataset.loaded = String(++loads);
  }

  // ---- admin ---------------------------------------------------------------
  function confirmed(text) {
    const d = $('#confirm');
    $('#confirm-text').textContent = text;
    d.returnValue = '';
    d.showModal();
    return new Promise((resolve) => d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true }));
  }
  async function act(text, path, payload) {
    if (!(await confirmed(text))) return;
    try {
      await post(path, payload);
      banner('');
      await load();
    } catch (e) {
      banner('Refused: ' + e.message);
    }
  }
  const who = (a) => ['project', 'user', 'model'].map((k) => (a[k] === '*' ? 'any ' + k : `${k} ${a[k]}`)).join(', ');
  function deleteLimit(v) {
    act(`Delete the ${v.period} limit of ${v.limit_usd} USD for ${who(v)}?`,
      'limits/delete', { project: v.project, user: v.user, model: v.model, period: v.period });
  }
  if (admin) {
    const lf = $('#limit-form');
    lf.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const a = { project: lf.project.value.trim() || '*', user: lf.user.value.trim() || '*', model: lf.model.value.trim() || '*',
        period: lf.period.value, usd: lf.usd.value.trim() };
      act(`Set a ${a.period} limit of ${a.usd} USD for ${who(a)}?`, 'limits/set', a);
    });
    const ff = $('#flush-form');
    ff.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const kind = ff.kind.value, name = ff.name.value.trim();
      if ((kind === 'project' || kind === 'user') && !name) { banner(`Name the ${kind} to flush.`); return; }
      const scope = kind === 'project' || kind === 'user' ? `${kind}:${name}` : kind;
      act(`Flush cached responses of ${scope || 'every scope'}? Later identical requests will be paid again.`, 'cache/flush', { scope });
    });
  }

  load();
})();
