// pages/quotas.js: the default quota (every user without an own limit) and team quotas.

import { api } from '../api.js';
import { busy, confirmAction, field, flash, fmtInt, h } from '../ui.js';

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

export async function render(view) {
  const current = h('p', { id: 'default-current' });
  const teamResult = h('p', { id: 'team-result', role: 'status' });

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
    if (res) done(res);
  }

  const d = await loadDefault();
  const dLimit = limitInput('default-limit', d.limit_tokens === null ? '' : String(d.limit_tokens));
  const dPeriod = periodSelect('default-period', d.period, false);
  const dSave = h('button', { type: 'submit', class: 'primary', id: 'default-save' }, 'Set default quota');
  const dReset = h('button', { type: 'button', id: 'default-reset' }, 'Back to the configured default');
  const afterDefault = async (res) => {
    flash('ok', `Default quota: ${quotaSentence(res)}.`);
    await busy(null, loadDefault);
  };
  dReset.addEventListener('click', () =>
    put(dReset, '/admin/api/quota/default', { limit_tokens: null }, 'Remove the default quota set here and go back to QUOTA_DEFAULT_TOKENS?', afterDefault),
  );

  const tId = h('input', { type: 'text', id: 'team-id', name: 'team', required: true, autocomplete: 'off', list: 'teams-seen' });
  const tLimit = limitInput('team-limit', '');
  const tPeriod = periodSelect('team-period', '', true);
  const tSave = h('button', { type: 'submit', class: 'primary', id: 'team-save' }, 'Set team quota');
  const tRemove = h('button', { type: 'button', id: 'team-remove' }, 'Remove team quota');
  const teamPath = () => `/admin/api/teams/${encodeURIComponent(tId.value.trim())}/quota`;
  const afterTeam = (res) => {
    const text = res.limit_tokens === null ? `Team ${res.id} has no team quota now.` : `Team ${res.id}: ${quotaSentence(res)}.`;
    teamResult.textContent = text;
    flash('ok', text);
  };
  tRemove.addEventListener('click', () => {
    if (!tId.reportValidity()) return;
    put(tRemove, teamPath(), { limit_tokens: null }, `Remove the quota of team ${tId.value.trim()}?`, afterTeam);
  });

  const teams = h('datalist', { id: 'teams-seen' });
  api('GET', '/admin/api/usage', { query: { group_by: 'team', limit: 1000 } })
    .then((r) => teams.replaceChildren(...r.data.filter((g) => g.team_id).map((g) => h('option', { value: g.team_id }))))
    .catch(() => {});

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
      h('h2', { id: 'h-team' }, 'Team quota'),
      h('p', { class: 'muted' }, 'A team quota applies besides each member’s own: both must have room. A member’s page shows the team’s figures.'),
      h(
        'form',
        {
          class: 'inline-form',
          onsubmit: (ev) => {
            ev.preventDefault();
            const n = Number(tLimit.value);
            const p = tPeriod.value || null;
            put(tSave, teamPath(), { limit_tokens: n, period: p }, `Set the quota of team ${tId.value.trim()} to ${limitText(n)}${p ? ` per ${p}` : ''}?`, afterTeam);
          },
        },
        field('Team', tId),
        teams,
        field('Limit (tokens per period)', tLimit, '-1 = unlimited, 0 = blocked'),
        field('Period', tPeriod),
        h('div', { class: 'actions' }, tSave, tRemove),
      ),
      teamResult,
    ),
  );
  return null;
}
