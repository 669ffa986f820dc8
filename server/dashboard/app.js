// hushdns dashboard: plain DOM, no framework, no build step. Every value from the server is put
// on the page as text (textContent, text nodes, attributes set one by one), never as HTML: a DNS
// name, a device name or a list name can carry markup. The API token for changes is asked for
// once and kept in this browser's localStorage.
'use strict';

(() => {
  const TOKEN_KEY = 'hushdns.apiToken';
  const TAIL_MS = 2000;
  const STATS_MS = 10000;
  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  /** An element with text children only: strings become text nodes, never markup. */
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === null || v === undefined) continue;
        if (k === 'class') e.className = v;
        else if (k === 'title') e.title = String(v);
        else if (k === 'dataset') Object.assign(e.dataset, v);
        else if (k === 'onclick') e.addEventListener('click', v);
        else e.setAttribute(k, String(v));
      }
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) {
      const t = document.createElementNS(SVG, 'title');
      t.textContent = text;
      e.append(t);
    }
    return e;
  }

  const fmt = new Intl.NumberFormat();
  const num = (n) => fmt.format(n);
  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');

  let messageTimer = null;
  function say(text) {
    const m = $('message');
    m.textContent = text;
    clearTimeout(messageTimer);
    messageTimer = setTimeout(() => (m.textContent = ''), 6000);
  }

  async function getJson(path) {
    const res = await fetch(path, { headers: { accept: 'application/json' } });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error || `${path}: HTTP ${res.status}`);
    return body;
  }

  // ---- token and changes ----------------------------------------------------------------

  function askToken() {
    const dialog = $('token-dialog');
    const input = $('token-input');
    input.value = '';
    return new Promise((resolve) => {
      const done = (value) => {
        $('token-form').removeEventListener('submit', onSubmit);
        $('token-cancel').removeEventListener('click', onCancel);
        dialog.close();
        resolve(value);
      };
      const onSubmit = (ev) => {
        ev.preventDefault();
        const v = input.value.trim();
        if (!v) return;
        localStorage.setItem(TOKEN_KEY, v);
        done(v);
      };
      const onCancel = () => done(null);
      $('token-form').addEventListener('submit', onSubmit);
      $('token-cancel').addEventListener('click', onCancel);
      dialog.showModal();
      input.focus();
    });
  }

  /** POST a change with the token; asks for the token when there is none or it was refused. */
  async function change(path, body) {
    for (let attempt = 0; attempt < 2; attempt++) {
      let token = localStorage.getItem(TOKEN_KEY);
      if (!token) token = await askToken();
      if (!token) return null;
      const res = await fetch(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      const reply = await res.json().catch(() => ({}));
      if (res.status === 401) {
        localStorage.removeItem(TOKEN_KEY);
        say('The API token was not accepted.');
        continue;
      }
      if (!res.ok) {
        say(reply.error || `HTTP ${res.status}`);
        return null;
      }
      return reply;
    }
    return null;
  }

  // ---- summary, chart, pause ----------------------------------------------------------------

  let paused = false;
  /** client address → ISO time its pause ends. */
  let pausedClients = new Map();

  function renderSummary(s) {
    $('tile-total').textContent = num(s.total);
    $('tile-blocked').textContent = num(s.blocked);
    $('tile-share').textContent = `${(s.blockedShare * 100).toFixed(1)} %`;
    $('tile-rate').textContent = num(s.recentPerMinute);
    $('tile-devices').textContent = num(s.clients);
    $('tile-rules').textContent = num(s.blocklistRules);
    renderChart(s.series.slice(-24));
    lastLog = s.querylog;
    renderPause(s.paused);
  }

  let lastLog = null;

  function renderPause(p) {
    paused = Boolean(p.everyone);
    pausedClients = new Map(p.clients.map((c) => [c.client, c.until]));
    const b = $('pause');
    b.textContent = paused ? 'Resume blocking' : 'Pause blocking';
    b.classList.toggle('resume', paused);
    const status = $('status');
    status.classList.toggle('paused', paused);
    const devices = pausedClients.size > 0 ? ` · paused for ${pausedClients.size === 1 ? '1 device' : `${num(pausedClients.size)} devices`}` : '';
    if (paused) status.textContent = `Blocking paused until ${time(p.everyone)}`;
    else if (lastLog && (lastLog.mode === 'failed' || lastLog.mode === 'off')) status.textContent = `Blocking${devices} · query log ${lastLog.mode}`;
    else if (lastLog && lastLog.failing) status.textContent = `Blocking${devices} · the query log cannot write`;
    else status.textContent = lastLog && lastLog.dropped > 0 ? `Blocking${devices} · ${num(lastLog.dropped)} log entries dropped` : `Blocking${devices}`;
  }

  function renderChart(series) {
    const chart = $('chart');
    const W = 720;
    const H = 160;
    const base = H - 16;
    const max = Math.max(1, ...series.map((p) => p.blocked + p.allowed));
    const slot = W / Math.max(1, series.length);
    const nodes = [];
    series.forEach((p, i) => {
      const x = i * slot + 1;
      const w = Math.max(1, slot - 2);
      const ha = ((p.allowed + p.blocked) / max) * (base - 4);
      const hb = (p.blocked / max) * (base - 4);
      const label = `${time(p.hour)}: ${num(p.blocked)} blocked, ${num(p.allowed)} allowed`;
      nodes.push(svg('rect', { x, y: base - ha, width: w, height: Math.max(0, ha - hb), class: 'allowed' }, label));
      nodes.push(svg('rect', { x, y: base - hb, width: w, height: hb, class: 'blocked' }, label));
      if (i % 6 === 0) {
        const t = svg('text', { x: x, y: H - 3 });
        t.textContent = new Date(p.hour).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
        nodes.push(t);
      }
    });
    chart.replaceChildren(...nodes);
  }

  $('pause').addEventListener('click', async () => {
    const seconds = paused ? 0 : Number($('pause-minutes').value) * 60;
    const r = await change('/api/pause', { seconds });
    if (!r) return;
    renderPause(r.paused);
    say(paused ? `Blocking paused until ${time(r.paused.everyone)}` : 'Blocking resumed');
    refreshStats();
  });

  // ---- devices × vendors ----------------------------------------------------------------

  /** An address the API can pause (an anonymised client such as 192.168.1.0/24 or client-3fa… cannot be). */
  const isAddress = (client) => /^[0-9a-f.:]+(%[\w.-]+)?$/i.test(client) && /[.:]/.test(client);
  const outcomes = (byOutcome) =>
    Object.entries(byOutcome || {})
      .sort((a, b) => b[1] - a[1])
      .map(([o, n]) => `${o} ${num(n)}`)
      .join(', ');

  function devicePause(d) {
    if (!isAddress(d.client)) return el('td', null, '');
    const until = pausedClients.get(d.client);
    const label = d.name || d.client;
    const button = el('button', { type: 'button', class: until ? 'device-pause resume' : 'device-pause', dataset: { client: d.client }, title: until ? `Block again for ${label}` : `Pause blocking for ${label} only` }, until ? 'Resume' : 'Pause');
    button.addEventListener('click', async () => {
      button.disabled = true;
      const seconds = until ? 0 : Number($('pause-minutes').value) * 60;
      const r = await change('/api/pause', { seconds, client: d.client });
      button.disabled = false;
      if (!r) return;
      renderPause(r.paused);
      say(until ? `Blocking resumed for ${label}` : `Blocking paused for ${label} until ${time(pausedClients.get(d.client))}`);
      refreshStats();
    });
    return el('td', null, button, until ? el('span', { class: 'sub' }, `until ${time(until)}`) : null);
  }

  function renderDevices(devices) {
    const totals = new Map();
    for (const d of devices) for (const v of d.vendors) totals.set(v.vendor, (totals.get(v.vendor) ?? 0) + v.blocked + v.allowed);
    const vendorNames = new Map();
    for (const d of devices) for (const v of d.vendors) vendorNames.set(v.vendor, v.name);
    const columns = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([id]) => id);
    const table = $('devices');
    table.tHead.replaceChildren(
      el('tr', null, el('th', null, 'Device'), el('th', { class: 'num' }, 'Queries'), el('th', { class: 'num' }, 'Blocked'), ...columns.map((id) => el('th', { class: 'num', title: vendorNames.get(id) }, vendorNames.get(id) || id)), el('th', null, 'Blocking')),
    );
    const rows = devices.map((d) => {
      const byVendor = new Map(d.vendors.map((v) => [v.vendor, v]));
      const who = el('td', null, d.name || d.client, d.name ? el('span', { class: 'sub' }, d.client) : null, d.kind ? el('span', { class: 'sub', title: `from the vendors it talks to (${d.kindVendor})` }, `probably: ${d.kind}`) : null);
      return el(
        'tr',
        { dataset: { client: d.client } },
        who,
        el('td', { class: 'num', title: outcomes(d.byOutcome) }, num(d.total)),
        el('td', { class: 'num blocked-count' }, num(d.blocked)),
        ...columns.map((id) => {
          const v = byVendor.get(id);
          if (!v) return el('td', { class: 'num' }, '');
          return el('td', { class: 'num', title: `${d.name || d.client} → ${v.name}: ${outcomes(v.byOutcome)}` }, el('span', { class: 'blocked-count' }, num(v.blocked)), ' / ', num(v.allowed));
        }),
        devicePause(d),
      );
    });
    table.tBodies[0].replaceChildren(...(rows.length ? rows : [el('tr', null, el('td', { class: 'empty', colspan: 4 }, 'No queries yet.'))]));
  }

  // ---- top blocked ------------------------------------------------------------------------

  function renderTopBlocked(entries) {
    const rows = entries.map((e) => {
      // A CNAME block matched the CNAME target: allowing that is what lets the name through.
      const rule = e.rule || '';
      const target = rule.startsWith('CNAME ') && rule.indexOf(': ') > 6 ? rule.slice(6, rule.indexOf(': ')) : e.key;
      const button = el('button', { type: 'button', class: 'allow', dataset: { name: e.key }, title: `Allow ${target} and the names below it` }, 'Allow');
      button.addEventListener('click', async () => {
        button.disabled = true;
        const r = await change('/api/allow', { name: target });
        button.disabled = false;
        if (!r) return;
        say(`Allowed ${r.entry.name}`);
        refreshStats();
      });
      return el('tr', null, el('td', { class: 'name' }, e.key), el('td', { class: 'num blocked-count' }, num(e.count)), el('td', null, rule, e.lists && e.lists.length ? el('span', { class: 'sub' }, e.lists.join(', ')) : null), el('td', null, button));
    });
    $('top-blocked').tBodies[0].replaceChildren(...(rows.length ? rows : [el('tr', null, el('td', { class: 'empty', colspan: 4 }, 'Nothing blocked yet.'))]));
  }

  // ---- live tail ----------------------------------------------------------------------------

  function renderTail(rows) {
    const trs = rows.map((r) =>
      el(
        'tr',
        null,
        el('td', { class: 'num' }, time(r.time)),
        el('td', null, r.device || r.client),
        el('td', { class: 'name' }, r.name),
        el('td', null, r.type),
        el('td', null, el('span', { class: `outcome ${r.outcome}` }, r.outcome)),
        el('td', null, r.reason || ''),
      ),
    );
    $('tail').tBodies[0].replaceChildren(...(trs.length ? trs : [el('tr', null, el('td', { class: 'empty', colspan: 6 }, 'No queries logged yet.'))]));
  }

  // ---- refresh loops ------------------------------------------------------------------------

  async function refreshStats() {
    try {
      const [summary, devices, top] = await Promise.all([getJson('/api/summary'), getJson('/api/devices'), getJson('/api/top?kind=blocked&limit=15')]);
      renderSummary(summary);
      renderDevices(devices.devices);
      renderTopBlocked(top.entries);
    } catch (err) {
      $('status').textContent = `Cannot read statistics: ${err.message}`;
    }
  }

  async function refreshTail() {
    try {
      renderTail((await getJson('/api/querylog?limit=50')).rows);
    } catch (err) {
      $('status').textContent = `Cannot read the query log: ${err.message}`;
    }
  }

  function loop(fn, ms) {
    const run = async () => {
      if (!document.hidden) await fn();
      setTimeout(run, ms);
    };
    run();
  }

  loop(refreshStats, STATS_MS);
  loop(refreshTail, TAIL_MS);
  window.hushdns = { refreshStats, refreshTail };
})();
