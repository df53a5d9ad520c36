// pages/users.js: the users list: search, sortable columns, paging with the total count, and
// each user's usage this period against their limit.

import { api } from '../api.js';
import { describeError, fmtInt, fmtLimit, h, quotaBar, searchForm, stateBadge, timeEl, userState } from '../ui.js';

const PAGE_SIZE = 50;
const COLUMNS = [
  { key: 'id', label: 'User', sort: 'id', first: 'asc' },
  { key: 'name', label: 'Name', sort: 'name', first: 'asc', opt: true },
  { key: 'team', label: 'Team', opt: true },
  { key: 'used', label: 'Used this period', sort: 'used_tokens', first: 'desc', num: true },
  { key: 'limit', label: 'Limit', num: true },
  { key: 'percent', label: 'Usage', sort: 'percent', first: 'desc' },
  { key: 'state', label: 'State' },
  { key: 'last_seen', label: 'Last seen', sort: 'last_seen', first: 'desc', opt: true },
];

export async function render(view, ctx) {
  const st = {
    q: ctx.query.get('q') || '',
    sort: ctx.query.get('sort') || 'id',
    order: ctx.query.get('order') === 'desc' ? 'desc' : 'asc',
    offset: Math.max(0, parseInt(ctx.query.get('offset') || '0', 10) || 0),
  };
  const results = h('div', { id: 'users-results' });
  const summary = h('p', { id: 'users-summary', class: 'muted', role: 'status', 'aria-live': 'polite' });
  let seq = 0;

  async function load() {
    const mine = ++seq;
    ctx.app.replaceQuery('/users', { q: st.q, sort: st.sort, order: st.order, offset: st.offset || '' });
    let page;
    try {
      page = await api('GET', '/admin/api/users', {
        query: { q: st.q, sort: st.sort, order: st.order, limit: PAGE_SIZE, offset: st.offset },
      });
    } catch (e) {
      if (mine !== seq) return;
      results.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, describeError(e)));
      return;
    }
    if (mine !== seq) return;
    if (page.total > 0 && st.offset >= page.total) {
      st.offset = Math.max(0, Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE);
      load();
      return;
    }
    const first = page.data.length ? st.offset + 1 : 0;
    const last = st.offset + page.data.length;
    summary.textContent = page.total
      ? `Showing ${fmtInt(first)}–${fmtInt(last)} of ${fmtInt(page.total)} user${page.total === 1 ? '' : 's'}`
      : st.q
        ? `No user matches “${st.q}”.`
        : 'No users yet: tollgate lists a user after their first request or an admin change.';
    results.replaceChildren(usersTable(page.data), pager(page.total));
  }

  function sortHeader(col) {
    const cls = [col.num ? 'num' : '', col.opt ? 'opt' : ''].join(' ').trim() || null;
    if (!col.sort) return h('th', { scope: 'col', class: cls }, col.label);
    const active = st.sort === col.sort;
    const aria = active ? (st.order === 'asc' ? 'ascending' : 'descending') : 'none';
    return h(
      'th',
      { scope: 'col', 'aria-sort': aria, class: cls },
      h(
        'button',
        {
          type: 'button',
          class: 'sort',
          'data-sort': col.sort,
          onclick: () => {
            if (active) st.order = st.order === 'asc' ? 'desc' : 'asc';
            else {
              st.sort = col.sort;
              st.order = col.first;
            }
            st.offset = 0;
            load();
          },
        },
        col.label,
        h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, active ? (st.order === 'asc' ? ' ▲' : ' ▼') : ''),
      ),
    );
  }

  function usersTable(users) {
    if (!users.length) return h('p', { class: 'empty' }, '');
    return h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: 'users-table' },
        h('caption', { class: 'visually-hidden' }, 'Users with this period’s usage; column buttons sort.'),
        h('thead', {}, h('tr', {}, COLUMNS.map(sortHeader))),
        h(
          'tbody',
          {},
          users.map((u) => {
            const state = userState(u.disabled, u.state);
            return h(
              'tr',
              { 'data-user': u.id },
              h('td', {}, h('a', { href: `#/users/${encodeURIComponent(u.id)}` }, u.id)),
              h('td', { class: 'opt' }, u.name || u.email || '—', u.name && u.email ? h('small', { class: 'muted block' }, u.email) : null),
              h('td', { class: 'opt' }, u.team_id || '—'),
              h('td', { class: 'num', 'data-col': 'used' }, fmtInt(u.used_tokens)),
              h('td', { class: 'num', 'data-col': 'limit' }, fmtLimit(u.limit_tokens), u.quota_source === 'default' ? h('small', { class: 'muted block' }, 'default') : null),
              h('td', { 'data-col': 'percent' }, quotaBar(u.percent, userState(false, u.state), u.limit_tokens)),
              h('td', { 'data-col': 'state' }, stateBadge(state)),
              h('td', { class: 'opt' }, timeEl(u.last_seen)),
            );
          }),
        ),
      ),
    );
  }

  function pager(total) {
    const prev = h('button', { type: 'button', id: 'users-prev', disabled: st.offset === 0 }, '← Previous');
    const next = h('button', { type: 'button', id: 'users-next', disabled: st.offset + PAGE_SIZE >= total }, 'Next →');
    prev.addEventListener('click', () => {
      st.offset = Math.max(0, st.offset - PAGE_SIZE);
      load();
    });
    next.addEventListener('click', () => {
      st.offset += PAGE_SIZE;
      load();
    });
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const current = Math.floor(st.offset / PAGE_SIZE) + 1;
    return h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, h('span', {}, `Page ${fmtInt(current)} of ${fmtInt(pages)}`), next);
  }

  const search = searchForm({
    id: 'users-q',
    label: 'Search users',
    placeholder: 'id, e-mail or name',
    value: st.q,
    onSearch: (q) => {
      st.q = q;
      st.offset = 0;
      load();
    },
  });
  view.append(
    h('h1', {}, 'Users'),
    search.form,
    summary,
    results,
  );
  await load();
  return search.stop;
}
