// pages/prices.js: model prices (every effective-dated row, the current one marked) and the
// form that adds a price from a given time.

import { api, pricePath } from '../api.js';
import { busy, confirmAction, field, flash, fmtUsd, h, table, timeEl } from '../ui.js';

const PRICE_HINT = 'USD per million tokens, e.g. 2.50';

export async function render(view, ctx) {
  const list = h('div', { id: 'prices-list' });
  const models = h('datalist', { id: 'models-known' });
  const filter = h('input', { type: 'search', id: 'prices-model', name: 'model', value: ctx.query.get('model') || '', autocomplete: 'off', list: 'models-known' });

  async function load() {
    ctx.app.replaceQuery('/prices', { model: filter.value.trim() });
    const r = await api('GET', '/admin/api/prices', { query: { model: filter.value.trim() } });
    if (!filter.value.trim()) {
      models.replaceChildren(...[...new Set(r.data.map((p) => p.model))].map((m) => h('option', { value: m })));
    }
    list.replaceChildren(
      table(
        [
          { label: 'Model', value: (p) => p.model },
          { label: 'Input', value: (p) => fmtUsd(p.input_usd_per_mtok), num: true },
          { label: 'Cached input', value: (p) => fmtUsd(p.cached_input_usd_per_mtok), num: true },
          { label: 'Output', value: (p) => fmtUsd(p.output_usd_per_mtok), num: true },
          { label: 'Effective from', value: (p) => timeEl(p.effective_from) },
          { label: '', value: (p) => (p.current ? h('span', { class: 'badge state-ok' }, 'current') : p.effective_from > new Date().toISOString() ? h('span', { class: 'badge' }, 'future') : '') },
        ],
        r.data,
        { id: 'prices-table', caption: 'Prices in USD per million tokens, newest first per model', empty: 'No prices: requests are recorded without a cost.' },
      ),
    );
  }

  const model = h('input', { type: 'text', id: 'price-model', name: 'model', required: true, autocomplete: 'off', list: 'models-known' });
  const input = h('input', { type: 'text', id: 'price-input', name: 'input_usd_per_mtok', required: true, inputmode: 'decimal', pattern: '[0-9]+(\\.[0-9]+)?' });
  const cached = h('input', { type: 'text', id: 'price-cached', name: 'cached_input_usd_per_mtok', inputmode: 'decimal', pattern: '[0-9]+(\\.[0-9]+)?' });
  const output = h('input', { type: 'text', id: 'price-output', name: 'output_usd_per_mtok', required: true, inputmode: 'decimal', pattern: '[0-9]+(\\.[0-9]+)?' });
  const from = h('input', { type: 'datetime-local', id: 'price-from', name: 'effective_from', step: 1 });
  const save = h('button', { type: 'submit', class: 'primary', id: 'price-save' }, 'Add price');

  const form = h(
    'form',
    {
      class: 'card inline-form',
      'aria-labelledby': 'h-add-price',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const m = model.value.trim();
        const body = { input_usd_per_mtok: input.value.trim(), output_usd_per_mtok: output.value.trim() };
        if (cached.value.trim()) body.cached_input_usd_per_mtok = cached.value.trim();
        let when = 'now';
        if (from.value) {
          const d = new Date(from.value); // datetime-local: the browser's time zone
          body.effective_from = d.toISOString();
          when = d.toLocaleString();
        }
        const q = `Price ${m} from ${when}: input ${fmtUsd(body.input_usd_per_mtok)}, output ${fmtUsd(body.output_usd_per_mtok)} per million tokens?`;
        if (!(await confirmAction(q, 'Add price'))) return;
        const res = await busy(save, () => api('PUT', pricePath(m), { body }));
        if (!res) return;
        flash('ok', `Price of ${res.model} from ${new Date(res.effective_from).toLocaleString()} saved.`);
        input.value = '';
        cached.value = '';
        output.value = '';
        from.value = '';
        await busy(null, load);
      },
    },
    h('h2', { id: 'h-add-price' }, 'Add a price'),
    h('p', { class: 'muted' }, 'A new row from its effective time; rows already in the ledger keep the price they were written with.'),
    field('Model', model),
    field('Input', input, PRICE_HINT),
    field('Cached input (optional)', cached, PRICE_HINT),
    field('Output', output, PRICE_HINT),
    field('Effective from (your local time)', from, 'empty = now'),
    h('div', { class: 'actions' }, save),
  );

  let timer = null;
  filter.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => busy(null, load), 250);
  });

  await load();
  view.append(
    h('h1', {}, 'Prices'),
    h('div', { class: 'toolbar', role: 'search' }, h('label', { for: 'prices-model' }, 'Model'), filter),
    models,
    list,
    form,
  );
  return () => clearTimeout(timer);
}
