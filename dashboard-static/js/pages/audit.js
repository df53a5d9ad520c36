// pages/audit.js: the audit log (who changed what), newest first, filtered by actor, action
// or target, paged with the API's cursor.

import { api } from '../api.js';
import { busy, field, h, table, timeEl } from '../ui.js';

const ACTIONS = ['', 'quota.set', 'user.create', 'team.create', 'user.disable', 'user.enable', 'key.create', 'key.revoke', 'price.set'];

function jsonCell(v) {
  if (v === null || v === undefined) return '—';
  return h('code', { class: 'json' }, JSON.stringify(v));
}

export async function render(view, ctx) {
  const actor = h('input', { type: 'text', id: 'audit-actor', value: ctx.query.get('actor') || '', autocomplete: 'off' });
  const action = h('select', { id: 'audit-action', value: ctx.query.get('action') || '' }, ACTIONS.map((a) => h('option', { value: a }, a || 'any')));
  const target = h('input', { type: 'text', id: 'audit-target', value: ctx.query.get('target') || '', autocomplete: 'off', placeholder: 'user:alice' });
  const rows = [];
  const list = h('div', { id: 'audit-list' });
  const more = h('button', { type: 'button', id: 'audit-more', hidden: true }, 'Older entries');
  let cursor = null;

  const columns = [
    { label: 'When', value: (r) => timeEl(r.at) },
    { label: 'Actor', value: (r) => r.actor },
    { label: 'Action', value: (r) => r.action },
    { label: 'Target', value: (r) => r.target ?? '—' },
    { label: 'Before', value: (r) => jsonCell(r.before) },
    { label: 'After', value: (r) => jsonCell(r.after) },
  ];

  async function load(append) {
    const q = { actor: actor.value.trim(), action: action.value, target: target.value.trim() };
    if (!append) ctx.app.replaceQuery('/audit', q);
    const page = await api('GET', '/admin/api/audit', { query: { ...q, limit: 100, cursor: append ? cursor : '' } });
    if (!append) rows.length = 0;
    rows.push(...page.data);
    cursor = page.next_cursor;
    more.hidden = !page.has_more;
    list.replaceChildren(table(columns, rows, { id: 'audit-table', empty: 'No audit entries.' }));
  }
  more.addEventListener('click', () => busy(more, () => load(true)));

  await load(false);
  view.append(
    h('h1', {}, 'Audit log'),
    h(
      'form',
      {
        class: 'inline-form',
        role: 'search',
        onsubmit: (ev) => {
          ev.preventDefault();
          busy(null, () => load(false));
        },
      },
      field('Actor', actor),
      field('Action', action),
      field('Target', target),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Filter')),
    ),
    list,
    more,
  );
  return null;
}
