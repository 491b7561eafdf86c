#!/usr/bin/env bash
# Benchmarks for docs/benchmarks.md. Measures, in one run on this machine:
#  1. simple binds/s and indexed equality searches/s at 1 and 16 connections over loopback,
#     10,000 users, against the lab's AD DS and against OpenLDAP's slapd (mdb backend), with
#     the same load client (lab-bench, the `ldap3` crate);
#  2. LDIF import time and memory for 100,000 users;
#  3. a sAMAccountName lookup at 1,000 / 10,000 / 100,000 users (indexed vs a scan).
# Installs Debian's slapd and ldap-utils if missing. Listens on 127.0.0.1 only.
#  4. a fresh lab's start (`lab up --json` x100) and the scenario suite (`lab run`, nextest),
#     idle and with every core busy.
# Arguments pick sections (default: all): ldap password import tenant pta startup lookup
# scenarios writeback sync — e.g. `bench/run.sh ldap` for the bind/search comparison alone.
# BEFORE=<path to an older `lab` binary> adds its column to the LDAP table, measured in the
# same interleaved runs: a change's before and after against the same slapd.
set -euo pipefail
cd "$(dirname "$0")/.."
SECTIONS=" ${*:-ldap password import tenant pta startup lookup scenarios writeback sync} "
want() { [[ "$SECTIONS" == *" $1 "* ]]; }
USERS=${USERS:-10000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
SLAPD_PORT=${SLAPD_PORT:-3890}

if ! command -v slapd >/dev/null || ! command -v ldapsearch >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends slapd ldap-utils
fi
SLAPD=$(command -v slapd || echo /usr/sbin/slapd)
SLAPADD=$(command -v slapadd || echo /usr/sbin/slapadd)
SLAPPASSWD=$(command -v slappasswd || echo /usr/sbin/slappasswd)

cargo build --release -p lab -p lab-bench
BIN=target/release
work=$(mktemp -d)
cleanup() { [ -n "${LAB_PID:-}" ] && kill "$LAB_PID" 2>/dev/null; [ -n "${BEFORE_PID:-}" ] && kill "$BEFORE_PID" 2>/dev/null; [ -f "$work/slapd.pid" ] && kill "$(cat "$work/slapd.pid")" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT

echo "== generating $USERS users for each server"
$BIN/lab-bench gen --users "$USERS" --flavor ad > "$work/ad.ldif"
HASH=$($SLAPPASSWD -s 'Load-Pass-123!')
$BIN/lab-bench gen --users "$USERS" --flavor openldap --hash "$HASH" > "$work/ol.ldif"

echo "== starting the lab"
$BIN/lab up --json --no-engine --frozen-clock --ldap 127.0.0.1:0 --ldaps 127.0.0.1:0 --state-dir "$work/lab" --adds-ldif "$work/ad.ldif" > "$work/lab.json" &
LAB_PID=$!
for _ in $(seq 100); do [ -s "$work/lab.json" ] && break; sleep 0.1; done
LAB_URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["adds"]["ldap"])' "$work/lab.json")
if [ -n "${BEFORE:-}" ]; then
  echo "== starting the lab from $BEFORE (before)"
  "$BEFORE" up --json --no-engine --frozen-clock --ldap 127.0.0.1:0 --ldaps 127.0.0.1:0 --http 127.0.0.1:0 --https 127.0.0.1:0 --state-dir "$work/before" --adds-ldif "$work/ad.ldif" > "$work/before.json" &
  BEFORE_PID=$!
  for _ in $(seq 100); do [ -s "$work/before.json" ] && break; sleep 0.1; done
  BEFORE_URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["adds"]["ldap"])' "$work/before.json")
fi

echo "== starting slapd (mdb) on 127.0.0.1:$SLAPD_PORT"
mkdir -p "$work/ol-db"
cat > "$work/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $work/slapd.pid
loglevel 0
database mdb
maxsize 1073741824
suffix "dc=bench,dc=example"
rootdn "cn=admin,dc=bench,dc=example"
rootpw Bench-Admin-1!
directory $work/ol-db
index objectClass eq
index uid eq
CONF
$SLAPADD -q -f "$work/slapd.conf" -l "$work/ol.ldif"
$SLAPD -f "$work/slapd.conf" -h "ldap://127.0.0.1:$SLAPD_PORT/"
for _ in $(seq 100); do ldapsearch -x -H "ldap://127.0.0.1:$SLAPD_PORT" -b '' -s base >/dev/null 2>&1 && break; sleep 0.1; done

ALL_CPUS="0-$(( $(nproc) - 1 ))"
# conns "1-one-cpu": one connection with the server (every thread) and the client on CPU 0.
# On this VM a wake-up from one vCPU to the other costs ~30 µs, two of them per round trip,
# so a plain one-connection run measures where the scheduler put the threads more than the
# server: the pinned row takes placement out of it.
run() { # server_pid url flavor op conns admin_dn admin_pw
  local conns=$5 pin=()
  if [ "$conns" = 1-one-cpu ]; then conns=1; pin=(taskset -c 0); taskset -a -p -c 0 "$1" >/dev/null; fi
  "${pin[@]}" $BIN/lab-bench load --url "$2" --flavor "$3" --op "$4" --conns "$conns" --users "$USERS" --seconds "$SECONDS_PER_RUN" --admin-dn "$6" --admin-password "$7"
  [ ${#pin[@]} -eq 0 ] || taskset -a -p -c "$ALL_CPUS" "$1" >/dev/null
}
LAB_ADMIN="CN=Administrator,CN=Users,DC=testlab,DC=example"; LAB_PW='Lab-Admin-Pa55!'
OL_ADMIN="cn=admin,dc=bench,dc=example"; OL_PW='Bench-Admin-1!'
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
if want ldap; then
echo
before_head=""; [ -n "${BEFORE:-}" ] && before_head=" before (ops/s) |"
echo "| workload ($USERS users; median of 3 alternating ${SECONDS_PER_RUN}s runs) | connections | hybrid-lab AD DS (ops/s) |$before_head slapd mdb (ops/s) | lab ÷ slapd |"
echo "|---|---|---|---|---|${before_head:+---|}"
for op in bind search; do
  for c in 1 1-one-cpu 16; do
    a=(); b=(); z=()
    for _ in 1 2 3; do
      a+=("$(run "$LAB_PID" "$LAB_URL" ad "$op" "$c" "$LAB_ADMIN" "$LAB_PW")")
      [ -n "${BEFORE:-}" ] && z+=("$(run "$BEFORE_PID" "$BEFORE_URL" ad "$op" "$c" "$LAB_ADMIN" "$LAB_PW")")
      b+=("$(run "$(cat "$work/slapd.pid")" "ldap://127.0.0.1:$SLAPD_PORT" openldap "$op" "$c" "$OL_ADMIN" "$OL_PW")")
    done
    before_col=""; [ -n "${BEFORE:-}" ] && before_col=" $(median "${z[@]}") (${z[*]}) |"
    ratio=$(python3 -c "print(f'{$(median "${a[@]}")/$(median "${b[@]}"):.2f}×')")
    echo "| $op | $c | $(median "${a[@]}") (${a[*]}) |$before_col $(median "${b[@]}") (${b[*]}) | $ratio |"
  done
done
fi
if want password; then
echo
echo "== password operations on the lab (LDAPS, policy checks on: length, complexity, history on change)"
LAB_LDAPS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["adds"]["ldaps"])' "$work/lab.json")
LAB_CA=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["adds"]["ca_cert"])' "$work/lab.json")
for op in reset change; do
  for c in 1 16; do
    r=()
    for _ in 1 2 3; do
      r+=("$($BIN/lab-bench load --url "$LAB_LDAPS" --ca "$LAB_CA" --flavor ad --op "$op" --conns "$c" --users "$USERS" --seconds "$SECONDS_PER_RUN" --admin-dn "$LAB_ADMIN" --admin-password "$LAB_PW")")
    done
    echo "| password $op | $c | $(median "${r[@]}") (${r[*]}) |"
  done
done
fi
if want import; then
echo
echo "== LDIF import (in process)"
$BIN/lab-bench import --users 100000
fi
if want tenant; then
echo
echo "== the tenant (in process, HTTPS): token issuance and Graph reads"
$BIN/lab-bench tenant --conns 16 --seconds "$SECONDS_PER_RUN"
fi
if want pta; then
echo
echo "== sign-ins at 16 users at once: password hash sync against pass-through authentication,"
echo "   alternating rounds in one lab; idle, then with every core busy"
$BIN/lab-bench pta --conns 16 --seconds "$SECONDS_PER_RUN"
$BIN/lab-bench pta --conns 16 --seconds "$SECONDS_PER_RUN" --busy "$(nproc)"
$BIN/lab-bench pta --conns 16 --seconds "$SECONDS_PER_RUN" --agents 2 --busy "$(nproc)"
fi
if want startup; then
echo
echo "== a fresh lab: \`lab up --json\` x100 back to back, each in a new empty state directory,"
echo "   killed after its JSON line; idle, then with every core busy (one spinning process per CPU):"
echo "   in the labs' own session (as a CI run's other tests), then in a session of their own"
echo "   (as \`stress --cpu N\` from another terminal)"
$BIN/lab-bench fresh-start --runs 100 --lab $BIN/lab
$BIN/lab-bench fresh-start --runs 100 --lab $BIN/lab --busy "$(nproc)"
$BIN/lab-bench fresh-start --runs 100 --lab $BIN/lab --busy "$(nproc)" --busy-elsewhere
fi
if want lookup; then
echo
echo "== sAMAccountName lookup by directory size (in process)"
$BIN/lab-bench lookup --sizes 1000,10000,100000
fi
if want scenarios; then
echo
echo "== scenarios from the outside: \`lab run scenarios\` (each scenario in its own lab, -j = CPUs),"
echo "   then \`cargo nextest run --test scenarios\` warm; each three times idle, three times with"
echo "   every core busy (one spinning process per CPU)"
cargo nextest run -p hybrid-lab-tests --test scenarios >/dev/null 2>&1   # warm the test build
for busy in 0 "$(nproc)"; do
  BUSY_PIDS=()
  for _ in $(seq "$busy"); do $BIN/lab-bench spin & BUSY_PIDS+=($!); done
  for _ in 1 2 3; do
    t0=$EPOCHREALTIME
    $BIN/lab run scenarios >"$work/run.out" 2>&1 || { cat "$work/run.out"; exit 1; }
    t1=$EPOCHREALTIME
    echo "lab run scenarios ($busy busy): $(tail -1 "$work/run.out" | tr -d '\n'); $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s wall"
  done
  for _ in 1 2 3; do
    t0=$EPOCHREALTIME
    cargo nextest run -p hybrid-lab-tests --test scenarios >"$work/nextest.out" 2>&1 || { tail -20 "$work/nextest.out"; exit 1; }
    t1=$EPOCHREALTIME
    echo "cargo nextest run --test scenarios, warm ($busy busy): $(grep -o '[0-9]* tests run: [0-9]* passed' "$work/nextest.out"); $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s wall"
  done
  [ "${#BUSY_PIDS[@]}" -gt 0 ] && kill "${BUSY_PIDS[@]}" 2>/dev/null
  wait "${BUSY_PIDS[@]}" 2>/dev/null || true
done
fi
if want writeback; then
echo
echo "== password writeback: SSPR resets through the relay and the engine to the AD DS"
$BIN/lab-bench writeback --conns 1 --seconds "$SECONDS_PER_RUN"
$BIN/lab-bench writeback --conns 16 --seconds "$SECONDS_PER_RUN"
fi
if want sync; then

echo "== directory sync and password hash sync: 10,000 users initial, a delta of 100"
$BIN/lab-bench sync --users 10000 --changes 100 --rounds 3
fi
