// End-to-end with the official openai SDK (issue 3 §7): the same calls through tollgate and
// straight to the fake upstream must give the same results (ids and times aside).
// usage: node sdk_e2e.mjs TOLLGATE_URL FAKE_URL SERVICE_KEY
import OpenAI from "openai";
import assert from "node:assert/strict";

const [tgUrl, fakeUrl, key] = process.argv.slice(2);
const viaTg = new OpenAI({ baseURL: `${tgUrl}/v1`, apiKey: key,
  defaultHeaders: { "X-Tollgate-User": "sdk-user" } });
const direct = new OpenAI({ baseURL: `${fakeUrl}/v1`, apiKey: "unused" });

const strip = (o) => JSON.parse(JSON.stringify(o, (k, v) =>
  ["id", "created", "created_at", "system_fingerprint", "_request_id", "item_id",
   "response_id"].includes(k) ? undefined : v));

async function both(name, fn) {
  const a = strip(await fn(viaTg));
  const b = strip(await fn(direct));
  assert.deepEqual(a, b, `${name}: tollgate and direct differ`);
  console.log(`ok: ${name}`);
  return a;
}

const messages = [{ role: "system", content: "You are terse." },
                  { role: "user", content: "Say something nice about Lisbon." }];

// chat, non-streamed
const chat = await both("chat", (c) => c.chat.completions.create({ model: "gpt-4o-mini", messages }));
assert.ok(chat.choices[0].message.content.length > 0);
assert.ok(chat.usage.total_tokens > 0);

// chat, streamed without usage: the client sees no usage chunk
await both("chat stream", async (c) => {
  const s = await c.chat.completions.create({ model: "gpt-4o-mini", messages, stream: true });
  let text = "", finish = null, usageChunks = 0, chunks = 0;
  for await (const ch of s) {
    chunks++;
    if (ch.usage) usageChunks++;
    for (const choice of ch.choices) {
      text += choice.delta?.content ?? "";
      finish = choice.finish_reason ?? finish;
    }
  }
  assert.equal(usageChunks, 0, "a usage chunk the client did not ask for");
  return { text, finish, chunks };
});

// chat, streamed with usage asked for: the usage chunk arrives
await both("chat stream with usage", async (c) => {
  const s = await c.chat.completions.create({ model: "gpt-4o-mini", messages, stream: true,
    stream_options: { include_usage: true } });
  let text = "", usage = null;
  for await (const ch of s) {
    if (ch.usage) usage = ch.usage;
    for (const choice of ch.choices) text += choice.delta?.content ?? "";
  }
  assert.ok(usage && usage.total_tokens > 0, "usage chunk missing");
  return { text, usage };
});

// the Responses API, plain and streamed
await both("responses", (c) => c.responses.create({ model: "gpt-4o-mini", input: "Hello" }));
await both("responses stream", async (c) => {
  const s = await c.responses.create({ model: "gpt-4o-mini", input: "Hello", stream: true });
  const types = [];
  let text = "", usage = null;
  for await (const ev of s) {
    types.push(ev.type);
    if (ev.type === "response.output_text.delta") text += ev.delta;
    if (ev.type === "response.completed") usage = ev.response.usage;
  }
  assert.ok(usage && usage.total_tokens > 0);
  return { types, text, usage };
});

// embeddings
const emb = await both("embeddings", (c) => c.embeddings.create({ model: "text-embedding-3-small",
  input: ["first text", "second text"] }));
assert.equal(emb.data.length, 2);

// the model list
await both("models", async (c) => { const l = []; for await (const m of c.models.list()) l.push(m.id); return l; });
console.log("sdk e2e ok");
