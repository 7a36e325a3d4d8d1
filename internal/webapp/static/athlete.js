// The athlete simulator (phone, 390×844): what the phone app does during a
// set. Start a set from a prescription or ad hoc, report each phase of each
// rep with big buttons (or an automatic tempo), see the hold countdown, and
// show, speak and acknowledge every cue pushed to the athlete.

import { h, ring, notice, summaryList, repsTable, ms, uuid4 } from './ui.js';
import { get, request, ApiError } from './api.js';
import { Live } from './live.js';
import { loadLibrary, phaseLabels } from './library.js';

// The phases the rep timer accepts after each phase.
const next = { idle: ['up', 'top'], up: ['top'], top: ['down'], down: ['bottom'], bottom: ['up', 'top'], ended: [] };
const buttonLabels = { up: 'Up', top: 'Top', down: 'Down', bottom: 'Bottom' };

export function athleteView(main) {
  const live = new Live();
  let library = null;
  let set = null; // the live set
  let state = null;
  const pending = new Map(); // event_id → frame not yet acknowledged
  const acked = new Set(); // cue seqs acknowledged
  let raf = 0;
  let autoTimer = 0;
  let bannerTimer = 0;

  const conn = h('span', { class: 'pill', id: 'conn', role: 'status', text: 'Offline' });
  const body = h('div', { class: 'sim-body' });
  main.append(h('div', { class: 'sim' }, h('div', { class: 'toolbar' }, h('h1', { text: 'Set' }), conn), body));
  main.classList.add('phone');
  live.onStatus((s) => {
    conn.textContent = { open: 'Connected', connecting: 'Connecting…', reconnecting: 'Reconnecting…', closed: 'Offline' }[s] || s;
    conn.dataset.state = s;
    // Whatever the server has not acknowledged is sent again: it applies each
    // event_id once.
    if (s === 'open') for (const f of pending.values()) live.send(f);
  });

  // ---- starting a set ----
  async function startView() {
    clearTimeout(autoTimer);
    set = null; state = null;
    const variations = [...library.byVariation.values()];
    const list = h('ul', { class: 'prescriptions' });
    const form = h('form', { class: 'card adhoc', 'aria-labelledby': 'adhoc-title' },
      h('h2', { id: 'adhoc-title', text: 'Ad hoc set' }),
      h('label', { for: 'variation', text: 'Variation' }),
      h('select', { id: 'variation', name: 'variation' }, ...variations.map(({ variation }) =>
        h('option', { value: variation.slug, text: variation.name, selected: variation.slug === 'barbell-hip-thrust' }))),
      h('div', { class: 'grid3' },
        h('div', {}, h('label', { for: 'load', text: 'Load (kg)' }), h('input', { id: 'load', name: 'load', type: 'number', min: 0, max: 1000, step: 0.5, value: 60, inputmode: 'decimal' })),
        h('div', {}, h('label', { for: 'reps', text: 'Target reps' }), h('input', { id: 'reps', name: 'reps', type: 'number', min: 1, max: 100, value: 8, inputmode: 'numeric' })),
        h('div', {}, h('label', { for: 'hold', text: 'Hold (ms)' }), h('input', { id: 'hold', name: 'hold', type: 'number', min: 0, max: 60000, step: 100, value: 1500, inputmode: 'numeric' }))),
      h('button', { type: 'submit', class: 'primary big', id: 'start-adhoc', text: 'Start set' }));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      start({ variation: form.variation.value, load_kg: Number(form.load.value), target_reps: Number(form.reps.value), pause_hold_ms: Number(form.hold.value) });
    });
    body.replaceChildren(h('section', { class: 'card', 'aria-labelledby': 'rx-title' }, h('h2', { id: 'rx-title', text: 'From your coach' }), list), form);
    try {
      const rx = await get('/v1/prescriptions');
      const items = rx.items || [];
      if (!items.length) list.append(h('li', { class: 'muted', text: 'No prescriptions yet.' }));
      for (const p of items) {
        const v = library.byVariation.get(p.variation);
        list.append(h('li', {},
          h('span', { text: `${p.scheduled_on}: ${v ? v.variation.name : p.variation}, ${p.sets}×${p.reps} at ${p.load_kg} kg, hold ${ms(p.pause_hold_ms)}${p.notes ? ` — ${p.notes}` : ''}` }),
          h('button', { type: 'button', class: 'primary', 'data-prescription': p.id, 'aria-label': `Start: ${v ? v.variation.name : p.variation}, ${p.scheduled_on}`,
            text: 'Start', onclick: () => start({ prescription_id: p.id }) })));
      }
    } catch (e) { list.append(h('li', { class: 'error', text: e.message })); }
  }

  async function start(bodyFields) {
    try {
      const r = await request('POST', '/v1/sets', bodyFields, { expect: [409] });
      if (r.status === 409) {
        const lives = await get('/v1/sets?status=live');
        if (lives.items.length) { notice('You already have a live set: resuming it.'); return setView(lives.items[0]); }
        throw new ApiError(409, r.data);
      }
      setView(r.data);
    } catch (e) { notice(e.message, 'error'); }
  }

  // ---- the live set ----
  let el = {};
  function setView(s) {
    set = s; state = null; pending.clear();
    const v = library.byVariation.get(s.variation);
    el.reps = h('p', { class: 'sim-reps', id: 'sim-reps', 'aria-live': 'polite' });
    el.phase = h('p', { class: 'phase', id: 'sim-phase' });
    el.ring = ring(150);
    el.banner = h('div', { class: 'cue-banner', id: 'cue-banner', role: 'alert', hidden: true });
    el.cue = h('p', { class: 'cue-now', id: 'sim-cue' });
    el.buttons = {};
    for (const p of ['up', 'top', 'down', 'bottom']) {
      el.buttons[p] = h('button', { type: 'button', class: `phase-btn phase-${p}`, id: `btn-${p}`, 'data-phase': p, text: buttonLabels[p], onclick: () => phase(p) });
    }
    el.auto = h('input', { type: 'checkbox', id: 'auto', role: 'switch' });
    el.auto.addEventListener('change', () => { scheduledFor = ''; schedule(); });
    el.status = h('p', { class: 'muted', id: 'sim-status', 'aria-live': 'polite' });
    body.replaceChildren(
      h('p', { class: 'meta', text: `${v ? v.variation.name : s.variation} · ${s.load_kg} kg · ${s.target_reps} reps · hold ${ms(s.pause_hold_ms)}` }),
      h('div', { class: 'sim-live' }, h('div', {}, el.reps, el.phase), el.ring),
      el.banner, el.cue,
      h('div', { class: 'phase-grid', role: 'group', 'aria-label': 'Rep phases' }, ...Object.values(el.buttons)),
      h('div', { class: 'row between' },
        h('label', { class: 'switch', for: 'auto' }, el.auto, ' Automatic tempo'),
        h('button', { type: 'button', class: 'danger', id: 'end-set', text: 'End set', onclick: endSet })),
      el.status);
    live.subscribe(s.id);
    render();
  }

  function render() {
    if (!set || !el.reps) return;
    const st = state;
    el.reps.textContent = st ? `Rep ${st.rep} / ${set.target_reps}` : 'Connecting…';
    el.phase.textContent = st ? phaseLabels[st.phase] || st.phase : '';
    el.phase.dataset.phase = st ? st.phase : '';
    const allowed = st ? next[st.phase] || [] : [];
    for (const [p, b] of Object.entries(el.buttons)) {
      b.disabled = !st || !allowed.includes(p) || st.status !== 'live';
      b.classList.toggle('expected', allowed[0] === p);
    }
    // The cue of the moment, unless the banner already shows it.
    const text = st && st.cue ? st.cue.text : '';
    el.cue.textContent = text;
    el.cue.hidden = !el.banner.hidden && el.banner.textContent === text;
  }

  function phase(p) {
    if (!set) return;
    const f = { type: 'rep.phase', set_id: set.id, phase: p, event_id: uuid4(), client_ts: Date.now() };
    pending.set(f.event_id, f);
    if (!live.send(f)) el.status.textContent = 'Offline: the phase will be sent when the connection is back.';
  }

  function endSet() {
    if (!set) return;
    clearTimeout(autoTimer);
    el.auto.checked = false;
    const f = { type: 'set.end', set_id: set.id, event_id: uuid4() };
    pending.set(f.event_id, f);
    if (!live.send(f)) {
      pending.delete(f.event_id);
      request('POST', `/v1/sets/${set.id}/end`).then((r) => ended(r.data.summary)).catch((e) => notice(e.message, 'error'));
    }
  }

  async function ended(summary) {
    clearTimeout(autoTimer);
    const s = set;
    if (!s) return;
    live.unsubscribe(s.id);
    set = null;
    let detail = null;
    try { detail = await get(`/v1/sets/${s.id}`); } catch { /* the summary alone will do */ }
    summary = summary || (detail && detail.summary);
    if (!summary) { notice('The set ended.'); startView(); return; }
    body.replaceChildren(h('section', { class: 'card', id: 'set-summary', 'aria-labelledby': 'sum-title' },
      h('h2', { id: 'sum-title', text: 'Set done' }), summaryList(summary),
      detail && detail.reps.length ? repsTable(detail.reps, detail.pause_hold_ms) : null,
      h('button', { type: 'button', class: 'primary big', id: 'new-set', text: 'Start another set', onclick: startView })));
  }

  // The automatic tempo: 0.9 s up, the prescribed hold plus a margin, 1.2 s
  // down, a short rest at the bottom; stops after the target reps.
  // It keys its timer on (rep, phase): other state changes (the hold done, a
  // cue expiring) do not restart it.
  let scheduledFor = '';
  function schedule() {
    const key = state ? `${state.rep}/${state.phase}` : '';
    if (el.auto && el.auto.checked && key === scheduledFor) return;
    scheduledFor = key;
    clearTimeout(autoTimer);
    if (!el.auto || !el.auto.checked || !state || state.status !== 'live' || !set) return;
    const after = { idle: ['up', 600], bottom: ['up', 700], up: ['top', 900], top: ['down', set.pause_hold_ms + 300], down: ['bottom', 1200] }[state.phase];
    if (!after) return;
    if (state.phase === 'bottom' && state.rep >= set.target_reps) { el.auto.checked = false; return; }
    autoTimer = setTimeout(() => phase(after[0]), after[1]);
  }

  function showCue(f) {
    el.banner.textContent = f.cue.text;
    el.banner.dataset.source = f.cue.source;
    el.banner.hidden = false;
    clearTimeout(bannerTimer);
    bannerTimer = setTimeout(() => { el.banner.hidden = true; render(); }, 4000);
    try {
      if ('speechSynthesis' in window) {
        window.speechSynthesis.cancel();
        window.speechSynthesis.speak(new SpeechSynthesisUtterance(f.cue.text));
      }
    } catch { /* no voice: shown is enough */ }
    if (!acked.has(f.seq)) {
      acked.add(f.seq);
      live.sendOrQueue({ type: 'cue.ack', set_id: f.set_id, cue_seq: f.seq });
    }
  }

  live.on((f) => {
    if (f.type === 'ack') { pending.delete(f.event_id); return; }
    if (!set || f.set_id !== set.id) return;
    switch (f.type) {
      case 'snapshot': case 'state':
        state = f.state;
        if (state.status === 'ended' && f.type === 'snapshot') { ended(null); return; } // ended elsewhere
        schedule();
        break;
      case 'cue': showCue(f); break;
      case 'hold.done': el.status.textContent = `Rep ${f.rep}: held ${ms(f.held_ms)}`; break;
      case 'rep.done':
        el.status.textContent = `Rep ${f.rep.n}: hold ${ms(f.rep.hold_ms)}${f.rep.hold_met ? '' : ' — too short'}`;
        if (f.rep.n >= set.target_reps) el.status.textContent += '. Target reached: end the set when ready.';
        break;
      case 'set.ended': ended(f.summary); return;
      case 'error':
        if (f.event_id) pending.delete(f.event_id);
        el.status.textContent = f.code === 'invalid_transition' ? `Refused: ${f.message}` : f.message;
        break;
      default: break;
    }
    render();
  });

  function tick() {
    if (el.ring && set) {
      const hold = state && state.hold;
      if (!hold) el.ring.set(0, '');
      else {
        const left = Math.max(0, Date.parse(hold.ends_at) - live.serverNow());
        const done = hold.done || left === 0;
        el.ring.set(done ? 1 : left / hold.target_ms, done ? 'held' : (left / 1000).toFixed(1), done);
      }
    }
    raf = requestAnimationFrame(tick);
  }

  (async () => {
    try {
      library = await loadLibrary();
      await live.connect();
      const lives = await get('/v1/sets?status=live');
      if (lives.items.length) setView(lives.items[0]); else startView();
    } catch (e) { notice(e.message, 'error'); }
  })();
  raf = requestAnimationFrame(tick);
  return () => { live.close(); cancelAnimationFrame(raf); clearTimeout(autoTimer); main.classList.remove('phone'); };
}
