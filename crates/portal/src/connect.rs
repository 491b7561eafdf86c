//! Microsoft Entra Connect's configuration wizard, the pages of it that password writeback's
//! tutorial walks: Configure → Customize synchronization options → Connect to Microsoft Entra
//! ID (a Global Administrator) → Connect your directories → Domain and OU filtering →
//! Optional features → Ready to configure → Configure → Exit. Configuring turns the engine's
//! Password writeback on (or off) through `/lab/engine/control` with the credentials given on
//! the second page, as Connect onboards with them (events 31004 → 31017 → 31018 → 31005).
//! The task **Change user sign-in** (Tasks → Connect to Microsoft Entra ID → User sign-in →
//! Configure) switches between password hash sync and pass-through authentication through
//! `/lab/engine/sign-in`, which installs Connect's authentication agent when it is needed.
//!
//! The wizard's progress is kept per administrator session, in memory; the password typed on
//! its sign-in page never leaves this process except to the token endpoint and the engine.

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::admin::signed_in;
use crate::{Shared, render, render_status};

/// The wizard's pages, in order: (path segment, title in the left-hand list).
const PAGES: [(&str, &str); 6] = [
    ("tasks", "Tasks"),
    ("azure", "Connect to Microsoft Entra ID"),
    ("directories", "Connect your directories"),
    ("filtering", "Domain and OU filtering"),
    ("features", "Optional features"),
    ("configure", "Configure"),
];

/// The pages of the task "Change user sign-in".
const SIGN_IN_PAGES: [(&str, &str); 4] =
    [("tasks", "Tasks"), ("azure", "Connect to Microsoft Entra ID"), ("signin", "User sign-in"), ("configure", "Configure")];

/// One administrator's walk through the wizard.
#[derive(Clone, Debug, Default)]
pub(crate) struct Wizard {
    /// The Global Administrator given on "Connect to Microsoft Entra ID" (upn, password).
    azure: Option<(String, String)>,
    /// Password writeback as the features page left it (None: not visited yet).
    writeback: Option<bool>,
    /// The task is "Change user sign-in" (else "Customize synchronization options").
    sign_in_task: bool,
    /// The sign-in method the User sign-in page chose: `phs`, `pta`, or None for "Do not
    /// configure".
    sign_in: Option<String>,
    /// Directories "Connect your directories" added or removed, applied at Configure.
    add: Vec<String>,
    remove: Vec<String>,
}

/// How many wizards are kept at once (the oldest goes first).
const KEPT: usize = 100;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/portal/connect", get(|| async { Redirect::to("/portal/connect/tasks") }))
        .route("/portal/connect/{page}", get(page).post(next))
}

#[derive(Template)]
#[template(path = "connect.html")]
struct ConnectPage {
    page: String,
    steps: Vec<(String, String, bool)>,
    error: Option<String>,
    user: String,
    directory: String,
    connector: String,
    /// The connected directories: (name, connector account, password writeback, to be removed).
    directories: Vec<(String, String, bool, bool)>,
    /// Directories the server reaches that are not connected (Add Directory offers them),
    /// and those chosen to be added.
    available: Vec<String>,
    adding: Vec<String>,
    /// (OU DN, synced)
    ous: Vec<(String, bool)>,
    hash_sync: bool,
    writeback: bool,
    /// Writeback as it is on the sync side now.
    writeback_now: bool,
    /// What Configure did ("Password writeback enabled.").
    outcome: Option<String>,
    /// The task is "Change user sign-in".
    sign_in_task: bool,
    /// The tenant's sign-in method now (`phs`, `pta`) and as chosen on the User sign-in page
    /// (`none`: Do not configure).
    sign_in_now: String,
    sign_in: String,
    /// The authentication agents (machine name, Active).
    agents: Vec<(String, bool)>,
}

impl ConnectPage {
    fn new(page: &str) -> ConnectPage {
        ConnectPage::for_task(page, false)
    }

    fn for_task(page: &str, sign_in_task: bool) -> ConnectPage {
        let pages: &[(&str, &str)] = if sign_in_task { &SIGN_IN_PAGES } else { &PAGES };
        ConnectPage {
            page: page.to_string(),
            steps: pages.iter().map(|(p, t)| (p.to_string(), t.to_string(), *p == page)).collect(),
            error: None,
            user: String::new(),
            directory: String::new(),
            connector: String::new(),
            directories: vec![],
            available: vec![],
            adding: vec![],
            ous: vec![],
            hash_sync: false,
            writeback: false,
            writeback_now: false,
            outcome: None,
            sign_in_task,
            sign_in_now: String::new(),
            sign_in: String::new(),
            agents: vec![],
        }
    }
}

impl crate::Portal {
    fn wizards(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Wizard>> {
        self.wizards.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wizard(&self, headers: &HeaderMap) -> Wizard {
        self.admins.id(headers).and_then(|id| self.wizards().get(&id).cloned()).unwrap_or_default()
    }

    fn keep_wizard(&self, headers: &HeaderMap, w: Wizard) {
        let Some(id) = self.admins.id(headers) else { return };
        let mut all = self.wizards();
        if all.len() >= KEPT
            && !all.contains_key(&id)
            && let Some(k) = all.keys().next().cloned()
        {
            all.remove(&k);
        }
        all.insert(id, w);
    }

    /// The sync side's features (Graph), as the wizard reads them with its administrator.
    async fn sync_features(&self, token: &str) -> Result<serde_json::Value, String> {
        let path = format!("/v1.0/directory/onPremisesSynchronization/{}", self.cfg.tenant_id);
        let (status, v) = self.api(Method::GET, &path, Some(token), None).await;
        if status == 200 { Ok(v["features"].clone()) } else { Err(crate::api_error(&v).1) }
    }

    /// The tenant's sign-in method (`phs` or `pta`) and its authentication agents.
    pub(crate) async fn pass_through(&self, token: &str) -> Result<(String, Vec<(String, bool)>), String> {
        let (status, v) = self.api(Method::GET, "/lab/pta", Some(token), None).await;
        if status != 200 {
            return Err(crate::api_error(&v).1);
        }
        let method = if v["enabled"].as_bool() == Some(true) { "pta" } else { "phs" };
        let agents = v["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| (a["machineName"].as_str().unwrap_or_default().to_string(), a["status"] == "active"))
            .collect();
        Ok((method.to_string(), agents))
    }
}

/// Who may run Entra Connect's wizard: a Global Administrator or a Hybrid Identity
/// Administrator (Microsoft's "Azure AD Connect: Accounts and permissions").
pub(crate) const CONNECT_ROLES: &[&str] = &[crate::admin::GLOBAL_ADMINISTRATOR, crate::admin::HYBRID_IDENTITY_ADMINISTRATOR];

async fn page(State(p): State<Shared>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/connect/tasks", CONNECT_ROLES);
    let w = p.wizard(&headers);
    // the wizard's order: a page needs the sign-in before it
    if !PAGES.iter().chain(SIGN_IN_PAGES.iter()).any(|(n, _)| *n == name) {
        return (StatusCode::NOT_FOUND, "No such page in the wizard.").into_response();
    }
    if !matches!(name.as_str(), "tasks" | "azure") && w.azure.is_none() {
        return Redirect::to("/portal/connect/azure").into_response();
    }
    if name == "azure" && w.azure.is_none() {
        // the user name of the pages' own sign-in, filled in; the password is asked again
        let mut page = ConnectPage::for_task("azure", w.sign_in_task);
        page.user = admin;
        return render(&page);
    }
    show(&p, &token, &w, &name, None).await
}

async fn show(p: &crate::Portal, token: &str, w: &Wizard, name: &str, error: Option<String>) -> Response {
    let mut page = ConnectPage::for_task(name, w.sign_in_task);
    page.user = w.azure.as_ref().map(|(u, _)| u.clone()).unwrap_or_default();
    page.error = error;
    match name {
        "directories" | "configure" if !w.sign_in_task => {
            let (_, v) = p.api(Method::GET, "/lab/engine/directories", Some(token), None).await;
            page.directories = v["value"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    let name = d["name"].as_str().unwrap_or_default().to_string();
                    let removing = w.remove.iter().any(|r| r.eq_ignore_ascii_case(&name));
                    (name, d["connectorAccount"].as_str().unwrap_or_default().to_string(), d["passwordWriteback"] == true, removing)
                })
                .collect();
            page.available = v["available"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_string))
                .filter(|n| !w.add.contains(n))
                .collect();
            page.adding = w.add.clone();
            if let Some(a) = &p.cfg.adds {
                // (a lab without an engine: the directory the pages read)
                page.directory = a.base_dn.clone();
                page.connector = "the AD DS connector account (MSOL_…)".into();
            }
            if name == "configure" {
                // the features page's part of the summary
                if let Ok(f) = p.sync_features(token).await {
                    page.hash_sync = f["passwordSyncEnabled"].as_bool().unwrap_or(false);
                    page.writeback_now = f["passwordWritebackEnabled"].as_bool().unwrap_or(false);
                    page.writeback = w.writeback.unwrap_or(page.writeback_now);
                }
            }
        }
        "filtering" => {
            let (_, engine) = p.api(Method::GET, "/lab/engine", Some(token), None).await;
            let scope: Vec<String> =
                engine["syncScope"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_lowercase)).collect();
            if let Some(a) = &p.cfg.adds {
                page.directory = a.base_dn.clone();
                page.connector = "the AD DS connector account (MSOL_…)".into();
                match crate::onprem::ous(Some(a)).await {
                    Ok(ous) => {
                        page.ous = ous
                            .into_iter()
                            .map(|dn| {
                                let synced = scope.iter().any(|s| dn.to_lowercase() == *s || dn.to_lowercase().ends_with(&format!(",{s}")));
                                (dn, synced)
                            })
                            .collect()
                    }
                    Err(e) => page.error = Some(format!("Could not read the directory: {e}")),
                }
            }
        }
        "signin" | "configure" if w.sign_in_task => match p.pass_through(token).await {
            Ok((now, agents)) => {
                page.sign_in = w.sign_in.clone().unwrap_or_else(|| if name == "signin" { now.clone() } else { "none".into() });
                page.sign_in_now = now;
                page.agents = agents;
            }
            Err(e) => page.error = Some(e),
        },
        "features" => match p.sync_features(token).await {
            Ok(f) => {
                page.hash_sync = f["passwordSyncEnabled"].as_bool().unwrap_or(false);
                page.writeback_now = f["passwordWritebackEnabled"].as_bool().unwrap_or(false);
                page.writeback = w.writeback.unwrap_or(page.writeback_now);
            }
            Err(e) => page.error = Some(e),
        },
        _ => {}
    }
    render(&page)
}

#[derive(Deserialize)]
struct NextForm {
    /// "Connect your directories": Add Directory (a name) or Remove (a name).
    add: Option<String>,
    remove: Option<String>,
    task: Option<String>,
    user: Option<String>,
    password: Option<String>,
    password_writeback: Option<String>,
    sign_in: Option<String>,
}

async fn next(State(p): State<Shared>, headers: HeaderMap, Path(name): Path<String>, Form(f): Form<NextForm>) -> Response {
    let (_, token) = signed_in!(p, headers, "/portal/connect/tasks", CONNECT_ROLES);
    let mut w = p.wizard(&headers);
    let go = |to: &str| Redirect::to(&format!("/portal/connect/{to}")).into_response();
    match name.as_str() {
        "tasks" => match f.task.as_deref() {
            Some(task @ ("customize" | "signin")) => {
                // a new task: a new walk (the credentials are asked again, as Connect does)
                p.keep_wizard(&headers, Wizard { sign_in_task: task == "signin", ..Wizard::default() });
                go("azure")
            }
            _ => {
                let msg = "The lab's wizard offers \"Customize synchronization options\" and \"Change user sign-in\": choose one of them.";
                render_status(StatusCode::BAD_REQUEST, &with_error("tasks", msg))
            }
        },
        "azure" => {
            let (user, password) = (f.user.unwrap_or_default().trim().to_string(), f.password.unwrap_or_default());
            let (status, body) = p.token(&user, &password).await;
            let Some(t) = body["access_token"].as_str().filter(|_| status == 200) else {
                let text =
                    body["error_description"].as_str().unwrap_or("The sign-in failed.").lines().next().unwrap_or_default().to_string();
                let mut page = with_error("azure", &text);
                page.user = user;
                return render_status(StatusCode::UNAUTHORIZED, &page);
            };
            // Connect needs a Global Administrator (or Hybrid Identity Administrator) here
            if let Err(e) = p.sync_features(t).await {
                let msg = format!("{user} cannot configure synchronization: {e} Sign in with a Global Administrator.");
                // the name stays, to be corrected rather than typed again
                let mut page = with_error("azure", &msg);
                page.user = user;
                return render_status(StatusCode::FORBIDDEN, &page);
            }
            let sign_in_task = w.sign_in_task;
            w.azure = Some((user, password));
            p.keep_wizard(&headers, w);
            go(if sign_in_task { "signin" } else { "directories" })
        }
        "signin" => match f.sign_in.as_deref() {
            Some(m @ ("phs" | "pta" | "none")) => {
                w.sign_in = (m != "none").then(|| m.to_string());
                p.keep_wizard(&headers, w);
                go("configure")
            }
            _ => {
                let mut page = with_error("signin", "Choose how users sign in.");
                page.sign_in_task = true;
                render_status(StatusCode::BAD_REQUEST, &page)
            }
        },
        "directories" => match (f.add.filter(|n| crate::dns_name(n)), f.remove.filter(|n| crate::dns_name(n))) {
            (Some(a), _) => {
                if !w.add.contains(&a) {
                    w.add.push(a);
                }
                p.keep_wizard(&headers, w);
                go("directories")
            }
            (_, Some(r)) => {
                // a directory added in this walk is simply not added; a connected one is removed
                if let Some(i) = w.add.iter().position(|a| a.eq_ignore_ascii_case(&r)) {
                    w.add.remove(i);
                } else if !w.remove.contains(&r) {
                    w.remove.push(r);
                }
                p.keep_wizard(&headers, w);
                go("directories")
            }
            _ => go("filtering"),
        },
        "filtering" => go("features"),
        "features" => {
            w.writeback = Some(f.password_writeback.is_some());
            p.keep_wizard(&headers, w);
            go("configure")
        }
        "configure" => configure(&p, &headers, &token, w).await,
        _ => (StatusCode::NOT_FOUND, "No such page in the wizard.").into_response(),
    }
}

/// Configure for "Change user sign-in": the method chosen, through the engine (which installs
/// its authentication agent for PTA), as the wizard's administrator.
async fn configure_sign_in(p: &crate::Portal, headers: &HeaderMap, token: &str, w: Wizard, user: &str, password: &str) -> Response {
    let now = match p.pass_through(token).await {
        Ok((now, _)) => now,
        Err(e) => return show(p, token, &w, "configure", Some(e)).await,
    };
    let outcome = match w.sign_in.as_deref() {
        None => "Nothing to change: user sign-in is not configured by this task.".to_string(),
        Some(m) if m == now => "Nothing to change: the configuration is as you chose it.".to_string(),
        Some(m) => {
            let body = json!({ "method": m, "userPrincipalName": user, "password": password });
            let (status, answer) = p.api(Method::POST, "/lab/engine/sign-in", Some(token), Some(body)).await;
            if !(200..300).contains(&status) {
                let (_, message) = crate::api_error(&answer);
                return show(p, token, &w, "configure", Some(format!("Configuration failed: {message}"))).await;
            }
            if m == "pta" {
                "Pass-through authentication is enabled: an Authentication Agent is installed on this server and registered.".to_string()
            } else {
                "Password hash synchronization is the user sign-in method: pass-through authentication is disabled.".to_string()
            }
        }
    };
    p.keep_wizard(headers, Wizard::default());
    let mut page = ConnectPage::for_task("done", true);
    page.outcome = Some(outcome);
    render(&page)
}

fn with_error(page: &str, msg: &str) -> ConnectPage {
    let mut p = ConnectPage::new(page);
    p.error = Some(msg.to_string());
    p
}

/// Configure: what the features page changed, through the engine, as the signed-in Global
/// Administrator of the wizard's second page.
async fn configure(p: &crate::Portal, headers: &HeaderMap, token: &str, w: Wizard) -> Response {
    let Some((user, password)) = w.azure.clone() else { return Redirect::to("/portal/connect/azure").into_response() };
    if w.sign_in_task {
        return configure_sign_in(p, headers, token, w, &user, &password).await;
    }
    let now = match p.sync_features(token).await {
        Ok(f) => f["passwordWritebackEnabled"].as_bool().unwrap_or(false),
        Err(e) => return show(p, token, &w, "configure", Some(e)).await,
    };
    let want = w.writeback.unwrap_or(now);
    // the directories first (a forest added now gets password writeback only if writeback is
    // turned on after it), then the optional features
    let mut done = vec![];
    for r in &w.remove {
        let (status, answer) = p.api(Method::DELETE, &format!("/lab/engine/directories/{r}"), Some(token), None).await;
        if !(200..300).contains(&status) {
            return show(p, token, &w, "configure", Some(format!("Configuration failed: {}", crate::api_error(&answer).1))).await;
        }
        done.push(format!("{r} is removed."));
    }
    for a in &w.add {
        let (status, answer) = p.api(Method::POST, "/lab/engine/directories", Some(token), Some(json!({ "name": a }))).await;
        if !(200..300).contains(&status) {
            return show(p, token, &w, "configure", Some(format!("Configuration failed: {}", crate::api_error(&answer).1))).await;
        }
        done.push(format!("{a} is connected."));
    }
    let outcome = if want == now {
        if done.is_empty() { "Nothing to change: the configuration is as you chose it.".to_string() } else { done.join(" ") }
    } else {
        // clearing the box disables writeback and keeps Connect installed for sync
        let action = if want { "onboard" } else { "disable-writeback" };
        let body = json!({ "action": action, "userPrincipalName": user, "password": password });
        let (status, answer) = p.api(Method::POST, "/lab/engine/control", Some(token), Some(body)).await;
        if !(200..300).contains(&status) {
            let (_, message) = crate::api_error(&answer);
            return show(p, token, &w, "configure", Some(format!("Configuration failed: {message}"))).await;
        }
        done.push(if want { "Password writeback is enabled." } else { "Password writeback is disabled." }.to_string());
        done.join(" ")
    };
    // the wizard ends here: its credentials are forgotten
    p.keep_wizard(headers, Wizard::default());
    let mut page = ConnectPage::new("done");
    page.outcome = Some(outcome);
    render(&page)
}
