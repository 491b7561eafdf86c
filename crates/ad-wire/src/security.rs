//! nTSecurityDescriptor as AD stores it: a self-relative security descriptor (MS-DTYP
//! 2.4.6) whose DACL holds ACEs (2.4.4). Plain bytes in and out; which ACE means which
//! password right is the DC's access model's business. Hand-written because no maintained crate
//! reads and writes these on Linux (the few that parse are young single-author ones and
//! build only one shape); the format is small and fixed.

use crate::rights::{Right, USER_CLASS};

/// SECURITY_INFORMATION bits, as the SD-flags control (LDAP_SERVER_SD_FLAGS_OID) names the
/// parts a read returns or a write replaces.
pub const OWNER: u32 = 1;
pub const GROUP: u32 = 2;
pub const DACL: u32 = 4;
pub const SACL: u32 = 8;

/// ACE flags (MS-DTYP 2.4.4.1).
pub const OBJECT_INHERIT: u8 = 0x01;
/// The descriptor's control bit for a DACL that inherits nothing (MS-DTYP 2.4.6, "PD").
pub const SE_DACL_PROTECTED: u16 = 0x1000;
pub const CONTAINER_INHERIT: u8 = 0x02;
pub const INHERIT_ONLY: u8 = 0x08;
pub const INHERITED: u8 = 0x10;

const ALLOWED_OBJECT: u8 = 0x05;
const DENIED_OBJECT: u8 = 0x06;
const SE_DACL_PRESENT: u16 = 0x0004;
const SE_SELF_RELATIVE: u16 = 0x8000;
const ACL_REVISION_DS: u8 = 4;

/// One ACE. Object ACEs (allowed or denied, with an object type) are what the lab's access
/// model reads; any other kind is kept byte for byte as it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ace {
    Object(ObjectAce),
    Other(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectAce {
    pub allow: bool,
    pub flags: u8,
    pub mask: u32,
    /// The right, property or property set (GUID in AD's byte order).
    pub object_type: Option<[u8; 16]>,
    /// The class of objects it is inherited by.
    pub inherited_object_type: Option<[u8; 16]>,
    /// The trustee's binary SID.
    pub sid: Vec<u8>,
}

impl Ace {
    pub fn flags(&self) -> u8 {
        match self {
            Ace::Object(a) => a.flags,
            Ace::Other(b) => b[1],
        }
    }

    /// Whether it is an access-allowed ACE (object or plain); denies and other kinds are not.
    pub fn allows(&self) -> bool {
        match self {
            Ace::Object(a) => a.allow,
            Ace::Other(b) => b[0] == 0x00,
        }
    }

    /// The access mask (every ACE kind has it after its header).
    pub fn mask(&self) -> u32 {
        match self {
            Ace::Object(a) => a.mask,
            Ace::Other(b) => b.get(4..8).map_or(0, |m| u32::from_le_bytes([m[0], m[1], m[2], m[3]])),
        }
    }

    /// The trustee's binary SID, for the kinds whose layout is known (object ACEs, and plain
    /// access-allowed or -denied ACEs).
    pub fn sid(&self) -> Option<&[u8]> {
        match self {
            Ace::Object(a) => Some(&a.sid),
            Ace::Other(b) if b[0] <= 0x01 => sid_at(b, 8).ok().map(|s| &b[8..8 + s.len()]),
            Ace::Other(_) => None,
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let a = match self {
            Ace::Other(b) => return b.clone(),
            Ace::Object(a) => a,
        };
        let mut body = a.mask.to_le_bytes().to_vec();
        let present = u32::from(a.object_type.is_some()) | u32::from(a.inherited_object_type.is_some()) << 1;
        body.extend(present.to_le_bytes());
        body.extend(a.object_type.iter().chain(&a.inherited_object_type).flatten());
        body.extend(&a.sid);
        let mut ace = vec![if a.allow { ALLOWED_OBJECT } else { DENIED_OBJECT }, a.flags];
        ace.extend(((4 + body.len()) as u16).to_le_bytes());
        ace.extend(body);
        ace
    }
}

/// The parts of a descriptor the lab keeps (a SACL is neither kept nor returned: reading
/// it needs a privilege no lab account holds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityDescriptor {
    pub owner: Option<Vec<u8>>,
    pub group: Option<Vec<u8>>,
    pub dacl: Option<Vec<Ace>>,
    /// The DACL's protection and auto-inheritance bits (SE_DACL_PROTECTED, …).
    pub dacl_control: u16,
}

/// Why a descriptor was refused (an LDAP client sent bytes that are not one).
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

fn u16_at(b: &[u8], i: usize) -> Result<u16, Malformed> {
    b.get(i..i + 2).map(|x| u16::from_le_bytes([x[0], x[1]])).ok_or(Malformed)
}

fn u32_at(b: &[u8], i: usize) -> Result<u32, Malformed> {
    b.get(i..i + 4).map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]])).ok_or(Malformed)
}

/// A binary SID's length from its sub-authority count.
fn sid_at(b: &[u8], at: usize) -> Result<Vec<u8>, Malformed> {
    let n = *b.get(at + 1).ok_or(Malformed)? as usize;
    if b.get(at) != Some(&1) || n > 15 {
        return Err(Malformed);
    }
    b.get(at..at + 8 + 4 * n).map(<[u8]>::to_vec).ok_or(Malformed)
}

fn parse_ace(b: &[u8]) -> Result<Ace, Malformed> {
    if !matches!(b[0], ALLOWED_OBJECT | DENIED_OBJECT) {
        return Ok(Ace::Other(b.to_vec()));
    }
    let mask = u32_at(b, 4)?;
    let present = u32_at(b, 8)?;
    let mut at = 12;
    let mut guid = |on: bool| -> Result<Option<[u8; 16]>, Malformed> {
        if !on {
            return Ok(None);
        }
        let g: [u8; 16] = b.get(at..at + 16).ok_or(Malformed)?.try_into().map_err(|_| Malformed)?;
        at += 16;
        Ok(Some(g))
    };
    let object_type = guid(present & 1 != 0)?;
    let inherited_object_type = guid(present & 2 != 0)?;
    let sid = sid_at(b, at)?;
    Ok(Ace::Object(ObjectAce { allow: b[0] == ALLOWED_OBJECT, flags: b[1], mask, object_type, inherited_object_type, sid }))
}

fn parse_acl(b: &[u8]) -> Result<Vec<Ace>, Malformed> {
    let (size, count) = (u16_at(b, 2)? as usize, u16_at(b, 4)? as usize);
    let acl = b.get(..size).ok_or(Malformed)?;
    let mut aces = Vec::with_capacity(count.min(1024));
    let mut at = 8;
    for _ in 0..count {
        let n = u16_at(acl, at + 2)? as usize;
        if n < 8 {
            return Err(Malformed);
        }
        aces.push(parse_ace(acl.get(at..at + n).ok_or(Malformed)?)?);
        at += n;
    }
    Ok(aces)
}

/// Whether ACEs fit one ACL: its size and its count are 16-bit (MS-DTYP 2.4.5, ACL's
/// AclSize and AceCount), and so is each ACE's size (2.4.4.1).
pub fn acl_fits(aces: &[Ace]) -> bool {
    let sizes: Vec<usize> = aces.iter().map(|a| a.to_bytes().len()).collect();
    aces.len() <= usize::from(u16::MAX)
        && sizes.iter().all(|n| *n <= usize::from(u16::MAX))
        && 8 + sizes.iter().sum::<usize>() <= usize::from(u16::MAX)
}

/// A DACL-only descriptor (written back with the SD-flags control's DACL part) with `aces`
/// added where canonical order puts explicit entries: denies first, allows before the
/// first inherited ACE; each once (an ACE already there is not added again).
pub fn dacl_with(sd: &[u8], aces: &[Ace]) -> Result<Vec<u8>, Malformed> {
    let sd = SecurityDescriptor::parse(sd)?;
    let mut all: Vec<Ace> = sd.dacl.unwrap_or_default();
    for ace in aces.iter().filter(|a| !all.contains(a)).cloned().collect::<Vec<_>>() {
        let at = match ace.allows() {
            false => 0,
            true => all.iter().position(|a| a.flags() & INHERITED != 0).unwrap_or(all.len()),
        };
        all.insert(at, ace);
    }
    Ok(SecurityDescriptor { dacl: Some(all), dacl_control: sd.dacl_control, ..Default::default() }.to_bytes())
}

/// A DACL-only descriptor without its `n`th ACE, which must be explicit (an inherited entry
/// is removed where it was written, as ADUC's Remove button says). None: no such explicit ACE.
pub fn dacl_without(sd: &[u8], n: usize) -> Result<Option<Vec<u8>>, Malformed> {
    let sd = SecurityDescriptor::parse(sd)?;
    let mut all: Vec<Ace> = sd.dacl.unwrap_or_default();
    if all.get(n).is_none_or(|a| a.flags() & INHERITED != 0) {
        return Ok(None);
    }
    all.remove(n);
    Ok(Some(SecurityDescriptor { dacl: Some(all), dacl_control: sd.dacl_control, ..Default::default() }.to_bytes()))
}

impl SecurityDescriptor {
    /// Reads a self-relative descriptor; an offset of 0 means the part is absent.
    pub fn parse(b: &[u8]) -> Result<SecurityDescriptor, Malformed> {
        if b.len() < 20 || b[0] != 1 {
            return Err(Malformed);
        }
        let control = u16_at(b, 2)?;
        let part = |i: usize| -> Result<Option<usize>, Malformed> { Ok(Some(u32_at(b, i)? as usize).filter(|o| *o != 0)) };
        let owner = part(4)?.map(|o| sid_at(b, o)).transpose()?;
        let group = part(8)?.map(|o| sid_at(b, o)).transpose()?;
        let dacl = match part(16)? {
            Some(o) if control & SE_DACL_PRESENT != 0 => Some(parse_acl(b.get(o..).ok_or(Malformed)?)?),
            _ => None,
        };
        Ok(SecurityDescriptor { owner, group, dacl, dacl_control: control & 0x1400 })
    }

    /// Writes it self-relative: owner, group, then the DACL, as Windows lays them out.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut control = SE_SELF_RELATIVE | self.dacl_control;
        let mut tail = vec![];
        let offset = |part: Option<&Vec<u8>>, tail: &mut Vec<u8>| -> u32 {
            part.map(|p| {
                let at = 20 + tail.len();
                tail.extend(p);
                at as u32
            })
            .unwrap_or(0)
        };
        let owner = offset(self.owner.as_ref(), &mut tail);
        let group = offset(self.group.as_ref(), &mut tail);
        let dacl = self.dacl.as_ref().map(|aces| {
            control |= SE_DACL_PRESENT;
            let body: Vec<u8> = aces.iter().flat_map(Ace::to_bytes).collect();
            let mut acl = vec![ACL_REVISION_DS, 0];
            acl.extend(((8 + body.len()) as u16).to_le_bytes());
            acl.extend((aces.len() as u16).to_le_bytes());
            acl.extend([0, 0]);
            acl.extend(body);
            acl
        });
        let dacl = offset(dacl.as_ref(), &mut tail);
        let mut out = vec![1, 0];
        out.extend(control.to_le_bytes());
        for o in [owner, group, 0, dacl] {
            out.extend(o.to_le_bytes());
        }
        out.extend(tail);
        out
    }
}

/// The ACE a modelled grant (`allow`) or deny is written as on its scope object. On a
/// user (`leaf`) ADUC writes it plain; on a container it is inherited by the users below
/// (the delegation wizard's form), except the replication rights, which are the domain's
/// own. `inherited`: as it shows on an object below the scope.
pub fn ace_for(allow: bool, right: Right, sid: Vec<u8>, leaf: bool, inherited: bool) -> Ace {
    let on_users = !leaf && !right.on_the_domain();
    let mut flags = if on_users { CONTAINER_INHERIT | INHERIT_ONLY } else { 0 };
    if inherited {
        flags = INHERITED | if on_users { CONTAINER_INHERIT } else { 0 };
    }
    let user_class = uuid::Uuid::parse_str(USER_CLASS).expect("a literal GUID").to_bytes_le();
    Ace::Object(ObjectAce {
        allow,
        flags,
        mask: right.ace().0,
        object_type: Some(right.guid()),
        inherited_object_type: on_users.then_some(user_class),
        sid,
    })
}

/// ADUC's "Applies to" list for an entry written on an object: the ACE's inheritance flags
/// and the class it is inherited by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppliesTo {
    ThisObject,
    ThisObjectAndDescendants,
    Descendants,
    DescendantUsers,
    DescendantComputers,
}

impl AppliesTo {
    /// `(AceFlags, inherited object type)`.
    pub fn flags(self) -> (u8, Option<[u8; 16]>) {
        let class = |g: &str| Some(uuid::Uuid::parse_str(g).expect("a literal GUID").to_bytes_le());
        match self {
            AppliesTo::ThisObject => (0, None),
            AppliesTo::ThisObjectAndDescendants => (CONTAINER_INHERIT, None),
            AppliesTo::Descendants => (CONTAINER_INHERIT | INHERIT_ONLY, None),
            AppliesTo::DescendantUsers => (CONTAINER_INHERIT | INHERIT_ONLY, class(USER_CLASS)),
            AppliesTo::DescendantComputers => (CONTAINER_INHERIT | INHERIT_ONLY, class(crate::rights::COMPUTER_CLASS)),
        }
    }
}

/// An explicit entry as ADUC's Advanced Security Settings writes it: for `right`, or for
/// "All extended rights" (`None`: control access without an object type).
pub fn ace_applying(allow: bool, right: Option<Right>, sid: Vec<u8>, applies: AppliesTo) -> Ace {
    const CONTROL_ACCESS: u32 = 0x100;
    let (flags, inherited_object_type) = applies.flags();
    let (mask, object_type) = right.map_or((CONTROL_ACCESS, None), |r| (r.ace().0, Some(r.guid())));
    Ace::Object(ObjectAce { allow, flags, mask, object_type, inherited_object_type, sid })
}

/// ADUC's "Full control": a plain access-allowed or -denied entry for every right of a
/// directory object (0xF01FF), which [`broad_deny`] honours as a deny.
pub fn full_control(allow: bool, sid: Vec<u8>, applies: AppliesTo) -> Ace {
    const FULL_CONTROL: u32 = 0x000F_01FF;
    let mut b = vec![if allow { 0x00 } else { 0x01 }, applies.flags().0];
    b.extend(u16::try_from(8 + sid.len()).expect("a SID is short").to_le_bytes());
    b.extend(FULL_CONTROL.to_le_bytes());
    b.extend(sid);
    Ace::Other(b)
}

/// What an ACE a client wrote means to the access model: `(allow, right, trustee SID)` for
/// an explicit object ACE on a modelled right; None for everything else (kept as written).
pub fn model_of(ace: &Ace) -> Option<(bool, Right, &[u8])> {
    let Ace::Object(a) = ace else { return None };
    if a.flags & INHERITED != 0 {
        return None;
    }
    Some((a.allow, Right::from_ace(a.mask, a.object_type.as_ref()?)?, &a.sid))
}

/// What an explicit ACE means to the access model on the object it is written on (`leaf`:
/// a user; else a container): on a user, an ACE that is inherit-only does not apply to it;
/// on a container, a user right applies to the users below only through an ACE that is
/// inherited and, when it names the class inheriting it, names users (an ACE for computer
/// objects resets no user's password). None: no effect on any password right (kept as
/// written).
pub fn model_on(ace: &Ace, leaf: bool) -> Option<(bool, Right, &[u8])> {
    let (allow, right, sid) = model_of(ace)?;
    let Ace::Object(a) = ace else { return None };
    let applies = if leaf || right.on_the_domain() {
        a.flags & INHERIT_ONLY == 0
    } else {
        let user_class = uuid::Uuid::parse_str(USER_CLASS).expect("a literal GUID").to_bytes_le();
        a.flags & (CONTAINER_INHERIT | OBJECT_INHERIT) != 0 && a.inherited_object_type.is_none_or(|c| c == user_class)
    };
    applies.then_some((allow, right, sid))
}

/// A deny the model keeps as written but must honour: an object ACE denying without an
/// object type ("All extended rights", all properties), or a plain ACCESS_DENIED ACE (Full
/// Control denied) — every modelled right its mask covers (GENERIC_ALL covers all,
/// GENERIC_WRITE every property write). `on_itself`: whether the ACE sits on the object
/// judged (else on a container above it). `(rights, trustee SID)`; None: not such a deny,
/// or it does not reach that object.
pub fn broad_deny(ace: &Ace, on_itself: bool) -> Option<(Vec<Right>, &[u8])> {
    const ACCESS_DENIED: u8 = 0x01;
    const GENERIC_ALL: u32 = 0x1000_0000;
    const GENERIC_WRITE: u32 = 0x4000_0000;
    const WRITE_PROPERTY: u32 = 0x20;
    let (flags, mask, inherited_object_type, sid) = match ace {
        Ace::Object(a) if !a.allow && a.object_type.is_none() => (a.flags, a.mask, a.inherited_object_type, a.sid.as_slice()),
        Ace::Other(b) if b.first() == Some(&ACCESS_DENIED) && b.len() >= 16 => {
            let n = sid_at(b, 8).ok()?.len();
            (b[1], u32::from_le_bytes([b[4], b[5], b[6], b[7]]), None, &b[8..8 + n])
        }
        _ => return None,
    };
    let user_class = uuid::Uuid::parse_str(USER_CLASS).expect("a literal GUID").to_bytes_le();
    let reaches = if on_itself {
        flags & INHERIT_ONLY == 0
    } else {
        flags & (CONTAINER_INHERIT | OBJECT_INHERIT) != 0 && inherited_object_type.is_none_or(|c| c == user_class)
    };
    let mask = if mask & GENERIC_ALL != 0 {
        u32::MAX
    } else if mask & GENERIC_WRITE != 0 {
        mask | WRITE_PROPERTY
    } else {
        mask
    };
    let rights: Vec<Right> = Right::ALL.into_iter().filter(|r| mask & r.ace().0 != 0).collect();
    (reaches && !rights.is_empty()).then_some((rights, sid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_entries_go_where_canonical_order_puts_them_and_only_once() {
        let sid = crate::sid::Sid::parse("S-1-5-18").unwrap().to_bytes();
        let explicit = ace_for(true, Right::ChangePassword, sid.clone(), true, false);
        let inherited = ace_for(true, Right::ChangePassword, sid.clone(), false, true);
        let sd = SecurityDescriptor { dacl: Some(vec![explicit.clone(), inherited.clone()]), dacl_control: 0x1400, ..Default::default() };
        let allow = ace_for(true, Right::ResetPassword, sid.clone(), false, false);
        let deny = ace_for(false, Right::WritePwdLastSet, sid, false, false);
        let out = dacl_with(&sd.to_bytes(), &[allow.clone(), deny.clone()]).unwrap();
        let read = SecurityDescriptor::parse(&out).unwrap();
        assert_eq!(read.dacl, Some(vec![deny.clone(), explicit.clone(), allow.clone(), inherited.clone()]), "denies, allows, inherited");
        assert_eq!(read.dacl_control, 0x1400, "the DACL's protection bits are kept");
        assert_eq!((read.owner, read.group), (None, None), "DACL only");
        // granting again adds nothing
        assert_eq!(dacl_with(&out, std::slice::from_ref(&allow)).unwrap(), out);
        // an explicit entry is removed; an inherited one, or one past the end, is not
        let removed = SecurityDescriptor::parse(&dacl_without(&out, 0).unwrap().unwrap()).unwrap();
        assert_eq!(removed.dacl, Some(vec![explicit, allow, inherited]));
        assert_eq!(removed.dacl_control, 0x1400, "the DACL's protection bits are kept");
        assert_eq!(dacl_without(&out, 3).unwrap(), None, "inherited");
        assert_eq!(dacl_without(&out, 4).unwrap(), None, "past the end");
    }

    #[test]
    fn a_plain_ace_tells_its_kind_mask_and_trustee() {
        let sid = crate::sid::Sid::parse("S-1-1-0").unwrap().to_bytes();
        let denied = full_control(false, sid.clone(), AppliesTo::ThisObject);
        assert_eq!((denied.allows(), denied.mask(), denied.sid()), (false, 0x000F_01FF, Some(sid.as_slice())));
        let allowed = full_control(true, sid.clone(), AppliesTo::ThisObject);
        assert!(allowed.allows());
        let object = ace_for(true, Right::ResetPassword, sid.clone(), false, false);
        assert_eq!((object.allows(), object.mask(), object.sid()), (true, 0x100, Some(sid.as_slice())));
        // a kind whose layout the lab does not read (an audit ACE, type 2): no trustee read from it
        let mut audit = vec![0x02, 0x00];
        audit.extend(u16::try_from(8 + sid.len()).unwrap().to_le_bytes());
        audit.extend(0x20u32.to_le_bytes());
        audit.extend(&sid);
        let audit = Ace::Other(audit);
        assert_eq!((audit.allows(), audit.mask(), audit.sid()), (false, 0x20, None));
    }

    fn sid(s: &str) -> Vec<u8> {
        crate::sid::Sid::parse(s).unwrap().to_bytes()
    }

    /// Only denies are broad denies: an object ACE denying with no object type ("All
    /// extended rights"), or a plain ACCESS_DENIED ACE (Full Control) — not their allowing
    /// twins, not a deny of one named right, not a plain ACE too short to hold a SID.
    #[test]
    fn a_broad_deny_is_a_deny_without_an_object_type_or_a_plain_denied_ace() {
        let bob = sid("S-1-5-21-1-2-3-1105");
        let all_extended = |allow| ace_applying(allow, None, bob.clone(), AppliesTo::ThisObject);
        let denied = all_extended(false);
        let (rights, who) = broad_deny(&denied, true).expect("all extended rights denied");
        assert!(rights.contains(&Right::ResetPassword) && who == bob.as_slice(), "{rights:?}");
        assert!(!rights.contains(&Right::WriteLockoutTime), "extended rights only, no property write: {rights:?}");
        assert_eq!(broad_deny(&all_extended(true), true), None, "allowed, not denied");
        assert_eq!(
            broad_deny(&ace_applying(false, Some(Right::ResetPassword), bob.clone(), AppliesTo::ThisObject), true),
            None,
            "one named right"
        );
        let denied = full_control(false, bob.clone(), AppliesTo::ThisObject);
        let (rights, _) = broad_deny(&denied, true).expect("Full Control denied");
        assert_eq!(rights.len(), Right::ALL.len(), "every right");
        assert_eq!(broad_deny(&full_control(true, bob.clone(), AppliesTo::ThisObject), true), None, "Full Control allowed");
        assert_eq!(broad_deny(&Ace::Other(vec![0x01, 0, 12, 0, 0xff, 0xff, 0xff, 0xff, 1, 1, 0, 0]), true), None, "too short for a SID");
        // GENERIC_WRITE denied: every property write, no extended right
        let Ace::Other(mut generic_write) = full_control(false, bob.clone(), AppliesTo::ThisObject) else { unreachable!() };
        generic_write[4..8].copy_from_slice(&0x4000_0000u32.to_le_bytes());
        let (rights, _) = broad_deny(&Ace::Other(generic_write), true).expect("GENERIC_WRITE denied");
        assert!(rights.contains(&Right::WriteLockoutTime) && rights.contains(&Right::WritePwdLastSet), "{rights:?}");
        assert!(!rights.contains(&Right::ResetPassword) && !rights.contains(&Right::ChangePassword), "{rights:?}");
    }

    /// A broad deny on a container reaches the users below when it is inheritable and names
    /// no class or the user class — not when it is for computer objects, nor when it is the
    /// container's own; on the object itself, it applies unless it is inherit-only.
    #[test]
    fn a_broad_deny_reaches_where_its_flags_say() {
        let bob = sid("S-1-5-21-1-2-3-1105");
        let deny = |applies| ace_applying(false, None, bob.clone(), applies);
        let below = |applies| broad_deny(&deny(applies), false).is_some();
        assert!(below(AppliesTo::DescendantUsers));
        assert!(below(AppliesTo::Descendants));
        assert!(below(AppliesTo::ThisObjectAndDescendants));
        assert!(!below(AppliesTo::DescendantComputers), "for computer objects");
        assert!(!below(AppliesTo::ThisObject), "the container's own");
        let itself = |applies| broad_deny(&deny(applies), true).is_some();
        assert!(itself(AppliesTo::ThisObject) && itself(AppliesTo::ThisObjectAndDescendants));
        assert!(!itself(AppliesTo::DescendantUsers), "inherit-only");
    }

    #[test]
    fn a_descriptor_round_trips_and_keeps_aces_it_does_not_read() {
        let change = uuid::Uuid::parse_str("ab721a53-1e2f-11d0-9819-00aa0040529b").unwrap().to_bytes_le();
        let full_control = {
            // ACCESS_ALLOWED_ACE for Domain Admins: a kind the access model does not read
            let s = sid("S-1-5-21-1-2-3-512");
            let mut a = vec![0x00, 0x00];
            a.extend(((8 + s.len()) as u16).to_le_bytes());
            a.extend(0x000F01FFu32.to_le_bytes());
            a.extend(s);
            a
        };
        let deny_change = |sid: Vec<u8>| {
            Ace::Object(ObjectAce { allow: false, flags: 0, mask: 0x100, object_type: Some(change), inherited_object_type: None, sid })
        };
        let sd = SecurityDescriptor {
            owner: Some(sid("S-1-5-21-1-2-3-512")),
            group: Some(sid("S-1-5-21-1-2-3-512")),
            dacl: Some(vec![deny_change(sid("S-1-1-0")), deny_change(sid("S-1-5-10")), Ace::Other(full_control)]),
            dacl_control: 0x1000,
        };
        let bytes = sd.to_bytes();
        assert_eq!(SecurityDescriptor::parse(&bytes), Ok(sd.clone()));
        // a DACL alone, as a write with the SD-flags control sends it
        let only = SecurityDescriptor { owner: None, group: None, ..sd };
        assert_eq!(SecurityDescriptor::parse(&only.to_bytes()), Ok(only));
    }

    #[test]
    fn malformed_bytes_are_refused_not_trusted() {
        assert_eq!(SecurityDescriptor::parse(b""), Err(Malformed));
        assert_eq!(SecurityDescriptor::parse(&[1, 0, 4, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0]), Err(Malformed));
        let mut acl_too_long = SecurityDescriptor { dacl: Some(vec![]), ..Default::default() }.to_bytes();
        acl_too_long[22] = 200;
        assert_eq!(SecurityDescriptor::parse(&acl_too_long), Err(Malformed));
    }
}
