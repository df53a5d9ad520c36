// A webhook receiver for the quota tests (issue 5 §5): records every attempt as one JSON line
// {t_ms, attempt, outcome, idempotency_key, content_type, body} and fails the first attempts
// of each event id: attempt 1 answers 500, attempt 2 drops the connection without an answer,
// later attempts (up to --fail N failures in all) answer 503; then 200. Failures close the
// connection.
// usage: node quota_webhook_receiver.mjs PORT_FILE LOG_FILE [--fail N]
import http from "node:http";
import fs from "node:fs";

const [portFile, logFile, ...rest] = process.argv.slice(2);
const failIdx = rest.indexOf("--fail");
const failures = failIdx >= 0 ? Number(rest[failIdx + 1]) : 2;
const attempts = new Map();

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    let id = null;
    try { id = JSON.parse(body).id; } catch { /* recorded as is */ }
    const key = id ?? req.headers["idempotency-key"] ?? "";
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    let outcome = "ok";
    if (attempt <= failures) outcome = attempt === 1 ? "500" : attempt === 2 ? "drop" : "503";
    fs.appendFileSync(logFile, JSON.stringify({
      t_ms: Date.now(), attempt, outcome, method: req.method, path: req.url,
      idempotency_key: req.headers["idempotency-key"] ?? null,
      content_type: req.headers["content-type"] ?? null, body,
    }) + "\n");
    if (outcome === "drop") { req.socket.destroy(); return; }
    const status = outcome === "ok" ? 200 : Number(outcome);
    // a failure closes the connection, so the next attempt is a new one and a dropped
    // connection is an attempt of its own (not the client's silent retry of a stale keep-alive)
    const headers = { "content-type": "application/json" };
    if (outcome !== "ok") headers.connection = "close";
    res.writeHead(status, headers);
    res.end(JSON.stringify({ received: outcome === "ok" }));
  });
});
server.listen(0, "127.0.0.1", () => {
  fs.writeFileSync(portFile + ".tmp", String(server.address().port));
  fs.renameSync(portFile + ".tmp", portFile);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
