//! The indices that find a slot: by trade id, by venue client order id, by
//! venue order id, and the live trades of each asset (what a mark touches);
//! the free set rebuilt with them.

use rustc_hash::FxHashMap;

use super::Kernel;
use crate::order::{Id, Order};
use crate::slot::OrderRole;
use crate::validate::{self, IndexKind};

pub(super) type Index = FxHashMap<Id, u32>;

pub(super) const UNLISTED: u32 = u32::MAX;

impl Kernel {
    fn index_mut(&mut self, kind: IndexKind) -> &mut Index {
        match kind {
            IndexKind::Trade => &mut self.trade_index,
            IndexKind::Client => &mut self.client_index,
            IndexKind::Venue => &mut self.venue_index,
        }
    }

    pub(super) fn index(&self, kind: IndexKind) -> &Index {
        match kind {
            IndexKind::Trade => &self.trade_index,
            IndexKind::Client => &self.client_index,
            IndexKind::Venue => &self.venue_index,
        }
    }

    pub(super) fn index_slot(&mut self, i: usize) {
        for (kind, id) in validate::identities(&self.slots[i]).into_iter().flatten() {
            self.index_mut(kind).insert(id, i as u32);
        }
        let s = &self.slots[i];
        if !s.is_free() && self.asset_pos[i] == UNLISTED {
            let list = self.asset_index.entry(s.asset.clone()).or_default();
            self.asset_pos[i] = list.len() as u32;
            list.push(i as u32);
        }
    }

    pub(super) fn unindex_slot(&mut self, i: usize) {
        for (kind, id) in validate::identities(&self.slots[i]).into_iter().flatten() {
            let map = self.index_mut(kind);
            if map.get(&id) == Some(&(i as u32)) {
                map.remove(&id);
            }
        }
        self.unindex_asset(i);
    }

    pub(super) fn unindex_asset(&mut self, i: usize) {
        let pos = std::mem::replace(&mut self.asset_pos[i], UNLISTED);
        if pos == UNLISTED {
            return;
        }
        let asset = &self.slots[i].asset;
        let list = self
            .asset_index
            .get_mut(asset)
            .expect("a listed slot's asset has a list");
        list.swap_remove(pos as usize);
        if let Some(&moved) = list.get(pos as usize) {
            self.asset_pos[moved as usize] = pos;
        }
        if list.is_empty() {
            self.asset_index.remove(asset);
        }
    }

    pub(super) fn assign_venue_order_id(&mut self, i: usize, role: OrderRole, venue_id: &Id) {
        let order = self.slots[i].order_mut(role).expect("the role was found on this slot");
        if order.venue_order_id == *venue_id {
            return;
        }
        let old = std::mem::replace(&mut order.venue_order_id, venue_id.clone());
        if self.venue_index.get(&old) == Some(&(i as u32)) {
            self.venue_index.remove(&old);
        }
        self.venue_index.insert(venue_id.clone(), i as u32);
    }

    /// Which other order already holds `venue_id`, if one does: an order id
    /// maps to one order, so a venue may not give a second order the same id.
    pub(super) fn other_holder_of_venue_id(&self, i: usize, role: OrderRole, venue_id: &Id) -> Option<String> {
        if venue_id.is_empty() {
            return None;
        }
        let slot = &self.slots[i];
        let other = match role {
            OrderRole::Entry => slot.active_exit_order.as_ref(),
            OrderRole::Exit => slot.active_entry_order.as_ref(),
        };
        if other.is_some_and(|o| o.venue_order_id == *venue_id) {
            return Some(format!("the other order of slot {i}"));
        }
        match self.venue_index.get(venue_id) {
            Some(&j) if j as usize != i => Some(format!("slot {j}")),
            _ => None,
        }
    }

    /// Drops an order this slot no longer holds from the order indices.
    pub(super) fn forget_order(&mut self, i: usize, order: &Order) {
        for (kind, id) in [
            (IndexKind::Client, &order.venue_client_id),
            (IndexKind::Venue, &order.venue_order_id),
        ] {
            let map = self.index_mut(kind);
            if !id.is_empty() && map.get(id) == Some(&(i as u32)) {
                map.remove(id);
            }
        }
    }

    /// Indices and free set, recomputed from the slots.
    pub(super) fn rebuild_derived(&mut self) {
        self.trade_index.clear();
        self.venue_index.clear();
        self.client_index.clear();
        self.asset_index.clear();
        self.asset_pos.fill(UNLISTED);
        self.free.clear();
        for i in 0..self.slots.len() {
            self.index_slot(i);
            if self.slots[i].is_free() {
                self.free.insert(i as u32);
            }
        }
    }
}
