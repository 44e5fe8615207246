//! The checkpoint format (msgpack, named fields) and restore: the whole
//! kernel, checked as a whole before a kernel is built from it.

use serde::{Deserialize, Serialize};

use super::rollback::RestorePoint;
use super::{Control, Kernel};
use crate::account::Account;
use crate::documents::Cut;
use crate::error::InputError;
use crate::slot::Slot;
use crate::validate;

const CHECKPOINT_FORMAT: &str = "dita-kernel-checkpoint/1";

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    format: String,
    seen_capacity: usize,
    control: Control,
    order_seq: u64,
    account: Account,
    slots: Vec<Slot>,
    before_request: Vec<Option<RestorePoint>>,
}

impl Kernel {
    /// The whole kernel as msgpack bytes; `restore` gives back an identical kernel.
    pub fn checkpoint(&self) -> Vec<u8> {
        let cp = Checkpoint {
            format: CHECKPOINT_FORMAT.to_owned(),
            seen_capacity: self.seen_capacity,
            control: self.control,
            order_seq: self.order_seq,
            account: self.account.clone(),
            slots: self.slots.clone(),
            before_request: self.before_request.clone(),
        };
        rmp_serde::to_vec_named(&cp).expect("kernel state is always serializable")
    }

    pub fn restore(bytes: &[u8]) -> Result<Kernel, InputError> {
        let cp: Checkpoint = rmp_serde::from_slice(bytes).map_err(|e| {
            InputError::new(
                "checkpoint",
                format!("{} bytes", bytes.len()),
                format!("is not a dita checkpoint: {e}"),
            )
        })?;
        if cp.format != CHECKPOINT_FORMAT {
            return Err(InputError::new(
                "checkpoint.format",
                &cp.format,
                format!("expected {CHECKPOINT_FORMAT}"),
            ));
        }
        let n = cp.slots.len();
        if cp.before_request.len() != n || cp.slots.iter().enumerate().any(|(i, s)| s.slot_id as usize != i) {
            return Err(InputError::new(
                "checkpoint.slots",
                n,
                "slots must be stored in slot id order, one per slot",
            ));
        }
        validate::slot_set(&cp.slots, n)?;
        cp.account.check_restored()?;
        for (i, point) in cp.before_request.iter().enumerate() {
            match point {
                Some(RestorePoint::Enter(slot)) => {
                    validate::slot(slot, n, &format!("checkpoint.before_request[{i}]."))?
                }
                Some(RestorePoint::Exit(Some(order))) => {
                    validate::order(&format!("checkpoint.before_request[{i}]"), order)?
                }
                Some(RestorePoint::Exit(None)) | None => {}
            }
        }
        let mut k = Kernel::with_seen_capacity(n, cp.seen_capacity)?;
        k.control = cp.control;
        k.order_seq = cp.order_seq;
        k.account = cp.account;
        k.account.rebuild_lookups();
        k.slots = cp.slots;
        k.cut_versions = k.slots.iter().map(|s| s.version).collect();
        k.cut = Cut::of(k.cut_versions.iter().copied());
        for (i, rp) in cp.before_request.into_iter().enumerate() {
            k.set_restore_point(i, rp);
        }
        k.rebuild_derived();
        Ok(k)
    }
}
