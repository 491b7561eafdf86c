//! The rights the lab's access model knows, as ADUC and ACEs name them: each one's display
//! name, its access-mask bit and the schemaIDGUID or rightsGUID an object ACE carries.

use std::fmt;

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

    /// How an ACE names it: the access mask bit (control access, or write property) and
    /// the extended right's or attribute's schemaIDGUID.
    pub fn ace(self) -> (u32, &'static str) {
        const CONTROL_ACCESS: u32 = 0x100;
        const WRITE_PROPERTY: u32 = 0x20;
        match self {
            Right::ResetPassword => (CONTROL_ACCESS, "00299570-246d-11d0-a768-00aa006e0529"),
            Right::ChangePassword => (CONTROL_ACCESS, "ab721a53-1e2f-11d0-9819-00aa0040529b"),
            Right::WriteLockoutTime => (WRITE_PROPERTY, "28630ebf-41d5-11d1-a9c1-0000f80367c1"),
            Right::WritePwdLastSet => (WRITE_PROPERTY, "bf967a0a-0de6-11d0-a285-00aa003049e2"),
            Right::UnexpirePassword => (CONTROL_ACCESS, "ccc2dc7d-a6ad-4a7a-8846-c04e3cc53501"),
            Right::WriteConsistencyGuid => (WRITE_PROPERTY, "23773dc2-b63a-11d2-90e1-00c04fd91ab1"),
            Right::ReplicatingDirectoryChanges => (CONTROL_ACCESS, "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2"),
            Right::ReplicatingDirectoryChangesAll => (CONTROL_ACCESS, "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2"),
        }
    }

    /// The GUID in AD's byte order (as an ACE carries it).
    pub fn guid(self) -> [u8; 16] {
        uuid::Uuid::parse_str(self.ace().1).expect("a literal GUID").to_bytes_le()
    }

    /// The right an object ACE grants or denies, when it is one the lab models.
    pub fn from_ace(mask: u32, object_type: &[u8; 16]) -> Option<Right> {
        Right::ALL.into_iter().find(|r| r.guid() == *object_type && mask & r.ace().0 != 0)
    }

    /// Rights that apply to the naming context itself rather than to the users below it.
    pub fn on_the_domain(self) -> bool {
        matches!(self, Right::ReplicatingDirectoryChanges | Right::ReplicatingDirectoryChangesAll | Right::UnexpirePassword)
    }
}

/// The user class's schemaIDGUID: ACEs inherited by user objects only name it.
pub const USER_CLASS: &str = "bf967aba-0de6-11d0-a285-00aa003049e2";
/// The computer class's (ADUC's "Descendant Computer objects").
pub const COMPUTER_CLASS: &str = "bf967a86-0de6-11d0-a285-00aa003049e2";

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ace_names_a_right_by_its_guid_and_mask_bit() {
        for r in Right::ALL {
            assert_eq!(Right::from_ace(r.ace().0, &r.guid()), Some(r));
        }
        // write property is not control access
        assert_eq!(Right::from_ace(0x20, &Right::ChangePassword.guid()), None);
        assert_eq!(Right::from_ace(0x100, &[0; 16]), None);
    }

    /// A right shows as ADUC names it, and that name reads back as the right.
    #[test]
    fn a_right_displays_as_its_name() {
        assert_eq!(Right::ResetPassword.to_string(), "Reset Password");
        for r in Right::ALL {
            assert_eq!(Right::parse(&r.to_string()), Some(r));
        }
    }

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
