//! Scenarios: the YAML language users write ([`model`]), the runner that plays a scenario
//! against a lab over HTTP and LDAP like any client ([`run`]), what a step came to and
//! whether that was expected ([`observe`]), the redacted transcript ([`transcript`]), and
//! runs against an external directory such as a Samba AD DC ([`external`]), and exercises
//! for trainees ([`exercise`]): a lab set up where a tutorial starts and a checklist.

pub mod check;
pub mod exercise;
pub mod external;
pub mod files;
pub mod harness;
pub mod model;
pub mod observe;
pub mod run;
pub mod sts;
pub mod suite;
pub mod transcript;
