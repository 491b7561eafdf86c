//! Directory roles and Microsoft's rule of who may reset whose password: the table "Who
//! can reset passwords" in *Privileged roles and permissions in Microsoft Entra ID*
//! (learn.microsoft.com/entra/identity/role-based-access-control/privileged-roles-permissions),
//! for roles assigned at tenant scope.

use std::fmt;

/// The built-in roles the lab knows, with their role template ids (the `wids` claim).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    GlobalAdministrator,
    PrivilegedAuthenticationAdministrator,
    PrivilegedRoleAdministrator,
    UserAdministrator,
    AuthenticationAdministrator,
    HelpdeskAdministrator,
    PasswordAdministrator,
    GroupsAdministrator,
    HybridIdentityAdministrator,
    SecurityAdministrator,
    DirectoryReaders,
    GuestInviter,
    MessageCenterReader,
    ReportsReader,
    UsageSummaryReportsReader,
    UserExperienceSuccessManager,
}

use Role::*;

impl Role {
    pub const ALL: [Role; 16] = [
        GlobalAdministrator,
        PrivilegedAuthenticationAdministrator,
        PrivilegedRoleAdministrator,
        UserAdministrator,
        AuthenticationAdministrator,
        HelpdeskAdministrator,
        PasswordAdministrator,
        GroupsAdministrator,
        HybridIdentityAdministrator,
        SecurityAdministrator,
        DirectoryReaders,
        GuestInviter,
        MessageCenterReader,
        ReportsReader,
        UsageSummaryReportsReader,
        UserExperienceSuccessManager,
    ];

    pub fn display_name(self) -> &'static str {
        match self {
            GlobalAdministrator => "Global Administrator",
            PrivilegedAuthenticationAdministrator => "Privileged Authentication Administrator",
            PrivilegedRoleAdministrator => "Privileged Role Administrator",
            UserAdministrator => "User Administrator",
            AuthenticationAdministrator => "Authentication Administrator",
            HelpdeskAdministrator => "Helpdesk Administrator",
            PasswordAdministrator => "Password Administrator",
            GroupsAdministrator => "Groups Administrator",
            HybridIdentityAdministrator => "Hybrid Identity Administrator",
            SecurityAdministrator => "Security Administrator",
            DirectoryReaders => "Directory Readers",
            GuestInviter => "Guest Inviter",
            MessageCenterReader => "Message Center Reader",
            ReportsReader => "Reports Reader",
            UsageSummaryReportsReader => "Usage Summary Reports Reader",
            UserExperienceSuccessManager => "User Experience Success Manager",
        }
    }

    /// The role template id, as tokens carry it in `wids` and Graph in `roleTemplateId`.
    pub fn template_id(self) -> &'static str {
        match self {
            GlobalAdministrator => "62e90394-69f5-4237-9190-012177145e10",
            PrivilegedAuthenticationAdministrator => "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
            PrivilegedRoleAdministrator => "e8611ab8-c189-46e8-94e1-60213ab1f814",
            UserAdministrator => "fe930be7-5e62-47db-91af-98c3a49a38b1",
            AuthenticationAdministrator => "c4e39bd9-1100-46d3-8c65-fb160da0071f",
            HelpdeskAdministrator => "729827e3-9c14-49f7-bb1b-9608f156bbb8",
            PasswordAdministrator => "966707d0-3269-4727-9be2-8c3a10f19b9d",
            GroupsAdministrator => "fdd7a751-b60b-444a-984c-02652fe8fa1c",
            HybridIdentityAdministrator => "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",
            SecurityAdministrator => "194ae4cb-b126-40b2-bd5b-6091b380977d",
            DirectoryReaders => "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
            GuestInviter => "95e79109-95c0-4d8e-aee3-d01accf2d47b",
            MessageCenterReader => "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b",
            ReportsReader => "4a5d8f65-41da-4de4-8968-e035b65339cf",
            UsageSummaryReportsReader => "75934031-6c7e-415a-99d7-48dbd49e875e",
            UserExperienceSuccessManager => "27460883-1df1-4691-b032-3b79643e5e63",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.display_name().eq_ignore_ascii_case(name.trim()) || r.template_id() == name.trim())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// The roles that can reset passwords at all (the table's columns).
pub const RESETTERS: [Role; 6] = [
    PasswordAdministrator,
    HelpdeskAdministrator,
    AuthenticationAdministrator,
    UserAdministrator,
    PrivilegedAuthenticationAdministrator,
    GlobalAdministrator,
];

/// Who a password is being reset for: the target's roles and whether it is a member or
/// owner of a role-assignable group (which only the two highest roles may touch).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target<'a> {
    pub roles: &'a [Role],
    pub in_role_assignable_group: bool,
}

/// One cell of the table: may `actor` (one of the [`RESETTERS`]) reset the password of a
/// user holding `target` (None: a user with no administrator role)?
fn cell(actor: Role, target: Option<Role>) -> bool {
    if matches!(actor, GlobalAdministrator | PrivilegedAuthenticationAdministrator) {
        return true;
    }
    let Some(t) = target else { return RESETTERS.contains(&actor) };
    match actor {
        PasswordAdministrator => matches!(t, DirectoryReaders | GuestInviter | PasswordAdministrator),
        HelpdeskAdministrator => matches!(
            t,
            DirectoryReaders
                | GuestInviter
                | HelpdeskAdministrator
                | MessageCenterReader
                | PasswordAdministrator
                | ReportsReader
                | UsageSummaryReportsReader
                | UserExperienceSuccessManager
        ),
        AuthenticationAdministrator => matches!(
            t,
            AuthenticationAdministrator
                | DirectoryReaders
                | GuestInviter
                | MessageCenterReader
                | PasswordAdministrator
                | ReportsReader
                | UsageSummaryReportsReader
                | UserExperienceSuccessManager
        ),
        UserAdministrator => matches!(
            t,
            DirectoryReaders
                | GroupsAdministrator
                | GuestInviter
                | HelpdeskAdministrator
                | MessageCenterReader
                | PasswordAdministrator
                | ReportsReader
                | UserAdministrator
                | UsageSummaryReportsReader
                | UserExperienceSuccessManager
        ),
        _ => false,
    }
}

/// True when a user holding `actor` roles may reset the password of `target`: one of the
/// actor's roles must be allowed for every role the target holds.
pub fn can_reset_password(actor: &[Role], target: &Target<'_>) -> bool {
    actor.iter().any(|&a| {
        if !RESETTERS.contains(&a) {
            return false;
        }
        if target.in_role_assignable_group && !matches!(a, GlobalAdministrator | PrivilegedAuthenticationAdministrator) {
            return false;
        }
        if target.roles.is_empty() { cell(a, None) } else { target.roles.iter().all(|&t| cell(a, Some(t))) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A role shows as Entra names it, and that name (or its template id) reads back as it.
    #[test]
    fn a_role_displays_as_its_name() {
        assert_eq!(GlobalAdministrator.to_string(), "Global Administrator");
        for r in Role::ALL {
            assert_eq!(Role::parse(&r.to_string()), Some(r));
            assert_eq!(Role::parse(r.template_id()), Some(r));
        }
    }

    fn t(roles: &[Role]) -> Target<'_> {
        Target { roles, in_role_assignable_group: false }
    }

    #[test]
    fn rows_of_microsofts_table() {
        // "a Password Administrator can reset the password for Directory Readers, Guest
        // Inviter, Password Administrator, and users with no administrator role"
        assert!(can_reset_password(&[PasswordAdministrator], &t(&[])));
        assert!(can_reset_password(&[PasswordAdministrator], &t(&[GuestInviter])));
        assert!(!can_reset_password(&[PasswordAdministrator], &t(&[HelpdeskAdministrator])));
        // a Helpdesk Administrator cannot reset a Global Administrator, and so on
        assert!(!can_reset_password(&[HelpdeskAdministrator], &t(&[GlobalAdministrator])));
        assert!(can_reset_password(&[HelpdeskAdministrator], &t(&[HelpdeskAdministrator])));
        assert!(!can_reset_password(&[HelpdeskAdministrator], &t(&[AuthenticationAdministrator])));
        assert!(can_reset_password(&[AuthenticationAdministrator], &t(&[AuthenticationAdministrator])));
        assert!(!can_reset_password(&[UserAdministrator], &t(&[AuthenticationAdministrator])));
        assert!(can_reset_password(&[UserAdministrator], &t(&[GroupsAdministrator])));
        assert!(!can_reset_password(&[UserAdministrator], &t(&[PrivilegedRoleAdministrator])));
        assert!(can_reset_password(&[PrivilegedAuthenticationAdministrator], &t(&[GlobalAdministrator])));
        // "All other built-in and custom roles": only the two highest
        assert!(!can_reset_password(&[UserAdministrator], &t(&[HybridIdentityAdministrator])));
        assert!(can_reset_password(&[GlobalAdministrator], &t(&[SecurityAdministrator])));
        // a role-assignable group's member or owner
        let guarded = Target { roles: &[], in_role_assignable_group: true };
        assert!(!can_reset_password(&[UserAdministrator], &guarded));
        assert!(can_reset_password(&[PrivilegedAuthenticationAdministrator], &guarded));
        // no resetting role at all
        assert!(!can_reset_password(&[DirectoryReaders, SecurityAdministrator], &t(&[])));
        // a target with two roles needs a resetter allowed for both
        assert!(!can_reset_password(&[PasswordAdministrator], &t(&[GuestInviter, ReportsReader])));
        assert!(can_reset_password(&[HelpdeskAdministrator], &t(&[GuestInviter, ReportsReader])));
    }

    #[test]
    fn names_and_template_ids() {
        assert_eq!(Role::parse("helpdesk administrator"), Some(HelpdeskAdministrator));
        assert_eq!(Role::parse("62e90394-69f5-4237-9190-012177145e10"), Some(GlobalAdministrator));
        let ids: std::collections::BTreeSet<_> = Role::ALL.iter().map(|r| r.template_id()).collect();
        assert_eq!(ids.len(), Role::ALL.len());
    }

    fn roles() -> impl Strategy<Value = Vec<Role>> {
        prop::collection::vec(prop::sample::select(Role::ALL.to_vec()), 0..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn the_two_highest_roles_reset_anyone(target in roles(), group in any::<bool>()) {
            let target = Target { roles: &target, in_role_assignable_group: group };
            prop_assert!(can_reset_password(&[GlobalAdministrator], &target));
            prop_assert!(can_reset_password(&[PrivilegedAuthenticationAdministrator], &target));
        }

        #[test]
        fn more_target_roles_never_make_a_reset_possible(actor in roles(), target in roles(), extra in prop::sample::select(Role::ALL.to_vec())) {
            let mut more = target.clone();
            more.push(extra);
            if can_reset_password(&actor, &t(&more)) {
                prop_assert!(can_reset_password(&actor, &t(&target)));
            }
        }

        #[test]
        fn more_actor_roles_never_make_a_reset_impossible(actor in roles(), target in roles(), extra in prop::sample::select(Role::ALL.to_vec())) {
            let mut more = actor.clone();
            more.push(extra);
            if can_reset_password(&actor, &t(&target)) {
                prop_assert!(can_reset_password(&more, &t(&target)));
            }
        }

        #[test]
        fn only_global_and_privileged_authentication_administrators_reset_global_administrators(actor in roles()) {
            let allowed = actor.iter().any(|r| matches!(r, GlobalAdministrator | PrivilegedAuthenticationAdministrator));
            prop_assert_eq!(can_reset_password(&actor, &t(&[GlobalAdministrator])), allowed);
        }
    }
}
