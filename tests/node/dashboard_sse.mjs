// dashboard_sse.mjs: the dashboard's Server-Sent Events parser (dashboard-static/js/sse.js),
// which reads the admin live feed through fetch(): table-driven, each stream parsed whole, split
// at every point (text and UTF-8 bytes) and in random chunkings; readEventStream on a real
// ReadableStream. Exit 0 when every case passes.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const { SseParser, readEventStream } = await import(path.join(here, '../../dashboard-static/js/sse.js'));

const ev = (type, data, id = '') => ({ type, data, id });

// [line, name, stream, expected events, expected comment count]
const CASES = [
  [new Error().stack, 'one event', 'event: request\ndata: {"a":1}\n\n', [ev('request', '{"a":1}')], 0],
  [new Error().stack, 'default type', 'data: x\n\n', [ev('message', 'x')], 0],
  [new Error().stack, 'keep-alive then event', ': tollgate events\n\n: keep-alive\n\nevent: admin\ndata: {}\n\n', [ev('admin', '{}')], 2],
  [new Error().stack, 'CRLF', 'event: a\r\ndata: 1\r\n\r\nevent: b\r\ndata: 2\r\n\r\n', [ev('a', '1'), ev('b', '2')], 0],
  [new Error().stack, 'bare CR', 'event: a\rdata: 1\r\rdata: 2\r\r', [ev('a', '1'), ev('message', '2')], 0],
  [new Error().stack, 'multi-line data', 'data: a\ndata: b\ndata:\n\n', [ev('message', 'a\nb\n')], 0],
  [new Error().stack, 'no space after colon', 'event:x\ndata:y\n\n', [ev('x', 'y')], 0],
  [new Error().stack, 'two spaces keep one', 'data:  y\n\n', [ev('message', ' y')], 0],
  [new Error().stack, 'field without colon', 'data\n\n', [ev('message', '')], 0],
  [new Error().stack, 'type without data is dropped', 'event: a\n\ndata: z\n\n', [ev('message', 'z')], 0],
  [new Error().stack, 'id is kept', 'id: 7\ndata: a\n\ndata: b\n\n', [ev('message', 'a', '7'), ev('message', 'b', '7')], 0],
  [new Error().stack, 'unknown field ignored', 'retry: 10\nfoo: bar\ndata: q\n\n', [ev('message', 'q')], 0],
  [new Error().stack, 'unfinished event not sent', 'data: a\n\ndata: b\n', [ev('message', 'a')], 0],
  [new Error().stack, 'leading BOM', '\ufeffdata: a\n\n', [ev('message', 'a')], 0],
  [new Error().stack, 'UTF-8 text', 'event: quota.warning\ndata: {"msg":"⚠️ 82 % — ok"}\n\n', [ev('quota.warning', '{"msg":"⚠️ 82 % — ok"}')], 0],
  [new Error().stack, 'empty stream', '', [], 0],
].map(([stack, ...rest]) => [Number(/dashboard_sse\.mjs:(\d+)/.exec(stack)?.[1] ?? 0), ...rest]);

function parseChunks(chunks) {
  const p = new SseParser();
  const out = [];
  for (const c of chunks) out.push(...p.feed(c));
  return { out, comments: p.comments };
}

function check(line, name, how, got, want, comments) {
  assert.deepEqual(got.out, want, `line ${line} ${name} (${how})`);
  assert.equal(got.comments, comments, `line ${line} ${name} (${how}): comments`);
}

// a small deterministic PRNG so that failures repeat
let seed = 12345;
const rand = (n) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};

function randomChunks(str) {
  const chunks = [];
  let i = 0;
  while (i < str.length) {
    const n = 1 + rand(5);
    chunks.push(str.slice(i, i + n));
    i += n;
  }
  return chunks;
}

async function viaStream(bytes, cuts) {
  let i = 0;
  const body = new ReadableStream({
    pull(ctrl) {
      if (i >= cuts.length - 1) return ctrl.close();
      ctrl.enqueue(bytes.subarray(cuts[i], cuts[i + 1]));
      i++;
    },
  });
  const out = [];
  let chunks = 0;
  await readEventStream(body, (e) => out.push(e), () => chunks++);
  return { out, chunks };
}

let checks = 0;
for (const [line, name, stream, want, comments] of CASES) {
  check(line, name, 'whole', parseChunks([stream]), want, comments);
  checks++;
  for (let k = 0; k <= stream.length; k++) {
    check(line, name, `split at ${k}`, parseChunks([stream.slice(0, k), stream.slice(k)]), want, comments);
    checks++;
  }
  for (let r = 0; r < 50; r++) {
    const chunks = randomChunks(stream);
    check(line, name, `random ${JSON.stringify(chunks)}`, parseChunks(chunks), want, comments);
    checks++;
  }
  // every byte split of the UTF-8 encoding through readEventStream (TextDecoder in stream mode)
  const bytes = new TextEncoder().encode(stream);
  for (let k = 0; k <= bytes.length; k++) {
    const got = await viaStream(bytes, [0, k, bytes.length]);
    assert.deepEqual(got.out, want, `line ${line} ${name}: byte split at ${k}`);
    checks++;
  }
  const oneByte = Array.from({ length: bytes.length + 1 }, (_, k) => k);
  const got = await viaStream(bytes, oneByte);
  assert.deepEqual(got.out, want, `line ${line} ${name}: one byte at a time`);
  assert.equal(got.chunks, bytes.length, `line ${line} ${name}: onChunk per chunk`);
  checks++;
}

// a CR at the end of a chunk followed by an LF in the next is one line end, not two
{
  const p = new SseParser();
  const out = [...p.feed('data: a\r'), ...p.feed(''), ...p.feed('\ndata: b\r'), ...p.feed('\n\r\n')];
  assert.deepEqual(out, [ev('message', 'a\nb')], 'CRLF split over chunks and an empty chunk');
  checks++;
}
console.log(`dashboard_sse: ${checks} checks passed`);
