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
