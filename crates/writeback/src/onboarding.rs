//! Onboarding and offboarding, as Connect's wizard does them: the administrator's token, the
//! engine's key, registration with the tenant, the sync side's writeback flag.

use super::*;

/// Onboarding, as the Connect wizard does it: a Global Administrator's token (31017), the
/// engine's key (31018), registration with the tenant, and the sync side's writeback flag
/// (31004 → 31005). Failures log 32009 (token) or 32011 (service).
pub async fn onboard(
    cfg: &Config,
    key: RsaPrivateKey,
    admin_upn: &str,
    admin_password: &str,
    log: &EventLog,
) -> Result<Registration, Error> {
    if cfg.kind == relay::AgentKind::CloudSync {
        // the provisioning agent's installer registers it; writeback itself is turned on in
        // the admin center or with Set-AADCloudSyncPasswordWritebackConfiguration
        let (http, token) = signed_in(cfg, admin_upn, admin_password, log).await?;
        let reg = register(cfg, key, &http, &token, log).await?;
        log.log(31005, format!("Agent registration succeeded: registered with the tenant as {}.", reg.engine_id), None);
        return Ok(reg);
    }
    log.log(31004, "Onboarding to the password reset service started.", None);
    let (http, token) = signed_in(cfg, admin_upn, admin_password, log).await?;
    log.log(31018, "Created the password encryption key (RSA-2048).", None);
    let reg = register(cfg, key, &http, &token, log).await?;
    writeback_on(&http, cfg, &token, log).await?;
    Ok(reg)
}

/// Onboarding's last step: the sync side's writeback flag on (31005, or 32011).
pub(crate) async fn writeback_on(http: &reqwest::Client, cfg: &Config, token: &str, log: &EventLog) -> Result<(), Error> {
    if let Err(e) = set_sync_writeback(http, cfg, token, true).await {
        log.log(32011, format!("Could not enable writeback on the sync side: {e}"), None);
        return Err(Error(format!("onboarding: {e}")));
    }
    log.log(31005, "Onboarding succeeded: password writeback is ready.", None);
    Ok(())
}

/// Connect installed with directory and password hash sync but without the "Password
/// writeback" optional feature: registered with the tenant (its sync service needs that),
/// the sync side's writeback flag left off, no onboarding events. The configuration
/// wizard's Password writeback → Configure is then [`Engine::enable_writeback`].
pub async fn install(
    cfg: &Config,
    key: RsaPrivateKey,
    admin_upn: &str,
    admin_password: &str,
    log: &EventLog,
) -> Result<Registration, Error> {
    let quiet = EventLog::new(cfg.clock.clone());
    let (http, token) = signed_in(cfg, admin_upn, admin_password, &quiet).await?;
    let reg = register(cfg, key, &http, &token, &quiet).await;
    if let Err(e) = &reg {
        log.log(32011, format!("Could not register with the tenant: {e}"), None);
    }
    reg
}

/// The wizard's "Connect to Microsoft Entra ID" page: a Global Administrator's token (31017;
/// 32011 when the tenant cannot be reached, 32009 when it refuses the credentials).
pub(crate) async fn signed_in(
    cfg: &Config,
    admin_upn: &str,
    admin_password: &str,
    log: &EventLog,
) -> Result<(reqwest::Client, String), Error> {
    match admin_session(cfg, admin_upn, admin_password).await {
        Ok(s) => {
            log.log(31017, format!("Got an authentication token for {admin_upn}."), None);
            Ok(s)
        }
        Err(SignIn::Unreachable(e)) => {
            log.log(32011, format!("Could not reach the tenant to onboard: {e}"), None);
            Err(Error(format!("onboarding: {e}")))
        }
        Err(SignIn::NoToken(codes)) => {
            log.log(32009, format!("Could not get a token for {admin_upn}: {codes}"), None);
            Err(Error(format!("onboarding: no token for {admin_upn} ({codes})")))
        }
    }
}

/// Registers the engine's public key with the tenant, which answers with the relay's address
/// and the engine's credential.
pub(crate) async fn register(
    cfg: &Config,
    key: RsaPrivateKey,
    http: &reqwest::Client,
    token: &str,
    log: &EventLog,
) -> Result<Registration, Error> {
    let public = relay::public_key_to_b64(&key.to_public_key());
    let r = http
        .post(format!("{}/lab/writeback/engines", cfg.tenant_https))
        .bearer_auth(token)
        .json(&json!({ "displayName": display_name(cfg.kind), "publicKey": public, "agentKind": cfg.kind }))
        .send()
        .await
        .map_err(|e| Error(e.to_string()))?;
    let status = r.status();
    let reg: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        log.log(32011, format!("The tenant refused the registration: HTTP {status}"), None);
        return Err(Error(format!("onboarding: HTTP {status} {reg}")));
    }
    Ok(Registration {
        engine_id: reg["id"].as_str().unwrap_or_default().into(),
        credential: reg["relayCredential"].as_str().unwrap_or_default().into(),
        relay_url: reg["relayUrl"].as_str().unwrap_or_default().into(),
        key,
    })
}

/// How an agent shows in the tenant's list.
fn display_name(kind: relay::AgentKind) -> &'static str {
    match kind {
        relay::AgentKind::ConnectSync => "hybrid-lab writeback engine",
        relay::AgentKind::CloudSync => "Microsoft Entra provisioning agent",
    }
}

pub(crate) enum SignIn {
    Unreachable(String),
    /// The token endpoint's error codes.
    NoToken(String),
}

/// The wizard's sign-in: a client that trusts the lab CA, and a Global Administrator's token.
pub(crate) async fn admin_session(cfg: &Config, upn: &str, password: &str) -> Result<(reqwest::Client, String), SignIn> {
    let http = tls(&cfg.ca_pem).and_then(|tls| https_client(&tls, None)).map_err(|e| SignIn::Unreachable(e.0))?;
    let form = [
        ("grant_type", "password"),
        ("client_id", cfg.client_id.as_str()),
        ("username", upn),
        ("password", password),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let token_url = format!("{}/{}/oauth2/v2.0/token", cfg.tenant_https, cfg.tenant_id);
    let r = http.post(&token_url).form(&form).send().await.map_err(|e| SignIn::Unreachable(e.to_string()))?;
    let body: Value = r.json().await.unwrap_or(Value::Null);
    match body["access_token"].as_str() {
        Some(t) => Ok((http, t.to_string())),
        None => Err(SignIn::NoToken(body["error_codes"].to_string())),
    }
}

/// The sync side's passwordWritebackEnabled, as Connect sets it on and offboarding.
pub(crate) async fn set_sync_writeback(http: &reqwest::Client, cfg: &Config, token: &str, on: bool) -> Result<(), Error> {
    let r = http
        .patch(format!("{}/v1.0/directory/onPremisesSynchronization/{}", cfg.tenant_https, cfg.tenant_id))
        .bearer_auth(token)
        .json(&json!({ "features": { "passwordWritebackEnabled": on } }))
        .send()
        .await
        .map_err(|e| Error(e.to_string()))?;
    if r.status().is_success() { Ok(()) } else { Err(Error(format!("HTTP {}", r.status()))) }
}
