//! Identity Protection, the part writeback meets: a user's risk (set by an administrator or a
//! simulated detection), the user-risk policy that demands a secure password change at
//! sign-in, and what clears the risk. Facts: howto-identity-protection-remediate-unblock and
//! the riskyUser resource in Graph.

use serde::Serialize;

/// Graph's riskLevel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RiskLevel {
    #[default]
    None,
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn parse(s: &str) -> Option<RiskLevel> {
        Some(match s {
            "none" => RiskLevel::None,
            "low" => RiskLevel::Low,
            "medium" => RiskLevel::Medium,
            "high" => RiskLevel::High,
            _ => return None,
        })
    }
}

/// Graph's riskState.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RiskState {
    #[default]
    None,
    AtRisk,
    ConfirmedCompromised,
    Remediated,
    Dismissed,
}

/// Graph's riskDetail: why the state is what it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RiskDetail {
    #[default]
    None,
    AdminConfirmedUserCompromised,
    AdminDismissedAllRiskForUser,
    UserPerformedSecuredPasswordChange,
    UserPerformedSecuredPasswordReset,
    AdminGeneratedTemporaryPassword,
    /// The lab's stand-in for a detection (leaked credentials, impossible travel...).
    Hidden,
}

/// A user's risk as Identity Protection keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserRisk {
    pub level: RiskLevel,
    pub state: RiskState,
    pub detail: RiskDetail,
}

impl UserRisk {
    pub fn at_risk(&self) -> bool {
        matches!(self.state, RiskState::AtRisk | RiskState::ConfirmedCompromised)
    }

    /// A detection (or a lab setting) at `level`.
    pub fn detected(level: RiskLevel) -> UserRisk {
        if level == RiskLevel::None {
            return UserRisk::default();
        }
        UserRisk { level, state: RiskState::AtRisk, detail: RiskDetail::Hidden }
    }

    pub fn confirmed_compromised() -> UserRisk {
        UserRisk { level: RiskLevel::High, state: RiskState::ConfirmedCompromised, detail: RiskDetail::AdminConfirmedUserCompromised }
    }

    pub fn dismissed() -> UserRisk {
        UserRisk { level: RiskLevel::None, state: RiskState::Dismissed, detail: RiskDetail::AdminDismissedAllRiskForUser }
    }

    /// A password change or reset remediates an at-risk user; others keep their state.
    pub fn remediate(&mut self, how: RiskDetail) {
        if self.at_risk() {
            *self = UserRisk { level: RiskLevel::None, state: RiskState::Remediated, detail: how };
        }
    }
}

/// The user-risk policy ("Require password change" at or above a level).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRiskPolicy {
    pub enabled: bool,
    /// The lowest level the policy acts on.
    pub level: RiskLevel,
    /// "Allow on-premises password change to reset user risk" (needs password hash sync).
    pub allow_on_premises_change_to_reset_risk: bool,
}

impl Default for UserRiskPolicy {
    fn default() -> UserRiskPolicy {
        UserRiskPolicy { enabled: false, level: RiskLevel::High, allow_on_premises_change_to_reset_risk: false }
    }
}

impl UserRiskPolicy {
    /// True when a sign-in must stop for a secure password change.
    pub fn demands_change(&self, risk: &UserRisk) -> bool {
        self.enabled && risk.at_risk() && risk.level >= self.level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_acts_at_or_above_its_level_on_live_risk_only() {
        let p = UserRiskPolicy { enabled: true, level: RiskLevel::Medium, ..Default::default() };
        assert!(!p.demands_change(&UserRisk::detected(RiskLevel::Low)));
        assert!(p.demands_change(&UserRisk::detected(RiskLevel::Medium)));
        assert!(p.demands_change(&UserRisk::confirmed_compromised()));
        assert!(!p.demands_change(&UserRisk::dismissed()));
        let off = UserRiskPolicy { enabled: false, ..p };
        assert!(!off.demands_change(&UserRisk::confirmed_compromised()));
    }

    #[test]
    fn a_secure_change_remediates_only_a_user_at_risk() {
        let mut r = UserRisk::detected(RiskLevel::High);
        r.remediate(RiskDetail::UserPerformedSecuredPasswordChange);
        assert_eq!(r.state, RiskState::Remediated);
        assert_eq!(r.level, RiskLevel::None);
        let mut d = UserRisk::dismissed();
        d.remediate(RiskDetail::UserPerformedSecuredPasswordReset);
        assert_eq!(d, UserRisk::dismissed());
    }
}
