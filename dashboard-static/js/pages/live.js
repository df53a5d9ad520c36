// pages/live.js: the live feed (finished requests, quota crossings, admin changes) as it
// arrives; the stream itself runs in live.js for as long as an admin is signed in.

import { fmtInt, h, timeEl } from '../ui.js';

const STATE_TEXT = {
  off: 'Not connected.',
  connecting: 'Connecting…',
  open: 'Connected: new events appear at the top.',
  retrying: 'Disconnected; reconnecting…',
  refused: 'The live feed refused the credential.',
};

function describe(item) {
  const d = item.data;
  switch (item.type) {
    case 'request':
      return {
        who: d.user_id ?? '—',
        what: `${d.route} ${d.model ?? ''}`.trim(),
        result: `${d.http_status} ${d.status}`,
        tokens: fmtInt(d.total_tokens),
        ms: `${fmtInt(d.latency_ms)} ms`,
        at: d.finished_at,
      };
    case 'quota.warning':
    case 'quota.exhausted':
      return {
        who: d.subject === 'team' ? `team ${d.team_id}` : d.user_id,
        what: `${item.type} (${d.period})`,
        result: `${fmtInt(d.used_tokens)} of ${fmtInt(d.limit_tokens)}`,
        tokens: fmtInt(d.used_tokens),
        ms: '',
        at: d.at,
      };
    case 'admin':
      return { who: d.actor, what: `${d.action} ${d.target ?? ''}`.trim(), result: 'audited', tokens: '', ms: '', at: d.at };
    default:
      return { who: '', what: item.type, result: '', tokens: '', ms: '', at: null };
  }
}

function row(item) {
  const x = describe(item);
  return h(
    'tr',
    { 'data-type': item.type, 'data-request': item.data.request_id || null },
    h('td', {}, x.at ? timeEl(x.at) : item.received.toLocaleString()),
    h('td', {}, h('span', { class: `badge ev-${item.type.replace('.', '-')}` }, item.type)),
    h('td', {}, x.who),
    h('td', {}, x.what),
    h('td', {}, x.result),
    h('td', { class: 'num' }, x.tokens),
    h('td', { class: 'num' }, x.ms),
  );
}

export async function render(view, ctx) {
  const live = ctx.app.live;
  const status = h('p', { id: 'live-status', role: 'status' });
  const body = h('tbody', { id: 'live-body' });
  const count = h('span', { id: 'live-count' });
  const empty = h('p', { class: 'empty', id: 'live-empty' }, 'No events yet: they appear here as requests finish and admins make changes.');
  const clear = h('button', { type: 'button', class: 'ghost', id: 'live-clear' }, 'Clear');

  const showState = () => {
    status.textContent = `${STATE_TEXT[live.state] ?? live.state}${live.detail ? ` (${live.detail})` : ''}`;
  };
  const refresh = () => {
    body.replaceChildren(...live.events.map(row));
    empty.hidden = live.events.length > 0;
    count.textContent = `${fmtInt(live.events.length)} events (the last 200 are kept)`;
  };
  const onEvent = (ev) => {
    body.prepend(row(ev.detail));
    while (body.rows.length > live.events.length) body.lastElementChild.remove();
    empty.hidden = true;
    count.textContent = `${fmtInt(live.events.length)} events (the last 200 are kept)`;
  };
  clear.addEventListener('click', () => live.clear());
  live.addEventListener('state', showState);
  live.addEventListener('event', onEvent);
  live.addEventListener('cleared', refresh);
  showState();
  refresh();

  view.append(
    h('h1', {}, 'Live'),
    status,
    h('p', { class: 'toolbar' }, count, clear),
    empty,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: 'live-table' },
        h('caption', { class: 'visually-hidden' }, 'Live events, newest first'),
        h('thead', {}, h('tr', {}, ['When', 'Event', 'Who', 'What', 'Result', 'Tokens', 'Latency'].map((l, i) => h('th', { scope: 'col', class: i >= 5 ? 'num' : null }, l)))),
        body,
      ),
    ),
  );
  return () => {
    live.removeEventListener('state', showState);
    live.removeEventListener('event', onEvent);
    live.removeEventListener('cleared', refresh);
  };
}
