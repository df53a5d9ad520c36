// pages/usage.js: the usage report over a range of UTC days, grouped by user, team, model or
// day; the top spenders and models; the ledger of the range as CSV.

import { api, download } from '../api.js';
import { barChart, busy, describeError, field, flash, fmtDay, fmtInt, fmtUsd, h, table } from '../ui.js';
import { usageColumns } from './user.js';

const GROUPS = { '': 'nothing (totals only)', user: 'user', team: 'team', model: 'model', day: 'day' };

function utcDay(d) {
  return d.toISOString().slice(0, 10);
}

/* This UTC month: [first day, first day of next month). */
function thisMonth() {
  const now = new Date();
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  return [utcDay(from), utcDay(to)];
}

function keyColumn(group) {
  switch (group) {
    case 'user':
      return { label: 'User', value: (r) => (r.user_id ? h('a', { href: `#/users/${encodeURIComponent(r.user_id)}` }, r.user_id) : '—') };
    case 'team':
      return { label: 'Team', value: (r) => r.team_id ?? '(no team)' };
    case 'model':
      return { label: 'Model', value: (r) => r.model };
    default:
      return { label: 'Day (UTC)', value: (r) => h('time', { datetime: r.day }, fmtDay(r.day)) };
  }
}

function totalsList(t) {
  const item = (label, value, key) => [h('dt', {}, label), h('dd', { 'data-total': key }, value)];
  return h(
    'dl',
    { class: 'facts totals', id: 'usage-totals' },
    item('Requests', fmtInt(t.requests), 'requests'),
    item('Total tokens', fmtInt(t.total_tokens), 'total_tokens'),
    item('Prompt', fmtInt(t.prompt_tokens), 'prompt_tokens'),
    item('Completion', fmtInt(t.completion_tokens), 'completion_tokens'),
    item('Cached', fmtInt(t.cached_tokens), 'cached_tokens'),
    item('Reasoning', fmtInt(t.reasoning_tokens), 'reasoning_tokens'),
    item('Cost', fmtUsd(t.cost_usd), 'cost_usd'),
    item('Unpriced requests', fmtInt(t.unpriced_requests), 'unpriced_requests'),
  );
}

export async function render(view, ctx) {
  const [defFrom, defTo] = thisMonth();
  const from = h('input', { type: 'date', id: 'usage-from', name: 'from', required: true, value: ctx.query.get('from') || defFrom });
  const to = h('input', { type: 'date', id: 'usage-to', name: 'to', required: true, value: ctx.query.get('to') || defTo });
  const group = h(
    'select',
    { id: 'usage-group', name: 'group_by', value: ctx.query.get('group_by') ?? 'user' },
    Object.entries(GROUPS).map(([v, label]) => h('option', { value: v }, label)),
  );
  const run = h('button', { type: 'submit', class: 'primary', id: 'usage-run' }, 'Run report');
  const csv = h('button', { type: 'button', id: 'usage-csv' }, 'Download ledger CSV');
  const report = h('div', { id: 'usage-report', 'aria-live': 'polite' });
  const top = h('div', { id: 'usage-top', class: 'two-col' });

  async function load() {
    ctx.app.replaceQuery('/usage', { from: from.value, to: to.value, group_by: group.value });
    const range = { from: from.value, to: to.value };
    const g = group.value;
    const [rep, spenders, models] = await Promise.all([
      api('GET', '/admin/api/usage', { query: { ...range, group_by: g } }),
      api('GET', '/admin/api/usage', { query: { ...range, group_by: 'user', sort: 'cost_usd', limit: 10 } }),
      api('GET', '/admin/api/usage', { query: { ...range, group_by: 'model', sort: 'total_tokens', limit: 10 } }),
    ]);
    const parts = [
      h('h2', {}, 'Totals ', h('small', { class: 'muted' }, `${fmtDay(range.from)} – ${fmtDay(range.to)} (to excluded)`)),
      totalsList(rep.totals),
    ];
    if (g) {
      parts.push(h('h2', {}, `By ${g}`));
      if (g === 'day' && rep.data.length > 1) parts.push(barChart(rep.data, (r) => fmtDay(r.day), (r) => r.total_tokens, 'Total tokens per day'));
      parts.push(table(usageColumns(keyColumn(g)), rep.data, { id: 'usage-table', empty: 'No requests in this range.' }));
      if (rep.groups > rep.data.length) parts.push(h('p', { class: 'muted' }, `Showing ${fmtInt(rep.data.length)} of ${fmtInt(rep.groups)} groups.`));
    }
    report.replaceChildren(...parts);
    top.replaceChildren(
      h(
        'section',
        { 'aria-labelledby': 'h-spenders' },
        h('h2', { id: 'h-spenders' }, 'Top spenders'),
        table(
          [keyColumn('user'), { label: 'Cost', value: (r) => fmtUsd(r.cost_usd), num: true }, { label: 'Tokens', value: (r) => fmtInt(r.total_tokens), num: true }],
          spenders.data,
          { id: 'top-spenders', empty: 'No requests in this range.' },
        ),
      ),
      h(
        'section',
        { 'aria-labelledby': 'h-models' },
        h('h2', { id: 'h-models' }, 'Top models'),
        table(
          [keyColumn('model'), { label: 'Tokens', value: (r) => fmtInt(r.total_tokens), num: true }, { label: 'Cost', value: (r) => fmtUsd(r.cost_usd), num: true }],
          models.data,
          { id: 'top-models', empty: 'No requests in this range.' },
        ),
      ),
    );
  }

  csv.addEventListener('click', () => {
    if (!from.reportValidity() || !to.reportValidity()) return;
    busy(csv, async () => {
      const size = await download('/admin/api/ledger.csv', { from: from.value, to: to.value }, `ledger-${from.value}-to-${to.value}.csv`);
      flash('ok', `Ledger CSV downloaded (${fmtInt(size)} bytes).`);
    });
  });

  view.append(
    h('h1', {}, 'Usage'),
    h(
      'form',
      {
        class: 'inline-form',
        'aria-label': 'Usage report',
        onsubmit: (ev) => {
          ev.preventDefault();
          busy(run, load, (e) => report.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, describeError(e))));
        },
      },
      field('From (UTC day, included)', from),
      field('To (UTC day, excluded)', to),
      field('Group by', group),
      h('div', { class: 'actions' }, run, csv),
    ),
    report,
    top,
  );
  await load();
  return null;
}
