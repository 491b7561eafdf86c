"""Python MSAL's interactive flows against the lab, driven by a browser the test runs.

Run by tests/tests/tenant_clients.rs:  python msal_interactive.py code|device '<lab info JSON>'
- code: initiate_auth_code_flow (PKCE, state, nonce: MSAL's own), prints the auth URI as a
  JSON line, reads the URL the browser was sent back to from stdin, and redeems it with
  acquire_token_by_auth_code_flow;
- device: initiate_device_flow, prints the user code and verification URI as a JSON line,
  and polls with acquire_token_by_device_flow while a second client (the test's browser)
  enters the code and signs in.
Each then calls Graph's /me with the token and prints "N checks passed".
"""
import json
import sys
import urllib.parse

import msal
import requests

mode, info = sys.argv[1], json.loads(sys.argv[2])
t = info["tenant"]
app = msal.PublicClientApplication(t["client_id"], authority=t["authority"], instance_discovery=False)
scopes = ["User.Read"]
checks = 0


def check(ok, what, detail=""):
    global checks
    if not ok:
        print("FAIL", what, detail, flush=True)
        sys.exit(1)
    checks += 1
    print("ok  ", what, flush=True)


if mode == "code":
    flow = app.initiate_auth_code_flow(scopes, redirect_uri="http://localhost:53199", login_hint=None)
    check(flow.get("code_verifier") and "code_challenge=" in flow["auth_uri"], "MSAL asked with PKCE")
    print(json.dumps({"auth_uri": flow["auth_uri"]}), flush=True)
    landed = sys.stdin.readline().strip()
    response = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(landed).query))
    result = app.acquire_token_by_auth_code_flow(flow, response)
elif mode == "device":
    flow = app.initiate_device_flow(scopes)
    check("user_code" in flow, "a device code", flow)
    print(json.dumps({"user_code": flow["user_code"], "verification_uri": flow["verification_uri"]}), flush=True)
    result = app.acquire_token_by_device_flow(flow)
else:
    sys.exit(f"unknown mode {mode}")

check("access_token" in result, "a token", result)
claims = result.get("id_token_claims", {})
check(claims.get("preferred_username", "").lower() == "user1@testlab.example", "the ID token names the user", claims)
r = requests.get(f"{t['graph']}/me", headers={"Authorization": f"Bearer {result['access_token']}"}, timeout=10)
check(r.status_code == 200 and r.json()["userPrincipalName"].lower() == "user1@testlab.example", "Graph /me", r.text)
accounts = app.get_accounts()
check(len(accounts) == 1, "MSAL's cache holds the account", accounts)
silent = app.acquire_token_silent(scopes, account=accounts[0])
check(silent and "access_token" in silent, "a silent token from the cache", silent)
print(f"{checks} checks passed", flush=True)
