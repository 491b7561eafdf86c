//! Cloud Sync's own tools on the agent's server: `Set-AADCloudSyncPermissions`, which gives
//! the agent's gMSA its rights on the domain root again, as an Enterprise or Domain
//! Administrator, over LDAP like any ACL editor (the domain root's nTSecurityDescriptor read
//! and written with the SD-flags control's DACL part).

use ad_wire::rights::Right;
use ldap3::Scope;

use super::*;

/// `-PermissionType`'s values the lab models, and the rights each gives the gMSA on the
/// domain root ("identical" to Connect's ADSync permission sets, Microsoft says).
pub fn permission_rights(permission_type: &str) -> Result<Vec<Right>, String> {
    let t = permission_type.to_ascii_lowercase();
    Ok(match t.as_str() {
        // reading is every authenticated user's by default
        "basicread" => vec![],
        "passwordhashsync" => Right::HASH_SYNC.to_vec(),
        "passwordwriteback" => Right::WRITEBACK.to_vec(),
        "all" => Right::WRITEBACK.into_iter().chain(Right::HASH_SYNC).collect(),
        "hybridexchangepermissions" | "exchangemailpublicfolderpermissions" | "usergroupcreatedelete" => {
            return Err(format!("-PermissionType {permission_type}: not modelled by the lab (it has no Exchange or group writeback)"));
        }
        _ => {
            return Err(format!(
                "-PermissionType {permission_type}: expected BasicRead, PasswordHashSync, PasswordWriteBack, HybridExchangePermissions, ExchangeMailPublicFolderPermissions, UserGroupCreateDelete or All"
            ));
        }
    })
}

/// What the cmdlet did: the rights it wrote (those already there are left as they are).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionsSet {
    pub account: String,
    pub domain: String,
    pub rights: Vec<&'static str>,
}

/// `Set-AADCloudSyncPermissions -PermissionType … -EACredential …`: binds as the given
/// administrator (a DN, UPN or DOMAIN\name) and adds the gMSA's allow entries to the domain
/// root's DACL.
pub async fn set_permissions(cfg: &Config, permission_type: &str, admin: &str, password: &str) -> Result<PermissionsSet, String> {
    let rights = permission_rights(permission_type)?;
    let tls = tls(&cfg.ca_pem).map_err(|e| e.0)?;
    let url = cfg.ldaps.replace("127.0.0.1", "localhost");
    let (conn, mut l) = ldap_dial::connect(&url, ldap_dial::Security::Url, tls, Duration::from_secs(5)).await.map_err(|e| e.to_string())?;
    ldap3::drive!(conn);
    l.with_timeout(ad::LDAP_OP_LIMIT);
    let r = l.simple_bind(admin, password).await.map_err(|e| e.to_string())?;
    if r.rc != 0 {
        return Err(format!("the credentials were refused: {} {}", r.rc, r.text.trim()));
    }
    let gmsa = format!("(sAMAccountName={CLOUD_SYNC_GMSA})");
    let sid = ldap_dial::first_binary(&mut l, &cfg.base_dn, Scope::Subtree, &gmsa, "objectSid", vec![])
        .await?
        .ok_or_else(|| format!("no {CLOUD_SYNC_GMSA} account in {}", cfg.base_dn))?;
    if !rights.is_empty() {
        let sd = ldap_dial::first_binary(
            &mut l,
            &cfg.base_dn,
            Scope::Base,
            "(objectClass=*)",
            "nTSecurityDescriptor",
            vec![ldap_dial::sd_flags_dacl()],
        )
        .await?
        .ok_or_else(|| "the domain root's security descriptor could not be read".to_string())?;
        let aces: Vec<_> = rights.iter().map(|r| ad_wire::security::ace_for(true, *r, sid.clone(), false, false)).collect();
        let written =
            ad_wire::security::dacl_with(&sd, &aces).map_err(|_| "the domain root's security descriptor is malformed".to_string())?;
        let m = ldap3::Mod::Replace(b"nTSecurityDescriptor".to_vec(), HashSet::from([written]));
        let r = l.with_controls(vec![ldap_dial::sd_flags_dacl()]).modify(&cfg.base_dn, vec![m]).await.map_err(|e| e.to_string())?;
        if r.rc != 0 {
            return Err(format!("the domain root's permissions could not be written: {} {}", r.rc, r.text.trim()));
        }
    }
    let _ = l.unbind().await;
    Ok(PermissionsSet { account: CLOUD_SYNC_GMSA.into(), domain: cfg.base_dn.clone(), rights: rights.iter().map(|r| r.name()).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_permission_type_names_its_rights_and_unknown_ones_are_refused() {
        assert_eq!(permission_rights("PasswordWriteBack").unwrap(), Right::WRITEBACK.to_vec());
        assert_eq!(permission_rights("passwordhashsync").unwrap(), Right::HASH_SYNC.to_vec());
        assert_eq!(permission_rights("All").unwrap().len(), Right::WRITEBACK.len() + Right::HASH_SYNC.len());
        assert!(permission_rights("BasicRead").unwrap().is_empty());
        assert!(permission_rights("UserGroupCreateDelete").unwrap_err().contains("not modelled"));
        assert!(permission_rights("Everything").unwrap_err().contains("expected BasicRead"));
    }
}
