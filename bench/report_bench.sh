#!/bin/bash
# bench/report_bench.sh -- figures of the DMARC aggregate reports (issue 14):
#   1. the history write cost per message at end of message: file store
#      (bench/history_write, the syscalls of write_history() with a real
#      record, on the file system of BENCH_DIR) and Redis store
#      (bench/history_redis, the RPUSH+LTRIM+EXPIREAT round trip through
#      lib/mw_redis.c to a redis-server on loopback, started by t/lib.sh);
#   2. time and peak memory (/usr/bin/time -v) of mailwarden-report
#      building one day's reports from BENCH_RECORDS (1,000,000) records
#      (bench/mkhistory.py: 2,000 domains, 50,000 IPs) with --out.
# Both from a plain -O2 build (no sanitizers) of the current commit made
# under BENCH_DIR.  Prints the figures; passes or fails nothing.
#
#   bench/report_bench.sh            BENCH_RECORDS=100000 bench/report_bench.sh
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
N=${BENCH_RECORDS:-1000000}
DIR=${BENCH_DIR:-/var/tmp/mw-report-bench}
rm -rf "$DIR"
mkdir -p "$DIR/src" "$DIR/out"
git -C "$SRC" archive HEAD | tar -x -C "$DIR/src"
( cd "$DIR/src" && autoreconf -fi && ./configure CFLAGS=-O2 &&
  make -j2 tools/mailwarden-report bench/history_write bench/history_redis ) >"$DIR/build.log" 2>&1 ||
    { echo "build failed: $DIR/build.log" >&2; exit 1; }
day=$(( $(date +%s) / 86400 * 86400 - 86400 ))
python3 "$HERE/mkhistory.py" "$N" "$day" > "$DIR/history.jsonl"
printf '[milter]\nauthserv_id = bench.receiver.test\n[dmarc]\nreport_from = dmarc@receiver.test\n' > "$DIR/mw.ini"

echo "== history write cost per message (file store, $(stat -f -c %T "$DIR"))"
head -n 1 "$DIR/history.jsonl" > "$DIR/record"
for i in 1 2 3; do
	rm -f "$DIR/write.jsonl"
	"$DIR/src/bench/history_write" "$DIR/record" "$DIR/write.jsonl" 200000
done
echo "== history write cost per message (Redis store, redis-server on loopback TCP)"
. "$HERE/../t/lib.sh"
lab_init >/dev/null
start_redis
for i in 1 2 3; do
	"$DIR/src/bench/history_redis" "$DIR/record" "127.0.0.1:$REDIS_PORT" 20000
done
stop_redis
echo "== one day's reports from $N records ($(du -h "$DIR/history.jsonl" | cut -f1))"
/usr/bin/time -v "$DIR/src/tools/mailwarden-report" -c "$DIR/mw.ini" \
    --history "$DIR/history.jsonl" --out "$DIR/out" > "$DIR/report.out" 2> "$DIR/time.txt"
tail -n 1 "$DIR/report.out"
grep -E "Elapsed|Maximum resident|User time|System time" "$DIR/time.txt"
echo "reports: $(ls "$DIR/out" | wc -l), $(du -sh "$DIR/out" | cut -f1) gzipped"
