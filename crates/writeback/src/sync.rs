//! Directory sync and password hash sync: the other half of Connect. A cycle imports the
//! scoped users from AD DS over LDAP (all of them the first time; afterwards what changed
//! since the last uSNChanged seen, and the tombstones of deleted objects), decides what the
//! tenant must create, update or delete by sourceAnchor, and exports it. Password hash sync
//! reads NT hashes through the DC's get-changes control (replication rights), derives the
//! PHS form (PBKDF2-HMAC-SHA256, per-user salt, 1,000 iterations) and sends only that.
//!
//! The decisions ([`plan_objects`], [`changed_hashes`]) are plain functions over plain data;
//! [`run`] does the LDAP and HTTP around them.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use base64::Engine as _;
use ldap3::{Scope, SearchEntry};
use rand::RngCore;
use relay::{PasswordHash, PolicyType, SyncError, SyncExport, SyncReport, SyncedUser};

use std::sync::Arc;

use crate::connectors::Connector;
use crate::{Error, Inner, SourceAnchor, events};

/// The lab's get-changes-with-secrets control (a stand-in for DRSGetNCChanges): the DC
/// answers it only over TLS, to administrators and holders of both replication rights.
pub const OID_GET_CHANGES_WITH_SECRETS: &str = "2.25.129010377316938416394386376185574914177";
/// LDAP_SERVER_SHOW_DELETED_OID.
const OID_SHOW_DELETED: &str = "1.2.840.113556.1.4.417";
/// Connect's default cycle; password hash sync's fixed interval.
pub const CYCLE_INTERVAL: Duration = Duration::from_secs(30 * 60);
pub const HASH_INTERVAL: Duration = Duration::from_secs(2 * 60);
/// Objects and hashes per export request (each under the tenant's 1 MiB body limit).
const USER_BATCH: usize = 2000;
const HASH_BATCH: usize = 4000;

const USER_ATTRS: &[&str] = &[
    "objectGUID",
    "mS-DS-ConsistencyGuid",
    "objectSid",
    "sAMAccountName",
    "userPrincipalName",
    "displayName",
    "givenName",
    "sn",
    "mail",
    "userAccountControl",
    "isCriticalSystemObject",
    "uSNChanged",
    "memberOf",
];

/// What Connect's connector space remembers between cycles.
#[derive(Default)]
pub struct SyncState {
    /// Highest uSNChanged seen by the object import and by the hash import (None: the next
    /// one is a full import).
    pub watermark: Option<i64>,
    pub hash_watermark: Option<i64>,
    /// The DC those watermarks are of: each DC numbers its changes with USNs of its own, so
    /// a cycle on another DC (a preferred DC changed, a failover) imports in full.
    pub watermark_dc: Option<String>,
    /// Joined objects: anchor → the AD object's objectGUID and a fingerprint of what was
    /// exported.
    pub objects: HashMap<String, ([u8; 16], u64)>,
    /// anchor → fingerprint of the password last sent (the NT hash and pwdLastSet).
    pub hashes: HashMap<String, u64>,
    /// Joined objects as last imported (the metaverse's contributions: [`crate::connectors::merge`]).
    pub users: HashMap<String, SyncedUser>,
    /// Objects whose export the tenant refused: imported again next cycle, whatever their
    /// uSNChanged (Connect retries its export errors every run).
    pub retry: Vec<Imported>,
    /// Deletes the tenant held back (Cloud Sync's job in quarantine): sent again next cycle.
    pub pending_deletes: Vec<String>,
    /// The configuration's scope as last edited (None: the one it was installed with).
    pub scope: Option<Vec<String>>,
    pub next_cycle: Option<clock::OffsetDateTime>,
    pub next_hash_sync: Option<clock::OffsetDateTime>,
}

/// A user as the import reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    pub dn: String,
    pub object_guid: [u8; 16],
    pub consistency_guid: Option<Vec<u8>>,
    pub usn: i64,
    /// Critical system objects and the connector accounts are never synced.
    pub excluded: bool,
    /// The groups it is a direct member of (memberOf), for group scoping.
    pub groups: Vec<String>,
    pub user: SyncedUser,
}

/// What the scope and the connector space make of an import.
#[derive(Debug, Default, PartialEq)]
pub struct ObjectPlan {
    pub upserts: Vec<SyncedUser>,
    pub deletes: Vec<String>,
    pub errors: Vec<SyncError>,
    /// Objects without an mS-DS-ConsistencyGuid yet (that anchor): DN → objectGUID to write.
    pub stamp: Vec<(String, [u8; 16])>,
    /// An object joined for the first time: its password goes out this cycle whatever its
    /// uSNChanged (a new cloud user needs the hash it has had all along).
    pub new_joins: bool,
}

/// Whether an object is in a scope of OUs and groups: under one of the OUs, or a direct member
/// of one of the groups — Cloud Sync's group scoping does not include members beyond the
/// first level (a member of a member group is out), and AD's memberOf lists direct
/// memberships only.
fn in_scope(i: &Imported, scope: &[String]) -> bool {
    let dn = i.dn.to_ascii_lowercase();
    scope.is_empty()
        || scope.iter().any(|s| dn.ends_with(&format!(",{}", s.to_ascii_lowercase())) || i.groups.iter().any(|g| g.eq_ignore_ascii_case(s)))
}

/// Whether a scope names a group (then a delta import by the users' uSNChanged misses
/// membership changes, which change the group: the import is read whole).
pub fn scopes_groups(scope: &[String]) -> bool {
    scope.iter().any(|s| s.trim_start().get(..3).is_some_and(|p| p.eq_ignore_ascii_case("CN=")))
}

fn fingerprint(u: &SyncedUser) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        &u.user_principal_name,
        &u.display_name,
        &u.given_name,
        &u.surname,
        &u.mail,
        u.account_enabled,
        &u.distinguished_name,
        &u.sam_account_name,
    )
        .hash(&mut h);
    h.finish()
}

/// The anchor of an imported user (base64), and whether mS-DS-ConsistencyGuid must be
/// written first (Connect copies objectGUID into it when it is the anchor).
fn anchor_of(i: &Imported, anchor: SourceAnchor) -> (String, bool) {
    let b64 = base64::engine::general_purpose::STANDARD;
    match (anchor, &i.consistency_guid) {
        (SourceAnchor::ConsistencyGuid, Some(v)) => (b64.encode(v), false),
        (SourceAnchor::ConsistencyGuid, None) => (b64.encode(i.object_guid), true),
        (SourceAnchor::ObjectGuid, _) => (b64.encode(i.object_guid), false),
    }
}

/// Decides a cycle's object changes. `full`: the import holds every object, so joined
/// anchors missing from it are deletions; otherwise `deleted` lists tombstones (anchor,
/// objectGUID). A tombstone releases its object's join first, so that a new object carrying
/// the same mS-DS-ConsistencyGuid (a re-created or migrated user) takes the cloud twin over.
pub fn plan_objects(
    state: &mut SyncState,
    imported: &[Imported],
    deleted: &[(String, [u8; 16])],
    scope: &[String],
    anchor: SourceAnchor,
    full: bool,
) -> ObjectPlan {
    let mut plan = ObjectPlan::default();
    let mut released = vec![];
    for (a, g) in deleted {
        if state.objects.get(a).is_some_and(|(joined, _)| joined == g) {
            state.objects.remove(a);
            released.push(a.clone());
        }
    }
    let mut seen: HashMap<String, Vec<&Imported>> = HashMap::new();
    for i in imported {
        if !i.excluded && in_scope(i, scope) {
            seen.entry(anchor_of(i, anchor).0).or_default().push(i);
        }
    }
    // two objects, one anchor (in this import, or one imported and one already joined):
    // reported, and nothing new exported for it
    let joined_elsewhere = |a: &String, i: &Imported| state.objects.get(a).is_some_and(|(g, _)| *g != i.object_guid);
    let duplicate: HashSet<String> =
        seen.iter().filter(|(a, v)| v.len() > 1 || v.iter().any(|i| joined_elsewhere(a, i))).map(|(a, _)| a.clone()).collect();
    for a in &duplicate {
        for i in seen[a].iter().filter(|i| seen[a].len() > 1 || joined_elsewhere(a, i)) {
            plan.errors.push(SyncError {
                code: "DuplicateSourceAnchor".into(),
                distinguished_name: i.dn.clone(),
                message: format!(
                    "hr=80230402: An attempt to get an object failed because there are duplicated entries with the same anchor ({a})."
                ),
            });
        }
    }
    let mut present = HashSet::new();
    for i in imported {
        let (a, stamp) = anchor_of(i, anchor);
        present.insert(a.clone());
        let scoped = !i.excluded && in_scope(i, scope);
        if duplicate.contains(&a) && seen[&a].len() == 1 {
            continue; // the object already joined keeps its twin
        }
        if !scoped || duplicate.contains(&a) {
            // the joined object moved out of scope (or its anchor is now ambiguous): no
            // longer in the cloud
            if state.objects.get(&a).is_some_and(|(g, _)| *g == i.object_guid || duplicate.contains(&a)) {
                state.objects.remove(&a);
                state.hashes.remove(&a);
                plan.deletes.push(a);
            }
            continue;
        }
        if stamp {
            plan.stamp.push((i.dn.clone(), i.object_guid));
        }
        let mut u = i.user.clone();
        u.anchor = a.clone();
        let f = fingerprint(&u);
        if state.objects.get(&a).map(|(_, old)| *old) != Some(f) {
            plan.new_joins |= !state.objects.contains_key(&a);
            state.objects.insert(a, (i.object_guid, f));
            plan.upserts.push(u);
        }
    }
    let gone: Vec<String> = if full {
        state.objects.keys().filter(|a| !present.contains(*a)).cloned().collect()
    } else {
        released.into_iter().filter(|a| !state.objects.contains_key(a)).collect()
    };
    for a in gone {
        state.objects.remove(&a);
        state.hashes.remove(&a);
        plan.deletes.push(a);
    }
    plan
}

/// A user's password as the hash import reads it.
#[derive(Clone)]
pub struct ImportedHash {
    pub anchor: String,
    pub dn: String,
    pub nt_hash: [u8; 16],
    pub pwd_last_set: i64,
}

/// The hashes to send: joined users whose password changed since it was last sent (their
/// fingerprints are recorded as sent).
pub fn changed_hashes<'a>(state: &mut SyncState, imported: &'a [ImportedHash]) -> Vec<&'a ImportedHash> {
    let mut out = vec![];
    for h in imported {
        if !state.objects.contains_key(&h.anchor) {
            continue; // not joined to a cloud user: nothing to send it to
        }
        let mut f = std::collections::hash_map::DefaultHasher::new();
        (h.nt_hash, h.pwd_last_set).hash(&mut f);
        let f = f.finish();
        if state.hashes.insert(h.anchor.clone(), f) != Some(f) {
            out.push(h);
        }
    }
    out
}

/// Password hash sync's form of one password: a fresh salt, PBKDF2 of the NT hash.
pub fn derive(h: &ImportedHash, rng: &mut impl RngCore) -> PasswordHash {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut salt = [0u8; 10];
    rng.fill_bytes(&mut salt);
    let derived = relay::phs::derive(&h.nt_hash, &salt, relay::phs::ITERATIONS);
    PasswordHash {
        anchor: h.anchor.clone(),
        salt: b64.encode(salt),
        hash: b64.encode(derived),
        iterations: relay::phs::ITERATIONS,
        force_change: h.pwd_last_set == 0,
    }
}

/// [`derive`] for many, on every core (PBKDF2 is the cost of an initial hash sync).
fn derive_all(hashes: &[ImportedHash], seed: u64) -> Vec<PasswordHash> {
    use rand::SeedableRng;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).max(1);
    let per = hashes.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = hashes
            .chunks(per)
            .enumerate()
            .map(|(i, chunk)| {
                s.spawn(move || {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9));
                    chunk.iter().map(|h| derive(h, &mut rng)).collect::<Vec<_>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().unwrap_or_default()).collect()
    })
}

// ----- LDAP and HTTP -----

fn first<'a>(e: &'a SearchEntry, a: &str) -> Option<&'a str> {
    e.attrs.get(a).and_then(|v| v.first()).map(String::as_str)
}

fn first_bin(e: &SearchEntry, a: &str) -> Option<Vec<u8>> {
    e.bin_attrs.get(a).and_then(|v| v.first()).cloned().or_else(|| e.attrs.get(a).and_then(|v| v.first()).map(|s| s.as_bytes().to_vec()))
}

fn imported(e: &SearchEntry, domain: &str) -> Option<Imported> {
    let object_guid: [u8; 16] = first_bin(e, "objectGUID")?.try_into().ok()?;
    let sam = first(e, "sAMAccountName").unwrap_or_default().to_string();
    let uac: i64 = first(e, "userAccountControl").and_then(|v| v.parse().ok()).unwrap_or(0);
    let critical = first(e, "isCriticalSystemObject").is_some_and(|v| v.eq_ignore_ascii_case("TRUE"));
    let sid = first_bin(e, "objectSid").map(|b| sid_text(&b)).unwrap_or_default();
    Some(Imported {
        dn: e.dn.clone(),
        object_guid,
        consistency_guid: first_bin(e, "mS-DS-ConsistencyGuid"),
        usn: first(e, "uSNChanged").and_then(|v| v.parse().ok()).unwrap_or(0),
        // Connect's default rules leave out critical system objects and its own accounts
        excluded: critical || sam.starts_with("MSOL_") || sam.starts_with("AAD_"),
        groups: e.attrs.get("memberOf").cloned().unwrap_or_default(),
        user: SyncedUser {
            anchor: String::new(),
            user_principal_name: first(e, "userPrincipalName").map(str::to_string).unwrap_or_else(|| format!("{sam}@{domain}")),
            display_name: first(e, "displayName").map(str::to_string).unwrap_or_else(|| sam.clone()),
            given_name: first(e, "givenName").map(str::to_string),
            surname: first(e, "sn").map(str::to_string),
            mail: first(e, "mail").map(str::to_string),
            account_enabled: uac & 0x2 == 0,
            sam_account_name: sam,
            domain_name: domain.to_string(),
            distinguished_name: e.dn.clone(),
            security_identifier: sid,
        },
    })
}

/// S-1-5-21-… from a binary SID.
fn sid_text(b: &[u8]) -> String {
    if b.len() < 8 {
        return String::new();
    }
    let authority = b[2..8].iter().fold(0u64, |a, x| (a << 8) | u64::from(*x));
    let subs = b[8..].chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string());
    std::iter::once(format!("S-{}-{authority}", b[0])).chain(subs).collect::<Vec<_>>().join("-")
}

pub(crate) fn domain_of(base_dn: &str) -> String {
    base_dn.split(',').filter_map(|p| p.trim().strip_prefix("DC=").or_else(|| p.trim().strip_prefix("dc="))).collect::<Vec<_>>().join(".")
}

async fn search_all(l: &mut ldap3::Ldap, base: &str, filter: &str, attrs: Vec<&str>, secrets: bool) -> Result<Vec<SearchEntry>, Error> {
    use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(1000))];
    let l = if secrets {
        l.with_controls(vec![ldap3::controls::RawControl { ctype: OID_GET_CHANGES_WITH_SECRETS.into(), crit: true, val: None }])
    } else {
        l
    };
    l.with_timeout(crate::LDAP_OP_LIMIT);
    let mut s = l.streaming_search_with(adapters, base, Scope::Subtree, filter, attrs).await.map_err(|e| Error(e.to_string()))?;
    let mut out = vec![];
    while let Some(e) = s.next().await.map_err(|e| Error(e.to_string()))? {
        out.push(SearchEntry::construct(e));
    }
    let r = s.finish().await;
    if r.rc != 0 {
        return Err(Error(format!("LDAP {}: {}", r.rc, r.text)));
    }
    Ok(out)
}

/// One cycle: the object import and export, then password hash sync. `objects`/`hashes`
/// pick the halves (a scheduled hash sync runs alone every 2 minutes).
pub(crate) async fn run(inner: &Inner, policy: PolicyType, objects: bool, hashes: bool) -> Result<SyncReport, Error> {
    let _one_at_a_time = inner.sync_lock.lock().await;
    let log = &inner.log;
    log.log(events::SYNC_STARTED, format!("Sync cycle started ({policy:?})."), None);
    let result = cycle(inner, policy, objects, hashes).await;
    match &result {
        Ok(r) => log.log(
            events::SYNC_COMPLETED,
            format!(
                "Sync cycle completed ({policy:?}): {} added, {} updated, {} deleted, {} passwords, {} errors.",
                r.added,
                r.updated,
                r.deleted,
                r.passwords,
                r.errors.len()
            ),
            None,
        ),
        Err(e) => log.log(events::SYNC_FAILED, format!("Sync cycle failed ({policy:?}): {e}"), None),
    }
    result
}

/// One connector's import this cycle: what its plan upserted and released, and what it read.
struct ConnectorRun {
    c: Arc<Connector>,
    l: ldap3::Ldap,
    found: Vec<Imported>,
    upserted: Vec<String>,
    deleted: Vec<String>,
    full: bool,
    new_joins: bool,
    /// A user's contribution moved to this connector: its hashes are read whole.
    resend: bool,
}

async fn cycle(inner: &Inner, policy: PolicyType, objects: bool, hashes: bool) -> Result<SyncReport, Error> {
    let mut report = SyncReport { policy_type: Some(policy), ..Default::default() };
    let connectors = inner.connectors();
    let alone = connectors.len() == 1;
    let mut runs = vec![];
    // connectors whose run did not start: their users still count in the metaverse
    let mut idle: Vec<Arc<Connector>> = vec![];
    for c in connectors {
        // each run binds as the connector account (a kept connection binds again: cheap, and
        // a password changed in AD since shows here, as it does to Connect's next run)
        let bound = match crate::ldap(inner, &c).await {
            Ok((l, true)) => Ok(l),
            Ok((mut l, false)) => match l.with_timeout(crate::LDAP_OP_LIMIT).simple_bind(&c.account_dn, &c.password()).await {
                Ok(r) if r.rc == 0 => Ok(l),
                Ok(r) => {
                    c.restart().await;
                    Err((relay::Failure::Permissions, Some(format!("{}: {}", crate::ad::CONNECTOR_SIGN_IN, r.text))))
                }
                Err(e) => {
                    c.restart().await;
                    crate::ldap(inner, &c).await.map(|(l, _)| l).map_err(|f| if f.1.is_some() { f } else { (f.0, Some(e.to_string())) })
                }
            },
            Err(e) => Err(e),
        };
        let l = match bound {
            Ok(l) => l,
            // (the one refusal of the connector's own bind: its credentials)
            Err((relay::Failure::Permissions, _)) => {
                // Synchronization Service Manager's run status; the other connectors still run
                c.set_last_run("no-start-credentials");
                let msg = format!("The management agent \"{}\" failed to run because the credentials were invalid.", c.name);
                inner.log.log(events::RUN_FAILED, msg.clone(), None);
                report.errors.push(SyncError { code: "no-start-credentials".into(), distinguished_name: c.base_dn.clone(), message: msg });
                idle.push(c);
                continue;
            }
            Err((_, d)) => {
                let d = d.unwrap_or_else(|| "the DC could not be reached".into());
                c.set_last_run("stopped-server-down");
                if alone {
                    return Err(Error(d));
                }
                report.errors.push(SyncError { code: "stopped-server-down".into(), distinguished_name: c.base_dn.clone(), message: d });
                idle.push(c);
                continue;
            }
        };
        let run = import(inner, c.clone(), l, policy, objects, &mut report).await;
        c.set_last_run(if run.is_ok() { "success" } else { "stopped-extension-dll-exception" });
        runs.push(run?);
    }
    // the metaverse: each anchor's contribution, across connectors
    let merged = {
        // every connector, in the wizard's order: those that ran with what they changed
        let all = inner.connectors();
        let mut states = vec![];
        for c in &all {
            states.push(c.sync.lock().await);
        }
        let views: Vec<crate::connectors::View> = all
            .iter()
            .zip(&states)
            .filter(|(c, _)| runs.iter().any(|r| Arc::ptr_eq(&r.c, c)) || idle.iter().any(|i| Arc::ptr_eq(i, c)))
            .map(|(c, st)| {
                let run = runs.iter().find(|r| Arc::ptr_eq(&r.c, c));
                crate::connectors::View {
                    name: &c.name,
                    users: &st.users,
                    upserted: run.map(|r| r.upserted.iter().map(String::as_str).collect()).unwrap_or_default(),
                    deleted: run.map(|r| r.deleted.iter().map(String::as_str).collect()).unwrap_or_default(),
                }
            })
            .collect();
        let orphans = std::mem::take(&mut *inner.orphans.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let mut owners = inner.owners.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        crate::connectors::merge(&mut owners, &views, &orphans)
    };
    let (upserts, mut deletes) = (merged.upserts, merged.deletes);
    // a user whose contributing account changed: the new account's password is sent again
    for (anchor, to) in &merged.handed_over {
        if let Some(run) = runs.iter_mut().find(|r| r.c.name == *to) {
            run.c.sync.lock().await.hashes.remove(anchor);
            run.resend = true;
        }
    }
    for chunk in upserts.chunks(USER_BATCH) {
        let r = export(inner, SyncExport { users: chunk.to_vec(), ..Default::default() }).await?;
        // an object the tenant refused is exported again next cycle (Connect retries its
        // export errors), not remembered as done
        let whole = quarantined(&r);
        let refused: Vec<&SyncedUser> =
            chunk.iter().filter(|u| whole || r.errors.iter().any(|e| e.distinguished_name == u.distinguished_name)).collect();
        for u in refused {
            for run in &runs {
                let again: Vec<Imported> = run.found.iter().filter(|i| i.dn == u.distinguished_name).cloned().collect();
                if !again.is_empty() {
                    let mut st = run.c.sync.lock().await;
                    st.objects.remove(&u.anchor);
                    st.users.remove(&u.anchor);
                    st.retry.extend(again);
                }
            }
            inner.owners.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&u.anchor);
        }
        add_up(&mut report, r);
    }
    let first = inner.primary();
    let pending = std::mem::take(&mut first.sync.lock().await.pending_deletes);
    deletes.retain(|d| !pending.contains(d));
    let deletes: Vec<String> = pending.into_iter().chain(deletes).collect();
    if !deletes.is_empty() {
        let r = export(inner, SyncExport { deletes: deletes.clone(), ..Default::default() }).await?;
        if quarantined(&r) {
            first.sync.lock().await.pending_deletes = deletes;
        }
        add_up(&mut report, r);
    }
    for mut run in runs {
        // (a user joined for the first time gets the password it has had all along)
        if hashes || run.full || run.new_joins || run.resend {
            let full = run.full || run.new_joins || run.resend;
            hash_sync(inner, &run.c, &mut run.l, full, &mut report).await?;
        }
    }
    Ok(report)
}

/// One connector's object import and plan (its connector space updated; nothing exported).
async fn import(
    inner: &Inner,
    c: Arc<Connector>,
    mut l: ldap3::Ldap,
    policy: PolicyType,
    objects: bool,
    report: &mut SyncReport,
) -> Result<ConnectorRun, Error> {
    let cfg = &inner.cfg;
    let dc = c.current_dc();
    {
        let mut st = c.sync.lock().await;
        if st.watermark_dc != dc {
            // another DC's USNs mean nothing here: start over from a full import
            (st.watermark, st.hash_watermark, st.watermark_dc) = (None, None, dc);
        }
    }
    let domain = domain_of(&c.base_dn);
    let scope = c.sync.lock().await.scope.clone().unwrap_or_else(|| c.sync_scope.clone());
    let full = policy == PolicyType::Initial || c.sync.lock().await.watermark.is_none() || scopes_groups(&scope);
    let mut run = ConnectorRun {
        c: c.clone(),
        l: l.clone(),
        found: vec![],
        upserted: vec![],
        deleted: vec![],
        full,
        new_joins: false,
        resend: false,
    };
    // the object half runs whenever the connector space is empty: hashes need joined users
    if !(objects || full) {
        return Ok(run);
    }
    let since = if full { None } else { c.sync.lock().await.watermark };
    let filter = match since {
        Some(w) => format!("(&(objectCategory=person)(objectClass=user)(uSNChanged>={}))", w + 1),
        None => "(&(objectCategory=person)(objectClass=user))".into(),
    };
    let entries = search_all(&mut l, &c.base_dn, &filter, USER_ATTRS.to_vec(), false).await?;
    let mut found: Vec<Imported> = entries.iter().filter_map(|e| imported(e, &domain)).collect();
    for r in std::mem::take(&mut c.sync.lock().await.retry) {
        if !found.iter().any(|i| i.object_guid == r.object_guid) {
            found.push(r);
        }
    }
    let mut deleted = vec![];
    let mut top = found.iter().map(|i| i.usn).max().unwrap_or(0);
    if let Some(w) = since {
        let base = format!("CN=Deleted Objects,{}", c.base_dn);
        let f = format!("(&(isDeleted=TRUE)(uSNChanged>={}))", w + 1);
        let res = l
            .with_controls(vec![ldap3::controls::RawControl { ctype: OID_SHOW_DELETED.into(), crit: true, val: None }])
            .search(&base, Scope::Subtree, &f, vec!["objectGUID", "mS-DS-ConsistencyGuid", "uSNChanged"])
            .await
            .map_err(|e| Error(e.to_string()))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        for e in res.0.into_iter().map(SearchEntry::construct) {
            top = top.max(first(&e, "uSNChanged").and_then(|v| v.parse().ok()).unwrap_or(0));
            let value = match cfg.source_anchor {
                SourceAnchor::ObjectGuid => first_bin(&e, "objectGUID"),
                SourceAnchor::ConsistencyGuid => first_bin(&e, "mS-DS-ConsistencyGuid").or_else(|| first_bin(&e, "objectGUID")),
            };
            if let (Some(v), Some(g)) = (value, first_bin(&e, "objectGUID").and_then(|g| <[u8; 16]>::try_from(g).ok())) {
                deleted.push((b64.encode(v), g));
            }
        }
    }
    let plan = {
        let mut st = c.sync.lock().await;
        let plan = plan_objects(&mut st, &found, &deleted, &scope, cfg.source_anchor, full);
        st.watermark = Some(st.watermark.unwrap_or(0).max(top));
        for u in &plan.upserts {
            st.users.insert(u.anchor.clone(), u.clone());
        }
        for d in &plan.deletes {
            st.users.remove(d);
        }
        plan
    };
    run.new_joins = plan.new_joins;
    for (dn, guid) in &plan.stamp {
        let m = ldap3::Mod::Replace(b"mS-DS-ConsistencyGuid".to_vec(), HashSet::from([guid.to_vec()]));
        let r = l.with_timeout(crate::LDAP_OP_LIMIT).modify(dn, vec![m]).await.map_err(|e| Error(e.to_string()))?;
        if r.rc != 0 {
            report.errors.push(SyncError {
                code: "PermissionIssue".into(),
                distinguished_name: dn.clone(),
                message: format!("Could not write mS-DS-ConsistencyGuid: {}", r.text),
            });
        }
    }
    report.errors.extend(plan.errors);
    run.upserted = plan.upserts.into_iter().map(|u| u.anchor).collect();
    run.deleted = plan.deletes;
    run.found = found;
    Ok(run)
}

/// The tenant refused the whole export: Cloud Sync's job is in quarantine.
fn quarantined(r: &relay::ExportResult) -> bool {
    r.errors.iter().any(|e| e.code == relay::QUARANTINED)
}

fn add_up(report: &mut SyncReport, r: relay::ExportResult) {
    report.added += r.added;
    report.updated += r.updated;
    report.deleted += r.deleted;
    report.passwords += r.passwords;
    report.errors.extend(r.errors);
}

async fn hash_sync(inner: &Inner, c: &Connector, l: &mut ldap3::Ldap, full: bool, report: &mut SyncReport) -> Result<(), Error> {
    let cfg = &inner.cfg;
    // writebacks from here on supersede what this import reads
    inner.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    let since = if full { None } else { c.sync.lock().await.hash_watermark };
    let filter = match since {
        Some(w) => format!("(&(objectCategory=person)(objectClass=user)(uSNChanged>={}))", w + 1),
        None => "(&(objectCategory=person)(objectClass=user))".into(),
    };
    let attrs = vec!["objectGUID", "mS-DS-ConsistencyGuid", "pwdLastSet", "uSNChanged"];
    let entries = match search_all(l, &c.base_dn, &filter, attrs, true).await {
        Ok(e) => e,
        Err(e) => {
            inner.log.log(events::PHS_FAILED, format!("Password hash sync could not read the directory: {e}"), None);
            report.errors.push(SyncError { code: "PasswordHashSyncFailed".into(), distinguished_name: c.base_dn.clone(), message: e.0 });
            return Ok(());
        }
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut top = 0;
    let mut read = vec![];
    for e in &entries {
        top = top.max(first(e, "uSNChanged").and_then(|v| v.parse().ok()).unwrap_or(0));
        let Some(nt) = first_bin(e, "unicodePwd").and_then(|v| <[u8; 16]>::try_from(v).ok()) else { continue };
        let value = match cfg.source_anchor {
            SourceAnchor::ObjectGuid => first_bin(e, "objectGUID"),
            SourceAnchor::ConsistencyGuid => first_bin(e, "mS-DS-ConsistencyGuid"),
        };
        let Some(v) = value else { continue };
        let pwd_last_set = first(e, "pwdLastSet").and_then(|v| v.parse().ok()).unwrap_or(0);
        // Cloud Sync skips users who must change their password at next logon until they have
        // (Cloud Sync prerequisites and FAQ); Connect sends them, flagged
        if cfg.kind == relay::AgentKind::CloudSync && pwd_last_set == 0 {
            continue;
        }
        read.push(ImportedHash { anchor: b64.encode(v), dn: e.dn.clone(), nt_hash: nt, pwd_last_set });
    }
    // a joined user's password comes from the account the metaverse takes (the enabled one)
    let read: Vec<ImportedHash> = {
        let owners = inner.owners.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        read.into_iter().filter(|h| owners.get(&h.anchor).is_none_or(|o| *o == c.name)).collect()
    };
    let changed: Vec<&ImportedHash> = {
        let mut st = c.sync.lock().await;
        st.hash_watermark = Some(st.hash_watermark.unwrap_or(0).max(top));
        changed_hashes(&mut st, &read)
    };
    if changed.is_empty() {
        return Ok(());
    }
    let seed = inner.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next_u64();
    let owned: Vec<ImportedHash> = changed.iter().map(|h| (*h).clone()).collect();
    let planned = tokio::task::spawn_blocking(move || derive_all(&owned, seed)).await.map_err(|e| Error(e.to_string()))?;
    // no writeback runs while the hashes go out; ones that ran since the import win
    let _quiet = inner.phs_gate.write().await;
    let superseded = inner.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let planned: Vec<(PasswordHash, &str)> =
        planned.into_iter().zip(changed.iter().map(|h| h.dn.as_str())).filter(|(p, _)| !superseded.contains(&p.anchor)).collect();
    for (p, dn) in &planned {
        inner.log.log(656, format!("Password Change Request - Anchor: {}, Dn: {dn}", p.anchor), None);
    }
    let held = inner.export_delay_ms.load(std::sync::atomic::Ordering::SeqCst);
    if held > 0 {
        tokio::time::sleep(Duration::from_millis(held)).await;
    }
    for chunk in planned.chunks(HASH_BATCH) {
        let r = export(inner, SyncExport { passwords: chunk.iter().map(|(p, _)| p.clone()).collect(), ..Default::default() }).await?;
        if quarantined(&r) {
            // not sent after all: the next hash sync sends them again
            let mut st = c.sync.lock().await;
            for (p, _) in chunk {
                st.hashes.remove(&p.anchor);
            }
            // (read whole next time: these were read already)
            st.hash_watermark = None;
        }
        report.passwords += r.passwords;
        report.errors.extend(r.errors);
    }
    for (p, dn) in &planned {
        inner.log.log(657, format!("Password Change Result - Anchor: {}, Dn: {dn}, Result: Success.", p.anchor), None);
    }
    Ok(())
}

/// The connector space as Connect would have left it in a lab whose tenant was seeded as
/// already synced: every scoped user joined and every password sent, nothing exported.
/// Read from AD over the connector's own session, which the engine then keeps.
pub struct Baseline {
    found: Vec<Imported>,
    hashes: Vec<ImportedHash>,
    top: i64,
    pub(crate) session: ldap3::Ldap,
    /// The DC it was read from.
    pub(crate) dc: String,
}

impl Baseline {
    /// Reads it over a new LDAPS session as the connector account: nothing of the tenant's
    /// or the engine's is needed, so a lab reads it while the engine onboards.
    pub async fn read(cfg: &crate::Config) -> Result<Baseline, Error> {
        let tls = crate::tls(&cfg.ca_pem)?;
        let (mut l, dc) = crate::connector_session(cfg, &tls, false).await.map_err(|(_, d)| Error(d.unwrap_or_default()))?;
        let domain = domain_of(&cfg.base_dn);
        let filter = "(&(objectCategory=person)(objectClass=user))";
        let mut attrs = USER_ATTRS.to_vec();
        attrs.push("pwdLastSet");
        let entries = search_all(&mut l, &cfg.base_dn, filter, attrs, true).await?;
        let found: Vec<Imported> = entries.iter().filter_map(|e| imported(e, &domain)).collect();
        let b64 = base64::engine::general_purpose::STANDARD;
        let hashes: Vec<ImportedHash> = entries
            .iter()
            .filter_map(|e| {
                let nt = first_bin(e, "unicodePwd").and_then(|v| <[u8; 16]>::try_from(v).ok())?;
                let v = match cfg.source_anchor {
                    SourceAnchor::ObjectGuid => first_bin(e, "objectGUID"),
                    SourceAnchor::ConsistencyGuid => first_bin(e, "mS-DS-ConsistencyGuid"),
                }?;
                let pwd_last_set = first(e, "pwdLastSet").and_then(|v| v.parse().ok()).unwrap_or(0);
                Some(ImportedHash { anchor: b64.encode(v), dn: e.dn.clone(), nt_hash: nt, pwd_last_set })
            })
            .collect();
        let top = found.iter().map(|i| i.usn).max().unwrap_or(0);
        Ok(Baseline { found, hashes, top, session: l, dc })
    }
}

/// The engine's sync state from a [`Baseline`].
pub(crate) async fn adopt(inner: &Inner, b: Baseline) {
    let cfg = &inner.cfg;
    let first = inner.primary();
    let mut st = first.sync.lock().await;
    let scope = st.scope.clone().unwrap_or_else(|| cfg.sync_scope.clone());
    let plan = plan_objects(&mut st, &b.found, &[], &scope, cfg.source_anchor, true);
    let mut owners = inner.owners.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for u in plan.upserts {
        owners.insert(u.anchor.clone(), first.name.clone());
        st.users.insert(u.anchor.clone(), u);
    }
    drop(owners);
    let _ = changed_hashes(&mut st, &b.hashes);
    st.watermark = Some(b.top);
    st.hash_watermark = Some(b.top);
    st.watermark_dc = Some(b.dc);
}

async fn export(inner: &Inner, body: SyncExport) -> Result<relay::ExportResult, Error> {
    let url = format!("{}/lab/sync/export", inner.cfg.tenant_https);
    let r = inner
        .http
        .post(url)
        .header("authorization", format!("Bearer {}", inner.reg.credential))
        .json(&body)
        .send()
        .await
        .map_err(|e| Error(format!("export: {e}")))?;
    if !r.status().is_success() {
        return Err(Error(format!("export: HTTP {}", r.status())));
    }
    r.json().await.map_err(|e| Error(format!("export: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(dn: &str, guid: u8, upn: &str) -> Imported {
        Imported {
            dn: dn.into(),
            object_guid: [guid; 16],
            consistency_guid: None,
            usn: 5000 + u64::from(guid) as i64,
            excluded: false,
            groups: vec![],
            user: SyncedUser {
                anchor: String::new(),
                user_principal_name: upn.into(),
                display_name: upn.into(),
                given_name: None,
                surname: None,
                mail: None,
                account_enabled: true,
                sam_account_name: upn.into(),
                domain_name: "testlab.example".into(),
                distinguished_name: dn.into(),
                security_identifier: String::new(),
            },
        }
    }

    const SCOPE: &str = "OU=Lab Users,DC=testlab,DC=example";

    #[test]
    fn scope_anchors_and_deletions() {
        let mut st = SyncState::default();
        let scope = vec![SCOPE.to_string()];
        let a = user("CN=A,OU=Lab Users,DC=testlab,DC=example", 1, "a@x");
        let b = user("CN=B,OU=Elsewhere,DC=testlab,DC=example", 2, "b@x");
        let plan = plan_objects(&mut st, &[a.clone(), b.clone()], &[], &scope, SourceAnchor::ObjectGuid, true);
        assert_eq!(plan.upserts.len(), 1, "only the scoped OU");
        assert!(plan.deletes.is_empty());
        // nothing changed: nothing to export
        assert_eq!(plan_objects(&mut st, std::slice::from_ref(&a), &[], &scope, SourceAnchor::ObjectGuid, false), ObjectPlan::default());
        // moved out of scope: deleted in the cloud
        let mut moved = a.clone();
        moved.dn = "CN=A,OU=Elsewhere,DC=testlab,DC=example".into();
        let plan = plan_objects(&mut st, &[moved], &[], &scope, SourceAnchor::ObjectGuid, false);
        assert_eq!(plan.deletes.len(), 1);
        // back in scope, then deleted on-premises (a tombstone)
        plan_objects(&mut st, std::slice::from_ref(&a), &[], &scope, SourceAnchor::ObjectGuid, false);
        let anchor = anchor_of(&a, SourceAnchor::ObjectGuid).0;
        let plan = plan_objects(&mut st, &[], &[(anchor.clone(), [1; 16])], &scope, SourceAnchor::ObjectGuid, false);
        assert_eq!(plan.deletes, vec![anchor]);
        assert!(st.objects.is_empty());
    }

    #[test]
    fn consistency_guid_is_stamped_and_duplicates_are_refused() {
        let mut st = SyncState::default();
        let scope = vec![SCOPE.to_string()];
        let a = user("CN=A,OU=Lab Users,DC=testlab,DC=example", 1, "a@x");
        let plan = plan_objects(&mut st, std::slice::from_ref(&a), &[], &scope, SourceAnchor::ConsistencyGuid, true);
        assert_eq!(plan.stamp, vec![(a.dn.clone(), [1; 16])]);
        let mut twin = user("CN=A2,OU=Lab Users,DC=testlab,DC=example", 2, "a2@x");
        twin.consistency_guid = Some(vec![1; 16]);
        let mut a_stamped = a.clone();
        a_stamped.consistency_guid = Some(vec![1; 16]);
        let plan = plan_objects(&mut st, &[a_stamped, twin], &[], &scope, SourceAnchor::ConsistencyGuid, true);
        assert_eq!(plan.errors.len(), 2);
        assert!(plan.errors.iter().all(|e| e.code == "DuplicateSourceAnchor"));
        assert_eq!(plan.deletes.len(), 1, "an ambiguous anchor leaves the cloud");
        assert!(plan.upserts.is_empty());
        // re-created: the old object's tombstone and a new object with its anchor in one
        // delta: the new object takes the twin over (an update, no deletion)
        let mut st = SyncState::default();
        let mut a_stamped = a.clone();
        a_stamped.consistency_guid = Some(vec![1; 16]);
        plan_objects(&mut st, &[a_stamped], &[], &scope, SourceAnchor::ConsistencyGuid, true);
        let mut reborn = user("CN=A,OU=Lab Users,DC=testlab,DC=example", 7, "a@x");
        reborn.consistency_guid = Some(vec![1; 16]);
        let anchor = anchor_of(&reborn, SourceAnchor::ConsistencyGuid).0;
        let plan = plan_objects(&mut st, &[reborn], &[(anchor.clone(), [1; 16])], &scope, SourceAnchor::ConsistencyGuid, false);
        assert!(plan.deletes.is_empty() && plan.errors.is_empty(), "{plan:?}");
        assert_eq!(st.objects[&anchor].0, [7; 16]);
    }

    #[test]
    fn hashes_go_once_per_change_and_only_for_joined_users() {
        let mut st = SyncState::default();
        st.objects.insert("AAA=".into(), ([9; 16], 1));
        let mut rng = rand::rngs::mock::StepRng::new(1, 1);
        let plan_hashes = |st: &mut SyncState, read: &[ImportedHash], rng: &mut rand::rngs::mock::StepRng| {
            changed_hashes(st, read).into_iter().map(|h| (derive(h, rng), h.dn.clone())).collect::<Vec<_>>()
        };
        let read = |nt: u8, set: i64| {
            vec![
                ImportedHash { anchor: "AAA=".into(), dn: "CN=A".into(), nt_hash: [nt; 16], pwd_last_set: set },
                ImportedHash { anchor: "ZZZ=".into(), dn: "CN=Z".into(), nt_hash: [nt; 16], pwd_last_set: set },
            ]
        };
        let sent = plan_hashes(&mut st, &read(1, 10), &mut rng);
        assert_eq!(sent.len(), 1);
        let (p, _) = &sent[0];
        assert_eq!((p.iterations, p.force_change), (1000, false));
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt: [u8; 10] = b64.decode(&p.salt).unwrap().try_into().unwrap();
        assert_eq!(b64.decode(&p.hash).unwrap(), relay::phs::derive(&[1; 16], &salt, 1000));
        assert!(plan_hashes(&mut st, &read(1, 10), &mut rng).is_empty(), "unchanged: not sent again");
        let again = plan_hashes(&mut st, &read(2, 0), &mut rng);
        assert!(again.len() == 1 && again[0].0.force_change, "pwdLastSet 0 flows as must-change");
    }

    #[test]
    fn sids_read_as_text() {
        let b = [1, 4, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0x51, 0x04, 0, 0];
        assert_eq!(sid_text(&b), "S-1-5-21-1-2-1105");
        assert_eq!(domain_of("DC=testlab,DC=example"), "testlab.example");
    }

    /// Cloud Sync's group scoping: a direct member of a scoped group is in, a member of a
    /// member group is not; OUs still count.
    #[test]
    fn a_scoped_groups_direct_members_are_in_and_nested_ones_are_not() {
        let scope = vec!["OU=Cloud Sync Users,DC=t".to_string(), "CN=Pilot,OU=Groups,DC=t".to_string()];
        assert!(scopes_groups(&scope) && !scopes_groups(&scope[..1]));
        let mut direct = user("CN=D,OU=Elsewhere,DC=t", 1, "d@t");
        direct.groups = vec!["cn=pilot,ou=groups,dc=t".into()];
        let mut nested = user("CN=N,OU=Elsewhere,DC=t", 2, "n@t");
        nested.groups = vec!["CN=Inner,OU=Groups,DC=t".into()];
        let in_ou = user("CN=O,OU=Cloud Sync Users,DC=t", 3, "o@t");
        let mut st = SyncState::default();
        let plan = plan_objects(&mut st, &[direct, nested, in_ou], &[], &scope, SourceAnchor::ObjectGuid, true);
        let upns: Vec<&str> = plan.upserts.iter().map(|u| u.user_principal_name.as_str()).collect();
        assert_eq!(upns, ["d@t", "o@t"]);
    }
}
