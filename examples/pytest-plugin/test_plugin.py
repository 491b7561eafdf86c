"""The pytest plugin the hybrid-lab wheel installs: no conftest, no client library, only the
fixtures and the standard library (CI installs the wheel into a fresh venv and runs this)."""
import json
import os
import socket
import ssl
import sys
import urllib.request

import hybrid_lab


def https_json(lab, url):
    ctx = ssl.create_default_context(cafile=lab.ca_cert)
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        return json.load(r)


def ldaps_certificate(lab):
    """A TLS handshake with the DC's LDAPS port, checked against the lab's CA."""
    host, port = lab.info["adds"]["ldaps"].removeprefix("ldaps://").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=lab.ca_cert)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.getpeercert()


def test_the_lab_is_the_wheels_own_binary():
    assert hybrid_lab.lab_binary().startswith(sys.prefix), (hybrid_lab.lab_binary(), sys.prefix)
    assert "HYBRID_LAB_BIN" not in os.environ


def test_a_fresh_lab_serves_oidc_and_ldaps(hybrid_lab):
    t = hybrid_lab.info["tenant"]
    oidc = https_json(hybrid_lab, f"{t['authority']}/v2.0/.well-known/openid-configuration")
    assert oidc["token_endpoint"].startswith(t["https"])
    assert ldaps_certificate(hybrid_lab)["subject"]
    assert hybrid_lab.user("User1")["upn"] == "user1@testlab.example"


def test_the_session_lab_is_one_lab(hybrid_lab_session, request):
    again = request.getfixturevalue("hybrid_lab_session")
    assert again is hybrid_lab_session
    keys = https_json(hybrid_lab_session, f"{hybrid_lab_session.info['tenant']['authority']}/discovery/v2.0/keys")
    assert keys["keys"][0]["kid"]
