//! Property: for random on-premises edits (users added in and out of the sync scope,
//! deleted, moved across it, renamed, disabled, their passwords reset) and sync cycles
//! (delta or initial) in any order, after every cycle the tenant's synced users are exactly
//! the scoped AD users: same anchor, UPN, display name, enabled flag, and a cloud password
//! that is AD's.

use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;
use hybrid_lab_tests::{TestLab, Via, with_engine_lab};
use ldap3::Mod;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// A new user, in the scope or not.
    Add {
        in_scope: bool,
    },
    Delete(usize),
    /// Across the scope boundary and back.
    Move(usize),
    Rename(usize),
    Disable(usize, bool),
    Reset(usize),
    Sync {
        initial: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..4usize;
    prop_oneof![
        3 => any::<bool>().prop_map(|in_scope| Op::Add { in_scope }),
        2 => who.clone().prop_map(Op::Delete),
        2 => who.clone().prop_map(Op::Move),
        2 => who.clone().prop_map(Op::Rename),
        1 => (who.clone(), any::<bool>()).prop_map(|(u, d)| Op::Disable(u, d)),
        2 => who.prop_map(Op::Reset),
        3 => Just(Op::Sync { initial: false }),
        1 => Just(Op::Sync { initial: true }),
    ]
}

const IN: &str = "OU=Lab Users";
const OUT: &str = "OU=Not Synced";

/// What the test knows of the users it made.
struct Made {
    sam: String,
    ou: &'static str,
    password: String,
}

fn q(s: &str) -> Vec<u8> {
    format!("\"{s}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The scoped AD users (anchor → UPN, display name, enabled), read as an administrator.
async fn scoped_ad_users(t: &TestLab) -> BTreeMap<String, (String, String, bool)> {
    let mut l = t.admin(Via::Ldaps).await;
    let base = format!("{IN},{}", t.base());
    let (entries, _) = l
        .search(
            &base,
            ldap3::Scope::Subtree,
            "(objectClass=user)",
            vec!["objectGUID", "userPrincipalName", "displayName", "sAMAccountName", "userAccountControl"],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    entries
        .into_iter()
        .map(ldap3::SearchEntry::construct)
        .filter(|e| !e.attrs["sAMAccountName"][0].starts_with("MSOL_"))
        .map(|e| {
            let uac: i64 = e.attrs["userAccountControl"][0].parse().unwrap();
            let name = e.attrs.get("displayName").map(|v| v[0].clone()).unwrap_or_else(|| e.attrs["sAMAccountName"][0].clone());
            (b64.encode(&e.bin_attrs["objectGUID"][0]), (e.attrs["userPrincipalName"][0].to_lowercase(), name, uac & 2 == 0))
        })
        .collect()
}

fn run_case(ops: Vec<Op>) {
    with_engine_lab(|t, engine| async move {
        let base = t.base();
        let mut made: Vec<Made> = vec![];
        let mut n = 0;
        for op in ops {
            n += 1;
            let mut l = t.admin(Via::Ldaps).await;
            match op {
                Op::Add { in_scope } => {
                    let (sam, ou) = (format!("Prop{n}"), if in_scope { IN } else { OUT });
                    let password = format!("Prop-Start-{n}-Xy");
                    let attrs = vec![
                        (b"objectClass".to_vec(), HashSet::from([b"user".to_vec()])),
                        (b"sAMAccountName".to_vec(), HashSet::from([sam.clone().into_bytes()])),
                        (b"userPrincipalName".to_vec(), HashSet::from([format!("{sam}@testlab.example").into_bytes()])),
                        (b"unicodePwd".to_vec(), HashSet::from([q(&password)])),
                        (b"userAccountControl".to_vec(), HashSet::from([b"512".to_vec()])),
                    ];
                    let r = l.add(&format!("CN={sam},{ou},{base}"), attrs).await.unwrap();
                    assert_eq!(r.rc, 0, "{}", r.text);
                    made.push(Made { sam, ou, password });
                }
                Op::Delete(i) if i < made.len() => {
                    let m = made.remove(i);
                    l.delete(&format!("CN={},{},{base}", m.sam, m.ou)).await.unwrap().success().unwrap();
                }
                Op::Move(i) if i < made.len() => {
                    let m = &mut made[i];
                    let to = if m.ou == IN { OUT } else { IN };
                    let r = l
                        .modifydn(&format!("CN={},{},{base}", m.sam, m.ou), &format!("CN={}", m.sam), true, Some(&format!("{to},{base}")))
                        .await;
                    r.unwrap().success().unwrap();
                    m.ou = to;
                }
                Op::Rename(i) if i < made.len() => {
                    let m = &made[i];
                    let mods = vec![
                        Mod::Replace(b"displayName".to_vec(), HashSet::from([format!("Renamed {n}").into_bytes()])),
                        Mod::Replace(b"userPrincipalName".to_vec(), HashSet::from([format!("{}-{n}@testlab.example", m.sam).into_bytes()])),
                    ];
                    l.modify(&format!("CN={},{},{base}", m.sam, m.ou), mods).await.unwrap().success().unwrap();
                }
                Op::Disable(i, off) if i < made.len() => {
                    let m = &made[i];
                    let uac = if off { "514" } else { "512" };
                    let mods = vec![Mod::Replace(b"userAccountControl".to_vec(), HashSet::from([uac.as_bytes().to_vec()]))];
                    l.modify(&format!("CN={},{},{base}", m.sam, m.ou), mods).await.unwrap().success().unwrap();
                }
                Op::Reset(i) if i < made.len() => {
                    let m = &mut made[i];
                    m.password = format!("Prop-Reset-{n}-Xy");
                    let mods = vec![Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([q(&m.password)]))];
                    l.modify(&format!("CN={},{},{base}", m.sam, m.ou), mods).await.unwrap().success().unwrap();
                }
                Op::Sync { initial } => {
                    let policy = if initial { relay::PolicyType::Initial } else { relay::PolicyType::Delta };
                    let report = engine.sync(policy).await.unwrap();
                    assert!(report.errors.is_empty(), "{report:?}");
                    // the tenant's synced users are the scoped AD users
                    let ad = scoped_ad_users(&t).await;
                    let cloud: BTreeMap<String, (String, String, bool)> = {
                        let tenant = t.lab.tenant.tenant.lock().unwrap();
                        tenant
                            .users()
                            .into_iter()
                            .filter_map(|u| {
                                let o = u.on_premises.as_ref()?;
                                Some((
                                    o.immutable_id.clone(),
                                    (u.user_principal_name.to_lowercase(), u.display_name.clone(), u.account_enabled),
                                ))
                            })
                            .collect()
                    };
                    assert_eq!(cloud, ad, "after {policy:?}");
                    // and each scoped user's cloud password is AD's
                    let tenant = t.lab.tenant.tenant.lock().unwrap();
                    for m in made.iter().filter(|m| m.ou == IN) {
                        let u = tenant
                            .users()
                            .into_iter()
                            .find(|u| u.on_premises.as_ref().is_some_and(|o| o.sam_account_name == m.sam))
                            .unwrap();
                        assert!(u.credential.as_ref().is_some_and(|c| c.verify(&m.password)), "{}'s cloud password is AD's", m.sam);
                    }
                }
                _ => {}
            }
            let _ = l.unbind().await;
        }
        t.lab.stop().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn after_every_cycle_the_cloud_holds_exactly_the_scoped_ad_users(ops in proptest::collection::vec(op(), 1..20)) {
        run_case(ops);
    }
}
