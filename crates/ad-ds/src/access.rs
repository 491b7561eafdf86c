//! Access control, small but real: administrators may do anything; everyone else holds
//! only the password-related rights granted to them (or to a group they belong to) over a
//! subtree, as ADUC's delegation writes them. Members of protected groups (adminCount=1)
//! do not inherit delegated rights: SDProp stamps AdminSDHolder's ACL on them.

use std::fmt;

use crate::dn::DnKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Right {
    /// The "Reset Password" extended right (User-Force-Change-Password).
    ResetPassword,
    /// The "Change Password" extended right (User-Change-Password); AD grants it to
    /// Everyone on every user.
    ChangePassword,
    /// Write property lockoutTime (unlock).
    WriteLockoutTime,
    /// Write property pwdLastSet (force or clear "must change at next logon").
    WritePwdLastSet,
    /// The "Unexpire Password" extended right: set pwdLastSet to -1.
    UnexpirePassword,
    /// Write property mS-DS-ConsistencyGuid: Connect fills it in when it is the sourceAnchor.
    WriteConsistencyGuid,
    /// DS-Replication-Get-Changes, on the domain root: read changes as a replica would.
    ReplicatingDirectoryChanges,
    /// DS-Replication-Get-Changes-All: with the above, the secrets too (NT hashes) — what
    /// password hash sync needs, and what the lab's get-changes control asks for.
    ReplicatingDirectoryChangesAll,
}

impl Right {
    pub const ALL: [Right; 8] = [
        Right::ResetPassword,
        Right::ChangePassword,
        Right::WriteLockoutTime,
        Right::WritePwdLastSet,
        Right::UnexpirePassword,
        Right::WriteConsistencyGuid,
        Right::ReplicatingDirectoryChanges,
        Right::ReplicatingDirectoryChangesAll,
    ];

    /// ADUC's wording, also the lab's spelling in environments and control requests.
    pub fn name(self) -> &'static str {
        match self {
            Right::ResetPassword => "Reset Password",
            Right::ChangePassword => "Change Password",
            Right::WriteLockoutTime => "Write lockoutTime",
            Right::WritePwdLastSet => "Write pwdLastSet",
            Right::UnexpirePassword => "Unexpire Password",
            Right::WriteConsistencyGuid => "Write mS-DS-ConsistencyGuid",
            Right::ReplicatingDirectoryChanges => "Replicating Directory Changes",
            Right::ReplicatingDirectoryChangesAll => "Replicating Directory Changes All",
        }
    }

    pub fn parse(s: &str) -> Option<Right> {
        let norm: String = s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        Right::ALL
            .into_iter()
            .find(|r| r.name().chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase() == norm)
    }

    /// The rights Azure AD Connect's password writeback needs on the AD DS connector account.
    pub const WRITEBACK: [Right; 4] = [Right::ResetPassword, Right::WriteLockoutTime, Right::WritePwdLastSet, Right::UnexpirePassword];

    /// The rights directory and password hash sync need on the domain root.
    pub const SYNC: [Right; 3] = [Right::ReplicatingDirectoryChanges, Right::ReplicatingDirectoryChangesAll, Right::WriteConsistencyGuid];
    /// The two that hand out secrets.
    pub const HASH_SYNC: [Right; 2] = [Right::ReplicatingDirectoryChanges, Right::ReplicatingDirectoryChangesAll];
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trustee {
    /// S-1-1-0: every principal, anonymous excepted (the lab has no anonymous writes).
    Everyone,
    /// A user or group, by its key.
    Object(DnKey),
}

/// One allow entry: `trustee` holds `right` on `scope` and every object below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub trustee: Trustee,
    pub right: Right,
    pub scope: DnKey,
}

impl Grant {
    pub fn covers(&self, target: &DnKey) -> bool {
        target == &self.scope || target.is_below(&self.scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_loosely() {
        assert_eq!(Right::parse("reset password"), Some(Right::ResetPassword));
        assert_eq!(Right::parse("Write-LockoutTime"), Some(Right::WriteLockoutTime));
        assert_eq!(Right::parse("write property"), None);
        for r in Right::ALL {
            assert_eq!(Right::parse(r.name()), Some(r));
        }
    }
}
