// compare.mjs: the reference comparison test. Counts a seeded corpus (corpus.mjs) with the pinned
// tiktoken@1.0.22 for o200k_base and cl100k_base, then checks the C tokenizer on every case:
//   - test_tokenizer_ref (whole-text count, incremental count at random chunkings, chat count),
//   - tg_tokens --messages (the CLI) against the reference chat formula, for every chat case,
//   - tg_tokens --model for a sample of texts (model -> encoding mapping end to end).
// Usage: node compare.mjs REFCHECK_BIN TG_TOKENS_BIN [--seed N] [--stats]
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeCorpus } from "./corpus.mjs";

const require = createRequire(import.meta.url);
const { get_encoding } = require("tiktoken");

const args = process.argv.slice(2);
const [refcheck, tgTokens] = args;
if (!refcheck || !tgTokens) {
    console.error("usage: node compare.mjs REFCHECK_BIN TG_TOKENS_BIN [--seed N] [--stats]");
    process.exit(2);
}
const seedAt = args.indexOf("--seed");
const seed = seedAt >= 0 ? Number(args[seedAt + 1]) : 20240917;
const encs = { o200k_base: get_encoding("o200k_base"), cl100k_base: get_encoding("cl100k_base") };
const count = (enc, s) => encs[enc].encode_ordinary(s).length;

/* The billing formula tg_tokens_count_chat implements (docs/tokenizer.md). */
export function chatCount(enc, body) {
    const b = JSON.parse(body);
    const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
    let n = 3;
    for (const m of b.messages) {
        n += 3;
        if (!isObj(m)) continue;
        for (const [k, v] of Object.entries(m)) {
            if (typeof v === "string") {
                n += count(enc, v) + (k === "name" ? 1 : 0);
            } else if (Array.isArray(v) && k === "content") {
                for (const p of v) if (isObj(p) && typeof p.text === "string") n += count(enc, p.text);
            } else if (Array.isArray(v) && k === "tool_calls") {
                for (const c of v) {
                    if (!isObj(c) || !isObj(c.function)) continue;
                    if (typeof c.function.name === "string") n += count(enc, c.function.name);
                    if (typeof c.function.arguments === "string") n += count(enc, c.function.arguments);
                }
            }
        }
    }
    for (const k of ["tools", "functions"]) {
        if (k in b && b[k] !== null) {
            const raw = JSON.stringify(b[k]);
            if (!body.includes(raw)) throw new Error("chat case with a non-compact tools value");
            n += count(enc, raw);
        }
    }
    return n;
}

const cases = makeCorpus(seed);
const t0 = Date.now();
const chunks = [];
for (const c of cases) {
    const text = Buffer.from(c.text, "utf8");
    const name = Buffer.from(c.name, "utf8");
    const head = Buffer.alloc(9);
    head.writeUInt8(c.kind === "chat" ? 1 : 0, 0);
    head.writeUInt32LE(name.length, 1);
    head.writeUInt32LE(text.length, 5);
    c.o200k = c.kind === "chat" ? chatCount("o200k_base", c.text) : count("o200k_base", c.text);
    c.cl100k = c.kind === "chat" ? chatCount("cl100k_base", c.text) : count("cl100k_base", c.text);
    const tail = Buffer.alloc(16);
    tail.writeBigInt64LE(BigInt(c.o200k), 0);
    tail.writeBigInt64LE(BigInt(c.cl100k), 8);
    chunks.push(head, name, text, tail);
}
const ntext = cases.filter((c) => c.kind === "text").length;
console.log(`corpus seed=${seed}: ${cases.length} cases (${ntext} texts, ${cases.length - ntext} chat ` +
    `bodies), ${chunks.reduce((a, b) => a + b.length, 0)} bytes; reference counted in ${Date.now() - t0} ms`);

const dir = mkdtempSync(join(tmpdir(), "tg-tokref-"));
let passed = 0, failed = 0;
try {
    const file = join(dir, "cases.bin");
    writeFileSync(file, Buffer.concat(chunks));
    const r = spawnSync(refcheck, [file], { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8",
        maxBuffer: 1 << 28 });
    process.stdout.write(r.stdout ?? "");
    const m = /^(\d+) passed, (\d+) failed$/m.exec(r.stdout ?? "");
    if (r.status !== 0 && !m) {
        console.log(`test_tokenizer_ref exited with ${r.status} ${r.signal ?? ""}`);
        failed++;
    }
    if (m) {
        passed += Number(m[1]);
        failed += Number(m[2]);
    }

    const cli = (argv, input) => {
        const p = spawnSync(tgTokens, argv, { input, encoding: "utf8", maxBuffer: 1 << 26 });
        return p.status === 0 ? Number(p.stdout.trim()) : `exit ${p.status}: ${p.stderr.trim()}`;
    };
    const check = (what, got, want, text) => {
        if (got === want) {
            passed++;
            return;
        }
        failed++;
        console.log(`MISMATCH ${what}: C=${got} reference=${want} text=${JSON.stringify(text).slice(0, 2000)}`);
    };
    for (const c of cases.filter((x) => x.kind === "chat")) {
        check("tg_tokens --messages --encoding o200k_base", cli(["--messages", "--encoding", "o200k_base"], c.text), c.o200k, c.text);
        check("tg_tokens --messages --model gpt-4", cli(["--messages", "--model", "gpt-4"], c.text), c.cl100k, c.text);
    }
    const sample = cases.filter((x) => x.kind === "text").filter((_, i) => i % 25 === 0);
    for (const c of sample) {
        check("tg_tokens --model openai/gpt-4o", cli(["--model", "openai/gpt-4o"], c.text), c.o200k, c.text);
        check("tg_tokens --model azure/gpt-35-turbo", cli(["--model", "azure/gpt-35-turbo"], c.text), c.cl100k, c.text);
    }
} finally {
    rmSync(dir, { recursive: true, force: true });
}

if (args.includes("--stats")) {
    /* How far the candidate approximations for unknown tokenizers are from o200k_base. */
    const by = new Map();
    for (const c of cases.filter((x) => x.kind === "text" && x.o200k > 0)) {
        const k = c.name.startsWith("sweep_") ? "sweep" : c.name;
        const e = by.get(k) ?? { n: 0, o: 0, cl: 0, q: 0, bytes: 0, errq: 0, errcl: 0 };
        const q = Math.ceil(Buffer.byteLength(c.text) / 4);
        e.n++; e.o += c.o200k; e.cl += c.cl100k; e.q += q; e.bytes += Buffer.byteLength(c.text);
        e.errq += Math.abs(q - c.o200k) / c.o200k; e.errcl += Math.abs(c.cl100k - c.o200k) / c.o200k;
        by.set(k, e);
    }
    console.log("kind            texts  bytes/o200k-token  sum(bytes/4)/sum(o200k)  mean|bytes/4-o200k|/o200k  sum(cl100k)/sum(o200k)  mean|cl100k-o200k|/o200k");
    const tot = { n: 0, o: 0, cl: 0, q: 0, bytes: 0, errq: 0, errcl: 0 };
    for (const [k, e] of [...by.entries()].sort()) {
        for (const f of Object.keys(tot)) tot[f] += e[f];
        console.log(`${k.padEnd(15)} ${String(e.n).padStart(5)}  ${(e.bytes / e.o).toFixed(2).padStart(17)}  ${(e.q / e.o).toFixed(3).padStart(23)}  ${(100 * e.errq / e.n).toFixed(1).padStart(24)}%  ${(e.cl / e.o).toFixed(3).padStart(22)}  ${(100 * e.errcl / e.n).toFixed(1).padStart(23)}%`);
    }
    const e = tot;
    console.log(`${"all".padEnd(15)} ${String(e.n).padStart(5)}  ${(e.bytes / e.o).toFixed(2).padStart(17)}  ${(e.q / e.o).toFixed(3).padStart(23)}  ${(100 * e.errq / e.n).toFixed(1).padStart(24)}%  ${(e.cl / e.o).toFixed(3).padStart(22)}  ${(100 * e.errcl / e.n).toFixed(1).padStart(23)}%`);
}
console.log(`reference: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
