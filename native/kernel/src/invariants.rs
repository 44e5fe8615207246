//! The kernel's invariants, read from its public state: what must hold after
//! every call, whatever the caller sent. Shared by the property tests and the
//! fuzz targets so both check the same thing.
//!
//! - sizes, prices and PnL are finite, and sizes never negative;
//! - no order has filled beyond its intended size (plus the slot's tolerance);
//! - the indices and the slots agree both ways: every index entry points at
//!   a slot holding that id, and every id a slot holds is indexed to it;
//! - the first free slot is the one `free_slot` names;
//! - every slot is one the kernel would accept back (reconcile, restore);
//! - the account's K and E figures, exposure and leverage are finite.

use crate::kernel::Kernel;
use crate::order::Order;
use crate::slot::Slot;
use crate::validate::{self, IndexKind};

/// The first invariant that does not hold, described; `Ok` when all hold.
pub fn check(k: &Kernel) -> Result<(), String> {
    for (i, s) in k.slots().iter().enumerate() {
        check_slot(i, s)?;
    }
    check_indices(k)?;
    let first_free = k.slots().iter().position(Slot::is_free).map(|i| i as u32);
    if k.free_slot() != first_free {
        return Err(format!(
            "free_slot() is {:?} but the first free slot is {first_free:?}",
            k.free_slot()
        ));
    }
    validate::slot_set(k.slots(), k.max_slots())
        .map_err(|e| format!("the kernel holds a slot set it would refuse back: {e}"))?;
    check_account(k)
}

/// The kernel's checkpoint restores to a kernel with the same checkpoint.
pub fn check_round_trip(k: &Kernel) -> Result<(), String> {
    check_restores(&k.checkpoint())
}

/// `bytes`, a kernel's own checkpoint, restore to a kernel that checkpoints to the same bytes.
pub fn check_restores(bytes: &[u8]) -> Result<(), String> {
    let restored = Kernel::restore(bytes).map_err(|e| format!("the kernel's own checkpoint is refused: {e}"))?;
    if restored.checkpoint() != bytes {
        return Err("a restored kernel checkpoints differently".to_owned());
    }
    Ok(())
}

/// `check` and `check_round_trip`.
pub fn check_with_round_trip(k: &Kernel) -> Result<(), String> {
    check(k)?;
    check_round_trip(k)
}

/// Panics naming the broken invariant (for tests and fuzz targets).
pub fn assert_hold(k: &Kernel) {
    if let Err(e) = check_with_round_trip(k) {
        panic!("kernel invariant broken: {e}");
    }
}

fn finite(what: &str, v: f64) -> Result<(), String> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(format!("{what} is {v}"))
    }
}

fn non_negative(what: &str, v: f64) -> Result<(), String> {
    finite(what, v)?;
    if v < 0.0 {
        return Err(format!("{what} is negative: {v}"));
    }
    Ok(())
}

fn check_slot(i: usize, s: &Slot) -> Result<(), String> {
    if s.slot_id as usize != i {
        return Err(format!("slot {i} says it is slot {}", s.slot_id));
    }
    let at = |field: &str| format!("slot {i} {field}");
    non_negative(&at("size"), s.size)?;
    non_negative(&at("initial_size"), s.initial_size)?;
    non_negative(&at("entry_price"), s.entry_price)?;
    non_negative(&at("last_mark_price"), s.last_mark_price)?;
    finite(&at("unrealized_pnl"), s.unrealized_pnl)?;
    finite(&at("realized_pnl"), s.realized_pnl)?;
    if s.active_leg_index as usize >= s.exit_leg_ratios.len() {
        return Err(format!(
            "slot {i} active leg {} of {} legs",
            s.active_leg_index,
            s.exit_leg_ratios.len()
        ));
    }
    for (role, o) in [("entry", &s.active_entry_order), ("exit", &s.active_exit_order)] {
        if let Some(o) = o {
            check_order(&at(role), o)?;
        }
    }
    Ok(())
}

fn check_order(what: &str, o: &Order) -> Result<(), String> {
    non_negative(&format!("{what} intended_size"), o.intended_size)?;
    non_negative(&format!("{what} filled_size"), o.filled_size)?;
    non_negative(&format!("{what} average_fill_price"), o.average_fill_price)?;
    if o.filled_size > o.intended_size + o.tolerance() {
        return Err(format!(
            "{what} order filled {} of an intended {}",
            o.filled_size, o.intended_size
        ));
    }
    Ok(())
}

fn check_indices(k: &Kernel) -> Result<(), String> {
    let index = |kind: IndexKind| match kind {
        IndexKind::Trade => k.trade_index(),
        IndexKind::Client => k.client_order_index(),
        IndexKind::Venue => k.venue_order_index(),
    };
    // Every id a slot holds is indexed to that slot...
    let mut held = 0usize;
    for (i, s) in k.slots().iter().enumerate() {
        for (kind, id) in validate::identities(s).into_iter().flatten() {
            held += 1;
            match index(kind).get(&id) {
                Some(&j) if j as usize == i => {}
                other => {
                    return Err(format!(
                        "slot {i} holds {} '{id}' but the index maps it to {other:?}",
                        kind.field()
                    ))
                }
            }
        }
    }
    // ...and no index holds anything else (a stale entry would route events to the wrong slot).
    let indexed: usize = [IndexKind::Trade, IndexKind::Client, IndexKind::Venue]
        .into_iter()
        .map(|kind| index(kind).len())
        .sum();
    if indexed != held {
        for kind in [IndexKind::Trade, IndexKind::Client, IndexKind::Venue] {
            for (id, &j) in index(kind) {
                let holds = k.slot(j as usize).is_some_and(|s| {
                    validate::identities(s)
                        .into_iter()
                        .flatten()
                        .any(|(kd, x)| kd == kind && x == *id)
                });
                if !holds {
                    return Err(format!(
                        "the {} index maps '{id}' to slot {j}, which does not hold it",
                        kind.field()
                    ));
                }
            }
        }
        return Err(format!("the indices hold {indexed} ids, the slots {held}"));
    }
    Ok(())
}

fn check_account(k: &Kernel) -> Result<(), String> {
    let a = k.account();
    for (what, v) in [
        ("seed_capital", a.seed_capital),
        ("k_capital", a.k_capital),
        ("k_realized_pnl", a.k_realized_pnl),
        ("k_fees_paid", a.k_fees_paid),
        ("k_funding_net", a.k_funding_net),
        ("e_wallet_balance", a.e_wallet_balance),
        ("e_available_margin", a.e_available_margin),
        ("e_used_margin", a.e_used_margin),
        ("e_maint_margin", a.e_maint_margin),
        ("available_capital", a.available_capital),
        ("reconcile_delta", a.reconcile_delta),
        ("unsettled_fees", a.unsettled_fees),
        ("calibration_ratio", a.calibration_ratio),
        ("equity", a.equity),
        ("unrealized_pnl", a.unrealized_pnl),
        ("open_notional", a.open_notional),
    ] {
        finite(&format!("account {what}"), v)?;
    }
    if a.open_positions < 0 {
        return Err(format!("account open_positions is {}", a.open_positions));
    }
    // Last, so a caller that knows of a bug here has seen every other check pass.
    finite("account leverage", a.leverage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::enter;
    use crate::types::Side;

    #[test]
    fn a_fresh_and_a_busy_kernel_hold() {
        let mut k = Kernel::new(3).unwrap();
        assert_eq!(check_with_round_trip(&k), Ok(()));
        assert!(k.process_intent(&enter(1, "t1", Side::Long, 1.0)).accepted);
        assert_eq!(check_with_round_trip(&k), Ok(()));
    }

    #[test]
    fn a_broken_slot_is_named() {
        let mut s = Slot::empty(0);
        s.size = -1.0;
        assert!(check_slot(0, &s).unwrap_err().contains("size is negative"));
        s.size = f64::NAN;
        assert!(check_slot(0, &s).unwrap_err().contains("size is NaN"));
        let o = Order {
            intended_size: 1.0,
            filled_size: 1.5,
            ..Order::default()
        };
        assert!(check_order("slot 0 entry", &o).unwrap_err().contains("filled 1.5"));
    }
}
