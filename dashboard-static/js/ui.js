// ui.js: DOM building, number and time formatting, the confirmation dialog, the flash messages
// and the small shared widgets (quota bar, state badge, tables, bar chart) of the dashboard.
// Nothing here writes a style attribute: the page runs under a strict Content-Security-Policy.

const SVG_NS = 'http://www.w3.org/2000/svg';

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el && el.namespaceURI !== SVG_NS) el.value = v;
    else if (k === 'checked' || k === 'selected') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function addChildren(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/* h('a', {href: '#/users', class: 'x', onclick: fn}, 'text', child...): an HTML element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  addChildren(el, children); // first, so that a <select>'s value finds its option
  setAttrs(el, attrs);
  return el;
}

/* s('rect', {...}): an SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  addChildren(el, children);
  setAttrs(el, attrs);
  return el;
}

/* ---- formatting ------------------------------------------------------------------------- */

const intFormat = new Intl.NumberFormat();
const decimalSep =
  new Intl.NumberFormat().formatToParts(1.5).find((p) => p.type === 'decimal')?.value ?? '.';

/* 1234567 → "1,234,567" in the browser's locale; null → "—". */
export function fmtInt(n) {
  return n === null || n === undefined ? '—' : intFormat.format(n);
}

/* A token limit: -1 is unlimited. */
export function fmtLimit(n) {
  if (n === null || n === undefined) return '—';
  return n < 0 ? 'unlimited' : fmtInt(n);
}

/* An exact decimal string ("0.00718750", PostgreSQL numeric) as money, without going through
 * binary floating point: grouped integer part, trailing zeros dropped down to two decimals. */
export function fmtUsd(v) {
  if (v === null || v === undefined || v === '') return '—';
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(v));
  if (!m) return String(v);
  let frac = (m[3] || '').replace(/0+$/, '');
  while (frac.length < 2) frac += '0';
  return `${m[1]}$${intFormat.format(BigInt(m[2]))}${decimalSep}${frac}`;
}

/* An RFC 3339 time in the browser's locale and time zone. */
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/* A UTC day ("2025-11-03") as a locale date. */
export function fmtDay(day) {
  const d = new Date(`${day}T00:00:00Z`);
  return Number.isNaN(d.getTime()) ? String(day) : d.toLocaleDateString(undefined, { timeZone: 'UTC' });
}

export function timeEl(iso) {
  return iso ? h('time', { datetime: iso }, fmtTime(iso)) : '—';
}

/* ---- state ------------------------------------------------------------------------------ */

const STATE_LABEL = { ok: 'ok', warning: 'warning', blocked: 'blocked', disabled: 'disabled' };

/* The state an admin sees: disabled wins, an exhausted quota is "blocked". */
export function userState(disabled, quotaState) {
  if (disabled) return 'disabled';
  if (quotaState === 'exhausted') return 'blocked';
  return quotaState === 'warning' ? 'warning' : 'ok';
}

export function stateBadge(state) {
  return h('span', { class: `badge state-${state}` }, STATE_LABEL[state] ?? state);
}

/* A horizontal bar for a quota percentage (SVG: sized by attributes, not styles). */
export function quotaBar(percent, state, limit) {
  const pct = limit < 0 ? 0 : Math.max(0, Math.min(100, Number(percent) || 0));
  const label = limit < 0 ? 'unlimited' : `${intFormat.format(Number(percent) || 0)} %`;
  return h(
    'span',
    { class: 'quota' },
    s(
      'svg',
      { class: 'bar', viewBox: '0 0 100 8', preserveAspectRatio: 'none', 'aria-hidden': 'true' },
      s('rect', { class: 'bar-track', x: 0, y: 0, width: 100, height: 8 }),
      s('rect', { class: `bar-fill state-${state}`, x: 0, y: 0, width: pct, height: 8 }),
    ),
    h('span', { class: 'quota-pct' }, label),
  );
}

/* A bar chart of rows (one bar per row), with a title on every bar; the table next to it
 * carries the same numbers for screen readers. */
export function barChart(rows, labelOf, valueOf, caption) {
  const n = rows.length;
  const max = Math.max(1, ...rows.map(valueOf));
  const w = 600;
  const hgt = 120;
  const slot = n ? w / n : w;
  const bars = rows.map((r, i) => {
    const v = valueOf(r);
    const bh = Math.max(v > 0 ? 1 : 0, Math.round((v / max) * (hgt - 4)));
    return s(
      'rect',
      { class: 'chart-bar', x: i * slot + slot * 0.1, y: hgt - bh, width: slot * 0.8, height: bh },
      s('title', {}, `${labelOf(r)}: ${fmtInt(v)}`),
    );
  });
  return h(
    'figure',
    { class: 'chart' },
    s(
      'svg',
      { viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': caption },
      bars,
    ),
    h('figcaption', {}, caption),
  );
}

/* A table: columns [{label, value: row => node|string, num: bool}]. */
export function table(columns, rows, { caption, empty = 'Nothing here yet.', id } = {}) {
  if (!rows.length) return h('p', { class: 'empty', id }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { id },
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
      h(
        'tbody',
        {},
        rows.map((r) => h('tr', {}, columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.value(r))))),
      ),
    ),
  );
}

/* label + control in one block; returns the <div>. */
// A search box that searches as one types (250 ms after the last key) and on Enter:
// onSearch(q) with the trimmed text. Returns the form and stop() for the page's teardown.
export function searchForm({ id, label, placeholder, value, onSearch }) {
  let timer = null;
  const input = h('input', {
    type: 'search',
    id,
    name: 'q',
    value,
    placeholder,
    autocomplete: 'off',
    oninput: () => {
      clearTimeout(timer);
      timer = setTimeout(() => onSearch(input.value.trim()), 250);
    },
  });
  const form = h(
    'form',
    {
      class: 'toolbar',
      role: 'search',
      onsubmit: (ev) => {
        ev.preventDefault();
        clearTimeout(timer);
        onSearch(input.value.trim());
      },
    },
    h('label', { for: id }, label),
    input,
    h('button', { type: 'submit' }, 'Search'),
  );
  return { form, stop: () => clearTimeout(timer) };
}

export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('small', { id: hintId }, hint) : null);
}

/* ---- flash messages and confirmation ---------------------------------------------------- */

/* Shows a message above the page: kind "ok" or "error". Errors are announced at once. The
 * message goes away on the next page change, or the one after when keep is set (a message
 * shown just before navigating). */
export function flash(kind, text, keep = false) {
  const box = document.getElementById('flash');
  if (keep) box.dataset.keep = '1';
  else delete box.dataset.keep;
  box.replaceChildren(
    h(
      'div',
      { class: `flash-msg flash-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
      h('span', { class: 'flash-text' }, text),
      h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss message', onclick: () => box.replaceChildren() }, '×'),
    ),
  );
}

/* On a page change: removes the message unless it was shown with keep. */
export function clearFlash() {
  const box = document.getElementById('flash');
  if (box.dataset.keep) delete box.dataset.keep;
  else box.replaceChildren();
}

/* Asks for confirmation in the modal <dialog>; resolves true when confirmed. */
export function confirmAction(text, confirmLabel = 'Confirm', danger = false) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  const ok = document.getElementById('confirm-ok');
  ok.textContent = confirmLabel;
  ok.className = danger ? 'danger' : 'primary';
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
    ok.focus();
  });
}

/* Runs an action's promise with its button disabled; API errors become an error flash.
 * Resolves to the action's value, or undefined when it failed. */
export async function busy(button, fn, onError) {
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (e) {
    if (onError) onError(e);
    else flash('error', describeError(e));
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/* "403 Forbidden — Admin credentials required." with the field when the API names one. */
export function describeError(e) {
  if (e && typeof e.status === 'number') {
    const param = e.param ? ` (field: ${e.param})` : '';
    return e.status ? `Error ${e.status}: ${e.message}${param}` : e.message;
  }
  return `Error: ${e && e.message ? e.message : String(e)}`;
}
