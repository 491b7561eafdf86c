"""Python MSAL's username/password flow against the lab, the way a script signs in a user.

Run by tests/tests/tenant_python_msal.rs:  python msal_ropc.py '<lab info JSON>'
MSAL first asks https://HOST/common/userrealm/{upn} on port 443 (whatever port the
authority names), so the lab under test listens on 127.0.0.1:443.
"""
import json
import sys

import msal
import requests

info = json.loads(sys.argv[1])
t = info["tenant"]
app = msal.PublicClientApplication(t["client_id"], authority=t["authority"], instance_discovery=False)
scopes = ["https://graph.microsoft.com/User.Read"]

result = app.acquire_token_by_username_password("user1@testlab.example", "Summer-Lake-41", scopes=scopes)
if "access_token" not in result:
    print("FAIL token:", result)
    sys.exit(1)
claims = result.get("id_token_claims", {})
if claims.get("preferred_username") != "user1@testlab.example":
    print("FAIL id token claims:", claims)
    sys.exit(1)
print("ok   user token (and ID token) for", claims["preferred_username"])

r = requests.get(f"{t['graph']}/me", headers={"Authorization": f"Bearer {result['access_token']}"}, timeout=10)
if r.status_code != 200 or r.json().get("userPrincipalName") != "user1@testlab.example":
    print("FAIL /me:", r.status_code, r.text)
    sys.exit(1)
print("ok   Graph /me with the token")

# a token cache finds the token again under the scopes asked, in either form (azure-identity,
# behind the Graph SDKs, asks the cache before every call)
for asked in (scopes, ["https://graph.microsoft.com/.default"]):
    if asked != scopes:
        fresh = app.acquire_token_by_username_password("user1@testlab.example", "Summer-Lake-41", scopes=asked)
        if "access_token" not in fresh:
            print("FAIL token for", asked, fresh)
            sys.exit(1)
    account = app.get_accounts(username="user1@testlab.example")[0]
    silent = app.acquire_token_silent(asked, account=account)
    if not silent or silent.get("token_source") != "cache":
        print("FAIL the cache missed", asked, silent)
        sys.exit(1)
print("ok   acquire_token_silent finds the token in the cache, for a scope and for /.default")

# MSAL asks for offline_access itself: the refresh token it cached gets a new access token
# without the password
account = app.get_accounts(username="user1@testlab.example")[0]
refreshed = app.acquire_token_silent(scopes, account=account, force_refresh=True)
if not refreshed or refreshed.get("token_source") != "identity_provider" or "access_token" not in refreshed:
    print("FAIL the refresh token did not get a new token:", refreshed)
    sys.exit(1)
print("ok   a forced refresh redeems MSAL's cached refresh token")

result = app.acquire_token_by_username_password("user1@testlab.example", "Wrong-Password-1", scopes=scopes)
if result.get("error") != "invalid_grant" or 50126 not in result.get("error_codes", []):
    print("FAIL wrong password:", result)
    sys.exit(1)
print("ok   a wrong password: invalid_grant / AADSTS50126")
print("5 checks passed")
