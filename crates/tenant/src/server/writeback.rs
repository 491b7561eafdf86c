//! Password operations that wait for on-premises: checked in the cloud under the tenant's
//! lock, sent through the writeback port with the lock released, and finished under the
//! lock again with AD's answer. Each user's operations pass one at a time (an async lock per
//! user), so the cloud and AD apply them in the same order and neither is ever ahead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use super::TenantServer;
use crate::directory::{Next, Tenant};
use crate::sspr::{OnPremRequest, WritebackError};

/// The per-user locks.
#[derive(Default)]
pub struct Gates(Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>);

impl Gates {
    fn of(&self, user: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(user).or_default().clone()
    }
}

/// Runs `prepare`; when it asks for on-premises, awaits the port and hands the answer to
/// `finish`. The tenant's lock is never held across the wait.
pub async fn through<T, E>(
    s: &TenantServer,
    user: Uuid,
    prepare: impl FnOnce(&mut Tenant) -> Result<Next<T>, E>,
    finish: impl FnOnce(&mut Tenant, &OnPremRequest, Result<(), WritebackError>) -> Result<T, E>,
) -> Result<T, E> {
    let gate = s.gates.of(user);
    let _turn = gate.lock().await;
    let next = prepare(&mut s.lock())?;
    match next {
        Next::Done(t) => Ok(t),
        Next::Writeback(mut request) => {
            // the cloud's hash of the new password (PBKDF2) on another core while AD answers,
            // not under the tenant's lock afterwards
            let password = request.op.new_password().map(str::to_string);
            let hashing = password
                .map(|p| tokio::task::spawn_blocking(move || crate::passwords::Credential::from_password(&p, &mut rand::rngs::OsRng)));
            let outcome = s.writeback.send(request.clone()).await;
            if let Some(h) = hashing {
                request.hashed = h.await.ok();
            }
            finish(&mut s.lock(), &request, outcome)
        }
    }
}
