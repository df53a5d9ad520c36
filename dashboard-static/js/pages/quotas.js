// pages/quotas.js: the default quota (every user without an own limit) and the teams: each
// team's quota, this period's usage and state (GET /admin/api/teams), search, setting a team's
// quota, and one team's members and usage by model (GET /admin/api/teams/{id}).

import { api } from '../api.js';
import {
  busy,
  confirmAction,
  describeError,
  field,
  flash,
  fmtInt,
  fmtLimit,
  fmtUsd,
  h,
  quotaBar,
  searchForm,
  stateBadge,
  table,
  timeEl,
  userState,
} from '../ui.js';

const TEAMS_SHOWN = 200;

const PERIODS = ['month', 'week', 'day', 'none'];

/* A period <select>; withDefault adds "" = the default quota's period. */
export function periodSelect(id, current, withDefault) {
  const opts = [];
  if (withDefault) opts.push(h('option', { value: '' }, 'the default’s period'));
  for (const p of PERIODS) opts.push(h('option', { value: p }, p === 'none' ? 'none (a balance that never resets)' : p));
  return h('select', { id, name: 'period', value: current || (withDefault ? '' : 'month') }, opts);
}

function limitText(n) {
  if (n === null || n === undefined) return null;
  if (n < 0) return 'unlimited';
  return `${fmtInt(n)} tokens`;
}

/* "5,000,000 tokens per month" for a QuotaSetting reply (what tollgate now enforces). */
export function quotaSentence(q) {
  const lim = limitText(q.effective_limit_tokens);
  if (lim === null) return 'no quota';
  if (q.effective_limit_tokens < 0) return 'unlimited';
  const p = q.effective_period;
  return p && p !== 'none' ? `${lim} per ${p}` : `${lim} (never resets)`;
}

function limitInput(id, value) {
  return h('input', { type: 'number', id, name: 'limit_tokens', min: -1, step: 1, required: true, inputmode: 'numeric', value });
}

/* A team's limit cell: "no quota" without a team quota, else the limit and its period. */
function teamLimit(t) {
  if (t.limit_tokens === null) return h('span', { class: 'muted' }, 'no quota');
  return [fmtLimit(t.limit_tokens), t.limit_tokens >= 0 ? h('small', { class: 'muted block' }, `per ${t.period}`) : null];
}

/* A team's percent bar, as on the users page; none without a team quota. */
function usageBar(t) {
  return t.limit_tokens === null ? h('span', { class: 'muted' }, '—') : quotaBar(t.percent, userState(false, t.state), t.limit_tokens);
}

export async function render(view, ctx) {
  const current = h('p', { id: 'default-current' });
  const teamResult = h('p', { id: 'team-result', role: 'status' });
  const st = { q: ctx.query.get('q') || '', team: ctx.query.get('team') || '' };
  const summary = h('p', { id: 'teams-summary', class: 'muted', role: 'status', 'aria-live': 'polite' });
  const results = h('div', { id: 'teams-results' });
  const detail = h('div', { id: 'team-detail-box' });
  const teams = h('datalist', { id: 'teams-seen' });
  let listSeq = 0;
  let detailSeq = 0;

  async function loadDefault() {
    const d = await api('GET', '/admin/api/quota/default');
    current.replaceChildren(
      'Enforced now: ',
      h('strong', {}, quotaSentence(d)),
      d.limit_tokens === null ? ' — from the configuration (QUOTA_DEFAULT_TOKENS, QUOTA_PERIOD).' : ' — set here.',
    );
    return d;
  }

  async function put(button, path, body, question, done) {
    if (!(await confirmAction(question, 'Save'))) return;
    const res = await busy(button, () => api('PUT', path, { body }));
    if (res) await done(res);
  }

  /* ---- the team list ---- */

  async function loadTeams() {
    const mine = ++listSeq;
    ctx.app.replaceQuery('/quotas', { q: st.q, team: st.team });
    let page;
    try {
      page = await api('GET', '/admin/api/teams', { query: { q: st.q, limit: TEAMS_SHOWN } });
    } catch (e) {
      if (mine === listSeq) results.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, describeError(e)));
      return;
    }
    if (mine !== listSeq) return;
    const shown = page.data.length;
    const teamsText = `${fmtInt(page.total)} team${page.total === 1 ? '' : 's'}`;
    if (!page.total) {
      summary.textContent = st.q
        ? `No team matches “${st.q}”.`
        : 'No teams yet: a team appears with a JWT’s team claim, a user’s team or a team quota.';
    } else {
      summary.textContent = shown < page.total ? `Showing ${fmtInt(shown)} of ${teamsText}: search to narrow.` : `All ${teamsText}`;
    }
    results.replaceChildren(teamsTable(page.data));
    if (!st.q) teams.replaceChildren(...page.data.map((t) => h('option', { value: t.id })));
  }

  function teamsTable(rows) {
    if (!rows.length) return h('p', { class: 'empty' }, '');
    const th = (label, num) => h('th', { scope: 'col', class: num ? 'num' : null }, label);
    return h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: 'teams-table' },
        h('caption', { class: 'visually-hidden' }, 'Teams with their quota and this period’s usage; a team opens its members.'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            th('Team'),
            th('Members', true),
            th('Used this period', true),
            th('Limit', true),
            th('Usage'),
            th('State'),
            th(h('span', { class: 'visually-hidden' }, 'Action')),
          ),
        ),
        h(
          'tbody',
          {},
          rows.map((t) => {
            const edit = h('button', { type: 'button', class: 'small', 'data-edit': t.id, 'aria-label': `Set the quota of team ${t.id}` }, 'Set quota');
            edit.addEventListener('click', () => editTeam(t));
            return h(
              'tr',
              { 'data-team': t.id, 'aria-current': t.id === st.team ? 'true' : null },
              h(
                'td',
                {},
                h(
                  'a',
                  {
                    href: `#/quotas?team=${encodeURIComponent(t.id)}`,
                    onclick: (ev) => {
                      ev.preventDefault();
                      openTeam(t.id);
                    },
                  },
                  t.id,
                ),
                t.name ? h('small', { class: 'muted block' }, t.name) : null,
              ),
              h('td', { class: 'num', 'data-col': 'members' }, fmtInt(t.member_count)),
              h('td', { class: 'num', 'data-col': 'used' }, fmtInt(t.used_tokens)),
              h('td', { class: 'num', 'data-col': 'limit' }, teamLimit(t)),
              h('td', { 'data-col': 'percent' }, usageBar(t)),
              h('td', { 'data-col': 'state' }, stateBadge(userState(false, t.state))),
              h('td', {}, edit),
            );
          }),
        ),
      ),
    );
  }

  /* ---- one team: figures, members, usage by model ---- */

  function openTeam(id) {
    st.team = id;
    ctx.app.replaceQuery('/quotas', { q: st.q, team: st.team });
    for (const tr of results.querySelectorAll('tr[data-team]')) {
      if (tr.dataset.team === id) tr.setAttribute('aria-current', 'true');
      else tr.removeAttribute('aria-current');
    }
    return loadDetail(true);
  }

  function closeTeam() {
    st.team = '';
    detailSeq++;
    detail.replaceChildren();
    ctx.app.replaceQuery('/quotas', { q: st.q });
    for (const tr of results.querySelectorAll('tr[aria-current]')) tr.removeAttribute('aria-current');
  }

  async function loadDetail(focus) {
    if (!st.team) return;
    const mine = ++detailSeq;
    let d;
    try {
      d = await api('GET', `/admin/api/teams/${encodeURIComponent(st.team)}`);
    } catch (e) {
      if (mine === detailSeq) detail.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, describeError(e)));
      return;
    }
    if (mine !== detailSeq) return;
    const close = h('button', { type: 'button', class: 'ghost small', id: 'team-detail-close' }, 'Close');
    close.addEventListener('click', closeTeam);
    const title = h('h2', { id: 'h-team-detail', tabindex: '-1' }, `Team ${d.id}`, d.name ? h('small', { class: 'muted' }, d.name) : null, stateBadge(userState(false, d.state)));
    detail.replaceChildren(
      h(
        'section',
        { class: 'card', id: 'team-detail', 'aria-labelledby': 'h-team-detail', 'data-team': d.id },
        h('div', { class: 'detail-head' }, title, close),
        d.limit_tokens === null ? null : h('div', { class: 'figures' }, usageBar(d)),
        h(
          'dl',
          { class: 'facts wide' },
          h('dt', {}, 'Used'),
          h('dd', { 'data-fig': 'used' }, `${fmtInt(d.used_tokens)} tokens`),
          h('dt', {}, 'Limit'),
          h('dd', { 'data-fig': 'limit' }, d.limit_tokens === null ? 'no team quota' : d.limit_tokens < 0 ? 'unlimited' : `${fmtInt(d.limit_tokens)} tokens per ${d.period}`),
          h('dt', {}, 'Period'),
          h('dd', {}, d.period, d.period_start ? [' since ', timeEl(d.period_start)] : null),
          h('dt', {}, 'Resets'),
          h('dd', {}, d.reset ? timeEl(d.reset) : 'never'),
        ),
        h('h3', {}, `Members (${fmtInt(d.member_count)})`),
        table(
          [
            { label: 'User', value: (u) => h('a', { href: `#/users/${encodeURIComponent(u.id)}` }, u.id) },
            { label: 'Name', value: (u) => u.name || u.email || '—' },
            { label: 'Used (own period)', value: (u) => fmtInt(u.used_tokens), num: true },
            { label: 'Own limit', value: (u) => [fmtLimit(u.limit_tokens), u.quota_source === 'default' ? h('small', { class: 'muted block' }, 'default') : null], num: true },
            { label: 'Usage', value: (u) => quotaBar(u.percent, userState(false, u.state), u.limit_tokens) },
            { label: 'State', value: (u) => stateBadge(userState(u.disabled, u.state)) },
          ],
          d.members,
          { id: 'team-members', empty: 'No user has this team.' },
        ),
        h('h3', {}, 'Usage by model this period'),
        table(
          [
            { label: 'Model', value: (r) => r.model },
            { label: 'Requests', value: (r) => fmtInt(r.requests), num: true },
            { label: 'Total tokens', value: (r) => fmtInt(r.total_tokens), num: true },
            { label: 'Cost', value: (r) => fmtUsd(r.cost_usd), num: true },
          ],
          d.usage_by_model,
          { id: 'team-models', empty: 'No requests billed to this team in this period.' },
        ),
      ),
    );
    if (focus) title.focus();
  }

  /* ---- setting a team's quota ---- */

  const tId = h('input', { type: 'text', id: 'team-id', name: 'team', required: true, autocomplete: 'off', list: 'teams-seen' });
  const tLimit = limitInput('team-limit', '');
  const tPeriod = periodSelect('team-period', '', true);
  const tSave = h('button', { type: 'submit', class: 'primary', id: 'team-save' }, 'Set team quota');
  const tRemove = h('button', { type: 'button', id: 'team-remove' }, 'Remove team quota');
  const teamPath = () => `/admin/api/teams/${encodeURIComponent(tId.value.trim())}/quota`;
  const afterTeam = async (res) => {
    const text = res.limit_tokens === null ? `Team ${res.id} has no team quota now.` : `Team ${res.id}: ${quotaSentence(res)}.`;
    teamResult.textContent = text;
    flash('ok', text);
    await Promise.all([loadTeams(), st.team === res.id ? loadDetail(false) : null]);
  };
  tRemove.addEventListener('click', () => {
    if (!tId.reportValidity()) return;
    put(tRemove, teamPath(), { limit_tokens: null }, `Remove the quota of team ${tId.value.trim()}?`, afterTeam);
  });

  /* A row's "Set quota": the form, filled with the team's quota. */
  function editTeam(t) {
    tId.value = t.id;
    tLimit.value = t.limit_tokens === null ? '' : String(t.limit_tokens);
    tPeriod.value = t.quota_source ? t.period : '';
    teamResult.textContent = '';
    tLimit.focus();
  }

  const search = searchForm({
    id: 'teams-q',
    label: 'Search teams',
    placeholder: 'id or name',
    value: st.q,
    onSearch: (q) => {
      st.q = q;
      loadTeams();
    },
  });

  const d = await loadDefault();
  const dLimit = limitInput('default-limit', d.limit_tokens === null ? '' : String(d.limit_tokens));
  const dPeriod = periodSelect('default-period', d.period, false);
  const dSave = h('button', { type: 'submit', class: 'primary', id: 'default-save' }, 'Set default quota');
  const dReset = h('button', { type: 'button', id: 'default-reset' }, 'Back to the configured default');
  const afterDefault = async (res) => {
    flash('ok', `Default quota: ${quotaSentence(res)}.`);
    await busy(null, () => Promise.all([loadDefault(), loadTeams()]));
  };
  dReset.addEventListener('click', () =>
    put(dReset, '/admin/api/quota/default', { limit_tokens: null }, 'Remove the default quota set here and go back to QUOTA_DEFAULT_TOKENS?', afterDefault),
  );

  await Promise.all([loadTeams(), loadDetail(false)]);
  view.append(
    h('h1', {}, 'Quotas'),
    h(
      'section',
      { 'aria-labelledby': 'h-default', class: 'card' },
      h('h2', { id: 'h-default' }, 'Default quota'),
      h('p', { class: 'muted' }, 'Applies to every user without a quota of their own.'),
      current,
      h(
        'form',
        {
          class: 'inline-form',
          onsubmit: (ev) => {
            ev.preventDefault();
            const n = Number(dLimit.value);
            put(dSave, '/admin/api/quota/default', { limit_tokens: n, period: dPeriod.value }, `Set the default quota to ${limitText(n)} per ${dPeriod.value}?`, afterDefault);
          },
        },
        field('Limit (tokens per period)', dLimit, '-1 = unlimited, 0 = blocked'),
        field('Period', dPeriod),
        h('div', { class: 'actions' }, dSave, dReset),
      ),
    ),
    h(
      'section',
      { 'aria-labelledby': 'h-team', class: 'card' },
      h('h2', { id: 'h-team' }, 'Teams'),
      h(
        'p',
        { class: 'muted' },
        'A team quota applies besides each member’s own: both must have room. A member’s page shows the team’s figures. ',
        'A team without a quota is counted over the default quota’s period.',
      ),
      search.form,
      summary,
      results,
      h(
        'form',
        {
          class: 'inline-form',
          'aria-labelledby': 'h-team-quota',
          onsubmit: (ev) => {
            ev.preventDefault();
            const n = Number(tLimit.value);
            const p = tPeriod.value || null;
            put(tSave, teamPath(), { limit_tokens: n, period: p }, `Set the quota of team ${tId.value.trim()} to ${limitText(n)}${p ? ` per ${p}` : ''}?`, afterTeam);
          },
        },
        h('h3', { id: 'h-team-quota' }, 'Set a team’s quota'),
        field('Team', tId),
        teams,
        field('Limit (tokens per period)', tLimit, '-1 = unlimited, 0 = blocked'),
        field('Period', tPeriod),
        h('div', { class: 'actions' }, tSave, tRemove),
      ),
      teamResult,
    ),
    detail,
  );
  return search.stop;
}
