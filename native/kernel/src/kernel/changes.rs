//! Change tracking for projections: versions (raised above a store's), the
//! keys changed since the last drain, and the drains into `Changes` and into
//! signed store documents (see `documents` for their format).

use std::sync::Arc;

use super::{Changes, Kernel};
use crate::documents::{takes_version, DocumentKey, Documents};
use crate::time::Timestamp;

impl Kernel {
    /// Keys changed since the last drain (slots and the account).
    pub fn pending_changes(&self) -> usize {
        self.dirty.len() + usize::from(self.account_dirty)
    }

    /// Lifts versions above what a store already holds (a restarted kernel
    /// meeting its own older projections), so versions readers see only grow.
    /// Raised keys count as changed, and a raised slot moves the account's
    /// version (its cut changes). A floor not below `MAX_VERSION` is no kernel's
    /// (anyone can write a store) and is ignored: raising to it would leave
    /// the key's version stuck at the top of u64, and its projection frozen.
    pub fn raise_versions(&mut self, slot_floors: &[(u32, u64)], account_floor: Option<u64>) {
        let mut raised = false;
        for &(slot_id, floor) in slot_floors {
            let i = slot_id as usize;
            if takes_version(floor) && i < self.slots.len() && self.slots[i].version <= floor {
                self.slots[i].version = floor + 1;
                self.mark_dirty(i);
                raised = true;
            }
        }
        if raised {
            self.account.version = self.account.version.saturating_add(1);
            self.account_dirty = true;
        }
        if let Some(floor) = account_floor.filter(|&f| takes_version(f) && self.account.version <= f) {
            self.account.version = floor + 1;
            self.account_dirty = true;
        }
    }

    /// The key the documents of `drain_documents` and of a store's feed are
    /// signed with; None: unsigned. Not part of checkpoints. Set it before
    /// the kernel is attached to a store: a document already written stays
    /// as it is until its key changes.
    pub fn set_document_key(&mut self, key: Option<DocumentKey>) {
        self.document_key = key.map(Arc::new);
    }

    pub fn document_key(&self) -> Option<Arc<DocumentKey>> {
        self.document_key.clone()
    }

    /// Marks every slot and the account changed, so the next drain returns
    /// all of them: what a projection needs after its store lost writes.
    pub fn mark_all_changed(&mut self) {
        for i in 0..self.slots.len() {
            self.mark_dirty(i);
        }
        self.account_dirty = true;
    }

    /// Like `drain_changes`, as JSON documents for a store: each carries the
    /// kernel id, its key, its version and when it was written, the account
    /// its cut, and each its signature when the kernel has a document key.
    pub fn drain_documents(&mut self, kernel_id: &str, now: Timestamp) -> Documents {
        let changes = self.drain_changes();
        Documents::of(&changes, kernel_id, now, self.document_key.as_deref())
    }

    pub fn drain_changes(&mut self) -> Changes {
        let mut slots = Vec::with_capacity(self.dirty.len());
        let mut cut_moved = false;
        for i in self.dirty.drain(..) {
            let slot = &self.slots[i as usize];
            self.is_dirty[i as usize] = false;
            // The cut follows the slots here, on the drain, not on every call.
            let drained = &mut self.cut_versions[i as usize];
            if *drained != slot.version {
                self.cut.moved(i, *drained, slot.version);
                *drained = slot.version;
                cut_moved = true;
            }
            slots.push(slot.clone());
        }
        if cut_moved && !self.account_dirty {
            // Every slot change moves the account already; should one not,
            // the account still goes with the cut it is now consistent with.
            self.account.version = self.account.version.saturating_add(1);
            self.account_dirty = true;
        }
        let account = if std::mem::take(&mut self.account_dirty) {
            // Most drains move only the account's version and cut (a slot
            // changed, its open figures did not): the view of the last drain
            // stands, and summing every slot's exposure under the kernel's
            // lock is saved.
            if self.view.is_none() {
                self.view = Some(self.account.view(self.exposure()));
            }
            let mut view = self.view.clone().expect("just built");
            view.version = self.account.version;
            Some(view)
        } else {
            None
        };
        Changes {
            slots,
            account,
            cut: self.cut,
        }
    }
}
