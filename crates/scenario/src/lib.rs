//! Scenarios: the YAML language users write ([`model`]), the runner that plays a scenario
//! against a lab over HTTP and LDAP like any client ([`run`]), what a step came to and
//! whether that was expected ([`observe`]), and the redacted transcript ([`transcript`]).

pub mod model;
pub mod observe;
pub mod run;
pub mod suite;
pub mod transcript;
