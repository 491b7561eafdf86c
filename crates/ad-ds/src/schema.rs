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
}

/// Attribute flags.
pub const SINGLE: u8 = 1;
/// Kept by the DC itself; clients cannot write it (`objectGUID`, `uSNChanged`, ...).
pub const SYSTEM: u8 = 2;
/// Computed on read, returned only when asked for by name or by `+`.
pub const CONSTRUCTED: u8 = 4;
/// Never returned by a search (`unicodePwd`).
pub const SECRET: u8 = 8;

#[derive(Debug)]
pub struct AttrDef {
    pub name: &'static str,
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
        matches!(self.syntax, Syntax::Binary | Syntax::Guid | Syntax::Sid)
    }
}

use Syntax::*;

const S: u8 = SINGLE;
const SS: u8 = SINGLE | SYSTEM;
const C: u8 = SINGLE | CONSTRUCTED | SYSTEM;

macro_rules! attrs {
    ($($name:literal $syntax:ident $flags:expr;)*) => {
        &[$(AttrDef { name: $name, syntax: $syntax, flags: $flags },)*]
    };
}

static ATTRIBUTES: &[AttrDef] = attrs! {
    "objectClass" Oid 0;
    "cn" String S;
    "name" String SS;
    "ou" String 0;
    "dc" String S;
    "distinguishedName" Dn SS;
    "objectGUID" Guid SS;
    "objectSid" Sid SS;
    "objectCategory" Dn S;
    "instanceType" Integer SS;
    "whenCreated" GeneralizedTime SS;
    "whenChanged" GeneralizedTime SS;
    "uSNCreated" LargeInteger SS;
    "uSNChanged" LargeInteger SS;
    "sAMAccountName" String S;
    "sAMAccountType" Integer SS;
    "userPrincipalName" String S;
    "mS-DS-ConsistencyGuid" Binary S;
    "displayName" String S;
    "givenName" String S;
    "sn" String S;
    "initials" String S;
    "description" String 0;
    "mail" String S;
    "proxyAddresses" String 0;
    "telephoneNumber" String S;
    "mobile" String S;
    "otherTelephone" String 0;
    "title" String S;
    "department" String S;
    "company" String S;
    "manager" Dn S;
    "directReports" Dn SYSTEM;
    "employeeID" String S;
    "employeeNumber" String S;
    "employeeType" String S;
    "physicalDeliveryOfficeName" String S;
    "streetAddress" String S;
    "l" String S;
    "st" String S;
    "postalCode" String S;
    "c" String S;
    "co" String S;
    "info" String S;
    "comment" String S;
    "wWWHomePage" String S;
    "homeDirectory" String S;
    "homeDrive" String S;
    "scriptPath" String S;
    "profilePath" String S;
    "userWorkstations" String S;
    "servicePrincipalName" String 0;
    "dNSHostName" String S;
    "thumbnailPhoto" Binary S;
    "jpegPhoto" Binary 0;
    "userCertificate" Binary 0;
    "seeAlso" Dn 0;
    "managedBy" Dn S;
    "member" Dn 0;
    "memberOf" Dn SYSTEM;
    "groupType" Integer S;
    "primaryGroupID" Integer S;
    "adminCount" Integer S;
    "userAccountControl" Integer S;
    "pwdLastSet" LargeInteger S;
    "accountExpires" LargeInteger S;
    "badPwdCount" Integer S;
    "badPasswordTime" LargeInteger S;
    "lockoutTime" LargeInteger S;
    "lastLogon" LargeInteger S;
    "lastLogoff" LargeInteger S;
    "lastLogonTimestamp" LargeInteger S;
    "logonCount" Integer S;
    "countryCode" Integer S;
    "codePage" Integer S;
    "isCriticalSystemObject" Boolean S;
    "isDeleted" Boolean SS;
    "lastKnownParent" Dn SS;
    "showInAdvancedViewOnly" Boolean S;
    "systemFlags" Integer S;
    "adminDescription" String S;
    "extensionAttribute1" String S;
    "extensionAttribute2" String S;
    "extensionAttribute3" String S;
    "extensionAttribute4" String S;
    "extensionAttribute5" String S;
    "extensionAttribute6" String S;
    "extensionAttribute7" String S;
    "extensionAttribute8" String S;
    "extensionAttribute9" String S;
    "extensionAttribute10" String S;
    "extensionAttribute11" String S;
    "extensionAttribute12" String S;
    "extensionAttribute13" String S;
    "extensionAttribute14" String S;
    "extensionAttribute15" String S;
    // domain object: the password and lockout policy
    "minPwdLength" Integer S;
    "pwdProperties" Integer S;
    "pwdHistoryLength" Integer S;
    "minPwdAge" LargeInteger S;
    "maxPwdAge" LargeInteger S;
    "lockoutThreshold" Integer S;
    "lockoutDuration" LargeInteger S;
    "lockOutObservationWindow" LargeInteger S;
    "forceLogoff" LargeInteger S;
    "msDS-Behavior-Version" Integer S;
    "nTMixedDomain" Integer S;
    "creationTime" LargeInteger S;
    "modifiedCount" LargeInteger S;
    // fine-grained password policies (msDS-PasswordSettings)
    "msDS-PasswordSettingsPrecedence" Integer S;
    "msDS-PasswordReversibleEncryptionEnabled" Boolean S;
    "msDS-PasswordHistoryLength" Integer S;
    "msDS-PasswordComplexityEnabled" Boolean S;
    "msDS-MinimumPasswordLength" Integer S;
    "msDS-MinimumPasswordAge" LargeInteger S;
    "msDS-MaximumPasswordAge" LargeInteger S;
    "msDS-LockoutThreshold" Integer S;
    "msDS-LockoutObservationWindow" LargeInteger S;
    "msDS-LockoutDuration" LargeInteger S;
    "msDS-PSOAppliesTo" Dn 0;
    // secrets: written, never read
    "unicodePwd" Binary SINGLE | SECRET;
    "userPassword" Binary SECRET;
    "dBCSPwd" Binary SINGLE | SECRET | SYSTEM;
    "ntPwdHistory" Binary SECRET | SYSTEM;
    "supplementalCredentials" Binary SECRET | SYSTEM;
    // constructed on read
    "msDS-User-Account-Control-Computed" Integer C;
    "msDS-UserPasswordExpiryTimeComputed" LargeInteger C;
    "msDS-ResultantPSO" Dn C;
    "canonicalName" String C;
    "createTimeStamp" GeneralizedTime C;
    "modifyTimeStamp" GeneralizedTime C;
    "structuralObjectClass" Oid C;
    "subSchemaSubEntry" Dn C;
};

fn index() -> &'static HashMap<std::string::String, u16> {
    static INDEX: OnceLock<HashMap<std::string::String, u16>> = OnceLock::new();
    INDEX.get_or_init(|| ATTRIBUTES.iter().enumerate().map(|(i, a)| (a.name.to_ascii_lowercase(), i as u16)).collect())
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

pub fn attribute_by_id(id: u16) -> &'static AttrDef {
    &ATTRIBUTES[id as usize]
}

pub fn attributes() -> &'static [AttrDef] {
    ATTRIBUTES
}

#[derive(Debug)]
pub struct ClassDef {
    pub name: &'static str,
    /// Superclasses from `top` down to this class, as AD stores objectClass.
    pub chain: &'static [&'static str],
    /// The CN of the default objectCategory under the schema container.
    pub category: &'static str,
}

static CLASSES: &[ClassDef] = &[
    ClassDef { name: "user", chain: &["top", "person", "organizationalPerson", "user"], category: "Person" },
    ClassDef { name: "computer", chain: &["top", "person", "organizationalPerson", "user", "computer"], category: "Computer" },
    ClassDef { name: "group", chain: &["top", "group"], category: "Group" },
    ClassDef { name: "organizationalUnit", chain: &["top", "organizationalUnit"], category: "Organizational-Unit" },
    ClassDef { name: "container", chain: &["top", "container"], category: "Container" },
    ClassDef { name: "domainDNS", chain: &["top", "domain", "domainDNS"], category: "Domain-DNS" },
    ClassDef { name: "builtinDomain", chain: &["top", "builtinDomain"], category: "Builtin-Domain" },
    ClassDef {
        name: "msDS-PasswordSettingsContainer",
        chain: &["top", "msDS-PasswordSettingsContainer"],
        category: "ms-DS-Password-Settings-Container",
    },
    ClassDef { name: "msDS-PasswordSettings", chain: &["top", "msDS-PasswordSettings"], category: "ms-DS-Password-Settings" },
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

/// The class whose default objectCategory has this lDAPDisplayName or CN: AD lets filters say
/// `(objectCategory=person)` for `CN=Person,CN=Schema,...`.
pub fn category_by_short_name(name: &str) -> Option<&'static str> {
    CLASSES
        .iter()
        .find(|c| c.category.eq_ignore_ascii_case(name) || c.name.eq_ignore_ascii_case(name))
        .map(|c| c.category)
        .or_else(|| name.eq_ignore_ascii_case("person").then_some("Person"))
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
}
