//! One upload per tenant at a time. Compiling is the heaviest thing a tenant can ask for, and
//! compilations run one after another on the whole host: without a turn per tenant, one
//! tenant's flood of uploads would fill the queue and every other tenant's upload would wait
//! behind all of it. With it, a tenant holds at most one place, so another tenant's upload
//! waits for at most one compilation per tenant ahead of it. The turn is taken before the body
//! is read, and a refused upload's body is read past without being kept, so a refused flood
//! costs no memory either.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The tenants with an upload in flight.
#[derive(Debug, Default)]
pub struct UploadTurns {
    uploading: Arc<Mutex<HashSet<String>>>,
}

/// A tenant's turn to upload, held from before its component is read until it is stored or
/// refused; dropping it (a finished upload, or a client that went away) frees the turn.
#[derive(Debug)]
pub struct UploadTurn {
    uploading: Arc<Mutex<HashSet<String>>>,
    tenant_id: String,
}

impl UploadTurns {
    /// `tenant_id`'s turn, or `None` while it already has an upload in flight.
    pub fn take(&self, tenant_id: &str) -> Option<UploadTurn> {
        let mut uploading = self.uploading.lock().unwrap_or_else(|p| p.into_inner());
        uploading.insert(tenant_id.to_owned()).then(|| UploadTurn {
            uploading: Arc::clone(&self.uploading),
            tenant_id: tenant_id.to_owned(),
        })
    }
}

impl Drop for UploadTurn {
    fn drop(&mut self) {
        self.uploading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.tenant_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_has_one_turn_until_it_is_given_back() {
        let turns = UploadTurns::default();
        let acme = turns.take("acme").expect("acme's turn");
        assert!(turns.take("acme").is_none(), "acme is uploading");
        let rival = turns.take("rival").expect("another tenant is not held up");
        drop(acme);
        assert!(turns.take("acme").is_some(), "given back");
        drop(rival);
    }
}
