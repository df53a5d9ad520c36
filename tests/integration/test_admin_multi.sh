#!/usr/bin/env bash
# Issue 8 §1: a change made through one instance is in effect on another within 1 s: user,
# team and default quotas, a revoked key (401), a disabled user (403) and an enabled one. Two
# tollgate processes share PostgreSQL and Redis; B caches credentials and users for
# AUTH_CACHE_TTL_S (300 s), so only the admin API's invalidation can make B see a change.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
start_fake
DB_URL=$(new_db admin_multi)
REDIS_PREFIX="am$$:"
start_admin a AUTH_CACHE_TTL_S=300
A_URL=$TG_URL
start_admin b AUTH_CACHE_TTL_S=300
B_URL=$TG_URL
TG_URL=$A_URL # admin calls go to A

# warm B's caches (every worker): N requests
warm() { # curl-status-command...
    for _ in 1 2 3 4 5 6; do "$@" >/dev/null; done
}
# until_b NAME WANT CMD...: polls B (CMD prints a status) until WANT; prints the ms it took
until_b() {
    local name=$1 want=$2 t0 s; shift 2
    t0=$(now_ms)
    while :; do
        s=$("$@")
        [ "$s" = "$want" ] && break
        [ $(( $(now_ms) - t0 )) -lt 5000 ] || fail "$name: B still answers $s after 5 s"
    done
    echo $(( $(now_ms) - t0 ))
}
check_fast() { # NAME MS
    log "$1: in effect on B after $2 ms"
    [ "$2" -le 1000 ] || fail "$1 took $2 ms on B (limit 1000)"
}

CHAT_URL=$B_URL
KEY=$(adm_ok POST /admin/api/users/carol/keys '{"name":"b-test"}')
KEY_ID=$(echo "$KEY" | jq -r .id); KEY=$(echo "$KEY" | jq -r .key)
psql_db "$DB_URL" -c "INSERT INTO users (id, team_id) VALUES ('tina', 't-blue')" >/dev/null
for u in bob dave frank henry tina; do
    assert_eq 200 "$(chat_user $u)" "$u on B before"
    warm chat_user $u
done
assert_eq 200 "$(chat_key "$KEY")" "carol's key on B before"
warm chat_key "$KEY"

# control: a change written behind the API's back (no invalidation) is not seen by B
psql_db "$DB_URL" -c "INSERT INTO quotas (subject_kind, subject_id, limit_tokens) VALUES ('user', 'henry', 0)" >/dev/null
sleep 1.5
for _ in 1 2 3 4; do assert_eq 200 "$(chat_user henry)" "B still uses its cache without an invalidation"; done

adm_ok PUT /admin/api/users/bob/quota '{"limit_tokens":0}' >/dev/null
check_fast "user quota" "$(until_b "user quota" 402 chat_user bob)"
adm_ok DELETE "/admin/api/keys/$KEY_ID" >/dev/null
check_fast "key revoked" "$(until_b "key revoked" 401 chat_key "$KEY")"
adm_ok POST /admin/api/users/dave/disable >/dev/null
check_fast "user disabled" "$(until_b "user disabled" 403 chat_user dave)"
adm_ok POST /admin/api/users/dave/enable >/dev/null
check_fast "user enabled" "$(until_b "user enabled" 200 chat_user dave)"
adm_ok PUT /admin/api/teams/t-blue/quota '{"limit_tokens":0}' >/dev/null
check_fast "team quota" "$(until_b "team quota" 402 chat_user tina)"
adm_ok PUT /admin/api/quota/default '{"limit_tokens":0}' >/dev/null
check_fast "default quota" "$(until_b "default quota" 402 chat_user frank)"
adm_ok PUT /admin/api/quota/default '{"limit_tokens":null}' >/dev/null
check_fast "default quota back" "$(until_b "default quota back" 200 chat_user frank)"
adm_ok PUT /admin/api/users/bob/quota '{"limit_tokens":null}' >/dev/null
check_fast "user quota back" "$(until_b "user quota back" 200 chat_user bob)"
# every request above was stable: a few more answers from B agree
for _ in 1 2 3 4; do
    assert_eq "402 401 200 200" "$(chat_user tina) $(chat_key "$KEY") $(chat_user dave) $(chat_user bob)" "B agrees"
done
log "ok: every change in effect on the other instance within 1 s"
