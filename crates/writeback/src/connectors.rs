//! Connect's AD connectors: one per directory its wizard connected ("Connect your
//! directories": a forest's domain, with the connector account "Add Directory" made for it).
//! Each keeps its own DCs and preferred DCs, its own LDAP connection, its own connector space
//! and watermarks, and whether password writeback was enabled on it. The metaverse joins
//! what the connectors import by sourceAnchor: an account moved to another forest with its
//! mS-DS-ConsistencyGuid is one cloud user, whose attributes and password come from the
//! enabled account (Connect's `In from AD - User AccountEnabled` rule); a writeback goes to
//! the connector whose object carries the anchor, and two enabled accounts are refused
//! (33003, "Multiple matches found"), as Connect will not guess.
//!
//! The rules ([`route`], [`winner`], [`merge`]) are plain functions; the engine does the LDAP
//! around them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use relay::SyncedUser;

use crate::dcs::{DcEndpoint, DcSettings};
use crate::sync::SyncState;

/// A directory beside the first, as Connect's wizard connects it.
#[derive(Clone, Debug)]
pub struct DirectoryConfig {
    /// The domain's DNS name (the connector's name: `fabrikam.example`).
    pub name: String,
    /// Its domain partition.
    pub base_dn: String,
    /// Its DCs, in the order the domain lists them.
    pub domain_controllers: Vec<DcEndpoint>,
    /// The connector account made for it, and the password Connect keeps for it.
    pub connector_dn: String,
    pub connector_password: String,
    /// The OUs directory sync covers there (empty: the whole domain).
    pub sync_scope: Vec<String>,
}

/// One AD connector at run time.
pub(crate) struct Connector {
    pub(crate) name: String,
    pub(crate) base_dn: String,
    pub(crate) dcs: Vec<DcEndpoint>,
    pub(crate) account_dn: String,
    /// As Synchronization Service Manager keeps it (changed there after AD's changed).
    pub(crate) password: Mutex<String>,
    pub(crate) sync_scope: Vec<String>,
    /// Its LDAP connection, reused across operations (ldap3 multiplexes).
    pub(crate) ldap: tokio::sync::Mutex<Option<ldap3::Ldap>>,
    pub(crate) dc_settings: Mutex<DcSettings>,
    /// The DC the connection talks to.
    pub(crate) current_dc: Mutex<Option<String>>,
    /// Its connector space, one cycle at a time.
    pub(crate) sync: tokio::sync::Mutex<SyncState>,
    /// Password writeback (and password management) enabled on this connector: set by
    /// onboarding for every connector there is; one added later has it off (0x8023061f).
    pub(crate) writeback: AtomicBool,
    /// Its last run's status as Synchronization Service Manager shows it: `success`,
    /// `no-start-credentials`, `stopped-server-down` (None: it has not run).
    pub(crate) last_run: Mutex<Option<&'static str>>,
}

impl Connector {
    pub(crate) fn new(d: DirectoryConfig, writeback: bool) -> Connector {
        Connector {
            name: d.name,
            base_dn: d.base_dn,
            dcs: d.domain_controllers,
            account_dn: d.connector_dn,
            password: Mutex::new(d.connector_password),
            sync_scope: d.sync_scope,
            ldap: Default::default(),
            dc_settings: Default::default(),
            current_dc: Default::default(),
            sync: Default::default(),
            writeback: AtomicBool::new(writeback),
            last_run: Mutex::new(None),
        }
    }

    pub(crate) fn password(&self) -> String {
        self.password.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub(crate) fn writeback(&self) -> bool {
        self.writeback.load(Ordering::SeqCst)
    }

    pub(crate) fn current_dc(&self) -> Option<String> {
        self.current_dc.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub(crate) fn set_current_dc(&self, dc: Option<String>) {
        *self.current_dc.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = dc;
    }

    pub(crate) fn last_run(&self) -> Option<&'static str> {
        *self.last_run.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn set_last_run(&self, status: &'static str) {
        *self.last_run.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(status);
    }

    pub(crate) fn dc_settings(&self) -> DcSettings {
        self.dc_settings.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Drops the connection: the next operation binds anew (a new password, new DC settings,
    /// "restart the ADSync service").
    pub(crate) async fn restart(&self) {
        *self.ldap.lock().await = None;
        self.set_current_dc(None);
    }
}

/// Where a writeback goes, from the objects carrying its anchor in each connector (the
/// connector's position, and whether its account is enabled).
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    To(usize),
    NotFound,
    /// More than one enabled account: 33003.
    MultiMatch,
}

/// The enabled account's connector; a disabled account alone still answers (AD then says it is
/// disabled: 33005); two enabled ones are refused.
pub fn route(found: &[(usize, bool)]) -> Route {
    let enabled: Vec<usize> = found.iter().filter(|(_, on)| *on).map(|(i, _)| *i).collect();
    match (found.first(), enabled.as_slice()) {
        (None, _) => Route::NotFound,
        (Some(_), [one]) => Route::To(*one),
        (Some((first, _)), []) => Route::To(*first),
        (Some(_), _) => Route::MultiMatch,
    }
}

/// The contribution the metaverse takes for a joined user: the first enabled account, else the
/// first (connectors in the wizard's order).
pub fn winner(contributions: &[(&str, bool)]) -> Option<usize> {
    contributions.iter().position(|(_, on)| *on).or(if contributions.is_empty() { None } else { Some(0) })
}

/// One connector's view for [`merge`]: its name, its joined users by anchor, and the anchors
/// its plan exported (upserted) or released (deleted) this cycle.
pub struct View<'a> {
    pub name: &'a str,
    pub users: &'a HashMap<String, SyncedUser>,
    pub upserted: HashSet<&'a str>,
    pub deleted: HashSet<&'a str>,
}

/// What the metaverse exports in a cycle.
#[derive(Debug, Default)]
pub struct Merged {
    pub upserts: Vec<SyncedUser>,
    pub deletes: Vec<String>,
    /// Anchors that changed hands: (anchor, the connector now contributing). Their password
    /// now comes from that connector's account: hash sync sends it again.
    pub handed_over: Vec<(String, String)>,
}

/// The metaverse's export for a cycle: for each anchor a connector touched (or that lost the
/// connector that held it: `orphans`), the winning contribution when it changed or changed
/// hands; a delete when no connector holds it any more. `owners` records each anchor's
/// contributing connector.
pub fn merge(owners: &mut HashMap<String, String>, views: &[View], orphans: &[String]) -> Merged {
    let mut touched: Vec<&str> = vec![];
    for v in views {
        for a in v.upserted.iter().chain(v.deleted.iter()) {
            if !touched.contains(a) {
                touched.push(a);
            }
        }
    }
    for a in orphans {
        if !touched.contains(&a.as_str()) {
            touched.push(a);
        }
    }
    touched.sort_unstable();
    let mut m = Merged::default();
    for a in touched {
        let holders: Vec<(&View, &SyncedUser)> = views.iter().filter_map(|v| v.users.get(a).map(|u| (v, u))).collect();
        let contributions: Vec<(&str, bool)> = holders.iter().map(|(v, u)| (v.name, u.account_enabled)).collect();
        match winner(&contributions) {
            None => {
                owners.remove(a);
                m.deletes.push(a.to_string());
            }
            Some(w) => {
                let (v, u) = holders[w];
                let before = owners.insert(a.to_string(), v.name.to_string());
                if before.as_deref().is_some_and(|b| b != v.name) {
                    m.handed_over.push((a.to_string(), v.name.to_string()));
                }
                if v.upserted.contains(a) || before.as_deref() != Some(v.name) {
                    m.upserts.push(u.clone());
                }
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(anchor: &str, upn: &str, enabled: bool) -> SyncedUser {
        SyncedUser {
            anchor: anchor.into(),
            user_principal_name: upn.into(),
            display_name: upn.into(),
            given_name: None,
            surname: None,
            mail: None,
            account_enabled: enabled,
            sam_account_name: upn.into(),
            domain_name: String::new(),
            distinguished_name: format!("CN={upn}"),
            security_identifier: String::new(),
        }
    }

    #[test]
    fn a_writeback_goes_to_the_enabled_account_and_two_enabled_are_refused() {
        assert_eq!(route(&[]), Route::NotFound);
        assert_eq!(route(&[(1, true)]), Route::To(1));
        assert_eq!(route(&[(0, false)]), Route::To(0), "a disabled account alone: AD answers 33005");
        assert_eq!(route(&[(0, false), (1, true)]), Route::To(1), "the migrated user's enabled account");
        assert_eq!(route(&[(0, true), (1, false)]), Route::To(0));
        assert_eq!(route(&[(0, false), (2, false)]), Route::To(0));
        assert_eq!(route(&[(0, true), (1, true)]), Route::MultiMatch);
    }

    #[test]
    fn the_metaverse_takes_the_enabled_account_first_then_the_first_connector() {
        assert_eq!(winner(&[]), None);
        assert_eq!(winner(&[("a", false), ("b", true)]), Some(1));
        assert_eq!(winner(&[("a", true), ("b", true)]), Some(0));
        assert_eq!(winner(&[("a", false), ("b", false)]), Some(0));
    }

    fn view<'a>(name: &'a str, users: &'a HashMap<String, SyncedUser>, up: &[&'a str], del: &[&'a str]) -> View<'a> {
        View { name, users, upserted: up.iter().copied().collect(), deleted: del.iter().copied().collect() }
    }

    #[test]
    fn merge_exports_a_joined_user_once_and_hands_it_over_when_its_account_goes() {
        let mut owners = HashMap::new();
        // one connector: its upserts and deletes pass through unchanged
        let a: HashMap<String, SyncedUser> = [("X".to_string(), user("X", "x@a", true))].into();
        let m = merge(&mut owners, &[view("a", &a, &["X"], &[])], &[]);
        assert_eq!((m.upserts.len(), m.deletes.len(), m.handed_over.len()), (1, 0, 0));
        assert_eq!(owners["X"], "a");
        // the same anchor joined from b, disabled there: nothing new exported
        let b: HashMap<String, SyncedUser> = [("X".to_string(), user("X", "x@b", false))].into();
        let m = merge(&mut owners, &[view("a", &a, &[], &[]), view("b", &b, &["X"], &[])], &[]);
        assert!(m.upserts.is_empty() && m.deletes.is_empty() && m.handed_over.is_empty(), "{m:?}");
        // a's account disabled, b's enabled (the migration's cut-over): b's attributes go out
        let a: HashMap<String, SyncedUser> = [("X".to_string(), user("X", "x@a", false))].into();
        let b: HashMap<String, SyncedUser> = [("X".to_string(), user("X", "x@b", true))].into();
        let m = merge(&mut owners, &[view("a", &a, &["X"], &[]), view("b", &b, &["X"], &[])], &[]);
        assert_eq!(m.upserts.iter().map(|u| u.user_principal_name.as_str()).collect::<Vec<_>>(), ["x@b"]);
        assert_eq!(m.handed_over, [("X".to_string(), "b".to_string())], "b's password goes out");
        assert_eq!(owners["X"], "b");
        // b's object deleted: a's (disabled) account is what remains, handed over
        let empty = HashMap::new();
        let m = merge(&mut owners, &[view("a", &a, &[], &[]), view("b", &empty, &[], &["X"])], &[]);
        assert_eq!((m.upserts.len(), m.deletes.len(), owners["X"].as_str()), (1, 0, "a"));
        assert_eq!(m.handed_over, [("X".to_string(), "a".to_string())]);
        // a's deleted too: the cloud user goes
        let m = merge(&mut owners, &[view("a", &empty, &[], &["X"])], &[]);
        assert_eq!((m.upserts.len(), m.deletes), (0, vec!["X".to_string()]));
        assert!(owners.is_empty());
    }

    #[test]
    fn a_removed_connectors_users_leave_the_cloud_unless_another_holds_them() {
        let mut owners: HashMap<String, String> = [("X".to_string(), "b".to_string()), ("Y".to_string(), "b".to_string())].into();
        let a: HashMap<String, SyncedUser> = [("Y".to_string(), user("Y", "y@a", true))].into();
        let m = merge(&mut owners, &[view("a", &a, &[], &[])], &["X".into(), "Y".into()]);
        assert_eq!(m.deletes, ["X"]);
        assert_eq!(m.upserts.iter().map(|u| u.anchor.as_str()).collect::<Vec<_>>(), ["Y"]);
        assert_eq!(owners.get("Y").map(String::as_str), Some("a"));
    }
}
