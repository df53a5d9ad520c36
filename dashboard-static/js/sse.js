// sse.js: an incremental Server-Sent Events parser (the WHATWG event-stream rules) and a
// reader of a fetch() response body; EventSource cannot send Authorization, fetch can.
// Pure: no DOM, so tests/node/dashboard_sse.mjs runs it under Node.

/* Feed text in any chunking; feed() returns the events completed by that chunk as
 * {type, data, id}. Comments (": keep-alive") are counted in `comments`. */
export class SseParser {
  constructor() {
    this.buf = '';
    this.started = false;
    this.pendingCR = false; // the last chunk ended with "\r": a leading "\n" belongs to it
    this.type = '';
    this.data = [];
    this.lastId = '';
    this.comments = 0;
  }

  feed(chunk) {
    const out = [];
    if (chunk === '') return out;
    let text = chunk;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (text[0] === '\n') text = text.slice(1);
    }
    if (!this.started) {
      this.buf += text;
      if (this.buf === '') return out;
      this.started = true;
      if (this.buf[0] === '\ufeff') this.buf = this.buf.slice(1);
    } else {
      this.buf += text;
    }
    const re = /\r\n|\r|\n/g;
    let start = 0;
    let m;
    while ((m = re.exec(this.buf)) !== null) {
      if (m[0] === '\r' && m.index === this.buf.length - 1) this.pendingCR = true;
      this.line(this.buf.slice(start, m.index), out);
      start = m.index + m[0].length;
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  line(line, out) {
    if (line === '') {
      if (this.data.length) {
        out.push({ type: this.type || 'message', data: this.data.join('\n'), id: this.lastId });
      }
      this.type = '';
      this.data = [];
      return;
    }
    if (line[0] === ':') {
      this.comments++;
      return;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (name === 'data') this.data.push(value);
    else if (name === 'event') this.type = value;
    else if (name === 'id' && !value.includes('\0')) this.lastId = value;
  }
}

/* Reads an event-stream response body to its end, calling onEvent({type, data, id}) for each
 * event and onChunk() for every piece received (keep-alives included). Resolves when the
 * stream ends; rejects when reading fails (an abort included). */
export async function readEventStream(body, onEvent, onChunk) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (onChunk) onChunk();
      for (const ev of parser.feed(decoder.decode(value, { stream: true }))) onEvent(ev);
    }
    for (const ev of parser.feed(decoder.decode())) onEvent(ev);
  } finally {
    reader.releaseLock();
  }
}
