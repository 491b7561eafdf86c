#!/usr/bin/env bash
# Installs what the tests need, once: OpenLDAP's command-line clients from Debian's
# packages (ldapsearch, ldapwhoami, ldapmodify), python-ldap (python3-ldap: OpenLDAP's
# libldap for Python) and a JDK (JNDI, run from source) for the real-client checks of a DC's
# tree (tests/tests/adds_ldap_clients.rs), OpenSSL's headers (examples/consumer builds
# ldap3 with native-tls), Chromium and its WebDriver (the browser
# tests), Debian's pytest (the embedding example, examples/pytest), Python's ldap3, msal and
# maturin (the wheel test), the Graph SDK (msgraph-sdk, azure-identity) in a venv (.venv, which sees
# Debian's packages), axe-core from npm in .axe (the browser tests' accessibility audit), and
# the Node.js clients (tests/node: msal-node, openid-client).
# Idempotent: does nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# only the packages whose command is missing: a Node.js from elsewhere (NodeSource's
# nodejs ships npm) conflicts with Debian's npm package
declare -A package_of=([ldapsearch]=ldap-utils [chromium]=chromium [chromedriver]=chromium-driver [npm]=npm [java]=default-jdk-headless)
packages=(python3-pytest python3-venv python3-ldap)
missing=0
for c in "${!package_of[@]}"; do
  command -v "$c" >/dev/null 2>&1 || { missing=1; packages+=("${package_of[$c]}"); }
done
# Debian's own Python (not another one first on PATH) holds Debian's pytest
system_python=/usr/bin/python3
[ -x "$system_python" ] || system_python=python3
"$system_python" -c 'import pytest, venv, ldap' >/dev/null 2>&1 || missing=1
# OpenSSL's headers: examples/consumer's ldap3 keeps its default TLS, native-tls (openssl-sys)
if ! pkg-config --exists openssl 2>/dev/null; then missing=1; packages+=(libssl-dev pkg-config); fi
if [ "$missing" = 1 ]; then
  as_root=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then as_root=(sudo); else
      echo "deps: ${packages[*]} missing; run as root: apt-get install -y ${packages[*]}" >&2; exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update
  "${as_root[@]}" apt-get install -y --no-install-recommends "${packages[@]}"
fi

# Python clients, in the project's own venv on Debian's Python, seeing its packages (pytest)
req=tests/python/requirements.txt
want="$(cat "$req"; echo "# venv: $system_python --system-site-packages")"
if [ ! -x .venv/bin/python ] || [ "$want" != "$(cat .venv/.requirements 2>/dev/null)" ]; then
  rm -rf .venv
  "$system_python" -m venv --system-site-packages .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
  printf '%s' "$want" > .venv/.requirements
fi

# the Node.js clients (msal-node, openid-client), as tests/node/package.json and its lockfile say
if [ ! -d tests/node/node_modules/@azure/msal-node ] || [ ! -d tests/node/node_modules/openid-client ] \
  || [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; then
  npm ci --prefix tests/node --no-audit --no-fund --silent
fi

# axe-core, pinned to its major version, in the project's own node_modules
if [ ! -f .axe/node_modules/axe-core/axe.min.js ]; then
  npm install --prefix .axe --no-audit --no-fund --silent axe-core@4
fi
