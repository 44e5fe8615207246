//! The slot lifecycle (docs/ARCHITECTURE.md, "Slot lifecycle") as one table.
//!
//! A row says: in this stage, this trigger is allowed and leads there. Any
//! (stage, trigger) pair without a row is refused as INVALID_TRANSITION and
//! changes nothing. What a trigger does to sizes and prices lives in the
//! kernel; this table only decides where the slot goes.

use crate::types::{Command, EventKind, Stage};
use Stage::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Intent(Command),
    /// The venue adapter has handed the order to the venue.
    Submitted,
    Entry(EventKind),
    Exit(EventKind),
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Intent(c) => c.as_str(),
            Trigger::Submitted => "SUBMITTED",
            Trigger::Entry(k) | Trigger::Exit(k) => k.as_str(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    To(Stage),
    /// POSITION_OPEN if the entry filled anything, else CLOSED.
    OpenIfFilled,
    /// CLOSED once the position is gone, else POSITION_OPEN (legs remain).
    ClosedIfFlat,
    /// Back to the slot as it was before the intent (rate limits).
    Restore,
    /// Allowed, and the stage stays (a cancel request).
    Stay,
}

use EventKind::{Cancelled, Expired, Fill, OrderAck, PartialFill, RateLimited, Rejected};
use Next::*;
use Trigger::{Entry, Exit, Intent, Submitted};

/// The stages in which an entry order is pending (requested, sent or working):
/// the slot holds an entry order, and it can be cancelled.
pub const ENTRY_PENDING: &[Stage] = &[OrderRequested, OrderSent, EntryWorking];
/// The stages in which an exit order is pending (requested or working): the
/// slot holds an exit order, and it can be cancelled.
pub const EXIT_PENDING: &[Stage] = &[ExitRequested, ExitWorking];

/// Whether `stage` is one of `ENTRY_PENDING`.
pub fn is_entry_pending(stage: Stage) -> bool {
    ENTRY_PENDING.contains(&stage)
}

/// Whether `stage` is one of `EXIT_PENDING`.
pub fn is_exit_pending(stage: Stage) -> bool {
    EXIT_PENDING.contains(&stage)
}

/// (stages the row applies to, trigger, where it leads)
pub const TABLE: &[(&[Stage], Trigger, Next)] = &[
    (&[Idle, Closed], Intent(Command::Enter), To(OrderRequested)),
    (&[OrderRequested], Submitted, To(OrderSent)),
    (&[OrderSent], Entry(OrderAck), To(EntryWorking)),
    // A fill can overtake its ACK on the wire; losing it would lose a position.
    (&[OrderSent, EntryWorking], Entry(PartialFill), To(EntryWorking)),
    (&[OrderSent, EntryWorking], Entry(Fill), To(PositionOpen)),
    (ENTRY_PENDING, Entry(Cancelled), OpenIfFilled),
    (ENTRY_PENDING, Entry(Expired), OpenIfFilled),
    (ENTRY_PENDING, Entry(Rejected), OpenIfFilled),
    (&[OrderRequested, OrderSent], Entry(RateLimited), Restore),
    (&[PositionOpen], Intent(Command::Exit), To(ExitRequested)),
    (&[ExitRequested], Submitted, Stay),
    (&[ExitRequested], Exit(OrderAck), To(ExitWorking)),
    (EXIT_PENDING, Exit(PartialFill), To(ExitWorking)),
    (EXIT_PENDING, Exit(Fill), ClosedIfFlat),
    (EXIT_PENDING, Exit(Cancelled), ClosedIfFlat),
    (EXIT_PENDING, Exit(Expired), ClosedIfFlat),
    (EXIT_PENDING, Exit(Rejected), ClosedIfFlat),
    (&[ExitRequested], Exit(RateLimited), Restore),
    (ENTRY_PENDING, Intent(Command::Cancel), Stay),
    (EXIT_PENDING, Intent(Command::Cancel), Stay),
];

pub fn next(stage: Stage, trigger: Trigger) -> Option<Next> {
    TABLE
        .iter()
        .find(|(from, t, _)| *t == trigger && from.contains(&stage))
        .map(|(_, _, next)| *next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_reachable_and_unambiguous() {
        for (i, (from, trigger, _)) in TABLE.iter().enumerate() {
            for (j, (other, t, _)) in TABLE.iter().enumerate() {
                if i != j && t == trigger {
                    assert!(from.iter().all(|s| !other.contains(s)), "rows {i} and {j} overlap");
                }
            }
        }
    }

    #[test]
    fn design_rows() {
        assert_eq!(next(Idle, Intent(Command::Enter)), Some(To(OrderRequested)));
        assert_eq!(next(Closed, Intent(Command::Enter)), Some(To(OrderRequested)));
        assert_eq!(next(PositionOpen, Intent(Command::Enter)), None);
        assert_eq!(next(EntryWorking, Entry(Fill)), Some(To(PositionOpen)));
        assert_eq!(next(ExitWorking, Exit(Fill)), Some(ClosedIfFlat));
        assert_eq!(next(ExitWorking, Exit(RateLimited)), None);
        assert_eq!(next(PositionOpen, Intent(Command::Cancel)), None);
    }
}
