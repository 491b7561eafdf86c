//! One LDAP connection's state, and the translation of each request into directory calls
//! and back into LDAP responses. No socket here: `handle` maps one `LdapMsg` to the
//! messages to send, so every protocol rule is testable in memory.

use std::collections::VecDeque;
use std::sync::RwLock;

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::*;

use crate::directory::{Directory, MAX_PAGE_SIZE, ModOp, Modification, OpContext, Principal, Scope, SearchRequest, Selection};
use crate::dn::DnKey;
use crate::error::{AdError, ResultCode};
use crate::filter::Filter;

pub const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";
pub const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
pub const OID_NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";
pub const OID_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
/// LDAP_SERVER_PERMISSIVE_MODIFY_OID: adding a present value or deleting an absent one is
/// not an error.
pub const OID_PERMISSIVE_MODIFY: &str = "1.2.840.113556.1.4.1413";
/// The lab's own control (under the UUID arc 2.25, which needs no registration): a search
/// by an administrator over TLS that carries it also returns password hashes, so that
/// `lab export` can save a directory that `lab up --adds-ldif` restores with its passwords.
pub const OID_LAB_EXPORT_SECRETS: &str = "2.25.129010377316938416394386376185574914177";

/// LDAP_SERVER_SD_FLAGS_OID: which parts of nTSecurityDescriptor a read returns or a write
/// replaces (owner 1, group 2, DACL 4, SACL 8).
pub const OID_SD_FLAGS: &str = "1.2.840.113556.1.4.801";

/// LDAP_SERVER_SHOW_DELETED_OID: deleted objects (tombstones) become visible.
pub const OID_SHOW_DELETED: &str = "1.2.840.113556.1.4.417";

fn is_deleted_objects(dir: &RwLock<Directory>, base: &str) -> bool {
    same_dn(base, &read(dir).deleted_objects_dn())
}

/// A search answered by one entry made on the fly (the rootDSE, the subschema entry): the
/// entry when the filter matches it, then success.
fn fixed_entry(msgid: i32, e: &crate::rootdse::RootDse, filter: &LdapFilter, selection: &Selection) -> Vec<LdapMsg> {
    let done = |res: LdapResult| LdapMsg { msgid, op: LdapOp::SearchResultDone(res), ctrl: vec![] };
    let f = match to_filter(filter) {
        Ok(f) => f,
        Err(e) => return vec![done(err(&e))],
    };
    let mut msgs = vec![];
    if f.matches(&crate::rootdse::Subject(e)) {
        msgs.push(entry_msg(msgid, crate::rootdse::render(e, selection)));
    }
    msgs.push(done(ok()));
    msgs
}

fn is_subschema(d: &Directory, base: &str) -> bool {
    same_dn(base, &crate::rootdse::subschema_dn(d))
}

fn same_dn(a: &str, b: &str) -> bool {
    matches!((crate::dn::Dn::parse(a), crate::dn::Dn::parse(b)), (Ok(a), Ok(b)) if a.key() == b.key())
}

/// (reached only when this DC does not support the control)
fn is_policy_hints(oid: &str) -> bool {
    oid == OID_POLICY_HINTS || oid == OID_POLICY_HINTS_DEPRECATED
}

/// LDAP_SERVER_POLICY_HINTS_OID and its deprecated twin (MS-ADTS 3.1.1.3.4.1.27): value
/// `SEQUENCE { flags INTEGER }`, flag 1 = hold a password reset to the full policy.
pub const OID_POLICY_HINTS: &str = "1.2.840.113556.1.4.2239";
pub const OID_POLICY_HINTS_DEPRECATED: &str = "1.2.840.113556.1.4.2066";

/// Controls AD advertises that the lab honours or may safely ignore.
pub const SUPPORTED_CONTROLS: &[&str] = &[
    OID_PAGED_RESULTS,
    OID_PERMISSIVE_MODIFY,
    OID_POLICY_HINTS,
    OID_POLICY_HINTS_DEPRECATED,
    OID_SD_FLAGS,
    OID_SHOW_DELETED,
    "1.2.840.113556.1.4.529",  // extended DN: accepted, DNs are returned plain
    "1.2.840.113556.1.4.1340", // search options
    "1.2.840.113556.1.4.473",  // server-side sort request: accepted, directory order kept
];

/// Writes a DC that is not the PDC emulator sends it at once.
const URGENT: &[&str] = &["unicodePwd", "userPassword", "lockoutTime"];

/// What the connection does after the replies are sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// Upgrade to TLS now (the StartTLS response is in the replies).
    StartTls,
    Close,
}

pub struct Reply {
    pub msgs: Vec<LdapMsg>,
    pub next: Next,
}

/// A paged search in progress: what is left to send.
struct Cursor {
    cookie: Vec<u8>,
    remaining: Remaining,
    selection: Selection,
    /// Continuation references, sent with the last page.
    refs: Vec<String>,
}

/// What a search found: objects of the domain NC, or of the other naming contexts (by
/// position: they never change).
enum Remaining {
    Domain(VecDeque<DnKey>),
    Other(VecDeque<usize>),
}

impl Remaining {
    fn len(&self) -> usize {
        match self {
            Remaining::Domain(k) => k.len(),
            Remaining::Other(k) => k.len(),
        }
    }

    fn truncate(&mut self, n: usize) {
        match self {
            Remaining::Domain(k) => k.truncate(n),
            Remaining::Other(k) => k.truncate(n),
        }
    }

    fn take(&mut self, n: usize) -> Remaining {
        match self {
            Remaining::Domain(k) => Remaining::Domain(k.drain(..n.min(k.len())).collect()),
            Remaining::Other(k) => Remaining::Other(k.drain(..n.min(k.len())).collect()),
        }
    }
}

use crate::partitions::REFERENCE_SCHEME;

fn reference_msg(msgid: i32, uri: String) -> LdapMsg {
    LdapMsg { msgid, op: LdapOp::SearchResultReference(LdapSearchResultReference { uris: vec![uri] }), ctrl: vec![] }
}

/// Paged searches a connection may keep open at once (AD keeps a bounded number too).
const MAX_CURSORS: usize = 16;

pub struct Session {
    pub principal: Principal,
    encrypted: bool,
    tls_available: bool,
    cursors: VecDeque<Cursor>,
    next_cookie: u64,
    /// False on a DC that predates the policy-hints control (before Windows Server 2012 for
    /// 2239, 2008 R2 for 2066): the control is then an unknown one.
    pub policy_hints_supported: bool,
    /// The PDC emulator, on a DC that is not it (crate::topology).
    pub pdc: Option<std::sync::Arc<crate::server::DomainController>>,
    /// The DC this session is on, in a domain of several (urgent replication starts here).
    pub this_dc: Option<std::sync::Arc<crate::server::DomainController>>,
}

fn result(code: ResultCode, e: Option<&AdError>) -> LdapResult {
    LdapResult {
        code: to_proto(code),
        matcheddn: e.map(|e| e.matched.clone()).unwrap_or_default(),
        message: e.map(|e| e.message.clone()).unwrap_or_default(),
        referral: vec![],
    }
}

fn ok() -> LdapResult {
    result(ResultCode::Success, None)
}

fn err(e: &AdError) -> LdapResult {
    result(e.code, Some(e))
}

fn to_proto(c: ResultCode) -> LdapResultCode {
    use LdapResultCode as P;
    use ResultCode::*;
    match c {
        Success => P::Success,
        OperationsError => P::OperationsError,
        ProtocolError => P::ProtocolError,
        SizeLimitExceeded => P::SizeLimitExceeded,
        CompareFalse => P::CompareFalse,
        CompareTrue => P::CompareTrue,
        AuthMethodNotSupported => P::AuthMethodNotSupported,
        StrongerAuthRequired => P::StrongerAuthRequired,
        UnavailableCriticalExtension => P::UnavailableCriticalExtension,
        ConfidentialityRequired => P::ConfidentialityRequired,
        NoSuchAttribute => P::NoSuchAttribute,
        UndefinedAttributeType => P::UndefinedAttributeType,
        ConstraintViolation => P::ConstraintViolation,
        AttributeOrValueExists => P::AttributeOrValueExists,
        InvalidAttributeSyntax => P::InvalidAttributeSyntax,
        NoSuchObject => P::NoSuchObject,
        InvalidDnSyntax => P::InvalidDNSyntax,
        InvalidCredentials => P::InvalidCredentials,
        InsufficientAccessRights => P::InsufficentAccessRights,
        Busy => P::Busy,
        UnwillingToPerform => P::UnwillingToPerform,
        NamingViolation => P::NamingViolation,
        ObjectClassViolation => P::ObjectClassViolation,
        NotAllowedOnNonLeaf => P::NotAllowedOnNonLeaf,
        NotAllowedOnRdn => P::NotALlowedOnRDN,
        EntryAlreadyExists => P::EntryAlreadyExists,
        Other => P::Other,
    }
}

/// The unsolicited notification AD sends before it drops a connection it cannot parse.
pub fn notice_of_disconnection(message: &str) -> LdapMsg {
    LdapMsg {
        msgid: 0,
        op: LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: LdapResult {
                code: LdapResultCode::ProtocolError,
                matcheddn: String::new(),
                message: message.to_string(),
                referral: vec![],
            },
            name: Some(OID_NOTICE_OF_DISCONNECTION.to_string()),
            value: None,
        }),
        ctrl: vec![],
    }
}

impl Session {
    pub fn new(encrypted: bool, tls_available: bool) -> Session {
        Session {
            principal: Principal::Anonymous,
            encrypted,
            tls_available,
            cursors: VecDeque::new(),
            next_cookie: 1,
            policy_hints_supported: true,
            pdc: None,
            this_dc: None,
        }
    }

    pub fn encrypted(&self) -> bool {
        self.encrypted
    }

    /// Whether the connection has bound as someone (not anonymous).
    pub fn bound(&self) -> bool {
        !matches!(self.principal, Principal::Anonymous)
    }

    /// Called once the StartTLS handshake has completed.
    pub fn tls_started(&mut self) {
        self.encrypted = true;
    }

    pub fn handle(&mut self, dir: &RwLock<Directory>, msg: LdapMsg) -> Reply {
        let LdapMsg { msgid, op, ctrl } = msg;
        let one = |op: LdapOp| Reply { msgs: vec![LdapMsg { msgid, op, ctrl: vec![] }], next: Next::Continue };

        // Critical controls the lab does not know are refused before anything happens.
        let mut permissive = false;
        let mut paged: Option<(i64, Vec<u8>)> = None;
        let mut export = false;
        let mut show_deleted = false;
        let mut policy_hints = false;
        let mut sd_parts = 0;
        for c in &ctrl {
            let malformed = |oid: &str| {
                let e = AdError::new(
                    ResultCode::ProtocolError,
                    format!(
                        "00000057: LdapErr: DSID-0C090C78, comment: Error processing control, data 0, v4563 ({oid}: expected SEQUENCE {{ flags INTEGER }})"
                    ),
                );
                match response_for(&op, err(&e)) {
                    Some(op) => one(op),
                    None => Reply { msgs: vec![], next: Next::Continue },
                }
            };
            match c {
                LdapControl::Unknown { oid, value, .. } if oid == OID_SD_FLAGS => match parse_flags_control(value.as_deref()) {
                    Some(flags) => sd_parts = (flags & 0xF) as u32,
                    None => return malformed(oid),
                },
                LdapControl::Unknown { oid, value, .. }
                    if self.policy_hints_supported && (oid == OID_POLICY_HINTS || oid == OID_POLICY_HINTS_DEPRECATED) =>
                {
                    match parse_flags_control(value.as_deref()) {
                        Some(flags) => policy_hints = flags & 1 != 0,
                        None => return malformed(oid),
                    }
                }
                LdapControl::SimplePagedResults { size, cookie } => paged = Some((*size, cookie.clone())),
                LdapControl::Unknown { oid, .. } if oid == OID_PERMISSIVE_MODIFY => permissive = true,
                LdapControl::Unknown { oid, .. } if oid == OID_LAB_EXPORT_SECRETS => export = true,
                LdapControl::ShowDeleted { .. } => show_deleted = true,
                LdapControl::Unknown { oid, criticality, .. }
                    if *criticality && (!SUPPORTED_CONTROLS.contains(&oid.as_str()) || is_policy_hints(oid)) =>
                {
                    let e = AdError::unavailable_critical_extension(oid);
                    return match response_for(&op, err(&e)) {
                        Some(op) => one(op),
                        None => Reply { msgs: vec![], next: Next::Continue },
                    };
                }
                LdapControl::SyncRequest { criticality: true, .. } | LdapControl::PasswordPolicyRequest { criticality: true } => {
                    let e = AdError::unavailable_critical_extension(control_oid(c));
                    return match response_for(&op, err(&e)) {
                        Some(op) => one(op),
                        None => Reply { msgs: vec![], next: Next::Continue },
                    };
                }
                _ => {}
            }
        }
        let ctx = OpContext { encrypted: self.encrypted, permissive, policy_hints, sd_parts };

        match op {
            LdapOp::BindRequest(req) => one(LdapOp::BindResponse(LdapBindResponse { res: self.bind(dir, req), saslcreds: None })),
            LdapOp::UnbindRequest => Reply { msgs: vec![], next: Next::Close },
            LdapOp::SearchRequest(req) if show_deleted && is_deleted_objects(dir, &req.base) => {
                Reply { msgs: self.search_deleted(dir, msgid, req), next: Next::Continue }
            }
            LdapOp::SearchRequest(req) => Reply { msgs: self.search(dir, msgid, req, paged, export, sd_parts), next: Next::Continue },
            LdapOp::ModifyRequest(req) => {
                let mods: Vec<Modification> = req
                    .changes
                    .into_iter()
                    .map(|m| Modification {
                        op: match m.operation {
                            LdapModifyType::Add => ModOp::Add,
                            LdapModifyType::Delete => ModOp::Delete,
                            LdapModifyType::Replace => ModOp::Replace,
                            LdapModifyType::Increment => ModOp::Increment,
                        },
                        attr: strip_options(&m.modification.atype),
                        values: m.modification.vals,
                    })
                    .collect();
                let urgent = mods.iter().any(|m: &Modification| URGENT.iter().any(|a| m.attr.eq_ignore_ascii_case(a)));
                let r = write(dir).modify(&self.principal, &req.dn, mods, ctx);
                if r.is_ok() && urgent {
                    self.urgent_to_pdc(dir, &req.dn);
                }
                one(LdapOp::ModifyResponse(r.map_or_else(|e| err(&e), |()| ok())))
            }
            LdapOp::AddRequest(req) => {
                let attrs = req.attributes.into_iter().map(|a| (strip_options(&a.atype), a.vals)).collect();
                let r = write(dir).add(&self.principal, &req.dn, attrs, ctx);
                one(LdapOp::AddResponse(r.map_or_else(|e| err(&e), |()| ok())))
            }
            LdapOp::DelRequest(dn) => {
                let r = write(dir).delete(&self.principal, &dn);
                one(LdapOp::DelResponse(r.map_or_else(|e| err(&e), |()| ok())))
            }
            LdapOp::ModifyDNRequest(req) => {
                let r = write(dir).rename(&self.principal, &req.dn, &req.newrdn, req.deleteoldrdn, req.new_superior.as_deref());
                one(LdapOp::ModifyDNResponse(r.map_or_else(|e| err(&e), |()| ok())))
            }
            LdapOp::CompareRequest(req) => {
                let r = read(dir).compare(&self.principal, &req.dn, &strip_options(&req.atype), &req.val);
                one(LdapOp::CompareResult(match r {
                    Ok(true) => result(ResultCode::CompareTrue, None),
                    Ok(false) => result(ResultCode::CompareFalse, None),
                    Err(e) => err(&e),
                }))
            }
            // Operations complete before the next request is read, so there is never
            // anything left to abandon; RFC 4511 4.11: no response.
            LdapOp::AbandonRequest(_) => Reply { msgs: vec![], next: Next::Continue },
            LdapOp::ExtendedRequest(req) => {
                let netbios = read(dir).config().netbios.clone();
                self.extended(msgid, req, &netbios)
            }
            other => Reply {
                msgs: vec![notice_of_disconnection(&format!(
                    "00002024: LdapErr: DSID-0C060810, comment: {} is not a request, data 0, v4563",
                    op_name(&other)
                ))],
                next: Next::Close,
            },
        }
    }

    fn bind(&mut self, dir: &RwLock<Directory>, req: LdapBindRequest) -> LdapResult {
        // A bind, successful or not, first drops the connection's identity (RFC 4513 4).
        self.principal = Principal::Anonymous;
        self.cursors.clear();
        if req.version != 3 && req.version != 2 {
            return result(
                ResultCode::ProtocolError,
                Some(&AdError::new(
                    ResultCode::ProtocolError,
                    "00002024: LdapErr: DSID-0C0608B6, comment: Unsupported LDAP version, data 0, v4563",
                )),
            );
        }
        let LdapBindCred::Simple(password) = req.cred else {
            let e = AdError::new(
                ResultCode::AuthMethodNotSupported,
                "00002027: LdapErr: DSID-0C0905B8, comment: The lab supports simple binds only (no SASL), data 0, v4563",
            );
            return err(&e);
        };
        // Most binds write nothing (no bad password to count, no logon stamp due): answer
        // those under the read lock, and take the write lock only to record something.
        let (result, writes) = read(dir).bind_outcome(&req.dn, &password);
        if let Some(at_pdc) = self.check_at_pdc(dir, &req.dn, &password, &result) {
            return at_pdc;
        }
        // a lockout this bind makes reaches the domain's other DCs at once
        let lockout = writes.as_ref().filter(|(_, w)| w.0.iter().any(|(a, v)| *a == "lockoutTime" && v != "0")).map(|(k, _)| k.clone());
        let result = if writes.is_some() { write(dir).bind(&req.dn, &password) } else { result };
        if let (Some(key), Some(me)) = (lockout, &self.this_dc) {
            me.replicate_urgently(&key);
        }
        match result {
            Ok(p) => {
                self.principal = p;
                ok()
            }
            Err(e) => err(&e),
        }
    }

    /// Password check chaining (MS-SAMR 3.1.1.8.10, MS-APDS 3.1.5): on a DC that is not the
    /// PDC emulator, a bind refused for a wrong password (or an unknown name: 52e either way)
    /// is tried again at the PDC, which holds the newest passwords. Its success is the
    /// answer; its refusal counts at the PDC too, and a lockout it makes reaches this DC at
    /// once (urgent replication). None: answer from this DC alone.
    fn check_at_pdc(
        &mut self,
        dir: &RwLock<Directory>,
        name: &str,
        password: &str,
        local: &Result<Principal, AdError>,
    ) -> Option<LdapResult> {
        let wrong_password = matches!(local, Err(e) if e.code == ResultCode::InvalidCredentials && e.message.contains("data 52e"));
        // (an empty password is an unauthenticated bind: never a wrong one)
        let pdc = self.pdc.as_ref().filter(|p| p.faults.state() != crate::server::DcState::Down)?;
        if !wrong_password {
            return None;
        }
        let at_pdc = pdc.directory.write().unwrap_or_else(std::sync::PoisonError::into_inner).bind(name, password);
        match at_pdc {
            Ok(p) => {
                self.principal = p;
                Some(ok())
            }
            Err(_) => {
                // this DC counts it too (below); a lockout the PDC made reaches every DC at once
                let key = read(dir).resolve_bind_name(name)?;
                let guid = read(dir).get(&key).and_then(|e| e.guid())?;
                let locked = {
                    let p = pdc.directory.read().unwrap_or_else(std::sync::PoisonError::into_inner);
                    p.by_guid(&guid).filter(|e| e.int("lockoutTime").is_some_and(|t| t != 0)).map(|e| e.dn.key())
                };
                if let Some(k) = locked {
                    pdc.replicate_urgently(&k);
                }
                None
            }
        }
    }

    /// Urgent replication: a password or a lockout written on a DC that is not the PDC
    /// emulator is sent to it at once (MS-SAMR 3.1.1.8.10's forwarding of password changes;
    /// MS-DRSR's DRS_SYNC_URGENT for lockouts).
    fn urgent_to_pdc(&self, dir: &RwLock<Directory>, dn: &str) {
        let Some(pdc) = self.pdc.as_ref().filter(|p| p.faults.state() != crate::server::DcState::Down) else { return };
        let change = {
            let d = read(dir);
            d.resolve(dn).ok().and_then(|k| d.change_of(&k))
        };
        if let Some(c) = change {
            pdc.directory
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .apply(&crate::directory::Changes { changes: vec![c], high_usn: 0 });
        }
    }

    /// A search of `CN=Deleted Objects` with the show-deleted control: the tombstones.
    fn search_deleted(&mut self, dir: &RwLock<Directory>, msgid: i32, req: LdapSearchRequest) -> Vec<LdapMsg> {
        let done = |res: LdapResult| LdapMsg { msgid, op: LdapOp::SearchResultDone(res), ctrl: vec![] };
        let selection = Selection::from_request(&req.attrs, req.typesonly);
        let f = match to_filter(&req.filter) {
            Ok(f) => f,
            Err(e) => return vec![done(err(&e))],
        };
        match read(dir).deleted_matching(&self.principal, &f, &selection) {
            Ok(found) => {
                let mut msgs: Vec<LdapMsg> = found.into_iter().map(|r| entry_msg(msgid, r)).collect();
                msgs.push(done(ok()));
                msgs
            }
            Err(e) => vec![done(err(&e))],
        }
    }

    fn search(
        &mut self,
        dir: &RwLock<Directory>,
        msgid: i32,
        req: LdapSearchRequest,
        paged: Option<(i64, Vec<u8>)>,
        export: bool,
        sd_parts: u32,
    ) -> Vec<LdapMsg> {
        let done = |res: LdapResult, ctrl: Vec<LdapControl>| LdapMsg { msgid, op: LdapOp::SearchResultDone(res), ctrl };
        let mut selection = Selection::from_request(&req.attrs, req.typesonly);
        selection.sd_parts = sd_parts;
        if export {
            if !(self.encrypted && read(dir).may_replicate_secrets(&self.principal)) {
                return vec![done(err(&AdError::no_control_access()), vec![])];
            }
            selection.with_secrets = true;
        }

        // The rootDSE: readable by anyone, the entry every client reads first.
        if req.base.trim().is_empty() && req.scope == LdapSearchScope::Base {
            let root = crate::rootdse::entry(&read(dir), self.tls_available, self.encrypted);
            return fixed_entry(msgid, &root, &req.filter, &selection);
        }

        // The subschema entry: any bound client may read the schema.
        if req.scope != LdapSearchScope::OneLevel && is_subschema(&read(dir), &req.base) {
            if matches!(self.principal, Principal::Anonymous) {
                return vec![done(err(&AdError::must_bind()), vec![])];
            }
            return fixed_entry(msgid, &crate::rootdse::subschema(&read(dir)), &req.filter, &selection);
        }

        // Continuing (or abandoning) a paged search.
        if let Some((size, cookie)) = &paged
            && !cookie.is_empty()
        {
            let Some(pos) = self.cursors.iter().position(|c| &c.cookie == cookie) else {
                let e = AdError::unwilling(0x2024, " (the paged-results cookie is not known on this connection)");
                return vec![done(err(&e), vec![])];
            };
            let mut cursor = self.cursors.remove(pos).expect("found");
            if *size <= 0 {
                return vec![done(ok(), vec![paged_ctrl(vec![])])];
            }
            return self.page(dir, msgid, &mut cursor, *size as usize);
        }

        let filter = match to_filter(&req.filter) {
            Ok(f) => f,
            Err(e) => return vec![done(err(&e), vec![])],
        };
        let one_level = req.scope == LdapSearchScope::OneLevel;
        if let Err(e) = self.token_groups_allowed(&req, &selection) {
            return vec![done(err(&e), vec![])];
        }
        // another domain of the forest: a referral to the DC that holds it (0000202B RefErr)
        if let Some((url, host)) = {
            let d = read(dir);
            if d.resolve(&req.base).is_err() && !d.layout().holds(&req.base) { d.layout().referral_for(&req.base) } else { None }
        } {
            let res = LdapResult {
                code: LdapResultCode::Referral,
                matcheddn: String::new(),
                message: format!("0000202B: RefErr: DSID-0310084A, data 0, 1 access points\n\tref 1: '{host}'\n"),
                referral: vec![url],
            };
            return vec![done(res, vec![])];
        }
        let (mut found, refs) = if read(dir).layout().holds(&req.base) {
            // Configuration, Schema, the DNS zones: held apart from the domain NC
            if matches!(self.principal, Principal::Anonymous) {
                return vec![done(err(&AdError::must_bind()), vec![])];
            }
            let scope = match req.scope {
                LdapSearchScope::Base => crate::partitions::Scope::Base,
                LdapSearchScope::OneLevel => crate::partitions::Scope::OneLevel,
                LdapSearchScope::Subtree | LdapSearchScope::Children => crate::partitions::Scope::Subtree,
            };
            let d = read(dir);
            let p = d.partitions();
            match p.search(&req.base, scope, &filter) {
                Ok(mut at) => {
                    if req.scope == LdapSearchScope::Children {
                        at.retain(|i| p.render(*i, &Selection::default()).is_some_and(|(dn, _)| !same_dn(&dn, &req.base)));
                    }
                    let refs = if req.scope == LdapSearchScope::Base {
                        vec![]
                    } else {
                        d.layout().references(&req.base, one_level, REFERENCE_SCHEME)
                    };
                    (Remaining::Other(at.into()), refs)
                }
                Err(e) => return vec![done(err(&e), vec![])],
            }
        } else {
            let scope = match req.scope {
                LdapSearchScope::Base => Scope::Base,
                LdapSearchScope::OneLevel => Scope::OneLevel,
                LdapSearchScope::Subtree | LdapSearchScope::Children => Scope::Subtree,
            };
            let sreq = SearchRequest { base: req.base.clone(), scope, filter };
            let d = read(dir);
            let mut keys: VecDeque<DnKey> = match d.search(&self.principal, &sreq) {
                Ok(k) => k.into(),
                Err(e) => return vec![done(err(&e), vec![])],
            };
            if req.scope == LdapSearchScope::Children {
                keys.retain(|k| k.as_str() != "" && Some(k) != d.resolve(&req.base).ok().as_ref());
            }
            let refs =
                if req.scope == LdapSearchScope::Base { vec![] } else { d.layout().references(&req.base, one_level, REFERENCE_SCHEME) };
            (Remaining::Domain(keys), refs)
        };
        let client_limit = usize::try_from(req.sizelimit).unwrap_or(0);
        if client_limit > 0 && found.len() > client_limit {
            found.truncate(client_limit);
            let mut msgs = self.render(dir, msgid, &found, &selection);
            msgs.push(done(result(ResultCode::SizeLimitExceeded, None), vec![]));
            return msgs;
        }
        match paged {
            Some((size, _)) => {
                let cookie = self.next_cookie.to_be_bytes().to_vec();
                self.next_cookie += 1;
                let mut cursor = Cursor { cookie, remaining: found, selection, refs };
                self.page(dir, msgid, &mut cursor, usize::try_from(size).unwrap_or(0))
            }
            None => {
                // Without paging AD answers at most MaxPageSize entries, then sizeLimitExceeded.
                let over = found.len() > MAX_PAGE_SIZE;
                found.truncate(MAX_PAGE_SIZE);
                let mut msgs = self.render(dir, msgid, &found, &selection);
                let code = if over {
                    ResultCode::SizeLimitExceeded
                } else {
                    msgs.extend(refs.into_iter().map(|r| reference_msg(msgid, r)));
                    ResultCode::Success
                };
                msgs.push(done(result(code, None), vec![]));
                msgs
            }
        }
    }

    /// tokenGroups is worked out for one object at a time: AD refuses it in a search of
    /// more than the base (Samba's text; Windows' is not published).
    fn token_groups_allowed(&self, req: &LdapSearchRequest, sel: &Selection) -> Result<(), AdError> {
        let asked = sel.named.iter().find(|n| crate::directory::TOKEN_GROUPS.iter().any(|t| t.eq_ignore_ascii_case(n)));
        match asked {
            Some(name) if req.scope != LdapSearchScope::Base => Err(AdError::new(
                ResultCode::OperationsError,
                format!(
                    "00002020: operational_search_post_process failed for attribute '{name}' - Cannot provide {name} attribute, this is not a BASE search"
                ),
            )),
            _ => Ok(()),
        }
    }

    fn page(&mut self, dir: &RwLock<Directory>, msgid: i32, cursor: &mut Cursor, size: usize) -> Vec<LdapMsg> {
        let n = size.clamp(1, MAX_PAGE_SIZE).min(cursor.remaining.len());
        let page = cursor.remaining.take(n);
        let mut msgs = self.render(dir, msgid, &page, &cursor.selection);
        let next_cookie = if cursor.remaining.len() == 0 {
            msgs.extend(std::mem::take(&mut cursor.refs).into_iter().map(|r| reference_msg(msgid, r)));
            vec![]
        } else {
            let c = std::mem::take(&mut cursor.cookie);
            self.cursors.push_back(Cursor {
                cookie: c.clone(),
                remaining: cursor.remaining.take(usize::MAX),
                selection: cursor.selection.clone(),
                refs: std::mem::take(&mut cursor.refs),
            });
            while self.cursors.len() > MAX_CURSORS {
                self.cursors.pop_front();
            }
            c
        };
        msgs.push(LdapMsg { msgid, op: LdapOp::SearchResultDone(ok()), ctrl: vec![paged_ctrl(next_cookie)] });
        msgs
    }

    fn render(&self, dir: &RwLock<Directory>, msgid: i32, found: &Remaining, sel: &Selection) -> Vec<LdapMsg> {
        let d = read(dir);
        match found {
            Remaining::Domain(keys) => keys.iter().filter_map(|k| d.render(k, sel)).map(|r| entry_msg(msgid, r)).collect(),
            Remaining::Other(at) => at.iter().filter_map(|i| d.partitions().render(*i, sel)).map(|r| entry_msg(msgid, r)).collect(),
        }
    }

    fn extended(&mut self, msgid: i32, req: LdapExtendedRequest, netbios: &str) -> Reply {
        let reply = |res: LdapResult, name: Option<&str>, value: Option<Vec<u8>>, next: Next| Reply {
            msgs: vec![LdapMsg {
                msgid,
                op: LdapOp::ExtendedResponse(LdapExtendedResponse { res, name: name.map(str::to_string), value }),
                ctrl: vec![],
            }],
            next,
        };
        match req.name.as_str() {
            OID_STARTTLS => {
                if self.encrypted {
                    let e = AdError::new(
                        ResultCode::OperationsError,
                        "00000000: LdapErr: DSID-0C090FC5, comment: TLS or SSL already in effect, data 0, v4563",
                    );
                    return reply(err(&e), Some(OID_STARTTLS), None, Next::Continue);
                }
                if !self.tls_available {
                    let e = AdError::new(
                        ResultCode::ProtocolError,
                        "00000000: LdapErr: DSID-0C090E9E, comment: Error initializing SSL/TLS, data 0, v4563",
                    );
                    return reply(err(&e), Some(OID_STARTTLS), None, Next::Continue);
                }
                reply(ok(), Some(OID_STARTTLS), None, Next::StartTls)
            }
            OID_WHOAMI => {
                let id = match &self.principal {
                    Principal::Anonymous => String::new(),
                    Principal::User { sam, .. } => format!("u:{netbios}\\{sam}"),
                };
                reply(ok(), None, Some(id.into_bytes()), Next::Continue)
            }
            other => {
                let e = AdError::new(
                    ResultCode::ProtocolError,
                    format!("0000203D: LdapErr: DSID-0C091031, comment: Unknown extended request OID {other}, data 0, v4563"),
                );
                reply(err(&e), None, None, Next::Continue)
            }
        }
    }
}

fn read(dir: &RwLock<Directory>) -> std::sync::RwLockReadGuard<'_, Directory> {
    dir.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(dir: &RwLock<Directory>) -> std::sync::RwLockWriteGuard<'_, Directory> {
    dir.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn strip_options(atype: &str) -> String {
    atype.split(';').next().unwrap_or(atype).to_string()
}

fn paged_ctrl(cookie: Vec<u8>) -> LdapControl {
    LdapControl::SimplePagedResults { size: 0, cookie }
}

fn entry_msg(msgid: i32, (dn, attrs): crate::directory::Rendered) -> LdapMsg {
    LdapMsg {
        msgid,
        op: LdapOp::SearchResultEntry(LdapSearchResultEntry {
            dn,
            attributes: attrs.into_iter().map(|(atype, vals)| LdapPartialAttribute { atype, vals }).collect(),
        }),
        ctrl: vec![],
    }
}

/// The response type that answers a request type, for errors raised before dispatch.
fn response_for(op: &LdapOp, res: LdapResult) -> Option<LdapOp> {
    Some(match op {
        LdapOp::BindRequest(_) => LdapOp::BindResponse(LdapBindResponse { res, saslcreds: None }),
        LdapOp::SearchRequest(_) => LdapOp::SearchResultDone(res),
        LdapOp::ModifyRequest(_) => LdapOp::ModifyResponse(res),
        LdapOp::AddRequest(_) => LdapOp::AddResponse(res),
        LdapOp::DelRequest(_) => LdapOp::DelResponse(res),
        LdapOp::ModifyDNRequest(_) => LdapOp::ModifyDNResponse(res),
        LdapOp::CompareRequest(_) => LdapOp::CompareResult(res),
        LdapOp::ExtendedRequest(_) => LdapOp::ExtendedResponse(LdapExtendedResponse { res, name: None, value: None }),
        _ => return None,
    })
}

fn control_oid(c: &LdapControl) -> &'static str {
    match c {
        LdapControl::SyncRequest { .. } => "1.3.6.1.4.1.4203.1.9.1.1",
        LdapControl::PasswordPolicyRequest { .. } => "1.3.6.1.4.1.42.2.27.8.5.1",
        _ => "",
    }
}

fn op_name(op: &LdapOp) -> &'static str {
    match op {
        LdapOp::BindResponse(_) => "BindResponse",
        LdapOp::SearchResultEntry(_) => "SearchResultEntry",
        LdapOp::SearchResultDone(_) => "SearchResultDone",
        LdapOp::ModifyResponse(_) => "ModifyResponse",
        LdapOp::AddResponse(_) => "AddResponse",
        LdapOp::DelResponse(_) => "DelResponse",
        LdapOp::ExtendedResponse(_) => "ExtendedResponse",
        _ => "a response",
    }
}

/// The policy-hints and SD-flags values: BER `SEQUENCE { flags INTEGER }` → the flags.
fn parse_flags_control(v: Option<&[u8]>) -> Option<i64> {
    use ldap3_lber::common::TagClass;
    let (rest, tag) = ldap3_lber::parse::parse_tag(v?, 4).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let [flags] = tag.match_class(TagClass::Universal)?.match_id(16)?.expect_constructed()?.try_into().ok()?;
    let bytes = flags.match_class(TagClass::Universal)?.match_id(2)?.expect_primitive()?;
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    // two's complement, big-endian
    let init: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    Some(bytes.iter().fold(init, |n, b| (n << 8) | i64::from(*b)))
}

/// ldap3_proto's filter → the directory's.
pub fn to_filter(f: &LdapFilter) -> Result<Filter, AdError> {
    Ok(match f {
        LdapFilter::And(fs) => Filter::And(fs.iter().map(to_filter).collect::<Result<_, _>>()?),
        LdapFilter::Or(fs) => Filter::Or(fs.iter().map(to_filter).collect::<Result<_, _>>()?),
        LdapFilter::Not(f) => Filter::Not(Box::new(to_filter(f)?)),
        LdapFilter::Equality(a, v) => Filter::Equal(strip_options(a), v.clone()),
        LdapFilter::Substring(a, s) => {
            Filter::Substring { attr: strip_options(a), initial: s.initial.clone(), any: s.any.clone(), last: s.final_.clone() }
        }
        LdapFilter::GreaterOrEqual(a, v) => Filter::GreaterOrEqual(strip_options(a), v.clone()),
        LdapFilter::LessOrEqual(a, v) => Filter::LessOrEqual(strip_options(a), v.clone()),
        LdapFilter::Present(a) => Filter::Present(strip_options(a)),
        LdapFilter::Approx(a, v) => Filter::Approx(strip_options(a), v.clone()),
        LdapFilter::Extensible(m) => Filter::Extensible {
            rule: m.matching_rule.clone(),
            attr: m.type_.clone(),
            value: m.match_value.clone(),
            dn_attributes: m.dn_attributes,
        },
    })
}
