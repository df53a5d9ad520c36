// corpus.mjs: deterministic (seeded) corpus of varied texts and chat request bodies for the
// reference comparison. makeCorpus(seed) returns [{kind: "text"|"chat", name, text}].

export function rng(seed) {
    let s = seed >>> 0;
    const next = () => {
        // mulberry32
        s = (s + 0x6d2b79f5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
    const pick = (arr) => arr[Math.floor(next() * arr.length)];
    return { next, int, pick };
}

const EN = ("the of and to in is you that it he was for on are as with his they I at be this " +
    "have from or one had by word but not what all were we when your can said there use an each " +
    "which she do how their if will up other about out many then them these so some her would make " +
    "like him into time has look two more write go see number no way could people my than first " +
    "water been call who oil its now find long down day did get come made may part tokenizer " +
    "gateway billing quota request stream completion prompt OpenAI GPT JSON HTTP API Tollgate " +
    "don't can't won't it's I'm you're we've they'll she'd He's THEY'RE WE'LL I'D isn't").split(" ");
const PT = ("ação não coração é você informação pão órgão avó Às ÉPOCA também já está são " +
    "português atenção exceção opção questão cão mãe irmã lição órfã útil fácil difícil " +
    "açúcar maçã pêssego três mês inglês café até após através número código função " +
    "Brasil São Paulo João Conceição Ângela Érico Ícaro Óscar Úrsula ônibus àquele " +
    "d'água pra cá lá aí ói né").split(" ");
const CJK = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严龙飞";
const CJK_PUNCT = "，。！？、；：“”‘’（）《》【】…—·";
const EMOJI = ["😀", "😂", "🥲", "👍", "👍🏽", "👨‍👩‍👧‍👦", "👩🏿‍💻", "🏳️‍🌈", "🇧🇷", "🇵🇹", "🇺🇸",
    "1️⃣", "#️⃣", "❤️", "❤️‍🔥", "🧑‍🤝‍🧑", "🫠", "🐈‍⬛", "✨", "🔥", "🚀", "✅", "☕", "⚠️", "🤖",
    "👁️‍🗨️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "👨🏻‍🦰", "🙇‍♀️", "©️", "™", "↩️"];
const SPACES = [" ", " ", " ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2003", "\u0085",
    "\u2028", "\u2029", "\u000b", "\u000c", "\u202f", "\u205f", "\u1680", "\u200b", "\ufeff"];
/* One or more characters of every class the patterns tell apart, and the delimiters. */
const INTERESTING = [
    "A", "Z", "É", "Σ", "Ж", "Ǆ", "a", "z", "é", "σ", "ж", "ß", "ǅ", "ᾈ", "ʰ", "ー", "々",
    "中", "あ", "ا", "ก", "\u0301", "\u0903", "\u20dd", "\u0651", "0", "7", "٣", "０", "Ⅻ",
    "½", "²", "𝟘", " ", " ", "\t", "\n", "\r", "\u00a0", "\u2028", "\u0085", "\u3000", "\u000b",
    "'", "'", "’", "\"", "/", "//", "!", "?", ".", ",", "-", "_", "(", ")", "{", "}", "#", "@",
    "$", "%", "&", "*", "+", "=", "<", ">", "|", "\\", "~", "`", "^", ";", ":", "ſ", "s", "S",
    "t", "T", "re", "RE", "ve", "m", "ll", "LL", "d", "D", "'s", "'S", "'t", "'re", "'ve", "'m",
    "'ll", "'d", "'ſ", "\ufeff", "\u200d", "\u200b", "\u180e", "\u001c", "\u001f", "\u00ad",
    "😀", "👍🏽", "🇧🇷", "\ud800\udc00", "\u{10ffff}", "\u{e0001}", "\u{f0000}", "\u{1f1e6}",
];

function words(r, list, n, sep = " ") {
    const out = [];
    for (let i = 0; i < n; i++) out.push(r.pick(list));
    return out.join(sep);
}

function sentence(r, list) {
    let s = words(r, list, r.int(3, 18));
    s = s[0].toUpperCase() + s.slice(1);
    if (r.next() < 0.3) s = s.replace(/ /g, () => (r.next() < 0.1 ? ", " : " "));
    if (r.next() < 0.2) s = `"${s}"`;
    return s + r.pick([".", ".", "!", "?", "...", ":", ";", ""]);
}

function english(r) {
    const parts = [];
    for (let i = r.int(1, 6); i > 0; i--) parts.push(sentence(r, EN));
    return parts.join(r.pick([" ", " ", "  ", "\n", "\n\n", "\r\n"]));
}

function portuguese(r) {
    const parts = [];
    for (let i = r.int(1, 5); i > 0; i--) parts.push(sentence(r, PT));
    let s = parts.join(r.pick([" ", "\n", "\n\n"]));
    if (r.next() < 0.3) s = s.normalize("NFD"); // combining accents (marks)
    return s;
}

function chinese(r) {
    let s = "";
    for (let i = r.int(1, 80); i > 0; i--) {
        const x = r.next();
        if (x < 0.75) s += r.pick([...CJK]);
        else if (x < 0.85) s += r.pick([...CJK_PUNCT]);
        else if (x < 0.92) s += " " + r.pick(EN) + " ";
        else s += String(r.int(0, 9999));
    }
    return s;
}

function emoji(r) {
    let s = "";
    for (let i = r.int(1, 30); i > 0; i--) {
        const x = r.next();
        if (x < 0.5) s += r.pick(EMOJI);
        else if (x < 0.8) s += " " + r.pick(EN);
        else s += r.pick([" ", "", "\n", "!", "!!", "..."]);
    }
    return s;
}

const IDENT = ["foo", "bar", "i", "n", "len", "buf", "tg_tokens_count", "parseJSON", "HTTPServer",
    "x1", "_private", "CONST_VALUE", "self", "this", "ctx", "userId", "max_tokens", "résumé"];
const CODE = [
    (r) => `int ${r.pick(IDENT)}(const char *${r.pick(IDENT)}, size_t ${r.pick(IDENT)})\n{\n` +
        `    for (size_t i = 0; i < ${r.int(0, 1000)}; i++) {\n        ${r.pick(IDENT)} += i * ${r.int(2, 99)};\n    }\n` +
        `    return ${r.pick(IDENT)} ? -1 : 0; /* ${sentence(r, EN)} */\n}\n`,
    (r) => `def ${r.pick(IDENT)}(${r.pick(IDENT)}, ${r.pick(IDENT)}=None):\n    """${sentence(r, EN)}"""\n` +
        `    if ${r.pick(IDENT)} is None:\n        return [x ** 2 for x in range(${r.int(1, 100)})]\n` +
        `    return {'${r.pick(IDENT)}': ${r.int(0, 1e6)}, "k": [1, 2, 3]}\n`,
    (r) => `const ${r.pick(IDENT)} = async (${r.pick(IDENT)}) => {\n\tconst res = await fetch(\`/v1/\${${r.pick(IDENT)}}\`);\n` +
        `\treturn res.json(); // ${sentence(r, EN)}\n};\r\n`,
    (r) => `SELECT ${r.pick(IDENT)}, count(*) FROM ledger WHERE ts >= now() - interval '${r.int(1, 30)} days' GROUP BY 1;`,
    (r) => `<div class="${r.pick(IDENT)}"><a href="https://example.com/${r.pick(IDENT)}?q=${r.int(0, 999)}&x=%20">${sentence(r, EN)}</a></div>`,
    (r) => JSON.stringify({ id: r.int(0, 1e9), name: r.pick(IDENT), tags: [r.pick(EN), r.pick(PT)], ok: r.next() < 0.5 }, null, r.pick([0, 2, 4, "\t"])),
    (r) => "    ".repeat(r.int(0, 8)) + `if (${r.pick(IDENT)} != ${r.pick(IDENT)}) { /* ${"-".repeat(r.int(1, 70))} */ }`,
    (r) => `$ curl -s -H 'Authorization: Bearer sk-${r.int(1e8, 9e8).toString(36)}' localhost:8080/v1/models | jq '.data[].id'\n`,
];

function code(r) {
    const parts = [];
    for (let i = r.int(1, 3); i > 0; i--) parts.push(r.pick(CODE)(r));
    return parts.join(r.pick(["\n", "\n\n", "\r\n"]));
}

function whitespace(r) {
    let s = "";
    for (let i = r.int(1, 6); i > 0; i--) {
        const unit = r.next() < 0.6 ? r.pick([" ", "\n", "\t", "\r\n"]) : r.pick(SPACES);
        const mixed = r.next() < 0.4;
        const n = r.pick([1, 2, 3, 7, 16, 33, 100, 250, r.int(1, 3000)]);
        for (let k = 0; k < n; k++) s += mixed ? r.pick(SPACES) : unit;
        if (r.next() < 0.7) s += r.pick(["x", "word", "Hello", "123", "!", "'s", "中", "é", "\u0301"]);
    }
    return s;
}

function numbers(r) {
    let s = "";
    for (let i = r.int(1, 12); i > 0; i--) {
        const x = r.next();
        if (x < 0.4) s += String(r.int(0, 10 ** r.int(1, 9)));
        else if (x < 0.5) s += "9".repeat(r.int(1, 25));
        else if (x < 0.6) s += `${r.int(0, 999)}.${r.int(0, 99999)}`;
        else if (x < 0.7) s += `-${r.int(1, 99)},${String(r.int(0, 999)).padStart(3, "0")}`;
        else if (x < 0.8) s += r.pick(["٣٤٥", "０１２３４", "²³", "½", "Ⅻ", "𝟘𝟙𝟚", "१२३४५"]);
        else s += `${r.int(1, 12)}/${r.int(1, 28)}/20${r.int(10, 30)}`;
        s += r.pick([" ", "", ", ", "\n", "x", "%", "$"]);
    }
    return s;
}

/* Random valid UTF-8: code points from weighted ranges of all planes (no surrogates). */
const RANGES = [[0x20, 0x7e, 30], [0x0, 0x1f, 3], [0x80, 0x7ff, 15], [0x800, 0xd7ff, 15],
    [0xe000, 0xffff, 5], [0x10000, 0x1ffff, 8], [0x20000, 0x3ffff, 4], [0x40000, 0x10ffff, 2],
    [0x0300, 0x036f, 4], [0x1f300, 0x1faff, 4], [0x2000, 0x206f, 4]];
const RTOTAL = RANGES.reduce((a, x) => a + x[2], 0);
function randomCp(r) {
    let x = r.next() * RTOTAL;
    for (const [lo, hi, w] of RANGES) {
        if (x < w) return r.int(lo, hi);
        x -= w;
    }
    return 0x41;
}
function randomUtf8(r) {
    let s = "";
    for (let i = r.int(1, 60); i > 0; i--) s += String.fromCodePoint(randomCp(r));
    return s;
}

function interesting(r) {
    let s = "";
    for (let i = r.int(1, 40); i > 0; i--) s += r.pick(INTERESTING);
    return s;
}

/* Every code point of a 128-wide block with short ASCII contexts around it. */
function sweep(r, base) {
    let s = "";
    for (let cp = base; cp < base + 128; cp++) {
        if (cp >= 0xd800 && cp <= 0xdfff) continue;
        const c = String.fromCodePoint(cp);
        s += r.pick([`a${c}b `, `${c}111 `, ` ${c}'s `, `A${c}a `, `${c}${c}\n`, `x ${c} `, `1${c}. `]);
    }
    return s;
}

function mixed(r) {
    const gens = [english, portuguese, chinese, emoji, code, whitespace, numbers, randomUtf8, interesting];
    const parts = [];
    for (let i = r.int(2, 12); i > 0; i--) parts.push(r.pick(gens)(r));
    return parts.join(r.pick(["", " ", "\n"]));
}

const ROLES = ["system", "user", "assistant", "developer"];
function chat(r) {
    const gens = [english, portuguese, chinese, emoji, code, numbers, interesting];
    const messages = [];
    const nmsg = r.int(1, 8);
    for (let i = 0; i < nmsg; i++) {
        const role = i === 0 ? r.pick(ROLES) : r.pick(["user", "assistant", "tool", "user"]);
        const m = { role };
        if (role === "tool") {
            m.tool_call_id = `call_${r.int(1e5, 1e9).toString(36)}`;
            m.content = JSON.stringify({ result: r.pick(gens)(r), n: r.int(0, 100) });
        } else if (role === "assistant" && r.next() < 0.5) {
            m.content = r.next() < 0.5 ? null : r.pick(gens)(r);
            m.tool_calls = [];
            for (let k = r.int(1, 3); k > 0; k--) {
                m.tool_calls.push({
                    id: `call_${r.int(1e5, 1e9).toString(36)}`, type: "function",
                    function: { name: r.pick(["get_weather", "search", "run_sql", "lookup_user"]),
                        arguments: JSON.stringify({ q: r.pick(gens)(r), limit: r.int(1, 50) }) },
                });
            }
        } else if (r.next() < 0.3) {
            m.content = [];
            for (let k = r.int(1, 3); k > 0; k--) {
                if (r.next() < 0.8) m.content.push({ type: "text", text: r.pick(gens)(r) });
                else m.content.push({ type: "image_url", image_url: { url: "https://example.com/a.png", detail: "low" } });
            }
        } else {
            m.content = r.pick(gens)(r);
        }
        if (r.next() < 0.2) m.name = r.pick(["alice", "bob_2", "Zoë", "agent-7"]);
        messages.push(m);
    }
    const body = { model: r.pick(["gpt-4o", "gpt-4o-mini", "gpt-4", "gpt-3.5-turbo"]), messages };
    if (r.next() < 0.3) {
        body.tools = [{ type: "function", function: { name: "get_weather", description: sentence(r, EN),
            parameters: { type: "object", properties: { city: { type: "string", description: "City name" },
                unit: { type: "string", enum: ["c", "f"] } }, required: ["city"] } } }];
    }
    if (r.next() < 0.3) body.stream = true;
    if (r.next() < 0.2) body.max_tokens = r.int(1, 4096);
    /* Indented bodies never carry tools: the reference slices their raw text as compact JSON. */
    return JSON.stringify(body, null, !body.tools && r.next() < 0.2 ? 2 : 0);
}

export function makeCorpus(seed) {
    const r = rng(seed);
    const plan = [["english", english, 250], ["portuguese", portuguese, 200], ["chinese", chinese, 150],
        ["emoji", emoji, 120], ["code", code, 200], ["whitespace", whitespace, 150],
        ["numbers", numbers, 120], ["random_utf8", randomUtf8, 300], ["interesting", interesting, 500],
        ["mixed", mixed, 80]];
    const cases = [];
    for (const [name, gen, n] of plan) {
        for (let i = 0; i < n; i++) cases.push({ kind: "text", name, text: gen(r) });
    }
    /* Fixed sweep blocks (Latin, Greek, Cyrillic, Arabic, Devanagari, general punctuation,
     * CJK, Hangul, halfwidth, emoji, math alphanumerics) plus random ones. */
    const blocks = [0x0, 0x80, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380, 0x400, 0x600, 0x900,
        0x1c80, 0x1d00, 0x1e00, 0x1f00, 0x2000, 0x2080, 0x2100, 0x2c00, 0x3000, 0x3080, 0x4e00,
        0xa700, 0xac00, 0xff00, 0xff80, 0x10d00, 0x11f00, 0x16d00, 0x1cc80, 0x1d400, 0x1e500, 0x1f300];
    for (let i = 0; i < 40; i++) blocks.push(r.int(0, 0x10ff80 >> 7) << 7);
    for (const b of blocks) cases.push({ kind: "text", name: `sweep_${b.toString(16)}`, text: sweep(r, b) });
    cases.push({ kind: "text", name: "empty", text: "" });
    for (let i = 0; i < 400; i++) cases.push({ kind: "chat", name: "chat", text: chat(r) });
    return cases;
}
