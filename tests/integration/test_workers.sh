#!/usr/bin/env bash
# Issue 2 §3: TOLLGATE_WORKERS event-loop threads, one SO_REUSEPORT listening socket per worker,
# and new client connections spread over the workers.
#
# The event-loop threads are named tg-worker-N (and tg-control, tg-ledger), and each worker
# also shows as a thread parked in epoll_wait when idle. Nothing exposes a worker id per request either, so the spread is measured through the
# per-worker upstream keep-alive pool: sequential requests handled by one worker reuse its one
# upstream connection (checked here with 1 worker), so the number of upstream connections the
# fake upstream accepted is the number of workers that served requests.
source "$(dirname "$0")/lib.sh"

AUTH=(-H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: workers-user" -H "Content-Type: application/json")
B='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'

threads() { ls "/proc/$1/task" | wc -l; }
# thread names of $1, sorted, one line
names() { cat /proc/"$1"/task/*/comm | grep '^tg-' | sort | tr '\n' ' '; }
# threads of $1 whose current system call is epoll_wait (232) or epoll_pwait (281) (x86_64)
epoll_threads() {
    local n=0 t
    for t in /proc/"$1"/task/*; do
        case "$(cut -d' ' -f1 "$t/syscall" 2>/dev/null)" in 232 | 281) n=$((n + 1)) ;; esac
    done
    echo "$n"
}
# listening sockets on port $2 owned by pid $1
listeners() {
    ss -Hltnp "sport = :$2" | grep -c "pid=$1,"
}
# new connections: one curl process per request (no connection reuse)
requests() { # n
    local i code
    for i in $(seq 1 "$1"); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$TG_URL/v1/chat/completions" "${AUTH[@]}" -d "$B")
        [ "$code" = 200 ] || fail "request $i: status $code"
    done
}
stop_ok() { # pid what: SIGTERM, exit status 0
    local rc=0
    kill -TERM "$1"
    wait "$1" || rc=$?
    assert_eq 0 "$rc" "$2: exit status after SIGTERM"
}
# the chat requests the fake received: their count and their distinct upstream connections (the
# fake also records tollgate's own GET /health/liveliness probe, every 5 s on a connection of
# its own, which must not count here)
chat_stats() {
    curl -fsS "$FAKE_URL/_fake/requests" |
        jq -c '[.[] | select(.path | test("chat/completions"))] |
               {requests: length, connections_accepted: ([.[].connection_id] | unique | length)}'
}
reset_fake() {
    curl -fsS -X DELETE "$FAKE_URL/_fake/stats" >/dev/null
    curl -fsS -X DELETE "$FAKE_URL/_fake/requests" >/dev/null
}
[ "$(uname -m)" = x86_64 ] || fail "epoll_wait syscall numbers are for x86_64"

start_fake
DB_URL=$(new_db workers)

# ---- 1 worker: the baseline
start_tollgate tg1 TOLLGATE_SERVICE_KEY=$SERVICE_KEY TOLLGATE_WORKERS=1
P1=$TG_PID
assert_eq 1 "$(listeners "$P1" "$TG_PORT")" "1 worker: listening sockets"
wait_until 10 "1 worker: idle event loops (worker + control)" test "$(epoll_threads "$P1")" = 2
assert_eq "tg-control tg-ledger tg-worker-0 " "$(names "$P1")" "1 worker: named threads"
N1=$(threads "$P1")
reset_fake
requests 50
stats=$(chat_stats)
assert_eq 50 "$(echo "$stats" | jq .requests)" "1 worker: requests upstream"
assert_eq 1 "$(echo "$stats" | jq .connections_accepted)" "1 worker: upstream connections (one per worker)"
stop_ok "$P1" "1 worker"

# ---- 3 workers
start_tollgate tg3 TOLLGATE_SERVICE_KEY=$SERVICE_KEY TOLLGATE_WORKERS=3
P3=$TG_PID
grep -q '"workers":3' "$TG_LOG" || fail "start line does not say 3 workers: $(head -n 3 "$TG_LOG")"
# three listening sockets on one address and port in one process: SO_REUSEPORT
assert_eq 3 "$(listeners "$P3" "$TG_PORT")" "3 workers: listening sockets"
[ "$(ss -Hltn "sport = :$TG_PORT" | wc -l)" = 3 ] || fail "other listeners on $TG_PORT"
wait_until 10 "3 workers: idle event loops (3 workers + control)" test "$(epoll_threads "$P3")" = 4
assert_eq "tg-control tg-ledger tg-worker-0 tg-worker-1 tg-worker-2 " "$(names "$P3")" "3 workers: named threads"
N3=$(threads "$P3")
assert_eq 2 "$((N3 - N1))" "threads added by 2 more workers ($N1 with 1 worker, $N3 with 3)"

# ---- 200 sequential new connections are spread over more than one worker
reset_fake
requests 200
stats=$(chat_stats)
assert_eq 200 "$(echo "$stats" | jq .requests)" "3 workers: requests upstream"
used=$(echo "$stats" | jq .connections_accepted)
[ "$used" -ge 2 ] && [ "$used" -le 3 ] ||
    fail "200 new connections went to $used upstream connections (workers used), want 2 or 3"
# the request log lines agree: as many distinct upstream connections, all reused but the first
wait_until 10 "200 request log lines" test "$(request_logs | grep -c workers-user)" -ge 200
conns=$(request_logs | grep workers-user | jq -s '[.[].upstream_conn] | unique | length')
assert_eq "$used" "$conns" "distinct upstream_conn in the log"
fresh=$(request_logs | grep workers-user | jq -s '[.[] | select(.upstream_reused == false)] | length')
assert_eq "$used" "$fresh" "requests that opened an upstream connection"
stop_ok "$P3" "3 workers"
log "ok: 3 workers: 2 threads more than 1 worker ($N1 -> $N3), 4 idle event loops, 3 SO_REUSEPORT listeners, 200 connections over $used workers"
