//! Security groups: what SSPR's "Selected" scope names, and what makes a user a member of a
//! role-assignable group (whose password only the two highest roles may reset). Membership
//! is transitive, as SSPR's group scope is ("nested groups supported").

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct Group {
    pub id: Uuid,
    pub display_name: String,
    pub mail_nickname: String,
    pub description: Option<String>,
    pub security_enabled: bool,
    /// Graph's `isAssignableToRole`: fixed at creation.
    pub is_assignable_to_role: bool,
    /// Direct members: users or groups, by object id.
    pub members: Vec<Uuid>,
}

/// True when `member` is in `group` directly or through nested groups. Cycles are
/// tolerated (each group is visited once).
pub fn is_member(groups: &HashMap<Uuid, Group>, group: Uuid, member: Uuid) -> bool {
    let mut seen = HashSet::new();
    let mut todo = vec![group];
    while let Some(g) = todo.pop() {
        if !seen.insert(g) {
            continue;
        }
        let Some(g) = groups.get(&g) else { continue };
        for m in &g.members {
            if *m == member {
                return true;
            }
            if groups.contains_key(m) {
                todo.push(*m);
            }
        }
    }
    false
}

/// True when `member` belongs, directly or not, to any role-assignable group.
pub fn in_role_assignable_group(groups: &HashMap<Uuid, Group>, member: Uuid) -> bool {
    groups.values().any(|g| g.is_assignable_to_role && is_member(groups, g.id, member))
}

/// Why a membership change was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberError {
    NoSuchGroup,
    NoSuchObject,
    /// Graph: "One or more added object references already exist for the following modified properties: 'members'."
    AlreadyMember,
    NotMember,
    /// A role-assignable group cannot hold groups (Graph refuses nesting them).
    NestingNotAllowed,
}

impl crate::directory::Tenant {
    pub fn add_group(&mut self, spec: Group) -> Uuid {
        let id = self.new_id();
        self.groups.insert(id, Group { id, ..spec });
        id
    }

    pub fn group(&self, id: &Uuid) -> Option<&Group> {
        self.groups.get(id)
    }

    /// Groups in a stable order (by display name, then id).
    pub fn groups(&self) -> Vec<&Group> {
        let mut v: Vec<&Group> = self.groups.values().collect();
        v.sort_by(|a, b| a.display_name.to_lowercase().cmp(&b.display_name.to_lowercase()).then(a.id.cmp(&b.id)));
        v
    }

    pub fn delete_group(&mut self, id: &Uuid) -> Option<Group> {
        let g = self.groups.remove(id)?;
        for other in self.groups.values_mut() {
            other.members.retain(|m| m != id);
        }
        Some(g)
    }

    pub fn add_member(&mut self, group: Uuid, member: Uuid) -> Result<(), MemberError> {
        let is_group = self.groups.contains_key(&member);
        if !is_group && self.user(&member).is_none() {
            return Err(MemberError::NoSuchObject);
        }
        let g = self.groups.get_mut(&group).ok_or(MemberError::NoSuchGroup)?;
        if g.members.contains(&member) {
            return Err(MemberError::AlreadyMember);
        }
        if is_group && g.is_assignable_to_role {
            return Err(MemberError::NestingNotAllowed);
        }
        g.members.push(member);
        Ok(())
    }

    pub fn remove_member(&mut self, group: Uuid, member: Uuid) -> Result<(), MemberError> {
        let g = self.groups.get_mut(&group).ok_or(MemberError::NoSuchGroup)?;
        let before = g.members.len();
        g.members.retain(|m| *m != member);
        if g.members.len() == before { Err(MemberError::NotMember) } else { Ok(()) }
    }

    /// Whether `member` is in `group`, directly or through nested groups.
    pub fn is_member_of(&self, group: Uuid, member: Uuid) -> bool {
        is_member(&self.groups, group, member)
    }

    /// Whether a user sits in a role-assignable group (Microsoft's table then guards them).
    pub fn in_role_assignable_group(&self, user: Uuid) -> bool {
        in_role_assignable_group(&self.groups, user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: u128, members: &[u128], assignable: bool) -> Group {
        Group {
            id: Uuid::from_u128(id),
            display_name: format!("g{id}"),
            mail_nickname: format!("g{id}"),
            description: None,
            security_enabled: true,
            is_assignable_to_role: assignable,
            members: members.iter().map(|m| Uuid::from_u128(*m)).collect(),
        }
    }

    fn set(gs: Vec<Group>) -> HashMap<Uuid, Group> {
        gs.into_iter().map(|g| (g.id, g)).collect()
    }

    #[test]
    fn membership_is_transitive_and_survives_cycles() {
        // 1 ∋ 2 ∋ 3 ∋ user 100; 3 ∋ 1 closes a cycle
        let gs = set(vec![group(1, &[2], false), group(2, &[3], false), group(3, &[100, 1], false)]);
        assert!(is_member(&gs, Uuid::from_u128(1), Uuid::from_u128(100)));
        assert!(is_member(&gs, Uuid::from_u128(3), Uuid::from_u128(100)));
        assert!(!is_member(&gs, Uuid::from_u128(1), Uuid::from_u128(101)));
        assert!(!is_member(&gs, Uuid::from_u128(9), Uuid::from_u128(100)));
    }

    #[test]
    fn role_assignable_reaches_through_nesting() {
        let gs = set(vec![group(1, &[2], true), group(2, &[100], false), group(3, &[101], false)]);
        assert!(in_role_assignable_group(&gs, Uuid::from_u128(100)));
        assert!(!in_role_assignable_group(&gs, Uuid::from_u128(101)));
    }
}
