#!/bin/bash
# Integration: [stats] -- /metrics and the status page of a running
# daemon after real transactions through Postfix.
#  - promtool check metrics on what the daemon serves, and the counters a
#    user looks for (refusals at RCPT by check, Redis commands, ...);
#  - a real Prometheus scrapes the daemon on loopback and a counter is
#    read back through its HTTP API;
#  - headless Chromium loads the status page: the transactions and the
#    SVG chart are in the DOM, the hostile HELO and MAIL FROM are text,
#    not markup; a screenshot is saved in $MW_TEST_OUTPUT (default
#    t/output/stats/) for a human to look at;
#  - SIGHUP: basic auth from a password file, the allow list;
#  - idle HTTP clients cannot take more than max_connections, and mail
#    still flows while they sit there.
set -u
. "$(dirname "$0")/lib.sh"
require_daemon
for p in promtool prometheus chromium curl; do
	command -v "$p" >/dev/null 2>&1 ||
	    skip_all "$p not installed (sh scripts/install-deps.sh)"
done
lab_init
STATS_PORT=$(lab_port)
PROM_PORT=$(lab_port)
OUT=${MW_TEST_OUTPUT:-$TOP/t/output}/stats
mkdir -p "$OUT"

write_config() {	# write_config [EXTRA [stats] LINES]
	mw_config_lab "$LAB/mw.ini" <<EOF
[dnsbl]
zone = bl.conn.test
[spf]
enabled = no
[dmarc]
enabled = no
[greylist]
enabled = yes
mode = all
server = 127.0.0.1:@REDIS_PORT@
[stats]
listen = 127.0.0.1:$STATS_PORT
history = 50
max_connections = 4
timeout = 2s
$(printf '%s\n' "$@")
EOF
}

metrics() { curl -s --max-time 10 "$@" "http://127.0.0.1:$STATS_PORT/metrics"; }
# metric NAME{LABELS}: its value in the last scrape (empty if absent)
metric() { awk -v k="$1" '$1 == k { print $2 }' "$LAB/metrics.txt"; }

write_config
start_nsd conn-fwd.zone conn-rev4.zone conn-rev6.zone example.test.zone \
    2.0.192.in-addr.arpa.zone
start_redis
start_daemon "$LAB/mw.ini"
start_postfix "inet:127.0.0.1:$MILTER_PORT"
lab_wait_port "$STATS_PORT" tcp 5 || bail_out "nothing listens on $STATS_PORT"

# Transactions a mail admin would want to see.
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --to postmaster@maildir.test \
    --header "From: <sender@sender.test>" --header "Subject: clean")
like "$r" "^250 " "clean message accepted"
r=$(send_mail --xclient-addr 198.18.1.66 --xclient-name c66.conn.test \
    --helo c66.conn.test --to rcpt@maildir.test)
like "$r" "^550 5.7.1 " "DNSBL-listed client refused at RCPT"
r=$(send_mail --xclient-addr 192.0.2.20 --helo noptr.example.test \
    --to rcpt@maildir.test)
like "$r" "^550 5.7.25 " "client without PTR refused at RCPT"
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --to rcpt@maildir.test)
like "$r" "^451 4.7.1 Greylisted" "first attempt greylisted (Redis)"
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo '<script>alert(1)</script>' \
    --from '"<img src=x onerror=alert(2)>"@evil.test' \
    --to postmaster@maildir.test --header "From: <x@evil.test>")
like "$r" "^250 " "hostile HELO and MAIL FROM accepted for postmaster@"
wait_delivered 2 || fail "two messages delivered"

# ---- /metrics
metrics >"$LAB/metrics.txt"
out=$(promtool check metrics <"$LAB/metrics.txt" 2>&1)
is "$out" "" "promtool check metrics: no problem in what the daemon serves"
is "$(metric 'mailwarden_transactions_total{verdict="reject",stage="rcpt"}')" 2 \
    "two transactions refused at RCPT"
is "$(metric 'mailwarden_transactions_total{verdict="tempfail",stage="rcpt"}')" 1 \
    "one tempfailed at RCPT (greylisted)"
is "$(metric 'mailwarden_transactions_total{verdict="accept",stage="eom"}')" 2 \
    "two accepted"
is "$(metric 'mailwarden_check_results_total{check="dnsbl",result="fail"}')" 1 \
    "dnsbl=fail counted under check=dnsbl"
is "$(metric 'mailwarden_dnsbl_listings_total{zone="bl.conn.test"}')" 1 \
    "the listing counted for its zone"
is "$(metric 'mailwarden_check_results_total{check="iprev",result="permerror"}')" 1 \
    "iprev=permerror (no PTR) counted"
is "$(metric 'mailwarden_check_results_total{check="greylist",result="greylisted"}')" 1 \
    "greylisted counted"
is "$(metric 'mailwarden_redis_commands_total')" 2 \
    "two Redis commands (EVALSHA, NOSCRIPT on a fresh server, then EVAL)"
like "$(metric 'mailwarden_dns_queries_total')" '^[1-9][0-9]*$' "DNS queries counted"
like "$(metric 'mailwarden_check_duration_seconds_count{check="iprev"}')" '^[1-9]' \
    "iprev latency histogram filled"
is "$(metric 'mailwarden_sessions_active')" 0 "no session open now"

# ---- a real Prometheus scrapes us
mkdir -p "$LAB/prom"
cat >"$LAB/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $TOP/etc/mailwarden-alerts.yml
scrape_configs:
  - job_name: mailwarden
    static_configs:
      - targets: ['127.0.0.1:$STATS_PORT']
EOF
lab_spawn prometheus prometheus --config.file="$LAB/prom/prometheus.yml" \
    --storage.tsdb.path="$LAB/prom/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --log.level=warn
q='sum(mailwarden_transactions_total{verdict="reject"})'
v=
for _ in $(seq 1 60); do
	v=$(curl -s --max-time 2 -G "http://127.0.0.1:$PROM_PORT/api/v1/query" \
	    --data-urlencode "query=$q" |
	    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null)
	[ -n "$v" ] && break
	sleep 0.5
done
is "$v" 2 "Prometheus scraped the daemon: $q = 2"
up=$(curl -s --max-time 2 -G "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode 'query=up{job="mailwarden"}' |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null)
is "$up" 1 "the target is up in Prometheus"
# Every query of the Grafana dashboard runs in this Prometheus, and the
# sample alerting rules load and evaluate.
bad=$(python3 - "$TOP/etc/grafana-mailwarden.json" "$PROM_PORT" <<'PY'
import json, sys, urllib.parse, urllib.request
d = json.load(open(sys.argv[1]))
bad = []
n = 0
for p in d["panels"]:
    for t in p.get("targets", []):
        e = t["expr"].replace("$job", "mailwarden").replace("$instance", ".*")
        u = "http://127.0.0.1:%s/api/v1/query?%s" % (sys.argv[2], urllib.parse.urlencode({"query": e}))
        try:
            r = json.load(urllib.request.urlopen(u, timeout=5))
            ok = r.get("status") == "success"
        except Exception as x:
            ok = False
        n += 1
        if not ok:
            bad.append(e)
print("%d queries" % n if not bad else "failing: " + " | ".join(bad))
PY
)
like "$bad" '^[0-9]+ queries$' "every Grafana dashboard query evaluates in Prometheus ($bad)"
health=
for _ in $(seq 1 20); do
	health=$(curl -s --max-time 2 "http://127.0.0.1:$PROM_PORT/api/v1/rules" |
	    python3 -c 'import json,sys; g=json.load(sys.stdin)["data"]["groups"]; r=[x for gr in g for x in gr["rules"]]; print(len(r), " ".join(sorted(set(x["health"] for x in r))))' 2>/dev/null)
	[ "$health" = "7 ok" ] && break
	sleep 0.5
done
is "$health" "7 ok" "the 7 sample alerting rules load and evaluate"
lab_stop prometheus

# ---- the status page in a real browser
lab_chromium --dump-dom "http://127.0.0.1:$STATS_PORT/" >"$LAB/dom.html"
dom=$(cat "$LAB/dom.html")
like "$dom" '<svg id="chart"' "the page has the SVG chart"
like "$dom" '<rect class="bar v-accept"' "... with a bar of accepted messages"
like "$dom" '<rect class="bar v-reject"' "... and of refused ones"
is "$(grep -c '<tr class="txn' "$LAB/dom.html")" 5 "five transactions listed"
like "$dom" 'blocked using bl.conn.test' "the DNSBL refusal with its reply text"
like "$dom" 'class="helo">&lt;script&gt;alert\(1\)&lt;/script&gt;<' "hostile HELO shown as text"
like "$dom" 'class="from">"&lt;img src=x onerror=alert\(2\)&gt;"@evil.test<' \
    "hostile MAIL FROM shown as text"
unlike "$dom" '<script|<img' "no script or img element in the DOM"
like "$dom" '<td>dnsbl</td><td>reject</td>' "top refusal reasons list the DNSBL"
lab_chromium --screenshot="$OUT/status.png" --window-size=1280,1500 --hide-scrollbars \
    "http://127.0.0.1:$STATS_PORT/" >/dev/null
if [ -s "$OUT/status.png" ]; then
	pass "screenshot saved: $OUT/status.png"
else
	fail "screenshot saved: $OUT/status.png" "$(tail -n 20 "$LAB/chromium.log")"
fi

# ---- SIGHUP: basic auth, allow list
printf 'sekret\n' >"$LAB/stats.pw"
chmod 644 "$LAB/stats.pw"
chown nobody "$LAB/stats.pw"	# read again on SIGHUP, as [milter] user
write_config "password_file = $LAB/stats.pw" "user = prom"
daemon_signal HUP
sleep 1
like "$(daemon_log)" "reload refused.*password_file.*readable or writable by others" \
    "a world-readable password file is refused"
metrics >"$LAB/metrics.txt"
is "$(metric 'mailwarden_config_reloads_total{result="failure"}')" 1 \
    "the refused reload is counted"
chmod 600 "$LAB/stats.pw"
daemon_signal HUP
for _ in $(seq 1 40); do
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$STATS_PORT/metrics")
	[ "$code" = 401 ] && break
	sleep 0.25
done
is "$code" 401 "after the reload, /metrics wants a password"
is "$(curl -s -o /dev/null -w '%{http_code}' -u prom:wrong "http://127.0.0.1:$STATS_PORT/")" 401 \
    "a wrong password is refused"
metrics -u prom:sekret >"$LAB/metrics.txt"
is "$(metric 'mailwarden_config_reloads_total{result="success"}')" 1 \
    "the right one is taken; the reload counted"

write_config "allow = 192.0.2.0/24"
daemon_signal HUP
for _ in $(seq 1 40); do
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$STATS_PORT/metrics")
	[ "$code" = 000 ] && break
	sleep 0.25
done
is "$code" 000 "a client outside [stats] allow is dropped at connect"
like "$(daemon_log)" "refused HTTP client 127.0.0.1" "... and logged"
write_config
daemon_signal HUP
for _ in $(seq 1 40); do
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$STATS_PORT/metrics")
	[ "$code" = 200 ] && break
	sleep 0.25
done
is "$code" 200 "allowed again after the next reload"

# ---- idle clients: bounded, and mail flows meanwhile
for i in 1 2 3 4 5 6; do
	exec {fd}<>"/dev/tcp/127.0.0.1/$STATS_PORT" && eval "idle_$i=$fd"
done
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$STATS_PORT/metrics")
isnt "$code" 200 "with max_connections idle clients connected, one more gets nothing"
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --to postmaster@maildir.test --header "Subject: meanwhile")
like "$r" "^250 " "mail is filtered while HTTP clients sit idle"
for _ in $(seq 1 40); do
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$STATS_PORT/metrics")
	[ "$code" = 200 ] && break
	sleep 0.25
done
is "$code" 200 "idle clients time out ([stats] timeout = 2s) and the page is back"
for i in 1 2 3 4 5 6; do
	eval "fd=\${idle_$i:-}"
	[ -n "$fd" ] && exec {fd}>&-
done

check_daemon_clean_exit
done_testing
