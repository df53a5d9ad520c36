#!/usr/bin/env bash
# Issue 4 §6: a verified JWT is cached in-process, and /metrics proves it: with one worker, N
# requests with one token cost one verification (tollgate_auth_cache_misses_total +1) and
# N-1 cache hits; 20 distinct tokens sent twice in turn are all hits the second time with a
# large cache, and all misses with AUTH_CACHE_ENTRIES=16 (the cache is bounded, LRU).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_identity.sh"

SECRET="hs-secret-for-the-cache-metrics-test-0123456789"
start_fake
DB_URL=$(new_db ident_cmetrics)
metric() { # NAME: the counter's value in /metrics
    curl -fsS "$TG_URL/metrics" | awk -v n="$1" '$1 == n {print $2}'
}
misses() { metric tollgate_auth_cache_misses_total; }
hits() { metric tollgate_auth_cache_hits_total; }
code() { code_of "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $1" \
    -H "Content-Type: application/json" -d "$CHAT"; }
# send_all TOKEN...: each token once, in order; each must be served
send_all() {
    local t
    for t in "$@"; do assert_eq 200 "$(code "$t")" "request with a valid JWT"; done
}

# ---- one token, N requests: one verification -------------------------------------------------
TOLLGATE_WORKERS=1 ident_tollgate big JWT_SECRET="$SECRET"
[ -n "$(misses)" ] && [ -n "$(hits)" ] || fail "auth cache counters missing from /metrics"
tok=$(jwt HS256 "secret:$SECRET" '{"sub":"cm-user","exp":"now+600"}')
N=12
m0=$(misses) h0=$(hits)
for _ in $(seq 1 $N); do assert_eq 200 "$(code "$tok")" "request with one JWT"; done
assert_eq $((m0 + 1)) "$(misses)" "$N requests with one JWT: one verification (cache miss)"
assert_eq $((h0 + N - 1)) "$(hits)" "$N requests with one JWT: $((N - 1)) cache hits"
log "ok: $N requests, 1 miss, $((N - 1)) hits"

# a refused token is not a cache entry that later passes: a bad signature misses every time
bad="${tok%.*}.AAAA"
m0=$(misses)
assert_eq 401 "$(code "$bad")" "bad signature"
assert_eq 401 "$(code "$bad")" "bad signature again"
assert_eq $((m0 + 2)) "$(misses)" "a refused token is verified (and refused) each time"

# 20 distinct tokens (one user, each with its own jti), sent twice in turn: a large cache keeps
# all of them (the control for the bounded case below)
mapfile -t toks < <(node "$JWT_TOOL" many 20 HS256 "secret:$SECRET" '{"sub":"cm-many","exp":"now+600"}')
assert_eq 20 "${#toks[@]}" "20 tokens made"
assert_eq 20 "$(printf '%s\n' "${toks[@]}" | sort -u | wc -l)" "20 distinct tokens"
m0=$(misses) h0=$(hits)
send_all "${toks[@]}"
send_all "${toks[@]}"
assert_eq $((m0 + 20)) "$(misses)" "default cache size: 20 misses (first round)"
assert_eq $((h0 + 20)) "$(hits)" "default cache size: 20 hits (second round)"
log "ok: 20 tokens twice with a large cache: 20 misses, 20 hits"

# ---- AUTH_CACHE_ENTRIES=16: the same 20 tokens in turn never hit ------------------------------
TOLLGATE_WORKERS=1 ident_tollgate small JWT_SECRET="$SECRET" AUTH_CACHE_ENTRIES=16
m0=$(misses) h0=$(hits)
send_all "${toks[@]}"
send_all "${toks[@]}"
assert_eq $((m0 + 40)) "$(misses)" "AUTH_CACHE_ENTRIES=16, 20 tokens in turn: every request misses"
assert_eq "$h0" "$(hits)" "AUTH_CACHE_ENTRIES=16, 20 tokens in turn: no hit"
# ... while 16 tokens in turn fit: the second round hits
m0=$(misses) h0=$(hits)
send_all "${toks[@]:0:16}"
send_all "${toks[@]:0:16}"
assert_eq $((m0 + 16)) "$(misses)" "16 tokens in a cache of 16: misses in the first round only"
assert_eq $((h0 + 16)) "$(hits)" "16 tokens in a cache of 16: the second round hits"
log "ok: the JWT cache is bounded by AUTH_CACHE_ENTRIES"
log "PASS"
