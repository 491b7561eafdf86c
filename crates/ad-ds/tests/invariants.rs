//! Property test of AD's account rules, on the directory itself (no socket): after any
//! sequence of password changes, resets, failed and good binds, unlocks, policy edits and
//! clock advances,
//! - a bind with the current password succeeds exactly when the account is enabled,
//!   unlocked, not expired, not "must change" — judged from the stored attributes;
//! - badPwdCount never passes the lockout threshold in force while it was counted (an
//!   administrator lowering the threshold afterwards can of course leave it above);
//! - the history a new password is checked against never reaches past pwdHistoryLength
//!   (AD trims the stored history only at the next password write, as SAM does);
//! - a refused operation changes nothing but AD's bad-password bookkeeping.

use std::time::Duration;

use ad_ds::account::{UF_ACCOUNTDISABLE, UF_DONT_EXPIRE_PASSWD};
use ad_ds::directory::{ModOp, Modification, OpContext};
use ad_ds::domain::system;
use ad_ds::entry::Entry;
use ad_ds::password::unicode_pwd;
use ad_ds::{Directory, DomainConfig, Principal};
use clock::Clock;
use proptest::prelude::*;

const DN: &str = "CN=Prop,CN=Users,DC=prop,DC=example";
const TLS: OpContext = OpContext::TLS;

#[derive(Clone, Debug)]
enum Op {
    /// The user changes the password; `knows_old` false sends a wrong old password.
    Change {
        knows_old: bool,
        new: usize,
    },
    Reset {
        new: usize,
        hints: bool,
    },
    Bind {
        right_password: bool,
    },
    Unlock,
    ForceChange,
    Unexpire,
    Enable(bool),
    Policy {
        threshold: i64,
        min_length: i64,
        history: i64,
        min_age_h: i64,
        max_age_d: i64,
    },
    Advance {
        minutes: u64,
    },
}

/// A pool of candidate passwords: some weak, some strong, some repeating.
const POOL: &[&str] =
    &["Blue-Harbor-73", "Green-Field-21", "Red-Canyon-55", "Gold-Meadow-88", "short", "alllowercase", "Prop-User-1", "Grey-Stone-04"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), 0..POOL.len()).prop_map(|(knows_old, new)| Op::Change { knows_old, new }),
        2 => (0..POOL.len(), any::<bool>()).prop_map(|(new, hints)| Op::Reset { new, hints }),
        5 => any::<bool>().prop_map(|right_password| Op::Bind { right_password }),
        1 => Just(Op::Unlock),
        1 => Just(Op::ForceChange),
        1 => Just(Op::Unexpire),
        1 => any::<bool>().prop_map(Op::Enable),
        1 => (0i64..4, 0i64..12, 0i64..4, 0i64..30, 0i64..5).prop_map(|(threshold, min_length, history, min_age_h, max_age_d)| Op::Policy { threshold, min_length, history, min_age_h, max_age_d }),
        2 => prop_oneof![Just(1u64), Just(20), Just(45), Just(24 * 60), Just(10 * 24 * 60)].prop_map(|minutes| Op::Advance { minutes }),
    ]
}

fn lab() -> (Directory, String) {
    let cfg = DomainConfig {
        dns_name: "prop.example".into(),
        netbios: "PROP".into(),
        dc_name: "DC1".into(),
        sid: [7, 8, 9],
        seed: 3,
        admin_password: "Prop-Admin-Pass-1".into(),
    };
    let mut d = Directory::new(cfg, Clock::frozen(Clock::lab_epoch()));
    let pw = "Start-Blue-Pass-1".to_string();
    let attrs = vec![
        ("objectClass".into(), vec![b"user".to_vec()]),
        ("sAMAccountName".into(), vec![b"prop".to_vec()]),
        ("unicodePwd".into(), vec![unicode_pwd(&pw)]),
        ("userAccountControl".into(), vec![b"512".to_vec()]),
    ];
    d.add(&system(), DN, attrs, TLS).unwrap();
    (d, pw)
}

fn entry(d: &Directory) -> Entry {
    d.by_sam("prop").unwrap().clone()
}

fn int(e: &Entry, a: &str) -> i64 {
    e.int(a).unwrap_or(0)
}

fn domain_int(d: &Directory, a: &str) -> i64 {
    d.get_dn(d.base_dn()).unwrap().int(a).unwrap_or(0)
}

/// What must be equal before and after a refused operation: everything except AD's
/// bad-password bookkeeping (and the stamps lockoutTime moves).
fn without_bookkeeping(e: &Entry) -> Entry {
    let mut e = e.clone();
    for a in ["badPwdCount", "badPasswordTime", "lockoutTime", "uSNChanged", "whenChanged"] {
        e.remove(a);
    }
    // (replication metadata, like uSNChanged: a lockout is a replicated write)
    e.version = Default::default();
    e.meta.clear();
    e
}

fn replace(attr: &str, v: &[u8]) -> Vec<Modification> {
    vec![Modification { op: ModOp::Replace, attr: attr.into(), values: vec![v.to_vec()] }]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn account_rules_hold_after_any_sequence(ops in prop::collection::vec(op(), 1..40)) {
        let (mut d, mut current) = lab();
        // the highest threshold in force since badPwdCount was last 0
        let mut ceiling = 0i64;
        let user = Principal::User { dn: ad_ds::dn::Dn::parse(DN).unwrap(), sam: "prop".into(), admin: false };
        for op in ops {
            let before = entry(&d);
            let refused = match &op {
                Op::Change { knows_old, new } => {
                    let old = if *knows_old { current.clone() } else { "Not-The-Password-9".to_string() };
                    let mods = vec![
                        Modification { op: ModOp::Delete, attr: "unicodePwd".into(), values: vec![unicode_pwd(&old)] },
                        Modification { op: ModOp::Add, attr: "unicodePwd".into(), values: vec![unicode_pwd(POOL[*new])] },
                    ];
                    match d.modify(&user, DN, mods, TLS) {
                        Ok(()) => { current = POOL[*new].to_string(); false }
                        Err(_) => true,
                    }
                }
                Op::Reset { new, hints } => {
                    let ctx = OpContext { policy_hints: *hints, ..TLS };
                    match d.modify(&system(), DN, replace("unicodePwd", &unicode_pwd(POOL[*new])), ctx) {
                        Ok(()) => { current = POOL[*new].to_string(); false }
                        Err(_) => true,
                    }
                }
                Op::Bind { right_password } => {
                    let p = if *right_password { current.clone() } else { "Wrong-Guess-000".to_string() };
                    let _ = d.bind("PROP\\prop", &p);
                    false
                }
                Op::Unlock => d.modify(&system(), DN, replace("lockoutTime", b"0"), TLS).is_err(),
                Op::ForceChange => d.modify(&system(), DN, replace("pwdLastSet", b"0"), TLS).is_err(),
                Op::Unexpire => d.modify(&system(), DN, replace("pwdLastSet", b"-1"), TLS).is_err(),
                Op::Enable(on) => {
                    let uac = if *on { 512 } else { 514 };
                    d.modify(&system(), DN, replace("userAccountControl", uac.to_string().as_bytes()), TLS).is_err()
                }
                Op::Policy { threshold, min_length, history, min_age_h, max_age_d } => {
                    let base = d.base_dn().to_string();
                    let mods = [
                        ("lockoutThreshold", threshold.to_string()),
                        ("minPwdLength", min_length.to_string()),
                        ("pwdHistoryLength", history.to_string()),
                        ("minPwdAge", (-min_age_h * 36_000_000_000).to_string()),
                        ("maxPwdAge", (-max_age_d * 864_000_000_000).to_string()),
                    ]
                    .into_iter()
                    .map(|(a, v)| Modification { op: ModOp::Replace, attr: a.into(), values: vec![v.into_bytes()] })
                    .collect();
                    d.modify(&system(), &base, mods, TLS).is_err()
                }
                Op::Advance { minutes } => {
                    d.clock().advance(Duration::from_secs(minutes * 60));
                    false
                }
            };
            let e = entry(&d);
            if refused {
                prop_assert_eq!(without_bookkeeping(&before), without_bookkeeping(&e), "{:?} was refused but changed the account", op);
            }

            // the bind verdict agrees with the account's stored state
            let now = d.clock().filetime();
            let threshold = domain_int(&d, "lockoutThreshold");
            let duration = domain_int(&d, "lockoutDuration").abs();
            let max_age = domain_int(&d, "maxPwdAge").abs();
            let uac = int(&e, "userAccountControl");
            let lockout = int(&e, "lockoutTime");
            let locked = lockout != 0 && (duration == 0 || lockout + duration > now);
            let last = int(&e, "pwdLastSet");
            let never = uac & UF_DONT_EXPIRE_PASSWD != 0;
            let must_change = last == 0 && !never;
            let expired = !never && max_age != 0 && last != 0 && last + max_age <= now;
            let enabled = uac & UF_ACCOUNTDISABLE == 0;
            let (verdict, _) = d.bind_outcome("PROP\\prop", &current);
            prop_assert_eq!(verdict.is_ok(), enabled && !locked && !expired && !must_change,
                "after {:?}: enabled {} locked {} expired {} must_change {} → {:?}", op, enabled, locked, expired, must_change, verdict);

            ceiling = if int(&before, "badPwdCount") == 0 { threshold } else { ceiling.max(threshold) };
            if int(&e, "badPwdCount") > int(&before, "badPwdCount") {
                prop_assert!(int(&e, "badPwdCount") <= ceiling, "badPwdCount {} over threshold {}", int(&e, "badPwdCount"), ceiling);
            }
            let history = usize::try_from(domain_int(&d, "pwdHistoryLength")).unwrap();
            let policy = d.effective_policy(&e);
            for p in POOL {
                let h = ad_ds::password::nt_hash(p);
                let pos = e.secrets.nt_history.iter().position(|x| *x == h);
                let current = e.secrets.nt_hash == Some(h);
                if let (Some(i), false) = (pos, current) {
                    let verdict = ad_ds::policy::check_new_password(&policy, &e, ad_ds::policy::Write::Change, p, i64::MAX / 2);
                    let refused_for_history = verdict == Err(ad_ds::policy::Refusal::InHistory);
                    prop_assert_eq!(refused_for_history, i < history, "{} at history position {} with pwdHistoryLength {}", p, i, history);
                }
            }
        }
    }
}
