// The coach's gym floor (tablet, 1024×768 and up): a tile per linked athlete,
// live sets first. Each live tile shows the rep count, the phase, the hold
// countdown (from state.hold.ends_at and the server clock, never the tablet's
// own), the cue of the moment and receipts for pushed cues; one tap sends a
// library cue or flags a mistake. A tile opens to its set's reps, summary and
// a feedback box, and to the athlete's progress (the progression and weekly
// charts); the overview's attention codes show as badges.

import { h, ring, notice, summaryList, repsTable, ms, pct } from './ui.js';
import { get, request } from './api.js';
import { Live } from './live.js';
import { loadLibrary, phaseLabels } from './library.js';
import { volumeChart, complianceChart } from './charts.js';

// The overview's attention codes, as a coach reads them.
const attentionLabels = {
  no_sets_7d: 'No sets in 7 days', holds_slipping: 'Holds slipping', ready_to_advance: 'Ready to advance', deload_suggested: 'Deload suggested',
};

export function coachView(main) {
  const live = new Live();
  const tiles = new Map(); // athlete id → tile
  const bySet = new Map(); // set id → tile
  let library = { byVariation: new Map(), exercises: [] };
  let raf = 0;
  let openSet = null; // the set shown in the detail dialog

  const conn = h('span', { class: 'pill', id: 'conn', role: 'status', text: 'Connecting…' });
  const clock = h('span', { class: 'muted', id: 'clock-offset' });
  const grid = h('section', { class: 'floor', id: 'floor', 'aria-label': 'Athletes' });
  const dialog = h('dialog', { class: 'detail', id: 'set-detail', 'aria-labelledby': 'detail-title' });
  const progress = h('dialog', { class: 'detail progress', id: 'progress', 'aria-labelledby': 'progress-title' });
  main.append(h('div', { class: 'toolbar' }, h('h1', { text: 'Gym floor' }), conn, clock), grid, dialog, progress);

  live.onStatus((s) => {
    conn.textContent = { open: 'Connected', connecting: 'Connecting…', reconnecting: 'Reconnecting…', closed: 'Offline' }[s] || s;
    conn.dataset.state = s;
    for (const t of tiles.values()) t.render();
  });

  function sortTiles() {
    // Live sets first, then sets just ended (summary and feedback), then the rest.
    const rank = (t) => (t.isLive() ? 0 : t.setId ? 1 : 2);
    const list = [...tiles.values()].sort((a, b) =>
      (rank(a) - rank(b)) || a.athlete.display_name.localeCompare(b.athlete.display_name));
    grid.replaceChildren(...list.map((t) => t.el));
    if (!list.length) grid.append(h('p', { class: 'muted', text: 'No athletes linked yet: send them an invite code.' }));
  }

  function makeTile(athlete) {
    const t = { athlete, setId: null, set: null, state: null, pushed: [], summary: null, lastRep: null, flash: '', attention: [] };
    const name = h('h2', { text: athlete.display_name });
    const badge = h('span', { class: 'badge' });
    const meta = h('p', { class: 'meta' });
    const reps = h('p', { class: 'reps-count', 'aria-label': 'reps' });
    const phase = h('p', { class: 'phase' });
    const rg = ring(92);
    const cue = h('p', { class: 'cue-now', 'aria-live': 'polite' });
    const receipts = h('ul', { class: 'receipts', 'aria-label': 'Pushed cues and receipts' });
    const actions = h('div', { class: 'actions' });
    const footer = h('div', { class: 'tile-footer' });
    const stale = h('p', { class: 'stale-banner', role: 'status' });
    const attention = h('ul', { class: 'attention', 'aria-label': 'Needs attention' });
    t.ring = rg;
    t.el = h('article', { class: 'tile', 'data-athlete': athlete.id, 'aria-label': athlete.display_name },
      h('header', {}, name, badge), attention, stale, meta,
      h('div', { class: 'live-row' }, h('div', {}, reps, phase), rg), cue, receipts, actions, footer);
    t.isLive = () => !!(t.setId && (!t.state || t.state.status === 'live') && !t.summary);

    t.render = () => {
      const st = t.state;
      const subStatus = t.setId ? live.status(t.setId) : 'none';
      t.el.dataset.live = t.isLive() ? 'yes' : 'no';
      t.el.dataset.sub = subStatus;
      if (!t.setId) {
        badge.textContent = 'Resting'; badge.dataset.kind = 'idle';
        meta.textContent = 'No set live.';
      } else if (t.summary || (st && st.status === 'ended')) {
        badge.textContent = 'Set ended'; badge.dataset.kind = 'ended';
      } else {
        badge.textContent = 'Live'; badge.dataset.kind = 'live';
      }
      if (t.set) meta.textContent = `${t.set.variationName} · ${t.set.load_kg} kg · ${t.set.target_reps} reps · hold ${ms(t.set.pause_hold_ms)}`;
      // A tile whose data may be behind says so plainly.
      let staleText = '';
      if (t.setId && t.isLive()) {
        if (live.state !== 'open') staleText = 'Stale: connection lost, reconnecting…';
        else if (subStatus === 'resyncing') staleText = 'Resyncing…';
      }
      attention.replaceChildren(...t.attention.map((c) => h('li', { class: 'attention-badge', 'data-code': c, text: attentionLabels[c] || c })));
      attention.hidden = !t.attention.length;
      stale.textContent = staleText;
      stale.hidden = !staleText;
      t.el.dataset.stale = staleText ? 'yes' : 'no';

      reps.textContent = st ? `${st.rep}${t.set ? ` / ${t.set.target_reps}` : ''}` : '';
      phase.textContent = st ? phaseLabels[st.phase] || st.phase : '';
      phase.dataset.phase = st ? st.phase : '';
      rg.toggleAttribute('hidden', !st || !t.isLive());
      if (st && st.cue) {
        cue.textContent = st.cue.text;
        cue.dataset.source = st.cue.source;
        cue.title = `cue of the moment (${st.cue.source})`;
      } else cue.textContent = '';
      receipts.replaceChildren(...t.pushed.slice(-3).reverse().map((p) =>
        h('li', { 'data-acked': p.acked ? 'yes' : 'no' },
          h('span', { class: 'receipt-text', text: `${p.source === 'coach' ? 'Cue' : 'Fix'}: ${p.text}` }),
          h('span', { class: 'receipt-state', text: p.acked ? '✓ seen' : '… sent' }))));

      actions.replaceChildren();
      const offline = live.state !== 'open';
      if (t.isLive()) {
        const lib = t.set && library.byVariation.get(t.set.variation);
        if (lib) {
          actions.append(h('div', { class: 'btn-row', role: 'group', 'aria-label': 'Send a cue' },
            ...lib.exercise.cues.map((c) => h('button', { type: 'button', class: 'cue-btn', 'data-cue': c.id, text: c.text, disabled: offline,
              onclick: () => sendCue(t, { cue_id: c.id }, c.text) }))));
          actions.append(h('div', { class: 'btn-row', role: 'group', 'aria-label': 'Flag a mistake' },
            ...lib.exercise.mistakes.map((m) => h('button', { type: 'button', class: 'flag-btn', 'data-mistake': m.id, text: `Flag: ${m.name}`, disabled: offline,
              onclick: () => flag(t, m) }))));
        }
      }
      // A redraw keeps the keyboard focus on the button it was on.
      const refocus = footer.contains(document.activeElement) ? [...document.activeElement.classList].find((c) => c.startsWith('open-')) : null;
      footer.replaceChildren();
      if (t.summary) {
        footer.append(h('p', { class: 'mini-summary', text: `${t.summary.reps} reps · holds ${t.summary.holds_met}/${t.summary.reps} (${pct(t.summary.hold_compliance)})` }));
      }
      if (t.setId) footer.append(h('button', { type: 'button', class: 'secondary open-set', text: t.isLive() ? 'Open set' : 'Summary and feedback', onclick: () => openDetail(t.setId) }));
      footer.append(h('button', { type: 'button', class: 'secondary open-progress', text: 'Progress', 'aria-label': `Progress: ${athlete.display_name}`,
        'aria-haspopup': 'dialog', onclick: () => openProgress(t) }));
      if (refocus) footer.querySelector(`.${refocus}`)?.focus();
    };
    return t;
  }

  function sendCue(t, body, text) {
    if (!live.send({ type: 'cue.send', set_id: t.setId, ...body })) { notice('Not connected: the cue was not sent.', 'error'); return; }
    notice(`Sent “${text}” to ${t.athlete.display_name}`);
  }
  function flag(t, m) {
    if (!live.send({ type: 'mistake.flag', set_id: t.setId, mistake_id: m.id })) { notice('Not connected: nothing was flagged.', 'error'); return; }
    notice(`Flagged “${m.name}” for ${t.athlete.display_name}`);
  }

  async function watch(t, setId) {
    if (t.setId && t.setId !== setId) { bySet.delete(t.setId); live.unsubscribe(t.setId); }
    t.setId = setId; t.state = null; t.pushed = []; t.summary = null;
    bySet.set(setId, t);
    live.subscribe(setId);
    t.render(); sortTiles();
    try {
      const s = await get(`/v1/sets/${setId}`);
      const lib = library.byVariation.get(s.variation);
      t.set = { ...s, variationName: lib ? lib.variation.name : s.variation };
      // Receipts already given before the tablet looked.
      t.pushed = s.cues.map((c) => ({ seq: c.seq, text: c.text, source: c.source, acked: c.acknowledged }));
      if (s.summary) t.summary = s.summary;
      t.render(); sortTiles();
    } catch (e) { notice(e.message, 'error'); }
  }

  live.on((f) => {
    if (f.type === 'set.started') {
      const t = tiles.get(f.athlete_id);
      if (t) { watch(t, f.set_id); notice(`${t.athlete.display_name} started a set`); }
      return;
    }
    if (f.type === '_stale') { for (const t of tiles.values()) t.render(); return; }
    const t = f.set_id && bySet.get(f.set_id);
    if (!t) { if (f.type === 'error') notice(f.message, 'error'); return; }
    switch (f.type) {
      case 'snapshot': case 'state': t.state = f.state; break;
      case 'cue':
        if (!t.pushed.some((p) => p.seq === f.seq)) t.pushed.push({ seq: f.seq, text: f.cue.text, source: f.cue.source, acked: false });
        break;
      case 'cue.ack': { const p = t.pushed.find((x) => x.seq === f.cue_seq); if (p) p.acked = true; break; }
      case 'rep.done': t.lastRep = f.rep; if (openSet === f.set_id) openDetail(f.set_id); break;
      case 'set.ended':
        t.summary = f.summary;
        if (t.state) t.state = { ...t.state, status: 'ended', phase: 'ended', hold: null };
        sortTiles();
        if (openSet === f.set_id) openDetail(f.set_id);
        refreshOverview();
        if (openProgressFor === t) openProgress(t);
        break;
      case 'unsubscribed': notice(`${t.athlete.display_name}: no longer linked`, 'error'); break;
      case 'error': notice(`${t.athlete.display_name}: ${f.message}`, 'error'); break;
      default: break;
    }
    t.render();
  });

  function tick() {
    const now = live.serverNow();
    for (const t of tiles.values()) {
      const hold = t.state && t.state.hold;
      if (!hold || !t.isLive()) { t.ring.set(0, ''); continue; }
      const left = Math.max(0, Date.parse(hold.ends_at) - now);
      const done = hold.done || left === 0;
      t.ring.set(done ? 1 : left / hold.target_ms, done ? 'held' : (left / 1000).toFixed(1), done);
    }
    clock.textContent = live.rtt !== undefined ? `server clock ${live.offset >= 0 ? '+' : ''}${Math.round(live.offset)} ms (rtt ${live.rtt} ms)` : '';
    raf = requestAnimationFrame(tick);
  }

  async function openDetail(setId, attempt = 0) {
    openSet = setId;
    let s;
    try { s = await get(`/v1/sets/${setId}`); } catch (e) { notice(e.message, 'error'); return; }
    const t = bySet.get(setId);
    // Live frames go out before their events are committed: a rep the floor
    // has seen may be a moment away from the stored set. Ask again shortly.
    if (s.status === 'live' && t && t.lastRep && t.lastRep.n > s.reps.length && attempt < 10) {
      setTimeout(() => { if (openSet === setId) openDetail(setId, attempt + 1); }, 200);
    }
    const title = h('h2', { id: 'detail-title', text: `${t ? t.athlete.display_name : 'Set'} — ${s.status === 'live' ? 'live set' : 'set ended'}` });
    const lib = library.byVariation.get(s.variation);
    const close = h('button', { type: 'button', class: 'secondary close', text: 'Close', onclick: () => dialog.close() });
    const body = [h('div', { class: 'row between dialog-head' }, title, close), h('p', { class: 'meta', text: `${lib ? lib.variation.name : s.variation} · ${s.load_kg} kg · target ${s.target_reps} reps · hold ${ms(s.pause_hold_ms)}` })];
    body.push(s.reps.length ? repsTable(s.reps, s.pause_hold_ms) : h('p', { class: 'muted', text: 'No reps yet.' }));
    if (s.cues.length) {
      body.push(h('h3', { text: 'Cues pushed' }), h('ul', { class: 'cue-log' }, ...s.cues.map((c) =>
        h('li', { text: `${new Date(c.at).toLocaleTimeString()} · ${c.text} (${c.source === 'coach' ? 'coach' : 'fix'}) — ${c.acknowledged ? 'seen by the athlete' : 'not seen'}` }))));
    }
    if (s.summary) {
      body.push(h('h3', { text: 'Summary' }), summaryList(s.summary));
      body.push(h('h3', { text: 'Feedback' }));
      if (s.feedback.length) body.push(h('ul', { class: 'feedback-list' }, ...s.feedback.map((fb) => h('li', { text: fb.text }))));
      const text = h('textarea', { id: 'feedback-text', rows: 3, maxlength: 2000, required: true });
      const status = h('p', { class: 'muted', role: 'status' });
      const form = h('form', { class: 'feedback' }, h('label', { for: 'feedback-text', text: 'Feedback for the athlete' }), text,
        h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', text: 'Send feedback' }), status));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        try {
          await request('POST', `/v1/sets/${setId}/feedback`, { text: text.value });
          await openDetail(setId);
        } catch (e) { status.textContent = e.message; }
      });
      body.push(form);
    }
    dialog.replaceChildren(...body);
    if (!dialog.open) dialog.showModal();
    dialog.scrollTop = 0;
  }
  dialog.addEventListener('close', () => { openSet = null; });

  // An athlete's progress: the progression's verdict and the weekly charts
  // of one exercise (the one of the tile's set, else the first).
  let openProgressFor = null;
  async function openProgress(t, exercise) {
    openProgressFor = t;
    const lib = t.set && library.byVariation.get(t.set.variation);
    const slug = exercise || (progress.open && progress.dataset.exercise) || (lib ? lib.exercise.slug : library.exercises[0] && library.exercises[0].slug);
    if (!slug) { notice('No exercises in the library.', 'error'); return; }
    const q = `exercise=${encodeURIComponent(slug)}`;
    const id = encodeURIComponent(t.athlete.id);
    let p, ins;
    try {
      [p, ins] = await Promise.all([get(`/v1/athletes/${id}/progression?${q}`), get(`/v1/athletes/${id}/insights?${q}`)]);
    } catch (e) { notice(e.message, 'error'); return; }
    if (openProgressFor !== t) return;
    const vname = (s) => { const v = s && library.byVariation.get(s); return v ? v.variation.name : s; };
    const close = h('button', { type: 'button', class: 'secondary close', text: 'Close', onclick: () => progress.close() });
    const body = [h('div', { class: 'row between dialog-head' }, h('h2', { id: 'progress-title', text: `${t.athlete.display_name} — progress` }), close)];
    if (library.exercises.length > 1) {
      const pick = h('select', { id: 'progress-exercise', onchange: () => openProgress(t, pick.value) },
        ...library.exercises.map((e) => h('option', { value: e.slug, text: e.name, selected: e.slug === slug })));
      body.push(h('label', { for: 'progress-exercise', text: 'Exercise' }), pick);
    }
    const facts = [['Current rung', vname(p.current_variation)],
      ['Ready to advance', p.ready_to_advance ? `Yes${p.next_variation ? `: to ${vname(p.next_variation)}` : ''}` : `Not yet${p.next_variation ? ` (next: ${vname(p.next_variation)})` : ''}`]];
    if (p.next_load) facts.push(['Next load', `${p.next_load.display} (${p.next_load.action})`]);
    if (p.imbalance) {
      const i = p.imbalance;
      facts.push(['Imbalance', `${i.weaker_side} side weaker: left ${Math.round(i.left_hold_compliance * 100)} %, right ${Math.round(i.right_hold_compliance * 100)} %`]);
    }
    body.push(h('dl', { class: 'summary progression', id: 'progression' }, ...facts.map(([k, v]) => h('div', {}, h('dt', { text: k }), h('dd', { text: v })))));
    body.push(h('p', { class: 'reason', id: 'progression-reason', text: p.reason }));
    if (p.next_load) body.push(h('p', { class: 'reason', id: 'next-load-reason', text: `Load: ${p.next_load.reason}` }));
    body.push(h('div', { class: 'charts' }, volumeChart(ins.weeks), complianceChart(ins.weeks)));
    progress.dataset.exercise = slug;
    const hadFocus = progress.contains(document.activeElement) && document.activeElement.id;
    progress.replaceChildren(...body);
    if (!progress.open) progress.showModal();
    // A redraw (a set just ended) keeps the focus where it was, else on Close.
    else if (!progress.contains(document.activeElement)) (hadFocus && document.getElementById(hadFocus) || close).focus();
  }
  progress.addEventListener('close', () => {
    const t = openProgressFor;
    openProgressFor = null;
    delete progress.dataset.exercise;
    // Back to the tile's Progress button, also when the tile was redrawn
    // while the panel was open (the button the browser remembers is gone).
    const back = t && t.el.querySelector('.open-progress');
    if (back && !back.contains(document.activeElement)) back.focus();
  });

  // The overview's attention codes, as badges on the tiles.
  let overviewing = null;
  function refreshOverview() {
    if (overviewing) return overviewing;
    overviewing = get('/v1/coach/overview').then((o) => {
      for (const it of o.items) {
        const t = tiles.get(it.athlete_id);
        if (t) { t.attention = it.attention || []; t.render(); }
      }
    }).catch((e) => notice(e.message, 'error')).finally(() => { overviewing = null; });
    return overviewing;
  }

  // The athletes and their live sets: at start and after every (re)connect,
  // since a set.started sent while the socket was down is not replayed.
  async function refreshAthletes() {
    const athletes = await get('/v1/coach/athletes');
    for (const a of athletes.items) {
      let t = tiles.get(a.id);
      if (!t) { t = makeTile(a); tiles.set(a.id, t); }
      if (a.live_set_id && t.setId !== a.live_set_id) watch(t, a.live_set_id);
      t.render();
    }
    sortTiles();
    refreshOverview();
  }
  live.onStatus((s) => { if (s === 'open') refreshAthletes().catch((e) => notice(e.message, 'error')); });

  (async () => {
    try {
      library = await loadLibrary();
      await refreshAthletes();
      await live.connect();
    } catch (e) { notice(e.message, 'error'); }
  })();
  raf = requestAnimationFrame(tick);
  return () => { live.close(); cancelAnimationFrame(raf); };
}
