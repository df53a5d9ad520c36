#!/usr/bin/env bash
# Issue 2 §1: `make run` (scripts/run.sh, which the Makefile's run target calls after building).
# Run 1, UPSTREAM_URL unset: the DEMO MODE banner, the printed proxy and dashboard URLs answer,
# the printed curl works exactly as printed, PostgreSQL and Redis keep their data under the data
# folder (TOLLGATE_RUN_DIR, here in the test's temp dir), the migrations are applied, and Ctrl-C
# (SIGINT to the foreground process group) stops tollgate, the demo upstream, PostgreSQL and
# Redis. Run 2 on the same data folder with UPSTREAM_URL set: no demo banner, no demo upstream,
# the printed curl reaches the given upstream.
source "$(dirname "$0")/lib.sh"

RUN_SH="$TG_SOURCE_DIR/scripts/run.sh"
RUN_DIR="$T/run"
PGBIN=$TG_TEST_PGBIN
RUN_PID=""
STARTED=() # pids of what run.sh started (tollgate, demo upstream, redis, postmaster)

run_cleanup() {
    local rc=$?
    if [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2>/dev/null; then
        kill -INT -- "-$RUN_PID" 2>/dev/null || true
        for _ in $(seq 1 200); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.05; done
        kill -KILL -- "-$RUN_PID" 2>/dev/null || true
    fi
    for pid in "${STARTED[@]:-}"; do [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true; done
    if [ -f "$RUN_DIR/pg/postmaster.pid" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$RUN_DIR/pg" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    for f in "$RUN_DIR"/log/*.log; do [ -f "$f" ] && cp "$f" "$T/run-$(basename "$f")" 2>/dev/null; done
    set +e
    (exit "$rc") # tg_cleanup reads the status from $?
    tg_cleanup
}
trap run_cleanup EXIT

# start_run N [VAR=VALUE...]: scripts/run.sh in the background as its own process group with
# SIGINT not ignored (set -m), as a terminal's foreground job is; waits for its banner.
start_run() {
    local n=$1; shift
    RUN_OUT="$T/run$n.log"
    set -m
    env -i PATH="$PATH" HOME="${HOME:-/root}" LANG=C.UTF-8 \
        TOLLGATE_RUN_DIR="$RUN_DIR" \
        TOLLGATE_RUN_PORT="$(free_port)" TOLLGATE_RUN_PGPORT="$(free_port)" \
        TOLLGATE_RUN_REDISPORT="$(free_port)" TOLLGATE_RUN_UPSTREAM_PORT="$(free_port)" \
        "$@" "$RUN_SH" "$TG_BUILD_DIR" >"$RUN_OUT" 2>&1 </dev/null &
    RUN_PID=$!
    set +m
    local deadline=$(( $(date +%s) + 120 ))
    until grep -q "Ctrl-C stops everything" "$RUN_OUT"; do
        kill -0 "$RUN_PID" 2>/dev/null || fail "run.sh exited early: $(tail -n 20 "$RUN_OUT")"
        [ "$(date +%s)" -lt "$deadline" ] || fail "run.sh printed no banner within 120 s"
        sleep 0.1
    done
    PROXY_URL=$(awk '$1 == "proxy:" {print $2}' "$RUN_OUT")
    DASH_URL=$(awk '$1 == "dashboard:" {print $2}' "$RUN_OUT")
    # the curl: its first line through the first line that does not end in a backslash
    CURL_CMD=$(sed -n '/^ *curl -s .*\/v1\/chat\/completions/,/[^\\]$/p' "$RUN_OUT")
    PGPORT=$(sed -n 's/.*(PostgreSQL :\([0-9]*\), Redis :\([0-9]*\)).*/\1/p' "$RUN_OUT")
    REDISPORT=$(sed -n 's/.*(PostgreSQL :\([0-9]*\), Redis :\([0-9]*\)).*/\2/p' "$RUN_OUT")
    [[ "$PROXY_URL" =~ ^http://127\.0\.0\.1:[0-9]+/v1$ ]] || fail "run $n: proxy URL [$PROXY_URL]"
    BASE=${PROXY_URL%/v1}
    assert_eq "$BASE/dashboard/" "$DASH_URL" "run $n: dashboard URL"
    [ -n "$PGPORT" ] && [ -n "$REDISPORT" ] || fail "run $n: no data line: $(cat "$RUN_OUT")"
    assert_contains "$(cat "$RUN_OUT")" "data:       $RUN_DIR " "run $n: printed data folder"
    [ "$(printf '%s\n' "$CURL_CMD" | wc -l)" -ge 2 ] || fail "run $n: no curl printed: $(cat "$RUN_OUT")"
    assert_contains "$CURL_CMD" "$PROXY_URL/chat/completions" "run $n: the curl targets the proxy URL"
}

# record_started: the pids of what run.sh started (its children and the postmaster)
record_started() {
    STARTED=()
    local pid comm
    while read -r pid comm; do
        case $comm in tollgate | fake_upstream | redis-server) STARTED+=("$pid") ;; esac
        CHILDREN="$CHILDREN $comm"
    done < <(ps -o pid=,comm= --ppid "$RUN_PID")
    PG_PID=$(head -n 1 "$RUN_DIR/pg/postmaster.pid")
    STARTED+=("$PG_PID")
    # and the postmaster's own children (backends, checkpointer, ...)
    while read -r pid; do STARTED+=("$pid"); done < <(ps -o pid= --ppid "$PG_PID")
}

all_gone() {
    local pid
    for pid in "${STARTED[@]}"; do kill -0 "$pid" 2>/dev/null && return 1; done
    return 0
}

# stop_run N: Ctrl-C, i.e. SIGINT to the process group; everything is gone within 10 s
stop_run() {
    local n=$1 rc=0
    kill -INT -- "-$RUN_PID"
    wait_until 10 "run $n: everything stopped after Ctrl-C" all_gone
    wait "$RUN_PID" || rc=$?
    RUN_PID=""
    assert_eq 0 "$rc" "run $n: run.sh exit status after Ctrl-C"
    assert_contains "$(cat "$RUN_OUT")" "stopped (data kept in $RUN_DIR)" "run $n: stop message"
    [ ! -e "$RUN_DIR/pg/postmaster.pid" ] || fail "run $n: postmaster.pid left behind"
    for p in "$BASE" "http://127.0.0.1:$PGPORT" "http://127.0.0.1:$REDISPORT"; do
        port=${p##*:}
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "run $n: port $port still open"; fi
    done
}

# ---- run 1: demo mode
start_run 1
out=$(cat "$RUN_OUT")
assert_contains "$out" "*** DEMO MODE: UPSTREAM_URL is unset" "run 1: demo banner"
DEMO_URL=$(sed -n 's/.*\*\*\* (\(http:[^)]*\)).*/\1/p' "$RUN_OUT")
[ -n "$DEMO_URL" ] || fail "run 1: the demo upstream URL is not printed"
CHILDREN=""
record_started
assert_contains "$CHILDREN" "tollgate" "run 1: tollgate started"
assert_contains "$CHILDREN" "fake_upstream" "run 1: demo upstream started"
assert_contains "$CHILDREN" "redis-server" "run 1: redis started"
curl -fs "$DEMO_URL/health/liveliness" >/dev/null || fail "run 1: demo upstream not answering"

# the curl exactly as printed
body=$(bash -c "$CURL_CMD")
echo "$body" | jq -e '.object == "chat.completion" and (.choices[0].message.content | length > 0)
    and .usage.total_tokens > 0' >/dev/null || fail "run 1: curl body is not a chat completion: $body"
code=$(bash -c "$CURL_CMD -o /dev/null -w '%{http_code}'")
assert_eq 200 "$code" "run 1: printed curl status"
# the demo upstream received them
n=$(curl -fsS "$DEMO_URL/_fake/requests" | jq '[.[] | select(.path == "/v1/chat/completions")] | length')
assert_eq 2 "$n" "run 1: requests at the demo upstream"
# the printed URLs answer
key=$(sed -n 's/.*Bearer \(svc-[A-Za-z0-9]*\).*/\1/p' "$RUN_OUT" | head -n 1)
[ -n "$key" ] || fail "run 1: no service key in the curl"
models=$(curl -fsS "$PROXY_URL/models" -H "Authorization: Bearer $key" -H "X-Tollgate-User: demo-user")
echo "$models" | jq -e '.object == "list"' >/dev/null || fail "run 1: $PROXY_URL/models: $models"
code=$(curl -sS -o "$T/dash.html" -w '%{http_code}' "$DASH_URL")
assert_eq 200 "$code" "run 1: dashboard URL status"
grep -qi '<html' "$T/dash.html" || fail "run 1: dashboard is not HTML"

# data under the data folder
PSQL=(psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qAt -v ON_ERROR_STOP=1)
assert_eq "$RUN_DIR/pg" "$("${PSQL[@]}" -c "SHOW data_directory")" "PostgreSQL data directory"
[ -f "$RUN_DIR/pg/PG_VERSION" ] || fail "no cluster in $RUN_DIR/pg"
assert_eq "$PG_PID" "$(head -n 1 "$RUN_DIR/pg/postmaster.pid")" "postmaster of $RUN_DIR/pg"
assert_eq "$RUN_DIR/redis" "$(redis-cli -p "$REDISPORT" CONFIG GET dir | tail -n 1)" "Redis dir"
redis-cli -p "$REDISPORT" SAVE >/dev/null
[ -s "$RUN_DIR/redis/dump.rdb" ] || fail "Redis dump not under $RUN_DIR/redis"
[ -f "$RUN_DIR/secrets.env" ] || fail "no secrets.env in $RUN_DIR"
assert_eq 600 "$(stat -c %a "$RUN_DIR/secrets.env")" "secrets.env mode"

# migrations applied: one schema_migrations row per schema/*.sql, all the tables there
DB=(-d tollgate)
want=$(cd "$TG_SOURCE_DIR/schema" && ls [0-9]*.sql | sed 's/_.*//; s/^0*//' | sort -n | tr '\n' ' ')
got=$("${PSQL[@]}" "${DB[@]}" -c "SELECT version FROM schema_migrations ORDER BY version" | tr '\n' ' ')
assert_eq "$want" "$got" "schema_migrations versions"
for t in ledger users model_prices; do
    assert_eq 1 "$("${PSQL[@]}" "${DB[@]}" -c "SELECT count(*) FROM pg_class WHERE relname = '$t'")" "table $t"
done
# the demo requests were metered into the ledger of that database
demo_rows() {
    [ "$("${PSQL[@]}" "${DB[@]}" -c "SELECT count(*) FROM ledger WHERE user_id = 'demo-user' AND status = 'ok'")" -ge 2 ]
}
wait_until 15 "ledger rows of the demo requests" demo_rows

stop_run 1
log "ok: run 1 (demo mode): banner, URLs, the printed curl, data in $RUN_DIR, migrations, Ctrl-C stops all"

# ---- run 2: same data folder, UPSTREAM_URL set to our own fake
start_fake up
start_run 2 UPSTREAM_URL="$FAKE_URL"
PSQL=(psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qAt -v ON_ERROR_STOP=1)
out=$(cat "$RUN_OUT")
assert_not_contains "$out" "DEMO MODE" "run 2: demo banner"
CHILDREN=""
record_started
assert_not_contains "$CHILDREN" "fake_upstream" "run 2: a demo upstream was started"
assert_contains "$CHILDREN" "tollgate" "run 2: tollgate started"
key2=$(sed -n 's/.*Bearer \(svc-[A-Za-z0-9]*\).*/\1/p' "$RUN_OUT" | head -n 1)
assert_eq "$key" "$key2" "run 2: secrets.env kept between runs"
body=$(bash -c "$CURL_CMD")
echo "$body" | jq -e '.object == "chat.completion"' >/dev/null || fail "run 2: curl body: $body"
rec=$(curl -fsS "$FAKE_URL/_fake/requests" | jq -c '[.[] | select(.path == "/v1/chat/completions")]')
assert_eq 1 "$(echo "$rec" | jq length)" "run 2: requests at the given upstream"
assert_eq '"Hello!"' "$(echo "$rec" | jq -c '.[0].body_json.messages[0].content')" "run 2: forwarded body"
got=$("${PSQL[@]}" "${DB[@]}" -c "SELECT count(*) FROM schema_migrations")
assert_eq "$(echo "$want" | wc -w)" "$got" "run 2: migrations not applied twice"
stop_run 2
kill -0 "$FAKE_PID" 2>/dev/null || fail "run 2: Ctrl-C stopped the upstream it did not start"
log "ok: run 2 (UPSTREAM_URL set): no demo mode, the printed curl reaches the given upstream"
