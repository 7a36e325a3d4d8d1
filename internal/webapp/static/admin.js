// The admin cue editor: the library's cues and mistakes, edits sent with
// If-Match, a plain "someone else changed this" path on 412 that shows both
// versions, and the audit trail.

import { h, notice } from './ui.js';
import { get, request } from './api.js';

const PHASES = ['setup', 'concentric', 'lockout', 'eccentric', 'any'];

export function adminView(main, user) {
  let exercise = null;
  let slug = 'hip-thrust';
  const picker = h('select', { id: 'exercise-picker' });
  const cuesEl = h('section', { class: 'card', id: 'cues', 'aria-labelledby': 'cues-title' });
  const mistakesEl = h('section', { class: 'card', id: 'mistakes', 'aria-labelledby': 'mistakes-title' });
  const auditEl = h('section', { class: 'card', id: 'audit', 'aria-labelledby': 'audit-title' });
  main.append(h('div', { class: 'toolbar' }, h('h1', { text: 'Cue library' }),
    h('label', { for: 'exercise-picker', class: 'inline', text: 'Exercise' }), picker),
    h('div', { class: 'admin-grid' }, h('div', {}, cuesEl, mistakesEl), auditEl));
  picker.addEventListener('change', () => { slug = picker.value; load(); });

  async function load() {
    exercise = await get(`/v1/exercises/${encodeURIComponent(slug)}`);
    renderCues();
    renderMistakes();
    loadAudit();
  }

  function conflictPanel(kind, mine, theirs, fields, retry, reset) {
    return h('div', { class: 'conflict', role: 'alert', 'data-conflict': kind },
      h('h4', { text: `Someone else changed this ${kind} while you were editing` }),
      h('p', { text: 'Your edit was not saved. Compare the two versions, then keep theirs or save yours over it.' }),
      h('div', { class: 'versions' },
        h('div', { class: 'version mine' }, h('h5', { text: 'Your version (not saved)' }),
          h('dl', {}, ...fields.map((f) => h('div', { class: String(mine[f]) === String(theirs[f]) ? '' : 'differs' },
            h('dt', { text: String(mine[f]) === String(theirs[f]) ? f : `${f} (differs)` }), h('dd', { text: String(mine[f]) }))))),
        h('div', { class: 'version theirs' }, h('h5', { text: `Current version (v${theirs.version})` }),
          h('dl', {}, ...fields.map((f) => h('div', { class: String(mine[f]) === String(theirs[f]) ? '' : 'differs' },
            h('dt', { text: String(mine[f]) === String(theirs[f]) ? f : `${f} (differs)` }), h('dd', { text: String(theirs[f]) })))))),
      h('div', { class: 'row' },
        h('button', { type: 'button', class: 'secondary', text: 'Keep theirs', onclick: reset }),
        h('button', { type: 'button', class: 'primary', text: 'Save mine over theirs', onclick: retry })));
  }

  // save PATCHes an item with If-Match; on 412 it fetches the current version
  // and shows both.
  async function save(kind, item, changes, slot, fields) {
    slot.replaceChildren();
    const path = `/v1/admin/${kind === 'cue' ? 'cues' : 'mistakes'}/${item.id}`;
    const r = await request('PATCH', path, changes, { headers: { 'If-Match': `"${item.version}"` }, expect: [412, 400, 404] });
    if (r.status === 200) {
      notice(`Saved the ${kind} (version ${r.data.version})`);
      await load();
      return;
    }
    if (r.status === 412) {
      const fresh = await get(`/v1/exercises/${encodeURIComponent(slug)}`);
      const theirs = (kind === 'cue' ? fresh.cues : fresh.mistakes).find((x) => x.id === item.id);
      if (!theirs) { notice(`This ${kind} was deleted by someone else.`, 'error'); exercise = fresh; renderCues(); renderMistakes(); return; }
      const mine = { ...item, ...changes };
      slot.append(conflictPanel(kind, mine, theirs, fields,
        () => save(kind, theirs, changes, slot, fields),
        () => { exercise = fresh; renderCues(); renderMistakes(); loadAudit(); }));
      slot.querySelector('button').focus();
      return;
    }
    slot.append(h('p', { class: 'error', role: 'alert', text: (r.data && r.data.detail) || `HTTP ${r.status}` }));
  }

  function renderCues() {
    cuesEl.replaceChildren(h('h2', { id: 'cues-title', text: `Cues — ${exercise.name}` }));
    for (const c of exercise.cues) {
      const id = `cue-${c.id}`;
      const text = h('input', { id: `${id}-text`, name: 'text', value: c.text, maxlength: 120, required: true });
      const phase = h('select', { id: `${id}-phase`, name: 'phase' }, ...PHASES.map((p) => h('option', { value: p, text: p, selected: p === c.phase })));
      const prio = h('input', { id: `${id}-priority`, name: 'priority', type: 'number', value: c.priority, step: 1 });
      const slot = h('div', { class: 'slot' });
      const form = h('form', { class: 'item', 'data-cue': c.id, 'aria-label': `Cue ${c.text}` },
        h('div', { class: 'grid-cue' },
          h('div', {}, h('label', { for: `${id}-text`, text: 'Text' }), text),
          h('div', {}, h('label', { for: `${id}-phase`, text: 'Phase' }), phase),
          h('div', {}, h('label', { for: `${id}-priority`, text: 'Priority' }), prio)),
        h('div', { class: 'row' }, h('span', { class: 'muted', text: `version ${c.version}` }),
          h('button', { type: 'button', class: 'secondary', text: 'History', onclick: () => loadAudit('cue', c.id) }),
          h('button', { type: 'submit', class: 'primary', text: 'Save' })), slot);
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const changes = {};
        if (text.value !== c.text) changes.text = text.value;
        if (phase.value !== c.phase) changes.phase = phase.value;
        if (Number(prio.value) !== c.priority) changes.priority = Number(prio.value);
        if (!Object.keys(changes).length) { notice('Nothing changed.'); return; }
        save('cue', c, changes, slot, ['text', 'phase', 'priority']).catch((e) => notice(e.message, 'error'));
      });
      cuesEl.append(form);
    }
  }

  function renderMistakes() {
    mistakesEl.replaceChildren(h('h2', { id: 'mistakes-title', text: 'Mistakes and their fixes' }));
    const cueText = new Map(exercise.cues.map((c) => [c.id, c.text]));
    for (const m of exercise.mistakes) {
      const id = `mistake-${m.id}`;
      const name = h('input', { id: `${id}-name`, name: 'name', value: m.name, required: true });
      const fix = h('textarea', { id: `${id}-fix`, name: 'fix', rows: 2, required: true });
      fix.value = m.fix;
      const slot = h('div', { class: 'slot' });
      const form = h('form', { class: 'item', 'data-mistake': m.id, 'aria-label': `Mistake ${m.name}` },
        h('label', { for: `${id}-name`, text: 'Name' }), name,
        h('label', { for: `${id}-fix`, text: 'Fix' }), fix,
        h('p', { class: 'muted', text: `Pushes: ${m.cue_ids.map((x) => cueText.get(x) || 'a removed cue').join(', ') || 'no cue'}` }),
        h('div', { class: 'row' }, h('span', { class: 'muted', text: `version ${m.version}` }),
          h('button', { type: 'button', class: 'secondary', text: 'History', onclick: () => loadAudit('mistake', m.id) }),
          h('button', { type: 'submit', class: 'primary', text: 'Save' })), slot);
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const changes = {};
        if (name.value !== m.name) changes.name = name.value;
        if (fix.value !== m.fix) changes.fix = fix.value;
        if (!Object.keys(changes).length) { notice('Nothing changed.'); return; }
        save('mistake', m, changes, slot, ['name', 'fix']).catch((e) => notice(e.message, 'error'));
      });
      mistakesEl.append(form);
    }
  }

  function describe(v) {
    if (!v || typeof v !== 'object') return '—';
    return ['text', 'name', 'phase', 'priority', 'fix', 'version'].filter((k) => k in v).map((k) => `${k}: ${v[k]}`).join(' · ');
  }

  async function loadAudit(entity, entityId) {
    const q = entity ? `?entity=${entity}&entity_id=${entityId}` : '';
    const list = h('ol', { class: 'audit-list' });
    auditEl.replaceChildren(h('h2', { id: 'audit-title', text: entity ? `History of this ${entity}` : 'Audit trail' }),
      ...(entity ? [h('button', { type: 'button', class: 'secondary', text: 'Show all', onclick: () => loadAudit() })] : []), list);
    try {
      const r = await get(`/v1/admin/audit${q}`);
      if (!r.items.length) list.append(h('li', { class: 'muted', text: 'Nothing yet.' }));
      for (const a of r.items) {
        list.append(h('li', {},
          h('p', {}, h('time', { datetime: a.at, text: new Date(a.at).toLocaleString() }),
            ` ${a.action} ${a.entity} by ${a.actor_id === user.id ? 'you' : `another admin (${String(a.actor_id).slice(0, 8)}…)`}`),
          a.before ? h('p', { class: 'before', text: `before: ${describe(a.before)}` }) : null,
          a.after ? h('p', { class: 'after', text: `after: ${describe(a.after)}` }) : null));
      }
    } catch (e) { list.append(h('li', { class: 'error', text: e.message })); }
  }

  (async () => {
    try {
      const list = await get('/v1/exercises');
      picker.replaceChildren(...list.items.map((e) => h('option', { value: e.slug, text: e.name, selected: e.slug === slug })));
      if (!list.items.some((e) => e.slug === slug) && list.items.length) slug = list.items[0].slug;
      await load();
    } catch (e) { notice(e.message, 'error'); }
  })();
  return null;
}
