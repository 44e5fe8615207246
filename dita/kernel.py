"""`ExecutionKernel`: the public face of the Rust kernel.

The Rust kernel (`dita._native.Kernel`) owns every slot and decides every
transition. This class adds what lives beside it: the venue it trades
against, the journal, the projection, and control. Each call is one or two
native calls plus, when the venue answers at once, one per venue event; the
projection is pulled from change tracking and costs the call nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from dita._native import Kernel, StoreWriter
from dita.contracts import (
    KernelCommandType,
    KernelIntent,
    KernelOutcome,
    TradeSlot,
    VenueEvent,
    VenueOrder,
)
from dita.control import ControlPlane, ControlUpdate, KernelControlSnapshot, LocalControlPlane
from dita.enums import KernelMode, KernelVerbosity, OrderType, TradeStage, VenueOrderStatus
from dita.journal import KernelJournal, MemoryJournal
from dita.projection import InMemoryProjection, KernelProjection
from dita.venue import MockVenueAdapter, VenueAdapter

CallObserver = Callable[[str, KernelOutcome, float], None]

log = logging.getLogger("dita.kernel")

#: The longest the kill switch and flatten wait for a strategy call in progress to return.
SETTLE_S = 2.0

#: Stages in which a slot has an order at (or on its way to) the venue.
WORKING_STAGES = frozenset(
    {
        TradeStage.ORDER_REQUESTED,
        TradeStage.ORDER_SENT,
        TradeStage.ENTRY_WORKING,
        TradeStage.EXIT_REQUESTED,
        TradeStage.EXIT_WORKING,
    }
)


def _working_order(slot: TradeSlot) -> VenueOrder | None:
    if slot.fsm_state not in WORKING_STAGES:
        return None
    exiting = slot.fsm_state in (TradeStage.EXIT_REQUESTED, TradeStage.EXIT_WORKING)
    order: VenueOrder | None = slot.active_exit_order if exiting else slot.active_entry_order
    return order


def _out_of_range(error: OverflowError, name: str, value: Any) -> ValueError:
    """The ValueError naming the argument that every other bad number gets, for
    an int the binding cannot convert (it raises OverflowError, which `except
    ValueError` would miss, and names no argument)."""
    too_long = isinstance(value, int) and value.bit_length() > 128
    shown = f"an int of {value.bit_length()} bits" if too_long else value
    return ValueError(f"{name} = {shown}: {error}")


def _float_overflows(value: Any) -> bool:
    try:
        float(value)
    except OverflowError:
        return True
    except (TypeError, ValueError):
        return False
    return False


def _first_float_overflow(error: OverflowError, **arguments: Any) -> ValueError:
    name = next((n for n, v in arguments.items() if _float_overflows(v)), next(iter(arguments)))
    return _out_of_range(error, name, arguments[name])


def _order_fields(order: VenueOrder) -> dict[str, Any]:
    if not isinstance(order, VenueOrder):
        raise TypeError(f"order = {order!r}: must be a VenueOrder")
    fields: dict[str, Any] = order.to_dict()
    return fields


class KernelSlotView:
    """One slot, read live from the kernel; assigning a field writes it through.

    A write bypasses the lifecycle (it is how operators repair a slot by
    hand) but is checked like a reconcile: a value the kernel would refuse
    raises and changes nothing.
    """

    __slots__ = ("_kernel", "_slot_id")
    _kernel: ExecutionKernel
    _slot_id: int

    def __init__(self, kernel: ExecutionKernel, slot_id: int) -> None:
        object.__setattr__(self, "_kernel", kernel)
        object.__setattr__(self, "_slot_id", slot_id)

    @property
    def slot_id(self) -> int:
        return self._slot_id

    def snapshot(self) -> TradeSlot:
        return self._kernel._core.slot(self._slot_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.snapshot(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "slot_id":
            raise AttributeError("slot_id is the view's identity and cannot be assigned")
        self._write(**{name: value})

    def _write(self, **changes: Any) -> None:
        self._kernel._core.set_slot(self.snapshot().replace(**changes))

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = self.snapshot().to_dict()
        return result

    def mark_price(self, price: float) -> None:
        """Marks this slot alone (`ExecutionKernel.mark_price` marks an asset)."""
        slot = self.snapshot()
        try:
            unrealized = (1.0 if slot.side == "LONG" else -1.0) * (price - slot.entry_price) * slot.size
        except OverflowError as e:
            raise _out_of_range(e, "price", price) from None
        self._write(last_mark_price=price, unrealized_pnl=unrealized if slot.is_open() else 0.0)

    def consume_exit_leg(self) -> float:
        """Skips the active exit leg; returns its ratio."""
        slot = self.snapshot()
        ratio = slot.next_exit_ratio()
        self._write(active_leg_index=min(slot.active_leg_index + 1, len(slot.exit_leg_ratios) - 1))
        return ratio

    def attach_entry_order(self, order: VenueOrder) -> None:
        self._write(active_entry_order=_order_fields(order))

    def attach_exit_order(self, order: VenueOrder) -> None:
        self._write(active_exit_order=_order_fields(order))

    def __repr__(self) -> str:
        s = self.snapshot()
        return f"KernelSlotView(slot_id={self._slot_id}, state={s.fsm_state.value}, trade_id={s.trade_id!r})"


class KernelStateView:
    """The slots as write-through views, and the kernel's indices."""

    def __init__(self, kernel: ExecutionKernel) -> None:
        self._kernel = kernel
        self.slots = [KernelSlotView(kernel, i) for i in range(kernel.max_slots)]

    @property
    def active_trade_index(self) -> dict[str, int]:
        return self._kernel._core.trade_index()

    @property
    def venue_order_index(self) -> dict[str, int]:
        return self._kernel._core.venue_order_index()

    @property
    def client_order_index(self) -> dict[str, int]:
        return self._kernel._core.client_order_index()


class ExecutionKernel:
    """A multi-slot execution kernel.

    Keyword arguments (all optional):
        max_slots: number of trade slots, fixed for the kernel's life (default 10).
        kernel_id: this kernel's name in projections (default: host-pid-random).
        venue: where orders go (default: a `MockVenueAdapter`).
        journal: where transitions are recorded when control's journal flag is
            on (default: a bounded `MemoryJournal`).
        projection: where state is mirrored (default: an `InMemoryProjection`).
        projection_client: a connected `hazelcast.HazelcastClient`; when given
            (and no `projection`), state streams into its cluster's maps.
        control: the control to start with (default: ACTIVE, NORMAL, no journal).
        control_plane: holds control set in this process through `update_control`
            (default: a local one). A kernel attached to a cluster obeys the
            cluster's `dita.control` as well, see `listen_control`.
        listen_control: whether a kernel attached to a cluster (through
            `projection_client`, or a `HazelcastProjection`) applies what
            operators write to `dita.control`: a `ControlListener` reads the
            map before the constructor returns, applies every valid entry as it
            arrives (a HALT also cancels every working order), reports what it
            applied in `dita.kernels`, and is stopped by `close()`. Default
            True; pass False only when something else listens for this kernel.
        control_key: the key operators sign control entries with; without one
            the kernel applies unsigned entries, so anyone who can reach the
            cluster can steer it (default: None).
        control_entries: the control entries this kernel id applied in an
            earlier life (`control_entries()` of that life, kept in a run's
            checkpoint): in force until the map holds newer ones, and older
            revs are refused as replays. With a control key, the entries the
            id last reported in `dita.kernels` count too (their signatures
            prove them).
        seen_event_capacity: event ids each slot remembers for idempotency (default 64).
        document_key: signs every slot and account document the kernel writes
            (HMAC-SHA256, see `dita.checkpoint.document_key`), so that a resume
            adopts from the maps only what this kernel wrote; None: unsigned
            documents, and a resume adopts nothing from the maps (default None).
    """

    def __init__(
        self,
        *,
        max_slots: int = 10,
        kernel_id: str | None = None,
        venue: VenueAdapter | None = None,
        journal: KernelJournal | None = None,
        projection: KernelProjection | None = None,
        projection_client: Any = None,
        control: KernelControlSnapshot | None = None,
        control_plane: ControlPlane | None = None,
        listen_control: bool = True,
        control_key: bytes | None = None,
        control_entries: Mapping[str, Mapping[str, Any]] | None = None,
        seen_event_capacity: int = 64,
        document_key: bytes | None = None,
        _core: Kernel | None = None,
    ) -> None:
        self._core = (
            _core if _core is not None else Kernel(max_slots, seen_event_capacity=seen_event_capacity)
        )
        if document_key is not None:
            self._core.set_document_key(document_key)
        self.max_slots = self._core.max_slots
        self._kernel_id = kernel_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.venue: VenueAdapter = venue if venue is not None else MockVenueAdapter()
        self.journal: KernelJournal = journal if journal is not None else MemoryJournal()
        self.control_plane: ControlPlane = control_plane or LocalControlPlane(control)
        self._journal_seq = 0
        self._observer: CallObserver | None = None
        self._control_report: dict[str, Any] = {}
        # How many strategy calls are in progress (see `cancel_working_orders`). A
        # counter, not a lock: an uncontended lock cost 300-650 ns a call here,
        # half a kernel call.
        self._busy = 0
        #: Orders whose cancel the venue adapter failed to send: still to be cancelled.
        self._unsent_cancels: set[str] = set()
        self.started_at = time.time()
        self._apply_control(self.control_plane.read())
        self.state = KernelStateView(self)
        # A projection the kernel makes itself is the kernel's to close.
        self._own_projection = projection is None and projection_client is not None
        if self._own_projection:
            from dita.projection.hazelcast import HazelcastProjection

            projection = HazelcastProjection(projection_client)
        self.projection: KernelProjection = projection if projection is not None else InMemoryProjection()
        client = getattr(self.projection, "client", None) if listen_control else None
        self.control_listener: Any = None
        prior = self._prior_control(client, control_key, control_entries) if client is not None else {}
        self.projection.attach(self)
        if client is not None:
            self._listen(client, control_key, prior, None)

    def _prior_control(
        self, client: Any, control_key: bytes | None, control_entries: Mapping[str, Mapping[str, Any]] | None
    ) -> dict[str, dict[str, Any]]:
        from dita.controlplane.listener import newest_entries, read_prior_entries

        # Read before this kernel's first beat replaces the id's last report.
        return newest_entries(control_entries, read_prior_entries(client, self._kernel_id, control_key, 5.0))

    def _listen(
        self,
        client: Any,
        control_key: bytes | None,
        prior: Mapping[str, Mapping[str, Any]],
        default: KernelControlSnapshot | None,
    ) -> bool:
        from dita.controlplane.listener import ControlListener

        self.control_listener = ControlListener(
            client, self, control_key=control_key, prior_entries=prior, default=default
        )
        if self.control_listener.start():
            return True
        log.warning(
            "kernel %s: dita.control unreadable; running in mode %s until it is read",
            self._kernel_id,
            self._control.mode.value,
        )
        return False

    def join_cluster(
        self,
        client: Any,
        *,
        control_key: bytes | None = None,
        control_entries: Mapping[str, Mapping[str, Any]] | None = None,
        default_control: KernelControlSnapshot | None = None,
    ) -> bool:
        """Streams into the cluster of `client` from now on (everything the kernel
        holds is written first) and obeys its `dita.control`, read before this
        returns: for a kernel that started without its cluster. `default_control`
        is what fields no entry sets fall back to (default: the control in force
        now). Returns False when the control map could not be read yet (the
        listener goes on trying). Raises `ProjectionError` when the cluster
        cannot be used, and changes nothing then."""
        from dita.projection.hazelcast import HazelcastProjection

        if self.control_listener is not None:
            raise RuntimeError(f"kernel {self._kernel_id} already listens to a cluster")
        projection = HazelcastProjection(client)
        prior = self._prior_control(client, control_key, control_entries)
        # The old projection lets go first: both draining the kernel's changes at
        # once would leave some in neither.
        self.projection.detach(self._kernel_id)
        if self._own_projection:
            self.projection.close()
        self.projection, self._own_projection = projection, True
        projection.attach(self)
        return self._listen(client, control_key, prior, default_control)

    # ----- identity and control -------------------------------------------------

    @property
    def kernel_id(self) -> str:
        return self._kernel_id

    @property
    def control(self) -> KernelControlSnapshot:
        return self._control

    def update_control(self, update: ControlUpdate) -> KernelControlSnapshot:
        """Applies a control change; a bad value raises and changes nothing."""
        snapshot = self.control_plane.update(update)
        self._apply_control(snapshot)
        return snapshot

    def apply_control(self, snapshot: KernelControlSnapshot) -> None:
        """Puts a control decided elsewhere (e.g. the cluster's) into force at once."""
        self._apply_control(snapshot)

    def record_control_event(self, kind: str, detail: dict[str, Any]) -> None:
        """Journals a control apply or refusal (when the journal is on), beside transitions."""
        if self._journal_on:
            self._journal_seq += 1
            self.journal.record(
                {
                    "kernel_id": self._kernel_id,
                    "seq": self._journal_seq,
                    "control_event": {"kind": kind, **detail},
                    "control": {"mode": self._control.mode.value, "verbosity": self._control.verbosity.value},
                    "recorded_at": time.time(),
                }
            )

    def report_control(self, report: dict[str, Any]) -> None:
        """Where the applied control came from (revs, last refusal), for `dita.kernels`;
        the projection is asked to publish it at once so operators see it within ms."""
        self._control_report = report
        beat_now = getattr(self.projection, "beat_now", None)
        if beat_now is not None:
            beat_now()

    def _apply_control(self, snapshot: KernelControlSnapshot) -> None:
        self._core.set_control(snapshot.mode.value, snapshot.verbosity.value, snapshot.journal)
        self._control = snapshot
        self._journal_on = snapshot.journal

    # ----- the hot path -----------------------------------------------------------

    def process_intent(self, intent: KernelIntent) -> KernelOutcome:
        """Applies an intent, hands an accepted order to the venue and applies
        whatever the venue answers at once. If the venue raises, the slot keeps
        its request (ORDER_REQUESTED or EXIT_REQUESTED, CANCEL-able) and the
        exception propagates."""
        self._busy += 1
        try:
            return self._process_intent(intent)
        finally:
            self._busy -= 1

    def _process_intent(self, intent: KernelIntent) -> KernelOutcome:
        started = time.perf_counter() if self._observer is not None else 0.0
        outcome = self._core.process_intent(intent)
        order = outcome.order
        if order is not None and outcome.accepted:
            if intent.action == KernelCommandType.CANCEL:
                try:
                    events = self.venue.cancel(order, intent.reason)
                except Exception:
                    # The kernel marked the order CANCEL_REQUESTED, but no cancel went out.
                    self._unsent_cancels.add(order.venue_client_id)
                    raise
                self._unsent_cancels.discard(order.venue_client_id)
            else:
                events = self.venue.submit(intent, order)
                submitted = self._core.submitted(outcome.slot_id, None)
                if submitted.transitions:
                    outcome = outcome.followed_by([submitted], [])
            if events:
                answers = [self._core.on_venue_event(event) for event in events]
                outcome = outcome.followed_by(answers, list(events))
        if self._journal_on:
            self._record(outcome, intent=intent)
        if self._observer is not None:
            self._observer("intent", outcome, time.perf_counter() - started)
        return outcome

    def on_venue_event(self, event: VenueEvent) -> KernelOutcome:
        started = time.perf_counter() if self._observer is not None else 0.0
        outcome = self._core.on_venue_event(event)
        if self._journal_on:
            self._record(outcome, event=event)
        if self._observer is not None:
            self._observer("venue_event", outcome, time.perf_counter() - started)
        return outcome

    def cancel_working_orders(self, reason: str) -> dict[str, Any]:
        """The kill switch: a CANCEL through the lifecycle for every order working
        at (or on its way to) the venue, each journaled and projected like any
        other. A venue adapter that raises on one cancel does not stop the rest.
        Returns cancels_sent, failed (slot id and why), working (orders still
        working, cancelled or not) and cancelling (of those, cancels sent).

        It runs on the control listener's thread beside the strategy's. Once
        HALTED is in force no intent can create an order, but a call the
        strategy began before may be handing one to the venue right now; such
        an order is cancelled once that call has returned (waiting at most
        `SETTLE_S`), never before the venue has it."""
        sent, failed, deferred = self._cancel_pass(reason, range(self.max_slots))
        if deferred:
            self._settle()
            more, failed_later, _ = self._cancel_pass(reason, deferred)
            sent, failed = sent + more, failed + failed_later
        return {
            "cancels_sent": sent,
            "failed": failed,
            "waited_for_strategy": len(deferred),
            **self.working_orders(),
        }

    def _settle(self) -> None:
        """Waits (at most `SETTLE_S`) for a strategy call in progress to return."""
        deadline = time.monotonic() + SETTLE_S
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.0005)

    def _cancel_pass(
        self, reason: str, slot_ids: Iterable[int]
    ) -> tuple[int, list[dict[str, Any]], list[int]]:
        """Cancels what works in `slot_ids`; returns how many were sent, what
        failed, and the slots whose order a strategy call is still sending."""
        sent = 0
        failed: list[dict[str, Any]] = []
        deferred: list[int] = []
        for slot_id in slot_ids:
            slot = self._core.slot(slot_id)
            order = _working_order(slot)
            if order is None or self._cancel_sent(order):
                continue
            if self._busy and order.status is VenueOrderStatus.NEW:
                deferred.append(slot_id)
                continue
            intent = KernelIntent(action="CANCEL", slot_id=slot_id, trade_id=slot.trade_id, reason=reason)
            sent += self._operator_intent(intent, failed)
        return sent, failed, deferred

    def _operator_intent(self, intent: KernelIntent, failed: list[dict[str, Any]]) -> bool:
        """One intent of the kill switch or a flatten: True when accepted; otherwise
        what refused or failed it goes into `failed` and the sweep goes on."""
        try:
            outcome = self._process_intent(intent)
        except Exception as e:  # the venue adapter failed: name it, go on with the rest
            failed.append({"slot_id": intent.slot_id, "why": f"{type(e).__name__}: {e}"[:200]})
            return False
        if not outcome.accepted:
            failed.append({"slot_id": intent.slot_id, "why": outcome.diagnostic_code.value})
        return bool(outcome.accepted)

    def flatten(self, reason: str) -> dict[str, Any]:
        """Closes every open position at market: an operator's order, allowed
        while HALTED (the kernel takes REDUCE_ONLY for these exits alone).
        Runs on the control listener's thread once a strategy call in progress
        has returned. Returns exits_sent and failed (slot id and why)."""
        sent = 0
        failed: list[dict[str, Any]] = []
        self._settle()
        halted = self._control.mode is KernelMode.HALTED
        if halted:
            self._core.set_control(
                KernelMode.REDUCE_ONLY.value, self._control.verbosity.value, self._control.journal
            )
        try:
            for slot in self.slots():
                if slot.fsm_state is not TradeStage.POSITION_OPEN:
                    continue
                intent = KernelIntent(
                    action="EXIT",
                    slot_id=slot.slot_id,
                    trade_id=slot.trade_id,
                    target_size=slot.size,
                    order_type=OrderType.MARKET,
                    reason=reason,
                )
                sent += self._operator_intent(intent, failed)
        finally:
            if halted:
                self._apply_control(self._control)
        return {"exits_sent": sent, "failed": failed}

    def control_entries(self) -> dict[str, dict[str, Any]]:
        """The cluster control entries in force (for a checkpoint: see `control_entries=`)."""
        if self.control_listener is None:
            return {}
        entries: dict[str, dict[str, Any]] = self.control_listener.report()["entries"]
        return entries

    def working_orders(self) -> dict[str, int]:
        """working: orders at or on their way to the venue; cancelling: of those,
        the ones whose cancel the venue adapter sent."""
        working = cancelling = 0
        for slot in self.slots():
            order = _working_order(slot)
            if order is not None:
                working += 1
                cancelling += self._cancel_sent(order)
        return {"working": working, "cancelling": cancelling}

    def _cancel_sent(self, order: VenueOrder) -> bool:
        return (
            order.status is VenueOrderStatus.CANCEL_REQUESTED
            and order.venue_client_id not in self._unsent_cancels
        )

    def observe_calls(self, observer: CallObserver | None) -> None:
        """Calls `observer(kind, outcome, seconds)` after every `process_intent`
        ("intent") and `on_venue_event` ("venue_event"); None stops it. It runs
        on the hot path, so it must be quick and must not raise."""
        self._observer = observer

    def mark_price(self, asset: str, price: float) -> int:
        """Marks every live trade of `asset`; returns how many slots it touched."""
        try:
            return self._core.mark_price(asset, price)
        except OverflowError as e:
            raise _out_of_range(e, "price", price) from None

    # ----- slots --------------------------------------------------------------------

    def slot(self, slot_id: int) -> KernelSlotView:
        if not 0 <= slot_id < self.max_slots:
            raise IndexError(f"slot_id = {slot_id}: must be 0 to {self.max_slots - 1}")
        return self.state.slots[slot_id]

    def free_slot(self) -> KernelSlotView | None:
        slot_id = self._core.free_slot()
        return None if slot_id is None else self.state.slots[slot_id]

    def slots(self) -> Iterator[TradeSlot]:
        for i in range(self.max_slots):
            yield self._core.slot(i)

    def reconcile_from_slots(self, slots: Sequence[TradeSlot | Mapping[str, Any]]) -> KernelOutcome:
        """Replaces every slot with `slots` (those left out become IDLE) after
        checking the whole set; an invalid set is refused whole."""
        return self._core.reconcile_from_slots(list(slots), None)

    # ----- account --------------------------------------------------------------------

    @property
    def account(self) -> dict[str, Any]:
        return self._core.account()

    def set_seed_capital(self, seed: float) -> None:
        try:
            self._core.set_seed_capital(seed)
        except OverflowError as e:
            raise _out_of_range(e, "seed", seed) from None

    def set_exchange_config(self, config: Mapping[str, Any]) -> None:
        """Loads the fee schedule; keys (all optional, unset ones keep their value):
        taker_rate, maker_rate (fractions: 0.0005 = 0.05 %), lot_step, tick_size,
        funding_interval_secs."""
        self._core.set_exchange_config(dict(config))

    def calibrate_fee(self, fill_price: float, fill_qty: float, actual_fee: float) -> dict[str, Any]:
        """Checks the fee model against one known fill: expected_fee, actual_fee,
        ratio, deviation_pct, calibration_status (OK < 1 %, WARN < 5 %, ERROR),
        calibration_ratio (moving average) and calibration_samples."""
        try:
            return self._core.calibrate_fee(fill_price, fill_qty, actual_fee)
        except OverflowError as e:
            figures = {"fill_price": fill_price, "fill_qty": fill_qty, "actual_fee": actual_fee}
            raise _first_float_overflow(e, **figures) from None

    def on_account_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Applies FILL_SETTLED, ACCOUNT_UPDATE or FUNDING_FEE once per event id."""
        return self._core.on_account_event(dict(event))

    # ----- whole-kernel views -------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        snap = self._core.snapshot()
        snap["kernel_id"] = self._kernel_id
        snap["control"] = self._control.as_dict()
        return snap

    def drain_changes(self) -> tuple[list[TradeSlot], dict[str, Any] | None]:
        """What changed since the last drain, each key once (for projections)."""
        return self._core.drain_changes()

    def drain_documents(self) -> tuple[list[tuple[str, int, str]], tuple[int, str] | None]:
        """What changed since the last drain as JSON documents (for stores)."""
        return self._core.drain_documents(self._kernel_id)

    def attach_to(self, writer: StoreWriter) -> None:
        """From now on a store writer takes this kernel's changes as they happen,
        from a thread of its own that never needs the interpreter lock
        (documents built in Rust, never Python objects); everything first."""
        writer.attach(self._core, self._kernel_id)

    def raise_versions(self, slot_versions: Mapping[int, int], account_version: int | None = None) -> None:
        """Lifts versions above those a store holds for this kernel id."""
        floors = dict(slot_versions)
        try:
            self._core.raise_versions(floors, account_version)
        except OverflowError as e:
            # Slot ids are u32 and versions u64 in the kernel.
            for k, v in floors.items():
                if isinstance(k, int) and not 0 <= k < 2**32:
                    raise _out_of_range(e, "slot_versions key", k) from None
                if isinstance(v, int) and not 0 <= v < 2**64:
                    raise _out_of_range(e, f"slot_versions[{k!r}]", v) from None
            raise _out_of_range(e, "account_version", account_version) from None

    def mark_all_changed(self) -> None:
        """Makes the next drain return every slot and the account."""
        self._core.mark_all_changed()

    def pending_changes(self) -> int:
        return self._core.pending_changes()

    def status(self) -> dict[str, Any]:
        """This kernel's entry for `dita.kernels`."""
        return {
            "kernel_id": self._kernel_id,
            "state": "RUNNING",
            "control": self._control.as_dict(),
            "control_report": self._control_report,
            "orders": self.working_orders(),
            "max_slots": self.max_slots,
            "started_at": self.started_at,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "heartbeat_at": time.time(),
        }

    def checkpoint(self) -> bytes:
        """The whole kernel state as msgpack bytes."""
        return self._core.checkpoint()

    @classmethod
    def from_checkpoint(cls, data: bytes, **kwargs: Any) -> ExecutionKernel:
        """A kernel restored from `checkpoint()` bytes; other arguments as for the constructor."""
        core = Kernel.restore(data)
        control = kwargs.pop("control", None) or KernelControlSnapshot(
            mode=core.mode, verbosity=core.verbosity, journal=core.journal, source="checkpoint"
        )
        return cls(_core=core, control=control, **kwargs)

    def close(self) -> None:
        """Stops the control listener, flushes the projection and the journal."""
        if self.control_listener is not None:
            self.control_listener.stop()
        self.projection.detach(self._kernel_id)
        if self._own_projection:
            self.projection.close()
        self.journal.close()

    # ----- journal ----------------------------------------------------------------------

    def _record(
        self, outcome: KernelOutcome, *, intent: KernelIntent | None = None, event: VenueEvent | None = None
    ) -> None:
        verbosity = self._control.verbosity
        control = {"mode": self._control.mode.value, "verbosity": verbosity.value, "rev": self._control.rev}
        detailed = verbosity in (KernelVerbosity.VERBOSE, KernelVerbosity.TRACE)
        traced = verbosity is KernelVerbosity.TRACE
        for transition in outcome.transitions:
            self._journal_seq += 1
            self.journal.record(
                {
                    "kernel_id": self._kernel_id,
                    "seq": self._journal_seq,
                    "transition": transition.to_dict(),
                    "slot": self._core.slot(transition.slot_id).to_dict() if detailed else None,
                    "event": event.to_dict() if traced and event is not None else None,
                    "intent": intent.to_dict() if traced and intent is not None else None,
                    "outcome": {
                        "diagnostic_code": outcome.diagnostic_code.value,
                        "accepted": outcome.accepted,
                    },
                    "control": control,
                    "recorded_at": time.time(),
                }
            )
