#!/usr/bin/env bash
# Issue 6 §2 "rows go to LEDGER_SPOOL_DIR with fsync": the spooling path of the ledger writer
# (ledger_driver, PostgreSQL unreachable) runs under strace, and the trace shows that
#  - every write to a spool segment is followed by a successful fsync/fdatasync of that fd
#    before the next write to any segment (the next batch), before the fd is closed, and before
#    the driver prints the rows as spooled ("stopped ... spooled=N");
#  - every new segment file is made durable in its directory: an fsync of the spool directory
#    after the segment was created and before the rows written to it are reported / the next
#    batch starts;
#  - the bytes the trace shows written to segments are all the spool holds (no write that
#    strace did not see, so the checks above are not vacuous).
# The checker is also run on the same trace with the segment fsyncs, then the directory fsyncs,
# cut out, and must reject both.
source "$(dirname "$0")/test_ledger_lib.sh"

command -v strace >/dev/null || fail "strace is not installed (make deps-test installs it)"
for _ in $(seq 1 50); do
    DEAD=$((20000 + RANDOM % 40000))
    port_free "$DEAD" && break
done
SPOOL=$WORK/spool

# check_trace TRACE SPOOL_DIR SPOOLED_BYTES [drop-segment-syncs|drop-directory-syncs]: exits
# non-zero with the violations on stderr. The last argument reads the trace as if those fsyncs
# were not there (the checker's own test).
check_trace() {
    python3 - "$@" <<'PY'
import re, sys

trace, spool, want_bytes = sys.argv[1], sys.argv[2].rstrip("/"), int(sys.argv[3])
drop = sys.argv[4] if len(sys.argv) > 4 else ""  # the checker's self-test: pretend a sync away
seg_re = re.compile(re.escape(spool) + r"/spool-\d{16}\.log$")
call_re = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(.*)$")
pending = {}  # pid -> the start of an unfinished call
events = []
for line in open(trace, encoding="utf-8", errors="replace"):
    line = line.rstrip("\n")
    m = re.match(r"^(\d+)\s+(.*) <unfinished \.\.\.>$", line)
    if m:
        pending[m.group(1)] = m.group(2)
        continue
    m = re.match(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$", line)
    if m:
        line = m.group(1) + " " + pending.pop(m.group(1), "") + m.group(2)
    m = call_re.match(line)
    if m:
        events.append((m.group(2), m.group(3), m.group(4)))

errors = []
fds = {}          # fd -> path, for fds the trace saw opened
dirty = {}        # segment fd -> path, written but not yet synced
short = set()     # segment fds whose last write was short (write_all goes on)
created = {}      # segment path -> "created" | "written" until the directory is fsynced
stats = {"segments": 0, "writes": 0, "syncs": 0, "dir_syncs": 0, "bytes": 0, "reported": 0}

def report_point(what):
    for fd, path in dirty.items():
        errors.append(f"{what}: write to {path} (fd {fd}) not followed by fsync/fdatasync")
    dirty.clear()
    for path, st in list(created.items()):
        if st == "written":
            errors.append(f"{what}: {path} was created and written but the directory "
                          "was not fsynced")
            del created[path]

for name, args, ret in events:
    first = args.split(",", 1)[0].strip()
    if name == "openat":
        pm = re.match(r'^AT_FDCWD, "([^"]*)", ([A-Z_|]+)', args)
        if pm and ret.isdigit():
            path, flags = pm.group(1).rstrip("/"), pm.group(2)
            fds[int(ret)] = path
            if seg_re.search(path) and "O_CREAT" in flags:
                stats["segments"] += 1
                created[path] = "created"
    elif name == "close":
        if first.isdigit():
            fd = int(first)
            if fd in dirty:
                errors.append(f"close of {dirty[fd]} (fd {fd}) with writes not fsynced")
                del dirty[fd]
            short.discard(fd)
            fds.pop(fd, None)
    elif name in ("write", "pwrite64"):
        if not first.isdigit():
            continue
        fd = int(first)
        if fd == 1 and '"stopped ' in args:
            stats["reported"] += 1
            report_point("rows reported spooled")
            continue
        path = fds.get(fd, "")
        if not seg_re.search(path):
            continue
        n = int(ret) if ret.lstrip("-").isdigit() else -1
        if n < 0:
            errors.append(f"failed write to {path}: {ret}")
            continue
        if fd not in short:  # a new batch starts: everything before it must be durable
            report_point(f"next batch to {path}")
        stats["writes"] += 1
        stats["bytes"] += n
        dirty[fd] = path
        lm = re.search(r",\s*(\d+)$", args)
        if lm and n < int(lm.group(1)):
            short.add(fd)
        else:
            short.discard(fd)
        if created.get(path) == "created":
            created[path] = "written"
    elif name in ("fsync", "fdatasync"):
        if not first.isdigit() or ret != "0":
            continue
        fd = int(first)
        path = fds.get(fd, "")
        if drop == ("drop-directory-syncs" if path == spool else "drop-segment-syncs"):
            continue
        if path == spool:
            stats["dir_syncs"] += 1
            created.clear()
        elif fd in dirty and fd not in short:
            stats["syncs"] += 1
            del dirty[fd]

if stats["reported"] != 1:
    errors.append(f"the trace has {stats['reported']} 'stopped' lines, want 1")
for fd, path in dirty.items():
    errors.append(f"end of trace: write to {path} (fd {fd}) never fsynced")
if stats["bytes"] != want_bytes:
    errors.append(f"the trace shows {stats['bytes']} bytes written to segments, the spool "
                  f"holds {want_bytes}: writes strace did not see?")
print(" ".join(f"{k}={v}" for k, v in stats.items()))
for e in errors[:20]:
    print("VIOLATION: " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
}

# spool_run NAME RUN_ID ROWS ARGS...: the driver under strace with PostgreSQL unreachable; all
# ROWS rows must end in the spool. Checks the trace (left in $WORK/NAME.trace); sets STATS and
# SPOOL_BYTES.
spool_run() {
    local name=$1 run=$2 want=$3; shift 3
    # (LeakSanitizer cannot run under ptrace: in the sanitizer build the leak check is off here)
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -o "$WORK/$name.trace" -e trace=openat,write,pwrite64,fsync,fdatasync,rename,close \
        "$DRIVER" --spool-dir "$SPOOL" --conninfo "host=127.0.0.1 port=$DEAD user=postgres dbname=x" \
        --run-id "$run" --retry-ms 200 "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" ||
        fail "$name: driver failed: $(tail -3 "$WORK/$name.log")"
    [ "$(stat_of "$WORK/$name.out" stopped spooled)" = "$want" ] ||
        fail "$name: not all rows spooled: $(grep ^stopped "$WORK/$name.out")"
    [ "$(stat_of "$WORK/$name.out" stopped committed)" = 0 ] || fail "$name: rows committed with PostgreSQL down?"
    SPOOL_BYTES=$(stat_of "$WORK/$name.out" stopped spool_bytes)
    local disk
    disk=$(cat "$SPOOL"/spool-*.log | wc -c)
    [ "$SPOOL_BYTES" = "$disk" ] || fail "$name: the driver reports $SPOOL_BYTES spool bytes, the segments hold $disk"
    STATS=$(check_trace "$WORK/$name.trace" "$SPOOL" "$((SPOOL_BYTES - BYTES_BEFORE))" 2>"$WORK/$name-check.log") ||
        fail "$name: $(cat "$WORK/$name-check.log")"
    log "$name: $STATS"
}
field() { tr ' ' '\n' <<<"$STATS" | sed -n "s/^$1=//p"; }

log "PostgreSQL unreachable (port $DEAD): batches of 100 rows, 64 KiB segments"
BYTES_BEFORE=0
spool_run first 61 4000 --producers 2 --rows 2000 --batch 100 --segment-bytes 65536
[ "$(field segments)" -ge 3 ] || fail "expected several new segments: $STATS"
[ "$(field writes)" -gt "$(field segments)" ] || fail "expected batches appended to existing segments: $STATS"
[ "$(field dir_syncs)" -ge "$(field segments)" ] || fail "fewer directory fsyncs than new segments: $STATS"
[ "$(field syncs)" = "$(field writes)" ] || fail "a batch without its own fsync: $STATS"

log "again on the same spool directory (segments from the first run are kept, new ones follow)"
BYTES_BEFORE=$SPOOL_BYTES
spool_run second 62 1500 --producers 1 --rows 1500 --batch 250 --segment-bytes 65536
[ "$(field segments)" -ge 1 ] || fail "the second run created no segment: $STATS"
[ "$(stat_of "$WORK/second.out" opened spool_bytes)" = "$BYTES_BEFORE" ] ||
    fail "the second run did not find the first run's segments: $(grep ^opened "$WORK/second.out")"

log "the checker rejects the first trace without the segment fsyncs, then without the directory's"
first_bytes=$(stat_of "$WORK/first.out" stopped spool_bytes)
if check_trace "$WORK/first.trace" "$SPOOL" "$first_bytes" drop-segment-syncs >/dev/null 2>"$WORK/neg1.txt"; then
    fail "the checker accepted the trace without segment fsyncs"
fi
grep -q "not followed by fsync/fdatasync" "$WORK/neg1.txt" || fail "without segment fsyncs: $(cat "$WORK/neg1.txt")"
if check_trace "$WORK/first.trace" "$SPOOL" "$first_bytes" drop-directory-syncs >/dev/null 2>"$WORK/neg2.txt"; then
    fail "the checker accepted the trace without directory fsyncs"
fi
grep -q "the directory was not fsynced" "$WORK/neg2.txt" || fail "without directory fsyncs: $(cat "$WORK/neg2.txt")"
log "PASS"
