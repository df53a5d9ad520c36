// identity_jwks_server.mjs: a JWKS endpoint for the identity tests (issue 4).
//
//   node identity_jwks_server.mjs PORT_FILE BODY_FILE LOG_FILE [PORT]
//
// Listens on 127.0.0.1:PORT (0 = any free port, written to PORT_FILE once listening). Every
// request is answered with the current content of BODY_FILE (read at each request, so a test
// rotates keys or serves garbage by rewriting it) with status 200, or with the status written
// in BODY_FILE.status when that file exists. Each request appends "<epoch ms> <path>" to
// LOG_FILE, so a test can count the fetches.
import fs from "node:fs";
import http from "node:http";

const [portFile, bodyFile, logFile, port] = process.argv.slice(2);

const server = http.createServer((req, res) => {
  fs.appendFileSync(logFile, `${Date.now()} ${req.url}\n`);
  let status = 200;
  try {
    status = Number(fs.readFileSync(`${bodyFile}.status`, "utf8").trim()) || 200;
  } catch {
    /* no status file: 200 */
  }
  let body = "";
  try {
    body = fs.readFileSync(bodyFile);
  } catch {
    status = 404;
  }
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": body.length });
  res.end(body);
});
server.listen(Number(port || 0), "127.0.0.1", () => {
  const tmp = `${portFile}.tmp`;
  fs.writeFileSync(tmp, String(server.address().port));
  fs.renameSync(tmp, portFile);
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
