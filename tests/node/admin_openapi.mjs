// admin_openapi.mjs: the admin API answers as its OpenAPI document says (issue 8 §7), driven by
// tests/integration/test_admin_openapi.sh.
//
//   node admin_openapi.mjs OPENAPI_FILE BASE_URL NODB_URL ADMIN_KEY SERVICE_KEY
//
// BASE_URL is a tollgate with a seeded database (user oa-user, ledger rows, enough of them that
// an unread export stays open); NODB_URL one whose PostgreSQL is unreachable. Checks:
//   - GET /admin/api/openapi.json serves OPENAPI_FILE byte for byte;
//   - each case below gets its expected status, which the document lists for that operation,
//     and a body that validates against the documented schema (JSON) or content type;
//   - every operation answers 401 without a credential and 403 with the service key;
//   - every operation documenting 503 answers 503 when PostgreSQL is away;
//   - a third concurrent export gets the documented 429;
//   - every (operation, status) of the document was seen at least once.
import fs from 'node:fs';

const [docFile, base, nodb, adminKey, serviceKey] = process.argv.slice(2);
const docText = fs.readFileSync(docFile);
const doc = JSON.parse(docText);
const failures = [];
const seen = new Set();
const fail = (m) => failures.push(m);

// ---- a small JSON Schema checker for what the document uses ----------------------------------
function deref(s) {
  while (s && s.$ref) {
    const parts = s.$ref.replace(/^#\//, '').split('/');
    s = parts.reduce((o, k) => (o ? o[k] : undefined), doc);
    if (!s) throw new Error(`unresolved ${parts.join('/')}`);
  }
  return s;
}
function typeOk(t, v) {
  switch (t) {
    case 'integer': return Number.isInteger(v);
    case 'number': return typeof v === 'number';
    case 'string': return typeof v === 'string';
    case 'boolean': return typeof v === 'boolean';
    case 'null': return v === null;
    case 'array': return Array.isArray(v);
    case 'object': return v !== null && typeof v === 'object' && !Array.isArray(v);
    default: throw new Error(`type ${t}`);
  }
}
function validate(schema, v, path, errs) {
  const s = deref(schema);
  if (s.oneOf) {
    const n = s.oneOf.filter((x) => { const e = []; validate(x, v, path, e); return e.length === 0; }).length;
    if (n !== 1) errs.push(`${path}: matches ${n} of oneOf`);
    return;
  }
  if (s.type && ![].concat(s.type).some((t) => typeOk(t, v))) {
    errs.push(`${path}: ${JSON.stringify(v)?.slice(0, 80)} is not ${[].concat(s.type).join('|')}`);
    return;
  }
  if (s.enum && !s.enum.some((e) => e === v)) errs.push(`${path}: ${JSON.stringify(v)} not in enum`);
  if (s.pattern && typeof v === 'string' && !new RegExp(s.pattern).test(v)) errs.push(`${path}: ${v} !~ ${s.pattern}`);
  if (typeof v === 'number' && s.minimum !== undefined && v < s.minimum) errs.push(`${path}: below minimum`);
  if (typeOk('object', v)) {
    for (const r of s.required || []) if (!(r in v)) errs.push(`${path}: missing ${r}`);
    for (const [k, ps] of Object.entries(s.properties || {})) if (k in v) validate(ps, v[k], `${path}.${k}`, errs);
  }
  if (Array.isArray(v) && s.items) v.forEach((x, i) => validate(s.items, x, `${path}[${i}]`, errs));
}

// ---- the document's operations ----------------------------------------------------------------
const ops = [];
for (const [p, item] of Object.entries(doc.paths)) {
  for (const m of ['get', 'put', 'post', 'delete', 'patch']) {
    if (!item[m]) continue;
    const statuses = Object.keys(item[m].responses).filter((k) => k !== 'default');
    ops.push({ key: `${m.toUpperCase()} ${p}`, path: p, method: m.toUpperCase(), op: item[m], statuses });
  }
}
const opByKey = Object.fromEntries(ops.map((o) => [o.key, o]));

// ---- one request, checked against the document --------------------------------------------------
async function run(c, url = base) {
  const o = opByKey[c.op];
  if (!o) { fail(`case for an undocumented operation ${c.op}`); return null; }
  const headers = { ...(c.auth === undefined ? { authorization: `Bearer ${adminKey}` } : c.auth ? { authorization: c.auth } : {}) };
  if (c.body !== undefined) headers['content-type'] = 'application/json';
  const ctl = new AbortController();
  const res = await fetch(url + c.url, {
    method: o.method, headers, signal: ctl.signal,
    body: c.body === undefined ? undefined : typeof c.body === 'string' ? c.body : JSON.stringify(c.body),
  });
  const st = String(res.status);
  const where = `${c.op} (${c.url})`;
  if (c.expect && st !== String(c.expect)) fail(`${where}: status ${st}, expected ${c.expect}`);
  const r = o.op.responses[st];
  if (!r) {
    fail(`${where}: status ${st} is not documented`);
    ctl.abort();
    return res;
  }
  seen.add(`${c.op} ${st}`);
  const resp = deref(r);
  const types = Object.keys(resp.content || {});
  const ct = (res.headers.get('content-type') || '').split(';')[0];
  if (!types.includes(ct)) fail(`${where}: content type ${ct}, documented ${types.join(', ')}`);
  if (ct === 'application/json') {
    const text = await res.text();
    let body;
    try { body = JSON.parse(text); } catch { fail(`${where}: not JSON: ${text.slice(0, 200)}`); return res; }
    const errs = [];
    validate(resp.content[ct].schema, body, '$', errs);
    if (errs.length) fail(`${where} ${st}: ${errs.slice(0, 5).join('; ')}`);
    res.json_body = body;
  } else if (c.hold) {
    return res; // the caller keeps the body unread
  } else if (ct === 'text/event-stream') {
    ctl.abort();
  } else {
    await res.arrayBuffer();
  }
  return res;
}

// ---- 1. the served document ---------------------------------------------------------------------
{
  const res = await fetch(`${base}/admin/api/openapi.json`, { headers: { authorization: `Bearer ${adminKey}` } });
  const got = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200 || !got.equals(docText)) fail('the served openapi.json differs from the file');
}

// ---- 2. cases -----------------------------------------------------------------------------------
const uuid0 = '01234567-89ab-7def-8123-456789abcdef';
const key = (await run({ op: 'POST /admin/api/users/{id}/keys', url: '/admin/api/users/oa-user/keys', body: { name: 'oa' }, expect: 201 }))?.json_body;
const cases = [
  { op: 'GET /admin/api/users', url: '/admin/api/users?sort=used_tokens', expect: 200 },
  { op: 'GET /admin/api/users', url: '/admin/api/users?limit=0', expect: 400 },
  { op: 'GET /admin/api/users/{id}', url: '/admin/api/users/oa-user', expect: 200 },
  { op: 'GET /admin/api/users/{id}', url: '/admin/api/users/oa-team-user', expect: 200 },
  { op: 'GET /admin/api/users/{id}', url: '/admin/api/users/nobody', expect: 404 },
  { op: 'GET /admin/api/users/{id}', url: '/admin/api/users/a%00b', expect: 400 },
  { op: 'PUT /admin/api/users/{id}/quota', url: '/admin/api/users/oa-user/quota', body: { limit_tokens: 100000, period: 'week' }, expect: 200 },
  { op: 'PUT /admin/api/users/{id}/quota', url: '/admin/api/users/oa-user/quota', body: { limit_tokens: -5 }, expect: 400 },
  { op: 'POST /admin/api/users/{id}/keys', url: '/admin/api/users/oa-user/keys', body: { name: 'second' }, expect: 201 },
  { op: 'POST /admin/api/users/{id}/keys', url: '/admin/api/users/oa-user/keys', body: { name: 1 }, expect: 400 },
  { op: 'POST /admin/api/users/{id}/disable', url: '/admin/api/users/oa-user/disable', expect: 200 },
  { op: 'POST /admin/api/users/{id}/disable', url: '/admin/api/users/oa-user/disable', body: { x: 1 }, expect: 400 },
  { op: 'POST /admin/api/users/{id}/enable', url: '/admin/api/users/oa-user/enable', body: {}, expect: 200 },
  { op: 'POST /admin/api/users/{id}/enable', url: '/admin/api/users/oa-user/enable', body: [], expect: 400 },
  { op: 'GET /admin/api/teams', url: '/admin/api/teams?sort=used_tokens', expect: 200 },
  { op: 'GET /admin/api/teams', url: '/admin/api/teams?limit=0', expect: 400 },
  { op: 'GET /admin/api/teams/{id}', url: '/admin/api/teams/oa-team', expect: 200 },
  { op: 'GET /admin/api/teams/{id}', url: '/admin/api/teams/nobody', expect: 404 },
  { op: 'GET /admin/api/teams/{id}', url: '/admin/api/teams/a%00b', expect: 400 },
  { op: 'PUT /admin/api/teams/{id}/quota', url: '/admin/api/teams/oa-team/quota', body: { limit_tokens: 5000 }, expect: 200 },
  { op: 'GET /admin/api/teams', url: '/admin/api/teams?q=oa', expect: 200 },
  { op: 'GET /admin/api/teams/{id}', url: '/admin/api/teams/oa-team', expect: 200 },
  { op: 'PUT /admin/api/teams/{id}/quota', url: '/admin/api/teams/oa-team/quota', body: { limit_tokens: 5, period: 'year' }, expect: 400 },
  { op: 'GET /admin/api/quota/default', url: '/admin/api/quota/default', expect: 200 },
  { op: 'PUT /admin/api/quota/default', url: '/admin/api/quota/default', body: { limit_tokens: 2000000, period: 'month' }, expect: 200 },
  { op: 'PUT /admin/api/quota/default', url: '/admin/api/quota/default', body: '{', expect: 400 },
  { op: 'DELETE /admin/api/keys/{key_id}', url: `/admin/api/keys/${key?.id}`, expect: 200 },
  { op: 'DELETE /admin/api/keys/{key_id}', url: '/admin/api/keys/not-a-uuid', expect: 400 },
  { op: 'DELETE /admin/api/keys/{key_id}', url: `/admin/api/keys/${uuid0}`, expect: 404 },
  { op: 'GET /admin/api/usage', url: '/admin/api/usage?group_by=user&from=2020-01-01', expect: 200 },
  { op: 'GET /admin/api/usage', url: '/admin/api/usage?group_by=day&from=2020-01-01', expect: 200 },
  { op: 'GET /admin/api/usage', url: '/admin/api/usage?group_by=team&from=2020-01-01', expect: 200 },
  { op: 'GET /admin/api/usage', url: '/admin/api/usage?group_by=model&from=2020-01-01&sort=cost_usd', expect: 200 },
  { op: 'GET /admin/api/usage', url: '/admin/api/usage?group_by=week', expect: 400 },
  { op: 'GET /admin/api/ledger', url: '/admin/api/ledger?limit=50', expect: 200 },
  { op: 'GET /admin/api/ledger', url: '/admin/api/ledger?cursor=x', expect: 400 },
  { op: 'GET /admin/api/ledger.csv', url: '/admin/api/ledger.csv?to=2020-01-02', expect: 200 },
  { op: 'GET /admin/api/ledger.csv', url: '/admin/api/ledger.csv?from=x', expect: 400 },
  { op: 'GET /admin/api/prices', url: '/admin/api/prices', expect: 200 },
  { op: 'GET /admin/api/prices', url: '/admin/api/prices?model=a%0Ab', expect: 400 },
  { op: 'PUT /admin/api/prices/{model}', url: '/admin/api/prices/oa-model', body: { input_usd_per_mtok: '1.5', output_usd_per_mtok: 3, effective_from: '2024-01-01T00:00:00Z' }, expect: 201 },
  { op: 'PUT /admin/api/prices/{model}', url: '/admin/api/prices/oa-model', body: { input_usd_per_mtok: '1.75', cached_input_usd_per_mtok: '0.5', output_usd_per_mtok: 3, effective_from: '2024-01-01T00:00:00Z' }, expect: 200 },
  { op: 'PUT /admin/api/prices/{model}', url: '/admin/api/prices/oa-model', body: { input_usd_per_mtok: '-1', output_usd_per_mtok: 3 }, expect: 400 },
  { op: 'GET /admin/api/audit', url: '/admin/api/audit?limit=5', expect: 200 },
  { op: 'GET /admin/api/audit', url: '/admin/api/audit?limit=0', expect: 400 },
  { op: 'GET /admin/api/events', url: '/admin/api/events', expect: 200 },
  { op: 'GET /admin/api/openapi.json', url: '/admin/api/openapi.json', expect: 200 },
];
for (const c of cases) await run(c);

// ---- 3. 401 and 403 on every operation ----------------------------------------------------------
const sample = (p) => p.replace('{id}', 'oa-user').replace('{key_id}', uuid0).replace('{model}', 'oa-model');
for (const o of ops) {
  await run({ op: o.key, url: sample(o.path), auth: null, expect: 401 });
  await run({ op: o.key, url: sample(o.path), auth: `Bearer ${serviceKey}`, expect: 403 });
}

// ---- 4. 503 without PostgreSQL --------------------------------------------------------------------
for (const o of ops.filter((x) => x.statuses.includes('503'))) {
  const c = cases.find((x) => x.op === o.key && (x.expect === 200 || x.expect === 201));
  if (!c) { fail(`no valid case for ${o.key}`); continue; }
  await run({ ...c, url: c.url.replace(key?.id ?? '', uuid0), expect: 503 }, nodb);
}

// ---- 5. 429: two exports left unread, then a third ---------------------------------------------------
{
  const held = [];
  for (let i = 0; i < 2; i++) held.push(await run({ op: 'GET /admin/api/ledger.csv', url: '/admin/api/ledger.csv', expect: 200, hold: true }));
  const r = await run({ op: 'GET /admin/api/ledger.csv', url: '/admin/api/ledger.csv', expect: 429 });
  if (r && r.headers.get('retry-after') === null) fail('429 without Retry-After');
  for (const h of held) await h?.body?.cancel();
}

// ---- 6. coverage ------------------------------------------------------------------------------------
for (const o of ops) for (const s of o.statuses) if (!seen.has(`${o.key} ${s}`)) fail(`never seen: ${o.key} -> ${s}`);

console.log(JSON.stringify({ operations: ops.length, checked: seen.size, failures }, null, 1));
process.exit(failures.length ? 1 : 0);
