"""This project's code talks to AD with ldap3 and to Entra ID with MSAL and Graph."""
import ssl

import ldap3
import msal
import requests

PASSWORD_METHOD = "28c10230-6103-485e-b985-444c60001490"  # Graph's well-known password method id


def connect(lab, user, password):
    """An LDAPS connection to the lab's DC, TLS checked against the lab's CA."""
    tls = ldap3.Tls(ca_certs_file=lab.ca_cert, validate=ssl.CERT_REQUIRED)
    server = ldap3.Server(lab.info["adds"]["ldaps"], use_ssl=True, tls=tls)
    return ldap3.Connection(server, user=user, password=password, raise_exceptions=False)


def session(lab):
    """HTTPS that trusts the lab's CA. (requests lets REQUESTS_CA_BUNDLE, when set, win over
    a session's own `verify`: trust_env off keeps the lab's CA.)"""
    s = requests.Session()
    s.verify = lab.ca_cert
    s.trust_env = False
    return s


def test_a_user_changes_their_own_password_with_ldap3(lab):
    user1 = lab.user("User1")
    conn = connect(lab, user1["dn"], user1["password"])
    assert conn.bind()
    assert conn.extend.microsoft.modify_password(user1["dn"], "Changed-In-Python-4z", user1["password"])
    assert connect(lab, user1["dn"], "Changed-In-Python-4z").bind()
    old = connect(lab, user1["dn"], user1["password"])
    assert not old.bind()
    assert old.result["result"] == 49 and "data 52e" in old.result["message"]


def test_a_helpdesk_reset_through_graph_is_written_back_to_ad(lab):
    t = lab.info["tenant"]
    # the administrator's token by the password grant, posted as MSAL would post it (MSAL's own
    # username/password flow first asks https://HOST:443/common/userrealm/…, whatever port the
    # authority names: a lab on a random port is not there)
    token = session(lab).post(
        f"{t['authority']}/oauth2/v2.0/token",
        data={"grant_type": "password", "client_id": t["client_id"], "username": t["admin_upn"],
              "password": t["admin_password"], "scope": "https://graph.microsoft.com/.default"},
        timeout=10,
    ).json()
    assert "access_token" in token, token
    graph = session(lab)
    graph.headers["Authorization"] = f"Bearer {token['access_token']}"
    user1 = lab.user("User1")
    me = graph.get(f"{t['graph']}/users/{user1['upn']}", timeout=10).json()
    r = graph.post(
        f"{t['graph']}/users/{me['id']}/authentication/methods/{PASSWORD_METHOD}/resetPassword",
        json={"newPassword": "Reset-From-Python-8m"},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    assert graph.get(r.headers["Location"], timeout=10).json()["status"] == "succeeded"
    assert connect(lab, user1["dn"], "Reset-From-Python-8m").bind(), "AD holds the new password"


def test_the_session_lab_serves_msal_and_graph(session_lab):
    t = session_lab.info["tenant"]
    app = msal.ConfidentialClientApplication(
        t["client_id"],
        client_credential=t["client_secret"],
        authority=t["authority"],
        instance_discovery=False,  # no call to the real cloud
        http_client=session(session_lab),
    )
    token = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in token, token
    users = session(session_lab).get(
        f"{t['graph']}/users",
        params={"$filter": "userPrincipalName eq 'user1@testlab.example'", "$select": "onPremisesSyncEnabled"},
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=10,
    ).json()
    assert users["value"] == [{"onPremisesSyncEnabled": True}]
