//! A fake Active Directory domain controller: an in-memory directory shaped like a Windows
//! DC's, served over real LDAP (TCP, LDAPS, StartTLS) so that any LDAP client — ldapsearch,
//! Python ldap3, Apache Directory Studio, the Rust `ldap3` crate, our writeback engine —
//! talks to it as to AD.
//!
//! What it simulates: AD's object model for users, groups, OUs and containers (objectGUID,
//! objectSid, sAMAccountName, userPrincipalName, uSN and when- stamps, member/memberOf),
//! AD's name forms for simple binds, its result codes and diagnostic texts, its rootDSE,
//! paging and size limits, and passwords kept only as NT hashes.
//!
//! Beside the domain's naming context it serves, read-only, the Configuration NC (Partitions
//! and its crossRefs, Sites, Services), the Schema NC (AD's whole schema, from Microsoft's
//! published files) and the DNS partitions, and refers a search at the domain's root to them
//! as a Windows DC does (continuation references). Several DCs of a domain replicate with
//! each other on the lab clock, per attribute, the first holding the PDC emulator's part in
//! binds ([`topology`]); a domain may sit in a forest of several ([`partitions::Forest`]).
//!
//! What it leaves out: schema changes, Kerberos/NTLM/SASL, trusts, the global catalog port,
//! ACEs beyond the password and sync rights (kept, not enforced), values for attributes
//! outside the lab's own table, DNS records.
//!
//! Layout:
//! - [`dn`], [`sid`], [`schema`], [`entry`]: names, SIDs, the attributes the lab keeps values
//!   for, one object; [`ad_schema`]: Microsoft's whole schema, read at build time;
//! - [`directory`]: the objects, the indexes and every operation as plain synchronous Rust;
//! - [`account`], [`password`], [`policy`]: account state, bind bookkeeping, password
//!   material, the domain and fine-grained password policies;
//! - [`access`]: who may reset, change, unlock and unexpire whose password;
//!   [`security`]: those rights as nTSecurityDescriptor's ACEs;
//! - [`filter`]: RFC 4515 filters with AD's matching rules;
//! - [`domain`]: what a new domain holds; [`ldif`]: seeding and saving a directory;
//! - [`session`], [`rootdse`], [`partitions`]: LDAP requests → directory calls, with no
//!   socket; the rootDSE and the subschema entry; the other naming contexts and the
//!   references to them;
//! - [`codec`]: ldap3_proto's codec, repaired for binary filter values;
//! - [`server`], [`tls`]: listeners, LDAPS and StartTLS.

pub mod access;
pub mod account;
pub mod ad_schema;
pub mod codec;
pub mod directory;
pub mod dn;
pub mod domain;
pub mod entry;
pub mod error;
pub mod filter;
pub mod ldif;
pub mod oplog;
pub mod partitions;
pub mod password;
pub mod policy;
pub mod ratelimit;
pub mod rootdse;
pub mod schema;
pub mod server;
pub mod session;
pub mod tls;
pub mod topology;

// the wire vocabulary clients share (SIDs, security descriptors): ad-wire's, named here too
pub use ad_wire::{security, sid};

pub use directory::{Directory, DomainConfig, Principal};
pub use error::{AdError, ResultCode};
pub use server::{DcState, DomainController, Transport, serve};
