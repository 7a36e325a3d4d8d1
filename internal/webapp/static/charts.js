// Two small weekly charts, drawn as inline SVG by hand: volume (bars) and
// hold compliance (a line with gaps for the weeks without reps). Each chart
// names its figures in a <title>/<desc> and comes with a visually hidden
// table of the same values, for screen readers.

import { h, svg } from './ui.js';

const W = 440, H = 210;
const M = { left: 52, right: 10, top: 12, bottom: 36 };
const PW = W - M.left - M.right, PH = H - M.top - M.bottom;

let ids = 0;

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// weekLabel is a week's Monday, "2026-11-30", as "30 Nov".
export function weekLabel(d) {
  const [, m, day] = d.split('-').map(Number);
  return `${day} ${months[m - 1] || ''}`;
}

const kg = (v) => `${Math.round(v * 10) / 10} kg`;
const pc = (v) => (v === null || v === undefined ? 'no reps' : `${Math.round(v * 100)} %`);

// niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function frame(kind, title, desc, yTicks, weeks) {
  const id = `chart-${kind}-${++ids}`;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: `chart chart-${kind}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-desc` },
    svg('title', { id: `${id}-title` }, title), svg('desc', { id: `${id}-desc` }, desc));
  const step = PW / weeks.length;
  for (const [y, label] of yTicks) {
    root.append(svg('line', { x1: M.left, x2: W - M.right, y1: y, y2: y, class: 'chart-grid' }),
      svg('text', { x: M.left - 6, y, class: 'chart-tick', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, label));
  }
  // A label under every week when they fit, else every other one.
  const every = step >= 44 ? 1 : 2;
  weeks.forEach((w, i) => {
    if ((weeks.length - 1 - i) % every) return;
    root.append(svg('text', { x: M.left + step * (i + 0.5), y: H - M.bottom + 16, class: 'chart-tick', 'text-anchor': 'middle' }, weekLabel(w.week_start)));
  });
  root.append(svg('text', { x: M.left + PW / 2, y: H - 3, class: 'chart-axis', 'text-anchor': 'middle' }, 'Week starting (Monday)'));
  root.append(svg('line', { x1: M.left, x2: W - M.right, y1: M.top + PH, y2: M.top + PH, class: 'chart-axis-line' }));
  return { root, step };
}

function hiddenTable(caption, head, rows) {
  return h('table', { class: 'sr-only' }, h('caption', { text: caption }),
    h('thead', {}, h('tr', {}, ...head.map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, h('th', { scope: 'row', text: r[0] }), ...r.slice(1).map((c) => h('td', { text: c }))))));
}

function range(weeks) {
  return weeks.length ? `${weeks.length} weeks from ${weeks[0].week_start} to ${weeks[weeks.length - 1].week_start}` : 'no weeks';
}

export function volumeChart(weeks) {
  const max = niceMax(Math.max(0, ...weeks.map((w) => w.volume_kg)));
  const y = (v) => M.top + PH - (v / max) * PH;
  const done = weeks.filter((w) => w.volume_kg > 0);
  const desc = `Weekly volume (load × reps), ${range(weeks)}. ` + (done.length
    ? done.map((w) => `Week of ${w.week_start}: ${kg(w.volume_kg)} in ${w.sets} set${w.sets === 1 ? '' : 's'}.`).join(' ') + (done.length < weeks.length ? ' Other weeks: 0 kg.' : '')
    : 'No volume in any week.');
  const { root, step } = frame('volume', 'Weekly volume (kg)', desc, [[y(0), '0'], [y(max / 2), String(max / 2)], [y(max), `${max} kg`]], weeks);
  const bw = Math.max(4, step * 0.62);
  weeks.forEach((w, i) => {
    const top = y(w.volume_kg);
    const bar = svg('rect', { x: (M.left + step * (i + 0.5) - bw / 2).toFixed(1), y: top.toFixed(1), width: bw.toFixed(1), height: Math.max(0, M.top + PH - top).toFixed(1),
      class: 'chart-bar', 'data-week': w.week_start, 'data-volume': w.volume_kg }, svg('title', {}, `Week of ${w.week_start}: ${kg(w.volume_kg)}`));
    root.append(bar);
  });
  // The latest week with volume carries its figure.
  const li = weeks.map((w) => w.volume_kg > 0).lastIndexOf(true);
  if (li >= 0) {
    root.append(svg('text', { x: Math.min(W - M.right - 2, M.left + step * (li + 0.5)), y: y(weeks[li].volume_kg) - 5, class: 'chart-value',
      'text-anchor': li === weeks.length - 1 ? 'end' : 'middle' }, kg(weeks[li].volume_kg)));
  }
  const table = hiddenTable('Weekly volume', ['Week starting', 'Sets', 'Reps', 'Volume'],
    weeks.map((w) => [w.week_start, String(w.sets), String(w.reps), kg(w.volume_kg)]));
  return h('figure', { class: 'chart-fig' }, h('figcaption', { text: 'Weekly volume' }), root, table);
}

export function complianceChart(weeks) {
  const y = (v) => M.top + PH - v * PH;
  const measured = weeks.filter((w) => w.hold_compliance !== null && w.hold_compliance !== undefined);
  const desc = `Weekly hold compliance (share of reps whose hold was met), ${range(weeks)}. ` + (measured.length
    ? measured.map((w) => `Week of ${w.week_start}: ${pc(w.hold_compliance)} (${w.holds_met} of ${w.reps} holds).`).join(' ') + (measured.length < weeks.length ? ' Other weeks: no reps.' : '')
    : 'No reps in any week.');
  const { root, step } = frame('compliance', 'Weekly hold compliance (%)', desc, [[y(0), '0 %'], [y(0.5), '50 %'], [y(1), '100 %']], weeks);
  // The line breaks at every week without reps.
  let seg = [];
  const flush = () => { if (seg.length > 1) root.append(svg('polyline', { points: seg.join(' '), class: 'chart-line' })); seg = []; };
  weeks.forEach((w, i) => {
    if (w.hold_compliance === null || w.hold_compliance === undefined) { flush(); return; }
    seg.push(`${(M.left + step * (i + 0.5)).toFixed(1)},${y(w.hold_compliance).toFixed(1)}`);
  });
  flush();
  weeks.forEach((w, i) => {
    if (w.hold_compliance === null || w.hold_compliance === undefined) return;
    root.append(svg('circle', { cx: (M.left + step * (i + 0.5)).toFixed(1), cy: y(w.hold_compliance).toFixed(1), r: 5, class: 'chart-dot',
      'data-week': w.week_start, 'data-compliance': w.hold_compliance }, svg('title', {}, `Week of ${w.week_start}: ${pc(w.hold_compliance)}`)));
  });
  const li = weeks.map((w) => w.hold_compliance !== null && w.hold_compliance !== undefined).lastIndexOf(true);
  if (li >= 0) {
    const v = weeks[li].hold_compliance;
    root.append(svg('text', { x: Math.min(W - M.right - 2, M.left + step * (li + 0.5)), y: y(v) + (v > 0.85 ? 18 : -9), class: 'chart-value',
      'text-anchor': li === weeks.length - 1 ? 'end' : 'middle' }, pc(v)));
  }
  const table = hiddenTable('Weekly hold compliance', ['Week starting', 'Reps', 'Holds met', 'Hold compliance'],
    weeks.map((w) => [w.week_start, String(w.reps), String(w.holds_met), pc(w.hold_compliance)]));
  return h('figure', { class: 'chart-fig' }, h('figcaption', { text: 'Weekly hold compliance' }), root, table);
}
