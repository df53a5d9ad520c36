// api.js: the admin API client: the credential (sessionStorage only), JSON calls with
// Authorization: Bearer, OpenAI-shaped errors as ApiError, and the authenticated CSV download.

const STORAGE_KEY = 'tollgate.credential';

/* The credential lives in this tab's sessionStorage and nowhere else. */
export const credential = {
  get: () => sessionStorage.getItem(STORAGE_KEY),
  set: (v) => sessionStorage.setItem(STORAGE_KEY, v),
  clear: () => sessionStorage.removeItem(STORAGE_KEY),
};

/* An error answer of the API (status 0: tollgate could not be reached). */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    this.param = body?.error?.param ?? null;
    this.code = body?.error?.code ?? null;
  }
}

let unauthorizedHook = null;

/* fn(error) runs when a call made with the stored credential gets 401 (the credential was
 * revoked or expired while signed in). */
export function onUnauthorized(fn) {
  unauthorizedHook = fn;
}

export function authHeaders(token = credential.get()) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  return url;
}

async function errorOf(res) {
  const text = await res.text().catch(() => '');
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  const msg = body?.error?.message || `${res.status} ${res.statusText || 'error'}`;
  return new ApiError(res.status, msg, body);
}

/* Calls the API; resolves to the parsed JSON body, rejects with ApiError.
 * opts: query (object), body (JSON-encoded when given), token (instead of the stored one),
 * signal, quiet401 (do not run the unauthorized hook: sign-in checks). */
export async function api(method, path, opts = {}) {
  const headers = { Accept: 'application/json', ...authHeaders(opts.token) };
  const init = { method, headers, cache: 'no-store', signal: opts.signal };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  let res;
  try {
    res = await fetch(buildUrl(path, opts.query), init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `Cannot reach tollgate (${e.message}).`, null);
  }
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && !opts.quiet401 && unauthorizedHook) unauthorizedHook(err);
    throw err;
  }
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/* Path of one model's price: a model name may contain "/", each segment is encoded. */
export function pricePath(model) {
  return `/admin/api/prices/${model.split('/').map(encodeURIComponent).join('/')}`;
}

export function userPath(id, suffix = '') {
  return `/admin/api/users/${encodeURIComponent(id)}${suffix}`;
}

/* Downloads an authenticated file (e.g. ledger.csv): a link cannot send the Authorization
 * header, so the file is fetched as a blob and saved through an object URL. */
export async function download(path, query, filename) {
  let res;
  try {
    res = await fetch(buildUrl(path, query), { headers: authHeaders(), cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, `Cannot reach tollgate (${e.message}).`, null);
  }
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && unauthorizedHook) unauthorizedHook(err);
    throw err;
  }
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return blob.size;
}
