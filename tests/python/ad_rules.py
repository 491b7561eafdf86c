"""AD DS rules as Python's ldap3 sees them (the client many AD scripts use).

Run by tests/tests/adds_python_client.rs against a fresh lab:
    python ad_rules.py '<lab info JSON>'
Prints one line per check and exits non-zero at the first that fails.
"""
import json
import ssl
import sys

from checklist import check, done

from ldap3 import MODIFY_REPLACE, Connection, Server, Tls

info = json.loads(sys.argv[1])
adds = info["adds"]
host, port = adds["ldaps"].removeprefix("ldaps://").rsplit(":", 1)
tls = Tls(ca_certs_file=adds["ca_cert"], validate=ssl.CERT_REQUIRED)
server = Server("localhost", port=int(port), use_ssl=True, tls=tls, get_info=None)
users = {u["sam"]: u for u in info["users"]}


def bind(name, password):
    c = Connection(server, user=name, password=password)
    c.bind()
    return c


def data_code(c):
    msg = c.result.get("message", "")
    return msg.split("data ")[1].split(",")[0] if "data " in msg else ""


# Windows' default minimum password age (a day): testlab follows the writeback tutorial's 0
admin = bind(adds["admin_dn"], adds["admin_password"])
admin.modify(adds["base_dn"], {"minPwdAge": [(MODIFY_REPLACE, ["-864000000000"])]})
if admin.result["result"] != 0:
    print(f"FAIL setting minPwdAge: {admin.result}")
    sys.exit(1)

u1 = users["User1"]
c = bind("TESTLAB\\User1", u1["password"])
check("NETBIOS\\sam bind", c.bound, c.result)
c = bind("TESTLAB\\User1", "wrong")
check("wrong password: 49 / data 52e", c.result["result"] == 49 and data_code(c) == "52e", c.result)

user = bind(u1["upn"], u1["password"])
ms = user.extend.microsoft
ok = ms.modify_password(u1["dn"], "Next-Pass-77", "not-the-old-one")
check("change with a wrong old password: 19 / 00000056", not ok and user.result["result"] == 19 and user.result["message"].startswith("00000056"), user.result)
ok = ms.modify_password(u1["dn"], "Next-Pass-77", u1["password"])
check("change before minPwdAge: 19 / 0000052D (too young)", not ok and user.result["message"].startswith("0000052D") and "too young" in user.result["message"], user.result)

conn_user = users["MSOL_5f2a9c31d7e8"]
connector = bind(conn_user["dn"], conn_user["password"])
ok = connector.extend.microsoft.modify_password(u1["dn"], "Reset-By-Connector-1")
check("the connector resets User1", ok, connector.result)
ok = connector.extend.microsoft.modify_password(users["User2"]["dn"], "Reset-By-Connector-2")
check("but not User2 (protected): 50 / 00000005", not ok and connector.result["result"] == 50 and connector.result["message"].startswith("00000005"), connector.result)
ok = connector.modify(u1["dn"], {"description": [(MODIFY_REPLACE, ["x"])]})
check("and writes nothing else: 50 / 00002098", not ok and connector.result["message"].startswith("00002098"), connector.result)

for _ in range(5):
    bind("TESTLAB\\User1", "wrong")
c = bind("TESTLAB\\User1", "Reset-By-Connector-1")
check("five bad passwords lock: data 775", not c.bound and data_code(c) == "775", c.result)
ok = connector.extend.microsoft.unlock_account(u1["dn"])
check("the connector unlocks (lockoutTime = 0)", ok, connector.result)
c = bind("TESTLAB\\User1", "Reset-By-Connector-1")
check("and User1 binds again", c.bound, c.result)

connector.modify(u1["dn"], {"pwdLastSet": [(MODIFY_REPLACE, ["0"])]})
c = bind("TESTLAB\\User1", "Reset-By-Connector-1")
check("pwdLastSet 0: data 773", not c.bound and data_code(c) == "773", c.result)
admin = bind(adds["admin_dn"], adds["admin_password"])
admin.search(u1["dn"], "(objectClass=*)", attributes=["msDS-User-Account-Control-Computed", "unicodePwd"])
entry = admin.entries[0].entry_attributes_as_dict
check("computed PASSWORD_EXPIRED, no unicodePwd", [str(v) for v in entry.get("msDS-User-Account-Control-Computed", [])] == ["8388608"] and not entry.get("unicodePwd"), entry)

# a schema-aware client: ldap3 reads the rootDSE's subschemaSubentry and CN=Aggregate, and
# formats values by AD's attributeIDs and syntaxes (as Apache Directory Studio does)
import datetime
import uuid

from ldap3 import ALL

aware = Connection(Server("localhost", port=int(port), use_ssl=True, tls=tls, get_info=ALL),
                   user=adds["admin_dn"], password=adds["admin_password"])
aware.bind()
schema = aware.server.schema
check("the schema is read from CN=Aggregate", schema is not None and schema.schema_entry.startswith("CN=Aggregate,CN=Schema,CN=Configuration,"),
      aware.server.info and aware.server.info.other.get("subschemaSubentry"))
guid_type = schema.attribute_types["objectGUID"]
check("objectGUID has AD's attributeID and syntax", guid_type.oid == "1.2.840.113556.1.4.2" and guid_type.syntax == "1.3.6.1.4.1.1466.115.121.1.40" and guid_type.single_value and guid_type.no_user_modification, guid_type)
check("user is structural, below organizationalPerson", schema.object_classes["user"].superior == ["organizationalPerson"] and schema.object_classes["user"].kind == "STRUCTURAL", schema.object_classes["user"])
aware.search(users["User2"]["dn"], "(objectClass=*)", attributes=["objectGUID", "pwdLastSet", "userAccountControl", "objectSid", "whenCreated"])
e = aware.entries[0]
check("objectGUID reads as a GUID", isinstance(e.objectGUID.value, str) and uuid.UUID(e.objectGUID.value), e.objectGUID.raw_values)
check("pwdLastSet reads as a time, userAccountControl as a number", isinstance(e.pwdLastSet.value, datetime.datetime) and isinstance(e.userAccountControl.value, int), (e.pwdLastSet.raw_values, e.userAccountControl.raw_values))
check("objectSid reads as a SID, whenCreated as a time", str(e.objectSid.value).startswith("S-1-5-21-") and isinstance(e.whenCreated.value, datetime.datetime), (e.objectSid.value, e.whenCreated.value))
done()
