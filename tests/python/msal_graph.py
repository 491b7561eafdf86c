"""Python MSAL against the lab's tenant: a client-credentials token, then Graph with it.

Run by tests/tests/tenant_python_msal.rs:  python msal_graph.py '<lab info JSON>'
REQUESTS_CA_BUNDLE points at the lab CA, so MSAL and requests verify TLS as usual.
"""
import json
import sys

import msal
import requests

info = json.loads(sys.argv[1])
t = info["tenant"]
app = msal.ConfidentialClientApplication(
    t["client_id"],
    client_credential=t["client_secret"],
    authority=t["authority"],
    instance_discovery=False,  # no call to the real cloud's instance discovery
)
result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
if "access_token" not in result:
    print("FAIL token:", result)
    sys.exit(1)
print("ok   token from", t["authority"])

r = requests.get(
    f"{t['graph']}/users",
    params={"$filter": "userPrincipalName eq 'user1@testlab.example'", "$select": "userPrincipalName,onPremisesSyncEnabled"},
    headers={"Authorization": f"Bearer {result['access_token']}"},
    timeout=10,
)
body = r.json()
if r.status_code != 200 or body["value"] != [{"userPrincipalName": "user1@testlab.example", "onPremisesSyncEnabled": True}]:
    print("FAIL graph:", r.status_code, body)
    sys.exit(1)
print("ok   Graph /users with the token:", body["value"][0]["userPrincipalName"])

bad = msal.ConfidentialClientApplication(t["client_id"], client_credential="wrong", authority=t["authority"], instance_discovery=False)
result = bad.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
if result.get("error") != "invalid_client" or 7000215 not in result.get("error_codes", []):
    print("FAIL wrong secret:", result)
    sys.exit(1)
print("ok   a wrong secret: invalid_client / AADSTS7000215")
print("3 checks passed")
