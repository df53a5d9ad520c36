// gen_ranks.mjs: regenerates (or with --check verifies) the committed BPE rank files
// proxy/src/meter/tokenizer/data/<enc>.tgbpe from the pinned tiktoken npm package.
//
// Format (all integers little-endian):
//   "TGBPE\x01\0\0" | u32 count | u32 total_bytes | u8 length[count] | bytes[total_bytes]
// Token of rank r is the r-th byte string; ranks are dense 0..count-1 (checked here).
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, "..", "..", "proxy", "src", "meter", "tokenizer", "data");
const check = process.argv.includes("--check");
const pkg = JSON.parse(readFileSync(join(here, "node_modules", "tiktoken", "package.json"), "utf8"));
const sha256 = (b) => createHash("sha256").update(b).digest("hex");

let failed = false;
for (const name of ["o200k_base", "cl100k_base"]) {
    const srcPath = require.resolve(`tiktoken/encoders/${name}.json`);
    const src = readFileSync(srcPath);
    const json = JSON.parse(src.toString("utf8"));
    const toks = [];
    for (const line of json.bpe_ranks.split("\n").filter(Boolean)) {
        const [, offStr, ...b64] = line.split(" ");
        const off = Number.parseInt(offStr, 10);
        b64.forEach((t, i) => {
            const rank = off + i;
            if (toks[rank] !== undefined) throw new Error(`${name}: duplicate rank ${rank}`);
            toks[rank] = Buffer.from(t, "base64");
        });
    }
    for (let r = 0; r < toks.length; r++) {
        if (toks[r] === undefined) throw new Error(`${name}: rank ${r} missing (ranks not dense)`);
        if (toks[r].length < 1 || toks[r].length > 255) throw new Error(`${name}: bad length at ${r}`);
    }
    const seen = new Set(toks.map((t) => t.toString("latin1")));
    if (seen.size !== toks.length) throw new Error(`${name}: two ranks share the same bytes`);
    const total = toks.reduce((a, t) => a + t.length, 0);
    const head = Buffer.alloc(16);
    Buffer.from("TGBPE\x01\0\0", "latin1").copy(head, 0);
    head.writeUInt32LE(toks.length, 8);
    head.writeUInt32LE(total, 12);
    const out = Buffer.concat([head, Buffer.from(toks.map((t) => t.length)), ...toks]);
    const outPath = join(outDir, `${name}.tgbpe`);
    const line = `${name}: tiktoken@${pkg.version} encoders/${name}.json sha256=${sha256(src)} ` +
        `-> ${name}.tgbpe tokens=${toks.length} bytes=${out.length} sha256=${sha256(out)}`;
    if (check) {
        let cur = null;
        try {
            cur = readFileSync(outPath);
        } catch {
            cur = null;
        }
        const ok = cur !== null && Buffer.compare(cur, out) === 0;
        console.log(`${ok ? "OK  " : "DIFF"} ${line}`);
        failed ||= !ok;
    } else {
        writeFileSync(outPath, out);
        console.log(`wrote ${line}`);
    }
}
process.exit(failed ? 1 : 0);
