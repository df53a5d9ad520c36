// ledger_slow_end_upstream.mjs: an upstream for the ledger's "row before the last byte" test.
// POST .../chat/completions answers like LiteLLM, but a stream's HTTP body stays open for
// --hold-ms after its last event (the usage chunk and `data: [DONE]`), as a gateway whose
// terminating chunk arrives in a later TCP segment would. Non-streamed replies carry a
// Content-Length and end at once. Usage: prompt 21, completion 9 (cached 5, reasoning 2).
//   node ledger_slow_end_upstream.mjs --port-file FILE [--hold-ms 3000]
import fs from 'node:fs';
import http from 'node:http';

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
if (!args['port-file']) {
    console.error('ledger_slow_end_upstream: --port-file is required');
    process.exit(2);
}
const holdMs = Number(args['hold-ms'] ?? 3000);
let seq = 0;
const usage = {
    prompt_tokens: 21,
    completion_tokens: 9,
    total_tokens: 30,
    prompt_tokens_details: { cached_tokens: 5 },
    completion_tokens_details: { reasoning_tokens: 2 },
};

const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
        if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
            res.writeHead(404, { 'content-type': 'application/json' });
            res.end('{"error":{"message":"not found","type":"not_found_error","param":null,"code":"404"}}');
            return;
        }
        const n = ++seq;
        const j = JSON.parse(body);
        const callId = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
        const base = { id: `chatcmpl-${n}`, created: Math.floor(Date.now() / 1000), model: j.model };
        if (!j.stream) {
            const out = JSON.stringify({
                ...base,
                object: 'chat.completion',
                choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' }],
                usage,
            });
            res.writeHead(200, {
                'content-type': 'application/json',
                'content-length': Buffer.byteLength(out),
                'x-litellm-call-id': callId,
            });
            res.end(out);
            return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'x-litellm-call-id': callId });
        const chunk = (o) => res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', ...o })}\n\n`);
        chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }], usage: null });
        chunk({ choices: [{ index: 0, delta: { content: 'hello' }, finish_reason: null }], usage: null });
        chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: null });
        chunk({ choices: [], usage });
        res.write('data: [DONE]\n\n');
        setTimeout(() => res.end(), holdMs);
    });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
    fs.writeFileSync(`${args['port-file']}.tmp`, `${server.address().port}\n`);
    fs.renameSync(`${args['port-file']}.tmp`, args['port-file']);
});
process.on('SIGTERM', () => process.exit(0));
