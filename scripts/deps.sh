#!/usr/bin/env bash
# Installs what the tests need from Debian's packages, once: OpenLDAP's command-line
# clients (ldapsearch, ldapwhoami, ldapmodify), which the end-to-end tests drive.
# Idempotent: does nothing when everything is there.
set -euo pipefail
packages=(ldap-utils)
commands=(ldapsearch)
missing=0
for c in "${commands[@]}"; do command -v "$c" >/dev/null 2>&1 || missing=1; done
[ "$missing" = 0 ] && exit 0
as_root=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then as_root=(sudo); else
    echo "deps: ${packages[*]} missing; run as root: apt-get install -y ${packages[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y --no-install-recommends "${packages[@]}"
