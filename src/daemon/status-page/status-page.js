/* global document, window, fetch, URLSearchParams */
// The status page: polls the read-only JSON of the gateway (/api/status, /api/tags, /api/outputs) and redraws.
// Plain ES module, no build step; every text from the gateway goes in through textContent, never as HTML.
import { sparkline } from './sparkline.js';

const POLL_MS = 2_000;
/** Time shown by the output charts. */
const CHART_SPAN_MS = 5 * 60_000;
/** Points kept per model for the charts. */
const MAX_ROWS = 1_500;

/** Gateway clock minus this browser's: ages and charts are computed on the gateway's time. */
let clockOffsetMs = 0;
/** Per model: rows of /api/outputs (oldest first) and the newest `at` seen. */
const outputs = new Map();
let tagQuery = '';
/** Gateway time of the last answer, for the "cannot reach" line. */
let lastOkAt;

const $ = (id) => document.getElementById(id);

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof window.Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function badge(state) {
  return h('span', { class: `badge state-${state}`, 'data-state': state }, state);
}

function gatewayNow() {
  return Date.now() + clockOffsetMs;
}

function age(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function num(v) {
  if (typeof v === 'string') return v;
  if (typeof v !== 'number') return String(v);
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : '–';
}

function replace(node, ...children) {
  node.replaceChildren(...children.flat().filter(Boolean));
}

async function getJson(url) {
  const res = await fetch(url, { cache: 'no-store', credentials: 'same-origin' });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

function renderHeader(s) {
  const health = s.health;
  $('gateway').textContent = `Lineguard ${health.gateway}`;
  const state = $('gateway-state');
  state.className = `badge state-${health.status}`;
  state.dataset.state = health.status;
  state.textContent = health.status;
  document.title = `${health.status} · ${health.gateway} · Lineguard`;
  const meta = $('meta');
  meta.classList.remove('lost');
  meta.textContent = `up ${age(health.uptimeS * 1000)} · updated ${time(s.now)}`;
  replace($('reasons'), health.reasons.map((r) => h('li', {}, r)));
}

function renderSources(s) {
  const clocks = new Map((s.health.clocks ?? []).map((c) => [c.source, c]));
  const tags = new Map(s.sources.map((t) => [t.source, t]));
  const names = Object.keys(s.health.components).filter((n) => n.startsWith('opcua/') || n.startsWith('mqtt-source/'));
  replace($('sources-body'), names.map((name) => {
    const c = s.health.components[name];
    const d = c.details ?? {};
    const t = tags.get(name);
    const clock = clocks.get(name);
    const link = d.session ?? d.connection;
    return h('tr', { 'data-source': name, 'data-state': c.state },
      h('td', {}, h('b', {}, name), h('div', { class: 'reason' }, d.endpoint ?? d.url ?? '')),
      h('td', {}, badge(c.state), link ? h('div', { class: 'reason' }, link) : null, c.reason ? h('div', { class: 'reason' }, c.reason) : null),
      h('td', {}, t
        ? [h('span', { class: 'q-good' }, t.good), ' / ', h('span', { class: 'q-uncertain' }, t.uncertain), ' / ', h('span', { class: 'q-bad' }, t.bad), ' / ',
          h('span', { class: t.stale ? 'stale' : '' }, t.stale), h('div', { class: 'reason' }, `${t.tags} tags with a value${d.tags !== undefined ? ` of ${d.tags} configured` : ''}`)]
        : h('span', { class: 'muted' }, 'no value yet')),
      h('td', {}, clock ? `${num(clock.offsetMs)} ms` : '–', clock && clock.steps ? h('div', { class: 'reason' }, `${clock.steps} clock steps`) : null),
      h('td', {}, t?.lastReceivedAt ? `${age(s.now - t.lastReceivedAt)} ago` : '–'),
    );
  }));
  if (names.length === 0) replace($('sources-body'), h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'no source configured')));
}

/** The value a rule reads from one recorded inference (its output, its element or the largest one). */
function ruleValue(row, out) {
  const o = row.outputs?.[out.output] ?? (row.outputs ? Object.values(row.outputs)[0] : undefined);
  if (o === undefined) return undefined;
  const v = Array.isArray(o) ? (out.index === 'max' ? Math.max(...o.map(Number)) : o[out.index ?? 0]) : o;
  return typeof v === 'string' ? Number(v) : v;
}

function renderModels(s) {
  const body = $('models-body');
  const cards = s.models.map((m) => {
    const c = s.health.components[`model/${m.name}`] ?? { state: 'stopped', reason: 'not running' };
    const d = c.details ?? {};
    const last = d.lastInference;
    const skipped = Object.entries(d.skipped ?? {});
    const rows = outputs.get(m.name)?.rows ?? [];
    const skips = rows.filter((r) => r.skipped).map((r) => r.at);
    const lastSkip = [...rows].reverse().find((r) => r.skipped);
    const ruleOutputs = d.ruleOutputs ?? [];
    const charts = m.rules.map((rule) => {
      const out = ruleOutputs.find((o) => o.rule === rule.name) ?? { output: rule.output, index: rule.outputIndex };
      const points = rows.filter((r) => !r.skipped).map((r) => ({ t: r.at, v: ruleValue(r, out) })).filter((p) => typeof p.v === 'number');
      const raise = rule.raiseAbove ?? rule.raiseBelow;
      const clear = rule.clearBelow ?? rule.clearAbove;
      const alert = (d.alerts ?? []).find((a) => a.rule === rule.name);
      const latest = points.at(-1);
      return h('div', { class: 'chart', 'data-rule': rule.name },
        h('div', { class: 'label' },
          h('b', {}, rule.name), alert?.active ? h('span', { class: 'ev-raised' }, ' ALERT') : null,
          h('div', { class: 'reason' }, `${out.output ?? 'output'}${out.index !== undefined && out.index !== null && out.index !== 0 ? `[${out.index}]` : ''} = ${latest ? num(latest.v) : '–'}`),
          h('div', { class: 'reason' }, rule.raiseAbove !== null ? `raise > ${num(rule.raiseAbove)}, clear < ${num(rule.clearBelow)}` : `raise < ${num(rule.raiseBelow)}, clear > ${num(rule.clearAbove)}`)),
        sparkline(points, { raise, clear }, skips, CHART_SPAN_MS, s.now));
    });
    return h('div', { class: 'card', 'data-model': m.name, 'data-state': c.state },
      h('h3', {}, m.name, badge(c.state), m.asset ? h('span', { class: 'muted small' }, m.asset) : null),
      c.reason ? h('div', { class: 'reason' }, c.reason) : null,
      h('div', { class: 'kv' },
        h('span', {}, 'provider ', h('b', { 'data-provider': d.provider ?? '' }, d.provider ?? '–')),
        h('span', {}, 'version ', h('b', {}, d.version ?? '–')),
        h('span', {}, 'latency ', h('b', {}, last ? `${num(last.runMs)} ms run, ${num(last.totalMs)} ms total` : '–')),
        h('span', {}, 'inferences ', h('b', {}, d.inferences ?? 0)),
        h('span', {}, 'last ', h('b', {}, last ? `${age(s.now - Date.parse(last.at))} ago` : '–')),
        skipped.length > 0 ? h('span', {}, 'skipped ', h('b', {}, skipped.map(([k, n]) => `${k} ${n}`).join(', '))) : null),
      lastSkip ? h('div', { class: 'reason' }, `last skipped window ${time(lastSkip.at)}: ${lastSkip.skipped}${lastSkip.detail ? ` (${lastSkip.detail})` : ''}`) : null,
      charts);
  });
  replace(body, cards.length ? cards : [h('p', { class: 'muted' }, 'no model configured')]);
}

function inputsTable(inputs) {
  const entries = Object.entries(inputs ?? {});
  if (entries.length === 0) return null;
  return h('details', {}, h('summary', {}, `${entries.length} inputs`), h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'input'), h('th', {}, 'last values (newest last)'))),
    h('tbody', {}, entries.map(([tag, values]) => h('tr', {}, h('td', {}, tag), h('td', {}, values.slice(-5).map(([, v]) => (v === null ? 'bad' : num(v))).join(', ')))))));
}

function renderAlerts(s) {
  const events = s.alerts.events;
  const latest = new Map();
  for (const e of events) latest.set(e.alertId, e);
  const active = [...latest.values()].filter((e) => e.state === 'raised');
  const known = new Set(latest.keys());
  // Raised before this process started (the rule state survived a restart): the model says so, the inputs are gone.
  for (const m of s.models) {
    for (const a of s.health.components[`model/${m.name}`]?.details?.alerts ?? []) {
      if (a.active && a.alertId && !known.has(a.alertId)) active.push({ alertId: a.alertId, model: m.name, rule: { name: a.rule }, raisedAt: Date.parse(a.raisedAt), message: `${m.name} ${a.rule}: raised before this gateway process started`, inputs: {}, severity: '', kind: '' });
    }
  }
  replace($('alerts-active'), active.length === 0
    ? [h('p', { class: 'muted' }, 'none')]
    : active.reverse().map((e) => h('div', { class: 'alert', 'data-alert-id': e.alertId },
      h('div', {}, h('b', {}, `${e.severity} ${e.kind}`.trim()), ` · raised ${time(e.raisedAt)} (${age(s.now - e.raisedAt)} ago)`),
      h('div', {}, e.message), inputsTable(e.inputs))));
  replace($('alerts-recent'), events.slice(-50).reverse().map((e) => h('li', { 'data-event-id': e.eventId, 'data-alert-state': e.state },
    h('span', { class: `ev-${e.state}` }, e.state === 'raised' ? 'RAISED ' : 'CLEARED '), `${time(e.enqueuedAt)} `, e.message)));
  if (events.length === 0) replace($('alerts-recent'), h('li', { class: 'muted' }, 'none since the gateway started'));
}

function renderBuffer(s) {
  const b = s.health.components.buffer;
  const bd = b?.details ?? {};
  const sink = s.health.components['mqtt-sink'];
  const sd = sink?.details ?? {};
  const o = s.buffer;
  const facts = [
    ['buffer', b ? [badge(b.state), b.reason ? ` ${b.reason}` : ''] : 'not running'],
    ['file', o.file ?? '–'],
    ['size', o.fileBytes !== undefined ? `${bytes(o.fileBytes)} + ${bytes(o.walBytes)} WAL` : '–'],
    ['disk free', bytes(o.diskFreeBytes)],
    ['oldest sample', o.oldestSampleTs ? `${new Date(o.oldestSampleTs).toLocaleString()} (${age(s.now - o.oldestSampleTs)} ago)` : '–'],
    ['samples written / dropped', `${bd.writtenSamples ?? '–'} / ${bd.droppedSamples ?? '–'}`],
    ['outbox depth', bd.outboxDepth ?? '–'],
    ['oldest undelivered alert', bd.outboxDepth ? `${age(bd.outboxOldestAgeMs)} waiting` : 'none'],
    ['alerts dropped', bd.droppedAlerts ?? '–'],
    ['alert sink', sink ? [badge(sink.state), ` ${sd.connection ?? ''}${sink.reason ? ` · ${sink.reason}` : ''}`] : 'none configured'],
    ['oldest unacknowledged', sink ? (sd.unacknowledged ? `${sd.unacknowledged} waiting, oldest ${age(sd.oldestUnackedAgeMs)}` : 'none') : '–'],
    ['alerts published', sd.published ?? '–'],
  ];
  replace($('buffer-body'), facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function renderTags(t, now) {
  $('tags-count').textContent = t.matched === t.total ? `${t.total} tags` : `${t.matched} of ${t.total} tags${t.matched > t.rows.length ? ` (first ${t.rows.length} shown)` : ''}`;
  replace($('tags-body'), t.rows.map((r) => h('tr', { 'data-tag': r.tag },
    h('td', {}, r.tag), h('td', {}, r.source), h('td', {}, num(r.value)),
    h('td', { class: `q-${r.quality}` }, r.quality, r.statusName && r.statusName.toLowerCase() !== r.quality ? ` (${r.statusName})` : ''),
    h('td', { class: now - r.receivedAt > 60_000 ? 'stale' : '' }, age(now - r.receivedAt)),
    h('td', {}, time(r.ts)))));
}

async function pollOutputs(s) {
  await Promise.all(s.models.map(async (m) => {
    const entry = outputs.get(m.name) ?? { rows: [], lastAt: s.now - CHART_SPAN_MS };
    // Rows reach the record in batches about a second after the inference: ask again from a little before the newest.
    const since = entry.rows.length ? entry.lastAt - 3_000 : entry.lastAt;
    const res = await getJson(`/api/outputs?${new URLSearchParams({ model: m.name, since: String(since) })}`);
    const seen = new Set(entry.rows.map((r) => `${r.at}:${r.ts}`));
    for (const r of res.rows) {
      if (seen.has(`${r.at}:${r.ts}`)) continue;
      entry.rows.push(r);
      entry.lastAt = Math.max(entry.lastAt, r.at);
    }
    entry.rows.sort((a, b) => a.at - b.at);
    const from = s.now - CHART_SPAN_MS;
    entry.rows = entry.rows.filter((r) => r.at >= from).slice(-MAX_ROWS);
    outputs.set(m.name, entry);
  }));
}

async function poll() {
  try {
    const s = await getJson('/api/status');
    clockOffsetMs = s.now - Date.now();
    lastOkAt = s.now;
    renderHeader(s);
    renderSources(s);
    renderAlerts(s);
    renderBuffer(s);
    await pollOutputs(s);
    renderModels(s);
    renderTags(await getJson(`/api/tags?${new URLSearchParams({ q: tagQuery })}`), s.now);
  } catch (err) {
    const meta = $('meta');
    meta.classList.add('lost');
    meta.textContent = `cannot reach the gateway (${err.message}); trying again every ${POLL_MS / 1000} s · last data ${time(lastOkAt)}`;
  } finally {
    window.setTimeout(poll, POLL_MS);
  }
}

let searchTimer;
$('tag-search').addEventListener('input', (e) => {
  tagQuery = e.target.value;
  window.clearTimeout(searchTimer);
  searchTimer = window.setTimeout(async () => {
    try {
      renderTags(await getJson(`/api/tags?${new URLSearchParams({ q: tagQuery })}`), gatewayNow());
    } catch {
      // The next poll says the gateway cannot be reached.
    }
  }, 200);
});

poll();
