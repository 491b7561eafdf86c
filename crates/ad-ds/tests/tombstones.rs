//! Deleted objects: the tombstone a delete leaves, who may read it (with the show-deleted
//! control), and the replication rights that gate secrets.

use ad_ds::access::Right;
use ad_ds::directory::{OpContext, Selection};
use ad_ds::domain::system;
use ad_ds::filter::Filter;
use ad_ds::{Directory, DomainConfig, Principal};
use clock::Clock;

fn directory() -> Directory {
    let cfg = DomainConfig {
        dns_name: "tomb.example".into(),
        netbios: "TOMB".into(),
        dc_name: "DC1".into(),
        sid: [1, 2, 3],
        seed: 4,
        admin_password: "Tomb-Admin-Pass-1".into(),
    };
    let mut d = Directory::new(cfg, Clock::frozen(Clock::lab_epoch()));
    let attrs = vec![("objectClass".to_string(), vec![b"user".to_vec()]), ("sAMAccountName".into(), vec![b"Gone".to_vec()])];
    d.add(&system(), "CN=Gone,CN=Users,DC=tomb,DC=example", attrs, OpContext::default()).unwrap();
    let attrs = vec![("objectClass".to_string(), vec![b"user".to_vec()]), ("sAMAccountName".into(), vec![b"Reader".to_vec()])];
    d.add(&system(), "CN=Reader,CN=Users,DC=tomb,DC=example", attrs, OpContext::default()).unwrap();
    d
}

fn reader() -> Principal {
    Principal::User { dn: ad_ds::dn::Dn::parse("CN=Reader,CN=Users,DC=tomb,DC=example").unwrap(), sam: "Reader".into(), admin: false }
}

#[test]
fn a_delete_leaves_a_tombstone_that_replication_rights_can_read() {
    let mut d = directory();
    let guid = d.by_sam("Gone").unwrap().guid().unwrap();
    let before = d.highest_usn();
    d.delete(&system(), "CN=Gone,CN=Users,DC=tomb,DC=example").unwrap();
    assert!(d.by_sam("Gone").is_none(), "the name is free again");
    let all = Filter::Equal("isDeleted".into(), "TRUE".into());
    let sel = Selection::from_request(&["*".to_string()], false);
    assert!(d.deleted_matching(&reader(), &all, &sel).is_err(), "an ordinary user sees no tombstones");
    assert!(!d.may_replicate_secrets(&reader()));
    d.grant(Some("CN=Reader,CN=Users,DC=tomb,DC=example"), Right::ReplicatingDirectoryChanges, "DC=tomb,DC=example").unwrap();
    let found = d.deleted_matching(&reader(), &all, &sel).unwrap();
    assert_eq!(found.len(), 1);
    let (dn, attrs) = &found[0];
    assert!(dn.starts_with("CN=Gone\\0ADEL:") && dn.ends_with(",CN=Deleted Objects,DC=tomb,DC=example"), "{dn}");
    let get = |n: &str| attrs.iter().find(|(a, _)| a == n).map(|(_, v)| v[0].clone());
    assert_eq!(get("objectGUID"), Some(guid.to_vec()));
    assert_eq!(get("lastKnownParent"), Some(b"CN=Users,DC=tomb,DC=example".to_vec()));
    let usn: i64 = String::from_utf8(get("uSNChanged").unwrap()).unwrap().parse().unwrap();
    assert!(usn > before);
    // a delta reader asks for what changed after its watermark
    let later = Filter::GreaterOrEqual("uSNChanged".into(), (usn + 1).to_string());
    assert!(d.deleted_matching(&reader(), &later, &sel).unwrap().is_empty());
    // secrets need both replication rights
    d.grant(Some("CN=Reader,CN=Users,DC=tomb,DC=example"), Right::ReplicatingDirectoryChangesAll, "DC=tomb,DC=example").unwrap();
    assert!(d.may_replicate_secrets(&reader()));
}
