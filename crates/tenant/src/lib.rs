//! A fake Microsoft Entra ID tenant: the cloud half of the lab.
//!
//! What it will simulate (issue 4): the tenant's users (cloud-only and synced), directory
//! roles, OAuth2/OIDC tokens, a Microsoft Graph subset, SSPR and the writeback settings,
//! over HTTP. What is here so far: the rules those build on, as plain synchronous Rust —
//! - [`roles`]: the directory roles and Microsoft's table of who may reset whose password;
//! - [`passwords`]: Entra's cloud password rules, Password Protection's banned-password
//!   evaluation, and the salted form in which the tenant keeps a password.

pub mod authorize;
pub mod cloudsync;
pub mod directory;
pub mod groups;
pub mod odata;
pub mod passwords;
pub mod refresh;
pub mod risk;
pub mod roles;
pub mod server;
pub mod settings;
pub mod signins;
pub mod sspr;
pub mod sync;
pub mod token;
