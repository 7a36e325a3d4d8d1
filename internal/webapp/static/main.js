// The shell: sign-in, then the view for the account's role — the coach's
// floor, the athlete simulator or the admin cue editor.

import { h, notice } from './ui.js';
import { login, logout, currentUser, onSessionChange, ApiError } from './api.js';
import { coachView } from './coach.js';
import { athleteView } from './athlete.js';
import { adminView } from './admin.js';

const views = { coach: coachView, athlete: athleteView, admin: adminView };
const titles = { coach: 'Gym floor', athlete: 'Athlete simulator', admin: 'Cue editor' };
let teardown = null;

const DEMO = [
  ['coach', 'coach@demo.repcue.dev', 'demo-coach-password'],
  ['athlete', 'athlete@demo.repcue.dev', 'demo-athlete-password'],
  ['admin', 'admin@demo.repcue.dev', 'demo-admin-password'],
];

function loginView(main) {
  const email = h('input', { id: 'email', type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { id: 'password', type: 'password', name: 'password', autocomplete: 'current-password', required: true, minlength: 10 });
  const error = h('p', { class: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary', text: 'Sign in' });
  const form = h('form', { class: 'card login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', text: 'Sign in to repcue' }),
    h('label', { for: 'email', text: 'Email' }), email,
    h('label', { for: 'password', text: 'Password' }), password,
    error, submit,
    h('details', { class: 'demo' }, h('summary', { text: 'Demo accounts (made by repcue seed)' }),
      h('div', { class: 'row' }, ...DEMO.map(([role, e, p]) => h('button', {
        type: 'button', class: 'secondary', 'data-demo': role, text: `Demo ${role}`,
        onclick: () => { email.value = e; password.value = p; submit.focus(); },
      })))));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    submit.disabled = true;
    try {
      await login(email.value.trim(), password.value);
    } catch (e) {
      error.textContent = e instanceof ApiError && e.status === 401 ? 'Wrong email or password.' : e.message;
      if (e.status === 429) error.textContent = 'Too many attempts; wait a moment and try again.';
    } finally {
      submit.disabled = false;
    }
  });
  main.append(form);
  email.focus();
}

function render() {
  if (teardown) { teardown(); teardown = null; }
  const main = document.getElementById('main');
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  main.replaceChildren();
  nav.replaceChildren();
  who.replaceChildren();
  const user = currentUser();
  if (!user) { document.title = 'repcue — sign in'; loginView(main); return; }
  const role = user.role;
  document.title = `repcue — ${titles[role] || role}`;
  nav.append(h('span', { class: 'view-title', text: titles[role] || role }));
  who.append(h('span', { class: 'who-name', text: `${user.display_name} (${role})` }),
    h('button', { type: 'button', class: 'secondary', text: 'Sign out', onclick: () => logout() }));
  const view = views[role];
  if (!view) { main.append(h('p', { text: `No view for the role ${role}.` })); return; }
  teardown = view(main, user) || null;
}

onSessionChange((user) => {
  // A refresh keeps the same user: only a sign-in or sign-out re-renders.
  const shown = document.body.dataset.user || '';
  const now = user ? user.id : '';
  if (shown !== now) { document.body.dataset.user = now; render(); }
});
window.addEventListener('unhandledrejection', (ev) => {
  const e = ev.reason;
  notice(e && e.message ? e.message : String(e), 'error');
});
document.body.dataset.user = currentUser() ? currentUser().id : '';
render();
