//! The directory: every object of one domain, the indexes AD keeps for its well-known
//! lookups, and the operations LDAP exposes (add, modify, delete, rename, compare, search,
//! bind) as plain synchronous functions. Each operation checks everything first and then
//! applies, so a refused operation changes nothing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::OnceLock;

use clock::Clock;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use smallvec::SmallVec;

use crate::access::{Grant, Right, Trustee};
use crate::account::{self, Bookkeeping};
use crate::dn::{Dn, DnKey, Rdn};
use crate::entry::{Entry, Value, values_equal};
use crate::error::{AdError, AdResult, ResultCode};
use crate::filter::{Filter, Subject};
use crate::password::{decode_unicode_pwd, nt_hash};
use crate::policy::{self, Policy};
use crate::schema::{self, Syntax};
use crate::security;
use crate::sid::Sid;

/// AD's MaxPageSize: a search returns at most this many entries per request or page.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The domain a directory serves.
#[derive(Clone, Debug)]
pub struct DomainConfig {
    /// DNS name: `testlab.example`.
    pub dns_name: String,
    /// NetBIOS name: `TESTLAB`.
    pub netbios: String,
    /// The domain controller's host name (first label): `DC1`.
    pub dc_name: String,
    /// The domain SID's three sub-authorities after S-1-5-21.
    pub sid: [u32; 3],
    /// Seeds every random value (objectGUIDs), so a lab is reproducible.
    pub seed: u64,
    /// The built-in Administrator's password.
    pub admin_password: String,
}

impl DomainConfig {
    pub fn base_dn(&self) -> Dn {
        Dn::from_dns_domain(&self.dns_name)
    }
}

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User { dn: Dn, sam: String, admin: bool },
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::User { admin: true, .. })
    }
    pub fn dn(&self) -> Option<&Dn> {
        match self {
            Principal::User { dn, .. } => Some(dn),
            Principal::Anonymous => None,
        }
    }
}

/// Facts about the connection an operation arrived on.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpContext {
    /// TLS (LDAPS or after StartTLS): AD refuses unicodePwd writes without it.
    pub encrypted: bool,
    /// LDAP_SERVER_PERMISSIVE_MODIFY: adding a present value or deleting an absent one
    /// succeeds quietly.
    pub permissive: bool,
    /// LDAP_SERVER_POLICY_HINTS with flag 1: a reset is held to the full password policy
    /// (history and minimum age too), as Azure AD Connect asks for.
    pub policy_hints: bool,
    /// The SD-flags control's parts of an nTSecurityDescriptor write (0: not sent).
    pub sd_parts: u32,
}

impl OpContext {
    /// Over TLS, no controls: what the lab's own seeding and tests write with.
    pub const TLS: OpContext = OpContext { encrypted: true, permissive: false, policy_hints: false, sd_parts: 0 };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModOp {
    Add,
    Delete,
    Replace,
    Increment,
}

#[derive(Clone, Debug)]
pub struct Modification {
    pub op: ModOp,
    pub attr: String,
    pub values: Vec<Vec<u8>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Base,
    OneLevel,
    Subtree,
}

#[derive(Clone, Debug)]
pub struct SearchRequest {
    pub base: String,
    pub scope: Scope,
    pub filter: Filter,
}

/// Which attributes a search returns.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub all_user: bool,
    pub all_operational: bool,
    pub named: Vec<String>,
    pub types_only: bool,
    /// The lab's export control: include password hashes (admin over TLS only).
    pub with_secrets: bool,
    /// The SD-flags control's parts of nTSecurityDescriptor (0: not sent, owner, group
    /// and DACL).
    pub sd_parts: u32,
}

impl Selection {
    /// RFC 4511 4.5.1.8: empty list or `*` = all user attributes; `+` = operational;
    /// `1.1` alone = none.
    pub fn from_request(attrs: &[String], types_only: bool) -> Selection {
        let mut s = Selection { types_only, ..Default::default() };
        if attrs.is_empty() {
            s.all_user = true;
        }
        for a in attrs {
            match a.as_str() {
                "*" => s.all_user = true,
                "+" => s.all_operational = true,
                "1.1" => {}
                a => s.named.push(a.split(';').next().unwrap_or(a).to_string()),
            }
        }
        s
    }
}

/// What each DC keeps for itself, never replicated: the stamps it puts on every write,
/// originating or replicated; the bind bookkeeping (MS-ADA1: not replicated); the back links
/// it keeps from the forward links it holds.
pub(crate) const KEPT_BY_EACH_DC: &[&str] = &[
    "uSNChanged",
    "uSNCreated",
    "whenChanged",
    "badPwdCount",
    "badPasswordTime",
    "lastLogon",
    "logonCount",
    "lastLogoff",
    "memberOf",
    "directReports",
];

/// The attribute whose replication metadata the password material shares.
pub(crate) const UNICODE_PWD: schema::AttrId = schema::AttrId::of("unicodePwd");

/// The constructed attributes a DC works out only for a base search.
pub const TOKEN_GROUPS: &[&str] = &["tokenGroups", "tokenGroupsGlobalAndUniversal", "tokenGroupsNoGCAcceptable"];

/// A rendered search entry: DN and attributes with values.
pub type Rendered = (String, Vec<(String, Vec<Vec<u8>>)>);

/// (forward link, back link): AD keeps the back link consistent with the forward link.
const LINKS: &[(&str, &str)] = &[("member", "memberOf"), ("manager", "directReports")];

/// The directory's hash maps: foldhash (seeded per process from the OS) hashes a DN key or a
/// name several times faster than SipHash, and every bind and search does a few of these.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What every bind asks and few writes change, worked out once after a write and kept until
/// the next: who the administrators are, the domain's password policy, where the PSOs are.
struct Derived {
    /// Members, nested, of Domain Admins, Enterprise Admins and Administrators.
    admins: HashSet<DnKey, foldhash::fast::RandomState>,
    domain_policy: Policy,
    psos: Vec<DnKey>,
}

pub struct Directory {
    config: DomainConfig,
    base: Dn,
    domain_sid: Sid,
    clock: Clock,
    rng: StdRng,
    /// The objects, for point lookups (one hash probe, whatever the size).
    entries: Map<DnKey, Entry>,
    /// The same keys in directory order: subtrees are ranges of it.
    order: BTreeSet<DnKey>,
    idx_sam: Map<String, DnKey>,
    idx_upn: Map<String, DnKey>,
    idx_guid: Map<[u8; 16], DnKey>,
    idx_sid: Map<Box<[u8]>, DnKey>,
    /// Mail need not be unique, but almost always is: one key inline, sorted when more.
    idx_mail: Map<String, SmallVec<[DnKey; 1]>>,
    /// uSNChanged → object: what a sync client's `(uSNChanged>=N)` asks for, as a range.
    idx_usn: BTreeSet<(i64, DnKey)>,
    usn: i64,
    next_rid: u32,
    grants: Vec<Grant>,
    /// Deny entries (ADUC's "User cannot change password" is one: Change Password denied to
    /// Everyone on the user); a deny that covers the target wins over any allow.
    denies: Vec<Grant>,
    /// ACEs a client wrote into an object's nTSecurityDescriptor that the access model does
    /// not read (full control for a group, a right the lab does not know): kept as written
    /// and read back, never acted on.
    other_aces: HashMap<DnKey, Vec<security::Ace>>,
    /// The ACE a client wrote for a grant or deny the model reads, by the object it is on:
    /// read back as written (ADUC shows the "Applies to" the administrator chose), where a
    /// grant made by the lab's switches is read back in the delegation wizard's form.
    written_aces: HashMap<DnKey, Vec<(bool, Grant, security::Ace)>>,
    /// Objects whose DACL is protected (SE_DACL_PROTECTED: ADUC's "Disable inheritance" with
    /// the inherited entries removed): nothing granted or denied above them reaches them.
    dacl_protected: BTreeSet<DnKey>,
    /// Deleted objects as AD keeps them for replication and sync: a few attributes under
    /// `CN=Deleted Objects`, isDeleted TRUE, a fresh uSNChanged.
    tombstones: Vec<Entry>,
    /// Emptied by every write but a bind's bookkeeping (see [`Directory::derived`]).
    derived: OnceLock<Derived>,
    /// The Configuration, Schema and DNS naming contexts: made on the first search of one.
    partitions: OnceLock<crate::partitions::Partitions>,
    layout: OnceLock<crate::partitions::Layout>,
    /// This DC's number in its domain (0: the first, the PDC emulator), stamped on the
    /// originating writes it makes (replication.rs).
    invocation: u8,
    /// The forest the domain belongs to, when it is more than this domain (set before the
    /// first search: the Configuration NC describes it).
    forest: Option<crate::partitions::Forest>,
}

mod replication;
pub use replication::{Change, Changes, RID_POOL};

impl Directory {
    /// A directory holding only what a freshly promoted domain controller has.
    pub fn new(config: DomainConfig, clock: Clock) -> Directory {
        Directory::in_forest(config, clock, None)
    }

    /// A new domain of a forest (a child domain: its objects name the forest root's schema
    /// from the start). None: the forest of this domain alone.
    pub fn in_forest(config: DomainConfig, clock: Clock, forest: Option<crate::partitions::Forest>) -> Directory {
        let base = config.base_dn();
        let domain_sid = Sid::domain(config.sid);
        let mut d = Directory {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            base,
            domain_sid,
            clock,
            entries: Map::default(),
            order: BTreeSet::new(),
            idx_sam: Map::default(),
            idx_upn: Map::default(),
            idx_guid: Map::default(),
            idx_sid: Map::default(),
            idx_mail: Map::default(),
            idx_usn: BTreeSet::new(),
            usn: 4096,
            next_rid: 1103,
            grants: Vec::new(),
            denies: Vec::new(),
            other_aces: HashMap::new(),
            written_aces: HashMap::new(),
            dacl_protected: BTreeSet::new(),
            tombstones: Vec::new(),
            derived: OnceLock::new(),
            partitions: OnceLock::new(),
            layout: OnceLock::new(),
            invocation: 0,
            forest,
        };
        crate::domain::provision(&mut d);
        d
    }

    /// Places the domain in a forest of several domains (labkit, before anyone searches).
    pub fn set_forest(&mut self, forest: crate::partitions::Forest) {
        self.forest = Some(forest);
        self.partitions = OnceLock::new();
        self.layout = OnceLock::new();
    }

    pub fn forest(&self) -> Option<&crate::partitions::Forest> {
        self.forest.as_ref()
    }

    /// The naming contexts this DC holds beside the domain's (built on first use).
    pub fn partitions(&self) -> &crate::partitions::Partitions {
        self.partitions.get_or_init(|| crate::partitions::Partitions::build(self))
    }

    /// Whether those naming contexts' objects have been built (only a search based in one
    /// builds them: a lab's start and the domain's searches never do).
    pub fn partitions_built(&self) -> bool {
        self.partitions.get().is_some()
    }

    /// Where those naming contexts are (cheap: no objects), for every search of the domain.
    pub fn layout(&self) -> &crate::partitions::Layout {
        self.layout.get_or_init(|| crate::partitions::Layout::build(self))
    }

    pub fn config(&self) -> &DomainConfig {
        &self.config
    }
    pub fn base_dn(&self) -> &Dn {
        &self.base
    }
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
    pub fn domain_sid(&self) -> &Sid {
        &self.domain_sid
    }
    pub fn highest_usn(&self) -> i64 {
        self.usn
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.order.iter().map(|k| &self.entries[k])
    }
    pub fn get(&self, key: &DnKey) -> Option<&Entry> {
        self.entries.get(key)
    }
    pub fn get_dn(&self, dn: &Dn) -> Option<&Entry> {
        self.entries.get(&dn.key())
    }
    pub fn by_sam(&self, sam: &str) -> Option<&Entry> {
        self.idx_sam.get(&sam.to_lowercase()).and_then(|k| self.entries.get(k))
    }
    pub fn by_upn(&self, upn: &str) -> Option<&Entry> {
        self.idx_upn.get(&upn.to_lowercase()).and_then(|k| self.entries.get(k))
    }
    pub fn by_guid(&self, guid: &[u8; 16]) -> Option<&Entry> {
        self.idx_guid.get(guid).and_then(|k| self.entries.get(k))
    }

    // ----- storage and indexes -----

    fn index(&mut self, key: &DnKey, e: &Entry) {
        if let Some(s) = e.first_str("sAMAccountName") {
            self.idx_sam.insert(s.to_lowercase(), key.clone());
        }
        if let Some(s) = e.first_str("userPrincipalName") {
            self.idx_upn.insert(s.to_lowercase(), key.clone());
        }
        if let Some(g) = e.guid() {
            self.idx_guid.insert(g, key.clone());
        }
        if let Some(s) = e.values("objectSid").first() {
            self.idx_sid.insert(s.as_slice().into(), key.clone());
        }
        for m in e.values("mail") {
            let keys = self.idx_mail.entry(String::from_utf8_lossy(m).to_lowercase()).or_default();
            if let Err(i) = keys.binary_search(key) {
                keys.insert(i, key.clone());
            }
        }
        if let Some(u) = e.int("uSNChanged") {
            self.idx_usn.insert((u, key.clone()));
        }
    }

    fn unindex(&mut self, key: &DnKey, e: &Entry) {
        if let Some(u) = e.int("uSNChanged") {
            self.idx_usn.remove(&(u, key.clone()));
        }
        if let Some(s) = e.first_str("sAMAccountName") {
            self.idx_sam.remove(&s.to_lowercase());
        }
        if let Some(s) = e.first_str("userPrincipalName") {
            self.idx_upn.remove(&s.to_lowercase());
        }
        if let Some(g) = e.guid() {
            self.idx_guid.remove(&g);
        }
        if let Some(s) = e.values("objectSid").first() {
            self.idx_sid.remove(s.as_slice());
        }
        for m in e.values("mail") {
            let k = String::from_utf8_lossy(m).to_lowercase();
            if let Some(keys) = self.idx_mail.get_mut(&k) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    self.idx_mail.remove(&k);
                }
            }
        }
    }

    /// Every object, in no particular order (cheaper than [`Directory::entries`]).
    pub fn unordered_entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Puts an entry in place (replacing any entry at its DN) and keeps the indexes true.
    pub(crate) fn store(&mut self, e: Entry) {
        let key = e.dn.key();
        self.store_at(key, e);
    }

    /// [`Directory::store`] when the caller already has the entry's key.
    pub(crate) fn store_at(&mut self, key: DnKey, e: Entry) {
        self.derived.take();
        self.place(key, e);
    }

    /// Stores without forgetting what is derived: for a bind's bookkeeping only (bad
    /// password counts, lockout and logon stamps change no membership and no policy).
    fn place(&mut self, key: DnKey, mut e: Entry) {
        debug_assert_eq!(key, e.dn.key());
        e.shrink_to_fit();
        if let Some(old) = self.entries.remove(&key) {
            self.unindex(&key, &old);
        } else {
            self.order.insert(key.clone());
        }
        self.index(&key, &e);
        self.entries.insert(key, e);
    }

    fn unstore(&mut self, key: &DnKey) -> Option<Entry> {
        self.derived.take();
        let e = self.entries.remove(key)?;
        self.order.remove(key);
        self.unindex(key, &e);
        Some(e)
    }

    /// An entry to change in place (link upkeep): what is derived is worked out again.
    fn entry_mut(&mut self, key: &DnKey) -> Option<&mut Entry> {
        self.derived.take();
        self.entries.get_mut(key)
    }

    /// The administrators, the domain policy and the PSOs, as the directory stands.
    fn derived(&self) -> &Derived {
        self.derived.get_or_init(|| {
            let mut admins = HashSet::default();
            let mut todo: Vec<DnKey> = ["Domain Admins", "Enterprise Admins", "Administrators"]
                .iter()
                .filter_map(|g| self.by_sam(g).map(|e| e.dn.key()))
                .collect();
            // members of members: the groups themselves end up in the set too, as memberOf
            // reaching an admin group made them admins before
            while let Some(k) = todo.pop() {
                let Some(g) = self.entries.get(&k) else { continue };
                for m in g.values("member") {
                    let Ok(d) = Dn::parse(&String::from_utf8_lossy(m)) else { continue };
                    let mk = d.key();
                    if admins.insert(mk.clone()) {
                        todo.push(mk);
                    }
                }
            }
            let domain_policy = self
                .entries
                .get(&self.base.key())
                .map(Policy::from_domain)
                .unwrap_or_else(|| Policy::from_domain(&Entry::new(self.base.clone())));
            let psc = self.base.child(Rdn::new("CN", "System")).child(Rdn::new("CN", "Password Settings Container")).key();
            let psos = self
                .order
                .range(psc.subtree_start()..)
                .take_while(|k| k.is_below(&psc))
                .filter(|k| self.entries[*k].is_class("msDS-PasswordSettings"))
                .cloned()
                .collect();
            Derived { admins, domain_policy, psos }
        })
    }

    pub(crate) fn next_usn(&mut self) -> i64 {
        self.usn += 1;
        self.usn
    }

    pub(crate) fn new_guid(&mut self) -> [u8; 16] {
        let mut g = [0u8; 16];
        self.rng.fill_bytes(&mut g);
        // RFC 4122 version 4 layout, in AD's little-endian field order.
        g[7] = (g[7] & 0x0F) | 0x40;
        g[8] = (g[8] & 0x3F) | 0x80;
        g
    }

    pub(crate) fn new_rid(&mut self) -> u32 {
        let r = self.next_rid;
        self.next_rid += 1;
        r
    }

    pub(crate) fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Stamps whenChanged / uSNChanged as AD does on every originating write.
    fn touch(&mut self, e: &mut Entry) {
        let usn = self.next_usn();
        e.set_str("uSNChanged", usn.to_string());
        e.set_str("whenChanged", clock::generalized_time(self.clock.now()));
        self.originate(e);
    }

    /// Marks an entry's state as this DC's originating write (replication carries it on):
    /// the object's version, and each attribute's that differs from the stored object's.
    fn originate(&self, e: &mut Entry) {
        let stored = e.guid().and_then(|g| self.idx_guid.get(&g)).and_then(|k| self.entries.get(k)).cloned();
        self.originate_from(stored.as_ref(), e);
    }

    /// [`Directory::originate`] against the object as it was (a rename takes it out of the
    /// indexes before it writes it back).
    fn originate_from(&self, stored: Option<&Entry>, e: &mut Entry) {
        let v = crate::entry::Version { writes: e.version.writes + 1, at: self.clock.filetime(), dc: self.invocation };
        if let Some(old) = stored {
            let ids: BTreeSet<u16> = old.attr_ids().chain(e.attr_ids()).collect();
            for id in ids {
                let name = schema::attribute_by_id(id).name;
                // (what each DC keeps for itself has no originating write to compare)
                if KEPT_BY_EACH_DC.contains(&name) {
                    continue;
                }
                if old.values(name) != e.values(name) {
                    e.set_meta(id, v);
                }
            }
            if old.secrets != e.secrets {
                e.set_meta(UNICODE_PWD.0, v);
            }
        }
        e.version = v;
    }

    // ----- name resolution -----

    /// Resolves a DN as a client sent it, including AD's `<GUID=...>` and `<SID=...>`
    /// forms. Errors are AD's: invalidDNSyntax, or noSuchObject with the best match.
    pub fn resolve(&self, dn: &str) -> AdResult<DnKey> {
        let t = dn.trim();
        if let Some(inner) = t.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
            let (kind, val) = inner.split_once('=').ok_or_else(|| AdError::invalid_dn(dn))?;
            let found = if kind.eq_ignore_ascii_case("GUID") {
                let g = parse_guid_text(val).ok_or_else(|| AdError::invalid_dn(dn))?;
                self.idx_guid.get(&g)
            } else if kind.eq_ignore_ascii_case("SID") {
                let s = Sid::parse(val).ok_or_else(|| AdError::invalid_dn(dn))?;
                self.idx_sid.get(s.to_bytes().as_slice())
            } else {
                return Err(AdError::invalid_dn(dn));
            };
            return found.cloned().ok_or_else(|| AdError::no_such_object(""));
        }
        let parsed = Dn::parse(t).map_err(|_| AdError::invalid_dn(dn))?;
        let key = parsed.key();
        if self.entries.contains_key(&key) {
            return Ok(key);
        }
        Err(AdError::no_such_object(&self.best_match(&parsed)))
    }

    fn best_match(&self, dn: &Dn) -> String {
        let mut cur = dn.parent();
        while let Some(d) = cur {
            if let Some(e) = self.entries.get(&d.key()) {
                return e.dn.to_string();
            }
            cur = d.parent();
        }
        String::new()
    }

    fn entry(&self, key: &DnKey) -> &Entry {
        // Callers pass keys obtained from `resolve` under the same borrow.
        &self.entries[key]
    }

    // ----- access (Part 2 refines this into delegated rights) -----

    fn require_admin(&self, who: &Principal) -> AdResult<()> {
        match who {
            Principal::Anonymous => Err(AdError::must_bind()),
            Principal::User { admin: true, .. } => Ok(()),
            Principal::User { .. } => Err(AdError::no_write_access()),
        }
    }

    /// True when `who` holds `right` on the object at `target`: administrators always;
    /// others through a grant to them, to a group they belong to, or to Everyone. Grants to
    /// users and groups do not reach protected objects (adminCount=1): AdminSDHolder.
    pub fn has_right(&self, who: &Principal, right: Right, target: &DnKey) -> bool {
        let Principal::User { dn, admin, .. } = who else { return false };
        if *admin {
            return true;
        }
        let me = dn.key();
        let applies = |t: &Trustee| match t {
            Trustee::Everyone => true,
            Trustee::SelfPrincipal => &me == target,
            Trustee::Object(t) => t == &me || self.reaches(dn, "memberOf", t, &mut BTreeSet::new()),
        };
        // with inheritance disabled on the target only the entries on the target itself count
        let sealed = self.dacl_protected.contains(target);
        let reaches = |g: &Grant| g.covers(target) && (!sealed || &g.scope == target);
        if self.denies.iter().any(|g| g.right == right && reaches(g) && applies(&g.trustee)) {
            return false;
        }
        // the denies kept as written that the model honours all the same (Full Control or
        // All extended rights denied), on the target or inherited from above it
        let broad =
            self.other_aces.iter().filter(|(scope, _)| *scope == target || (!sealed && target.is_below(scope))).any(|(scope, aces)| {
                aces.iter()
                    .filter_map(|a| security::broad_deny(a, scope == target))
                    .any(|(rights, sid)| rights.contains(&right) && self.trustee_of_sid(sid).is_some_and(|t| applies(&t)))
            });
        if broad {
            return false;
        }
        // a protected account's DACL is AdminSDHolder's (SDProp writes it over whatever was
        // there, inheritance off): of the model's grants, only its Change Password for
        // Everyone and SELF reach one — not an Everyone grant of another right above it
        let protected = self.is_protected(target);
        let admin_sd_holder = |g: &Grant| g.right == Right::ChangePassword && !matches!(g.trustee, Trustee::Object(_));
        self.grants.iter().filter(|g| g.right == right && reaches(g) && (!protected || admin_sd_holder(g))).any(|g| match &g.trustee {
            Trustee::Everyone => true,
            Trustee::SelfPrincipal => &me == target,
            Trustee::Object(t) => t == &me || self.reaches(dn, "memberOf", t, &mut BTreeSet::new()),
        })
    }

    /// Protected accounts carry adminCount=1 (see [`Directory::stamp_protected`]).
    pub fn is_protected(&self, key: &DnKey) -> bool {
        self.entries.get(key).is_some_and(|e| e.int("adminCount").unwrap_or(0) != 0)
    }

    /// SDProp: a member (nested) of a protected group gets adminCount=1 — at once here,
    /// within the hour on Windows — and keeps it after leaving the group (AD's "orphaned
    /// adminCount": delegated rights stay blocked until an administrator clears it).
    fn stamp_protected(&mut self, group: &DnKey) {
        if !self.is_protected(group) {
            return;
        }
        let mut todo: Vec<DnKey> = self.entries[group]
            .values("member")
            .iter()
            .filter_map(|v| Dn::parse(&String::from_utf8_lossy(v)).ok())
            .map(|d| d.key())
            .collect();
        while let Some(k) = todo.pop() {
            if self.is_protected(&k) {
                continue;
            }
            let Some(mut e) = self.entries.get(&k).cloned() else { continue };
            e.set_str("adminCount", "1");
            self.touch(&mut e);
            todo.extend(e.values("member").iter().filter_map(|v| Dn::parse(&String::from_utf8_lossy(v)).ok()).map(|d| d.key()));
            self.store_at(k, e);
        }
    }

    /// Grants `right` over the subtree at `scope` to `trustee` (a user or group DN; `None`
    /// for Everyone). Granting what is already granted changes nothing.
    pub fn grant(&mut self, trustee: Option<&str>, right: Right, scope: &str) -> AdResult<()> {
        let g = self.make_grant(trustee, right, scope)?;
        if !self.grants.contains(&g) {
            self.grants.push(g);
        }
        Ok(())
    }

    /// Takes a grant away; false when there was no such grant.
    pub fn revoke(&mut self, trustee: Option<&str>, right: Right, scope: &str) -> AdResult<bool> {
        let g = self.make_grant(trustee, right, scope)?;
        let before = self.grants.len();
        self.grants.retain(|x| x != &g);
        self.forget_written(true, &g);
        Ok(self.grants.len() != before)
    }

    /// Denies `right` over the subtree at `scope` to `trustee` (`None`: Everyone). A deny
    /// wins over every allow that would cover the same target.
    pub fn deny(&mut self, trustee: Option<&str>, right: Right, scope: &str) -> AdResult<()> {
        let g = self.make_grant(trustee, right, scope)?;
        if !self.denies.contains(&g) {
            self.denies.push(g);
        }
        Ok(())
    }

    /// Takes a deny away; false when there was none.
    pub fn remove_deny(&mut self, trustee: Option<&str>, right: Right, scope: &str) -> AdResult<bool> {
        let g = self.make_grant(trustee, right, scope)?;
        let before = self.denies.len();
        self.denies.retain(|x| x != &g);
        self.forget_written(false, &g);
        Ok(self.denies.len() != before)
    }

    fn forget_written(&mut self, allow: bool, g: &Grant) {
        if let Some(v) = self.written_aces.get_mut(&g.scope) {
            v.retain(|(a, w, _)| !(*a == allow && w == g));
        }
    }

    // ----- nTSecurityDescriptor: the access model as ACEs -----

    /// The object's security descriptor as AD returns it: owner and group Domain Admins, and
    /// a DACL of the denies and grants made on it (explicit, denies first, as canonical
    /// order puts them), the ACEs a client wrote that the model does not read, then those
    /// inherited from the objects above it. `parts`: the SD-flags control's (0: all but
    /// the SACL). Default ACEs of AD's schema (defaultSecurityDescriptor) are not shown.
    pub fn security_descriptor(&self, key: &DnKey, parts: u32) -> Vec<u8> {
        let parts = if parts == 0 { security::OWNER | security::GROUP | security::DACL } else { parts };
        let admins = self.domain_sid.child(512).to_bytes();
        let dacl = self.dacl_of(key, None);
        let sd = security::SecurityDescriptor {
            owner: (parts & security::OWNER != 0).then(|| admins.clone()),
            group: (parts & security::GROUP != 0).then_some(admins),
            dacl: (parts & security::DACL != 0).then_some(dacl),
            dacl_control: if self.dacl_protected.contains(key) { security::SE_DACL_PROTECTED } else { 0 },
        };
        sd.to_bytes()
    }

    /// The object's DACL: its explicit entries (those of `written` instead, for a write not
    /// yet applied), then the ACEs a client wrote that the model keeps, then those inherited.
    fn dacl_of(&self, key: &DnKey, written: Option<&NewDacl>) -> Vec<security::Ace> {
        let leaf = self.entries.get(key).is_some_and(|e| e.is_class("user"));
        let (denies, grants, other) = match written {
            Some(w) => (w.denies.iter().collect::<Vec<_>>(), w.grants.iter().collect::<Vec<_>>(), Some(&w.other)),
            None => (
                self.denies.iter().filter(|g| &g.scope == key).collect(),
                self.grants.iter().filter(|g| &g.scope == key).collect(),
                self.other_aces.get(key),
            ),
        };
        let forms = match written {
            Some(w) => w.forms.as_slice(),
            None => self.written_aces.get(key).map(Vec::as_slice).unwrap_or_default(),
        };
        let mut dacl = vec![];
        for (allow, list) in [(false, denies), (true, grants)] {
            for g in list {
                let as_written = forms.iter().filter(|(a, w, _)| *a == allow && w == g).map(|(_, _, ace)| ace.clone());
                let mut aces: Vec<security::Ace> = as_written.collect();
                if aces.is_empty()
                    && let Some(sid) = self.trustee_sid(&g.trustee)
                {
                    aces.push(security::ace_for(allow, g.right, sid, leaf, false));
                }
                dacl.extend(aces);
            }
        }
        dacl.extend(other.into_iter().flatten().cloned());
        let sealed = match written {
            Some(w) => w.protected,
            None => self.dacl_protected.contains(key),
        };
        for (allow, list) in [(false, &self.denies), (true, &self.grants)].into_iter().filter(|_| !sealed) {
            // a right on the domain object is not inherited by what is below it
            for g in list.iter().filter(|g| key.is_below(&g.scope) && !g.right.on_the_domain()) {
                if let Some(sid) = self.trustee_sid(&g.trustee) {
                    dacl.push(security::ace_for(allow, g.right, sid, false, true));
                }
            }
        }
        dacl
    }

    fn trustee_sid(&self, t: &Trustee) -> Option<Vec<u8>> {
        match t {
            Trustee::Everyone => Some(Sid::parse("S-1-1-0")?.to_bytes()),
            Trustee::SelfPrincipal => Some(Sid::parse("S-1-5-10")?.to_bytes()),
            Trustee::Object(k) => self.entries.get(k)?.values("objectSid").first().map(|v| v.to_vec()),
        }
    }

    fn trustee_of_sid(&self, sid: &[u8]) -> Option<Trustee> {
        match Sid::from_bytes(sid)?.to_string().as_str() {
            "S-1-1-0" => Some(Trustee::Everyone),
            "S-1-5-10" => Some(Trustee::SelfPrincipal),
            _ => self.idx_sid.get(sid).cloned().map(Trustee::Object),
        }
    }

    /// A written descriptor's DACL read into the model, not yet applied: the explicit
    /// grants and denies it makes on `key`, and the ACEs the model keeps as they are.
    /// None when the write does not touch the DACL (the SD-flags control names other parts,
    /// or the descriptor carries none). Inherited ACEs are the DC's to compute: ignored.
    fn read_dacl(&self, key: &DnKey, bytes: &[u8], parts: u32) -> AdResult<Option<NewDacl>> {
        let sd = security::SecurityDescriptor::parse(bytes).map_err(|_| AdError::constraint("nTSecurityDescriptor"))?;
        let Some(aces) = sd.dacl.filter(|_| parts == 0 || parts & security::DACL != 0) else { return Ok(None) };
        let mut new = NewDacl { protected: sd.dacl_control & security::SE_DACL_PROTECTED != 0, ..NewDacl::default() };
        let leaf = self.entries.get(key).is_some_and(|e| e.is_class("user"));
        for ace in aces.into_iter().filter(|a| a.flags() & security::INHERITED == 0) {
            let modelled = security::model_on(&ace, leaf).and_then(|(allow, right, sid)| Some((allow, right, self.trustee_of_sid(sid)?)));
            match modelled {
                Some((allow, right, trustee)) => {
                    let g = Grant { trustee, right, scope: key.clone() };
                    let form = (allow, g.clone(), ace.clone());
                    if !new.forms.contains(&form) {
                        new.forms.push(form);
                    }
                    let list = if allow { &mut new.grants } else { &mut new.denies };
                    if !list.contains(&g) {
                        list.push(g);
                    }
                }
                None => new.other.push(ace),
            }
        }
        Ok(Some(new))
    }

    /// Replaces the explicit entries on `key` with a DACL [`Directory::read_dacl`] read.
    fn write_dacl(&mut self, key: &DnKey, new: NewDacl) {
        self.grants.retain(|g| &g.scope != key);
        self.denies.retain(|g| &g.scope != key);
        self.grants.extend(new.grants);
        self.denies.extend(new.denies);
        if new.forms.is_empty() {
            self.written_aces.remove(key);
        } else {
            self.written_aces.insert(key.clone(), new.forms);
        }
        if new.other.is_empty() {
            self.other_aces.remove(key);
        } else {
            self.other_aces.insert(key.clone(), new.other);
        }
        if new.protected {
            self.dacl_protected.insert(key.clone());
        } else {
            self.dacl_protected.remove(key);
        }
    }

    /// ADUC's Advanced Security Settings › "Disable inheritance" (removing the inherited
    /// entries) or "Enable inheritance" on an object.
    pub fn set_inheritance(&mut self, dn: &str, inherit: bool) -> AdResult<()> {
        let key = self.resolve(dn)?;
        if inherit {
            self.dacl_protected.remove(&key);
        } else {
            self.dacl_protected.insert(key);
        }
        Ok(())
    }

    /// Whether the object inherits the entries above it.
    pub fn inherits(&self, dn: &str) -> AdResult<bool> {
        Ok(!self.dacl_protected.contains(&self.resolve(dn)?))
    }

    /// An object's access entries after it moved (`Some(new key)`) or was deleted (`None`):
    /// the grants and denies on it and those naming it as trustee, and its kept ACEs.
    fn rekey_access(&mut self, from: &DnKey, to: Option<&DnKey>) {
        for list in [&mut self.grants, &mut self.denies] {
            list.retain(|g| to.is_some() || (&g.scope != from && g.trustee != Trustee::Object(from.clone())));
            if let Some(to) = to {
                for g in list.iter_mut() {
                    if &g.scope == from {
                        g.scope = to.clone();
                    }
                    if g.trustee == Trustee::Object(from.clone()) {
                        g.trustee = Trustee::Object(to.clone());
                    }
                }
            }
        }
        if let Some(aces) = self.other_aces.remove(from)
            && let Some(to) = to
        {
            self.other_aces.insert(to.clone(), aces);
        }
        if self.dacl_protected.remove(from)
            && let Some(to) = to
        {
            self.dacl_protected.insert(to.clone());
        }
        // an entry as written names its grant by the old DNs: dropped, so the grants read
        // back in the wizard's form (what they grant is unchanged)
        self.written_aces.remove(from);
        for v in self.written_aces.values_mut() {
            v.retain(|(_, g, _)| g.trustee != Trustee::Object(from.clone()));
        }
    }

    /// Whether exactly this grant is in place (not whether the right is held some other way).
    pub fn is_granted(&self, trustee: Option<&str>, right: Right, scope: &str) -> AdResult<bool> {
        let g = self.make_grant(trustee, right, scope)?;
        Ok(self.grants.contains(&g))
    }

    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    fn make_grant(&self, trustee: Option<&str>, right: Right, scope: &str) -> AdResult<Grant> {
        let trustee = match trustee {
            None => Trustee::Everyone,
            Some(t) if t.eq_ignore_ascii_case("SELF") => Trustee::SelfPrincipal,
            Some(t) => {
                let k = self.resolve(t)?;
                let e = self.entry(&k);
                if !(e.is_class("user") || e.is_class("group")) {
                    return Err(AdError::no_such_object(&e.dn.to_string()));
                }
                Trustee::Object(k)
            }
        };
        Ok(Grant { trustee, right, scope: self.resolve(scope)? })
    }

    fn need(&self, who: &Principal, right: Right, target: &DnKey) -> AdResult<()> {
        if self.has_right(who, right, target) { Ok(()) } else { Err(AdError::no_write_access()) }
    }

    /// The password policy in force for an object: the fine-grained policy (PSO) that
    /// applies to it — linked to the user directly, else through a group, lowest
    /// msDS-PasswordSettingsPrecedence winning, ties to the lower objectGUID — or the domain's.
    pub fn effective_policy(&self, e: &Entry) -> Policy {
        let derived = self.derived();
        if !e.is_class("user") || derived.psos.is_empty() {
            return derived.domain_policy.clone();
        }
        let me = e.dn.key();
        let mut best: Option<(bool, i64, [u8; 16], &Entry)> = None; // (via group, precedence, guid)
        for p in derived.psos.iter().filter_map(|k| self.entries.get(k)) {
            let targets = p.values("msDS-PSOAppliesTo").iter().filter_map(|v| Dn::parse(&String::from_utf8_lossy(v)).ok());
            let mut via = None;
            for t in targets {
                let tk = t.key();
                if tk == me {
                    via = Some(false);
                    break;
                }
                if self.reaches(&e.dn, "memberOf", &tk, &mut BTreeSet::new()) {
                    via = Some(true);
                }
            }
            let Some(via_group) = via else { continue };
            let cand = (via_group, p.int("msDS-PasswordSettingsPrecedence").unwrap_or(i64::MAX), p.guid().unwrap_or_default(), p);
            if best.as_ref().is_none_or(|b| (cand.0, cand.1, cand.2) < (b.0, b.1, b.2)) {
                best = Some(cand);
            }
        }
        best.map(|(_, _, _, p)| Policy::from_pso(p)).unwrap_or_else(|| derived.domain_policy.clone())
    }

    /// True for the built-in Administrator and members (nested) of the admin groups.
    pub fn is_admin(&self, key: &DnKey) -> bool {
        let Some(e) = self.entries.get(key) else { return false };
        const OBJECT_SID: schema::AttrId = schema::AttrId::of("objectSid");
        if e.values(OBJECT_SID).first().and_then(|s| Sid::from_bytes(s)).is_some_and(|s| s.rid() == Some(500)) {
            return true;
        }
        self.derived().admins.contains(key)
    }

    /// True when `target` is reachable from `from` by following `attr` transitively.
    fn reaches(&self, from: &Dn, attr: &str, target: &DnKey, seen: &mut BTreeSet<DnKey>) -> bool {
        let Some(e) = self.entries.get(&from.key()) else { return false };
        for v in e.values(attr) {
            let Ok(d) = Dn::parse(&String::from_utf8_lossy(v)) else { continue };
            let k = d.key();
            if &k == target {
                return true;
            }
            if seen.insert(k) && self.reaches(&d, attr, target, seen) {
                return true;
            }
        }
        false
    }

    // ----- add -----

    pub fn add(&mut self, who: &Principal, dn: &str, attrs: Vec<(String, Vec<Vec<u8>>)>, ctx: OpContext) -> AdResult<()> {
        self.require_admin(who)?;
        let parsed = Dn::parse(dn).map_err(|_| AdError::invalid_dn(dn))?;
        let Some(parent) = parsed.parent() else { return Err(AdError::unwilling(0x2035, "")) };
        let key = parsed.key();
        if self.entries.contains_key(&key) {
            return Err(AdError::already_exists());
        }
        if !self.entries.contains_key(&parent.key()) {
            return Err(AdError::no_such_object(&self.best_match(&parsed)));
        }
        let parent_dn = self.entry(&parent.key()).dn.clone();
        let rdn = parsed.rdn().cloned().unwrap_or_else(|| Rdn::new("CN", ""));
        let dn = parent_dn.child(rdn);

        // Gather and check the client's attributes.
        let mut e = Entry::new(dn.clone());
        let mut password: Option<String> = None;
        for (name, values) in attrs {
            let def = schema::attribute(&name).ok_or_else(|| AdError::undefined_attribute(&name))?;
            if values.is_empty() {
                return Err(AdError::constraint(def.name));
            }
            if def.name == "unicodePwd" {
                if !ctx.encrypted {
                    return Err(unicode_pwd_needs_tls());
                }
                if values.len() != 1 {
                    return Err(AdError::constraint(def.name));
                }
                password = Some(decode_unicode_pwd(&values[0])?);
                continue;
            }
            if def.secret() {
                return Err(AdError::no_write_access());
            }
            let writable_on_add = ["instanceType", "objectCategory"];
            if def.system() && !writable_on_add.contains(&def.name) {
                // AD allows a client to state the RDN-derived values, if they agree.
                if !(def.name == "name" && values.len() == 1 && values_equal("name", &values[0], dn.rdns[0].value.as_bytes())) {
                    return Err(AdError::system_only(def.name));
                }
                continue;
            }
            check_syntax(def, &values)?;
            if e.has(def.name) {
                let mut all = e.values(def.name).to_vec();
                all.extend(values.into_iter().map(Value::from));
                e.set(def.name, all);
            } else {
                e.set(def.name, values);
            }
            if def.single() && e.values(def.name).len() > 1 {
                return Err(AdError::constraint(def.name));
            }
        }

        // objectClass: the structural class and its chain, as AD stores it.
        let mut structural = None;
        for v in e.values("objectClass") {
            let name = String::from_utf8_lossy(v);
            if let Some(c) = schema::class(&name) {
                if structural.is_none_or(|s: &schema::ClassDef| c.chain.len() > s.chain.len()) {
                    structural = Some(c);
                }
            } else if !schema::is_superclass_name(&name) {
                return Err(AdError::object_class(&format!("unknown class {name}")));
            }
        }
        let class = structural.ok_or_else(|| AdError::object_class("no structural objectClass"))?;
        e.set("objectClass", class.chain.iter().map(|c| c.as_bytes()));

        // The RDN attribute must fit the class (CN for most, OU, DC).
        let want_rdn = match class.name {
            "organizationalUnit" => "OU",
            "domainDNS" => "DC",
            _ => "CN",
        };
        let rdn = &dn.rdns[0];
        if !rdn.attr.eq_ignore_ascii_case(want_rdn) {
            return Err(AdError::new(
                ResultCode::NamingViolation,
                "00002099: NameErr: DSID-0305109C, problem 2005 (NAMING_VIOLATION), data 0, best match of:\n\t'".to_string()
                    + &parent_dn.to_string()
                    + "'\n",
            ));
        }
        let rdn_attr = want_rdn.to_ascii_lowercase();
        match e.first_str(&rdn_attr) {
            Some(v) if !values_equal(&rdn_attr, v.as_bytes(), rdn.value.as_bytes()) => {
                return Err(AdError::new(
                    ResultCode::NotAllowedOnRdn,
                    "000020B1: UpdErr: DSID-030F1144, problem 6004 (CANT_ON_RDN), data 0\n",
                ));
            }
            _ => e.set_str(&rdn_attr, rdn.value.clone()),
        }

        // Uniqueness AD enforces: sAMAccountName per domain, UPN per forest.
        if let Some(sam) = e.first_str("sAMAccountName")
            && self.idx_sam.contains_key(&sam.to_lowercase())
        {
            return Err(AdError::already_exists());
        }
        if let Some(upn) = e.first_str("userPrincipalName")
            && self.idx_upn.contains_key(&upn.to_lowercase())
        {
            return Err(AdError::constraint("userPrincipalName"));
        }
        self.check_links_exist(&e)?;

        check_pso(&e)?;
        let is_user = class.chain.contains(&"user");
        if let (true, Some(pw)) = (is_user && class.name != "computer", &password) {
            // Creating a user with a password is a password set: length and complexity apply.
            let policy = self.effective_policy(&e);
            policy::check_new_password(&policy, &e, policy::Write::Reset { full_policy: false }, pw, self.clock.filetime())
                .map_err(|r| AdError::password_policy(&r))?;
        }
        if is_user {
            let uac =
                e.int("userAccountControl").unwrap_or(account::UF_NORMAL_ACCOUNT | account::UF_PASSWD_NOTREQD | account::UF_ACCOUNTDISABLE);
            // Windows refuses to create an enabled account that needs a password and has none.
            if password.is_none() && uac & account::UF_ACCOUNTDISABLE == 0 && uac & account::UF_PASSWD_NOTREQD == 0 {
                return Err(AdError::new(
                    ResultCode::UnwillingToPerform,
                    "0000052D: SvcErr: DSID-031A126C, problem 5003 (WILL_NOT_PERFORM), data 0\n",
                ));
            }
        }

        // Everything checked: fill in what the DC maintains, then store.
        let now = self.clock.now();
        self.complete_object(&mut e, class, now);
        if let (true, Some(pw)) = (is_user, password) {
            let history = self.effective_policy(&e).history_length;
            account::set_password(&mut e, &pw, clock::to_filetime(now), history);
        }
        let links: Vec<(&str, Vec<Value>)> = LINKS.iter().map(|(f, _)| (*f, e.values(f).to_vec())).collect();
        self.store(e);
        for (fwd, vals) in links {
            self.relink(fwd, &dn, &[], &vals);
        }
        Ok(())
    }

    /// Fills in what the DC maintains on a new object, keeping whatever is already there
    /// (an LDIF import may carry GUIDs, SIDs and stamps; an LDAP add never does).
    pub(crate) fn complete_object(&mut self, e: &mut Entry, class: &'static schema::ClassDef, now: clock::OffsetDateTime) {
        let rdn = e.dn.rdns[0].clone();
        e.set_str(&rdn.attr.to_ascii_lowercase(), rdn.value.clone());
        e.set_str("name", rdn.value);
        e.set_str("distinguishedName", e.dn.to_string());
        if !e.has("objectGUID") {
            let g = self.new_guid();
            e.set("objectGUID", vec![g.to_vec()]);
        }
        for a in ["whenCreated", "whenChanged"] {
            if !e.has(a) {
                e.set_str(a, clock::generalized_time(now));
            }
        }
        if !e.has("uSNCreated") {
            let usn = self.next_usn();
            e.set_str("uSNCreated", usn.to_string());
            e.set_str("uSNChanged", usn.to_string());
            self.originate(e);
        }
        if !e.has("instanceType") {
            e.set_str("instanceType", "4");
        }
        if !e.has("objectCategory") {
            e.set_str("objectCategory", format!("CN={},{}", class.category, self.schema_dn()));
        }
        let is_user = class.chain.contains(&"user");
        if is_user || class.name == "group" {
            if !e.has("objectSid") {
                let rid = self.new_rid();
                e.set("objectSid", vec![self.domain_sid.child(rid).to_bytes()]);
            }
            if !e.has("sAMAccountName") {
                // AD's generated form for a security principal created without one.
                let n = self.random_u64();
                e.set_str("sAMAccountName", format!("${:04X}-{:012X}", (n >> 48) as u16, n & 0xFFFF_FFFF_FFFF));
            }
        }
        if is_user {
            account::init_user(e, class.name == "computer");
        }
        if class.name == "group" {
            if !e.has("groupType") {
                e.set_str("groupType", account::GROUP_GLOBAL_SECURITY.to_string());
            }
            let gt = e.int("groupType").unwrap_or(0);
            e.set_str("sAMAccountType", account::group_sam_account_type(gt).to_string());
        }
    }

    pub fn schema_dn(&self) -> String {
        format!("CN=Schema,CN=Configuration,{}", self.forest_root())
    }

    /// The forest root domain's DN: where the Configuration and Schema NCs are named (this
    /// domain's own, unless it is a child domain).
    pub fn forest_root(&self) -> Dn {
        self.forest.as_ref().map_or_else(|| self.base.clone(), |f| Dn::from_dns_domain(&f.root_dns))
    }

    fn check_links_exist(&self, e: &Entry) -> AdResult<()> {
        for (fwd, _) in LINKS {
            for v in e.values(fwd) {
                let s = String::from_utf8_lossy(v);
                let d = Dn::parse(&s).map_err(|_| AdError::bad_syntax(fwd))?;
                if !self.entries.contains_key(&d.key()) {
                    return Err(AdError::no_such_object(&self.best_match(&d)));
                }
            }
        }
        Ok(())
    }

    /// Keeps back links true after a forward link on `dn` went from `old` to `new`.
    fn relink(&mut self, fwd: &str, dn: &Dn, old: &[Value], new: &[Value]) {
        let Some(back) = LINKS.iter().find(|(f, _)| *f == fwd).map(|(_, b)| *b) else { return };
        let target_keys = |vals: &[Value]| -> BTreeSet<DnKey> {
            vals.iter().filter_map(|v| Dn::parse(&String::from_utf8_lossy(v)).ok()).map(|d| d.key()).collect()
        };
        let (before, after) = (target_keys(old), target_keys(new));
        let me = dn.to_string().into_bytes();
        for k in before.difference(&after) {
            if let Some(t) = self.entry_mut(k) {
                let vals: Vec<Value> = t.values(back).iter().filter(|v| !values_equal(back, v, &me)).cloned().collect();
                t.set(back, vals);
            }
        }
        for k in after.difference(&before) {
            if let Some(t) = self.entry_mut(k) {
                let mut vals = t.values(back).to_vec();
                vals.push(me.as_slice().into());
                t.set(back, vals);
            }
        }
    }

    // ----- modify -----

    pub fn modify(&mut self, who: &Principal, dn: &str, mods: Vec<Modification>, ctx: OpContext) -> AdResult<()> {
        if matches!(who, Principal::Anonymous) {
            return Err(AdError::must_bind());
        }
        let key = self.resolve(dn)?;
        let old = self.entry(&key).clone();
        let mut e = old.clone();
        let now = self.clock.filetime();

        // nTSecurityDescriptor: read into the access model, checked now, applied with the rest
        let (sd_mods, mods): (Vec<_>, Vec<_>) = mods.into_iter().partition(|m| m.attr.eq_ignore_ascii_case("nTSecurityDescriptor"));
        let new_dacl = match sd_mods.as_slice() {
            [] => None,
            [Modification { op: ModOp::Replace, values, .. }] if values.len() == 1 => {
                self.require_admin(who)?;
                let new = self.read_dacl(&key, &values[0], ctx.sd_parts)?;
                // an ACL's size is a 16-bit count (MS-DTYP 2.4.5): a DACL that would not fit,
                // with what the object inherits, cannot be stored or returned
                if new.as_ref().is_some_and(|n| !security::acl_fits(&self.dacl_of(&key, Some(n)))) {
                    return Err(AdError::constraint("nTSecurityDescriptor"));
                }
                new
            }
            _ => return Err(AdError::constraint("nTSecurityDescriptor")),
        };

        // unicodePwd: delete old + add new is a change, replace is a reset.
        let (pw_mods, mods): (Vec<_>, Vec<_>) = mods.into_iter().partition(|m| m.attr.eq_ignore_ascii_case("unicodePwd"));
        if !pw_mods.is_empty()
            && let Err((error, bookkeeping)) = self.password_modify(who, &key, &mut e, &pw_mods, ctx, now)
        {
            // A wrong old password is a bad password: AD records it even though the
            // change itself is refused.
            if !bookkeeping.is_empty() {
                self.apply_bookkeeping(&key, bookkeeping);
            }
            return Err(error);
        }
        for m in &mods {
            let def = schema::attribute(&m.attr).ok_or_else(|| AdError::undefined_attribute(&m.attr))?;
            if def.secret() {
                return Err(AdError::no_write_access());
            }
            if def.system() {
                return Err(AdError::system_only(def.name));
            }
            // Who may write what: the password-related attributes by their own rights,
            // everything else by administrators.
            // (pwdLastSet -1 too needs Write pwdLastSet: Unexpire Password is a right on the
            // domain object, deciding what a password write leaves in pwdLastSet)
            match def.name {
                "lockoutTime" => self.need(who, Right::WriteLockoutTime, &key)?,
                "pwdLastSet" => self.need(who, Right::WritePwdLastSet, &key)?,
                "mS-DS-ConsistencyGuid" => self.need(who, Right::WriteConsistencyGuid, &key)?,
                _ => self.require_admin(who)?,
            }
            let rdn_attr = e.dn.rdns[0].attr.to_ascii_lowercase();
            if def.name.eq_ignore_ascii_case(&rdn_attr) || def.name == "objectClass" {
                return Err(AdError::new(
                    ResultCode::NotAllowedOnRdn,
                    "000020B1: UpdErr: DSID-030F1144, problem 6004 (CANT_ON_RDN), data 0\n",
                ));
            }
            check_syntax(def, &m.values)?;
            let values = account_values(def.name, m, now)?;
            match m.op {
                // pwdLastSet: a delete before an add of -1 (Samba accepts the pair) removes nothing.
                ModOp::Delete if def.name == "pwdLastSet" => continue,
                ModOp::Add => {
                    if values.is_empty() {
                        return Err(AdError::constraint(def.name));
                    }
                    let mut vals = e.values(def.name).to_vec();
                    for v in &values {
                        if vals.iter().any(|x| values_equal(def.name, x, v)) {
                            if ctx.permissive {
                                continue;
                            }
                            return Err(AdError::value_exists(def.name));
                        }
                        vals.push(v.as_slice().into());
                    }
                    if def.single() && vals.len() > 1 {
                        if def.name != "pwdLastSet" {
                            return Err(AdError::constraint(def.name));
                        }
                        vals.remove(0);
                    }
                    e.set(def.name, vals);
                }
                ModOp::Delete => {
                    if !e.has(def.name) {
                        if ctx.permissive {
                            continue;
                        }
                        return Err(AdError::no_such_attribute(def.name));
                    }
                    if values.is_empty() {
                        e.remove(def.name);
                    } else {
                        let mut vals = e.values(def.name).to_vec();
                        for v in &values {
                            match vals.iter().position(|x| values_equal(def.name, x, v)) {
                                Some(pos) => {
                                    vals.remove(pos);
                                }
                                None if ctx.permissive => {}
                                None => return Err(AdError::no_such_attribute(def.name)),
                            }
                        }
                        e.set(def.name, vals);
                    }
                }
                ModOp::Replace => {
                    if def.single() && values.len() > 1 {
                        return Err(AdError::constraint(def.name));
                    }
                    e.set(def.name, values.clone());
                }
                ModOp::Increment => {
                    let by = values.first().and_then(|v| crate::entry::parse_int(v)).ok_or_else(|| AdError::bad_syntax(def.name))?;
                    let cur = e.int(def.name).ok_or_else(|| AdError::no_such_attribute(def.name))?;
                    e.set_str(def.name, (cur + by).to_string());
                }
            }
            // Unlocking (lockoutTime = 0) also clears the bad password count.
            if def.name == "lockoutTime" && e.int("lockoutTime") == Some(0) {
                e.set_str("badPwdCount", "0");
            }
        }
        // uniqueness of the indexed names after the change
        for (attr, idx) in [("sAMAccountName", &self.idx_sam), ("userPrincipalName", &self.idx_upn)] {
            if let Some(v) = e.first_str(attr)
                && idx.get(&v.to_lowercase()).is_some_and(|k| k != &key)
            {
                return Err(if attr == "sAMAccountName" { AdError::already_exists() } else { AdError::constraint(attr) });
            }
        }
        self.check_links_exist(&e)?;
        account::check_user_state(&old, &e)?;
        check_pso(&e)?;

        // Everything checked: apply.
        type LinkChange = (&'static str, Vec<Value>, Vec<Value>);
        let links: Vec<LinkChange> = LINKS.iter().map(|(f, _)| (*f, old.values(f).to_vec(), e.values(f).to_vec())).collect();
        if account::replicated_change(&old, &e) || new_dacl.is_some() {
            self.touch(&mut e);
        }
        if let Some(dacl) = new_dacl {
            self.write_dacl(&key, dacl);
        }
        let dn = e.dn.clone();
        self.store(e);
        for (fwd, before, after) in links {
            self.relink(fwd, &dn, &before, &after);
        }
        self.stamp_protected(&key);
        Ok(())
    }

    /// A unicodePwd write: a change (delete the old value, add the new) or a reset
    /// (replace). On refusal, the bookkeeping a wrong old password leaves behind.
    fn password_modify(
        &self,
        who: &Principal,
        key: &DnKey,
        e: &mut Entry,
        mods: &[Modification],
        ctx: OpContext,
        now: i64,
    ) -> Result<(), (AdError, Bookkeeping)> {
        let plain = |err: AdError| (err, Bookkeeping::default());
        if !ctx.encrypted {
            return Err(plain(unicode_pwd_needs_tls()));
        }
        if !e.is_class("user") {
            return Err(plain(AdError::no_write_access()));
        }
        let policy = self.effective_policy(e);
        match mods {
            [Modification { op: ModOp::Replace, values, .. }] => {
                if !self.has_right(who, Right::ResetPassword, key) {
                    return Err(plain(AdError::no_control_access()));
                }
                let [v] = values.as_slice() else { return Err(plain(AdError::constraint("unicodePwd"))) };
                let new = decode_unicode_pwd(v).map_err(plain)?;
                policy::check_new_password(&policy, e, policy::Write::Reset { full_policy: ctx.policy_hints }, &new, now)
                    .map_err(|r| plain(AdError::password_policy(&r)))?;
                account::set_password(e, &new, self.pwd_last_set_for(who, now), policy.history_length);
                Ok(())
            }
            [Modification { op: ModOp::Delete, values: old, .. }, Modification { op: ModOp::Add, values: new, .. }] => {
                if !self.has_right(who, Right::ChangePassword, key) {
                    return Err(plain(AdError::change_denied()));
                }
                let ([old], [new]) = (old.as_slice(), new.as_slice()) else {
                    return Err(plain(AdError::new(
                        ResultCode::ConstraintViolation,
                        "0000202F: 'unicodePwd' attribute must have exactly one value on add operations!",
                    )));
                };
                if account::is_locked(e, &policy, now) {
                    return Err(plain(AdError::password_attr(0x775, None)));
                }
                let old = decode_unicode_pwd(old).map_err(plain)?;
                let new = decode_unicode_pwd(new).map_err(plain)?;
                if e.secrets.nt_hash != Some(nt_hash(&old)) {
                    let mut w = Bookkeeping::default();
                    account::bad_password(e, &policy, now, &mut w);
                    return Err((AdError::password_attr(0x56, None), w));
                }
                policy::check_new_password(&policy, e, policy::Write::Change, &new, now)
                    .map_err(|r| plain(AdError::password_policy(&r)))?;
                account::set_password(e, &new, self.pwd_last_set_for(who, now), policy.history_length);
                Ok(())
            }
            [Modification { op: ModOp::Add, .. }] => Err(plain(AdError::no_write_access())),
            _ => Err(plain(AdError::unwilling(
                0x2035,
                " (a password is changed by deleting the old value and adding the new, or reset by replacing it)",
            ))),
        }
    }

    /// What a password written by `who` leaves in pwdLastSet (MS-SAMR 3.1.1.8.7): now when
    /// the writer holds Unexpire Password on the domain object (Authenticated Users do by
    /// default), else 0 — the new password is expired at once. Samba always writes now.
    fn pwd_last_set_for(&self, who: &Principal, now: i64) -> i64 {
        let domain = self.base_dn().key();
        if self.has_right(who, Right::UnexpirePassword, &domain) { now } else { 0 }
    }

    /// Writes account bookkeeping (bind results, bad passwords) on an object, stamping
    /// uSNChanged only when something replicated changed.
    fn apply_bookkeeping(&mut self, key: &DnKey, w: Bookkeeping) {
        let Some(old) = self.entries.get(key).cloned() else { return };
        let mut e = old.clone();
        for (a, v) in w.0 {
            e.set_str(a, v);
        }
        if account::replicated_change(&old, &e) {
            self.touch(&mut e);
        }
        self.place(key.clone(), e);
    }

    // ----- delete -----

    pub fn delete(&mut self, who: &Principal, dn: &str) -> AdResult<()> {
        self.require_admin(who)?;
        let key = self.resolve(dn)?;
        if key == self.base.key() {
            return Err(AdError::unwilling(0x2035, ""));
        }
        let has_children = self.order.range(key.subtree_start()..).next().is_some_and(|k| k.is_below(&key));
        if has_children {
            return Err(AdError::non_leaf());
        }
        if self.entry(&key).get("isCriticalSystemObject").is_some_and(|a| a.values.first().is_some_and(|v| v.eq_ignore_ascii_case(b"TRUE")))
        {
            return Err(AdError::unwilling(0x2035, ""));
        }
        self.remove_object(&key);
        Ok(())
    }

    /// Takes an object away as a delete does (an originating one, or one replicated in): its
    /// tombstone, its ACL, the links to and from it.
    fn remove_object(&mut self, key: &DnKey) {
        let gone = self.unstore(key).expect("present");
        self.tombstone(&gone);
        // its ACL goes with it, and entries naming it match no one (a new object at the same
        // DN is another principal, with another SID)
        self.rekey_access(key, None);
        // AD drops links to a deleted object everywhere, forward and back.
        for (fwd, back) in LINKS {
            self.relink(fwd, &gone.dn, gone.values(fwd), &[]);
            let holders: Vec<Value> = gone.values(back).to_vec();
            for h in holders {
                let Ok(hd) = Dn::parse(&String::from_utf8_lossy(&h)) else { continue };
                if let Some(t) = self.entry_mut(&hd.key()) {
                    let me = gone.dn.to_string().into_bytes();
                    let vals: Vec<Value> = t.values(fwd).iter().filter(|v| !values_equal(fwd, v, &me)).cloned().collect();
                    t.set(fwd, vals);
                }
            }
        }
        self.next_usn();
    }

    /// What a delete leaves for replication (MS-ADTS 3.1.1.5.5.1.1): the object renamed to
    /// `CN=<name>\0ADEL:<guid>` under `CN=Deleted Objects`, with objectGUID, objectSid,
    /// sAMAccountName, objectClass, lastKnownParent, isDeleted TRUE and a new uSNChanged.
    fn tombstone(&mut self, gone: &Entry) {
        let Some(guid) = gone.guid() else { return };
        let name = gone.first_str("name").or_else(|| gone.first_str("cn")).unwrap_or("deleted").to_string();
        // AD's mangled name: a line feed no client may write, then DEL: and the GUID
        let Ok(mut dn) = Dn::parse(&self.deleted_objects_dn()) else { return };
        dn.rdns.insert(0, crate::dn::Rdn::new("CN", &format!("{name}\nDEL:{}", guid_text(&guid))));
        let mut t = Entry::new(dn);
        for a in ["objectGUID", "objectSid", "sAMAccountName", "objectClass", "mS-DS-ConsistencyGuid"] {
            let v = gone.values(a).to_vec();
            if !v.is_empty() {
                t.set(a, v);
            }
        }
        t.set_str("isDeleted", "TRUE");
        t.set_str("lastKnownParent", gone.dn.parent().map(|p| p.to_string()).unwrap_or_default());
        // the delete is the object's next originating write (a replicated one is restamped)
        t.version = gone.version;
        self.originate(&mut t);
        let usn = self.next_usn();
        t.set_str("uSNChanged", usn.to_string());
        t.set_str("whenChanged", clock::generalized_time(self.clock.now()));
        self.tombstones.push(t);
    }

    pub fn deleted_objects_dn(&self) -> String {
        format!("CN=Deleted Objects,{}", self.base)
    }

    /// Tombstones matching `filter`, for a principal that may see them (administrators and
    /// holders of Replicating Directory Changes), with the show-deleted control.
    pub fn deleted_matching(&self, who: &Principal, filter: &crate::filter::Filter, sel: &Selection) -> AdResult<Vec<Rendered>> {
        if !(who.is_admin() || self.has_right(who, Right::ReplicatingDirectoryChanges, &self.base.key())) {
            return Err(AdError::no_control_access());
        }
        Ok(self
            .tombstones
            .iter()
            .filter(|t| filter.matches(&Candidate { dir: self, entry: t }))
            .map(|t| {
                let attrs = t
                    .attrs()
                    .filter(|a| sel.all_user || sel.named.iter().any(|n| n.eq_ignore_ascii_case(a.name())))
                    .map(|a| (a.name().to_string(), if sel.types_only { vec![] } else { a.values.iter().map(|v| v.to_vec()).collect() }))
                    .collect();
                (t.dn.to_string(), attrs)
            })
            .collect())
    }

    /// May `who` read secrets (NT hashes) through the lab's get-changes control:
    /// administrators, and holders of both replication rights on the domain root.
    pub fn may_replicate_secrets(&self, who: &Principal) -> bool {
        let root = self.base.key();
        who.is_admin() || Right::HASH_SYNC.iter().all(|r| self.has_right(who, *r, &root))
    }

    // ----- modifyDN -----

    pub fn rename(&mut self, who: &Principal, dn: &str, new_rdn: &str, delete_old: bool, new_superior: Option<&str>) -> AdResult<()> {
        self.require_admin(who)?;
        let key = self.resolve(dn)?;
        let old_dn = self.entry(&key).dn.clone();
        let rdn = Dn::parse(new_rdn).ok().filter(|d| d.rdns.len() == 1).ok_or_else(|| AdError::invalid_dn(new_rdn))?.rdns[0].clone();
        if !rdn.attr.eq_ignore_ascii_case(&old_dn.rdns[0].attr) {
            return Err(AdError::new(
                ResultCode::NamingViolation,
                "00002099: NameErr: DSID-0305109C, problem 2005 (NAMING_VIOLATION), data 0\n",
            ));
        }
        let parent = match new_superior {
            Some(s) => {
                let pk = self.resolve(s)?;
                self.entry(&pk).dn.clone()
            }
            None => old_dn.parent().unwrap_or_default(),
        };
        let new_dn = parent.child(rdn.clone());
        if new_dn.is_within(&old_dn) {
            return Err(AdError::unwilling(0x2035, ""));
        }
        let new_key = new_dn.key();
        if new_key != key && self.entries.contains_key(&new_key) {
            return Err(AdError::already_exists());
        }
        let _ = delete_old; // AD always replaces the RDN value (single-valued naming attributes)

        // Move the object and everything below it.
        let moved: Vec<DnKey> =
            std::iter::once(key.clone()).chain(self.order.range(key.subtree_start()..).take_while(|k| k.is_below(&key)).cloned()).collect();
        let mut renamed = Vec::new();
        let mut rekeyed = Vec::new();
        for k in moved {
            let mut e = self.unstore(&k).expect("listed");
            let before = e.clone();
            let keep = e.dn.rdns.len() - old_dn.rdns.len();
            let mut rdns = e.dn.rdns[..keep].to_vec();
            rdns.extend(new_dn.rdns.iter().cloned());
            e.dn = Dn { rdns };
            e.set_str("distinguishedName", e.dn.to_string());
            if keep == 0 {
                let rdn_attr = rdn.attr.to_ascii_lowercase();
                e.set_str(&rdn_attr, rdn.value.clone());
                e.set_str("name", rdn.value.clone());
                let usn = self.next_usn();
                e.set_str("uSNChanged", usn.to_string());
                e.set_str("whenChanged", clock::generalized_time(self.clock.now()));
                self.originate_from(Some(&before), &mut e);
            }
            rekeyed.push((k, e.dn.key()));
            renamed.push(e);
        }
        for e in renamed {
            self.store(e);
        }
        // the security descriptors and the trustees they name move with the objects
        for (from, to) in rekeyed {
            self.rekey_access(&from, Some(&to));
        }
        // DN-valued attributes everywhere follow the move (AD links by GUID).
        let old_s = old_dn.clone();
        let rewrite = |v: &[u8]| -> Option<Vec<u8>> {
            let d = Dn::parse(&String::from_utf8_lossy(v)).ok()?;
            if !d.is_within(&old_s) {
                return None;
            }
            let keep = d.rdns.len() - old_s.rdns.len();
            let mut rdns = d.rdns[..keep].to_vec();
            rdns.extend(new_dn.rdns.iter().cloned());
            Some(Dn { rdns }.to_string().into_bytes())
        };
        for e in self.entries.values_mut() {
            let dn_attrs: Vec<String> = e
                .attrs()
                .filter(|a| {
                    schema::attribute(a.name())
                        .is_some_and(|d| d.syntax == Syntax::Dn && d.name != "distinguishedName" && d.name != "objectCategory")
                })
                .map(|a| a.name().to_string())
                .collect();
            for a in dn_attrs {
                let vals = e.values(&a).to_vec();
                if vals.iter().any(|v| rewrite(v).is_some()) {
                    e.set(&a, vals.iter().map(|v| rewrite(v).unwrap_or_else(|| v.to_vec())));
                }
            }
        }
        Ok(())
    }

    // ----- compare -----

    pub fn compare(&self, who: &Principal, dn: &str, attr: &str, value: &[u8]) -> AdResult<bool> {
        if matches!(who, Principal::Anonymous) {
            return Err(AdError::must_bind());
        }
        let key = self.resolve(dn)?;
        let def = schema::attribute(attr).ok_or_else(|| AdError::undefined_attribute(attr))?;
        if def.secret() {
            return Err(AdError::no_write_access());
        }
        let e = self.entry(&key);
        let vals = self.values_of(e, def.name);
        if vals.is_empty() {
            return Err(AdError::no_such_attribute(def.name));
        }
        Ok(vals.iter().any(|v| values_equal(def.name, v, value)))
    }

    // ----- search -----

    /// The keys of the entries that match, in directory order.
    pub fn search(&self, who: &Principal, req: &SearchRequest) -> AdResult<Vec<DnKey>> {
        if matches!(who, Principal::Anonymous) {
            return Err(AdError::must_bind());
        }
        let base = if req.base.trim().is_empty() { self.base.key() } else { self.resolve(&req.base)? };
        let in_scope = |k: &DnKey| match req.scope {
            Scope::Base => k == &base,
            Scope::OneLevel => k.is_below(&base) && k.depth() == base.depth() + 1,
            Scope::Subtree => k == &base || k.is_below(&base),
        };
        let matches = |k: &DnKey| -> bool {
            in_scope(k) && self.entries.get(k).is_some_and(|e| req.filter.matches(&Candidate { dir: self, entry: e }))
        };
        if let Some(cands) = self.candidates_from_index(&req.filter) {
            let mut out: Vec<DnKey> = cands.into_iter().filter(|k| matches(k)).collect();
            out.sort();
            return Ok(out);
        }
        Ok(match req.scope {
            Scope::Base => matches(&base).then(|| base.clone()).into_iter().collect(),
            _ => {
                let range = self.order.range((Bound::Included(base.clone()), Bound::Unbounded));
                range.take_while(|k| *k == &base || k.is_below(&base)).filter(|k| matches(k)).cloned().collect()
            }
        })
    }

    /// Uses an index when the filter pins an indexed attribute by equality, or asks for
    /// `uSNChanged>=N` (a sync client's delta).
    fn candidates_from_index(&self, f: &Filter) -> Option<Vec<DnKey>> {
        if let Some(from) = f.usn_floor() {
            // the root's key sorts before every other
            return Some(self.idx_usn.range((from, Dn::root().key())..).map(|(_, k)| k.clone()).collect());
        }
        for (attr, val) in f.indexed_equalities() {
            let v = val.to_lowercase();
            let found: Option<Vec<DnKey>> = match schema::attribute(attr).map(|d| d.name) {
                Some("sAMAccountName") => Some(self.idx_sam.get(&v).cloned().into_iter().collect()),
                Some("userPrincipalName") => Some(self.idx_upn.get(&v).cloned().into_iter().collect()),
                Some("mail") => Some(self.idx_mail.get(&v).map(|s| s.iter().cloned().collect()).unwrap_or_default()),
                Some("objectGUID") => {
                    let g: Option<[u8; 16]> = crate::filter::assertion_bytes(val).as_ref().try_into().ok();
                    Some(g.and_then(|g| self.idx_guid.get(&g).cloned()).into_iter().collect())
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Stored and constructed values of an attribute (never secrets).
    pub fn values_of(&self, e: &Entry, attr: &str) -> Vec<Vec<u8>> {
        self.values_ref(e, attr).iter().map(|v| v.to_vec()).collect()
    }

    fn values_ref<'a>(&self, e: &'a Entry, attr: &str) -> std::borrow::Cow<'a, [Value]> {
        match schema::attribute(attr) {
            Some(d) if d.secret() => std::borrow::Cow::Borrowed(&[]),
            Some(d) if d.constructed() => self.constructed(e, d.name).unwrap_or_default().into_iter().map(Value::from).collect(),
            _ => e.values(attr).into(),
        }
    }

    fn constructed(&self, e: &Entry, name: &str) -> Option<Vec<Vec<u8>>> {
        let one = |s: String| Some(vec![s.into_bytes()]);
        match name {
            "canonicalName" => {
                let mut parts: Vec<String> =
                    e.dn.rdns.iter().rev().skip_while(|r| r.attr.eq_ignore_ascii_case("dc")).map(|r| r.value.clone()).collect();
                parts.insert(0, self.config.dns_name.clone());
                one(parts.join("/") + if e.dn.key() == self.base.key() { "/" } else { "" })
            }
            "createTimeStamp" => e.values("whenCreated").first().map(|v| vec![v.to_vec()]),
            "modifyTimeStamp" => e.values("whenChanged").first().map(|v| vec![v.to_vec()]),
            "structuralObjectClass" => e.structural_class().map(|c| vec![c.as_bytes().to_vec()]),
            "subSchemaSubEntry" => one(format!("CN=Aggregate,{}", self.schema_dn())),
            "tokenGroups" | "tokenGroupsNoGCAcceptable" => self.token_groups(e, false),
            "tokenGroupsGlobalAndUniversal" => self.token_groups(e, true),
            _ if e.is_class("user") => account::constructed(self, e, name, self.clock.filetime()),
            _ => None,
        }
    }

    /// The SIDs of every group a security principal is in, nested and through its primary
    /// group (MS-ADTS 3.1.1.4.5.19); without the domain-local and builtin ones for
    /// tokenGroupsGlobalAndUniversal.
    fn token_groups(&self, e: &Entry, global_and_universal: bool) -> Option<Vec<Vec<u8>>> {
        if !(e.is_class("user") || e.is_class("group")) {
            return None;
        }
        let mut todo: Vec<DnKey> = e.values("memberOf").iter().filter_map(|v| self.resolve(&String::from_utf8_lossy(v)).ok()).collect();
        let primary = e.values("primaryGroupID").first().and_then(|v| std::str::from_utf8(v).ok()?.parse::<u32>().ok());
        if let Some(rid) = primary {
            todo.extend(self.idx_sid.get(self.domain_sid.child(rid).to_bytes().as_slice()).cloned());
        }
        let mut seen = BTreeSet::new();
        let mut sids = vec![];
        while let Some(k) = todo.pop() {
            if !seen.insert(k.clone()) {
                continue;
            }
            let Some(g) = self.entries.get(&k) else { continue };
            let group_type = g.values("groupType").first().and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok()).unwrap_or(0);
            // GROUP_TYPE_BUILTIN_LOCAL_GROUP 0x1, GROUP_TYPE_RESOURCE_GROUP (domain local) 0x4
            if !(global_and_universal && group_type & 0x5 != 0) {
                sids.extend(g.values("objectSid").iter().map(|v| v.to_vec()));
            }
            todo.extend(g.values("memberOf").iter().filter_map(|v| self.resolve(&String::from_utf8_lossy(v)).ok()));
        }
        Some(sids)
    }

    /// Renders an entry for a search result.
    pub fn render(&self, key: &DnKey, sel: &Selection) -> Option<Rendered> {
        let e = self.entries.get(key)?;
        let mut out: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        let mut push = |name: String, vals: Vec<Vec<u8>>| {
            if !vals.is_empty() && !out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                out.push((name, if sel.types_only { vec![] } else { vals }));
            }
        };
        if sel.all_user {
            for a in e.attrs() {
                if schema::attribute(a.name()).is_none_or(|d| !d.secret() && !d.constructed()) {
                    push(a.name().to_string(), a.values.iter().map(|v| v.to_vec()).collect());
                }
            }
        }
        if sel.all_operational {
            // (tokenGroups only when asked for by name: it is worked out for one object)
            for d in schema::attributes().iter().filter(|d| d.constructed() && !TOKEN_GROUPS.contains(&d.name)) {
                push(d.name.to_string(), self.values_of(e, d.name));
            }
        }
        for n in &sel.named {
            let name = schema::attribute(n).map(|d| d.name.to_string()).unwrap_or_else(|| n.clone());
            if name == "nTSecurityDescriptor" {
                push(name, vec![self.security_descriptor(key, sel.sd_parts)]);
                continue;
            }
            push(name.clone(), self.values_of(e, &name));
        }
        if sel.with_secrets {
            if let Some(h) = e.secrets.nt_hash {
                push("unicodePwd".into(), vec![h.to_vec()]);
            }
            if !e.secrets.nt_history.is_empty() {
                push("ntPwdHistory".into(), vec![e.secrets.nt_history.concat()]);
            }
        }
        Some((e.dn.to_string(), out))
    }

    // ----- bind -----

    /// A simple bind, read only: the answer, and the bookkeeping it would write (bad
    /// password count, lockout, logon stamps). Empty name: anonymous. A name with an empty
    /// password is an unauthenticated bind, which Windows answers as anonymous (RFC 4513
    /// 5.1.2).
    pub fn bind_outcome(&self, name: &str, password: &str) -> (AdResult<Principal>, Option<(DnKey, Bookkeeping)>) {
        if password.is_empty() {
            return (Ok(Principal::Anonymous), None);
        }
        let Some(key) = self.resolve_bind_name(name) else { return (Err(AdError::bind("52e")), None) };
        let e = self.entry(&key);
        let out = account::bind(e, password, &self.effective_policy(e), self.clock.filetime());
        let principal = out.result.map(|()| Principal::User {
            admin: self.is_admin(&key),
            dn: e.dn.clone(),
            sam: e.first_str("sAMAccountName").unwrap_or_default().to_string(),
        });
        (principal, (!out.writes.is_empty()).then_some((key, out.writes)))
    }

    /// A simple bind, with its bookkeeping written.
    pub fn bind(&mut self, name: &str, password: &str) -> AdResult<Principal> {
        let (result, writes) = self.bind_outcome(name, password);
        if let Some((key, w)) = writes {
            self.apply_bookkeeping(&key, w);
        }
        result
    }

    /// The name forms a simple bind accepts, tried in turn as MS-ADTS 5.1.1.1.1 says: DN, UPN,
    /// `NETBIOS\sam`, canonical name (`testlab.example/Users/User1`), implicit UPN
    /// (`sam@dnsdomain`, whatever the userPrincipalName: Windows takes it beside an explicit
    /// UPN that differs, and an explicit UPN equal to another user's implicit one wins, being
    /// tried first), extended canonical name (a newline before the leaf) and SID string. What a real DC refuses fails every form: a bare
    /// sAMAccountName, `DNSDOMAIN\sam`, a displayName, a `{GUID}` (Samba 4.17, cases 15–26).
    pub fn resolve_bind_name(&self, name: &str) -> Option<DnKey> {
        let name = name.trim();
        let user = |k: &DnKey| self.entries.get(k).is_some_and(|e| e.is_class("user"));
        let forms: [&dyn Fn() -> Option<DnKey>; 7] = [
            &|| name.contains('=').then(|| Dn::parse(name).ok().map(|d| d.key())).flatten(),
            &|| self.idx_upn.get(&name.to_lowercase()).cloned(),
            &|| {
                let (dom, sam) = name.split_once('\\')?;
                dom.eq_ignore_ascii_case(&self.config.netbios).then(|| self.idx_sam.get(&sam.to_lowercase()).cloned()).flatten()
            },
            &|| self.resolve_canonical(name),
            &|| {
                let (sam, dom) = name.rsplit_once('@')?;
                self.idx_sam.get(&sam.to_lowercase()).filter(|_| dom.eq_ignore_ascii_case(&self.config.dns_name)).cloned()
            },
            &|| name.rfind('\n').and_then(|i| self.resolve_canonical(&format!("{}/{}", &name[..i], &name[i + 1..]))),
            &|| self.idx_sid.get(Sid::parse(name)?.to_bytes().as_slice()).cloned(),
        ];
        forms.iter().find_map(|form| form().filter(user))
    }

    /// A canonical name, `dnsdomain/step/.../leaf` (`\/` for a slash inside a name): each
    /// step is a child of the one before whose RDN value matches, whatever its naming
    /// attribute (CN, OU).
    fn resolve_canonical(&self, name: &str) -> Option<DnKey> {
        let mut steps = Vec::new();
        let mut cur = String::new();
        let mut chars = name.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.push(chars.next()?),
                '/' => steps.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        steps.push(cur);
        let (domain, path) = steps.split_first()?;
        if !domain.eq_ignore_ascii_case(&self.config.dns_name) || path.is_empty() {
            return None;
        }
        let mut at = self.base.clone();
        for step in path {
            at = ["CN", "OU"].iter().map(|a| at.child(crate::dn::Rdn::new(a, step))).find(|d| self.entries.contains_key(&d.key()))?;
        }
        Some(at.key())
    }

    /// Loads entries as they are (LDIF import): no access checks, system attributes kept
    /// when given and generated when missing. Existing entries at the same DN are replaced.
    pub fn import(&mut self, records: Vec<crate::ldif::Record>) -> Result<usize, crate::domain::ImportError> {
        crate::domain::import(self, records)
    }

    pub(crate) fn set_domain_sid(&mut self, sid: Sid) {
        self.domain_sid = sid;
    }
    pub(crate) fn set_counters(&mut self, usn: i64, rid: u32) {
        self.usn = self.usn.max(usn);
        self.next_rid = self.next_rid.max(rid);
    }
}

/// The values AD actually stores for a write of an account attribute: pwdLastSet takes
/// only 0 (must change) or -1 (now), userAccountControl never keeps the computed bits.
fn account_values(attr: &str, m: &Modification, now: i64) -> AdResult<Vec<Vec<u8>>> {
    match attr {
        "pwdLastSet" if m.op != ModOp::Delete => match m.values.iter().map(|v| crate::entry::parse_int(v)).collect::<Vec<_>>().as_slice() {
            [Some(0)] => Ok(vec![b"0".to_vec()]),
            [Some(-1)] => Ok(vec![now.to_string().into_bytes()]),
            _ => Err(AdError::new(ResultCode::Other, "00000057: setup_last_set_field: pwdLastSet must be 0 or -1 only!")),
        },
        "userAccountControl" => Ok(m
            .values
            .iter()
            .map(|v| crate::entry::parse_int(v).map(|n| account::stored_uac(n).to_string().into_bytes()).unwrap_or_else(|| v.clone()))
            .collect()),
        _ => Ok(m.values.clone()),
    }
}

/// A password settings object must carry every setting (the class's mustContain).
fn check_pso(e: &Entry) -> AdResult<()> {
    match policy::PSO_SETTINGS.iter().find(|a| !e.has(a)) {
        Some(missing) if e.is_class("msDS-PasswordSettings") => Err(AdError::object_class(&format!("{missing} is required"))),
        _ => Ok(()),
    }
}

fn unicode_pwd_needs_tls() -> AdError {
    AdError::unwilling(0x1F, "")
}

/// The largest value the lab stores. AD bounds each attribute by its schema rangeUpper
/// (description: 1,024 characters, thumbnailPhoto: 100 KiB); the lab applies one bound.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

fn check_syntax(def: &schema::AttrDef, values: &[Vec<u8>]) -> AdResult<()> {
    if values.iter().any(|v| v.len() > MAX_VALUE_BYTES) {
        return Err(AdError::constraint(def.name));
    }
    let ok = values.iter().all(|v| match def.syntax {
        Syntax::Integer => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .is_some_and(|n| i32::try_from(n).is_ok() || u32::try_from(n).is_ok()),
        Syntax::LargeInteger => std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()).is_some(),
        Syntax::Boolean => v.eq_ignore_ascii_case(b"TRUE") || v.eq_ignore_ascii_case(b"FALSE"),
        Syntax::Dn => std::str::from_utf8(v).ok().is_some_and(|s| Dn::parse(s).is_ok_and(|d| !d.is_root())),
        Syntax::Guid => v.len() == 16,
        Syntax::Sid => Sid::from_bytes(v).is_some(),
        Syntax::GeneralizedTime => std::str::from_utf8(v).ok().and_then(clock::parse_generalized_time).is_some(),
        Syntax::String | Syntax::Oid => std::str::from_utf8(v).is_ok() && !v.is_empty(),
        Syntax::Binary | Syntax::SecurityDescriptor => true,
    });
    if ok { Ok(()) } else { Err(AdError::bad_syntax(def.name)) }
}

/// `01234567-89ab-cdef-0123-456789abcdef` (or 32 hex digits) → AD's objectGUID bytes.
pub fn parse_guid_text(s: &str) -> Option<[u8; 16]> {
    let s = s.trim().trim_start_matches('{').trim_end_matches('}');
    let u = uuid::Uuid::parse_str(s).ok()?;
    Some(u.to_bytes_le())
}

pub fn guid_text(g: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes_le(*g).to_string()
}

struct Candidate<'a> {
    dir: &'a Directory,
    entry: &'a Entry,
}

impl Subject for Candidate<'_> {
    fn values_of(&self, attr: &str) -> std::borrow::Cow<'_, [Value]> {
        self.dir.values_ref(self.entry, attr)
    }
    fn in_chain(&self, attr: &str, dn: &str) -> bool {
        let Ok(target) = Dn::parse(dn) else { return false };
        let Some(def) = schema::attribute(attr) else { return false };
        self.dir.reaches(&self.entry.dn, def.name, &target.key(), &mut BTreeSet::new())
    }
}

/// A DACL written over LDAP, read into the access model (see [`Directory::read_dacl`]).
#[derive(Default)]
struct NewDacl {
    /// SE_DACL_PROTECTED: the object no longer inherits.
    protected: bool,
    grants: Vec<Grant>,
    denies: Vec<Grant>,
    /// Each modelled ACE as written, with the grant or deny it makes.
    forms: Vec<(bool, Grant, security::Ace)>,
    other: Vec<security::Ace>,
}
