// admin_events_flood.mjs: the live feed under a flood (issue 8 §3), driven by
// tests/integration/test_admin_events.sh.
//
//   DROPPED_BEFORE=N node admin_events_flood.mjs BASE_URL ADMIN_KEY SERVICE_KEY CHANGES
//
// With a stalled subscriber already connected (the test runs it: a socket with a tiny receive
// buffer that never reads), opens a live subscriber (reads everything), floods CHANGES admin
// changes (PUT /admin/api/prices/<long name>, 8 at a time) while probing /healthz and a chat
// completion every 20 ms, then checks that:
//   - a subscriber was dropped (tollgate_events_dropped_total grew);
//   - the live subscriber received every change exactly once;
//   - the probes all succeeded, and the slowest stayed under 2 s (a generous bound on a shared
//     machine: a blocked server would stall them for the whole flood).
// Prints a JSON summary; exits 1 on a failed check.
const [base, adminKey, serviceKey, changesArg] = process.argv.slice(2);
const CHANGES = Number(changesArg || 2000);
const auth = { authorization: `Bearer ${adminKey}` };
const url = new URL(base);
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function droppedTotal() {
  const t = await (await fetch(`${base}/metrics`)).text();
  const m = t.match(/^tollgate_events_dropped_total (\d+)/m);
  return m ? Number(m[1]) : 0;
}

// ---- the live subscriber: counts admin events -----------------------------------------------
async function live() {
  const res = await fetch(`${base}/admin/api/events`, { headers: auth });
  check(res.status === 200, `live subscriber status ${res.status}`);
  check((res.headers.get('content-type') || '').startsWith('text/event-stream'), 'live content type');
  const st = { ids: [], bytes: 0, done: false, res };
  (async () => {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        st.bytes += chunk.length;
        buf += dec.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const type = (ev.match(/^event: (.*)$/m) || [])[1];
          const data = (ev.match(/^data: (.*)$/m) || [])[1];
          if (type === 'admin') st.ids.push(JSON.parse(data).id);
        }
      }
    } catch { /* aborted at the end */ }
    st.done = true;
  })();
  return st;
}

const droppedBefore = Number(process.env.DROPPED_BEFORE || 0);
const fast = await live();
await sleep(200); // both subscribed

// ---- probes ------------------------------------------------------------------------------------
const probes = { n: 0, failed: 0, max_ms: 0, errors: [] };
let flooding = true;
const prober = (async () => {
  while (flooding) {
    for (const req of [
      () => fetch(`${base}/healthz`),
      () => fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${serviceKey}`, 'x-tollgate-user': 'prober', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      }),
    ]) {
      const t0 = performance.now();
      try {
        const r = await req();
        if (r.status !== 200) {
          probes.failed++;
          probes.errors.push(`${r.status} ${(await r.text().catch(() => '')).slice(0, 200)}`);
        } else {
          await r.arrayBuffer();
        }
      } catch (e) { probes.failed++; probes.errors.push(String(e.cause || e)); }
      probes.max_ms = Math.max(probes.max_ms, performance.now() - t0);
      probes.n++;
    }
    await sleep(20);
  }
})();

// ---- the flood ---------------------------------------------------------------------------------
const long = 'x'.repeat(200);
let next = 0, ok = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: 8 }, async () => {
  while (next < CHANGES) {
    const i = next++;
    const r = await fetch(`${base}/admin/api/prices/flood-${long}-${i}`, {
      method: 'PUT', headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ input_usd_per_mtok: '1.25', output_usd_per_mtok: '2.5', effective_from: '2025-01-01T00:00:00Z' }),
    });
    await r.arrayBuffer();
    if (r.status === 201) ok++;
  }
}));
const floodMs = performance.now() - t0;
flooding = false;
await prober;
check(ok === CHANGES, `only ${ok} of ${CHANGES} changes succeeded`);

// ---- checks ------------------------------------------------------------------------------------
let dropped = 0;
for (let i = 0; i < 100 && dropped <= droppedBefore; i++) {
  dropped = await droppedTotal();
  if (dropped <= droppedBefore) await sleep(100);
}
check(dropped > droppedBefore, 'the stalled subscriber was not dropped');
for (let i = 0; i < 100 && fast.ids.length < CHANGES; i++) await sleep(100);
check(fast.ids.length === CHANGES, `the live subscriber got ${fast.ids.length} of ${CHANGES} admin events`);
check(new Set(fast.ids).size === fast.ids.length, 'an admin event arrived twice');
check(probes.failed === 0, `${probes.failed} probes failed: ${probes.errors.slice(0, 3).join('; ')}`);
check(probes.max_ms < 2000, `the slowest probe took ${Math.round(probes.max_ms)} ms`);
check(!fast.done, 'the live subscriber was disconnected');

console.log(JSON.stringify({
  changes: CHANGES, flood_ms: Math.round(floodMs), live_bytes: fast.bytes,
  dropped: dropped - droppedBefore, live_events: fast.ids.length,
  probes: probes.n, probe_max_ms: Math.round(probes.max_ms), failures,
}));
process.exit(failures.length ? 1 : 0);
