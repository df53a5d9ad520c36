// Fires N concurrent streamed chat requests for one user at several tollgate instances (round
// robin), reads every stream to its end, and prints one JSON line per request:
// {i, url, status, request_id, used, state, code, done, text_len}. For issue 5 §7.
// usage: node quota_flood.mjs URLS(comma-separated) SERVICE_KEY USER N MAX_TOKENS [HEADER:VALUE...]
const [urls, key, user, n, maxTokens, ...extra] = process.argv.slice(2);
const targets = urls.split(",");
const headers = {
  authorization: `Bearer ${key}`,
  "x-tollgate-user": user,
  "content-type": "application/json",
};
for (const h of extra) {
  const i = h.indexOf(":");
  headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
}
const body = JSON.stringify({
  model: "gpt-4o-mini", stream: true, max_tokens: Number(maxTokens),
  messages: [{ role: "user", content: "hi" }],
});

async function one(i) {
  const url = targets[i % targets.length];
  const r = { i, url };
  try {
    const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers, body });
    r.status = res.status;
    r.request_id = res.headers.get("x-request-id");
    r.used = res.headers.get("x-quota-used-tokens");
    r.state = res.headers.get("x-quota-state");
    r.should_retry = res.headers.get("x-should-retry");
    r.retry_after = res.headers.get("retry-after");
    const text = await res.text();
    r.text_len = text.length;
    if (res.status === 200) r.done = text.includes("data: [DONE]");
    else r.code = JSON.parse(text).error?.code ?? null;
  } catch (e) {
    r.error = String(e);
  }
  return r;
}

const results = await Promise.all(Array.from({ length: Number(n) }, (_, i) => one(i)));
for (const r of results) console.log(JSON.stringify(r));
