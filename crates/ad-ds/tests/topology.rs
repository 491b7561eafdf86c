//! A domain's DCs together (ad_ds::topology): replication on the lab clock, paused or forced,
//! a DC down catching up; and the PDC emulator's part in a bind on another DC (a wrong
//! password tried again there, counted there, a lockout reaching every DC at once), played
//! through the LDAP session as a client's bind would be.

use std::sync::Arc;
use std::time::Duration;

use ad_ds::directory::{ModOp, Modification, OpContext};
use ad_ds::domain::system;
use ad_ds::password::unicode_pwd;
use ad_ds::session::Session;
use ad_ds::topology::Topology;
use ad_ds::{DcState, Directory, DomainConfig, DomainController};
use clock::Clock;
use ldap3_proto::proto::*;

const USER: &str = "CN=Topo,CN=Users,DC=topo,DC=example";

fn domain(dcs: usize) -> (Arc<Topology>, Clock) {
    let cfg = DomainConfig {
        dns_name: "topo.example".into(),
        netbios: "TOPO".into(),
        dc_name: "DC1".into(),
        sid: [4, 5, 6],
        seed: 3,
        admin_password: "Topo-Admin-Pass-1".into(),
    };
    let clock = Clock::frozen(Clock::lab_epoch());
    let mut d = Directory::new(cfg, clock.clone());
    let attrs = vec![
        ("objectClass".to_string(), vec![b"user".to_vec()]),
        ("sAMAccountName".into(), vec![b"Topo".to_vec()]),
        ("unicodePwd".into(), vec![unicode_pwd("Blue-Ocean-71")]),
        ("userAccountControl".into(), vec![b"512".to_vec()]),
    ];
    d.add(&system(), USER, attrs, OpContext::TLS).unwrap();
    let m = Modification { op: ModOp::Replace, attr: "lockoutThreshold".into(), values: vec![b"3".to_vec()] };
    d.modify(&system(), "DC=topo,DC=example", vec![m], OpContext::TLS).unwrap();
    for i in 2..=dcs {
        ad_ds::domain::add_domain_controller(&mut d, &format!("DC{i}")).unwrap();
    }
    let replicas: Vec<Directory> = (2..=dcs).map(|i| d.replica(&format!("DC{i}"), (i - 1) as u8)).collect();
    let all = std::iter::once(d).chain(replicas).map(|d| DomainController::new(d, None)).collect();
    (Topology::new(all), clock)
}

fn set_description(dc: &DomainController, v: &str) {
    let m = Modification { op: ModOp::Replace, attr: "description".into(), values: vec![v.as_bytes().to_vec()] };
    dc.directory.write().unwrap().modify(&system(), USER, vec![m], OpContext::TLS).unwrap();
}

fn description(dc: &DomainController) -> Option<String> {
    dc.directory.read().unwrap().by_sam("Topo").and_then(|e| e.first_str("description").map(str::to_string))
}

fn attr(dc: &DomainController, a: &str) -> Option<String> {
    dc.directory.read().unwrap().by_sam("Topo").and_then(|e| e.first_str(a).map(str::to_string))
}

#[test]
fn replication_runs_when_its_interval_has_passed_and_not_while_paused() {
    let (t, clock) = domain(2);
    let (dc1, dc2) = (&t.dcs()[0], &t.dcs()[1]);
    assert_eq!(t.status().interval_seconds, 15);
    assert_eq!((t.status().pdc.as_str(), t.status().dcs.len()), ("DC1", 2));
    set_description(dc1, "one");
    clock.advance(Duration::from_secs(14));
    assert!(t.run_due().is_empty(), "not yet due");
    assert_eq!(description(dc2), None);
    clock.advance(Duration::from_secs(1));
    let passes = t.run_due();
    assert_eq!(passes.iter().map(|p| p.objects).sum::<usize>(), 1, "{passes:?}");
    assert_eq!(description(dc2).as_deref(), Some("one"));
    // paused: however long the clock runs; replicate_now is repadmin /syncall, paused or not
    t.set_paused(true);
    set_description(dc1, "two");
    clock.advance(Duration::from_secs(3600));
    assert!(t.run_due().is_empty());
    assert_eq!(description(dc2).as_deref(), Some("one"));
    t.replicate_now();
    assert_eq!(description(dc2).as_deref(), Some("two"));
    t.set_paused(false);
    t.set_interval(Duration::from_secs(300));
    assert_eq!(t.status().interval_seconds, 300);
    set_description(dc1, "three");
    clock.advance(Duration::from_secs(299));
    assert!(t.run_due().is_empty());
    clock.advance(Duration::from_secs(1));
    t.run_due();
    assert_eq!(description(dc2).as_deref(), Some("three"));
}

#[test]
fn a_dc_that_is_down_neither_sends_nor_receives_and_catches_up() {
    let (t, _clock) = domain(3);
    let (dc1, dc2, dc3) = (&t.dcs()[0], &t.dcs()[1], &t.dcs()[2]);
    dc3.faults.set_state(DcState::Down);
    set_description(dc2, "from DC2");
    let passes = t.replicate_now();
    assert!(passes.iter().all(|p| p.from != "DC3" && p.to != "DC3"), "{passes:?}");
    assert_eq!(description(dc1).as_deref(), Some("from DC2"));
    assert_eq!(description(dc3), None);
    dc3.faults.set_state(DcState::Up);
    t.replicate_now();
    assert_eq!(description(dc3).as_deref(), Some("from DC2"));
    assert_eq!(t.dc("dc3").map(|d| Arc::ptr_eq(d, dc3)), Some(true));
}

fn bind(dc: &Arc<DomainController>, password: &str) -> LdapResult {
    let mut s = Session::new(true, false);
    s.pdc = dc.pdc.get().cloned();
    s.this_dc = Some(dc.clone());
    let msg = LdapMsg {
        msgid: 1,
        op: LdapOp::BindRequest(LdapBindRequest { version: 3, dn: "TOPO\\Topo".into(), cred: LdapBindCred::Simple(password.into()) }),
        ctrl: vec![],
    };
    match s.handle(&dc.directory, msg).msgs.remove(0).op {
        LdapOp::BindResponse(r) => r.res,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_dc_asks_the_pdc_emulator_which_counts_and_locks_for_all() {
    let (t, _clock) = domain(3);
    let (dc1, dc2, dc3) = (t.dcs()[0].clone(), t.dcs()[1].clone(), t.dcs()[2].clone());
    assert!(dc1.pdc.get().is_none() && dc2.pdc.get().is_some_and(|p| Arc::ptr_eq(p, &dc1)));
    // a password written on DC1 works on DC2 before replication (DC2 asks DC1) …
    let reset = Modification { op: ModOp::Replace, attr: "unicodePwd".into(), values: vec![unicode_pwd("Green-Field-82")] };
    dc1.directory.write().unwrap().modify(&system(), USER, vec![reset], OpContext::TLS).unwrap();
    assert_eq!(bind(&dc2, "Green-Field-82").code, LdapResultCode::Success);
    assert_eq!(attr(&dc2, "badPwdCount").as_deref(), Some("0"), "a bind the PDC emulator answers counts nothing here");
    // … but not with DC1 down
    dc1.faults.set_state(DcState::Down);
    assert_eq!(bind(&dc2, "Green-Field-82").code, LdapResultCode::InvalidCredentials);
    dc1.faults.set_state(DcState::Up);
    t.replicate_now();
    // wrong passwords on DC2 and DC3 count at the PDC emulator too (DC2 also kept the one it
    // answered alone while DC1 was down): the third at DC1 locks everywhere
    for (dc, n) in [(&dc2, "2"), (&dc3, "1")] {
        assert_eq!(bind(dc, "Wrong-Pass-1").code, LdapResultCode::InvalidCredentials);
        assert_eq!(attr(dc, "badPwdCount").as_deref(), Some(n));
    }
    assert_eq!(attr(&dc1, "badPwdCount").as_deref(), Some("2"));
    assert_eq!(bind(&dc2, "Wrong-Pass-2").code, LdapResultCode::InvalidCredentials);
    for dc in [&dc1, &dc2, &dc3] {
        assert!(attr(dc, "lockoutTime").is_some_and(|t| t != "0"), "locked on every DC at once");
    }
    let locked = bind(&dc3, "Green-Field-82");
    assert!(locked.message.contains("data 775"), "{}", locked.message);
}

#[test]
fn a_password_written_on_another_dc_reaches_the_pdc_emulator_at_once() {
    let (t, _clock) = domain(3);
    let (dc1, dc2, dc3) = (t.dcs()[0].clone(), t.dcs()[1].clone(), t.dcs()[2].clone());
    let mut s = Session::new(true, false);
    s.pdc = dc2.pdc.get().cloned();
    s.this_dc = Some(dc2.clone());
    let admin = LdapMsg {
        msgid: 1,
        op: LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: "CN=Administrator,CN=Users,DC=topo,DC=example".into(),
            cred: LdapBindCred::Simple("Topo-Admin-Pass-1".into()),
        }),
        ctrl: vec![],
    };
    s.handle(&dc2.directory, admin);
    let reset = LdapMsg {
        msgid: 2,
        op: LdapOp::ModifyRequest(LdapModifyRequest {
            dn: USER.into(),
            changes: vec![LdapModify {
                operation: LdapModifyType::Replace,
                modification: LdapPartialAttribute { atype: "unicodePwd".into(), vals: vec![unicode_pwd("Green-Field-82")] },
            }],
        }),
        ctrl: vec![],
    };
    let r = s.handle(&dc2.directory, reset).msgs.remove(0);
    assert!(matches!(&r.op, LdapOp::ModifyResponse(res) if res.code == LdapResultCode::Success), "{r:?}");
    dc2.faults.set_state(DcState::Down);
    let ok = |dc: &DomainController, pw: &str| dc.directory.write().unwrap().bind(USER, pw).is_ok();
    assert!(ok(&dc1, "Green-Field-82"), "the PDC emulator has it at once");
    assert!(ok(&dc3, "Blue-Ocean-71") && !ok(&dc3, "Green-Field-82"), "DC3 only after replication");
}

#[test]
fn a_good_bind_is_answered_where_it_is_made_and_a_failure_without_lockout_sends_nothing() {
    let (t, _clock) = domain(3);
    let (dc1, dc2, dc3) = (t.dcs()[0].clone(), t.dcs()[1].clone(), t.dcs()[2].clone());
    // a good bind on DC2 is DC2's alone: the PDC emulator records no logon for it
    assert_eq!(bind(&dc2, "Blue-Ocean-71").code, LdapResultCode::Success);
    assert!(attr(&dc2, "lastLogonTimestamp").is_some());
    assert_eq!(attr(&dc1, "lastLogonTimestamp"), None);
    // a wrong password the PDC emulator counts without locking moves nothing between DCs:
    // what DC1 holds and has not replicated stays on DC1 (lockoutTime 0 from an earlier
    // unlock is no lockout)
    let unlock = Modification { op: ModOp::Replace, attr: "lockoutTime".into(), values: vec![b"0".to_vec()] };
    dc1.directory.write().unwrap().modify(&system(), USER, vec![unlock], OpContext::TLS).unwrap();
    t.replicate_now();
    set_description(&dc1, "only on DC1");
    assert_eq!(bind(&dc2, "Wrong-Pass-1").code, LdapResultCode::InvalidCredentials);
    assert_eq!(attr(&dc1, "badPwdCount").as_deref(), Some("1"));
    assert_eq!((description(&dc2), description(&dc3)), (None, None));
}

#[test]
fn of_two_writes_at_one_moment_the_one_made_after_replication_wins() {
    // the lab clock stands still: the write count, not the time, says which came later
    let (t, _clock) = domain(2);
    let (dc1, dc2) = (&t.dcs()[0], &t.dcs()[1]);
    set_description(dc2, "first, on DC2");
    t.replicate_now();
    set_description(dc1, "second, on DC1");
    t.replicate_now();
    assert_eq!(description(dc2).as_deref(), Some("second, on DC1"));
    assert_eq!(description(dc1).as_deref(), Some("second, on DC1"));
}

/// `repadmin /showrepl`'s backlog: a write on DC1 waits on DC2 and DC3 until they pull it,
/// and once they have, nothing waits anywhere — not even the echo of DC1's own write coming
/// back from DC2, which DC1 holds at that version already.
#[test]
fn each_dc_backlog_counts_what_it_would_take_and_not_its_own_writes_echoed() {
    let (t, _clock) = domain(3);
    let waiting = |t: &Topology| t.backlog().into_iter().map(|(_, n)| n).collect::<Vec<_>>();
    t.replicate_now();
    assert_eq!(waiting(&t), [0, 0, 0], "a fresh domain is in step");
    set_description(&t.dcs()[0], "written on DC1");
    assert_eq!(waiting(&t), [0, 1, 1]);
    t.set_paused(true);
    assert_eq!(waiting(&t), [0, 1, 1], "a paused replication leaves it waiting");
    t.replicate_now();
    assert_eq!(waiting(&t), [0, 0, 0], "taken everywhere, the echoes included");
    assert_eq!(description(&t.dcs()[2]).as_deref(), Some("written on DC1"));
    set_description(&t.dcs()[1], "written on DC2");
    assert_eq!(waiting(&t), [1, 0, 1]);
}
