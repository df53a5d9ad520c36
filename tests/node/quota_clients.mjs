// Real clients against tollgate's quota signals (issue 5 §3, §4): the official openai SDK with
// its default retries, and @langchain/openai's ChatOpenAI configured the way LibreChat
// configures a custom endpoint (PROTOCOL.md §1.4, §2.2): streaming on, streamUsage off, the
// SDK client's maxRetries 0 (LangChain sets it), LangChain's own AsyncCaller retries left at
// their defaults. Every HTTP attempt is counted through the SDK's fetch hook.
// usage: node quota_clients.mjs MODE TOLLGATE_URL SERVICE_KEY USER
//   MODE: block-openai | block-langchain | notice-openai | notice-langchain | models-openai
// Prints one JSON line: {mode, attempts, elapsed_ms, ok, status?, message?, code?, text?, ids?}
import OpenAI from "openai";
import { ChatOpenAI } from "@langchain/openai";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";

const [mode, url, key, user] = process.argv.slice(2);
let attempts = 0;
const countingFetch = (input, init) => {
  attempts++;
  return fetch(input, init);
};
const headers = { "X-Tollgate-User": user };
const messages = [{ role: "system", content: "You are terse." },
                  { role: "user", content: "Say something nice about Lisbon." }];

function openaiClient() {
  // default maxRetries (2), default timeout: what any SDK user of the proxy gets
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: key, defaultHeaders: headers,
                      fetch: countingFetch });
}

function librechatModel() {
  // as @librechat/agents builds it for a custom endpoint
  return new ChatOpenAI({
    model: "gpt-4o-mini",
    apiKey: key,
    streaming: true,
    streamUsage: false,
    temperature: 0.7,
    modelKwargs: { user },
    configuration: { baseURL: `${url}/v1`, defaultHeaders: headers, fetch: countingFetch },
  });
}
const lcMessages = [new SystemMessage("You are terse."), new HumanMessage("Say something nice about Lisbon.")];

const out = { mode };
const t0 = Date.now();
try {
  switch (mode) {
  case "block-openai":
  case "notice-openai": {
    const s = await openaiClient().chat.completions.create({ model: "gpt-4o-mini", messages,
                                                              stream: true, user });
    let text = "";
    const ids = new Set();
    for await (const ch of s) {
      ids.add(ch.id);
      for (const c of ch.choices) text += c.delta?.content ?? "";
    }
    out.text = text;
    out.ids = [...ids];
    break;
  }
  case "block-langchain":
  case "notice-langchain": {
    let text = "";
    for await (const chunk of await librechatModel().stream(lcMessages)) {
      text += typeof chunk.content === "string" ? chunk.content : "";
    }
    out.text = text;
    break;
  }
  case "models-openai": {
    const ids = [];
    for await (const m of openaiClient().models.list()) ids.push(m.id);
    out.ids = ids;
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
  }
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.name = e?.constructor?.name ?? null;
  out.status = e?.status ?? e?.lc_error_code ?? null;
  out.message = e?.message ?? String(e);
  out.code = e?.code ?? e?.error?.code ?? null;
}
out.attempts = attempts;
out.elapsed_ms = Date.now() - t0;
console.log(JSON.stringify(out));
