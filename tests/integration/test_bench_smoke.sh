#!/usr/bin/env bash
# test_bench_smoke.sh: bench/run.sh in smoke mode (about a second per measurement, tiny
# parameters) must run every part — PostgreSQL, Redis, the fake upstream, nginx, tollgate,
# wrk, bench/loadgen, bench/streams — and write a report in which every table has its rows and
# every figure is a number. It asserts nothing about speed or memory: the figures of a smoke run
# on a busy machine mean nothing.
set -euo pipefail

: "${TG_SOURCE_DIR:?}" "${TG_BUILD_DIR:?}" "${TOLLGATE_BIN:?}" "${FAKE_UPSTREAM_BIN:?}"
: "${LOADGEN_BIN:?}" "${STREAMS_BIN:?}"

T=$(mktemp -d /tmp/tg-bench-smoke.XXXXXX)
trap 'rc=$?; if [ $rc = 0 ]; then rm -rf "$T"; else echo "bench smoke FAILED; files in $T" >&2; fi' EXIT
fail() { echo "bench smoke: FAIL: $*" >&2; exit 1; }
trim() { local v=${1// /}; printf '%s' "$v"; }

for tool in nginx wrk; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (make deps-bench)"
done

RESULTS_DIR=$T/results NO_BUILD=1 TOLLGATE_BIN=$TOLLGATE_BIN FAKE_UPSTREAM_BIN=$FAKE_UPSTREAM_BIN \
    LOADGEN_BIN=$LOADGEN_BIN STREAMS_BIN=$STREAMS_BIN PERF=0 \
    "$TG_SOURCE_DIR/bench/run.sh" "$TG_BUILD_DIR" smoke >"$T/run.out" 2>"$T/run.err" ||
    { tail -n 40 "$T/run.err" >&2; fail "bench/run.sh smoke exited with $?"; }

report=$(ls "$T"/results/bench-*-smoke.md 2>/dev/null | head -n 1)
[ -n "$report" ] && [ -s "$report" ] || fail "no report written"
[ -s "$T/results/latest-smoke.md" ] || fail "latest-smoke.md missing"
ls "$T"/results/bench-*-smoke.log >/dev/null || fail "raw log missing"

# the headline is printed and names the three targets
for want in "## Headline" "nginx proxy_pass req/s" "p99 added" "concurrent streams in"; do
    grep -qF "$want" "$T/run.out" || fail "headline lacks [$want]"
    grep -qF "$want" "$report" || fail "report lacks [$want]"
done

num='[0-9]+(\.[0-9]+)?'
section() { sed -n "/^## ($1)/,/^## /p" "$report"; }
# (a) one row per target, each with a positive req/s and no errors
for t in direct nginx-w1 nginx-auto tollgate-w1 tollgate-w2; do
    row=$(section a | grep -E "^\| $t \| 4 \|") || fail "(a) has no row for $t"
    rps=$(awk -F'|' '{gsub(/ /, "", $4); print $4}' <<<"$row")
    [[ "$rps" =~ ^$num$ ]] && [ "${rps%.*}" -gt 0 ] || fail "(a) $t: req/s [$rps]"
    errs=$(awk -F'|' '{gsub(/ /, "", $8); print $8}' <<<"$row")
    [ "$errs" = 0 ] || fail "(a) $t: $errs errors"
done
# metering is exact: for every tollgate instance (each writes its own database) the rows in its
# ledger are exactly the metered requests it finished, exactly the rows it committed, with no
# request id twice -- no tolerance
n=0
while IFS= read -r line; do
    n=$((n + 1))
    metered=$(sed -E 's/.* metered=([0-9]+) .*/\1/' <<<"$line")
    rows=$(sed -E 's/.* rows=([0-9]+) .*/\1/' <<<"$line")
    distinct=$(sed -E 's/.* distinct_ids=([0-9]+) .*/\1/' <<<"$line")
    committed=$(sed -E 's/.* committed=([0-9]+): .*/\1/' <<<"$line")
    for v in "$metered" "$rows" "$distinct" "$committed"; do
        [[ "$v" =~ ^[0-9]+$ ]] || fail "metering check line unreadable: $line"
    done
    [ "$metered" -gt 0 ] && [ "$rows" = "$metered" ] && [ "$distinct" = "$rows" ] &&
        [ "$committed" = "$rows" ] || fail "metering: $line"
    grep -q ': exact (' <<<"$line" || fail "metering: $line"
done < <(grep '^- Metering check tollgate-' "$report")
[ "$n" = 4 ] || fail "metering check has $n instance lines, want 4 (w1 w2 nored nolog)"
grep -qE '^Metering check: tollgate finished [1-9][0-9]* metered requests; the ledgers hold [0-9]+ rows: exact\.$' \
    "$report" || fail "metering summary: $(grep '^Metering check:' "$report")"

# (b) every target answered all 100 requests (1 s at 100/s), with latency figures
for t in direct nginx-w1 tollgate-w1 tollgate-w2; do
    row=$(section b | grep -E "^\| $t \| [0-9]") || fail "(b) has no row for $t"
    IFS='|' read -r _ _ p50 p90 p99 p999 max reqs errs _ <<<"$row"
    for v in "$p50" "$p90" "$p99" "$p999" "$max"; do
        [[ "${v// /}" =~ ^$num$ ]] || fail "(b) $t: latency [$v]"
    done
    [ "${reqs// /}" = 100 ] || fail "(b) $t: $reqs requests, want 100"
    [ "${errs// /}" = 0 ] || fail "(b) $t: $errs errors"
done

# (c) all streams completed through tollgate (normal and slow readers) and nginx, with RSS
for label in "tollgate (1 worker)" "tollgate, slow readers" "nginx worker (reference)"; do
    row=$(section c | grep -F "| $label") || fail "(c) has no row [$label]"
    IFS='|' read -r _ _ ok open before peak _ <<<"$row"
    ok=$(trim "$ok") open=$(trim "$open") before=$(trim "$before") peak=$(trim "$peak")
    [ "$ok" = "10/10" ] || fail "(c) $label: ok [$ok]"
    [ "$open" = 10 ] || fail "(c) $label: max open [$open]"
    [[ "$peak" =~ ^$num$ ]] && [ "${peak%%.*}" -gt 0 ] || fail "(c) $label: peak RSS [$peak]"
    [[ "$before" =~ ^$num$ ]] || fail "(c) $label: RSS before [$before]"
done
ls "$T"/results/streams-*-tollgate-normal.csv >/dev/null || fail "(c) samples file missing"
[ "$(wc -l <"$(ls "$T"/results/streams-*-tollgate-normal.csv | head -n 1)")" -gt 1 ] ||
    fail "(c) no RSS samples"

# (d) every variant ran without errors and has a CPU figure
n=0
while IFS='|' read -r _ label rps _ _ errs cpu _; do
    n=$((n + 1))
    [[ "${rps// /}" =~ ^$num$ ]] || fail "(d) $label: req/s [$rps]"
    [ "${errs// /}" = 0 ] || fail "(d) $label: $errs errors"
    [[ "${cpu// /}" =~ ^$num$ ]] || fail "(d) $label: CPU [$cpu]"
done < <(section d | grep -E '^\| (nginx|tollgate): ')
[ "$n" = 9 ] || fail "(d) has $n variant rows, want 9"

# nothing the run started is left behind
work=$(sed -n 's/.*work dir \([^;]*\);.*/\1/p' "$T/run.err" | head -n 1)
[ -n "$work" ] || fail "run.sh did not name its work dir"
[ ! -e "$work" ] || fail "the work dir $work was not removed"
if pgrep -f "$work" >/dev/null; then
    fail "processes of the run are still alive: $(pgrep -af "$work")"
fi
echo "bench smoke: ok ($(grep -c '^|' "$report") table rows)"
