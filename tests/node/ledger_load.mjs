// ledger_load.mjs: a steady load of real requests through tollgate for the end-to-end ledger
// tests. For every attempt it writes one JSON line (synchronously, when the attempt ends):
//   {"cid":"<the X-Request-Id it sent>","rid":"<tollgate's X-Request-Id or null>","ok":bool,
//    "http":status,"kind":"chat|chat_stream|responses_stream|embeddings",
//    "p":..,"c":..,"ca":..,"re":..,"t":.. (the usage tollgate passed on; only when ok),
//    "err":"<why it is not ok>"}
// "ok" means a complete answer: status 200, the body read to its end without a transport error,
// the usage object / stream usage chunk / response.completed usage seen (and [DONE] for chat
// streams), and the usage the client was told equal to what the fake was asked to report.
//
// node ledger_load.mjs --url URL --key SERVICE_KEY --out FILE --stop-file FILE [--run R]
//   [--loops 4] [--rate 25 (attempts/s per loop)] [--users u1,u2] [--max-seconds 3600]
//   [--max-attempts N] [--stream-delay-ms 10] [--timeout-ms 30000]
import fs from 'node:fs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
    const k = process.argv[i];
    if (!k.startsWith('--') || i + 1 >= process.argv.length) {
        console.error(`ledger_load: bad argument ${k}`);
        process.exit(2);
    }
    args[k.slice(2)] = process.argv[i + 1];
}
for (const k of ['url', 'key', 'out', 'stop-file']) {
    if (!args[k]) {
        console.error(`ledger_load: --${k} is required`);
        process.exit(2);
    }
}
const url = args.url.replace(/\/$/, '');
const run = args.run ?? 'L';
const loops = Number(args.loops ?? 4);
const rate = Number(args.rate ?? 25);
const users = (args.users ?? 'load-a,load-b').split(',');
const maxSeconds = Number(args['max-seconds'] ?? 3600);
const maxAttempts = Number(args['max-attempts'] ?? Infinity);
const streamDelay = Number(args['stream-delay-ms'] ?? 10);
const timeoutMs = Number(args['timeout-ms'] ?? 30000);
const kinds = (args.kinds ?? 'chat,chat_stream,responses_stream,embeddings').split(',');

const out = fs.openSync(args.out, 'a');
const t0 = Date.now();
let attempts = 0;
let completed = 0;
const failures = {};

function stopRequested() {
    return (
        fs.existsSync(args['stop-file']) ||
        Date.now() - t0 > maxSeconds * 1000 ||
        attempts >= maxAttempts
    );
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The usage the fake is asked to report for attempt n (cached <= prompt, reasoning <= completion).
function wanted(n, kind) {
    const p = 10 + ((n * 37) % 900);
    const c = kind === 'embeddings' ? 0 : 1 + ((n * 13) % 300);
    return { p, c, ca: kind === 'embeddings' ? 0 : Math.floor(p / 4), re: Math.floor(c / 5) };
}

function requestFor(kind, user, w) {
    const headers = {
        authorization: `Bearer ${args.key}`,
        'x-tollgate-user': user,
        'content-type': 'application/json',
        'x-fake-usage': `${w.p},${w.c},${w.ca},${w.re}`,
        'x-fake-chunks': '4',
        'x-fake-delay-ms': String(streamDelay),
    };
    const msgs = [{ role: 'user', content: 'Count to four, please.' }];
    switch (kind) {
        case 'chat':
            return { path: '/v1/chat/completions', headers, body: { model: 'gpt-4o-mini', messages: msgs } };
        case 'chat_stream':
            return {
                path: '/chat/completions',
                headers,
                body: { model: 'gpt-4o-mini', messages: msgs, stream: true, stream_options: { include_usage: true } },
            };
        case 'responses_stream':
            return { path: '/v1/responses', headers, body: { model: 'gpt-4o-mini', input: 'Count to four.', stream: true } };
        case 'embeddings':
            return { path: '/embeddings', headers, body: { model: 'text-embedding-3-small', input: ['alpha', 'beta'] } };
        default:
            throw new Error(`unknown kind ${kind}`);
    }
}

// The usage the client was told, from the whole body; null when it was not told any.
function toldUsage(kind, text) {
    if (kind === 'chat' || kind === 'embeddings') {
        const u = JSON.parse(text).usage;
        if (!u) return null;
        return {
            p: u.prompt_tokens,
            c: u.completion_tokens ?? 0,
            ca: u.prompt_tokens_details?.cached_tokens ?? 0,
            re: u.completion_tokens_details?.reasoning_tokens ?? 0,
            t: u.total_tokens,
        };
    }
    let usage = null;
    let done = false;
    for (const ev of text.split(/\r?\n\r?\n/)) {
        const data = ev
            .split(/\r?\n/)
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).replace(/^ /, ''))
            .join('\n');
        if (data === '') continue;
        if (data === '[DONE]') {
            done = true;
            continue;
        }
        const j = JSON.parse(data);
        if (kind === 'chat_stream' && j.usage) {
            const u = j.usage;
            usage = {
                p: u.prompt_tokens,
                c: u.completion_tokens,
                ca: u.prompt_tokens_details?.cached_tokens ?? 0,
                re: u.completion_tokens_details?.reasoning_tokens ?? 0,
                t: u.total_tokens,
            };
        }
        if (kind === 'responses_stream' && j.type === 'response.completed') {
            const u = j.response.usage;
            usage = {
                p: u.input_tokens,
                c: u.output_tokens,
                ca: u.input_tokens_details?.cached_tokens ?? 0,
                re: u.output_tokens_details?.reasoning_tokens ?? 0,
                t: u.total_tokens,
            };
            done = true;
        }
    }
    return done ? usage : null;
}

async function attempt(loop, seq) {
    const n = loop * 1000003 + seq;
    const kind = kinds[(seq + loop) % kinds.length];
    const user = users[(seq + loop) % users.length];
    const w = wanted(n, kind);
    const cid = `${run}-${loop}-${seq}`;
    const rec = { cid, rid: null, ok: false, http: 0, kind };
    const req = requestFor(kind, user, w);
    req.headers['x-request-id'] = cid;
    try {
        const res = await fetch(url + req.path, {
            method: 'POST',
            headers: req.headers,
            body: JSON.stringify(req.body),
            signal: AbortSignal.timeout(timeoutMs),
        });
        rec.http = res.status;
        rec.rid = res.headers.get('x-request-id');
        const text = await res.text(); // to the end of the body, or a transport error
        if (res.status !== 200) {
            rec.err = `http ${res.status}`;
        } else {
            const u = toldUsage(kind, text);
            if (u === null) {
                rec.err = 'no usage in the answer';
            } else if (u.p !== w.p || u.c !== w.c || u.ca !== w.ca || u.re !== w.re || u.t !== w.p + w.c) {
                rec.err = `told ${JSON.stringify(u)}, asked the fake for ${JSON.stringify(w)}`;
            } else {
                Object.assign(rec, u, { ok: true });
            }
        }
    } catch (e) {
        rec.err = `${e.name}: ${e.message}${e.cause ? ` (${e.cause.code ?? e.cause.message})` : ''}`;
    }
    fs.writeSync(out, JSON.stringify(rec) + '\n');
    return rec;
}

async function loopMain(loop) {
    const interval = 1000 / rate;
    let next = Date.now() + Math.random() * interval;
    for (let seq = 0; !stopRequested(); seq++) {
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait);
        next = Math.max(next + interval, Date.now() - interval);
        attempts++;
        const rec = await attempt(loop, seq);
        if (rec.ok) completed++;
        else failures[rec.err] = (failures[rec.err] ?? 0) + 1;
    }
}

await Promise.all(Array.from({ length: loops }, (_, i) => loopMain(i)));
fs.closeSync(out);
const top = Object.entries(failures)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([k, v]) => `${v}x ${k}`)
    .join('; ');
console.log(`attempts=${attempts} completed=${completed} seconds=${((Date.now() - t0) / 1000).toFixed(1)}${top ? ` failures: ${top}` : ''}`);
