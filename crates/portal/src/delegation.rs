//! ADUC's Advanced Security Settings for the domain root: the permission entries of its
//! nTSecurityDescriptor, and Add / Remove as an administrator does them — read and written
//! over LDAPS as the domain's administrator with the SD-flags control (DACL only), as ADUC
//! or `dsacls` would. What it writes, the DC judges: the lab's access model reads real ACEs,
//! so an entry applied to the wrong objects grants nothing, as on Windows.

use std::collections::HashMap;
use std::time::Duration;

use ad_wire::rights::Right;
use ad_wire::security::{self, Ace, AppliesTo, SecurityDescriptor};
use ad_wire::sid::Sid;
use ldap3::{Mod, Scope, SearchEntry};

use crate::AddsAccess;

/// One permission entry as the Advanced Security Settings list shows it.
pub struct EntryView {
    /// Its place in the DACL (what Remove names).
    pub index: usize,
    pub kind: &'static str,
    pub principal: String,
    pub access: String,
    /// "None" for an explicit entry, as ADUC's "Inherited from" column says.
    pub inherited: bool,
    pub applies_to: String,
}

/// The choices of ADUC's "Applies to" list: (form value, label).
pub const APPLIES_TO: [(&str, &str); 5] = [
    ("this", "This object only"),
    ("this-and-descendants", "This object and all descendant objects"),
    ("descendants", "All descendant objects"),
    ("descendant-users", "Descendant User objects"),
    ("descendant-computers", "Descendant Computer objects"),
];

fn applies_to(value: &str) -> Option<AppliesTo> {
    Some(match value {
        "this" => AppliesTo::ThisObject,
        "this-and-descendants" => AppliesTo::ThisObjectAndDescendants,
        "descendants" => AppliesTo::Descendants,
        "descendant-users" => AppliesTo::DescendantUsers,
        "descendant-computers" => AppliesTo::DescendantComputers,
        _ => return None,
    })
}

/// ADUC's wording for an entry's reach, from its inheritance flags and inherited class.
fn applies_text(ace: &Ace) -> String {
    let inherit_only = ace.flags() & security::INHERIT_ONLY != 0;
    let inherits = ace.flags() & (security::CONTAINER_INHERIT | security::OBJECT_INHERIT) != 0;
    let class = match ace {
        Ace::Object(a) => a.inherited_object_type,
        Ace::Other(_) => None,
    };
    let label = |a: AppliesTo| APPLIES_TO.iter().find(|(v, _)| applies_to(v) == Some(a)).map_or("", |(_, l)| l).to_string();
    match (inherits, inherit_only, class) {
        (false, _, _) => label(AppliesTo::ThisObject),
        (true, false, None) => label(AppliesTo::ThisObjectAndDescendants),
        (true, true, None) => label(AppliesTo::Descendants),
        (true, _, Some(c)) if Some(c) == AppliesTo::DescendantUsers.flags().1 => label(AppliesTo::DescendantUsers),
        (true, _, Some(c)) if Some(c) == AppliesTo::DescendantComputers.flags().1 => label(AppliesTo::DescendantComputers),
        (true, _, Some(_)) => "Descendant objects of one class".into(),
    }
}

/// What an entry grants or denies, in ADUC's words.
fn access_text(ace: &Ace) -> String {
    const FULL_CONTROL: u32 = 0x000F_01FF;
    const CONTROL_ACCESS: u32 = 0x100;
    match ace {
        Ace::Object(a) => match a.object_type.as_ref().and_then(|t| Right::from_ace(a.mask, t)) {
            Some(r) => r.name().to_string(),
            None if a.object_type.is_none() && a.mask == CONTROL_ACCESS => "All extended rights".into(),
            None => format!("Special (0x{:X})", a.mask),
        },
        Ace::Other(_) if ace.mask() & FULL_CONTROL == FULL_CONTROL => "Full control".into(),
        Ace::Other(_) => format!("Special (0x{:X})", ace.mask()),
    }
}

/// A well-known principal's name, as ADUC shows it.
fn well_known(sid: &str) -> Option<&'static str> {
    Some(match sid {
        "S-1-1-0" => "Everyone",
        "S-1-5-10" => "SELF",
        "S-1-5-11" => "Authenticated Users",
        "S-1-5-18" => "SYSTEM",
        "S-1-5-9" => "ENTERPRISE DOMAIN CONTROLLERS",
        _ => return None,
    })
}

/// A binary value as an LDAP filter's escaped bytes (RFC 4515).
fn escaped(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\{x:02x}")).collect()
}

async fn domain_dacl(l: &mut ldap3::Ldap, base: &str) -> Result<Vec<u8>, String> {
    ldap_dial::first_binary(l, base, Scope::Base, "(objectClass=*)", "nTSecurityDescriptor", vec![ldap_dial::sd_flags_dacl()])
        .await?
        .ok_or_else(|| "the domain root's nTSecurityDescriptor cannot be read".to_string())
}

async fn connect(a: &AddsAccess) -> Result<ldap3::Ldap, String> {
    tokio::time::timeout(Duration::from_secs(5), crate::onprem::bind(a)).await.map_err(|_| "no answer within 5 s".to_string())?
}

/// The domain root's permission entries, the principals named.
pub async fn entries(a: &AddsAccess) -> Result<Vec<EntryView>, String> {
    let mut l = connect(a).await?;
    let sd =
        SecurityDescriptor::parse(&domain_dacl(&mut l, &a.base_dn).await?).map_err(|_| "a malformed security descriptor".to_string())?;
    let aces = sd.dacl.unwrap_or_default();
    let mut names: HashMap<Vec<u8>, String> = HashMap::new();
    for sid in aces.iter().filter_map(Ace::sid) {
        if names.contains_key(sid) {
            continue;
        }
        let text = Sid::from_bytes(sid).map(|s| s.to_string()).unwrap_or_else(|| "(a malformed SID)".into());
        let name = match well_known(&text) {
            Some(n) => n.to_string(),
            None => {
                let found = l
                    .search(&a.base_dn, Scope::Subtree, &format!("(objectSid={})", escaped(sid)), vec!["sAMAccountName"])
                    .await
                    .ok()
                    .and_then(|r| r.success().ok())
                    .and_then(|(found, _)| found.into_iter().next())
                    .map(SearchEntry::construct);
                found.and_then(|e| e.attrs.get("sAMAccountName").and_then(|v| v.first().cloned())).unwrap_or(text)
            }
        };
        names.insert(sid.to_vec(), name);
    }
    let _ = l.unbind().await;
    Ok(aces
        .iter()
        .enumerate()
        .map(|(index, ace)| EntryView {
            index,
            kind: if ace.allows() { "Allow" } else { "Deny" },
            principal: ace.sid().and_then(|s| names.get(s).cloned()).unwrap_or_else(|| "(not shown)".into()),
            access: access_text(ace),
            inherited: ace.flags() & security::INHERITED != 0,
            applies_to: applies_text(ace),
        })
        .collect())
}

/// What the Add dialog was given: (field, value) pairs, the permissions one `right` each.
pub struct NewEntry {
    pub principal: String,
    pub allow: bool,
    pub applies_to: AppliesTo,
    pub rights: Vec<Right>,
}

impl NewEntry {
    /// Reads the form; Err: what is missing or unknown, in the dialog's words.
    pub fn from_form(fields: &[(String, String)]) -> Result<NewEntry, String> {
        let one = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
        let principal = one("principal");
        if principal.is_empty() {
            return Err("Select a principal: the user or group the entry is for.".into());
        }
        let allow = match one("type").as_str() {
            "allow" => true,
            "deny" => false,
            t => return Err(format!("{t:?} is not a type: Allow or Deny")),
        };
        let applies_to = applies_to(&one("applies_to")).ok_or("Choose what the entry applies to.")?;
        let mut rights = vec![];
        for (_, v) in fields.iter().filter(|(k, _)| k == "right") {
            let r = Right::ALL.into_iter().find(|r| r.name() == v).ok_or_else(|| format!("{v:?} is not a permission this page offers"))?;
            if !rights.contains(&r) {
                rights.push(r);
            }
        }
        if rights.is_empty() {
            return Err("Select at least one permission.".into());
        }
        Ok(NewEntry { principal, allow, applies_to, rights })
    }
}

/// The principal's objectSid, found as ADUC's "Check Names" finds it: by sAMAccountName
/// (with or without `DOMAIN\`) or userPrincipalName.
async fn principal_sid(l: &mut ldap3::Ldap, base: &str, name: &str) -> Result<Vec<u8>, String> {
    let sam = name.rsplit('\\').next().unwrap_or(name);
    let filter = format!("(|(sAMAccountName={})(userPrincipalName={}))", ldap3::ldap_escape(sam), ldap3::ldap_escape(name));
    ldap_dial::first_binary(l, base, Scope::Subtree, &filter, "objectSid", vec![])
        .await?
        .ok_or_else(|| {
            format!(
                "An object named \"{name}\" cannot be found. Check the selected object types and location for accuracy and ensure that you typed the object name correctly, or remove this object from the selection."
            )
        })
}

async fn write_dacl(l: &mut ldap3::Ldap, base: &str, sd: Vec<u8>) -> Result<(), String> {
    let m = vec![Mod::Replace(b"nTSecurityDescriptor".to_vec(), std::collections::HashSet::from([sd]))];
    let r = l.with_controls(vec![ldap_dial::sd_flags_dacl()]).modify(base, m).await.map_err(|e| e.to_string())?;
    match r.rc {
        0 => Ok(()),
        rc => Err(format!("The DC refused the change: {rc} {}", r.text)),
    }
}

/// Adds the entries (one per permission) to the domain root's DACL.
pub async fn add(a: &AddsAccess, e: &NewEntry) -> Result<(), String> {
    let mut l = connect(a).await?;
    let sid = principal_sid(&mut l, &a.base_dn, &e.principal).await?;
    let aces: Vec<Ace> = e.rights.iter().map(|r| security::ace_applying(e.allow, Some(*r), sid.clone(), e.applies_to)).collect();
    let sd = domain_dacl(&mut l, &a.base_dn).await?;
    let new = security::dacl_with(&sd, &aces).map_err(|_| "a malformed security descriptor".to_string())?;
    let done = write_dacl(&mut l, &a.base_dn, new).await;
    let _ = l.unbind().await;
    done
}

/// Removes the `n`th entry of the domain root's DACL, which must be explicit.
pub async fn remove(a: &AddsAccess, n: usize) -> Result<(), String> {
    let mut l = connect(a).await?;
    let sd = domain_dacl(&mut l, &a.base_dn).await?;
    let new = security::dacl_without(&sd, n)
        .map_err(|_| "a malformed security descriptor".to_string())?
        .ok_or("That entry is inherited from a parent object: remove it there.")?;
    let done = write_dacl(&mut l, &a.base_dn, new).await;
    let _ = l.unbind().await;
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_add_dialog_reads_every_permission_ticked_and_refuses_what_is_missing() {
        let e = NewEntry::from_form(&form(&[
            ("principal", " MSOL_1a2b3c4d5e6f "),
            ("type", "allow"),
            ("applies_to", "descendant-users"),
            ("right", "Reset Password"),
            ("right", "Write lockoutTime"),
            ("right", "Reset Password"),
        ]))
        .unwrap();
        assert_eq!((e.principal.as_str(), e.allow, e.applies_to), ("MSOL_1a2b3c4d5e6f", true, AppliesTo::DescendantUsers));
        assert_eq!(e.rights, vec![Right::ResetPassword, Right::WriteLockoutTime]);
        let no_right = NewEntry::from_form(&form(&[("principal", "x"), ("type", "deny"), ("applies_to", "this")]));
        assert_eq!(no_right.err().as_deref(), Some("Select at least one permission."));
        let unknown = NewEntry::from_form(&form(&[("principal", "x"), ("type", "allow"), ("applies_to", "this"), ("right", "Be Admin")]));
        assert!(unknown.err().unwrap().contains("Be Admin"));
        assert!(NewEntry::from_form(&form(&[("type", "allow")])).is_err(), "no principal");
    }

    #[test]
    fn an_entry_reads_as_aduc_lists_it() {
        let sid = Sid::parse("S-1-1-0").unwrap().to_bytes();
        let users = security::ace_applying(true, Some(Right::ResetPassword), sid.clone(), AppliesTo::DescendantUsers);
        assert_eq!((access_text(&users), applies_text(&users)), ("Reset Password".into(), "Descendant User objects".into()));
        let domain = security::ace_applying(true, Some(Right::UnexpirePassword), sid.clone(), AppliesTo::ThisObjectAndDescendants);
        assert_eq!(applies_text(&domain), "This object and all descendant objects");
        let all = security::ace_applying(false, None, sid.clone(), AppliesTo::ThisObject);
        assert_eq!((access_text(&all), applies_text(&all)), ("All extended rights".into(), "This object only".into()));
        let full = security::full_control(true, sid, AppliesTo::Descendants);
        assert_eq!((access_text(&full), applies_text(&full)), ("Full control".into(), "All descendant objects".into()));
    }
}
