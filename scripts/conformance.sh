#!/usr/bin/env bash
# Conformance: the on-premises scenarios against a real Samba AD DC and against the lab's own
# AD DS, side by side. Installs Debian's Samba AD DC packages if missing, provisions a
# throwaway "testlab.example" domain under a temporary directory, serves it on 127.0.0.1
# only (LDAPS with a certificate from a CA made here), runs `lab conformance` (or, with
# RUN='command', that command with HYBRID_LAB_ADDS and HYBRID_LAB_ADDS_CA set), and stops it.
# Needs root (Samba's LDAP ports are 389 and 636). Exit status: lab conformance's.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v samba >/dev/null || ! command -v samba-tool >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends samba-ad-dc samba-ad-provision openssl
fi

work=$(mktemp -d /tmp/hybrid-lab-samba.XXXXXX)
cleanup() {
  if [ -f "$work/server.pid" ]; then
    # gone before the next run binds the same ports
    kill "$(cat "$work/server.pid")" 2>/dev/null || true
    wait "$(cat "$work/server.pid")" 2>/dev/null || true
  fi
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

echo "== provisioning testlab.example (Samba $(samba --version | cut -d' ' -f2)) in $work"
samba-tool domain provision --realm=TESTLAB.EXAMPLE --domain=TESTLAB --server-role=dc \
  --dns-backend=NONE --host-name=dc1 --adminpass='Lab-Admin-Pa55!' --targetdir="$work" \
  --option="interfaces=lo" --option="bind interfaces only=yes" >"$work/provision.log" 2>&1 ||
  { cat "$work/provision.log"; exit 1; }

# a CA and a certificate for the names the lab's clients use
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=hybrid-lab conformance CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$work/dc.key" -out "$work/dc.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/ext.cnf"
openssl x509 -req -in "$work/dc.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
  -extfile "$work/ext.cnf" -out "$work/dc.pem" >/dev/null 2>&1
chmod 600 "$work/dc.key"
# everything in $work: another Samba on this machine (or in another network namespace)
# must not share its pid file or sockets. Only the LDAP server runs: the RPC endpoints take
# fixed ports in the kernel's ephemeral range (49152+), which any client socket may hold.
sed -i "/^\[global\]/a\\
\tpid directory = $work\\
\tncalrpc dir = $work/ncalrpc\\
\twinbindd socket directory = $work/winbindd\\
\ttls enabled = yes\\
\ttls keyfile = $work/dc.key\\
\ttls certfile = $work/dc.pem\\
\ttls cafile = $work/ca.pem\\
\tserver services = ldap\\
\tlog file = $work/samba.log" "$work/etc/smb.conf"

echo "== starting samba on 127.0.0.1"
samba -i -M single -s "$work/etc/smb.conf" >"$work/samba.out" 2>&1 &
echo $! >"$work/server.pid"
for _ in $(seq 150); do
  if (exec 3<>/dev/tcp/127.0.0.1/636) 2>/dev/null; then break; fi
  sleep 0.2
done
(exec 3<>/dev/tcp/127.0.0.1/636) 2>/dev/null || { echo "samba did not open 636"; cat "$work/samba.out"; exit 1; }

export HYBRID_LAB_ADDS=ldaps://localhost:636 HYBRID_LAB_ADDS_CA="$work/ca.pem"
if [ -n "${RUN:-}" ]; then
  # another command against the same Samba, e.g. RUN='cargo test --test scenarios'
  bash -c "$RUN"
  exit
fi
# the debug build: `make test` has just built it (a release build would double CI time)
cargo build -q -p lab
# wherever cargo builds (CI caches often set CARGO_TARGET_DIR): ask it
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
"$target_dir/debug/lab" conformance --adds "$HYBRID_LAB_ADDS" --adds-ca "$HYBRID_LAB_ADDS_CA" "$@"
