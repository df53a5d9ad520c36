// pages/me.js: what a user (own key or JWT, not an admin) sees: their quota figures
// (GET /v1/quota) and their statement for the current period (GET /v1/quota/statement).

import { api } from '../api.js';
import { fmtInt, fmtUsd, h, quotaBar, stateBadge, table, timeEl, userState } from '../ui.js';

function figures(title, q) {
  const state = userState(false, q.state);
  return h(
    'section',
    { class: 'card' },
    h('h2', {}, title, ' ', stateBadge(state)),
    quotaBar(q.percent, state, q.limit_tokens),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Used'),
      h('dd', { 'data-fig': 'used' }, `${fmtInt(q.used_tokens)} tokens`),
      h('dt', {}, 'Limit'),
      h('dd', {}, q.limit_tokens < 0 ? 'unlimited' : `${fmtInt(q.limit_tokens)} tokens per ${q.period}`),
      h('dt', {}, 'Remaining'),
      h('dd', {}, q.remaining_tokens < 0 ? 'unlimited' : `${fmtInt(q.remaining_tokens)} tokens`),
      h('dt', {}, 'Resets'),
      h('dd', {}, q.reset ? timeEl(q.reset) : 'never'),
    ),
  );
}

export async function render(view) {
  const [q, st] = await Promise.all([api('GET', '/v1/quota'), api('GET', '/v1/quota/statement')]);
  view.append(
    h('h1', {}, `My usage: ${q.user_id}`),
    h('div', { class: 'two-col' }, figures('My quota', q), q.team ? figures(`Team ${q.team.team_id}`, q.team) : null),
    h('h2', {}, 'Statement (this period, newest first)'),
    table(
      [
        { label: 'When', value: (r) => timeEl(r.started_at_text || r.started_at) },
        { label: 'Model', value: (r) => r.model },
        { label: 'Status', value: (r) => r.status },
        { label: 'Prompt', value: (r) => fmtInt(r.prompt_tokens), num: true },
        { label: 'Completion', value: (r) => fmtInt(r.completion_tokens), num: true },
        { label: 'Total tokens', value: (r) => fmtInt(r.total_tokens), num: true },
        { label: 'Cost', value: (r) => fmtUsd(r.cost_usd), num: true },
      ],
      st.data,
      { id: 'statement-table', empty: 'No requests in this period.' },
    ),
  );
  return null;
}
