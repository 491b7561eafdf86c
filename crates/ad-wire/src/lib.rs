//! AD's wire vocabulary a client needs, apart from any directory: SIDs, security descriptors
//! and their ACEs (MS-DTYP), and the password rights an ACE grants — their ADUC names, mask
//! bits and GUIDs. The DC (ad-ds) decides with them; clients (the portal's security page, the
//! scenario runner, labkit's seeding of an external DC) read and write them, and import no
//! server crate for it.

pub mod rights;
pub mod security;
pub mod sid;
