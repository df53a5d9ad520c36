// identity_jwt.mjs: test tokens and keys for tollgate's identity tests (issue 4), node crypto only.
//
//   node identity_jwt.mjs keys DIR
//       writes DIR/{rsa,rsa2,ec256,ec256b,ec384,ec521}.{key,pub} (PKCS#8 private, SPKI public PEM)
//   node identity_jwt.mjs jwks KID=PUBFILE[:ALG] ...
//       prints a JWK Set with those public keys (kid, use "sig", alg when given)
//   node identity_jwt.mjs sign ALG KEY CLAIMS_JSON [HEADER_JSON]
//       prints a compact JWS. KEY is "secret:TEXT", "file:PATH" (HMAC secret = the file's bytes,
//       used for the algorithm-confusion token) or a PEM private key file for RS*/ES*.
//       CLAIMS_JSON values written as "now+N" / "now-N" become the time now +/- N seconds.
//       HEADER_JSON members are merged into {"alg":ALG,"typ":"JWT"} (null removes a member).
//   node identity_jwt.mjs many N ALG KEY CLAIMS_JSON
//       prints N tokens, one per line, each with its own "jti" (for benchmarks of uncached
//       verification)
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

const b64u = (buf) => Buffer.from(buf).toString("base64url");

function writeKeys(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const gen = (name, type, opts) => {
    const { publicKey, privateKey } = crypto.generateKeyPairSync(type, opts);
    fs.writeFileSync(path.join(dir, `${name}.key`),
      privateKey.export({ type: "pkcs8", format: "pem" }));
    fs.writeFileSync(path.join(dir, `${name}.pub`),
      publicKey.export({ type: "spki", format: "pem" }));
  };
  gen("rsa", "rsa", { modulusLength: 2048 });
  gen("rsa2", "rsa", { modulusLength: 2048 });
  gen("ec256", "ec", { namedCurve: "P-256" });
  gen("ec256b", "ec", { namedCurve: "P-256" });
  gen("ec384", "ec", { namedCurve: "P-384" });
  gen("ec521", "ec", { namedCurve: "P-521" });
}

function jwks(specs) {
  const keys = specs.map((s) => {
    const eq = s.indexOf("=");
    const kid = s.slice(0, eq);
    const [file, alg] = s.slice(eq + 1).split(":");
    const jwk = crypto.createPublicKey(fs.readFileSync(file)).export({ format: "jwk" });
    return { ...jwk, kid, use: "sig", ...(alg ? { alg } : {}) };
  });
  return JSON.stringify({ keys });
}

function resolveTimes(claims) {
  const now = Math.floor(Date.now() / 1000);
  for (const [k, v] of Object.entries(claims)) {
    const m = typeof v === "string" && /^now([+-]\d+)?$/.exec(v);
    if (m) claims[k] = now + (m[1] ? Number(m[1]) : 0);
  }
  return claims;
}

function sign(alg, key, claimsJson, headerJson) {
  const header = { alg, typ: "JWT", ...(headerJson ? JSON.parse(headerJson) : {}) };
  for (const [k, v] of Object.entries(header)) if (v === null) delete header[k];
  const claims = resolveTimes(JSON.parse(claimsJson));
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  const bits = alg.slice(2);
  const hash = `sha${bits === "512" && alg.startsWith("ES") ? "512" : bits}`;
  let sig;
  if (alg.startsWith("HS")) {
    const secret = key.startsWith("secret:") ? Buffer.from(key.slice(7))
      : fs.readFileSync(key.slice(5));
    sig = crypto.createHmac(hash, secret).update(input).digest();
  } else if (alg.startsWith("RS")) {
    sig = crypto.sign(hash, Buffer.from(input), fs.readFileSync(key));
  } else if (alg.startsWith("ES")) {
    sig = crypto.sign(hash, Buffer.from(input),
      { key: fs.readFileSync(key), dsaEncoding: "ieee-p1363" });
  } else {
    throw new Error(`unsupported alg ${alg}`);
  }
  return `${input}.${b64u(sig)}`;
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === "keys") writeKeys(args[0]);
else if (cmd === "jwks") process.stdout.write(jwks(args) + "\n");
else if (cmd === "sign") process.stdout.write(sign(args[0], args[1], args[2], args[3]) + "\n");
else if (cmd === "many") {
  const out = [];
  const claims = JSON.parse(args[3]);
  for (let i = 0; i < Number(args[0]); i++)
    out.push(sign(args[1], args[2], JSON.stringify({ ...claims, jti: String(i) })));
  process.stdout.write(out.join("\n") + "\n");
}
else {
  process.stderr.write("usage: identity_jwt.mjs keys DIR | jwks KID=PUB[:ALG]... | " +
    "sign ALG KEY CLAIMS [HEADER] | many N ALG KEY CLAIMS\n");
  process.exit(2);
}
