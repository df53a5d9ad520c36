// live.js: the live feed of GET /admin/api/events, read with fetch() (the endpoint takes the
// Authorization header only) and kept while signed in: the last MAX_EVENTS events, newest
// first, reconnecting with back-off; a stream silent for longer than three keep-alive periods
// is treated as dead and reopened.

import { authHeaders } from './api.js';
import { readEventStream } from './sse.js';

const MAX_EVENTS = 200;
const STALL_MS = 45000;

export class LiveFeed extends EventTarget {
  constructor() {
    super();
    this.events = [];
    this.state = 'off'; // off | connecting | open | retrying | refused
    this.detail = '';
    this.ctrl = null;
    this.seq = 0;
  }

  setState(state, detail = '') {
    this.state = state;
    this.detail = detail;
    this.dispatchEvent(new Event('state'));
  }

  start() {
    this.stop();
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    this.run(ctrl).catch(() => {});
  }

  stop() {
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
    if (this.state !== 'off') this.setState('off');
  }

  clear() {
    this.events = [];
    this.dispatchEvent(new Event('cleared'));
  }

  async run(ctrl) {
    let backoffMs = 1000;
    while (!ctrl.signal.aborted) {
      this.setState('connecting');
      let stall = null;
      const kick = () => {
        clearTimeout(stall);
        stall = setTimeout(() => ctrl.abort(), STALL_MS);
      };
      try {
        const res = await fetch('/admin/api/events', {
          headers: { Accept: 'text/event-stream', ...authHeaders() },
          cache: 'no-store',
          signal: ctrl.signal,
        });
        if (res.status === 401 || res.status === 403) {
          this.setState('refused', `the live feed refused the credential (${res.status})`);
          return;
        }
        if (!res.ok || !res.body) throw new Error(`status ${res.status}`);
        this.setState('open');
        backoffMs = 1000;
        kick();
        await readEventStream(res.body, (ev) => this.push(ev), kick);
        this.setState('retrying', 'the stream ended');
      } catch (e) {
        if (ctrl.signal.aborted && this.ctrl !== ctrl) return;
        this.setState('retrying', e.message || String(e));
      } finally {
        clearTimeout(stall);
      }
      if (ctrl.signal.aborted) {
        if (this.ctrl !== ctrl) return;
        // the stall watchdog aborted this stream: reopen with a fresh controller
        ctrl = new AbortController();
        this.ctrl = ctrl;
      }
      await new Promise((r) => setTimeout(r, backoffMs));
      backoffMs = Math.min(backoffMs * 2, 15000);
    }
  }

  push(ev) {
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      data = { raw: ev.data };
    }
    const item = { seq: ++this.seq, type: ev.type, data, received: new Date() };
    this.events.unshift(item);
    if (this.events.length > MAX_EVENTS) this.events.length = MAX_EVENTS;
    this.dispatchEvent(new CustomEvent('event', { detail: item }));
  }
}
