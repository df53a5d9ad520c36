// dashboard_browser.mjs: drives the admin dashboard (dashboard-static/) in Debian's chromium with
// playwright-core against a running tollgate seeded by tests/integration/test_dashboard_browser.sh:
// sign-in errors (401, 403), the users list and its figures, quota / disable / key actions checked
// through the API and real requests, the live feed, the usage report and CSV, prices, audit,
// the default quota, the teams (limit, usage, search, members, a team's quota), a user's own
// view, sign-out; fails on any console error, page error or CSP violation.
//
// usage: node dashboard_browser.mjs TG_URL ADMIN_KEY SERVICE_KEY SCREENSHOT RESULT_JSON
import { readFile, writeFile } from 'node:fs/promises';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const [BASE, ADMIN_KEY, SERVICE_KEY, SHOT, RESULT] = process.argv.slice(2);
if (!RESULT) {
  console.error('usage: dashboard_browser.mjs TG_URL ADMIN_KEY SERVICE_KEY SCREENSHOT RESULT_JSON');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const nf = new Intl.NumberFormat('en-US');

/* "0.04512000" → "$0.04512" (exact: no floating point), as an en-US page shows it. */
function usd(s) {
  const [i, f = ''] = String(s).split('.');
  let frac = f.replace(/0+$/, '');
  while (frac.length < 2) frac += '0';
  return `$${nf.format(BigInt(i))}.${frac}`;
}

const log = (...a) => console.error('[dashboard_browser]', ...a);

/* ---- the API and real requests, from Node (the test's own view, not the page's) ---------- */

async function api(method, path, body, token = ADMIN_KEY) {
  const res = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function apiOk(method, path, body) {
  const r = await api(method, path, body);
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/* A chat completion through tollgate as USER (service key) or with a personal KEY; usage is the
 * fake upstream's "P,C". Resolves to {status, requestId}. */
async function chat({ user, key, usage = '10,5' }) {
  const headers = { 'Content-Type': 'application/json', 'x-fake-usage': usage };
  if (key) headers.Authorization = `Bearer ${key}`;
  else Object.assign(headers, { Authorization: `Bearer ${SERVICE_KEY}`, 'X-Tollgate-User': user });
  const res = await fetch(`${BASE}/v1/chat/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }] }),
  });
  await res.arrayBuffer();
  return { status: res.status, requestId: res.headers.get('x-request-id') };
}

async function until(fn, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/* ---- the browser ------------------------------------------------------------------------ */

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
const context = await browser.newContext({ locale: 'en-US', timezoneId: 'Europe/Berlin', viewport: { width: 1280, height: 900 }, acceptDownloads: true });
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
const page = await context.newPage();
page.setDefaultTimeout(10000);

// Every console error or warning, page error and CSP violation is a failure, except the
// network errors a step expects (Chrome logs a failed fetch's status as a console error).
const problems = [];
const expectedSeen = [];
let allowed = [];
page.on('console', (m) => {
  if (m.type() !== 'error' && m.type() !== 'warning') return;
  const text = m.text();
  if (allowed.some((re) => re.test(text))) expectedSeen.push(text);
  else problems.push(`console.${m.type()}: ${text}`);
});
page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
await page.exposeFunction('__tgCspViolation', (v) => problems.push(`CSP violation: ${v}`));
await page.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (e) =>
    window.__tgCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`),
  );
});

/* Runs fn while a console error matching re is expected; waits until it was logged. */
async function expecting(re, fn) {
  allowed.push(re);
  const before = expectedSeen.length;
  try {
    await fn();
    await until(() => expectedSeen.slice(before).some((t) => re.test(t)), `the console error ${re}`, 5000);
  } finally {
    allowed = allowed.filter((x) => x !== re);
  }
}

const text = async (sel) => ((await page.locator(sel).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();
async function waitText(sel, want, what = sel) {
  await until(async () => (await page.locator(sel).count()) > 0 && (await text(sel)).includes(want), `${what} to contain "${want}"`);
}
async function confirm() {
  await page.locator('#confirm[open]').waitFor();
  await page.click('#confirm-ok');
  await until(async () => !(await page.locator('#confirm').evaluate((d) => d.open)), 'the dialog to close');
}
async function flashOk(want) {
  await waitText('#flash .flash-ok', want, 'the success message');
}
/* No style attribute, <style> or inline <script> anywhere in the DOM (the CSP allows inline
 * styles today; the dashboard does not rely on it). */
async function assertNoInline(where) {
  const found = await page.evaluate(() =>
    [...document.querySelectorAll('[style], style, script:not([src])')].map((e) => e.outerHTML.slice(0, 120)),
  );
  assert.deepEqual(found, [], `${where}: inline style or script`);
}
async function go(hash, ready) {
  await page.evaluate((h) => {
    window.location.hash = h;
  }, hash);
  await page.locator(ready).first().waitFor();
  await assertNoInline(hash);
}

const result = {};
let step = 'start';
try {
  /* ---- sign-in: 401, 403, then the admin key with the keyboard ---- */
  step = 'sign-in errors';
  await page.goto(`${BASE}/dashboard/`);
  await page.locator('#credential').waitFor();
  await expecting(/status of 401/, async () => {
    await page.fill('#credential', 'not-a-valid-key');
    await page.click('form.signin button[type=submit]');
    await waitText('#signin-error', '401');
  });
  await expecting(/status of (403|400)/, async () => {
    await page.fill('#credential', SERVICE_KEY);
    await page.click('form.signin button[type=submit]');
    await waitText('#signin-error', '403');
  });
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused credential is not stored');

  step = 'sign-in';
  await page.fill('#credential', '');
  await page.focus('#credential');
  await page.keyboard.type(ADMIN_KEY);
  await page.keyboard.press('Enter');
  await page.locator('#users-table').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('tollgate.credential')), ADMIN_KEY, 'credential in sessionStorage');
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
  await page.reload();
  await page.locator('#users-table').waitFor();
  await assertNoInline('the users page');

  /* ---- users list: the seeded users with their usage ---- */
  step = 'users list';
  const listed = await apiOk('GET', '/admin/api/users?limit=1000');
  await waitText('#users-summary', `of ${nf.format(listed.total)} users`);
  for (const u of listed.data) {
    const row = `#users-table tr[data-user="${u.id}"]`;
    assert.equal(await text(`${row} td[data-col=used]`), nf.format(u.used_tokens), `${u.id}: used`);
    assert.ok((await text(`${row} td[data-col=limit]`)).startsWith(nf.format(u.limit_tokens)), `${u.id}: limit`);
    assert.equal(await text(`${row} td[data-col=state]`), 'ok', `${u.id}: state`);
  }
  const seeded = { alice: 3 * 1234, bob: 2 * 6000, carol: 123 };
  for (const [id, used] of Object.entries(seeded)) {
    assert.equal(await text(`#users-table tr[data-user="${id}"] td[data-col=used]`), nf.format(used), `${id}: seeded usage`);
  }
  await page.fill('#users-q', 'BO');
  await waitText('#users-summary', 'of 1 user');
  assert.deepEqual(await page.locator('#users-table tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.user)), ['bob']);
  await page.fill('#users-q', '');
  await waitText('#users-summary', `of ${nf.format(listed.total)} users`);
  await page.click('button[data-sort=used_tokens]');
  await until(async () => (await page.locator('th[aria-sort=descending] button[data-sort=used_tokens]').count()) === 1, 'sorted by usage');
  const byUsage = (await apiOk('GET', '/admin/api/users?limit=1000&sort=used_tokens&order=desc')).data.map((u) => u.id);
  assert.deepEqual(byUsage.filter((id) => id in seeded), ['bob', 'alice', 'carol'], 'the API sorts by usage');
  await until(
    async () => JSON.stringify(await page.locator('#users-table tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.user))) === JSON.stringify(byUsage),
    'users by usage, descending',
  );

  /* ---- user detail, set a quota (checked through the API) ---- */
  step = 'user detail and quota';
  await page.click('#users-table a[href="#/users/alice"]');
  await page.locator('#usage-by-model').waitFor();
  await waitText('#usage-by-model tbody tr', 'gpt-4o-mini');
  assert.ok((await text('#usage-by-model tbody tr')).includes(nf.format(3 * 1234)), 'alice by model');
  await page.fill('#quota-limit', '4000');
  await page.selectOption('#quota-period', 'week');
  await page.click('#quota-save');
  await confirm();
  await flashOk('4,000 tokens per week');
  const alice = await apiOk('GET', '/admin/api/users/alice');
  assert.equal(alice.quota.limit_tokens, 4000, 'quota through the API');
  assert.equal(alice.quota.source, 'user');
  assert.equal(alice.quota.period, 'week');
  await waitText('[data-fig=limit]', '4,000 tokens');
  await waitText('#user-sections .quota-pct', `${alice.quota.percent} %`);
  await waitText('#h-quota .badge', alice.quota.state === 'warning' ? 'warning' : 'ok');
  assert.equal(alice.quota.state, 'warning', '3,702 of 4,000 is past the warning threshold');
  await assertNoInline('the user page');

  /* ---- disable: Escape cancels; confirmed, the user's requests get 403 ---- */
  step = 'disable';
  await page.click('#user-disable');
  await page.locator('#confirm[open]').waitFor();
  await page.keyboard.press('Escape');
  await until(async () => !(await page.locator('#confirm').evaluate((d) => d.open)), 'the dialog to close');
  assert.equal((await apiOk('GET', '/admin/api/users/alice')).user.disabled, false, 'Escape changed nothing');
  await page.click('#user-disable');
  await confirm();
  await flashOk('alice is disabled');
  await page.locator('#user-enable').waitFor();
  await waitText('#h-quota .badge', 'disabled');
  await until(async () => (await chat({ user: 'alice' })).status === 403, 'a request of alice to get 403');
  result.alice_disabled = true;

  /* ---- create a key, use it, copy it ---- */
  step = 'create key';
  await go('#/users/bob', '#key-name');
  await page.fill('#key-name', 'browser-test');
  await page.click('#key-create');
  await confirm();
  await page.locator('#new-key').waitFor();
  const key = await page.inputValue('#new-key');
  assert.match(key, /^tg-/, 'the plaintext key is shown');
  await waitText('#keys-table', 'browser-test');
  await page.click('#new-key-copy');
  await flashOk('copied');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key, 'the copy button copies the key');
  const used = await chat({ key, usage: '40,2' });
  assert.equal(used.status, 200, 'a real request with the new key');
  const bob = await apiOk('GET', '/admin/api/users/bob');
  const keyRow = bob.keys.find((k) => k.name === 'browser-test');
  assert.ok(keyRow && !keyRow.revoked_at, 'the key is listed, active');
  assert.ok(!JSON.stringify(bob).includes(key), 'the API never returns the secret again');
  result.key = key;
  result.key_id = keyRow.id;

  /* ---- live feed: a request appears; the admin changes since sign-in are there ---- */
  step = 'live';
  await go('#/live', '#live-table');
  await waitText('#live-status', 'Connected');
  const live = await chat({ user: 'carol', usage: '77,11' });
  assert.equal(live.status, 200);
  const liveRow = `#live-body tr[data-request="${live.requestId}"]`;
  await page.locator(liveRow).waitFor();
  const liveText = await text(liveRow);
  for (const want of ['carol', 'gpt-4o-mini', '200', '88']) assert.ok(liveText.includes(want), `live row has ${want}: ${liveText}`);
  await waitText('#live-body', 'user.disable user:alice');
  await waitText('#live-body', 'key.create');
  assert.equal(await page.locator('#live-dot.live-open').count(), 1, 'the header shows the feed connected');

  /* ---- revoke the key: it stops working ---- */
  step = 'revoke key';
  await go('#/users/bob', '#keys-table');
  await page.click(`button[data-key="${keyRow.id}"]`);
  await confirm();
  await flashOk('revoked');
  await waitText('#keys-table', 'revoked');
  await until(async () => (await chat({ key })).status === 401, 'the revoked key to get 401');

  /* ---- prices: the seeded price, an API error shown, a new effective-dated price ---- */
  step = 'prices';
  await go('#/prices', '#prices-table');
  await waitText('#prices-table', 'gpt-4o-mini');
  assert.ok((await text('#prices-table')).includes('$2.50') && (await text('#prices-table')).includes('$10.00'), 'seeded price shown');
  await page.fill('#price-model', 'gpt-4o');
  await page.fill('#price-input', '20000');
  await page.fill('#price-output', '12');
  await expecting(/status of 400/, async () => {
    await page.click('#price-save');
    await confirm();
    await waitText('#flash .flash-error', 'field: input_usd_per_mtok');
  });
  await page.fill('#price-input', '3');
  await page.fill('#price-cached', '1.5');
  await page.fill('#price-from', '2030-01-02T03:04:05');
  await page.click('#price-save');
  await confirm();
  await flashOk('Price of gpt-4o');
  const prices = await apiOk('GET', '/admin/api/prices?model=gpt-4o');
  assert.equal(prices.data.length, 1, 'one gpt-4o price');
  assert.equal(Number(prices.data[0].input_usd_per_mtok), 3);
  assert.equal(Number(prices.data[0].cached_input_usd_per_mtok), 1.5);
  assert.equal(Number(prices.data[0].output_usd_per_mtok), 12);
  const wantFrom = await page.evaluate(() => new Date('2030-01-02T03:04:05').toISOString());
  assert.equal(new Date(prices.data[0].effective_from).toISOString(), wantFrom, 'effective_from from the local time');
  await waitText('#prices-table', '$1.50');

  /* ---- usage report, top spenders, CSV ---- */
  step = 'usage';
  await go('#/usage', '#usage-totals');
  const month = await apiOk('GET', '/admin/api/usage?group_by=model');
  await waitText('[data-total=requests]', nf.format(month.totals.requests));
  assert.equal(await text('[data-total=total_tokens]'), nf.format(month.totals.total_tokens));
  await page.selectOption('#usage-group', 'model');
  await page.click('#usage-run');
  await until(async () => (await text('#usage-report h2:nth-of-type(2)')) === 'By model', 'the report by model');
  const rowsByModel = await page.locator('#usage-table tbody tr').evaluateAll((rs) => rs.map((r) => r.innerText.replace(/\s+/g, ' ').trim()));
  assert.equal(rowsByModel.length, month.data.length);
  assert.ok(rowsByModel[0].startsWith(month.data[0].model) && rowsByModel[0].includes(nf.format(month.data[0].total_tokens)), `by model: ${rowsByModel[0]}`);
  const spenders = await page.locator('#top-spenders tbody tr').evaluateAll((rs) => rs.map((r) => r.innerText.replace(/\s+/g, ' ').trim()));
  const top = await apiOk('GET', '/admin/api/usage?group_by=user&sort=cost_usd&limit=10');
  assert.equal(spenders.length, top.data.length, 'top spenders');
  assert.equal(top.data[0].user_id, 'bob', 'bob spent most');
  top.data.forEach((g, i) => {
    assert.ok(spenders[i].startsWith(g.user_id) && spenders[i].includes(usd(g.cost_usd)) && spenders[i].includes(nf.format(g.total_tokens)), `spender ${i}: ${spenders[i]} vs ${JSON.stringify(g)}`);
  });
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#usage-csv')]);
  const csv = await readFile(await dl.path(), 'utf8');
  const lines = csv.trim().split('\n');
  assert.match(lines[0], /^request_id,/, 'CSV header');
  assert.equal(lines.length - 1, month.totals.requests, 'one CSV line per ledger row of the range');
  assert.match(dl.suggestedFilename(), /^ledger-\d{4}-\d{2}-01-to-\d{4}-\d{2}-01\.csv$/);
  await flashOk('Ledger CSV downloaded');

  /* ---- quotas page: default quota; teams with limit, usage, members; a team's quota ---- */
  step = 'quotas';
  await go('#/quotas', '#teams-table');
  await page.fill('#default-limit', '2000000');
  await page.selectOption('#default-period', 'month');
  await page.click('#default-save');
  await confirm();
  await flashOk('2,000,000 tokens per month');
  const def = await apiOk('GET', '/admin/api/quota/default');
  assert.equal(def.limit_tokens, 2000000, 'default quota through the API');
  await waitText('#default-current', 'set here');

  step = 'teams list';
  const teamRow = (id) => `#teams-table tr[data-team="${id}"]`;
  const teamsBefore = await apiOk('GET', '/admin/api/teams?limit=1000');
  assert.deepEqual(teamsBefore.data.map((t) => t.id), ['ops', 'research'], 'the seeded teams');
  await waitText('#teams-summary', `All ${teamsBefore.total} teams`);
  for (const t of teamsBefore.data) {
    assert.equal(await text(`${teamRow(t.id)} td[data-col=members]`), nf.format(t.member_count), `${t.id}: members`);
    assert.equal(await text(`${teamRow(t.id)} td[data-col=used]`), nf.format(t.used_tokens), `${t.id}: used`);
    assert.equal(await text(`${teamRow(t.id)} td[data-col=limit]`), 'no quota', `${t.id}: limit`);
    assert.equal(await text(`${teamRow(t.id)} td[data-col=state]`), 'ok', `${t.id}: state`);
  }
  const research0 = teamsBefore.data.find((t) => t.id === 'research');
  assert.deepEqual([research0.member_count, research0.used_tokens, research0.limit_tokens], [2, 2 * 1250 + 700, null], 'research before');
  await page.fill('#teams-q', 'RES');
  await waitText('#teams-summary', 'All 1 team');
  assert.deepEqual(await page.locator('#teams-table tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.team)), ['research']);
  await page.fill('#teams-q', 'nothing-like-this');
  await waitText('#teams-summary', 'No team matches');
  await page.fill('#teams-q', '');
  await waitText('#teams-summary', `All ${teamsBefore.total} teams`);

  step = 'team detail';
  await page.click(`${teamRow('research')} a`);
  await page.locator('#team-detail[data-team="research"]').waitFor();
  await waitText('#team-detail [data-fig=limit]', 'no team quota');
  const detail0 = await apiOk('GET', '/admin/api/teams/research');
  const memberRows = await page.locator('#team-members tbody tr').evaluateAll((rs) => rs.map((r) => r.innerText.replace(/\s+/g, ' ').trim()));
  assert.deepEqual(detail0.members.map((m) => m.id), ['dana', 'erin'], 'research members through the API');
  assert.equal(memberRows.length, 2, `two member rows: ${JSON.stringify(memberRows)}`);
  detail0.members.forEach((m, i) => {
    assert.ok(memberRows[i].startsWith(m.id) && memberRows[i].includes(nf.format(m.used_tokens)), `member ${i}: ${memberRows[i]} vs ${m.id} ${m.used_tokens}`);
  });
  assert.ok(memberRows[0].includes('2,500') && memberRows[1].includes('700'), 'the members’ own usage');
  await waitText('#team-models tbody tr', 'gpt-4o-mini');
  assert.ok((await text('#team-models tbody tr')).includes(nf.format(3200)), 'research by model');
  await page.reload();
  await page.locator('#team-detail[data-team="research"]').waitFor();
  assert.match(page.url(), /#\/quotas\?team=research$/, 'the open team is in the URL');

  step = 'team quota';
  await page.click('button[data-edit="research"]');
  assert.equal(await page.inputValue('#team-id'), 'research', 'the row fills the form');
  await page.fill('#team-limit', '3500');
  await page.click('#team-save');
  await confirm();
  await waitText('#team-result', 'Team research: 3,500 tokens per month');
  await flashOk('Team research');
  const research1 = await apiOk('GET', '/admin/api/teams/research');
  assert.deepEqual([research1.limit_tokens, research1.quota_source, research1.period], [3500, 'team', 'month'], 'team quota through the API');
  assert.equal(research1.state, 'warning', '3,200 of 3,500 is past the warning threshold');
  await waitText(`${teamRow('research')} td[data-col=limit]`, nf.format(research1.limit_tokens));
  await waitText(`${teamRow('research')} td[data-col=percent]`, `${research1.percent} %`);
  await waitText(`${teamRow('research')} td[data-col=state]`, 'warning');
  assert.equal(await text(`${teamRow('research')} td[data-col=used]`), nf.format(research1.used_tokens));
  assert.equal(await text(`${teamRow('ops')} td[data-col=limit]`), 'no quota', 'the other team unchanged');
  await waitText('#team-detail [data-fig=limit]', '3,500 tokens per month');
  await waitText('#team-detail h2 .badge', 'warning');
  const audit = await apiOk('GET', '/admin/api/audit?target=team:research&action=quota.set');
  assert.equal(audit.data[0].after.limit_tokens, 3500, 'team quota audited');
  await assertNoInline('the quotas page');

  /* ---- audit page ---- */
  step = 'audit';
  await go('#/audit', '#audit-table');
  for (const a of ['quota.set', 'user.disable', 'key.create', 'key.revoke', 'price.set']) await waitText('#audit-table', a);
  await page.selectOption('#audit-action', 'user.disable');
  await page.click('form[role=search] button[type=submit]');
  await until(async () => (await page.locator('#audit-table tbody tr').count()) === 1, 'one user.disable entry');
  await waitText('#audit-table tbody tr', 'user:alice');

  /* ---- the users list now: default 2,000,000 for bob, alice blocked by hand ---- */
  step = 'users after';
  await go('#/users', '#users-table');
  await waitText('#users-table tr[data-user="bob"] td[data-col=limit]', '2,000,000');
  await waitText('#users-table tr[data-user="alice"] td[data-col=state]', 'disabled');
  assert.equal(await page.locator('#flash .flash-msg').count(), 0, 'a message does not follow to another page');
  await page.screenshot({ path: SHOT, fullPage: true });

  /* ---- sign out; a user's own key shows their own usage only ---- */
  step = 'user view';
  await page.click('#signout');
  await page.locator('#credential').waitFor();
  await flashOk('Signed out');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'sign-out clears the credential');
  const carolKey = (await apiOk('POST', '/admin/api/users/carol/keys', { name: 'own' })).key;
  await page.fill('#credential', carolKey);
  await expecting(/status of 403/, async () => {
    await page.click('form.signin button[type=submit]');
    await page.locator('#statement-table').waitFor();
  });
  const own = await api('GET', '/v1/quota', null, carolKey);
  assert.equal(own.status, 200);
  await waitText('[data-fig=used]', `${nf.format(own.body.used_tokens)} tokens`);
  await waitText('main h1', 'carol');
  const visibleNav = await page.locator('#nav li:not([hidden]) a').allTextContents();
  assert.deepEqual(visibleNav, ['My usage'], 'a user sees only their own page');
  const stmt = await api('GET', '/v1/quota/statement', null, carolKey);
  assert.equal(await page.locator('#statement-table tbody tr').count(), stmt.body.data.length);
  await page.click('#signout');
  await page.locator('#credential').waitFor();

  await assertNoInline('the user view');
  step = 'console';
  assert.deepEqual(problems, [], 'no console errors, page errors or CSP violations');
  await writeFile(RESULT, JSON.stringify(result));
  log('ok');
} catch (e) {
  log(`FAILED at step "${step}": ${e.stack || e}`);
  if (problems.length) log(`console problems: ${JSON.stringify(problems, null, 1)}`);
  await page.screenshot({ path: `${SHOT}.failed.png`, fullPage: true }).catch(() => {});
  log(`main: ${(await page.locator('main').innerText().catch(() => '')).slice(0, 3000)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
