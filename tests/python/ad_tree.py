"""A DC's whole tree as Python's LDAP clients meet it (tests/tests/adds_ldap_clients.rs).

    python ad_tree.py '<lab info JSON>'

- ldap3 with get_info=ALL reads the rootDSE and the schema (CN=Aggregate) and then checks
  every attribute a search names against it: the 45 attributes below, which AD tools ask
  for, are all in AD's schema, so none is refused (the lab once published 137 of AD's
  ~1,500 attributes and ldap3 refused tokenGroups, sIDHistory, operatingSystem, ...);
- the NetBIOS name, read the way tools read it: the crossRef under CN=Partitions of the
  Configuration NC whose nCName is the domain;
- python-ldap (OpenLDAP's libldap) at the domain's root with referrals on and off: the
  entries, then one continuation reference per naming context the domain's name covers
  (ForestDnsZones, DomainDnsZones, Configuration), returned as (None, [url]) — what breaks
  scripts that expect every result to be (dn, attrs).
Prints one line per check; exits non-zero at the first that fails.
"""
import json
import ssl
import sys

from checklist import check, done

import ldap
from ldap3 import ALL, BASE, Connection, Server, Tls

info = json.loads(sys.argv[1])
adds = info["adds"]
base = adds["base_dn"]
user1 = next(u for u in info["users"] if u["sam"] == "User1")


COMMON = [
    "accountExpires", "adminCount", "badPasswordTime", "badPwdCount", "cn", "company", "department",
    "description", "displayName", "distinguishedName", "employeeID", "givenName", "homeDirectory",
    "lastLogon", "lastLogonTimestamp", "lockoutTime", "logonCount", "mail", "manager", "memberOf",
    "msDS-SupportedEncryptionTypes", "msDS-User-Account-Control-Computed", "msDS-UserPasswordExpiryTimeComputed",
    "objectCategory", "objectClass", "objectGUID", "objectSid", "operatingSystem", "operatingSystemVersion",
    "primaryGroupID", "proxyAddresses", "pwdLastSet", "sAMAccountName", "sAMAccountType", "servicePrincipalName",
    "sIDHistory", "sn", "thumbnailPhoto", "title", "tokenGroups", "userAccountControl", "userPrincipalName",
    "whenChanged", "whenCreated", "msDS-AllowedToDelegateTo",
]
assert len(COMMON) >= 40 and len(set(COMMON)) == len(COMMON)

host, port = adds["ldaps"].removeprefix("ldaps://").rsplit(":", 1)
tls = Tls(ca_certs_file=adds["ca_cert"], validate=ssl.CERT_REQUIRED)
server = Server("localhost", port=int(port), use_ssl=True, tls=tls, get_info=ALL)
c = Connection(server, user=adds["admin_dn"], password=adds["admin_password"], auto_referrals=False)
check("ldap3 binds and reads the rootDSE and schema", c.bind() and server.schema is not None, c.result)
types = server.schema.attribute_types
check("the schema is AD's whole schema", len(types) >= 1400 and len(server.schema.object_classes) >= 250, len(types))
missing = [a for a in COMMON if a not in types]
check(f"ldap3's schema has all {len(COMMON)} attributes AD tools ask for", not missing, missing)
check("ldap3 accepts a search naming all of them", c.search(user1["dn"], "(objectClass=*)", BASE, attributes=COMMON), c.result)
e = c.entries[0]
check("and reads the lab's values", e.sAMAccountName.value == "User1" and len(e.tokenGroups.values) >= 2, e)
# (binary SIDs, as from a Windows DC: ldap3 formats objectSid by name, not tokenGroups)
domain_users = e.objectSid.value.rsplit("-", 1)[0] + "-513"
from ldap3.protocol.formatters.formatters import format_sid
check("tokenGroups holds Domain Users and BUILTIN\\Users", {format_sid(v) for v in e.tokenGroups.values} >= {domain_users, "S-1-5-32-545"}, e.tokenGroups.values)
nc = server.info.other["configurationNamingContext"][0]
check("the rootDSE lists the five naming contexts", len(server.info.naming_contexts) == 5 and nc in server.info.naming_contexts, server.info.naming_contexts)
c.search(f"CN=Partitions,{nc}", f"(&(objectCategory=crossRef)(nCName={base}))", attributes=["nETBIOSName", "dnsRoot"])
check("the NetBIOS name under CN=Partitions is TESTLAB", [x.nETBIOSName.value for x in c.entries] == [adds["netbios"]] == ["TESTLAB"], c.entries)
c.search(nc.replace("CN=Configuration", "CN=Schema,CN=Configuration"), "(lDAPDisplayName=tokenGroups)", attributes=["attributeID"])
check("the Schema NC has tokenGroups' attributeSchema", [x.attributeID.value for x in c.entries] == ["1.2.840.113556.1.4.1301"], c.entries)

for chase in (0, 1):
    pl = ldap.initialize(f"ldaps://127.0.0.1:{port}")
    pl.set_option(ldap.OPT_X_TLS_CACERTFILE, adds["ca_cert"])
    pl.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    pl.set_option(ldap.OPT_REFERRALS, chase)
    pl.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
    pl.simple_bind_s(adds["admin_dn"], adds["admin_password"])
    found = pl.search_s(base, ldap.SCOPE_SUBTREE, "(sAMAccountName=User1)", ["sAMAccountName"])
    entries = [dn for dn, _ in found if dn is not None]
    refs = [urls[0] for dn, urls in found if dn is None]
    check(f"python-ldap, referrals {'on' if chase else 'off'}: User1 found", entries == [user1["dn"]], found)
    want = [
        f"ldap://ForestDnsZones.{adds['domain']}/DC=ForestDnsZones,{base}",
        f"ldap://DomainDnsZones.{adds['domain']}/DC=DomainDnsZones,{base}",
        f"ldap://{adds['domain']}/CN=Configuration,{base}",
    ]
    check(f"python-ldap, referrals {'on' if chase else 'off'}: three continuation references", refs == want, refs)
    found = pl.search_s(f"OU=Lab Users,{base}", ldap.SCOPE_SUBTREE, "(sAMAccountName=User1)", ["sAMAccountName"])
    check("below the root, no reference", all(dn is not None for dn, _ in found) and len(found) == 1, found)
    pl.unbind_s()

done()
