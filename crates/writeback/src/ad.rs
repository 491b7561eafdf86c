//! A password operation carried to AD over LDAPS as the connector account: the object found
//! by its sourceAnchor, the commit point, the write, AD's answer read as Connect's events.

use super::*;
use crate::connectors::Connector;

/// A password operation as it came over the relay.
pub(crate) struct Request<'a> {
    pub(crate) id: uuid::Uuid,
    pub(crate) anchor: &'a str,
    /// onPremisesDistinguishedName, as the tenant last synced it (Cloud Sync finds by it).
    pub(crate) dn: Option<&'a str>,
    pub(crate) upn: &'a str,
    pub(crate) op: Operation,
    pub(crate) deadline_ms: u64,
}

/// One operation: the events Connect logs for it, AD's answer. [`Outcome::NotWritten`] when
/// it was refused at the commit point (expired, or its link or the service gone): nothing was
/// written, and the tenant tells the user it failed.
pub(crate) async fn handle(inner: &Inner, link: &CancellationToken, req: Request<'_>) -> Outcome {
    let Request { id, anchor, dn, upn, op, deadline_ms } = req;
    let tracking = id.to_string();
    let t = Some(tracking.as_str());
    let (start, ok, fail) = match &op {
        Operation::Reset { by_admin: true, .. } => (31009, 31010, 31011),
        Operation::Reset { .. } | Operation::Unlock => (31001, 31002, 31003),
        Operation::Change { .. } => (31006, 31007, 31008),
    };
    let refused = |why: Refused| {
        let text = match why {
            Refused::Expired => format!("{} request for {upn} expired before it could be processed; nothing was changed.", a_kind(&op)),
            Refused::Cancelled => format!(
                "{} request for {upn} was cancelled before it was written (the service stopped or the relay link closed); nothing was changed.",
                a_kind(&op)
            ),
        };
        inner.log.log(32000, text, t);
        Outcome::NotWritten
    };
    // the fault switch's delay comes first, and never outlasts the deadline or the link
    let delay = inner.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        let until_deadline = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(delay).min(until_deadline)) => {}
            _ = link.cancelled() => return refused(Refused::Cancelled),
        }
    }
    // password hash sync does not export while a writeback is on its way; a cycle holding
    // the gate is waited for only until the deadline
    let until = tokio::time::Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
    let _writing = tokio::select! {
        g = tokio::time::timeout_at(until, inner.phs_gate.read()) => match g {
            Ok(g) => g,
            Err(_) => return refused(Refused::Expired),
        },
        _ = link.cancelled() => return refused(Refused::Cancelled),
    };
    // not begun at all when it is already too late (the commit point checks again before
    // the write itself)
    if now_ms() >= deadline_ms {
        return refused(Refused::Expired);
    }
    if link.is_cancelled() || !inner.running.load(Ordering::SeqCst) {
        return refused(Refused::Cancelled);
    }
    inner.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(anchor.to_string());
    let sealed = match &op {
        Operation::Unlock => "",
        _ => " (password sealed: RSA-OAEP-wrapped AES-256-GCM)",
    };
    inner.log.trace(&tracking, "tenant", "relay", format!("{} request for {upn}{sealed}", op.kind()));
    inner.log.trace(&tracking, "relay", "engine", format!("{} request for {upn}", op.kind()));
    inner.log.log(start, format!("{} request for {upn} was received from the cloud.", a_kind(&op)), t);
    let result = match write(inner, link, Target { anchor, dn }, &op, &tracking, deadline_ms).await {
        Ok(()) => Ok(()),
        Err(Stop::Refusal(r)) => Err(r),
        Err(Stop::Refused(why)) => return refused(why),
    };
    let answer = match &result {
        Ok(()) => "succeeded".to_string(),
        Err((failure, _)) => format!("failed: {}", events::for_failure(*failure)),
    };
    inner.log.trace(&tracking, "engine", "relay", answer.clone());
    inner.log.trace(&tracking, "relay", "tenant", answer);
    match result {
        Ok(()) => {
            inner.log.log(ok, format!("The {} for {upn} was written to Active Directory.", op.kind()), t);
            Outcome::Succeeded
        }
        Err((failure, detail)) => {
            let event = events::for_failure(failure);
            inner.log.log(fail, format!("The {} for {upn} failed on-premises.", op.kind()), t);
            inner.log.log(event, format!("{} ({upn})", events::name(event)), t);
            if let Some(d) = detail {
                inner.log.log(6329, d, t);
            }
            Outcome::Failed { failure, event }
        }
    }
}

/// "A reset", "An admin reset", "An unlock", "A change": the start of an event's sentence.
pub(crate) fn a_kind(op: &Operation) -> String {
    let kind = op.kind();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "An" } else { "A" };
    format!("{article} {kind}")
}

pub(crate) type Refusal = (Failure, Option<String>);

/// The longest the engine waits for one LDAP answer before a write (a DC that accepts and
/// never answers must not hold a request, or a sync cycle, for ever).
pub(crate) const LDAP_OP_LIMIT: Duration = Duration::from_secs(5);

/// A connector's connection (and whether it is new): reused while it works, made again when
/// it does not — to the first DC of its candidates that answers ([`crate::dcs`]).
pub(crate) async fn ldap(inner: &Inner, c: &Connector) -> Result<(ldap3::Ldap, bool), Refusal> {
    let mut slot = c.ldap.lock().await;
    // (ldap3's is_closed takes &mut self)
    if let Some(l) = slot.as_mut().map(|l| (l.is_closed(), l)).and_then(|(closed, l)| (!closed).then_some(l)) {
        return Ok((l.clone(), false));
    }
    let settings = c.dc_settings();
    let account = (c.account_dn.clone(), c.password());
    let mut passed = vec![];
    for dc in crate::dcs::candidates(&c.dcs, &settings) {
        match connector_session_to(&account, dc, &inner.tls, inner.unsealed.load(Ordering::SeqCst)).await {
            Ok(l) => {
                *slot = Some(l.clone());
                c.set_current_dc(Some(dc.name.clone()));
                return Ok((l, true));
            }
            Err((Failure::DirectoryUnavailable, detail)) => {
                // (the lab's event: Microsoft documents none for a DC that does not answer)
                let msg = format!("{} The AD connector passes over domain controller {}.", detail.unwrap_or_default(), dc.name);
                inner.log.log(6329, msg, None);
                passed.push(dc.name.clone());
            }
            Err(e) => return Err(e),
        }
    }
    c.set_current_dc(None);
    let only = if settings.only_preferred { " (\"Only use preferred domain controllers\" is on)" } else { "" };
    Err((
        Failure::DirectoryUnavailable,
        Some(format!("{} No domain controller answered: {}{only}.", events::SERVER_DOWN, passed.join(", "))),
    ))
}

/// A new LDAP session bound as the first directory's AD connector account, to its first DC
/// that answers (the preferred DCs aside: for reads before the engine runs), and that DC's
/// name.
pub(crate) async fn connector_session(
    cfg: &Config,
    tls: &Arc<rustls::ClientConfig>,
    unsealed: bool,
) -> Result<(ldap3::Ldap, String), Refusal> {
    let mut last = None;
    let account = (cfg.connector_dn.clone(), cfg.connector_password.clone());
    for dc in cfg.dcs() {
        match connector_session_to(&account, &dc, tls, unsealed).await {
            Err((Failure::DirectoryUnavailable, d)) => last = Some((Failure::DirectoryUnavailable, d)),
            other => return other.map(|l| (l, dc.name)),
        }
    }
    Err(last.unwrap_or((Failure::DirectoryUnavailable, None)))
}

/// The connector account's text when AD refuses its bind (the sync's 6000, "no-start-credentials").
pub(crate) const CONNECTOR_SIGN_IN: &str = "The AD connector account could not sign in";

/// A new LDAP session to one DC bound as a connector account (DN, password): LDAPS, or plain
/// LDAP when the "unsealed" fault asks for it.
pub(crate) async fn connector_session_to(
    (account_dn, password): &(String, String),
    dc: &crate::dcs::DcEndpoint,
    tls: &Arc<rustls::ClientConfig>,
    unsealed: bool,
) -> Result<ldap3::Ldap, Refusal> {
    let url = match (&dc.ldap, unsealed) {
        (Some(plain), true) => plain.clone(),
        _ => dc.ldaps.replace("127.0.0.1", "localhost"),
    };
    // Windows' LDAP client says "server down" for a refused connection and an untrusted
    // certificate alike; the cause follows in brackets
    let unavailable = |e: String| (Failure::DirectoryUnavailable, Some(format!("{} ({url}: {e})", events::SERVER_DOWN)));
    let (conn, mut l) = ldap_dial::connect(&url, ldap_dial::Security::Url, tls.clone(), Duration::from_secs(5))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    ldap3::drive!(conn);
    let r = l.with_timeout(LDAP_OP_LIMIT).simple_bind(account_dn, password).await.map_err(|e| unavailable(e.to_string()))?;
    if r.rc != 0 {
        return Err((Failure::Permissions, Some(format!("{CONNECTOR_SIGN_IN}: {}", r.text))));
    }
    Ok(l)
}

/// How a request names its user: Connect by the sourceAnchor, Cloud Sync by the DN.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) anchor: &'a str,
    pub(crate) dn: Option<&'a str>,
}

/// The user found for a request: the connector that holds it, its connection, DN and
/// userAccountControl.
pub(crate) struct Found {
    pub(crate) connector: Arc<Connector>,
    pub(crate) ldap: ldap3::Ldap,
    pub(crate) dn: String,
    pub(crate) uac: i64,
}

/// The connection and the object for a request's user. Connect looks in the connectors whose
/// connector space holds the anchor (all of them when none does yet) and routes to the
/// enabled account ([`crate::connectors::route`]); Cloud Sync's agent in its one domain.
pub(crate) async fn connect_and_find(inner: &Inner, target: Target<'_>) -> Result<Found, Refusal> {
    let all = inner.connectors();
    if inner.cfg.kind == relay::AgentKind::CloudSync || all.len() == 1 {
        let c = all[0].clone();
        let (ldap, dn, uac) = find_in(inner, &c, target).await?;
        return Ok(Found { connector: c, ldap, dn, uac });
    }
    let mut holding = vec![];
    for c in &all {
        if c.sync.lock().await.objects.contains_key(target.anchor) {
            holding.push(c.clone());
        }
    }
    let candidates = if holding.is_empty() { all } else { holding };
    let mut found = vec![];
    let mut failed = None;
    for c in candidates {
        match find_in(inner, &c, target).await {
            Ok((ldap, dn, uac)) => found.push(Found { connector: c, ldap, dn, uac }),
            Err((Failure::UserNotFound, _)) => {}
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    let seen: Vec<(usize, bool)> = found.iter().enumerate().map(|(i, f)| (i, f.uac & UF_ACCOUNTDISABLE == 0)).collect();
    match crate::connectors::route(&seen) {
        crate::connectors::Route::To(i) => Ok(found.swap_remove(i)),
        crate::connectors::Route::MultiMatch => {
            let where_: Vec<String> = found.iter().map(|f| format!("{} ({})", f.dn, f.connector.name)).collect();
            Err((Failure::MultiMatch, Some(format!("{} Enabled accounts: {}.", events::MULTIPLE_MATCHES, where_.join("; ")))))
        }
        crate::connectors::Route::NotFound => Err(failed.unwrap_or((Failure::UserNotFound, Some(events::NOT_FOUND.into())))),
    }
}

/// One connector's lookup. A reused connection that went bad (the DC restarted, or dropped
/// idle connections) costs one more try on a new one, not a failure.
async fn find_in(inner: &Inner, c: &Connector, target: Target<'_>) -> Result<(ldap3::Ldap, String, i64), Refusal> {
    let (mut l, fresh) = ldap(inner, c).await?;
    match find_target(&mut l, &inner.cfg, &c.base_dn, target).await {
        Ok((dn, uac)) => Ok((l, dn, uac)),
        Err((Failure::DirectoryUnavailable, _)) if !fresh => {
            *c.ldap.lock().await = None;
            let (mut l, _) = ldap(inner, c).await?;
            let (dn, uac) = find_target(&mut l, &inner.cfg, &c.base_dn, target).await?;
            Ok((l, dn, uac))
        }
        Err(e) => Err(e),
    }
}

async fn find_target(l: &mut ldap3::Ldap, cfg: &Config, base_dn: &str, target: Target<'_>) -> Result<(String, i64), Refusal> {
    match cfg.kind {
        relay::AgentKind::ConnectSync => find(l, cfg.source_anchor, base_dn, target.anchor).await,
        relay::AgentKind::CloudSync => find_by_dn(l, target.dn.unwrap_or_default()).await,
    }
}

/// Cloud Sync's lookup: the user at the DN the last sync recorded (support cases: it binds
/// the object by DN through .NET's UserPrincipal, with no sourceAnchor join), so a user whose
/// in-scope OU was renamed since is not found — the documented blind spot.
pub(crate) async fn find_by_dn(l: &mut ldap3::Ldap, dn: &str) -> Result<(String, i64), Refusal> {
    // (the lab's words: Microsoft publishes none of Cloud Sync's writeback errors)
    let not_found = || (Failure::UserNotFound, Some(format!("No user object at the recorded distinguished name {dn:?}.")));
    if dn.is_empty() {
        return Err(not_found());
    }
    l.with_timeout(LDAP_OP_LIMIT);
    let res = l.search(dn, Scope::Base, "(objectClass=user)", vec!["userAccountControl"]).await;
    let ldap3::SearchResult(entries, r) =
        res.map_err(|e| (Failure::DirectoryUnavailable, Some(format!("{} ({e})", events::SERVER_DOWN))))?;
    if r.rc == 32 || entries.is_empty() {
        return Err(not_found());
    }
    let e = SearchEntry::construct(entries.into_iter().next().expect("one"));
    let uac = e.attrs.get("userAccountControl").and_then(|v| v.first()).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok((e.dn, uac))
}

/// The AD object for a sourceAnchor (base64 of the anchor attribute's 16 bytes): by AD's
/// `<GUID=…>` name for objectGUID, by a search of the domain for mS-DS-ConsistencyGuid
/// (two objects with one anchor: 33003, as Connect refuses to guess).
pub(crate) async fn find(l: &mut ldap3::Ldap, source_anchor: SourceAnchor, base_dn: &str, anchor: &str) -> Result<(String, i64), Refusal> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(anchor).map_err(|_| (Failure::UserNotFound, None))?;
    let guid: [u8; 16] = bytes.try_into().map_err(|_| (Failure::UserNotFound, None))?;
    let attrs = vec!["userAccountControl"];
    l.with_timeout(LDAP_OP_LIMIT);
    let res = match source_anchor {
        SourceAnchor::ObjectGuid => {
            let base = format!("<GUID={}>", uuid::Uuid::from_bytes_le(guid));
            l.search(&base, Scope::Base, "(objectClass=user)", attrs).await
        }
        SourceAnchor::ConsistencyGuid => {
            let value: String = guid.iter().map(|b| format!("\\{b:02x}")).collect();
            let filter = format!("(&(objectClass=user)(mS-DS-ConsistencyGuid={value}))");
            l.search(base_dn, Scope::Subtree, &filter, attrs).await
        }
    };
    let ldap3::SearchResult(entries, r) =
        res.map_err(|e| (Failure::DirectoryUnavailable, Some(format!("{} ({e})", events::SERVER_DOWN))))?;
    if r.rc == 32 || entries.is_empty() {
        return Err((Failure::UserNotFound, Some(events::NOT_FOUND.into())));
    }
    if entries.len() > 1 {
        return Err((Failure::MultiMatch, Some(events::DUPLICATE_ANCHOR.into())));
    }
    let e = SearchEntry::construct(entries.into_iter().next().expect("one"));
    let uac = e.attrs.get("userAccountControl").and_then(|v| v.first()).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok((e.dn, uac))
}

pub(crate) const UF_ACCOUNTDISABLE: i64 = 0x2;
pub(crate) const UF_DONT_EXPIRE_PASSWD: i64 = 0x10000;

pub(crate) fn unicode_pwd(p: &str) -> Vec<u8> {
    format!("\"{p}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Why a write did not happen: AD (or the way to it) refused it, or the commit point
/// turned it away before anything was sent.
pub(crate) enum Stop {
    Refusal(Refusal),
    Refused(Refused),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Stop {
        Stop::Refusal(r)
    }
}

pub(crate) async fn write(
    inner: &Inner,
    link: &CancellationToken,
    target: Target<'_>,
    op: &Operation,
    tracking: &str,
    deadline_ms: u64,
) -> Result<(), Stop> {
    let wrong_key = inner.wrong_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let open = |s: &relay::Sealed| {
        match &wrong_key {
            // the data key was wrapped for the registered public key: RSA-OAEP fails here
            Some(k) => s.open(k),
            None => s.open_cached(&inner.reg.key, &inner.keys),
        }
        .map_err(|_| (Failure::Decryption, Some(events::KEY_MISMATCH.to_string())))
    };
    let trace = |from, to, text: String| inner.log.trace(tracking, from, to, text);
    let lookup = match inner.cfg.kind {
        relay::AgentKind::ConnectSync => format!("search for sourceAnchor {} (LDAPS, as the connector)", target.anchor),
        relay::AgentKind::CloudSync => format!("look up {} (LDAPS, as {CLOUD_SYNC_GMSA})", target.dn.unwrap_or("(no DN)")),
    };
    trace("engine", "AD DS", lookup);
    let Found { connector, ldap: mut l, dn, uac } = match connect_and_find(inner, target).await {
        Ok(found) => found,
        Err(e) => {
            trace("AD DS", "engine", e.1.clone().unwrap_or_else(|| "not found".into()));
            return Err(e.into());
        }
    };
    trace("AD DS", "engine", format!("{dn} (userAccountControl {uac})"));
    // the connector the user came from must have password management on: one added after
    // writeback was enabled does not, until writeback is turned off and on
    if !connector.writeback() {
        let why = format!(
            "{} [lab note: the connector for {} has no password writeback: it was added after password writeback was enabled]",
            events::PWD_SYNC_NOT_ENABLED,
            connector.name
        );
        return Err((Failure::Configuration, Some(why)).into());
    }
    // Connect binds the object by its ADSI path before it writes: a DN that path cannot
    // carry fails there, whatever the account's state
    if events::adsi_reserved(&dn) {
        return Err((Failure::Unknown, Some(format!("{} ({dn})", events::BAD_PATHNAME))).into());
    }
    if uac & UF_ACCOUNTDISABLE != 0 {
        return Err((Failure::AccountDisabled, None).into());
    }
    let pwd = b"unicodePwd".to_vec();
    let (mods, hints) = match op {
        Operation::Reset { password, unlock, force_change, .. } => {
            let mut mods = vec![Mod::Replace(pwd, HashSet::from([unicode_pwd(&open(password)?)]))];
            if *unlock {
                mods.push(Mod::Replace(b"lockoutTime".to_vec(), HashSet::from([b"0".to_vec()])));
            }
            // forced-change writeback: not for accounts whose password never expires
            if *force_change && uac & UF_DONT_EXPIRE_PASSWD == 0 {
                mods.push(Mod::Replace(b"pwdLastSet".to_vec(), HashSet::from([b"0".to_vec()])));
            }
            (mods, true)
        }
        Operation::Change { old, new } => (
            vec![
                Mod::Delete(pwd.clone(), HashSet::from([unicode_pwd(&open(old)?)])),
                Mod::Add(pwd, HashSet::from([unicode_pwd(&open(new)?)])),
            ],
            false,
        ),
        Operation::Unlock => (vec![Mod::Replace(b"lockoutTime".to_vec(), HashSet::from([b"0".to_vec()]))], false),
    };
    let written: Vec<String> = mods
        .iter()
        .map(|m| {
            let (op, attr, vals) = match m {
                Mod::Replace(a, v) => ("replace", a, Some(v)),
                Mod::Add(a, v) => ("add", a, Some(v)),
                Mod::Delete(a, v) => ("delete", a, Some(v)),
                Mod::Increment(a, _) => ("increment", a, None),
            };
            let attr = String::from_utf8_lossy(attr).to_string();
            let value = match vals {
                _ if attr == "unicodePwd" => "***".to_string(),
                Some(v) => v.iter().map(|x| String::from_utf8_lossy(x).to_string()).collect::<Vec<_>>().join(";"),
                None => String::new(),
            };
            format!("{op} {attr}={value}")
        })
        .collect();
    let with = if hints { " [policy hints 1.2.840.113556.1.4.2239]" } else { "" };
    trace("engine", "AD DS", format!("modify {dn}: {}{with}", written.join(", ")));
    // the commit point, immediately before the write (see Inner::commit); the write itself
    // gets the grace the tenant still waits after the deadline
    inner.commit(link, deadline_ms).map_err(Stop::Refused)?;
    let grace = Duration::from_millis((deadline_ms + relay::WRITE_GRACE_MS).saturating_sub(now_ms()).max(1));
    l.with_timeout(grace);
    let r = if hints {
        // LDAP_SERVER_POLICY_HINTS_OID: AD applies the whole policy (history too) to the reset
        let ctrl = ldap3::controls::RawControl {
            ctype: "1.2.840.113556.1.4.2239".into(),
            crit: true,
            val: Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
        };
        l.with_controls(vec![ctrl]).modify(&dn, mods).await
    } else {
        l.modify(&dn, mods).await
    };
    let r = r.map_err(|e| (Failure::DirectoryUnavailable, Some(format!("{} (the connection was lost: {e})", events::SERVER_DOWN))))?;
    trace("AD DS", "engine", if r.rc == 0 { "success (0)".to_string() } else { format!("{} {}", r.rc, r.text.trim()) });
    if r.rc == 0 {
        return Ok(());
    }
    let (failure, detail) = events::classify(r.rc, &r.text);
    // Connect's text first; the lab's note says which rule AD applied
    let detail = match events::plain_reason(r.rc, &r.text) {
        Some(why) => format!("{detail} [lab note: {why}]"),
        None => detail.to_string(),
    };
    Err((failure, Some(detail)).into())
}

/// The longest relay delay the fault switch takes (an hour: longer than any deadline).
pub const MAX_DELAY_MS: u64 = 3_600_000;
