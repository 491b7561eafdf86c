//! The security-descriptor codec against golden bytes from a real DC, not only against its own
//! encoder (issue 37): three descriptors a freshly provisioned Samba 4.17 AD DC returned over
//! LDAPS (tests/data/samba-4.17-descriptors.ldif). Each parses, encodes back to what it read,
//! and its ACEs mean to the access model what AD's defaults say: Everyone and SELF hold Change
//! Password on a user (the user class's defaultSecurityDescriptor), and Authenticated Users
//! hold Unexpire Password on the domain object, this object only — the entry behind what a
//! password write leaves in pwdLastSet (MS-SAMR 3.1.1.8.7), which the lab grants by default.

use ad_ds::access::Right;
use ad_ds::security::{self, Ace, SecurityDescriptor};
use base64::Engine;

const EVERYONE: &str = "S-1-1-0";
const SELF: &str = "S-1-5-10";
const AUTHENTICATED_USERS: &str = "S-1-5-11";

fn golden() -> Vec<(String, Vec<u8>)> {
    let text = include_str!("data/samba-4.17-descriptors.ldif");
    let mut out = vec![];
    let mut dn = None;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("dn: ") {
            dn = Some(d.to_string());
        } else if let Some(b) = line.strip_prefix("nTSecurityDescriptor:: ") {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b).expect("base64");
            out.push((dn.take().expect("a dn before its descriptor"), bytes));
        }
    }
    out
}

fn sid(s: &str) -> Vec<u8> {
    ad_ds::sid::Sid::parse(s).unwrap().to_bytes()
}

/// What the model reads in an ACE written on an object: (allow, right, trustee SID string).
fn modelled(sd: &SecurityDescriptor, leaf: bool) -> Vec<(bool, Right, String)> {
    sd.dacl
        .iter()
        .flatten()
        .filter_map(|a| security::model_on(a, leaf))
        .map(|(allow, right, s)| (allow, right, ad_ds::sid::Sid::from_bytes(s).unwrap().to_string()))
        .collect()
}

#[test]
fn samba_descriptors_parse_and_encode_back_to_the_same_bytes() {
    let all = golden();
    assert_eq!(all.len(), 3);
    for (dn, bytes) in &all {
        let sd = SecurityDescriptor::parse(bytes).unwrap_or_else(|_| panic!("{dn}: Samba's descriptor does not parse"));
        let aces = sd.dacl.as_ref().map_or(0, Vec::len);
        assert!(aces > 10, "{dn}: {aces} ACEs");
        // (owner Domain Admins, or BUILTIN\Administrators on the domain object)
        let owner = sd.owner.as_ref().map(|o| ad_ds::sid::Sid::from_bytes(o).unwrap().to_string()).unwrap();
        assert!(owner.ends_with("-512") || owner == "S-1-5-32-544", "{dn}: owner {owner}");
        // the same descriptor again: the same ACEs in the same order, the same control bits
        let again = SecurityDescriptor::parse(&sd.to_bytes()).unwrap();
        assert_eq!(again, sd, "{dn}");
        // and the DACL's own bytes as the DC wrote them (ACL revision, size, every ACE)
        let acl_at = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
        let acl_len = u16::from_le_bytes(bytes[acl_at + 2..acl_at + 4].try_into().unwrap()) as usize;
        let ours = sd.to_bytes();
        let our_at = u32::from_le_bytes(ours[16..20].try_into().unwrap()) as usize;
        assert_eq!(&ours[our_at + 4..our_at + acl_len], &bytes[acl_at + 4..acl_at + acl_len], "{dn}: the ACEs' bytes");
    }
}

#[test]
fn samba_defaults_mean_what_the_lab_models() {
    let all = golden();
    let by = |dn: &str| SecurityDescriptor::parse(&all.iter().find(|(d, _)| d == dn).unwrap().1).unwrap();
    let guest = modelled(&by("CN=Guest,CN=Users,DC=testlab,DC=example"), true);
    assert!(guest.contains(&(true, Right::ChangePassword, EVERYONE.into())), "{guest:?}");
    assert!(guest.contains(&(true, Right::ChangePassword, SELF.into())), "{guest:?}");
    let root = by("DC=testlab,DC=example");
    let unexpire = root
        .dacl
        .iter()
        .flatten()
        .find_map(|a| match a {
            Ace::Object(o) if o.object_type == Some(Right::UnexpirePassword.guid()) => Some(o.clone()),
            _ => None,
        })
        .expect("Unexpire Password on the domain object");
    assert_eq!((unexpire.allow, unexpire.flags, unexpire.sid.clone()), (true, 0, sid(AUTHENTICATED_USERS)), "this object only, for AU");
    assert!(modelled(&root, false).contains(&(true, Right::UnexpirePassword, AUTHENTICATED_USERS.into())));
    // the lab's own entry for it has the same shape (its trustee is Everyone: the lab's
    // principals are all authenticated)
    let lab = security::ace_for(true, Right::UnexpirePassword, sid(EVERYONE), false, false);
    let Ace::Object(lab) = lab else { panic!("an object ACE") };
    assert_eq!((lab.flags, lab.mask, lab.object_type, lab.inherited_object_type), (0, unexpire.mask, unexpire.object_type, None));
}
