// The rafka console: a hash-routed page over the JSON endpoints under /api/. No framework, no
// build step. Everything shown is escaped; nothing is fetched from anywhere but this node.
'use strict';

const $ = (sel) => document.querySelector(sel);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
const num = (n) => (n === null || n === undefined) ? '—' : Number(n).toLocaleString('en-US');
const bytes = (n) => {
  if (n === null || n === undefined) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0; let v = Number(n);
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(1)) + ' ' + u[i];
};
const duration = (ms) => {
  if (ms === null || ms === undefined || ms < 0) return 'forever';
  const units = [['d', 86400000], ['h', 3600000], ['min', 60000], ['s', 1000]];
  for (const [u, m] of units) if (ms >= m && ms % m === 0) return (ms / m) + ' ' + u;
  return ms + ' ms';
};
const time = (ms) => ms >= 0 ? new Date(ms).toISOString().replace('T', ' ').replace('Z', '') : '—';

async function api(path, opts) {
  const r = await fetch(path, opts);
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) throw new Error((body && body.error) || (r.status + ' ' + r.statusText));
  return body;
}
async function post(path, payload) {
  return api(path, {method: 'POST', headers: {'Content-Type': 'application/json', 'X-Rafka-Console': '1'}, body: JSON.stringify(payload)});
}

// A small SVG line chart: points [[t, v], ...] (and an optional second series, dashed).
function chart(title, points, fmt, second) {
  const W = 600, H = 140, P = 28;
  if (!points || points.length === 0) {
    return `<div class="chart"><div><b>${esc(title)}</b></div><p class="muted">No samples yet — the node samples every few seconds.</p></div>`;
  }
  const all = points.concat(second || []);
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  const vmax = Math.max(1, ...all.map((p) => p[1]));
  const x = (t) => P + (t1 === t0 ? (W - 2 * P) : (t - t0) / (t1 - t0) * (W - 2 * P));
  const y = (v) => H - P / 2 - v / vmax * (H - P);
  const line = (pts) => pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
  const area = `${x(points[0][0])},${y(0)} ${line(points)} ${x(points[points.length - 1][0])},${y(0)}`;
  const last = points[points.length - 1][1];
  return `<div class="chart" data-chart="${esc(title)}"><div><b>${esc(title)}</b> <span class="muted">now ${esc(fmt(last))} · max ${esc(fmt(vmax))}</span></div>
  <svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${esc(title)}">
    <line class="axis" x1="${P}" y1="${y(0)}" x2="${W - P}" y2="${y(0)}"/>
    <polygon class="area" points="${area}"/>
    <polyline class="line" points="${line(points)}"/>
    ${second ? `<polyline class="line2" points="${line(second)}"/>` : ''}
    <text x="${P}" y="12">${esc(fmt(vmax))}</text>
    <text x="${P}" y="${H - 2}">${esc(new Date(t0).toLocaleTimeString())}</text>
    <text x="${W - P}" y="${H - 2}" text-anchor="end">${esc(new Date(t1).toLocaleTimeString())}</text>
  </svg></div>`;
}

function table(headers, rows, attrs) {
  const th = headers.map((h) => h.startsWith('#') ? `<th class="num">${esc(h.slice(1))}</th>` : `<th>${esc(h)}</th>`).join('');
  return `<div class="panel"><table ${attrs || ''}><thead><tr>${th}</tr></thead><tbody>${rows.join('') || `<tr><td colspan="${headers.length}" class="muted">Nothing here.</td></tr>`}</tbody></table></div>`;
}
const badges = (flags) => flags.filter(Boolean).join('');

function query() {
  const h = location.hash.slice(1);
  const i = h.indexOf('?');
  return new URLSearchParams(i >= 0 ? h.slice(i + 1) : '');
}

// ---- pages ----

async function overview() {
  const c = await api('/api/cluster');
  $('#node-info').textContent = `node ${c.node_id} · ${c.write_enabled ? 'writes enabled' : 'read-only'}`;
  const voters = (c.quorum.voters || []).map((v) => `<tr><td>${esc(v.id)}${v.id === c.quorum.leader ? ' <span class="badge">leader</span>' : ''}</td>
    <td class="num">${num(v.log_end_offset)}</td><td class="num">${num(v.lag)}</td><td>${v.last_caught_up_ms ? esc(time(v.last_caught_up_ms)) : '—'}</td></tr>`);
  const nodes = (c.nodes || []).map((n) => `<tr><td>${esc(n.id)}</td>
    <td>${(n.roles || []).map((r) => `<span class="badge">${esc(r)}</span>`).join('')}${n.id === c.controller_id ? '<span class="badge ok">active controller</span>' : ''}</td>
    <td class="mono">${n.host ? esc(n.host + ':' + n.port) : '—'}</td><td>${esc(n.rack || '—')}</td>
    <td>${n.fenced ? '<span class="badge bad">fenced</span>' : (n.roles || []).includes('broker') ? '<span class="badge ok">active</span>' : ''}${n.in_controlled_shutdown ? '<span class="badge warn">shutting down</span>' : ''}</td></tr>`);
  return `<div class="cards">
    <div class="card"><div class="label">Nodes</div><div class="value" data-k="nodes">${num((c.nodes || []).length)}</div></div>
    <div class="card"><div class="label">Active controller</div><div class="value" data-k="controller">${esc(c.controller_id ?? '—')}</div></div>
    <div class="card"><div class="label">Topics</div><div class="value" data-k="topics">${num(c.topics)}</div></div>
    <div class="card"><div class="label">Partitions</div><div class="value" data-k="partitions">${num(c.partitions)}</div></div>
    <div class="card"><div class="label">Under-replicated</div><div class="value" data-k="urp">${num(c.under_replicated_partitions)}</div></div>
    <div class="card"><div class="label">Offline</div><div class="value">${num(c.offline_partitions)}</div></div>
    <div class="card"><div class="label">Groups</div><div class="value">${num(c.groups)}</div></div>
  </div>
  <p class="muted">Cluster <span class="mono">${esc(c.cluster_id || '—')}</span> · metadata offset ${num(c.metadata_offset)} · quorum term ${esc(c.quorum.term)} · the console acts as <span class="mono">${esc(c.principal)}</span></p>
  <h2>Nodes</h2>${table(['Node', 'Roles', 'Endpoint', 'Rack', 'State'], nodes, 'id="nodes"')}
  <h2>Controller quorum</h2>${table(['Voter', '#Log end offset', '#Lag', 'Last caught up'], voters, 'id="quorum"')}`;
}

async function topics() {
  const q = query();
  const filter = q.get('q') || '';
  const offset = Number(q.get('offset') || 0);
  const t = await api(`/api/topics?limit=100&offset=${offset}&q=${encodeURIComponent(filter)}`);
  const rows = t.topics.map((x) => `<tr data-topic="${esc(x.name)}"><td><a href="#/topics/${encodeURIComponent(x.name)}">${esc(x.name)}</a></td>
    <td class="num" data-k="partitions">${num(x.partitions)}</td><td class="num">${num(x.replication_factor)}</td>
    <td>${badges([x.under_replicated_partitions ? `<span class="badge warn">${x.under_replicated_partitions} under-replicated</span>` : '',
      x.offline_partitions ? `<span class="badge bad">${x.offline_partitions} offline</span>` : '', x.internal ? '<span class="badge">internal</span>' : ''])}</td>
    <td class="num">${num(x.messages)}</td><td class="num">${bytes(x.size_bytes)}</td><td>${esc(duration(x.retention_ms))}${x.retention_bytes >= 0 ? ' / ' + bytes(x.retention_bytes) : ''}</td><td>${esc(x.cleanup_policy)}</td></tr>`);
  const create = window.rafkaWrite ? `<details><summary>Create topic</summary><div class="toolbar">
    <input id="new-name" placeholder="name"><input id="new-parts" type="number" min="1" placeholder="partitions">
    <input id="new-rf" type="number" min="1" placeholder="replication factor"><button class="act" id="create">Create</button><span id="create-msg"></span></div></details>` : '';
  return `<div class="toolbar"><input id="filter" placeholder="Filter topics" value="${esc(filter)}"> <span class="muted">${num(t.total)} topics</span></div>${create}
  ${table(['Topic', '#Partitions', '#RF', 'Health', '#Messages (here)', '#Size (here)', 'Retention', 'Cleanup'], rows, 'id="topics"')}
  ${pager('#/topics', t, filter)}`;
}

function pager(base, t, filter) {
  if (t.total <= t.limit) return '';
  const prev = Math.max(0, t.offset - t.limit), next = t.offset + t.limit;
  const f = filter ? `&q=${encodeURIComponent(filter)}` : '';
  return `<div class="pager">${t.offset > 0 ? `<a href="${base}?offset=${prev}${f}">← previous</a>` : ''}
    <span class="muted">${num(t.offset + 1)}–${num(Math.min(t.total, next))} of ${num(t.total)}</span>
    ${next < t.total ? `<a href="${base}?offset=${next}${f}">next →</a>` : ''}</div>`;
}

async function topic(name) {
  const offset = Number(query().get('offset') || 0);
  const [t, tp] = await Promise.all([
    api(`/api/topics/${encodeURIComponent(name)}?limit=200&offset=${offset}`),
    api(`/api/throughput?topic=${encodeURIComponent(name)}`),
  ]);
  const rows = t.partitions.map((p) => `<tr><td><a href="#/messages?topic=${encodeURIComponent(name)}&partition=${p.partition}">${p.partition}</a></td>
    <td>${esc(p.leader)}</td><td>${esc(p.replicas.join(', '))}</td><td>${esc(p.isr.join(', '))}</td>
    <td>${badges([p.under_replicated ? '<span class="badge warn">under-replicated</span>' : '', p.offline ? '<span class="badge bad">offline</span>' : ''])}</td>
    <td class="num">${p.local ? num(p.local.log_start_offset) : '—'}</td><td class="num">${p.local ? num(p.local.high_watermark) : '—'}</td>
    <td class="num">${p.local ? num(p.local.log_end_offset) : '—'}</td><td class="num">${p.local ? bytes(p.local.size_bytes) : '—'}</td></tr>`);
  const cfg = t.configs.map((c) => `<tr><td class="mono">${esc(c.name)}</td><td class="mono wrap">${c.sensitive ? '<i>hidden</i>' : esc(c.value ?? 'null')}</td><td class="muted">${esc(c.source)}</td></tr>`);
  const series = tp.topics[0] ? tp.topics[0].samples : [];
  const edit = t.write_enabled ? `<div class="toolbar"><input id="cfg-key" placeholder="config (e.g. retention.ms)"><input id="cfg-val" placeholder="value"><button class="act" id="cfg-set">Set</button><span id="cfg-msg"></span></div>` : '';
  return `<p class="muted"><span class="mono">${esc(t.id)}</span> · <span data-k="partition-count">${num(t.partition_count)}</span> partitions</p>
  <div class="grid2">${chart('Bytes in / s', series.map((s) => [s[0], s[1]]), bytes)}${chart('Messages in / s', series.map((s) => [s[0], s[2]]), num)}</div>
  <h2>Partitions</h2>${table(['Partition', 'Leader', 'Replicas', 'ISR', 'Health', '#Log start', '#High watermark', '#Log end', '#Size'], rows, 'id="partitions"')}
  ${pager('#/topics/' + encodeURIComponent(name), {total: t.partition_count, offset: t.offset, limit: t.limit})}
  <h2>Configs</h2>${edit}${table(['Name', 'Value', 'Source'], cfg, 'id="configs"')}`;
}

async function groups() {
  const g = await api('/api/groups?limit=200');
  const rows = g.groups.map((x) => `<tr data-group="${esc(x.group)}"><td><a href="#/groups/${encodeURIComponent(x.group)}">${esc(x.group)}</a></td>
    <td><span class="badge ${x.state === 'Stable' ? 'ok' : x.state === 'Empty' ? '' : 'warn'}">${esc(x.state)}</span></td>
    <td>${esc(x.protocol_type || '—')}</td><td class="num">${num(x.members)}</td><td class="num" data-k="lag">${num(x.lag)}</td></tr>`);
  return `<p class="muted">${num(g.total)} groups coordinated by this node</p>${table(['Group', 'State', 'Protocol', '#Members', '#Lag'], rows, 'id="groups"')}`;
}

async function group(id) {
  const g = await api(`/api/groups/${encodeURIComponent(id)}`);
  const members = g.members.map((m) => `<tr><td class="mono">${esc(m.member_id)}</td><td>${esc(m.client_id)}</td><td class="mono">${esc(m.client_host)}</td>
    <td class="wrap">${m.assignment ? m.assignment.map((a) => `${esc(a.topic)}: ${esc(a.partitions.join(', '))}`).join('<br>') : '—'}</td></tr>`);
  const parts = g.partitions.map((p) => `<tr><td>${esc(p.topic)}</td><td class="num">${p.partition}</td><td class="num">${num(p.committed_offset)}</td>
    <td class="num">${num(p.end_offset)}</td><td class="num" data-k="lag">${num(p.lag)}</td></tr>`);
  const reset = g.write_enabled ? `<details><summary>Reset offsets (the group must have no members)</summary><div class="toolbar">
    <input id="reset-topic" placeholder="topic"><input id="reset-to" placeholder="earliest | latest | offset"><button class="act" id="reset">Reset</button><span id="reset-msg"></span></div></details>` : '';
  return `<div class="cards">
    <div class="card"><div class="label">State</div><div class="value" data-k="state">${esc(g.state)}</div></div>
    <div class="card"><div class="label">Members</div><div class="value">${num(g.members.length)}</div></div>
    <div class="card"><div class="label">Total lag</div><div class="value" data-k="total-lag">${num(g.lag)}</div></div>
  </div><p class="muted">protocol ${esc(g.protocol_type || '—')} / ${esc(g.protocol || '—')}</p>
  ${chart('Lag (records)', g.lag_history, num)}
  <h2>Lag per partition</h2>${table(['Topic', '#Partition', '#Committed', '#End offset', '#Lag'], parts, 'id="lag"')}
  <h2>Members</h2>${table(['Member', 'Client id', 'Host', 'Assignment'], members, 'id="members"')}${reset}`;
}

function field(f, mode) {
  if (f === null || f === undefined) return '<span class="muted">null</span>';
  const body = mode === 'hex' || f.text === null ? f.hex.replace(/(..)/g, '$1 ').trim() : f.text;
  return `<pre class="val">${esc(body)}${f.truncated ? `<span class="muted"> … (${num(f.size)} bytes)</span>` : ''}</pre>`;
}

async function messages() {
  const q = query();
  const topicName = q.get('topic') || '';
  const partition = q.get('partition') || '0';
  const from = q.get('offset'), ts = q.get('timestamp');
  const mode = q.get('mode') || 'text';
  let form = `<form id="browse" class="toolbar"><input name="topic" placeholder="topic" value="${esc(topicName)}" required>
    <input name="partition" type="number" min="0" value="${esc(partition)}" style="width:90px">
    <input name="offset" type="number" min="0" placeholder="offset" value="${esc(from || '')}" style="width:120px">
    <input name="timestamp" placeholder="or time (ms or ISO)" value="${esc(ts || '')}">
    <select name="mode"><option value="text"${mode === 'text' ? ' selected' : ''}>text</option><option value="hex"${mode === 'hex' ? ' selected' : ''}>hex</option></select>
    <button class="act" type="submit">Read</button></form>`;
  if (!topicName) return form + '<p class="muted">Pick a topic and partition.</p>';
  let url = `/api/topics/${encodeURIComponent(topicName)}/partitions/${encodeURIComponent(partition)}/messages?limit=50`;
  if (from) url += `&offset=${encodeURIComponent(from)}`;
  if (ts) url += `&timestamp=${encodeURIComponent(/^\d+$/.test(ts) ? ts : String(Date.parse(ts)))}`;
  const m = await api(url);
  const rows = m.records.map((r) => `<tr data-offset="${r.offset}"><td class="num">${r.offset}</td><td>${esc(time(r.timestamp))}<div class="muted">${esc(r.timestamp_type)}</div></td>
    <td class="wrap">${field(r.key, mode)}</td><td class="wrap">${field(r.value, mode)}</td>
    <td class="wrap">${r.headers.map((h) => `<div><b class="mono">${esc(h.key)}</b>: ${field(h.value, mode)}</div>`).join('') || '—'}</td></tr>`);
  const next = `#/messages?topic=${encodeURIComponent(topicName)}&partition=${encodeURIComponent(partition)}&offset=${m.next_offset}&mode=${mode}`;
  return form + `<p class="muted">offsets ${num(m.log_start_offset)} – ${num(m.high_watermark)} (high watermark) · from ${num(m.from)} · ${num(m.records.length)} records, ${bytes(m.bytes_read)} read</p>
  ${table(['#Offset', 'Timestamp', 'Key', 'Value', 'Headers'], rows, 'id="messages"')}
  ${m.next_offset < m.high_watermark ? `<div class="pager"><a href="${next}">next page →</a></div>` : ''}`;
}

async function throughput() {
  const t = await api('/api/throughput');
  const total = chart('All topics — bytes in / s', t.total.map((s) => [s[0], s[1]]), bytes);
  const msgs = chart('All topics — messages in / s', t.total.map((s) => [s[0], s[2]]), num);
  const per = t.topics.map((x) => chart(`${x.topic} — bytes in / s`, x.samples.map((s) => [s[0], s[1]]), bytes)).join('');
  return `<p class="muted">Sampled on the node every ${num(t.interval_ms)} ms over the partitions it leads.</p>
  <div class="grid2">${total}${msgs}</div><h2>Busiest topics</h2><div class="grid2">${per || '<p class="muted">No traffic yet.</p>'}</div>`;
}

// ---- router ----

const routes = [
  [/^\/?$/, 'overview', 'Overview', overview],
  [/^\/topics$/, 'topics', 'Topics', topics],
  [/^\/topics\/(.+)$/, 'topics', null, topic],
  [/^\/groups$/, 'groups', 'Consumer groups', groups],
  [/^\/groups\/(.+)$/, 'groups', null, group],
  [/^\/messages$/, 'messages', 'Messages', messages],
  [/^\/throughput$/, 'throughput', 'Throughput', throughput],
];

let rendering = 0;
async function render(quiet) {
  const h = location.hash.slice(1) || '/';
  const path = h.split('?')[0];
  const seq = ++rendering;
  for (const [re, nav, title, fn] of routes) {
    const m = path.match(re);
    if (!m) continue;
    const arg = m[1] ? decodeURIComponent(m[1]) : undefined;
    document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('active', a.dataset.nav === nav));
    $('#title').textContent = title || arg;
    document.title = `${title || arg} · rafka`;
    if (!quiet) $('#status').textContent = 'loading…';
    try {
      const html = await fn(arg);
      if (seq !== rendering) return;
      const focus = document.activeElement && document.activeElement.id;
      $('#content').innerHTML = html;
      if (focus && document.getElementById(focus)) document.getElementById(focus).focus();
      $('#status').textContent = 'updated ' + new Date().toLocaleTimeString();
      wire();
    } catch (e) {
      if (seq !== rendering) return;
      $('#content').innerHTML = `<p class="error">${esc(e.message)}</p>`;
      $('#status').textContent = '';
    }
    document.body.dataset.ready = path;
    return;
  }
  $('#content').innerHTML = '<p class="error">No such page.</p>';
}

function wire() {
  const filter = $('#filter');
  if (filter) filter.onchange = () => { location.hash = '#/topics?q=' + encodeURIComponent(filter.value); };
  const browse = $('#browse');
  if (browse) browse.onsubmit = (e) => {
    e.preventDefault();
    const f = new FormData(browse); const p = new URLSearchParams();
    for (const [k, v] of f.entries()) if (v !== '') p.set(k, v);
    location.hash = '#/messages?' + p.toString();
  };
  const create = $('#create');
  if (create) create.onclick = () => act('#create-msg', () => post('/api/topics', {
    name: $('#new-name').value, partitions: Number($('#new-parts').value) || null, replication_factor: Number($('#new-rf').value) || null}));
  const set = $('#cfg-set');
  if (set) set.onclick = () => act('#cfg-msg', () => post(`/api/topics/${encodeURIComponent($('#title').textContent)}/configs`, {set: {[$('#cfg-key').value]: $('#cfg-val').value}}));
  const reset = $('#reset');
  if (reset) reset.onclick = () => {
    const to = $('#reset-to').value.trim();
    return act('#reset-msg', () => post(`/api/groups/${encodeURIComponent($('#title').textContent)}/offsets`, {topic: $('#reset-topic').value, to: /^\d+$/.test(to) ? Number(to) : to}));
  };
}

async function act(msg, f) {
  try { await f(); $(msg).textContent = 'done'; setTimeout(() => render(true), 300); } catch (e) { $(msg).textContent = e.message; }
}

function theme(next) {
  const t = next || localStorage.getItem('rafka-theme') || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
  document.documentElement.dataset.theme = t;
  localStorage.setItem('rafka-theme', t);
}
$('#theme').onclick = () => theme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark');
theme();
window.addEventListener('hashchange', () => render(false));
api('/api/cluster').then((c) => { window.rafkaWrite = c.write_enabled; }).catch(() => {}).finally(() => render(false));
// Live pages refresh themselves (not while someone types in a form).
setInterval(() => {
  const path = (location.hash.slice(1) || '/').split('?')[0];
  const live = path === '/' || path === '/groups' || path.startsWith('/groups/') || path === '/throughput' || /^\/topics\/.+/.test(path);
  const typing = document.activeElement && ['INPUT', 'SELECT'].includes(document.activeElement.tagName);
  if (live && !typing && !document.hidden) render(true);
}, 5000);
