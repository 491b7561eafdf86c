//! Deny entries (ADUC's "User cannot change password"): a deny on the object wins over the
//! domain-wide allow that every user's Change Password comes from, for the user and for any
//! other principal it names; other rights and other users are untouched; taking the deny away
//! restores the allow.

use ad_ds::access::Right;
use ad_ds::directory::{ModOp, Modification, OpContext};
use ad_ds::domain::system;
use ad_ds::password::unicode_pwd;
use ad_ds::security::{self, SecurityDescriptor};
use ad_ds::{Directory, DomainConfig, Principal, ResultCode};
use clock::Clock;

fn principal(d: &Directory, sam: &str) -> (Principal, ad_ds::dn::DnKey) {
    let e = d.by_sam(sam).expect("seeded");
    (Principal::User { dn: e.dn.clone(), sam: sam.into(), admin: false }, e.dn.key())
}

#[test]
fn a_deny_on_one_user_wins_over_the_domain_wide_allow() {
    let mut d = domain();
    seed(&mut d);
    let (u1, k1) = principal(&d, "Alice");
    let (u2, k2) = principal(&d, "Bob");
    assert!(d.has_right(&u1, Right::ChangePassword, &k1), "Everyone may change passwords (the domain root's allow)");
    let dn1 = d.by_sam("Alice").unwrap().dn.to_string();
    d.deny(None, Right::ChangePassword, &dn1).unwrap();
    assert!(!d.has_right(&u1, Right::ChangePassword, &k1), "User cannot change password");
    assert!(!d.has_right(&u2, Right::ChangePassword, &k1), "nor can anyone else change it");
    assert!(d.has_right(&u2, Right::ChangePassword, &k2), "Bob's own is untouched");
    assert!(d.remove_deny(None, Right::ChangePassword, &dn1).unwrap());
    assert!(!d.remove_deny(None, Right::ChangePassword, &dn1).unwrap(), "nothing left to remove");
    assert!(d.has_right(&u1, Right::ChangePassword, &k1));
}

/// The ACL is the object's: it moves with it, and goes when it is deleted.
#[test]
fn a_deny_moves_with_its_object_and_goes_with_it() {
    let mut d = domain();
    seed(&mut d);
    let dn = d.by_sam("Alice").unwrap().dn.to_string();
    d.deny(None, Right::ChangePassword, &dn).unwrap();
    let base = d.base_dn().to_string();
    d.rename(&system(), &dn, "CN=Alice", true, Some(&base)).unwrap();
    let (alice, ka) = principal(&d, "Alice");
    assert!(!d.has_right(&alice, Right::ChangePassword, &ka), "the deny followed the move");
    d.delete(&system(), &format!("CN=Alice,{base}")).unwrap();
    d.add(
        &system(),
        &dn,
        vec![("objectClass".into(), vec![b"user".to_vec()]), ("sAMAccountName".into(), vec![b"Alice2".to_vec()])],
        OpContext::TLS,
    )
    .unwrap();
    let (again, k2) = principal(&d, "Alice2");
    assert!(d.has_right(&again, Right::ChangePassword, &k2), "a new object at the old DN starts without the old ACL");
}

/// ADUC's "User cannot change password" as it reaches a DC: a DACL written into
/// nTSecurityDescriptor with the SD-flags control, holding deny ACEs for Everyone and SELF.
#[test]
fn deny_aces_written_into_the_security_descriptor_refuse_a_change_not_a_reset() {
    let mut d = domain();
    seed(&mut d);
    // changes back to back: no minimum password age (the writeback tutorial's setting)
    let base = d.base_dn().to_string();
    let no_min_age = vec![Modification { op: ModOp::Replace, attr: "minPwdAge".into(), values: vec![b"0".to_vec()] }];
    d.modify(&system(), &base, no_min_age, OpContext::TLS).unwrap();
    set_password(&mut d, "Alice", "Summer-Lake-41");
    set_password(&mut d, "Bob", "Winter-Hill-63");
    let (alice, ka) = principal(&d, "Alice");
    let (bob, _) = principal(&d, "Bob");
    let dn = d.by_sam("Alice").unwrap().dn.to_string();
    let admin = system();

    // what the descriptor reads before: owner and group Domain Admins, nothing explicit
    let before = SecurityDescriptor::parse(&d.security_descriptor(&ka, 0)).unwrap();
    assert_eq!(before.owner, Some(d.domain_sid().child(512).to_bytes()));
    let dacl = before.dacl.clone().unwrap();
    assert!(dacl.iter().all(|a| a.flags() & security::INHERITED != 0), "only the domain root's inherited allow: {dacl:?}");
    assert!(dacl.iter().any(|a| security::model_of(&unflag(a)) == Some((true, Right::ChangePassword, everyone().as_slice()))));

    // the checkbox: deny Change Password to Everyone and SELF, and an ACE the model does not read
    let other = security::Ace::Other(vec![0x00, 0x00, 0x14, 0x00, 0xff, 0x01, 0x0f, 0x00, 1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]);
    let deny = |sid: Vec<u8>| security::ace_for(false, Right::ChangePassword, sid, true, false);
    let mut aces = vec![deny(everyone()), deny(self_sid()), other.clone()];
    aces.extend(dacl);
    let written = SecurityDescriptor { dacl: Some(aces), ..Default::default() }.to_bytes();
    let sd_write = |v: Vec<u8>| vec![Modification { op: ModOp::Replace, attr: "nTSecurityDescriptor".into(), values: vec![v] }];
    let dacl_only = OpContext { sd_parts: security::DACL, ..OpContext::TLS };
    // only administrators write a DACL (WRITE_DAC); bytes that are not a descriptor change nothing
    let e = d.modify(&alice, &dn, sd_write(written.clone()), dacl_only).unwrap_err();
    assert_eq!(e.code, ResultCode::InsufficientAccessRights);
    let e = d.modify(&admin, &dn, sd_write(vec![1, 0, 4]), dacl_only).unwrap_err();
    assert_eq!(e.code, ResultCode::ConstraintViolation);
    assert!(d.has_right(&alice, Right::ChangePassword, &ka));
    let usn = d.by_sam("Alice").unwrap().int("uSNChanged");
    d.modify(&admin, &dn, sd_write(written), dacl_only).unwrap();
    assert!(d.by_sam("Alice").unwrap().int("uSNChanged") > usn, "a descriptor write is a change");

    // read back as written: the two denies first, the unread ACE kept, inherited ones recomputed
    let after = SecurityDescriptor::parse(&d.security_descriptor(&ka, security::DACL)).unwrap();
    assert_eq!(after.owner, None, "the SD-flags control asked for the DACL only");
    let explicit: Vec<_> = after.dacl.unwrap().into_iter().filter(|a| a.flags() & security::INHERITED == 0).collect();
    assert_eq!(explicit, vec![deny(everyone()), deny(self_sid()), other]);

    // Alice's own change: constraintViolation, as a DC answers it; Bob's change too (Everyone)
    let e = d.modify(&alice, &dn, change("Summer-Lake-41", "Autumn-Road-52"), OpContext::TLS).unwrap_err();
    assert_eq!((e.code, &e.message[..8]), (ResultCode::ConstraintViolation, "00000005"));
    assert!(d.modify(&bob, &dn, change("Summer-Lake-41", "Autumn-Road-52"), OpContext::TLS).is_err());
    // a reset by someone holding Reset Password still works
    d.modify(
        &admin,
        &dn,
        vec![Modification { op: ModOp::Replace, attr: "unicodePwd".into(), values: vec![unicode_pwd("Reset-Pass-3")] }],
        OpContext::TLS,
    )
    .unwrap();

    // SELF alone: Alice may not, anyone else who knows the password may
    let only_self = SecurityDescriptor { dacl: Some(vec![deny(self_sid())]), ..Default::default() }.to_bytes();
    d.modify(&admin, &dn, sd_write(only_self), dacl_only).unwrap();
    assert!(!d.has_right(&alice, Right::ChangePassword, &ka));
    d.modify(&bob, &dn, change("Reset-Pass-3", "Spring-Field-74"), OpContext::TLS).unwrap();
    // an empty DACL takes the denies away
    let empty = SecurityDescriptor { dacl: Some(vec![]), ..Default::default() }.to_bytes();
    d.modify(&admin, &dn, sd_write(empty), dacl_only).unwrap();
    d.modify(&alice, &dn, change("Spring-Field-74", "Harbor-Light-85"), OpContext::TLS).unwrap();
}

/// An ACL's size is a 16-bit count (MS-DTYP 2.4.5): a DACL that fits as written but not
/// with the ACEs the object inherits is refused whole, rather than read back with its size
/// wrapped (issue 31, item 6); one that fits is read back intact.
#[test]
fn a_dacl_past_64_kib_with_what_it_inherits_is_refused_and_changes_nothing() {
    let mut d = domain();
    seed(&mut d);
    let (_, ka) = principal(&d, "Alice");
    let dn = d.by_sam("Alice").unwrap().dn.to_string();
    let other = || security::Ace::Other(vec![0x00, 0x00, 0x14, 0x00, 0xff, 0x01, 0x0f, 0x00, 1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]);
    let write = |n: usize| {
        let sd = SecurityDescriptor { dacl: Some((0..n).map(|_| other()).collect()), ..Default::default() }.to_bytes();
        vec![Modification { op: ModOp::Replace, attr: "nTSecurityDescriptor".into(), values: vec![sd] }]
    };
    let dacl_only = OpContext { sd_parts: security::DACL, ..OpContext::TLS };
    // 3,274 ACEs of 20 bytes: 65,488 bytes as sent, a valid ACL; with the inherited ones, not
    let before = (d.security_descriptor(&ka, 0), d.by_sam("Alice").unwrap().int("uSNChanged"));
    let e = d.modify(&system(), &dn, write(3274), dacl_only).unwrap_err();
    assert_eq!(e.code, ResultCode::ConstraintViolation, "{}", e.message);
    assert_eq!((d.security_descriptor(&ka, 0), d.by_sam("Alice").unwrap().int("uSNChanged")), before, "nothing changed");
    // 3,000 fit with room to spare: every one is read back
    d.modify(&system(), &dn, write(3000), dacl_only).unwrap();
    let back = SecurityDescriptor::parse(&d.security_descriptor(&ka, security::DACL)).unwrap();
    assert_eq!(back.dacl.unwrap().iter().filter(|a| a.flags() & security::INHERITED == 0).count(), 3000);
}

/// A protected account's DACL is AdminSDHolder's, not inherited (issue 31, item 10; MS-ADTS
/// 3.1.1.6.1, SDProp): an Everyone grant of Reset Password at the domain root reaches Alice,
/// not the built-in Administrator; Everyone's Change Password, which AdminSDHolder's own ACL
/// holds, still does. A reset of the Administrator by Bob changes nothing.
#[test]
fn an_everyone_grant_above_does_not_reach_a_protected_account() {
    let mut d = domain();
    seed(&mut d);
    let base = d.base_dn().to_string();
    d.grant(None, Right::ResetPassword, &base).unwrap();
    let (bob, _) = principal(&d, "Bob");
    let (_, alice) = principal(&d, "Alice");
    let (_, administrator) = principal(&d, "Administrator");
    assert!(d.is_protected(&administrator), "adminCount=1 through Domain Admins");
    assert!(d.has_right(&bob, Right::ResetPassword, &alice));
    assert!(!d.has_right(&bob, Right::ResetPassword, &administrator), "AdminSDHolder's ACL has no such grant");
    assert!(d.has_right(&bob, Right::ChangePassword, &administrator), "AdminSDHolder's own: Everyone may change a password they know");
    let dn = d.by_sam("Administrator").unwrap().dn.to_string();
    let usn = d.by_sam("Administrator").unwrap().int("uSNChanged");
    let reset = vec![Modification { op: ModOp::Replace, attr: "unicodePwd".into(), values: vec![unicode_pwd("Taken-Over-Pass-1")] }];
    let e = d.modify(&bob, &dn, reset, OpContext::TLS).unwrap_err();
    assert_eq!(e.code, ResultCode::InsufficientAccessRights);
    assert_eq!(d.by_sam("Administrator").unwrap().int("uSNChanged"), usn);
}

/// SDProp follows nested membership: a user in a group that is itself a member of Domain
/// Admins is protected, whichever was added first, and a grant from above stops reaching them.
#[test]
fn a_member_of_a_group_nested_in_a_protected_group_is_protected() {
    let mut d = domain();
    seed(&mut d);
    let base = d.base_dn().to_string();
    d.grant(None, Right::ResetPassword, &base).unwrap();
    let leads = format!("CN=Helpdesk Leads,CN=Users,{base}");
    let attrs =
        vec![("objectClass".to_string(), vec![b"group".to_vec()]), ("sAMAccountName".to_string(), vec![b"Helpdesk Leads".to_vec()])];
    d.add(&system(), &leads, attrs, OpContext::TLS).unwrap();
    let add_member = |d: &mut Directory, group: &str, member: &str| {
        let m = vec![Modification { op: ModOp::Add, attr: "member".into(), values: vec![member.as_bytes().to_vec()] }];
        d.modify(&system(), group, m, OpContext::TLS).unwrap();
    };
    let alice_dn = d.by_sam("Alice").unwrap().dn.to_string();
    let bob_dn = d.by_sam("Bob").unwrap().dn.to_string();
    add_member(&mut d, &leads, &alice_dn);
    let (_, alice) = principal(&d, "Alice");
    let (bob, bob_key) = principal(&d, "Bob");
    assert!(!d.is_protected(&alice), "Helpdesk Leads is not protected yet");
    add_member(&mut d, &format!("CN=Domain Admins,CN=Users,{base}"), &leads);
    assert!(d.is_protected(&alice), "a member of a member of Domain Admins");
    assert!(!d.has_right(&bob, Right::ResetPassword, &alice));
    add_member(&mut d, &leads, &bob_dn);
    assert!(d.is_protected(&bob_key), "added to the nested group afterwards");
}

/// A delegated grant reaches the subtree it is made on, and nothing beside it: Reset Password
/// over OU=Sales resets Carol there, not Alice in CN=Users.
#[test]
fn a_grant_reaches_its_own_subtree_only() {
    let mut d = domain();
    seed(&mut d);
    let base = d.base_dn().to_string();
    let sales = format!("OU=Sales,{base}");
    d.add(&system(), &sales, vec![("objectClass".to_string(), vec![b"organizationalUnit".to_vec()])], OpContext::TLS).unwrap();
    let attrs = vec![("objectClass".to_string(), vec![b"user".to_vec()]), ("sAMAccountName".to_string(), vec![b"Carol".to_vec()])];
    d.add(&system(), &format!("CN=Carol,{sales}"), attrs, OpContext::TLS).unwrap();
    let bob_dn = d.by_sam("Bob").unwrap().dn.to_string();
    d.grant(Some(&bob_dn), Right::ResetPassword, &sales).unwrap();
    let (bob, _) = principal(&d, "Bob");
    let (_, carol) = principal(&d, "Carol");
    let (_, alice) = principal(&d, "Alice");
    assert!(d.has_right(&bob, Right::ResetPassword, &carol), "inside OU=Sales");
    assert!(!d.has_right(&bob, Right::ResetPassword, &alice), "CN=Users is beside it, not below");
    let reset = vec![Modification { op: ModOp::Replace, attr: "unicodePwd".into(), values: vec![unicode_pwd("Not-Bobs-To-Set-1")] }];
    let e = d.modify(&bob, &d.by_sam("Alice").unwrap().dn.to_string(), reset, OpContext::TLS).unwrap_err();
    assert_eq!(e.code, ResultCode::InsufficientAccessRights);
}

/// Which objects an ACE reaches (issue 31, item 10; MS-DTYP 2.4.4.1's AceFlags and MS-ADTS's
/// object ACEs): on a container, an ACE whose inherited object type is the computer class
/// resets no user's password, one for the user class does; on a user, an inherit-only ACE
/// grants that user nothing, a plain one does. Each is read back as written.
#[test]
fn an_ace_reaches_only_the_objects_its_flags_and_inherited_object_type_name() {
    let mut d = domain();
    seed(&mut d);
    let (bob, _) = principal(&d, "Bob");
    let (_, alice) = principal(&d, "Alice");
    let users = format!("CN=Users,{}", d.base_dn());
    let alice_dn = d.by_sam("Alice").unwrap().dn.to_string();
    let bob_sid = d.by_sam("Bob").unwrap().values("objectSid")[0].to_vec();
    let class = |g: &str| uuid::Uuid::parse_str(g).unwrap().to_bytes_le();
    let (user_class, computer_class) = (class(ad_ds::access::USER_CLASS), class(ad_ds::access::COMPUTER_CLASS));
    let reset = |flags: u8, inherited_object_type: Option<[u8; 16]>| {
        let mut a = security::ace_for(true, Right::ResetPassword, bob_sid.clone(), true, false);
        if let security::Ace::Object(o) = &mut a {
            o.flags = flags;
            o.inherited_object_type = inherited_object_type;
        }
        a
    };
    let write = |d: &mut Directory, dn: &str, ace: security::Ace| write_dacl(d, dn, vec![ace]);
    let inherit = security::CONTAINER_INHERIT | security::INHERIT_ONLY;
    write(&mut d, &users, reset(inherit, Some(computer_class)));
    assert!(!d.has_right(&bob, Right::ResetPassword, &alice), "an ACE for computer objects");
    write(&mut d, &users, reset(inherit, Some(user_class)));
    assert!(d.has_right(&bob, Right::ResetPassword, &alice), "an ACE for user objects");
    write(&mut d, &users, reset(0, None));
    assert!(!d.has_right(&bob, Right::ResetPassword, &alice), "not inherited: the container's own");
    write(&mut d, &alice_dn, reset(security::INHERIT_ONLY, None));
    assert!(!d.has_right(&bob, Right::ResetPassword, &alice), "inherit-only on Alice herself");
    let back = SecurityDescriptor::parse(&d.security_descriptor(&alice, security::DACL)).unwrap();
    assert!(back.dacl.unwrap().contains(&reset(security::INHERIT_ONLY, None)), "kept as written");
    write(&mut d, &alice_dn, reset(0, None));
    assert!(d.has_right(&bob, Right::ResetPassword, &alice), "a plain ACE on Alice");
}

/// An entry the model reads is read back as the administrator wrote it (issue 32, item 6:
/// ADUC listed Unexpire Password "This object and all descendant objects" as "This object
/// only"): the "Applies to" chosen stays; a revoke takes the written entry with it; the lab's
/// own grant reads back in the delegation wizard's form.
#[test]
fn a_written_entry_reads_back_with_its_own_applies_to() {
    let mut d = domain();
    seed(&mut d);
    let base = d.base_dn().to_string();
    let root = ad_ds::dn::Dn::parse(&base).unwrap().key();
    let bob_dn = d.by_sam("Bob").unwrap().dn.to_string();
    let bob_sid = d.by_sam("Bob").unwrap().values("objectSid")[0].to_vec();
    let unexpire =
        security::ace_applying(true, Some(Right::UnexpirePassword), bob_sid.clone(), security::AppliesTo::ThisObjectAndDescendants);
    // (not the wizard's form: "This object and all descendant objects" also reaches users)
    let reset = security::ace_applying(true, Some(Right::ResetPassword), bob_sid.clone(), security::AppliesTo::ThisObjectAndDescendants);
    let sd = d.security_descriptor(&root, security::DACL);
    let sd = security::dacl_with(&sd, &[unexpire.clone(), reset.clone()]).unwrap();
    let m = vec![Modification { op: ModOp::Replace, attr: "nTSecurityDescriptor".into(), values: vec![sd] }];
    d.modify(&system(), &base, m, OpContext { sd_parts: security::DACL, ..OpContext::TLS }).unwrap();
    assert!(d.is_granted(Some(&bob_dn), Right::UnexpirePassword, &base).unwrap());
    assert!(d.is_granted(Some(&bob_dn), Right::ResetPassword, &base).unwrap());
    let back = SecurityDescriptor::parse(&d.security_descriptor(&root, security::DACL)).unwrap().dacl.unwrap();
    assert!(back.contains(&unexpire) && back.contains(&reset), "as written: {back:?}");
    assert!(d.revoke(Some(&bob_dn), Right::UnexpirePassword, &base).unwrap());
    let back = SecurityDescriptor::parse(&d.security_descriptor(&root, security::DACL)).unwrap().dacl.unwrap();
    assert!(!back.contains(&unexpire) && back.contains(&reset), "the revoked entry is gone, the other stays");
    d.grant(Some(&bob_dn), Right::UnexpirePassword, &base).unwrap();
    let back = SecurityDescriptor::parse(&d.security_descriptor(&root, security::DACL)).unwrap().dacl.unwrap();
    let wizard = security::ace_for(true, Right::UnexpirePassword, bob_sid, false, false);
    assert!(back.contains(&wizard) && !back.contains(&unexpire), "the lab's grant in the wizard's form");
    // another trustee's written entry goes with that trustee, Bob's stays as written
    let alice_dn = d.by_sam("Alice").unwrap().dn.to_string();
    let alice_sid = d.by_sam("Alice").unwrap().values("objectSid")[0].to_vec();
    let alices = security::ace_applying(true, Some(Right::WriteLockoutTime), alice_sid, security::AppliesTo::ThisObjectAndDescendants);
    let sd = security::dacl_with(&d.security_descriptor(&root, security::DACL), std::slice::from_ref(&alices)).unwrap();
    let m = vec![Modification { op: ModOp::Replace, attr: "nTSecurityDescriptor".into(), values: vec![sd] }];
    d.modify(&system(), &base, m, OpContext { sd_parts: security::DACL, ..OpContext::TLS }).unwrap();
    d.delete(&system(), &alice_dn).unwrap();
    let back = SecurityDescriptor::parse(&d.security_descriptor(&root, security::DACL)).unwrap().dacl.unwrap();
    assert!(back.contains(&reset) && !back.contains(&alices), "{back:?}");
}

/// Denies the model does not write itself but must honour (issue 31, item 10): "All extended
/// rights" denied (an object ACE with no object type), and Full Control denied (a plain
/// ACCESS_DENIED ACE, GENERIC_ALL), each on the user or inherited from its container — and
/// gone again once the ACE is.
#[test]
fn a_deny_of_all_extended_rights_or_of_full_control_is_honoured() {
    let mut d = domain();
    seed(&mut d);
    let base = d.base_dn().to_string();
    let bob_dn = d.by_sam("Bob").unwrap().dn.to_string();
    d.grant(Some(&bob_dn), Right::ResetPassword, &base).unwrap();
    d.grant(Some(&bob_dn), Right::WriteLockoutTime, &base).unwrap();
    let (bob, _) = principal(&d, "Bob");
    let (_, alice) = principal(&d, "Alice");
    let users = format!("CN=Users,{base}");
    let alice_dn = d.by_sam("Alice").unwrap().dn.to_string();
    let bob_sid = d.by_sam("Bob").unwrap().values("objectSid")[0].to_vec();
    let all_extended = |flags: u8| {
        security::Ace::Object(security::ObjectAce {
            allow: false,
            flags,
            mask: 0x100,
            object_type: None,
            inherited_object_type: None,
            sid: bob_sid.clone(),
        })
    };
    let full_control = {
        let mut a = vec![0x01, 0x00];
        a.extend(((8 + bob_sid.len()) as u16).to_le_bytes());
        a.extend(0x1000_0000u32.to_le_bytes());
        a.extend(&bob_sid);
        security::Ace::Other(a)
    };
    let write = write_dacl;
    assert!(d.has_right(&bob, Right::ResetPassword, &alice));
    write(&mut d, &alice_dn, vec![all_extended(0)]);
    assert!(!d.has_right(&bob, Right::ResetPassword, &alice), "all extended rights denied on Alice");
    assert!(d.has_right(&bob, Right::ChangePassword, &d.by_sam("Bob").unwrap().dn.key()), "only on Alice");
    write(&mut d, &alice_dn, vec![]);
    assert!(d.has_right(&bob, Right::ResetPassword, &alice), "the deny gone, the grant again");
    write(&mut d, &users, vec![all_extended(security::CONTAINER_INHERIT)]);
    assert!(!d.has_right(&bob, Right::ResetPassword, &alice), "inherited from CN=Users");
    write(&mut d, &users, vec![all_extended(0)]);
    assert!(d.has_right(&bob, Right::ResetPassword, &alice), "not inheritable: CN=Users' own");
    write(&mut d, &users, vec![]);
    write(&mut d, &alice_dn, vec![full_control]);
    assert!(!d.has_right(&bob, Right::ResetPassword, &alice), "Full Control denied");
    assert!(!d.has_right(&bob, Right::WriteLockoutTime, &alice), "every right with it");
}

/// unicodePwd written as a lone add (no delete of the old value) is neither a change nor a
/// reset: 50 insufficientAccessRights, as Samba answers it (reference transcripts: "add
/// only"), and nothing changes; a replace (a reset) by the same writer is a different answer.
#[test]
fn a_lone_add_of_unicodepwd_is_refused_as_no_write_access() {
    let mut d = domain();
    seed(&mut d);
    set_password(&mut d, "Alice", "First-Start-Pass-1");
    let dn = d.by_sam("Alice").unwrap().dn.to_string();
    let (alice, _) = principal(&d, "Alice");
    let add = vec![Modification { op: ModOp::Add, attr: "unicodePwd".into(), values: vec![unicode_pwd("Added-Pass-2")] }];
    let err = d.modify(&alice, &dn, add, OpContext::TLS).unwrap_err();
    assert_eq!(err.code, ResultCode::InsufficientAccessRights, "{err:?}");
    assert!(err.message.starts_with("00002098"), "{}", err.message);
    // (Alice was made over LDAP, so disabled: the right password answers 533, a wrong one 52e)
    let answer = |d: &mut Directory, pw: &str| d.bind("DENY\\Alice", pw).unwrap_err().message;
    assert!(answer(&mut d, "First-Start-Pass-1").contains("data 533"), "the password is the one before");
    assert!(answer(&mut d, "Added-Pass-2").contains("data 52e"));
}

/// A deny of Full Control names its trustee: the others' grants on the same object stand.
#[test]
fn a_broad_deny_holds_its_trustee_only() {
    let mut d = domain();
    seed(&mut d);
    let base = d.base_dn().to_string();
    let (bob_dn, alice_dn) = (d.by_sam("Bob").unwrap().dn.to_string(), d.by_sam("Alice").unwrap().dn.to_string());
    let carol_dn = format!("CN=Carol,CN=Users,{base}");
    let attrs = vec![("objectClass".to_string(), vec![b"user".to_vec()]), ("sAMAccountName".to_string(), vec![b"Carol".to_vec()])];
    d.add(&system(), &carol_dn, attrs, OpContext::TLS).unwrap();
    for who in [&bob_dn, &carol_dn] {
        d.grant(Some(who), Right::ResetPassword, &base).unwrap();
    }
    let bob_sid = d.by_sam("Bob").unwrap().values("objectSid")[0].to_vec();
    write_dacl(&mut d, &alice_dn, vec![security::full_control(false, bob_sid, security::AppliesTo::ThisObject)]);
    let (bob, _) = principal(&d, "Bob");
    let (carol, _) = principal(&d, "Carol");
    let (_, alice) = principal(&d, "Alice");
    assert!(!d.has_right(&bob, Right::ResetPassword, &alice), "Bob is denied");
    assert!(d.has_right(&carol, Right::ResetPassword, &alice), "Carol is not named");
    let (_, carol_key) = principal(&d, "Carol");
    assert!(d.has_right(&bob, Right::ResetPassword, &carol_key), "the deny is on Alice: it does not reach her sibling Carol");
    // an inherited broad deny reaches what is below its object, and nothing beside it
    let elsewhere = format!("OU=Elsewhere,{base}");
    d.add(&system(), &elsewhere, vec![("objectClass".to_string(), vec![b"organizationalUnit".to_vec()])], OpContext::TLS).unwrap();
    let bob_sid = d.by_sam("Bob").unwrap().values("objectSid")[0].to_vec();
    write_dacl(&mut d, &elsewhere, vec![security::full_control(false, bob_sid, security::AppliesTo::ThisObjectAndDescendants)]);
    assert!(d.has_right(&bob, Right::ResetPassword, &carol_key), "OU=Elsewhere's deny is not above Carol");
    d.rename(&system(), &carol_dn, "CN=Carol", true, Some(&elsewhere)).unwrap();
    let (_, carol_key) = principal(&d, "Carol");
    assert!(!d.has_right(&bob, Right::ResetPassword, &carol_key), "below it, it is");
}

/// A grant to SELF is each object's own: Alice may do on her own object what she may not do
/// on Bob's.
#[test]
fn a_grant_to_self_reaches_the_object_itself_only() {
    let mut d = domain();
    seed(&mut d);
    let base = d.base_dn().to_string();
    d.grant(Some("SELF"), Right::ResetPassword, &base).unwrap();
    let (alice, alice_key) = principal(&d, "Alice");
    let (_, bob_key) = principal(&d, "Bob");
    assert!(d.has_right(&alice, Right::ResetPassword, &alice_key), "her own");
    assert!(!d.has_right(&alice, Right::ResetPassword, &bob_key), "not Bob's");
}

/// MS-SAMR 3.1.1.8.7: a password written by someone who holds Unexpire Password on the
/// domain object (Authenticated Users do, by default) leaves pwdLastSet at now; by someone
/// denied it, at 0 — the new password is expired at once, for a reset and for a change alike.
/// Samba writes now either way (scenarios/ad/unexpire-password-decides-pwdlastset.yaml says so).
#[test]
fn a_password_written_without_unexpire_password_on_the_domain_expires_at_once_samba_sets_now() {
    let mut d = domain();
    seed(&mut d);
    set_password(&mut d, "Alice", "First-Start-Pass-1");
    let base = d.base_dn().to_string();
    let bob_dn = d.by_sam("Bob").unwrap().dn.to_string();
    let alice_dn = d.by_sam("Alice").unwrap().dn.to_string();
    d.grant(Some(&bob_dn), Right::ResetPassword, &base).unwrap();
    let (bob, _) = principal(&d, "Bob");
    let (alice, _) = principal(&d, "Alice");
    let reset = |pw: &str| vec![Modification { op: ModOp::Replace, attr: "unicodePwd".into(), values: vec![unicode_pwd(pw)] }];
    let pwd_last_set = |d: &Directory| d.by_sam("Alice").unwrap().int("pwdLastSet").unwrap();
    let now = |d: &Directory| d.clock().filetime();

    d.modify(&bob, &alice_dn, reset("By-Bob-Pass-1"), OpContext::TLS).unwrap();
    assert_eq!(pwd_last_set(&d), now(&d), "Bob holds Unexpire Password by default");
    d.deny(Some(&bob_dn), Right::UnexpirePassword, &base).unwrap();
    d.modify(&bob, &alice_dn, reset("By-Bob-Pass-2"), OpContext::TLS).unwrap();
    assert_eq!(pwd_last_set(&d), 0, "denied it, Bob's reset is expired at once");
    d.modify(&alice, &alice_dn, change("By-Bob-Pass-2", "Own-Change-Pass-3"), OpContext::TLS).unwrap();
    assert_eq!(pwd_last_set(&d), now(&d), "the deny names Bob only: Alice's own change is not expired");
    d.deny(None, Right::UnexpirePassword, &base).unwrap();
    // (past the domain's minimum password age)
    d.clock().advance(std::time::Duration::from_secs(2 * 86_400));
    d.modify(&alice, &alice_dn, change("Own-Change-Pass-3", "Own-Change-Pass-4"), OpContext::TLS).unwrap();
    assert_eq!(pwd_last_set(&d), 0, "denied to Everyone: a change expires at once too");
    d.modify(&system(), &alice_dn, reset("By-Admin-Pass-5"), OpContext::TLS).unwrap();
    assert_eq!(pwd_last_set(&d), now(&d), "an administrator is not held by the deny");
    assert!(d.remove_deny(None, Right::UnexpirePassword, &base).unwrap());
    assert!(d.remove_deny(Some(&bob_dn), Right::UnexpirePassword, &base).unwrap());
    d.modify(&bob, &alice_dn, reset("By-Bob-Pass-6"), OpContext::TLS).unwrap();
    assert_eq!(pwd_last_set(&d), now(&d), "the denies gone, the default again");
}

/// Unexpire Password is a right on the domain object: it is not inherited by the users below
/// it (their descriptors do not show it), and it does not let anyone write a user's pwdLastSet
/// (-1 included): that is Write pwdLastSet's.
#[test]
fn unexpire_password_stays_on_the_domain_object() {
    let mut d = domain();
    seed(&mut d);
    let alice = d.by_sam("Alice").unwrap().dn.clone();
    let unexpire = Right::UnexpirePassword.guid();
    let names_unexpire = |sd: &[u8]| {
        SecurityDescriptor::parse(sd)
            .unwrap()
            .dacl
            .unwrap_or_default()
            .iter()
            .any(|a| matches!(a, security::Ace::Object(o) if o.object_type == Some(unexpire)))
    };
    assert!(names_unexpire(&d.security_descriptor(&d.base_dn().key(), 0)), "on the domain object");
    assert!(!names_unexpire(&d.security_descriptor(&alice.key(), 0)), "not inherited by a user");
    let (bob, _) = principal(&d, "Bob");
    let m = vec![Modification { op: ModOp::Replace, attr: "pwdLastSet".into(), values: vec![b"-1".to_vec()] }];
    let err = d.modify(&bob, &alice.to_string(), m.clone(), OpContext::TLS).unwrap_err();
    assert_eq!(err.code, ResultCode::InsufficientAccessRights, "{err:?}");
    d.grant(Some(&d.by_sam("Bob").unwrap().dn.to_string()), Right::WritePwdLastSet, &d.base_dn().to_string()).unwrap();
    d.modify(&bob, &alice.to_string(), m, OpContext::TLS).unwrap();
}

/// An administrator's write of `dn`'s DACL, with the SD-flags control naming the DACL only.
fn write_dacl(d: &mut Directory, dn: &str, aces: Vec<security::Ace>) {
    let sd = SecurityDescriptor { dacl: Some(aces), ..Default::default() }.to_bytes();
    let m = vec![Modification { op: ModOp::Replace, attr: "nTSecurityDescriptor".into(), values: vec![sd] }];
    d.modify(&system(), dn, m, OpContext { sd_parts: security::DACL, ..OpContext::TLS }).unwrap();
}

fn domain() -> Directory {
    let cfg = DomainConfig {
        dns_name: "deny.example".into(),
        netbios: "DENY".into(),
        dc_name: "DC1".into(),
        sid: [1, 2, 3],
        seed: 1,
        admin_password: "Deny-Admin-Pass-1".into(),
    };
    Directory::new(cfg, Clock::frozen(Clock::lab_epoch()))
}

fn everyone() -> Vec<u8> {
    ad_ds::sid::Sid::parse("S-1-1-0").unwrap().to_bytes()
}

fn self_sid() -> Vec<u8> {
    ad_ds::sid::Sid::parse("S-1-5-10").unwrap().to_bytes()
}

/// The same ACE as if written explicitly (to read an inherited one through the model).
fn unflag(a: &security::Ace) -> security::Ace {
    match a {
        security::Ace::Object(o) => security::Ace::Object(security::ObjectAce { flags: 0, ..o.clone() }),
        other => other.clone(),
    }
}

fn change(old: &str, new: &str) -> Vec<Modification> {
    vec![
        Modification { op: ModOp::Delete, attr: "unicodePwd".into(), values: vec![unicode_pwd(old)] },
        Modification { op: ModOp::Add, attr: "unicodePwd".into(), values: vec![unicode_pwd(new)] },
    ]
}

fn set_password(d: &mut Directory, sam: &str, password: &str) {
    let dn = d.by_sam(sam).unwrap().dn.to_string();
    let m = vec![Modification { op: ModOp::Replace, attr: "unicodePwd".into(), values: vec![unicode_pwd(password)] }];
    d.modify(&system(), &dn, m, OpContext::TLS).unwrap();
}

/// Two plain users under CN=Users.
fn seed(d: &mut Directory) {
    let tls = OpContext::TLS;
    for sam in ["Alice", "Bob"] {
        let dn = format!("CN={sam},CN=Users,{}", d.base_dn());
        let attrs =
            vec![("objectClass".to_string(), vec![b"user".to_vec()]), ("sAMAccountName".to_string(), vec![sam.as_bytes().to_vec()])];
        d.add(&system(), &dn, attrs, tls).expect("add");
    }
}

/// The SD-flags control says which parts a descriptor write sets: a write without it sets
/// the DACL too (the whole descriptor), one naming the owner only leaves the DACL alone.
#[test]
fn a_descriptor_write_sets_the_dacl_unless_the_sd_flags_name_other_parts() {
    let mut d = domain();
    seed(&mut d);
    let (bob, _) = principal(&d, "Bob");
    let (_, alice) = principal(&d, "Alice");
    let alice_dn = d.by_sam("Alice").unwrap().dn.to_string();
    let bob_sid = d.by_sam("Bob").unwrap().values("objectSid")[0].to_vec();
    let reset = security::ace_for(true, Right::ResetPassword, bob_sid, true, false);
    let sd = SecurityDescriptor { dacl: Some(vec![reset]), ..Default::default() }.to_bytes();
    let write = |d: &mut Directory, parts: u32| {
        let m = vec![Modification { op: ModOp::Replace, attr: "nTSecurityDescriptor".into(), values: vec![sd.clone()] }];
        d.modify(&system(), &alice_dn, m, OpContext { sd_parts: parts, ..OpContext::TLS }).unwrap();
    };
    write(&mut d, security::OWNER);
    assert!(!d.has_right(&bob, Right::ResetPassword, &alice), "the owner only: the DACL untouched");
    write(&mut d, 0);
    assert!(d.has_right(&bob, Right::ResetPassword, &alice), "no control: the whole descriptor, its DACL too");
}

/// A deleted object's ACL goes with it: a new object at the same DN starts without it.
#[test]
fn a_new_object_at_a_deleted_ones_dn_starts_without_its_acl() {
    let mut d = domain();
    seed(&mut d);
    let dn = d.by_sam("Alice").unwrap().dn.to_string();
    d.deny(None, Right::ChangePassword, &dn).unwrap();
    d.delete(&system(), &dn).unwrap();
    let attrs = vec![("objectClass".into(), vec![b"user".to_vec()]), ("sAMAccountName".into(), vec![b"Alice".to_vec()])];
    d.add(&system(), &dn, attrs, OpContext::TLS).unwrap();
    let (alice, ka) = principal(&d, "Alice");
    assert!(d.has_right(&alice, Right::ChangePassword, &ka), "the old deny went with the old object");
}

/// ADUC's "Disable inheritance" (inherited entries removed) writes the DACL back with
/// SE_DACL_PROTECTED: a right granted on the domain root no longer reaches the object, one
/// granted on the object itself still does; the descriptor read back says so. Enabling it
/// again (a write without the bit, or the lab's switch) restores what is inherited. Cloud
/// Sync's troubleshooting: "users with inheritance disabled are not written back".
#[test]
fn a_protected_dacl_inherits_nothing_from_above() {
    let mut d = domain();
    seed(&mut d);
    let (bob, _) = principal(&d, "Bob");
    let (_, alice) = principal(&d, "Alice");
    let (alice_dn, bob_dn) = (d.by_sam("Alice").unwrap().dn.to_string(), d.by_sam("Bob").unwrap().dn.to_string());
    let root = d.base_dn().to_string();
    d.grant(Some(&bob_dn), Right::ResetPassword, &root).unwrap();
    d.grant(Some(&bob_dn), Right::WriteLockoutTime, &alice_dn).unwrap();
    assert!(d.has_right(&bob, Right::ResetPassword, &alice) && d.inherits(&alice_dn).unwrap());
    let read = |d: &Directory| SecurityDescriptor::parse(&d.security_descriptor(&alice, security::DACL)).unwrap();
    let before = read(&d);
    assert_eq!(before.dacl_control & security::SE_DACL_PROTECTED, 0);
    assert!(before.dacl.as_ref().unwrap().iter().any(|a| a.flags() & security::INHERITED != 0), "the root's grant shows inherited");
    // what ADUC writes: the explicit entries only, the protected bit set
    let explicit: Vec<_> = before.dacl.unwrap().into_iter().filter(|a| a.flags() & security::INHERITED == 0).collect();
    let sd = SecurityDescriptor { dacl: Some(explicit.clone()), dacl_control: security::SE_DACL_PROTECTED, ..Default::default() };
    let m = vec![Modification { op: ModOp::Replace, attr: "nTSecurityDescriptor".into(), values: vec![sd.to_bytes()] }];
    d.modify(&system(), &alice_dn, m, OpContext { sd_parts: security::DACL, ..OpContext::TLS }).unwrap();
    assert!(!d.inherits(&alice_dn).unwrap());
    assert!(!d.has_right(&bob, Right::ResetPassword, &alice), "the root's grant no longer reaches Alice");
    assert!(d.has_right(&bob, Right::WriteLockoutTime, &alice), "the entry on Alice herself still counts");
    let after = read(&d);
    assert_eq!(after.dacl_control & security::SE_DACL_PROTECTED, security::SE_DACL_PROTECTED);
    // the SD-flags control's parts: the owner alone is the owner alone
    let owner_only = SecurityDescriptor::parse(&d.security_descriptor(&alice, security::OWNER)).unwrap();
    assert!(owner_only.owner.is_some() && owner_only.group.is_none() && owner_only.dacl.is_none());
    assert!(after.dacl.unwrap().iter().all(|a| a.flags() & security::INHERITED == 0), "nothing inherited is shown");
    // the protection moves with the object, and a write without the bit lifts it
    d.rename(&system(), &alice_dn, "CN=Alice", true, Some(&root)).unwrap();
    let moved = format!("CN=Alice,{root}");
    assert!(!d.inherits(&moved).unwrap());
    let sd = SecurityDescriptor { dacl: Some(explicit), ..Default::default() };
    let m = vec![Modification { op: ModOp::Replace, attr: "nTSecurityDescriptor".into(), values: vec![sd.to_bytes()] }];
    d.modify(&system(), &moved, m, OpContext { sd_parts: security::DACL, ..OpContext::TLS }).unwrap();
    let (_, alice) = principal(&d, "Alice");
    assert!(d.inherits(&moved).unwrap() && d.has_right(&bob, Right::ResetPassword, &alice));
    // the lab's switch does the same
    d.set_inheritance(&moved, false).unwrap();
    assert!(!d.has_right(&bob, Right::ResetPassword, &alice));
    d.set_inheritance(&moved, true).unwrap();
    assert!(d.has_right(&bob, Right::ResetPassword, &alice));
}
