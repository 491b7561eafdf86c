//! Access control, small but real: administrators may do anything; everyone else holds
//! only the password-related rights granted to them (or to a group they belong to) over a
//! subtree, as ADUC's delegation writes them. Members of protected groups (adminCount=1)
//! do not inherit delegated rights: SDProp stamps AdminSDHolder's ACL on them.

use crate::dn::DnKey;

pub use ad_wire::rights::{COMPUTER_CLASS, Right, USER_CLASS};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trustee {
    /// S-1-1-0: every principal, anonymous excepted (the lab has no anonymous writes).
    Everyone,
    /// S-1-5-10, PRINCIPAL_SELF: whoever the target object is (ADUC's "User cannot change
    /// password" denies it beside Everyone).
    SelfPrincipal,
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
