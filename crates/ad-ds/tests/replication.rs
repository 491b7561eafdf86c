//! Two DCs of one domain: what one writes reaches the other only when it replicates, each
//! keeps its own USNs and bookkeeping, a change never comes back as new, and of two writes to
//! one object between replications the later wins.

use ad_ds::directory::{ModOp, Modification, OpContext};
use ad_ds::domain::system;
use ad_ds::password::unicode_pwd;
use ad_ds::{Directory, DomainConfig};
use clock::Clock;

const USER: &str = "CN=Rep,CN=Users,DC=rep,DC=example";

fn pair() -> (Directory, Directory, Clock) {
    let cfg = DomainConfig {
        dns_name: "rep.example".into(),
        netbios: "REP".into(),
        dc_name: "DC1".into(),
        sid: [1, 2, 3],
        seed: 9,
        admin_password: "Rep-Admin-Pass-1".into(),
    };
    let clock = Clock::frozen(Clock::lab_epoch());
    let mut dc1 = Directory::new(cfg, clock.clone());
    let attrs = vec![
        ("objectClass".to_string(), vec![b"user".to_vec()]),
        ("sAMAccountName".into(), vec![b"Rep".to_vec()]),
        ("unicodePwd".into(), vec![unicode_pwd("Blue-Ocean-71")]),
        ("userAccountControl".into(), vec![b"512".to_vec()]),
    ];
    dc1.add(&system(), USER, attrs, OpContext::TLS).unwrap();
    let m = Modification { op: ModOp::Replace, attr: "lockoutThreshold".into(), values: vec![b"3".to_vec()] };
    dc1.modify(&system(), "DC=rep,DC=example", vec![m], OpContext::TLS).unwrap();
    let dc2 = dc1.replica("DC2", 1);
    (dc1, dc2, clock)
}

fn set(d: &mut Directory, attr: &str, value: &str) {
    let m = Modification { op: ModOp::Replace, attr: attr.into(), values: vec![value.as_bytes().to_vec()] };
    d.modify(&system(), USER, vec![m], OpContext::TLS).unwrap();
}

fn get(d: &Directory, attr: &str) -> Option<String> {
    d.by_sam("Rep").and_then(|e| e.first_str(attr).map(str::to_string))
}

#[test]
fn a_write_reaches_the_partner_when_it_replicates_and_never_comes_back() {
    let (mut dc1, mut dc2, clock) = pair();
    assert_eq!(dc2.config().dc_name, "DC2");
    assert_eq!(dc1.by_sam("Rep").unwrap().guid(), dc2.by_sam("Rep").unwrap().guid(), "one object, two copies");
    let mark_1 = dc1.highest_usn();
    clock.advance(std::time::Duration::from_secs(60));
    set(&mut dc1, "description", "written on DC1");
    let reset = Modification { op: ModOp::Replace, attr: "unicodePwd".into(), values: vec![unicode_pwd("Green-Field-82")] };
    dc1.modify(&system(), USER, vec![reset], OpContext::TLS).unwrap();
    // not yet on DC2: its copy is the old one, old password included
    assert_eq!(get(&dc2, "description"), None);
    assert!(dc2.bind(USER, "Blue-Ocean-71").is_ok() && dc2.bind(USER, "Green-Field-82").is_err());
    let changes = dc1.changes_since(mark_1);
    assert_eq!(dc2.apply(&changes), 1, "the user, once");
    assert_eq!(get(&dc2, "description").as_deref(), Some("written on DC1"));
    assert!(dc2.bind(USER, "Green-Field-82").is_ok(), "the new password's hash replicated");
    // that good bind was an originating write on DC2 (lastLogonTimestamp replicates): DC1
    // takes it; pulled back again, nothing is new on either side
    let mark_1b = dc1.highest_usn();
    assert_eq!(dc1.apply(&dc2.changes_since(0)), 1);
    assert!(get(&dc1, "lastLogonTimestamp").is_some());
    assert_eq!(dc2.apply(&dc1.changes_since(mark_1b)), 0, "its own change does not come back as new");
    assert_eq!(dc1.apply(&dc2.changes_since(0)), 0, "applied twice: nothing new");
}

#[test]
fn bad_password_counts_stay_on_each_dc_and_a_lockout_replicates() {
    let (mut dc1, mut dc2, _clock) = pair();
    set(&mut dc1, "description", "x");
    let mark = dc2.highest_usn();
    assert!(dc2.bind(USER, "wrong").is_err());
    assert_eq!(get(&dc2, "badPwdCount").as_deref(), Some("1"));
    assert_eq!(dc2.highest_usn(), mark, "a bad password is not a replicated write");
    dc2.apply(&dc1.changes_since(0));
    assert_eq!(get(&dc2, "badPwdCount").as_deref(), Some("1"), "DC1's copy did not overwrite DC2's count");
    assert_eq!(get(&dc1, "badPwdCount").as_deref(), Some("0"), "DC1 counted nothing");
    // a lockout on DC1 (threshold 3) is a replicated write: lockoutTime reaches DC2, DC1's
    // count of 3 does not
    let m1 = dc1.highest_usn();
    for _ in 0..3 {
        assert!(dc1.bind(USER, "wrong").is_err());
    }
    assert!(get(&dc1, "lockoutTime").is_some_and(|t| t != "0"));
    dc2.apply(&dc1.changes_since(m1));
    assert!(get(&dc2, "lockoutTime").is_some_and(|t| t != "0"), "the lockout replicated");
    assert_eq!(get(&dc2, "badPwdCount").as_deref(), Some("1"), "DC2 kept its own count");
    set(&mut dc2, "lockoutTime", "0");
}

#[test]
fn of_two_writes_between_replications_the_later_wins_on_both() {
    let (mut dc1, mut dc2, clock) = pair();
    let (m1, m2) = (dc1.highest_usn(), dc2.highest_usn());
    clock.advance(std::time::Duration::from_secs(1));
    set(&mut dc1, "description", "DC1's");
    clock.advance(std::time::Duration::from_secs(1));
    set(&mut dc2, "description", "DC2's, later");
    let (from1, from2) = (dc1.changes_since(m1), dc2.changes_since(m2));
    dc2.apply(&from1);
    dc1.apply(&from2);
    assert_eq!(get(&dc1, "description").as_deref(), Some("DC2's, later"));
    assert_eq!(get(&dc2, "description").as_deref(), Some("DC2's, later"));
}

#[test]
fn deletes_new_objects_and_memberships_replicate() {
    let (mut dc1, mut dc2, _clock) = pair();
    let m1 = dc1.highest_usn();
    let attrs = vec![
        ("objectClass".to_string(), vec![b"group".to_vec()]),
        ("sAMAccountName".into(), vec![b"Team".to_vec()]),
        ("member".into(), vec![USER.as_bytes().to_vec()]),
    ];
    dc1.add(&system(), "CN=Team,CN=Users,DC=rep,DC=example", attrs, OpContext::TLS).unwrap();
    dc2.apply(&dc1.changes_since(m1));
    let member_of = dc2.by_sam("Rep").unwrap().values("memberOf").len();
    assert_eq!(member_of, 1, "DC2 made the back link from the group it received");
    // a user created on DC2 takes a SID from DC2's own RID pool
    let attrs = vec![("objectClass".to_string(), vec![b"user".to_vec()]), ("sAMAccountName".into(), vec![b"New2".to_vec()])];
    dc2.add(&system(), "CN=New2,CN=Users,DC=rep,DC=example", attrs, OpContext::TLS).unwrap();
    let sid_of = |d: &Directory, s: &str| d.by_sam(s).unwrap().values("objectSid")[0].to_vec();
    assert_ne!(sid_of(&dc2, "New2"), sid_of(&dc1, "Team"));
    let m1 = dc1.highest_usn();
    dc1.delete(&system(), "CN=Team,CN=Users,DC=rep,DC=example").unwrap();
    dc2.apply(&dc1.changes_since(m1));
    assert!(dc2.by_sam("Team").is_none());
    assert!(dc2.by_sam("Rep").unwrap().values("memberOf").is_empty());
}

#[test]
fn each_dc_draws_its_own_guids_and_rids() {
    let (mut dc1, _, _) = pair();
    let mut dc2 = dc1.replica("DC2", 1);
    let mut dc3 = dc1.replica("DC3", 2);
    let next = |d: &mut Directory, name: &str| {
        let attrs = vec![("objectClass".to_string(), vec![b"user".to_vec()]), ("sAMAccountName".into(), vec![name.as_bytes().to_vec()])];
        d.add(&system(), &format!("CN={name},CN=Users,DC=rep,DC=example"), attrs, OpContext::TLS).unwrap();
        let e = d.by_sam(name).unwrap();
        let sid = ad_ds::sid::Sid::from_bytes(&e.values("objectSid")[0]).unwrap().to_string();
        (e.guid().unwrap(), sid.rsplit('-').next().unwrap().parse::<u32>().unwrap())
    };
    // the same moment on three DCs: three GUIDs, three RIDs a pool apart
    let (g1, r1) = next(&mut dc1, "On1");
    let (g2, r2) = next(&mut dc2, "On2");
    let (g3, r3) = next(&mut dc3, "On3");
    assert!(g1 != g2 && g2 != g3 && g1 != g3);
    assert_eq!((r2, r3), (r1 + ad_ds::directory::RID_POOL, r1 + 2 * ad_ds::directory::RID_POOL));
    for d in [&dc2, &dc3] {
        let guids: std::collections::HashSet<[u8; 16]> = d.unordered_entries().filter_map(|e| e.guid()).collect();
        assert_eq!(guids.len(), d.unordered_entries().count(), "no GUID drawn twice on a DC");
    }
}

#[test]
fn a_partner_asks_for_what_is_above_its_watermark_only() {
    let (mut dc1, _, _) = pair();
    set(&mut dc1, "description", "x");
    assert!(dc1.changes_since(dc1.highest_usn()).changes.is_empty(), "the watermark's own change is already held");
    assert_eq!(dc1.changes_since(dc1.highest_usn() - 1).changes.len(), 1);
    dc1.delete(&system(), USER).unwrap();
    // a delete's tombstone takes a USN, and the delete one more: at the tombstone's, nothing
    let deleted =
        |c: &ad_ds::directory::Changes| c.changes.iter().filter(|c| matches!(c, ad_ds::directory::Change::Deleted { .. })).count();
    assert_eq!(deleted(&dc1.changes_since(dc1.highest_usn() - 1)), 0);
    assert_eq!(deleted(&dc1.changes_since(dc1.highest_usn() - 2)), 1);
}

#[test]
fn a_delete_wins_over_a_write_made_elsewhere_meanwhile() {
    let (mut dc1, mut dc2, clock) = pair();
    let (m1, m2) = (dc1.highest_usn(), dc2.highest_usn());
    dc1.delete(&system(), USER).unwrap();
    clock.advance(std::time::Duration::from_secs(5));
    set(&mut dc2, "description", "written on DC2 after DC1's delete");
    let (from1, from2) = (dc1.changes_since(m1), dc2.changes_since(m2));
    dc2.apply(&from1);
    dc1.apply(&from2);
    assert!(dc2.by_sam("Rep").is_none(), "the delete reached DC2");
    assert!(dc1.by_sam("Rep").is_none(), "DC2's write did not bring it back on DC1");
}

#[test]
fn the_aces_on_an_object_travel_with_it() {
    let (mut dc1, mut dc2, _clock) = pair();
    let m1 = dc1.highest_usn();
    let helper = "CN=Administrator,CN=Users,DC=rep,DC=example";
    dc1.grant(Some(helper), ad_ds::access::Right::ResetPassword, USER).unwrap();
    dc1.deny(None, ad_ds::access::Right::ChangePassword, USER).unwrap();
    set(&mut dc1, "description", "its ACL changed");
    let root_grant = dc2.is_granted(Some(helper), ad_ds::access::Right::ResetPassword, "DC=rep,DC=example").unwrap();
    // what DC2 holds on other objects stays: the domain's grant to Everyone, a deny of DC2's own
    let other = "CN=Other,CN=Users,DC=rep,DC=example";
    let attrs = vec![
        ("objectClass".to_string(), vec![b"user".to_vec()]),
        ("sAMAccountName".into(), vec![b"Other".to_vec()]),
        ("unicodePwd".into(), vec![unicode_pwd("Amber-Hill-35")]),
        ("userAccountControl".into(), vec![b"512".to_vec()]),
    ];
    dc2.add(&system(), other, attrs, OpContext::TLS).unwrap();
    let no_min_age = Modification { op: ModOp::Replace, attr: "minPwdAge".into(), values: vec![b"0".to_vec()] };
    dc2.modify(&system(), "DC=rep,DC=example", vec![no_min_age], OpContext::TLS).unwrap();
    dc2.deny(None, ad_ds::access::Right::ChangePassword, other).unwrap();
    dc2.apply(&dc1.changes_since(m1));
    assert!(dc2.is_granted(None, ad_ds::access::Right::ChangePassword, "DC=rep,DC=example").unwrap());
    let own_change = vec![
        Modification { op: ModOp::Delete, attr: "unicodePwd".into(), values: vec![unicode_pwd("Amber-Hill-35")] },
        Modification { op: ModOp::Add, attr: "unicodePwd".into(), values: vec![unicode_pwd("Birch-Lane-46")] },
    ];
    let who = dc2.bind(other, "Amber-Hill-35").unwrap();
    let r = dc2.modify(&who, other, own_change, OpContext::TLS);
    assert!(r.as_ref().is_err_and(|e| e.message.contains("00000005")), "DC2's own deny stayed: {r:?}");
    assert!(dc2.is_granted(Some(helper), ad_ds::access::Right::ResetPassword, USER).unwrap());
    assert_eq!(
        dc2.is_granted(Some(helper), ad_ds::access::Right::ResetPassword, "DC=rep,DC=example").unwrap(),
        root_grant,
        "only the object's own"
    );
    // the deny came too: the user's own change is refused on DC2 (constraintViolation 00000005)
    let change = vec![
        Modification { op: ModOp::Delete, attr: "unicodePwd".into(), values: vec![unicode_pwd("Blue-Ocean-71")] },
        Modification { op: ModOp::Add, attr: "unicodePwd".into(), values: vec![unicode_pwd("Green-Field-82")] },
    ];
    let me = dc2.bind(USER, "Blue-Ocean-71").unwrap();
    let err = dc2.modify(&me, USER, change, OpContext::TLS).unwrap_err();
    assert!(err.message.contains("00000005"), "{err:?}");
}

#[test]
fn a_rename_moves_the_object_on_the_partner() {
    let (mut dc1, mut dc2, _clock) = pair();
    let m1 = dc1.highest_usn();
    dc1.rename(&system(), USER, "CN=Renamed", true, None).unwrap();
    dc2.apply(&dc1.changes_since(m1));
    let e = dc2.by_sam("Rep").unwrap();
    assert_eq!(e.dn.to_string(), "CN=Renamed,CN=Users,DC=rep,DC=example");
    assert!(dc2.resolve(USER).is_err(), "nothing left at the old name");
    assert!(dc2.bind("CN=Renamed,CN=Users,DC=rep,DC=example", "Blue-Ocean-71").is_ok());
}

#[test]
fn a_renamed_container_takes_what_is_below_it_on_the_partner() {
    let (mut dc1, mut dc2, _clock) = pair();
    let ou = "OU=Old,DC=rep,DC=example";
    dc1.add(&system(), ou, vec![("objectClass".to_string(), vec![b"organizationalUnit".to_vec()])], OpContext::TLS).unwrap();
    let attrs = vec![("objectClass".to_string(), vec![b"user".to_vec()]), ("sAMAccountName".into(), vec![b"Inside".to_vec()])];
    dc1.add(&system(), &format!("CN=Inside,{ou}"), attrs, OpContext::TLS).unwrap();
    dc2.apply(&dc1.changes_since(0));
    let m1 = dc1.highest_usn();
    dc1.rename(&system(), ou, "OU=New", true, None).unwrap();
    dc2.apply(&dc1.changes_since(m1));
    assert_eq!(dc2.by_sam("Inside").unwrap().dn.to_string(), "CN=Inside,OU=New,DC=rep,DC=example");
    assert!(dc2.resolve(ou).is_err() && dc2.resolve("OU=New,DC=rep,DC=example").is_ok());
}
