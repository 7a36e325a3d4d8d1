// The REST client: tokens live in memory and sessionStorage (per tab), the
// access token is refreshed with /v1/auth/refresh when it expires.

const KEY = 'repcue.session';
let session = null;
try { session = JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch { session = null; }
const listeners = new Set();

export function currentUser() { return session && session.user; }
export function onSessionChange(fn) { listeners.add(fn); }

function save(s) {
  session = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s)); else sessionStorage.removeItem(KEY);
  for (const fn of listeners) fn(s && s.user);
}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.code = this.problem.code;
  }
}

async function raw(method, path, body, headers = {}, token) {
  const h = { Accept: 'application/json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (token) h.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  let data = null;
  const text = await res.text();
  if (text) { try { data = JSON.parse(text); } catch { data = text; } }
  return { status: res.status, headers: res.headers, data };
}

export async function login(email, password) {
  const r = await raw('POST', '/v1/auth/login', { email, password });
  if (r.status !== 200) throw new ApiError(r.status, r.data);
  save({ user: r.data.user, access: r.data.access_token, refresh: r.data.refresh_token });
  return r.data.user;
}

export async function logout() {
  const s = session;
  save(null);
  if (s) await raw('POST', '/v1/auth/logout', { refresh_token: s.refresh }).catch(() => {});
}

export function signOutLocally() { save(null); }

let refreshing = null;
async function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const r = await raw('POST', '/v1/auth/refresh', { refresh_token: session.refresh });
      if (r.status !== 200) { save(null); throw new ApiError(r.status, r.data); }
      save({ user: r.data.user || session.user, access: r.data.access_token, refresh: r.data.refresh_token });
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

// request returns {status, headers, data}; statuses the caller expects come
// back, anything else >= 400 throws an ApiError.
export async function request(method, path, body, { headers, expect = [] } = {}) {
  if (!session) throw new ApiError(401, { code: 'unauthorized', detail: 'Sign in first.' });
  let r = await raw(method, path, body, headers, session.access);
  if (r.status === 401 && session) {
    await refresh();
    r = await raw(method, path, body, headers, session.access);
  }
  if (r.status >= 400 && !expect.includes(r.status)) throw new ApiError(r.status, r.data);
  return r;
}

export const get = async (path) => (await request('GET', path)).data;
export const post = async (path, body) => (await request('POST', path, body)).data;
