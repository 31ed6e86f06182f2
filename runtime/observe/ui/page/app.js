// The live view: draws /graph.svg (laid out by Graphviz on the server), then applies each snapshot from
// /events (server-sent events) to it: counts and rate in each node's box, queue fill as its colour, a red
// edge where the producer waits for credit; the decisions the run waits for, with buttons that post to
// /decide; and the last log lines. Nothing is fetched from elsewhere.
'use strict';

const graphBox = document.getElementById('graph');
const rows = document.querySelector('#nodes tbody');
let drawn = false;
let pending = null;

function fmtCount(n) { return n.toLocaleString('en-US'); }
function fmtRate(r) { return r >= 100 ? Math.round(r).toString() : r.toFixed(1); }
function fillColour(f) {
  const x = Math.max(0, Math.min(1, f));
  return `hsl(${Math.round(120 * (1 - x))}, ${Math.round(60 + 20 * x)}%, ${Math.round(92 - 34 * x)}%)`;
}

function applyNode(n) {
  const g = document.getElementById(n.id);
  if (!g) return;
  const shape = g.querySelector('path, polygon');
  if (shape) shape.setAttribute('fill', fillColour(n.fill));
  const texts = g.querySelectorAll('text');
  if (texts.length >= 4) {
    texts[2].textContent = `in ${fmtCount(n.in)}  out ${fmtCount(n.out)}`;
    texts[3].textContent = `${fmtRate(n.rate)}/s  queue ${fmtCount(n.queued)}${n.capacity ? '/' + n.capacity : ''}`;
  }
  g.dataset.in = n.in;
  g.dataset.out = n.out;
  g.dataset.fill = n.fill;
  const title = g.querySelector('title');
  if (title) title.textContent = `${n.name} (${n.kind}): in ${n.in}, out ${n.out}, queue ${n.queued}/${n.capacity}, ` +
      `restarts ${n.restarts}, busy ${n.busy_ms.toFixed(1)} ms`;
}

function applyEdge(e) {
  const g = document.getElementById(e.id);
  if (!g) return;
  g.classList.toggle('blocked', e.blocked);
  g.dataset.blocked = e.blocked;
  const text = g.querySelector('text');
  if (text) {
    if (!text.dataset.label) text.dataset.label = text.textContent;
    text.textContent = e.blocked ? `${text.dataset.label} waiting` : text.dataset.label;
  }
}

function applyTable(nodes) {
  if (rows.children.length !== nodes.length) {
    rows.textContent = '';
    for (const n of nodes) {
      const tr = document.createElement('tr');
      tr.id = 'row-' + n.id;
      for (let i = 0; i < 6; ++i) tr.appendChild(document.createElement('td'));
      rows.appendChild(tr);
    }
  }
  nodes.forEach((n, i) => {
    const cells = rows.children[i].children;
    cells[0].textContent = n.replicas > 1 ? `${n.name} x${n.replicas}` : n.name;
    cells[1].textContent = fmtCount(n.in);
    cells[2].textContent = fmtCount(n.out);
    cells[3].textContent = fmtRate(n.rate);
    cells[4].textContent = n.capacity ? `${n.queued}/${n.capacity}` : `${n.queued}`;
    cells[5].textContent = n.restarts;
  });
}

// Decisions the run waits for (human.approve, approve_tools): one row each, with Approve, Reject and Edit.
// A click posts the decision; the row stays, marked sent, until a snapshot shows it taken.
const sent = new Set();
function decide(d, verdict, extra) {
  const key = `${d.instance}:${d.id}`;
  sent.add(key);
  const body = JSON.stringify({ instance: d.instance, id: d.id, verdict, ...extra });
  fetch('/decide', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })
    .then(r => r.ok ? null : r.json().then(e => { throw new Error(e.error?.message || r.statusText); }))
    .catch(e => { sent.delete(key); document.getElementById('error').textContent = `decision ${d.id}: ${e.message}`; });
  const li = document.querySelector(`#decisions li[data-key="${key}"]`);
  if (li) li.classList.add('sent');
}
function applyDecisions(list) {
  const section = document.getElementById('decisions');
  const ul = section.querySelector('ul');
  section.hidden = list.length === 0;
  const keys = new Set(list.map(d => `${d.instance}:${d.id}`));
  [...ul.children].forEach(li => { if (!keys.has(li.dataset.key)) li.remove(); });
  for (const d of list) {
    const key = `${d.instance}:${d.id}`;
    if (ul.querySelector(`li[data-key="${key}"]`)) continue;
    const li = document.createElement('li');
    li.dataset.key = key;
    li.dataset.node = d.node;
    li.dataset.id = String(d.id);
    const what = document.createElement('code');
    what.textContent = JSON.stringify(d.shown);
    const head = document.createElement('div');
    head.textContent = `${d.node} #${d.id}${d.deadline_unix_ms ? `, until ${new Date(d.deadline_unix_ms).toLocaleTimeString()}` : ''}: `;
    head.appendChild(what);
    const edit = document.createElement('input');
    edit.className = 'edit';
    edit.value = JSON.stringify(d.shown);
    const button = (label, cls, f) => {
      const b = document.createElement('button');
      b.textContent = label;
      b.className = cls;
      b.addEventListener('click', f);
      return b;
    };
    li.append(head,
              button('Approve', 'approve', () => decide(d, 'approve', {})),
              button('Reject', 'reject', () => decide(d, 'reject', { reason: 'rejected in the live view' })),
              edit,
              button('Edit', 'edit', () => {
                let value;
                try { value = JSON.parse(edit.value); } catch (e) {
                  document.getElementById('error').textContent = `decision ${d.id}: the edit is not JSON: ${e.message}`;
                  return;
                }
                decide(d, 'edit', { value });
              }));
    if (sent.has(key)) li.classList.add('sent');
    ul.appendChild(li);
  }
}

function apply(s) {
  if (!drawn) { pending = s; return; }
  document.getElementById('graph-name').textContent = s.graph;
  const state = document.getElementById('state');
  state.textContent = s.state;
  state.className = s.state;
  document.getElementById('seconds').textContent = `${s.seconds.toFixed(1)} s`;
  document.getElementById('error').textContent = s.error || '';
  s.nodes.forEach(applyNode);
  s.edges.forEach(applyEdge);
  applyTable(s.nodes);
  applyDecisions(s.decisions || []);
  const log = document.getElementById('log');
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.textContent = s.log.join('\n');
  if (atEnd) log.scrollTop = log.scrollHeight;
  document.body.dataset.seq = s.seq;
  if (['ok', 'failed', 'interrupted', 'paused'].includes(s.state)) events.close();  // the run is over
}

fetch('/graph.svg').then(r => r.text()).then(svg => {
  graphBox.innerHTML = svg;
  drawn = true;
  document.body.dataset.drawn = 'true';
  if (pending) apply(pending);
});

const events = new EventSource('/events');
events.onmessage = m => apply(JSON.parse(m.data));
events.onerror = () => {
  const state = document.getElementById('state');
  if (!['ok', 'failed', 'interrupted', 'paused'].includes(state.textContent)) state.textContent = 'disconnected';
};
