// pages/user.js: one user: quota figures and the quota form, disable/enable, usage by model
// and by day, and the user's API keys (create: the plaintext is shown once; revoke).

import { api, userPath } from '../api.js';
import {
  barChart,
  busy,
  confirmAction,
  fmtDay,
  fmtInt,
  fmtUsd,
  flash,
  field,
  h,
  quotaBar,
  stateBadge,
  table,
  timeEl,
  userState,
} from '../ui.js';
import { periodSelect, quotaSentence } from './quotas.js';

export function usageColumns(first) {
  return [
    first,
    { label: 'Requests', value: (r) => fmtInt(r.requests), num: true },
    { label: 'Prompt', value: (r) => fmtInt(r.prompt_tokens), num: true },
    { label: 'Completion', value: (r) => fmtInt(r.completion_tokens), num: true },
    { label: 'Cached', value: (r) => fmtInt(r.cached_tokens), num: true },
    { label: 'Reasoning', value: (r) => fmtInt(r.reasoning_tokens), num: true },
    { label: 'Total tokens', value: (r) => fmtInt(r.total_tokens), num: true },
    { label: 'Cost', value: (r) => fmtUsd(r.cost_usd), num: true },
  ];
}

/* The figures of a quota (user's or team's): bar, used / limit, remaining, period, reset. */
export function quotaFigures(q, state, extra) {
  return h(
    'div',
    { class: 'figures' },
    quotaBar(q.percent, state, q.limit_tokens),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Used'),
      h('dd', { 'data-fig': 'used' }, `${fmtInt(q.used_tokens)} tokens`),
      h('dt', {}, 'Limit'),
      h('dd', { 'data-fig': 'limit' }, q.limit_tokens < 0 ? 'unlimited' : `${fmtInt(q.limit_tokens)} tokens`),
      h('dt', {}, 'Remaining'),
      h('dd', {}, q.remaining_tokens < 0 ? 'unlimited' : `${fmtInt(q.remaining_tokens)} tokens`),
      h('dt', {}, 'Period'),
      h('dd', { 'data-fig': 'period' }, q.period, q.period_start ? [' since ', timeEl(q.period_start)] : null),
      h('dt', {}, 'Resets'),
      h('dd', {}, q.reset ? timeEl(q.reset) : 'never'),
      extra,
    ),
  );
}

export async function render(view, ctx) {
  const id = ctx.params[0];
  const sections = h('div', { id: 'user-sections' });
  const keyBox = h('div', { id: 'new-key-box', 'aria-live': 'polite' });

  async function load() {
    const d = await api('GET', userPath(id));
    sections.replaceChildren(...build(d).filter(Boolean));
  }

  async function setQuota(button, limit, period, text) {
    if (!(await confirmAction(text, 'Set quota'))) return;
    const res = await busy(button, () => api('PUT', userPath(id, '/quota'), { body: { limit_tokens: limit, period } }));
    if (!res) return;
    flash('ok', `Quota of ${id}: ${quotaSentence(res)}.`);
    await busy(null, load);
  }

  function quotaForm(d) {
    const limit = h('input', {
      type: 'number',
      id: 'quota-limit',
      name: 'limit_tokens',
      min: -1,
      step: 1,
      required: true,
      inputmode: 'numeric',
      value: d.quota.source === 'user' ? String(d.quota.limit_tokens) : '',
    });
    const period = periodSelect('quota-period', d.quota.source === 'user' ? d.quota.period : '', true);
    const save = h('button', { type: 'submit', class: 'primary', id: 'quota-save' }, 'Set quota');
    const reset = h('button', { type: 'button', id: 'quota-default', disabled: d.quota.source !== 'user' }, 'Use the default quota');
    reset.addEventListener('click', () =>
      setQuota(reset, null, null, `Remove ${id}’s own quota? The default quota applies again.`),
    );
    return h(
      'form',
      {
        class: 'inline-form',
        'aria-label': 'Set this user’s quota',
        onsubmit: (ev) => {
          ev.preventDefault();
          const n = Number(limit.value);
          const p = period.value || null;
          const what = n < 0 ? 'unlimited' : n === 0 ? '0 tokens (blocked)' : `${fmtInt(n)} tokens per ${p || 'default period'}`;
          setQuota(save, n, p, `Set ${id}’s quota to ${what}?`);
        },
      },
      field('Limit (tokens per period)', limit, '-1 = unlimited, 0 = blocked'),
      field('Period', period),
      h('div', { class: 'actions' }, save, reset),
    );
  }

  function accessSection(d) {
    const disabled = d.user.disabled;
    const btn = h(
      'button',
      { type: 'button', id: disabled ? 'user-enable' : 'user-disable', class: disabled ? 'primary' : 'danger' },
      disabled ? 'Enable user' : 'Disable user',
    );
    btn.addEventListener('click', async () => {
      const text = disabled
        ? `Enable ${id}? Their credentials work again at once.`
        : `Disable ${id}? Every request of theirs gets 403 until enabled, with any credential.`;
      if (!(await confirmAction(text, disabled ? 'Enable' : 'Disable', !disabled))) return;
      const res = await busy(btn, () => api('POST', userPath(id, disabled ? '/enable' : '/disable'), { body: {} }));
      if (!res) return;
      flash('ok', `${id} is ${disabled ? 'enabled' : 'disabled'}.`);
      await busy(null, load);
    });
    return h(
      'section',
      { 'aria-labelledby': 'h-access' },
      h('h2', { id: 'h-access' }, 'Access'),
      h('p', {}, disabled ? 'This user is disabled: every request gets 403.' : 'This user may make requests.'),
      btn,
    );
  }

  function keysSection(d) {
    const rows = d.keys;
    const cols = [
      { label: 'Name', value: (k) => k.name || '—' },
      { label: 'Prefix', value: (k) => h('code', {}, `${k.prefix}…`) },
      { label: 'Created', value: (k) => timeEl(k.created_at) },
      { label: 'Last used', value: (k) => timeEl(k.last_used_at) },
      {
        label: 'Status',
        value: (k) => (k.revoked_at ? h('span', {}, 'revoked ', timeEl(k.revoked_at)) : h('span', { class: 'badge state-ok' }, 'active')),
      },
      {
        label: 'Action',
        value: (k) => {
          if (k.revoked_at) return '';
          const b = h('button', { type: 'button', class: 'danger small', 'data-key': k.id, 'aria-label': `Revoke key ${k.name || k.prefix}` }, 'Revoke');
          b.addEventListener('click', async () => {
            if (!(await confirmAction(`Revoke the key “${k.name || k.prefix}” of ${id}? It stops working at once.`, 'Revoke', true))) return;
            const res = await busy(b, () => api('DELETE', `/admin/api/keys/${encodeURIComponent(k.id)}`));
            if (!res) return;
            flash('ok', `Key “${k.name || k.prefix}” revoked.`);
            await busy(null, load);
          });
          return b;
        },
      },
    ];
    const name = h('input', { type: 'text', id: 'key-name', name: 'name', maxlength: 200, autocomplete: 'off' });
    const create = h('button', { type: 'submit', class: 'primary', id: 'key-create' }, 'Create key');
    const form = h(
      'form',
      {
        class: 'inline-form',
        'aria-label': 'Create an API key',
        onsubmit: async (ev) => {
          ev.preventDefault();
          const n = name.value.trim();
          if (!(await confirmAction(`Create a new API key${n ? ` “${n}”` : ''} for ${id}?`, 'Create key'))) return;
          const res = await busy(create, () => api('POST', userPath(id, '/keys'), { body: n ? { name: n } : {} }));
          if (!res) return;
          name.value = '';
          showNewKey(res);
          await busy(null, load);
        },
      },
      field('Key name', name, 'e.g. the application that will use it'),
      h('div', { class: 'actions' }, create),
    );
    return h(
      'section',
      { 'aria-labelledby': 'h-keys' },
      h('h2', { id: 'h-keys' }, 'API keys'),
      table(cols, rows, { id: 'keys-table', empty: 'No API keys.' }),
      form,
    );
  }

  function showNewKey(res) {
    const out = h('input', { type: 'text', id: 'new-key', readonly: true, value: res.key, 'aria-label': 'New API key', spellcheck: 'false' });
    const copy = h('button', { type: 'button', id: 'new-key-copy' }, 'Copy');
    copy.addEventListener('click', async () => {
      out.select();
      let ok = false;
      try {
        await navigator.clipboard.writeText(res.key);
        ok = true;
      } catch {
        ok = document.execCommand('copy');
      }
      flash(ok ? 'ok' : 'error', ok ? 'Key copied to the clipboard.' : 'Cannot copy: select the key and copy it by hand.');
    });
    const done = h('button', { type: 'button', class: 'ghost' }, 'Done, hide it');
    done.addEventListener('click', () => keyBox.replaceChildren());
    keyBox.replaceChildren(
      h(
        'div',
        { class: 'card key-once', role: 'region', 'aria-label': 'New API key' },
        h('h2', {}, `New key “${res.name || res.prefix}” for ${res.user_id}`),
        h('p', {}, h('strong', {}, 'Copy it now: it is shown only this once.'), ' tollgate keeps only its hash.'),
        h('div', { class: 'copy-row' }, out, copy, done),
      ),
    );
    out.focus();
    out.select();
  }

  function build(d) {
    const u = d.user;
    const state = userState(u.disabled, d.quota.state);
    const byDay = d.usage_by_day;
    return [
      h(
        'section',
        { 'aria-labelledby': 'h-quota' },
        h('h2', { id: 'h-quota' }, 'Quota ', stateBadge(state)),
        quotaFigures(d.quota, userState(false, d.quota.state), [
          h('dt', {}, 'Source'),
          h('dd', { 'data-fig': 'source' }, d.quota.source === 'user' ? 'set for this user' : 'the default quota'),
        ]),
        quotaForm(d),
      ),
      d.team_quota
        ? h(
            'section',
            { 'aria-labelledby': 'h-team' },
            h('h2', { id: 'h-team' }, `Team quota: ${d.team_quota.team_id}`),
            quotaFigures(d.team_quota, userState(false, d.team_quota.state)),
          )
        : null,
      accessSection(d),
      h(
        'section',
        { 'aria-labelledby': 'h-usage' },
        h('h2', { id: 'h-usage' }, 'Usage'),
        h('p', { class: 'muted' }, 'From ', timeEl(d.range.from), ' to ', timeEl(d.range.to), '.'),
        h('h3', {}, 'By model'),
        table(usageColumns({ label: 'Model', value: (r) => r.model }), d.usage_by_model, { id: 'usage-by-model', empty: 'No requests in this period.' }),
        h('h3', {}, 'By day (UTC)'),
        byDay.length > 1 ? barChart(byDay, (r) => fmtDay(r.day), (r) => r.total_tokens, 'Total tokens per day') : null,
        table(usageColumns({ label: 'Day', value: (r) => h('time', { datetime: r.day }, fmtDay(r.day)) }), byDay, { id: 'usage-by-day', empty: 'No requests in this period.' }),
      ),
      keysSection(d),
    ];
  }

  const d = await api('GET', userPath(id));
  const u = d.user;
  sections.replaceChildren(...build(d).filter(Boolean));
  view.append(
    h('p', {}, h('a', { href: '#/users' }, '← All users')),
    h('h1', { id: 'user-title' }, u.id),
    h(
      'dl',
      { class: 'facts wide' },
      h('dt', {}, 'Name'),
      h('dd', {}, u.name || '—'),
      h('dt', {}, 'E-mail'),
      h('dd', {}, u.email || '—'),
      h('dt', {}, 'Team'),
      h('dd', {}, u.team_id || '—'),
      h('dt', {}, 'Role'),
      h('dd', {}, u.role),
      h('dt', {}, 'First seen'),
      h('dd', {}, timeEl(u.created_at)),
      h('dt', {}, 'Last seen'),
      h('dd', {}, timeEl(u.last_seen)),
    ),
    keyBox,
    sections,
  );
  return null;
}

