#!/usr/bin/env bash
# Installs what the tests need, once: OpenLDAP's command-line clients from Debian's
# packages (ldapsearch, ldapwhoami, ldapmodify), Chromium and its WebDriver (the browser
# tests), Python's ldap3 in a venv (.venv), and axe-core from npm in .axe (the browser
# tests' accessibility audit).
# Idempotent: does nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# axe-core, pinned to its major version, in the project's own node_modules
axe() {
  if [ ! -f .axe/node_modules/axe-core/axe.min.js ]; then
    npm install --prefix .axe --no-audit --no-fund --silent axe-core@4
  fi
}

# Python clients, in the project's own venv
req=tests/python/requirements.txt
if [ ! -x .venv/bin/python ] || ! cmp -s "$req" .venv/.requirements 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
  cp "$req" .venv/.requirements
fi

packages=(ldap-utils chromium chromium-driver npm)
commands=(ldapsearch chromium chromedriver npm)
missing=0
for c in "${commands[@]}"; do command -v "$c" >/dev/null 2>&1 || missing=1; done
if [ "$missing" = 0 ]; then
  axe
  exit 0
fi
as_root=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then as_root=(sudo); else
    echo "deps: ${packages[*]} missing; run as root: apt-get install -y ${packages[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y --no-install-recommends "${packages[@]}"
axe
