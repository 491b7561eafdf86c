//! Scenarios against an external directory (a real Samba AD DC, a Windows DC): which ones
//! can run there. Each runs in a lab of its own whose AD DS is that directory (the testlab
//! seeded into it: `labkit::external`), with the tenant and the engine as usual; a scenario
//! that needs what only the built-in directory does (the lab clock, its fault switches, its
//! rights switches, directory sync's hash control, a directory from LDIF) is skipped with the
//! reason.

use crate::model::{Action, DcState, Scenario};

pub use labkit::external::{Capabilities, External};

/// Why a scenario cannot run against an external directory that can do `can` (None: it can).
pub fn ineligible(s: &Scenario, can: Capabilities) -> Option<String> {
    if s.lab.as_deref().is_some_and(|l| l != "testlab") {
        return Some("starts from its own LDIF (an external directory holds the testlab)".into());
    }
    if s.presynced == Some(false) {
        return Some("starts before Connect's first cycle (directory sync needs the built-in directory)".into());
    }
    if s.given.dcs.is_some_and(|n| n > 1) {
        return Some("starts several domain controllers of the built-in domain".into());
    }
    if s.given.forests.is_some_and(|n| n > 1) || s.given.child_domain {
        return Some("starts other domains beside the built-in one".into());
    }
    for (i, step) in s.steps.iter().enumerate() {
        let a = &step.value.action;
        let why = match a {
            Action::ClockAdvance(_) => "advances the lab clock, which an external directory does not follow",
            // a fault switch that names the state the directory is in anyway holds as it is
            Action::AddsFault(f)
                if matches!(f.state, None | Some(DcState::Up))
                    && f.policy_hints.is_none_or(|on| on == can.policy_hints)
                    && f.search_delay_ms.is_none_or(|ms| ms == 0) =>
            {
                continue;
            }
            Action::AddsFault(_) => "switches a fault of the built-in domain controller",
            Action::AddsUseDc(_) | Action::AddsReplicate(_) | Action::AddsReplication(_) | Action::EnginePreferredDcs(_) => {
                "uses the built-in domain's several domain controllers"
            }
            Action::EngineRevokeRight(_) | Action::EngineGrantRight(_) => "switches a connector right in the built-in directory",
            Action::EngineAddDirectory(_) | Action::EngineRemoveDirectory(_) | Action::EngineConnectorPassword(_) => {
                "connects the built-in lab's other domains and forests"
            }
            Action::AdminGraph(g) if g.path.starts_with("/lab/adds/") => "uses a switch of the built-in directory (/lab/adds/)",
            Action::EngineFault(f) if f.unsealed_ldap.is_some() => "sends the engine to the built-in directory's plain LDAP port",
            // the engine reads NT hashes with the built-in directory's own control; a real DC
            // hands them out over DRSR (MS-DRSR GetNCChanges), which the lab does not speak
            Action::SyncRun(_) | Action::ExpectSync(_) => {
                "runs directory sync, which reads hashes the way only the built-in directory offers"
            }
            _ => continue,
        };
        return Some(format!("step {} `{}` {why}", i + 1, a.name()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMBA: Capabilities = Capabilities { policy_hints: false };

    fn scenario(steps: &str) -> Scenario {
        crate::model::parse("t.yaml", &format!("name: t\nabout: t\nsteps:\n{steps}")).unwrap()
    }

    fn ineligible_on_samba(s: &Scenario) -> Option<String> {
        ineligible(s, SAMBA)
    }

    #[test]
    fn steps_that_need_the_built_in_directory_are_not_run_externally() {
        assert_eq!(
            ineligible_on_samba(&scenario(
                "  - ldap.bind: { user: 'TESTLAB\\User1', password: x }\n  - expect.entry: { entry: User1, attrs: {} }\n"
            )),
            None
        );
        let why = ineligible_on_samba(&scenario("  - ldap.bind: { user: u, password: x }\n  - clock.advance: 1d\n")).unwrap();
        assert!(why.starts_with("step 2 `clock.advance`"), "{why}");
        assert_eq!(ineligible_on_samba(&scenario("  - sspr.reset: { user: u, new_password: x }\n")), None);
        let why = ineligible_on_samba(&scenario("  - sspr.reset: { user: u, new_password: x }\n  - sync.run: {}\n")).unwrap();
        assert!(why.starts_with("step 2 `sync.run`"), "{why}");
        let why = ineligible_on_samba(&scenario("  - adds.fault: { state: down }\n")).unwrap();
        assert!(why.contains("fault"), "{why}");
        // Samba has no policy-hints control: "without it" holds there, "with it" cannot
        assert_eq!(ineligible_on_samba(&scenario("  - adds.fault: { policy_hints: false }\n")), None);
        assert!(ineligible_on_samba(&scenario("  - adds.fault: { policy_hints: true }\n")).is_some());
        // a slow DC cannot be made of an external one; "not slow" it is already
        assert!(ineligible_on_samba(&scenario("  - adds.fault: { search_delay_ms: 800 }\n")).is_some());
        assert_eq!(ineligible_on_samba(&scenario("  - adds.fault: { search_delay_ms: 0 }\n")), None);
        let windows = Capabilities { policy_hints: true };
        assert!(ineligible(&scenario("  - adds.fault: { policy_hints: false }\n"), windows).is_some());
    }
}
