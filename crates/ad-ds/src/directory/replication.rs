//! Replication between the DCs of one domain, as plain data: what a DC changed since a
//! partner's watermark ([`Directory::changes_since`]), and applying a partner's changes
//! ([`Directory::apply`]). Each DC has its own USNs; an object's [`Version`] says which
//! originating write a copy is, so a change comes back to its own DC as already held, and of
//! two DCs that wrote one object between replications the later write wins (AD resolves
//! per attribute; the lab per object: docs/fidelity.md).
//!
//! What is not replicated stays each DC's own, as in AD: badPwdCount, badPasswordTime,
//! lastLogon, logonCount, lastLogoff (MS-ADA1: not in the partial or full replica set's
//! replicated attributes), and back links (memberOf, directReports), which each DC keeps from
//! the forward links it holds.

use super::*;
use crate::entry::Version;

/// The bind bookkeeping a DC keeps for itself (a new object arrives without it).
const BOOKKEEPING: &[&str] = &["badPwdCount", "badPasswordTime", "lastLogon", "logonCount", "lastLogoff"];

/// The RIDs between one DC's pool and the next's.
pub const RID_POOL: u32 = 100_000;

/// A replica's generator of GUIDs: seeded, so a lab is reproducible, from the lab's seed and
/// the DC's name, so no two DCs draw the same GUIDs.
fn replica_rng(seed: u64, dc_name: &str) -> StdRng {
    let d = crate::partitions::mix(seed, dc_name);
    let mut s = [0u8; 32];
    s[..16].copy_from_slice(&d);
    s[16..].copy_from_slice(&d);
    StdRng::from_seed(s)
}

/// One object's state as its DC holds it, or its deletion.
#[derive(Clone, Debug)]
pub enum Change {
    Object {
        entry: Entry,
        /// The grants and denies placed on the object itself (ACEs written into its
        /// nTSecurityDescriptor travel with it).
        grants: Vec<Grant>,
        denies: Vec<Grant>,
        protected: bool,
    },
    Deleted {
        guid: [u8; 16],
        version: Version,
    },
}

/// What a DC sends a partner: its changes in USN order, and the highest USN they reach
/// (the partner's next watermark).
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub changes: Vec<Change>,
    pub high_usn: i64,
}

impl Directory {
    /// A second (third, …) DC of this domain, promoted from this one: a full copy of the
    /// domain as it stands (AD's initial replication), its own name, number and USNs, and a
    /// RID pool of its own. The caller adds the new DC's computer account first (on this DC,
    /// so that both hold it).
    pub fn replica(&self, dc_name: &str, invocation: u8) -> Directory {
        let mut config = self.config.clone();
        config.dc_name = dc_name.to_string();
        Directory {
            config,
            base: self.base.clone(),
            domain_sid: self.domain_sid.clone(),
            clock: self.clock.clone(),
            rng: replica_rng(self.config.seed, dc_name),
            entries: self.entries.clone(),
            order: self.order.clone(),
            idx_sam: self.idx_sam.clone(),
            idx_upn: self.idx_upn.clone(),
            idx_guid: self.idx_guid.clone(),
            idx_sid: self.idx_sid.clone(),
            idx_mail: self.idx_mail.clone(),
            idx_usn: self.idx_usn.clone(),
            usn: self.usn,
            // AD hands each DC a pool of RIDs from the RID master; the lab's pools are far apart
            next_rid: self.next_rid + RID_POOL * u32::from(invocation),
            grants: self.grants.clone(),
            denies: self.denies.clone(),
            other_aces: self.other_aces.clone(),
            written_aces: self.written_aces.clone(),
            dacl_protected: self.dacl_protected.clone(),
            tombstones: self.tombstones.clone(),
            derived: OnceLock::new(),
            partitions: OnceLock::new(),
            layout: OnceLock::new(),
            invocation,
            forest: self.forest.clone(),
        }
    }

    /// Every change this DC holds above a partner's watermark (objects by uSNChanged,
    /// deletions by their tombstone's).
    pub fn changes_since(&self, watermark: i64) -> Changes {
        let mut changes: Vec<(i64, Change)> = self
            .idx_usn
            .range((watermark + 1, Dn::root().key())..)
            .filter_map(|(usn, k)| self.entries.get(k).map(|e| (*usn, self.object_change(k, e))))
            .collect();
        for t in &self.tombstones {
            let usn = t.int("uSNChanged").unwrap_or(0);
            if let (true, Some(guid)) = (usn > watermark, t.guid()) {
                changes.push((usn, Change::Deleted { guid, version: t.version }));
            }
        }
        changes.sort_by_key(|(usn, _)| *usn);
        Changes { high_usn: self.usn.max(watermark), changes: changes.into_iter().map(|(_, c)| c).collect() }
    }

    /// One object's state now, for an urgent replication (a lockout, a password written on a
    /// DC that is not the PDC emulator: MS-ADTS 3.1.1.1.10's "replicated urgently").
    pub fn change_of(&self, key: &DnKey) -> Option<Change> {
        self.entries.get(key).map(|e| self.object_change(key, e))
    }

    fn object_change(&self, key: &DnKey, e: &Entry) -> Change {
        Change::Object {
            entry: e.clone(),
            grants: self.grants.iter().filter(|g| &g.scope == key).cloned().collect(),
            denies: self.denies.iter().filter(|g| &g.scope == key).cloned().collect(),
            protected: self.dacl_protected.contains(key),
        }
    }

    /// How many of a partner's changes [`Directory::apply`] would take (`repadmin /showrepl`'s
    /// backlog): the ones this DC does not hold at that version or a later one.
    pub fn would_take(&self, changes: &Changes) -> usize {
        changes
            .changes
            .iter()
            .filter(|c| match c {
                Change::Object { entry, .. } => {
                    let Some(guid) = entry.guid() else { return false };
                    match self.idx_guid.get(&guid).and_then(|k| self.entries.get(k)) {
                        Some(held) => merge(held, entry).is_some(),
                        None => !self.tombstones.iter().any(|t| t.guid() == Some(guid)),
                    }
                }
                Change::Deleted { guid, .. } => self.idx_guid.contains_key(guid),
            })
            .count()
    }

    /// Applies a partner's changes: each one this DC does not already hold at that version
    /// or a later one. Returns how many it took.
    pub fn apply(&mut self, changes: &Changes) -> usize {
        let mut taken = 0;
        for c in &changes.changes {
            let took = match c {
                Change::Object { entry, grants, denies, protected } => self.apply_object(entry, grants, denies, *protected),
                Change::Deleted { guid, version } => {
                    // a delete wins over any write made elsewhere meanwhile (AD's isDeleted)
                    let Some(key) = self.idx_guid.get(guid).cloned() else { continue };
                    self.remove_object(&key);
                    if let Some(t) = self.tombstones.last_mut() {
                        t.version = *version;
                    }
                    true
                }
            };
            taken += usize::from(took);
        }
        taken
    }

    fn apply_object(&mut self, incoming: &Entry, grants: &[Grant], denies: &[Grant], protected: bool) -> bool {
        let Some(guid) = incoming.guid() else { return false };
        let held_key = self.idx_guid.get(&guid).cloned();
        let held = held_key.as_ref().and_then(|k| self.entries.get(k)).cloned();
        // an object deleted here stays deleted: a write made elsewhere before the delete
        // reached there does not bring it back
        if held.is_none() && self.tombstones.iter().any(|t| t.guid() == Some(guid)) {
            return false;
        }
        let mut e = match &held {
            Some(h) => match merge(h, incoming) {
                Some(merged) => merged,
                None => return false,
            },
            None => {
                // new here: the object as the partner holds it, bookkeeping left out
                let mut e = incoming.clone();
                for a in BOOKKEEPING {
                    e.set(a, Vec::<Value>::new());
                }
                e
            }
        };
        let key = e.dn.key();
        let usn = self.next_usn();
        e.set_str("uSNChanged", usn.to_string());
        e.set_str("whenChanged", clock::generalized_time(self.clock.now()));
        if held.is_none() {
            e.set_str("uSNCreated", usn.to_string());
        }
        // a rename or move made on the partner: the object leaves its old place here, and
        // what is below it follows (AD names children by their parent)
        if let (Some(old_key), Some(h)) = (held_key.as_ref().filter(|k| **k != key), &held) {
            let below: Vec<DnKey> = self.order.range(old_key.subtree_start()..).take_while(|k| k.is_below(old_key)).cloned().collect();
            self.unstore(old_key);
            self.rekey_access(old_key, Some(&key));
            for k in below {
                let Some(mut c) = self.unstore(&k) else { continue };
                let keep = c.dn.rdns.len() - h.dn.rdns.len();
                let mut rdns = c.dn.rdns[..keep].to_vec();
                rdns.extend(e.dn.rdns.iter().cloned());
                c.dn = Dn { rdns };
                c.set_str("distinguishedName", c.dn.to_string());
                let to = c.dn.key();
                self.rekey_access(&k, Some(&to));
                self.store_at(to, c);
            }
        }
        let links: Vec<(&str, Vec<Value>, Vec<Value>)> = LINKS
            .iter()
            .map(|(f, _)| (*f, held.as_ref().map(|h| h.values(f).to_vec()).unwrap_or_default(), e.values(f).to_vec()))
            .collect();
        let dn = e.dn.clone();
        self.store_at(key.clone(), e);
        for (fwd, old, new) in links {
            self.relink(fwd, &dn, &old, &new);
        }
        self.grants.retain(|g| g.scope != key);
        self.grants.extend(grants.iter().cloned());
        self.denies.retain(|g| g.scope != key);
        self.denies.extend(denies.iter().cloned());
        if protected {
            self.dacl_protected.insert(key);
        } else {
            self.dacl_protected.remove(&key);
        }
        true
    }
}

/// A partner's copy folded into this DC's, attribute by attribute: each replicated
/// attribute whose latest write on the partner is later than this DC's (the password
/// material with unicodePwd, the name with distinguishedName). None: nothing is newer.
fn merge(held: &Entry, incoming: &Entry) -> Option<Entry> {
    let mut e = held.clone();
    let mut taken = false;
    let ids: BTreeSet<u16> = held.attr_ids().chain(incoming.attr_ids()).chain(incoming.meta.iter().map(|(i, _)| *i)).collect();
    for id in ids {
        let name = schema::attribute_by_id(id).name;
        if KEPT_BY_EACH_DC.contains(&name) {
            continue;
        }
        let theirs = incoming.meta_of(id);
        if theirs > held.meta_of(id) {
            e.set(name, incoming.values(name).to_vec());
            e.set_meta(id, theirs);
            if id == UNICODE_PWD.0 {
                e.secrets = incoming.secrets.clone();
            }
            if name == "distinguishedName" {
                e.dn = incoming.dn.clone();
            }
            taken = true;
        }
    }
    e.version = held.version.max(incoming.version);
    taken.then_some(e)
}
