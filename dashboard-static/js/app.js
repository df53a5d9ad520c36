// app.js: the dashboard's shell: sign-in and sign-out, the hash router (#/users, #/users/ID,
// #/usage, #/quotas, #/prices, #/audit, #/live, #/me), the navigation and the live feed that
// runs while an admin is signed in.

import { api, ApiError, credential, onUnauthorized } from './api.js';
import { LiveFeed } from './live.js';
import { clearFlash, describeError, field, flash, h } from './ui.js';
import * as usersPage from './pages/users.js';
import * as userPage from './pages/user.js';
import * as usagePage from './pages/usage.js';
import * as quotasPage from './pages/quotas.js';
import * as pricesPage from './pages/prices.js';
import * as auditPage from './pages/audit.js';
import * as livePage from './pages/live.js';
import * as mePage from './pages/me.js';

const ROUTES = [
  { re: /^\/users$/, page: usersPage, mode: 'admin', title: 'Users' },
  { re: /^\/users\/(.+)$/, page: userPage, mode: 'admin', title: 'User' },
  { re: /^\/usage$/, page: usagePage, mode: 'admin', title: 'Usage' },
  { re: /^\/quotas$/, page: quotasPage, mode: 'admin', title: 'Quotas' },
  { re: /^\/prices$/, page: pricesPage, mode: 'admin', title: 'Prices' },
  { re: /^\/audit$/, page: auditPage, mode: 'admin', title: 'Audit log' },
  { re: /^\/live$/, page: livePage, mode: 'admin', title: 'Live' },
  { re: /^\/me$/, page: mePage, mode: 'user', title: 'My usage' },
];

const app = {
  mode: null, // null (signed out) | "admin" | "user"
  live: new LiveFeed(),
  generation: 0,
  cleanup: null,
  /* Goes to a hash route ("#/users?q=a"); re-renders when it is the current one. */
  navigate(hash) {
    if (window.location.hash === hash) render();
    else window.location.hash = hash;
  },
  /* Replaces the current route's query without re-rendering (page-internal state). */
  replaceQuery(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
    const qs = q.toString();
    history.replaceState(null, '', `#${path}${qs ? `?${qs}` : ''}`);
  },
};

function parseHash() {
  const raw = window.location.hash.startsWith('#/') ? window.location.hash.slice(1) : '/';
  const qi = raw.indexOf('?');
  return {
    path: qi < 0 ? raw : raw.slice(0, qi),
    query: new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1)),
  };
}

function setMode(mode) {
  app.mode = mode;
  const nav = document.getElementById('nav');
  nav.hidden = !mode;
  for (const li of nav.querySelectorAll('li[data-mode]')) li.hidden = li.dataset.mode !== mode;
  document.getElementById('signout').hidden = !mode;
  if (mode === 'admin') app.live.start();
  else app.live.stop();
}

function markCurrentNav(path) {
  for (const a of document.querySelectorAll('#nav a')) {
    const target = a.getAttribute('href').slice(1);
    const current = path === target || (target === '/users' && path.startsWith('/users/'));
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

/* Checks a credential: admin when the admin API accepts it; a user when the admin API says 403
 * but GET /v1/quota accepts it (a user's own key or JWT). Rejects with the ApiError to show. */
async function verify(token) {
  try {
    await api('GET', '/admin/api/users', { query: { limit: 1 }, token, quiet401: true });
    return 'admin';
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 403) throw e;
    try {
      await api('GET', '/v1/quota', { token, quiet401: true });
      return 'user';
    } catch {
      throw e;
    }
  }
}

function signOut(message, kind = 'ok') {
  credential.clear();
  setMode(null);
  app.live.clear();
  if (message) flash(kind, message, true);
  app.navigate('#/');
}

function renderSignIn(main) {
  const input = h('input', {
    type: 'password',
    name: 'credential',
    id: 'credential',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
  });
  const err = h('p', { id: 'signin-error', class: 'form-error', role: 'alert' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'card signin',
      'aria-labelledby': 'signin-title',
      onsubmit: async (ev) => {
        ev.preventDefault();
        err.textContent = '';
        const token = input.value.trim();
        if (!token) return;
        button.disabled = true;
        try {
          const mode = await verify(token);
          credential.set(token);
          input.value = '';
          setMode(mode);
          app.navigate(mode === 'admin' ? '#/users' : '#/me');
        } catch (e) {
          if (e instanceof ApiError && e.status === 401) {
            err.textContent = `Not signed in: tollgate refused this credential (401). ${e.message}`;
          } else if (e instanceof ApiError && e.status === 403) {
            err.textContent = `Not allowed (403): this credential is not an admin credential and has no usage of its own to show. ${e.message}`;
          } else {
            err.textContent = describeError(e);
          }
          input.focus();
        } finally {
          button.disabled = false;
        }
      },
    },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    h(
      'p',
      {},
      'Paste TOLLGATE_ADMIN_KEY or an admin JWT. A user key or JWT shows that user’s own usage. ',
      'The credential stays in this browser tab only (sessionStorage) and is sent as ',
      h('code', {}, 'Authorization: Bearer'),
      '.',
    ),
    field('Admin key or JWT', input),
    err,
    h('div', { class: 'actions' }, button),
  );
  main.replaceChildren(form);
  input.focus();
}

async function render() {
  const gen = ++app.generation;
  if (app.cleanup) {
    app.cleanup();
    app.cleanup = null;
  }
  const main = document.getElementById('main');
  const { path, query } = parseHash();
  clearFlash();
  if (!app.mode) {
    markCurrentNav('');
    document.title = 'Sign in · tollgate';
    renderSignIn(main);
    return;
  }
  let route = null;
  let match = null;
  for (const r of ROUTES) {
    match = r.re.exec(path);
    if (match && r.mode === app.mode) {
      route = r;
      break;
    }
  }
  if (!route) {
    app.navigate(app.mode === 'admin' ? '#/users' : '#/me');
    return;
  }
  markCurrentNav(path);
  document.title = `${route.title} · tollgate`;
  const ctx = {
    app,
    query,
    params: match.slice(1).map((p) => decodeURIComponent(p)),
    isCurrent: () => gen === app.generation,
  };
  main.replaceChildren(h('p', { class: 'loading', role: 'status' }, 'Loading…'));
  main.setAttribute('aria-busy', 'true');
  try {
    const view = h('div', { class: 'page' });
    const cleanup = await route.page.render(view, ctx);
    if (!ctx.isCurrent()) {
      if (cleanup) cleanup();
      return;
    }
    app.cleanup = cleanup || null;
    main.replaceChildren(view);
  } catch (e) {
    if (!ctx.isCurrent()) return;
    main.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, describeError(e)));
  } finally {
    if (ctx.isCurrent()) main.removeAttribute('aria-busy');
  }
}

function updateLiveIndicator() {
  const dot = document.getElementById('live-dot');
  const label = document.getElementById('live-state');
  const st = app.live.state;
  dot.className = `live-dot live-${st}`;
  label.textContent = st === 'open' ? ' (connected)' : ` (${st})`;
}

async function start() {
  onUnauthorized((err) => signOut(`Signed out: tollgate refused the credential (401). ${err.message}`, 'error'));
  document.getElementById('signout').addEventListener('click', () => signOut('Signed out.'));
  document.querySelector('a.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    document.getElementById('main').focus();
  });
  app.live.addEventListener('state', updateLiveIndicator);
  window.addEventListener('hashchange', () => render());
  const token = credential.get();
  if (token) {
    try {
      setMode(await verify(token));
    } catch (e) {
      credential.clear();
      flash('error', `Signed out: ${describeError(e)}`, true);
    }
  }
  await render();
}

start();
