// identity_hammer.mjs: keeps requests going against one or more tollgate instances and records
// when each one started and what it got, for the revocation tests (issue 4 §3, §5).
//
//   node identity_hammer.mjs OUT_FILE DURATION_MS CONNS_PER_TARGET TARGET...
//
// TARGET is URL|AUTH[|X-Tollgate-User] (AUTH is the bearer credential). Each target gets
// CONNS_PER_TARGET loops sending chat completions back to back, each request on a new
// connection, so that (SO_REUSEPORT spreading connections) every worker of every instance keeps
// getting requests. Every finished request appends one line to OUT_FILE:
//   <start epoch ms> <end epoch ms> <status> <target index>
// (status 0 = transport error). Exits 0 when done.
import fs from "node:fs";
import http from "node:http";

const [out, durationMs, conns, ...targets] = process.argv.slice(2);
const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }] });
const until = Date.now() + Number(durationMs);
const lines = [];

function one(agent, url, auth, user) {
  return new Promise((resolve) => {
    const start = Date.now();
    const headers = { "Content-Type": "application/json", "Content-Length": body.length,
      Authorization: `Bearer ${auth}` };
    if (user) headers["X-Tollgate-User"] = user;
    const req = http.request(`${url}/v1/chat/completions`, { method: "POST", agent, headers },
      (res) => {
        res.resume();
        res.on("end", () => resolve([start, Date.now(), res.statusCode]));
      });
    req.on("error", () => resolve([start, Date.now(), 0]));
    req.end(body);
  });
}

async function loop(i, agent, url, auth, user) {
  while (Date.now() < until) {
    const [s, e, st] = await one(agent, url, auth, user);
    lines.push(`${s} ${e} ${st} ${i}`);
    if (st === 0) await new Promise((r) => setTimeout(r, 20));
  }
}

const jobs = [];
targets.forEach((t, i) => {
  const [url, auth, user] = t.split("|");
  const agent = new http.Agent({ keepAlive: false });
  for (let c = 0; c < Number(conns); c++) jobs.push(loop(i, agent, url, auth, user));
});
await Promise.all(jobs);
fs.writeFileSync(out, lines.join("\n") + "\n");
