//! The slice of AD's schema the lab knows: attribute syntaxes and flags, object classes
//! and their chains. Names keep AD's lDAPDisplayName spelling, which is what AD returns
//! whatever case a client asked in.

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// Unicode string, compared case-insensitively.
    String,
    /// 32-bit integer, decimal text on the wire.
    Integer,
    /// 64-bit integer (FILETIME, intervals, USNs), decimal text on the wire.
    LargeInteger,
    Boolean,
    Dn,
    /// Octet string, compared byte for byte.
    Binary,
    /// 16 bytes, GUID in AD's mixed-endian order.
    Guid,
    /// Binary SID.
    Sid,
    GeneralizedTime,
    /// objectClass: OID or lDAPDisplayName, compared case-insensitively.
    Oid,
    /// nTSecurityDescriptor: a self-relative security descriptor (MS-DTYP 2.4.6).
    SecurityDescriptor,
}

impl Syntax {
    /// The LDAP syntax OID AD publishes for it in attributeTypes (MS-ADTS 3.1.1.2.2.2).
    pub fn ldap_oid(self) -> &'static str {
        match self {
            String => "1.3.6.1.4.1.1466.115.121.1.15",
            Integer => "1.3.6.1.4.1.1466.115.121.1.27",
            LargeInteger => "1.2.840.113556.1.4.906",
            Boolean => "1.3.6.1.4.1.1466.115.121.1.7",
            Dn => "1.3.6.1.4.1.1466.115.121.1.12",
            Binary | Guid | Sid => "1.3.6.1.4.1.1466.115.121.1.40",
            GeneralizedTime => "1.3.6.1.4.1.1466.115.121.1.24",
            Oid => "1.3.6.1.4.1.1466.115.121.1.38",
            SecurityDescriptor => "1.2.840.113556.1.4.907",
        }
    }

    /// AD's attributeSyntax (the 2.5.5.x the schema object stores).
    pub fn attribute_syntax(self) -> &'static str {
        match self {
            String => "2.5.5.12",
            Integer => "2.5.5.9",
            LargeInteger => "2.5.5.16",
            Boolean => "2.5.5.8",
            Dn => "2.5.5.1",
            Binary | Guid => "2.5.5.10",
            Sid => "2.5.5.17",
            GeneralizedTime => "2.5.5.11",
            Oid => "2.5.5.2",
            SecurityDescriptor => "2.5.5.15",
        }
    }
}

/// Attribute flags.
pub const SINGLE: u8 = 1;
/// Kept by the DC itself; clients cannot write it (`objectGUID`, `uSNChanged`, ...).
pub const SYSTEM: u8 = 2;
/// Computed on read, returned only when asked for by name or by `+`.
pub const CONSTRUCTED: u8 = 4;
/// Never returned by a search (`unicodePwd`).
pub const SECRET: u8 = 8;
/// AD's systemOnly: published as NO-USER-MODIFICATION (the lab's own SYSTEM flag says what
/// it refuses, which is not always the same set).
pub const N: u8 = 16;

#[derive(Debug)]
pub struct AttrDef {
    pub name: &'static str,
    /// AD's attributeID.
    pub oid: &'static str,
    pub syntax: Syntax,
    pub flags: u8,
}

impl AttrDef {
    pub fn single(&self) -> bool {
        self.flags & SINGLE != 0
    }
    pub fn system(&self) -> bool {
        self.flags & SYSTEM != 0
    }
    pub fn constructed(&self) -> bool {
        self.flags & CONSTRUCTED != 0
    }
    pub fn secret(&self) -> bool {
        self.flags & SECRET != 0
    }
    pub fn binary(&self) -> bool {
        matches!(self.syntax, Syntax::Binary | Syntax::Guid | Syntax::Sid | Syntax::SecurityDescriptor)
    }

    /// The attributeTypes value AD publishes for it, in AD's spelling (quoted syntax OID).
    pub fn description(&self) -> std::string::String {
        let mut s = format!("( {} NAME '{}' SYNTAX '{}'", self.oid, self.name, self.syntax.ldap_oid());
        if self.single() {
            s.push_str(" SINGLE-VALUE");
        }
        if self.flags & N != 0 {
            s.push_str(" NO-USER-MODIFICATION");
        }
        s.push_str(" )");
        s
    }
}

use Syntax::*;

const S: u8 = SINGLE;
const SS: u8 = SINGLE | SYSTEM;
const C: u8 = SINGLE | CONSTRUCTED | SYSTEM;

macro_rules! attrs {
    ($($name:literal $oid:literal $syntax:ident $flags:expr;)*) => {
        &[$(AttrDef { name: $name, oid: $oid, syntax: $syntax, flags: $flags },)*]
    };
}

const ATTRIBUTES: &[AttrDef] = attrs! {
    "objectClass" "2.5.4.0" Oid N;
    "cn" "2.5.4.3" String S;
    "name" "1.2.840.113556.1.4.1" String SS | N;
    "ou" "2.5.4.11" String 0;
    "dc" "0.9.2342.19200300.100.1.25" String S;
    "distinguishedName" "2.5.4.49" Dn SS | N;
    "objectGUID" "1.2.840.113556.1.4.2" Guid SS | N;
    "objectSid" "1.2.840.113556.1.4.146" Sid SS | N;
    "objectCategory" "1.2.840.113556.1.4.782" Dn S;
    "instanceType" "1.2.840.113556.1.2.1" Integer SS | N;
    "whenCreated" "1.2.840.113556.1.2.2" GeneralizedTime SS | N;
    "whenChanged" "1.2.840.113556.1.2.3" GeneralizedTime SS | N;
    "uSNCreated" "1.2.840.113556.1.2.19" LargeInteger SS | N;
    "uSNChanged" "1.2.840.113556.1.2.120" LargeInteger SS | N;
    "sAMAccountName" "1.2.840.113556.1.4.221" String S;
    "sAMAccountType" "1.2.840.113556.1.4.302" Integer SS;
    "userPrincipalName" "1.2.840.113556.1.4.656" String S;
    "mS-DS-ConsistencyGuid" "1.2.840.113556.1.4.1360" Binary S;
    "displayName" "1.2.840.113556.1.2.13" String S;
    "givenName" "2.5.4.42" String S;
    "sn" "2.5.4.4" String S;
    "initials" "2.5.4.43" String S;
    "description" "2.5.4.13" String 0;
    "mail" "0.9.2342.19200300.100.1.3" String S;
    "proxyAddresses" "1.2.840.113556.1.2.210" String 0;
    "telephoneNumber" "2.5.4.20" String S;
    "mobile" "0.9.2342.19200300.100.1.41" String S;
    "otherTelephone" "1.2.840.113556.1.2.18" String 0;
    "title" "2.5.4.12" String S;
    "department" "1.2.840.113556.1.2.141" String S;
    "company" "1.2.840.113556.1.2.146" String S;
    "manager" "0.9.2342.19200300.100.1.10" Dn S;
    "directReports" "1.2.840.113556.1.2.436" Dn SYSTEM | N;
    "employeeID" "1.2.840.113556.1.4.35" String S;
    "employeeNumber" "1.2.840.113556.1.2.610" String S;
    "employeeType" "1.2.840.113556.1.2.613" String S;
    "physicalDeliveryOfficeName" "2.5.4.19" String S;
    "streetAddress" "1.2.840.113556.1.2.256" String S;
    "l" "2.5.4.7" String S;
    "st" "2.5.4.8" String S;
    "postalCode" "2.5.4.17" String S;
    "c" "2.5.4.6" String S;
    "co" "1.2.840.113556.1.2.131" String S;
    "info" "1.2.840.113556.1.2.81" String S;
    "comment" "1.2.840.113556.1.4.156" String S;
    "wWWHomePage" "1.2.840.113556.1.2.464" String S;
    "homeDirectory" "1.2.840.113556.1.4.44" String S;
    "homeDrive" "1.2.840.113556.1.4.45" String S;
    "scriptPath" "1.2.840.113556.1.4.62" String S;
    "profilePath" "1.2.840.113556.1.4.139" String S;
    "userWorkstations" "1.2.840.113556.1.4.86" String S;
    "logonHours" "1.2.840.113556.1.4.64" Binary S;
    "servicePrincipalName" "1.2.840.113556.1.4.771" String 0;
    "dNSHostName" "1.2.840.113556.1.4.619" String S;
    "thumbnailPhoto" "2.16.840.1.113730.3.1.35" Binary S;
    "jpegPhoto" "0.9.2342.19200300.100.1.60" Binary 0;
    "userCertificate" "2.5.4.36" Binary 0;
    "seeAlso" "2.5.4.34" Dn 0;
    "managedBy" "1.2.840.113556.1.4.653" Dn S;
    "member" "2.5.4.31" Dn 0;
    "memberOf" "1.2.840.113556.1.2.102" Dn SYSTEM | N;
    "groupType" "1.2.840.113556.1.4.750" Integer S;
    "primaryGroupID" "1.2.840.113556.1.4.98" Integer S;
    "adminCount" "1.2.840.113556.1.4.150" Integer S;
    "userAccountControl" "1.2.840.113556.1.4.8" Integer S;
    "pwdLastSet" "1.2.840.113556.1.4.96" LargeInteger S;
    "accountExpires" "1.2.840.113556.1.4.159" LargeInteger S;
    "badPwdCount" "1.2.840.113556.1.4.12" Integer S;
    "badPasswordTime" "1.2.840.113556.1.4.49" LargeInteger S;
    "lockoutTime" "1.2.840.113556.1.4.662" LargeInteger S;
    "lastLogon" "1.2.840.113556.1.4.52" LargeInteger S;
    "lastLogoff" "1.2.840.113556.1.4.51" LargeInteger S;
    "lastLogonTimestamp" "1.2.840.113556.1.4.1696" LargeInteger S;
    "logonCount" "1.2.840.113556.1.4.169" Integer S;
    "countryCode" "1.2.840.113556.1.4.25" Integer S;
    "codePage" "1.2.840.113556.1.4.16" Integer S;
    "isCriticalSystemObject" "1.2.840.113556.1.4.868" Boolean S;
    "isDeleted" "1.2.840.113556.1.2.48" Boolean SS | N;
    "lastKnownParent" "1.2.840.113556.1.4.781" Dn SS;
    "showInAdvancedViewOnly" "1.2.840.113556.1.2.169" Boolean S;
    "systemFlags" "1.2.840.113556.1.4.375" Integer S | N;
    "adminDescription" "1.2.840.113556.1.2.226" String S;
    "extensionAttribute1" "1.2.840.113556.1.2.423" String S;
    "extensionAttribute2" "1.2.840.113556.1.2.424" String S;
    "extensionAttribute3" "1.2.840.113556.1.2.425" String S;
    "extensionAttribute4" "1.2.840.113556.1.2.426" String S;
    "extensionAttribute5" "1.2.840.113556.1.2.427" String S;
    "extensionAttribute6" "1.2.840.113556.1.2.428" String S;
    "extensionAttribute7" "1.2.840.113556.1.2.429" String S;
    "extensionAttribute8" "1.2.840.113556.1.2.430" String S;
    "extensionAttribute9" "1.2.840.113556.1.2.431" String S;
    "extensionAttribute10" "1.2.840.113556.1.2.432" String S;
    "extensionAttribute11" "1.2.840.113556.1.2.599" String S;
    "extensionAttribute12" "1.2.840.113556.1.2.600" String S;
    "extensionAttribute13" "1.2.840.113556.1.2.601" String S;
    "extensionAttribute14" "1.2.840.113556.1.2.602" String S;
    "extensionAttribute15" "1.2.840.113556.1.2.603" String S;
    // domain object: the password and lockout policy
    "minPwdLength" "1.2.840.113556.1.4.79" Integer S;
    "pwdProperties" "1.2.840.113556.1.4.93" Integer S;
    "pwdHistoryLength" "1.2.840.113556.1.4.95" Integer S;
    "minPwdAge" "1.2.840.113556.1.4.78" LargeInteger S;
    "maxPwdAge" "1.2.840.113556.1.4.74" LargeInteger S;
    "lockoutThreshold" "1.2.840.113556.1.4.73" Integer S;
    "lockoutDuration" "1.2.840.113556.1.4.60" LargeInteger S;
    "lockOutObservationWindow" "1.2.840.113556.1.4.61" LargeInteger S;
    "forceLogoff" "1.2.840.113556.1.4.39" LargeInteger S;
    "msDS-Behavior-Version" "1.2.840.113556.1.4.1459" Integer S | N;
    "nTMixedDomain" "1.2.840.113556.1.4.357" Integer S;
    "creationTime" "1.2.840.113556.1.4.26" LargeInteger S;
    "modifiedCount" "1.2.840.113556.1.4.168" LargeInteger S;
    // fine-grained password policies (msDS-PasswordSettings)
    "msDS-PasswordSettingsPrecedence" "1.2.840.113556.1.4.2023" Integer S;
    "msDS-PasswordReversibleEncryptionEnabled" "1.2.840.113556.1.4.2016" Boolean S;
    "msDS-PasswordHistoryLength" "1.2.840.113556.1.4.2014" Integer S;
    "msDS-PasswordComplexityEnabled" "1.2.840.113556.1.4.2015" Boolean S;
    "msDS-MinimumPasswordLength" "1.2.840.113556.1.4.2013" Integer S;
    "msDS-MinimumPasswordAge" "1.2.840.113556.1.4.2012" LargeInteger S;
    "msDS-MaximumPasswordAge" "1.2.840.113556.1.4.2011" LargeInteger S;
    "msDS-LockoutThreshold" "1.2.840.113556.1.4.2019" Integer S;
    "msDS-LockoutObservationWindow" "1.2.840.113556.1.4.2017" LargeInteger S;
    "msDS-LockoutDuration" "1.2.840.113556.1.4.2018" LargeInteger S;
    "msDS-PSOAppliesTo" "1.2.840.113556.1.4.2020" Dn 0;
    // secrets: written, never read
    "unicodePwd" "1.2.840.113556.1.4.90" Binary SINGLE | SECRET;
    "userPassword" "2.5.4.35" Binary SECRET;
    "dBCSPwd" "1.2.840.113556.1.4.55" Binary SINGLE | SECRET | SYSTEM;
    "ntPwdHistory" "1.2.840.113556.1.4.94" Binary SECRET | SYSTEM;
    "supplementalCredentials" "1.2.840.113556.1.4.125" Binary SECRET | SYSTEM;
    // constructed on read
    "msDS-User-Account-Control-Computed" "1.2.840.113556.1.4.1460" Integer C;
    "msDS-UserPasswordExpiryTimeComputed" "1.2.840.113556.1.4.1996" LargeInteger C;
    "msDS-ResultantPSO" "1.2.840.113556.1.4.2022" Dn C | N;
    "canonicalName" "1.2.840.113556.1.4.916" String CONSTRUCTED | SYSTEM | N;
    "createTimeStamp" "2.5.18.1" GeneralizedTime C | N;
    "modifyTimeStamp" "2.5.18.2" GeneralizedTime C | N;
    "structuralObjectClass" "2.5.21.9" Oid CONSTRUCTED | SYSTEM;
    "subSchemaSubEntry" "2.5.18.10" Dn CONSTRUCTED | SYSTEM | N;
    // a principal's groups, nested (a base search only)
    "tokenGroups" "1.2.840.113556.1.4.1301" Sid CONSTRUCTED | SYSTEM;
    "tokenGroupsGlobalAndUniversal" "1.2.840.113556.1.4.1418" Sid CONSTRUCTED | SYSTEM;
    "tokenGroupsNoGCAcceptable" "1.2.840.113556.1.4.1303" Sid CONSTRUCTED | SYSTEM;
    // the security descriptor: read and written through the access model (crate::security)
    "nTSecurityDescriptor" "1.2.840.113556.1.2.281" SecurityDescriptor SINGLE | CONSTRUCTED;
    // the subschema entry's (CN=Aggregate): constructed from this table
    "attributeTypes" "2.5.21.5" String CONSTRUCTED | SYSTEM | N;
    "objectClasses" "2.5.21.6" String CONSTRUCTED | SYSTEM | N;
    "dITContentRules" "2.5.21.2" String CONSTRUCTED | SYSTEM | N;
};

type NameIndex = HashMap<std::string::String, u16, foldhash::fast::RandomState>;

fn index() -> &'static NameIndex {
    static INDEX: OnceLock<NameIndex> = OnceLock::new();
    INDEX.get_or_init(|| ATTRIBUTES.iter().enumerate().map(|(i, a)| (a.name.to_ascii_lowercase(), i as u16)).collect())
}

/// An attribute's id worked out at compile time, for the hot paths (a bind reads a dozen
/// attributes; by name each read is a lower-casing and a hash). Naming an attribute the
/// schema does not have fails the build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrId(pub(crate) u16);

impl AttrId {
    pub const fn of(name: &str) -> AttrId {
        let n = name.as_bytes();
        let mut i = 0;
        while i < ATTRIBUTES.len() {
            let a = ATTRIBUTES[i].name.as_bytes();
            if a.len() == n.len() {
                let mut j = 0;
                while j < a.len() && a[j].eq_ignore_ascii_case(&n[j]) {
                    j += 1;
                }
                if j == a.len() {
                    return AttrId(i as u16);
                }
            }
            i += 1;
        }
        panic!("not an attribute of the lab's schema")
    }
}

/// An attribute as the code names it: by text (looked up, any case) or by [`AttrId`].
pub trait AttrName {
    fn id(&self) -> Option<u16>;
}

impl<T: AsRef<str> + ?Sized> AttrName for &T {
    fn id(&self) -> Option<u16> {
        attribute_id((*self).as_ref())
    }
}

impl AttrName for AttrId {
    fn id(&self) -> Option<u16> {
        Some(self.0)
    }
}

/// The attribute's position in the lab's schema: a small id objects store instead of names.
pub fn attribute_id(name: &str) -> Option<u16> {
    // Lower-case into a stack buffer: this runs for every attribute of every operation.
    let mut buf = [0u8; 64];
    let b = name.as_bytes();
    if b.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(b) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..b.len()]).ok()?;
    index().get(lower).copied()
}

/// Looks an attribute up by any case of its name; `None` for attributes AD's schema (as far
/// as the lab knows it) does not have.
pub fn attribute(name: &str) -> Option<&'static AttrDef> {
    attribute_id(name).map(|i| &ATTRIBUTES[i as usize])
}

/// Any attribute AD's schema publishes: the lab's own definition, else Microsoft's (the
/// Configuration and Schema NCs' objects hold attributes the lab keeps no values for).
pub fn published(name: &str) -> Option<&'static AttrDef> {
    attribute(name).or_else(|| crate::ad_schema::attribute_def(name))
}

pub fn attribute_by_id(id: u16) -> &'static AttrDef {
    &ATTRIBUTES[id as usize]
}

pub fn attributes() -> &'static [AttrDef] {
    ATTRIBUTES
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassKind {
    Structural,
    Abstract,
    Auxiliary,
}

use ClassKind::{Abstract, Auxiliary, Structural};

/// A class as AD's schema defines it. `aux`, `must` and `may` list only what the lab knows
/// (AD's classes name many more attributes).
#[derive(Debug)]
pub struct ClassDef {
    pub name: &'static str,
    /// AD's governsID.
    pub oid: &'static str,
    pub kind: ClassKind,
    /// Superclasses from `top` down to this class, as AD stores objectClass.
    pub chain: &'static [&'static str],
    /// The CN of the default objectCategory under the schema container.
    pub category: &'static str,
    /// Auxiliary classes AD attaches to it (its dITContentRule).
    pub aux: &'static [&'static str],
    pub must: &'static [&'static str],
    pub may: &'static [&'static str],
}

impl ClassDef {
    /// The objectClasses value AD publishes for it.
    pub fn description(&self) -> std::string::String {
        let mut s = format!("( {} NAME '{}'", self.oid, self.name);
        if self.name != "top" {
            s.push_str(&format!(" SUP {}", self.chain[self.chain.len() - 2]));
        }
        s.push_str(match self.kind {
            Structural => " STRUCTURAL",
            Abstract => " ABSTRACT",
            Auxiliary => " AUXILIARY",
        });
        push_list(&mut s, "MUST", self.must);
        push_list(&mut s, "MAY", self.may);
        s.push_str(" )");
        s
    }

    /// Its dITContentRules value (the auxiliary classes and what they bring), when it has any.
    pub fn content_rule(&self) -> Option<std::string::String> {
        if self.aux.is_empty() {
            return None;
        }
        let aux = |f: fn(&ClassDef) -> &'static [&'static str]| -> Vec<&'static str> {
            self.aux.iter().filter_map(|a| described_class(a)).flat_map(f).copied().collect()
        };
        let mut s = format!("( {} NAME '{}' AUX ( {} )", self.oid, self.name, self.aux.join(" $ "));
        push_list(&mut s, "MUST", &aux(|c| c.must));
        push_list(&mut s, "MAY", &aux(|c| c.may));
        s.push_str(" )");
        Some(s)
    }
}

/// ` MUST (a $ b )`, AD's spacing.
fn push_list(s: &mut std::string::String, key: &str, names: &[&str]) {
    if !names.is_empty() {
        s.push_str(&format!(" {key} ({} )", names.join(" $ ")));
    }
}

/// The classes objects can be made of.
static CLASSES: &[ClassDef] = &[
    ClassDef {
        name: "user",
        oid: "1.2.840.113556.1.5.9",
        kind: Structural,
        chain: &["top", "person", "organizationalPerson", "user"],
        category: "Person",
        aux: &["securityPrincipal", "mailRecipient"],
        must: &[],
        may: &[
            "jpegPhoto",
            "givenName",
            "employeeType",
            "employeeNumber",
            "displayName",
            "msDS-ResultantPSO",
            "msDS-UserPasswordExpiryTimeComputed",
            "mobile",
            "manager",
            "mail",
            "initials",
            "userCertificate",
            "userWorkstations",
            "logonHours",
            "userPrincipalName",
            "userAccountControl",
            "unicodePwd",
            "servicePrincipalName",
            "scriptPath",
            "pwdLastSet",
            "profilePath",
            "primaryGroupID",
            "ntPwdHistory",
            "msDS-User-Account-Control-Computed",
            "logonCount",
            "lockoutTime",
            "lastLogonTimestamp",
            "lastLogon",
            "lastLogoff",
            "homeDrive",
            "homeDirectory",
            "dBCSPwd",
            "codePage",
            "badPwdCount",
            "badPasswordTime",
            "adminCount",
            "accountExpires",
        ],
    },
    ClassDef {
        name: "computer",
        oid: "1.2.840.113556.1.3.30",
        kind: Structural,
        chain: &["top", "person", "organizationalPerson", "user", "computer"],
        category: "Computer",
        aux: &[],
        must: &[],
        may: &["managedBy", "dNSHostName", "cn"],
    },
    // a group managed service account (Cloud Sync's provAgentgMSA$): a computer whose password
    // the DC manages (msDS-ManagedPassword is not modelled: the lab hands it to the agent)
    ClassDef {
        name: "msDS-GroupManagedServiceAccount",
        oid: "1.2.840.113556.1.5.282",
        kind: Structural,
        chain: &["top", "person", "organizationalPerson", "user", "computer", "msDS-GroupManagedServiceAccount"],
        category: "ms-DS-Group-Managed-Service-Account",
        aux: &[],
        must: &[],
        may: &[],
    },
    ClassDef {
        name: "group",
        oid: "1.2.840.113556.1.5.8",
        kind: Structural,
        chain: &["top", "group"],
        category: "Group",
        aux: &["mailRecipient", "securityPrincipal"],
        must: &["groupType"],
        may: &["member", "managedBy", "mail", "adminCount"],
    },
    ClassDef {
        name: "organizationalUnit",
        oid: "2.5.6.5",
        kind: Structural,
        chain: &["top", "organizationalUnit"],
        category: "Organizational-Unit",
        aux: &[],
        must: &["ou"],
        may: &[
            "userPassword",
            "co",
            "telephoneNumber",
            "st",
            "seeAlso",
            "postalCode",
            "physicalDeliveryOfficeName",
            "managedBy",
            "l",
            "countryCode",
            "c",
        ],
    },
    ClassDef {
        name: "container",
        oid: "1.2.840.113556.1.3.23",
        kind: Structural,
        chain: &["top", "container"],
        category: "Container",
        aux: &[],
        must: &["cn"],
        may: &[],
    },
    ClassDef {
        name: "domainDNS",
        oid: "1.2.840.113556.1.5.67",
        kind: Structural,
        chain: &["top", "domain", "domainDNS"],
        category: "Domain-DNS",
        aux: &["samDomain"],
        must: &[],
        may: &["msDS-Behavior-Version", "managedBy"],
    },
    ClassDef {
        name: "builtinDomain",
        oid: "1.2.840.113556.1.5.4",
        kind: Structural,
        chain: &["top", "builtinDomain"],
        category: "Builtin-Domain",
        aux: &["samDomainBase"],
        must: &[],
        may: &[],
    },
    ClassDef {
        name: "msDS-PasswordSettingsContainer",
        oid: "1.2.840.113556.1.5.256",
        kind: Structural,
        chain: &["top", "msDS-PasswordSettingsContainer"],
        category: "ms-DS-Password-Settings-Container",
        aux: &[],
        must: &[],
        may: &[],
    },
    ClassDef {
        name: "msDS-PasswordSettings",
        oid: "1.2.840.113556.1.5.255",
        kind: Structural,
        chain: &["top", "msDS-PasswordSettings"],
        category: "ms-DS-Password-Settings",
        aux: &[],
        must: &[
            "msDS-MaximumPasswordAge",
            "msDS-MinimumPasswordAge",
            "msDS-MinimumPasswordLength",
            "msDS-PasswordComplexityEnabled",
            "msDS-LockoutObservationWindow",
            "msDS-LockoutDuration",
            "msDS-LockoutThreshold",
            "msDS-PasswordReversibleEncryptionEnabled",
            "msDS-PasswordSettingsPrecedence",
            "msDS-PasswordHistoryLength",
        ],
        may: &["msDS-PSOAppliesTo"],
    },
];

/// The others the lab's objects name or inherit from, published in the schema only.
static OTHER_CLASSES: &[ClassDef] = &[
    ClassDef {
        name: "top",
        oid: "2.5.6.0",
        kind: Abstract,
        chain: &["top"],
        category: "Top",
        aux: &[],
        must: &["objectClass", "objectCategory", "nTSecurityDescriptor", "instanceType"],
        may: &[
            "wWWHomePage",
            "whenCreated",
            "whenChanged",
            "uSNCreated",
            "uSNChanged",
            "systemFlags",
            "subSchemaSubEntry",
            "structuralObjectClass",
            "directReports",
            "name",
            "proxyAddresses",
            "objectGUID",
            "distinguishedName",
            "mS-DS-ConsistencyGuid",
            "modifyTimeStamp",
            "lastKnownParent",
            "memberOf",
            "isDeleted",
            "isCriticalSystemObject",
            "showInAdvancedViewOnly",
            "displayName",
            "description",
            "createTimeStamp",
            "cn",
            "canonicalName",
            "adminDescription",
        ],
    },
    ClassDef {
        name: "person",
        oid: "2.5.6.6",
        kind: Structural,
        chain: &["top", "person"],
        category: "Person",
        aux: &[],
        must: &["cn"],
        may: &["userPassword", "telephoneNumber", "sn", "seeAlso"],
    },
    ClassDef {
        name: "organizationalPerson",
        oid: "2.5.6.7",
        kind: Structural,
        chain: &["top", "person", "organizationalPerson"],
        category: "Organizational-Person",
        aux: &[],
        must: &[],
        may: &[
            "comment",
            "title",
            "co",
            "st",
            "postalCode",
            "thumbnailPhoto",
            "physicalDeliveryOfficeName",
            "otherTelephone",
            "mobile",
            "ou",
            "manager",
            "l",
            "initials",
            "givenName",
            "employeeID",
            "mail",
            "department",
            "c",
            "countryCode",
            "company",
            "streetAddress",
        ],
    },
    ClassDef {
        name: "domain",
        oid: "1.2.840.113556.1.5.66",
        kind: Abstract,
        chain: &["top", "domain"],
        category: "Domain",
        aux: &[],
        must: &["dc"],
        may: &[],
    },
    ClassDef {
        name: "securityPrincipal",
        oid: "1.2.840.113556.1.5.6",
        kind: Auxiliary,
        chain: &["top", "securityPrincipal"],
        category: "Security-Principal",
        aux: &[],
        must: &["sAMAccountName", "objectSid"],
        may: &["supplementalCredentials", "sAMAccountType", "nTSecurityDescriptor"],
    },
    ClassDef {
        name: "mailRecipient",
        oid: "1.2.840.113556.1.3.46",
        kind: Auxiliary,
        chain: &["top", "mailRecipient"],
        category: "Mail-Recipient",
        aux: &[],
        must: &["cn"],
        may: &["userCertificate", "telephoneNumber", "info"],
    },
    ClassDef {
        name: "samDomainBase",
        oid: "1.2.840.113556.1.5.2",
        kind: Auxiliary,
        chain: &["top", "samDomainBase"],
        category: "Sam-Domain-Base",
        aux: &[],
        must: &[],
        may: &[
            "pwdProperties",
            "pwdHistoryLength",
            "objectSid",
            "nTSecurityDescriptor",
            "modifiedCount",
            "minPwdLength",
            "minPwdAge",
            "maxPwdAge",
            "lockoutThreshold",
            "lockoutDuration",
            "lockOutObservationWindow",
            "forceLogoff",
            "creationTime",
        ],
    },
    ClassDef {
        name: "samDomain",
        oid: "1.2.840.113556.1.5.3",
        kind: Auxiliary,
        chain: &["top", "samDomain"],
        category: "Sam-Domain",
        aux: &["samDomainBase"],
        must: &[],
        may: &[
            "pwdProperties",
            "pwdHistoryLength",
            "nTMixedDomain",
            "minPwdLength",
            "minPwdAge",
            "maxPwdAge",
            "lockoutThreshold",
            "lockoutDuration",
            "lockOutObservationWindow",
            "description",
            "creationTime",
        ],
    },
    ClassDef {
        name: "subSchema",
        oid: "2.5.20.1",
        kind: Structural,
        chain: &["top", "subSchema"],
        category: "SubSchema",
        aux: &[],
        must: &[],
        may: &["objectClasses", "modifyTimeStamp", "dITContentRules", "attributeTypes"],
    },
];

/// Superclasses that may be named in an add alongside the structural class.
const ABSTRACT_OR_AUXILIARY: &[&str] = &["top", "person", "organizationalPerson", "domain"];

pub fn class(name: &str) -> Option<&'static ClassDef> {
    CLASSES.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

pub fn is_superclass_name(name: &str) -> bool {
    ABSTRACT_OR_AUXILIARY.iter().any(|c| c.eq_ignore_ascii_case(name))
}

pub fn classes() -> &'static [ClassDef] {
    CLASSES
}

/// Every class the schema publishes: the structural ones objects are made of and the
/// abstract and auxiliary ones they inherit.
pub fn described_classes() -> impl Iterator<Item = &'static ClassDef> {
    CLASSES.iter().chain(OTHER_CLASSES)
}

fn described_class(name: &str) -> Option<&'static ClassDef> {
    described_classes().find(|c| c.name == name)
}

/// The class whose default objectCategory has this lDAPDisplayName or CN: AD lets filters say
/// `(objectCategory=person)` for `CN=Person,CN=Schema,...`.
pub fn category_by_short_name(name: &str) -> Option<&'static str> {
    CLASSES
        .iter()
        .find(|c| c.category.eq_ignore_ascii_case(name) || c.name.eq_ignore_ascii_case(name))
        .map(|c| c.category)
        .or_else(|| name.eq_ignore_ascii_case("person").then_some("Person"))
        .or_else(|| {
            // any class of AD's schema: its defaultObjectCategory's CN (crossRef → Cross-Ref)
            let c = crate::ad_schema::find(name).filter(|c| c.is_class())?;
            c.get("defaultObjectCategory")?.strip_prefix("CN=")?.split(',').next()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_keep_ads_spelling() {
        assert_eq!(attribute("SAMACCOUNTNAME").unwrap().name, "sAMAccountName");
        assert!(attribute("unicodepwd").unwrap().secret());
        assert!(attribute("objectguid").unwrap().binary());
        assert!(attribute("noSuchThing").is_none());
        assert_eq!(class("USER").unwrap().chain.last(), Some(&"user"));
        assert_eq!(category_by_short_name("person"), Some("Person"));
    }

    #[test]
    fn no_attribute_is_defined_twice() {
        assert_eq!(index().len(), ATTRIBUTES.len());
    }

    #[test]
    fn descriptions_read_as_ads() {
        // as Samba 4.17 answers for CN=Aggregate (Windows writes them the same way)
        let a = |n: &str| attribute(n).unwrap().description();
        assert_eq!(
            a("sAMAccountName"),
            "( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' SINGLE-VALUE )"
        );
        assert_eq!(
            a("objectGUID"),
            "( 1.2.840.113556.1.4.2 NAME 'objectGUID' SYNTAX '1.3.6.1.4.1.1466.115.121.1.40' SINGLE-VALUE NO-USER-MODIFICATION )"
        );
        assert_eq!(a("memberOf"), "( 1.2.840.113556.1.2.102 NAME 'memberOf' SYNTAX '1.3.6.1.4.1.1466.115.121.1.12' NO-USER-MODIFICATION )");
        assert_eq!(a("pwdLastSet"), "( 1.2.840.113556.1.4.96 NAME 'pwdLastSet' SYNTAX '1.2.840.113556.1.4.906' SINGLE-VALUE )");
        assert_eq!(
            a("nTSecurityDescriptor"),
            "( 1.2.840.113556.1.2.281 NAME 'nTSecurityDescriptor' SYNTAX '1.2.840.113556.1.4.907' SINGLE-VALUE )"
        );
        let person = described_class("person").unwrap().description();
        assert_eq!(person, "( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST (cn ) MAY (userPassword $ telephoneNumber $ sn $ seeAlso ) )");
        let top = described_class("top").unwrap().description();
        assert!(
            top.starts_with(
                "( 2.5.6.0 NAME 'top' ABSTRACT MUST (objectClass $ objectCategory $ nTSecurityDescriptor $ instanceType ) MAY ("
            ),
            "{top}"
        );
        let rule = class("user").unwrap().content_rule().unwrap();
        assert!(
            rule.starts_with(
                "( 1.2.840.113556.1.5.9 NAME 'user' AUX ( securityPrincipal $ mailRecipient ) MUST (sAMAccountName $ objectSid $ cn ) MAY ("
            ),
            "{rule}"
        );
    }

    #[test]
    fn classes_name_only_what_the_schema_holds() {
        for c in described_classes() {
            for n in c.must.iter().chain(c.may) {
                assert_eq!(attribute(n).map(|a| a.name), Some(*n), "{}: {n}", c.name);
            }
            for x in c.aux.iter().chain(c.chain) {
                assert!(described_class(x).is_some(), "{}: {x}", c.name);
            }
        }
        assert!(class("top").is_none() && class("subSchema").is_none(), "objects are made of structural classes only");
    }
}
