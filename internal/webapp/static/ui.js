// Small DOM helpers. Text always goes in through textContent: nothing the
// server sends is ever parsed as HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

// ring is a countdown ring: ring.set(fraction 0..1, label).
export function ring(size = 96) {
  const r = 42, c = 2 * Math.PI * r;
  const bar = svg('circle', { cx: 50, cy: 50, r, class: 'ring-bar', 'stroke-dasharray': c.toFixed(2), 'stroke-dashoffset': 0, transform: 'rotate(-90 50 50)' });
  const label = svg('text', { x: 50, y: 50, class: 'ring-label', 'text-anchor': 'middle', 'dominant-baseline': 'central' });
  const el = svg('svg', { viewBox: '0 0 100 100', width: size, height: size, class: 'ring', role: 'img', 'aria-label': 'hold countdown' },
    svg('circle', { cx: 50, cy: 50, r, class: 'ring-track' }), bar, label);
  el.set = (fraction, text, done) => {
    const f = Math.max(0, Math.min(1, fraction));
    bar.setAttribute('stroke-dashoffset', (c * (1 - f)).toFixed(2));
    bar.setAttribute('stroke-opacity', f > 0 ? '1' : '0');
    label.textContent = text;
    el.classList.toggle('ring-done', !!done);
    el.setAttribute('aria-label', `hold countdown ${text}`);
  };
  el.set(0, '');
  return el;
}

let noticeTimer;
export function notice(text, kind = 'info') {
  const el = document.getElementById('notice');
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = !text;
  clearTimeout(noticeTimer);
  if (text && kind !== 'error') noticeTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

export function ms(v) { return v === null || v === undefined ? '—' : `${(v / 1000).toFixed(2)} s`; }
export function pct(v) { return v === null || v === undefined ? '—' : `${Math.round(v * 100)} %`; }

// uuid4 works in insecure contexts too (a tablet on the gym's LAN over plain
// http has no crypto.randomUUID).
export function uuid4() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function summaryList(s) {
  return h('dl', { class: 'summary' },
    ...[['Reps', s.reps], ['Holds met', `${s.holds_met} / ${s.reps}`], ['Hold compliance', pct(s.hold_compliance)],
      ['Avg concentric', ms(s.avg_concentric_ms)], ['Avg hold', ms(s.avg_hold_ms)], ['Avg eccentric', ms(s.avg_eccentric_ms)],
      ['Time under tension', ms(s.time_under_tension_ms)], ['Cues sent', s.cues_sent], ['Cues acknowledged', s.cues_acknowledged]]
      .map(([k, v]) => h('div', {}, h('dt', { text: k }), h('dd', { text: String(v) }))));
}

export function repsTable(reps, pauseHoldMs) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'reps' },
    h('caption', { text: `Reps (target hold ${ms(pauseHoldMs)})` }),
    h('thead', {}, h('tr', {}, ...['Rep', 'Concentric', 'Hold', 'Eccentric', 'Met'].map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, ...reps.map((r) => h('tr', { class: r.hold_met ? '' : 'miss' },
      h('th', { scope: 'row', text: String(r.n) }), h('td', { text: ms(r.concentric_ms) }), h('td', { text: ms(r.hold_ms) }),
      h('td', { text: ms(r.eccentric_ms) }), h('td', { text: r.hold_met ? 'yes' : 'short' }))))));
}
