"""What `dita watch` shows: the documents of dita's maps turned into one frame of text.

Pure: a `ProjectionView` (or none yet), the time and what is known about the
cluster's reachability go in, lines come out. No I/O and no terminal here, so
every frame can be built and checked from documents in a unit test; the
command (`dita/commands/watch.py`) reads the cluster and draws.

Documents are read defensively: a field missing or of the wrong type shows
as "?" and never stops the dashboard, since any client can write the maps.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dita.controlplane.entries import GLOBAL_KEY, KERNEL_PREFIX
from dita.projection.reader import LIVE_STAGES, ProjectionView

#: A RUNNING kernel whose last beat is older than this many seconds is shown STALE.
#: Kernels beat every second; five missed beats is no hiccup.
STALE_AFTER_S = 5.0
#: A RUNNING kernel silent for longer than this is DEAD: its process is gone without
#: a clean stop (SIGKILL, OOM, a lost host). Its entry does not expire, so it stays DEAD.
DEAD_AFTER_S = 30.0


#: Widest a cell of these columns grows before it is cut with an ellipsis.
_CELL_LIMITS = {"KERNEL": 24, "TRADE": 20, "WHY": 60, "PROCESS": 28}


@dataclass(frozen=True)
class Outage:
    """The cluster stopped answering: since when (Unix seconds) and the last read's error."""

    since: float
    error: str


@dataclass(frozen=True)
class Line:
    """One line of a frame; `alert` lines are what an operator must not miss."""

    text: str
    alert: bool = False


@dataclass(frozen=True)
class Frame:
    lines: tuple[Line, ...]

    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


@dataclass(frozen=True)
class Settings:
    """How a frame is drawn.

    source: where the data comes from, for the header ("cluster 'dita' at ...").
    interval: seconds between frames, for the header.
    stale_after: a RUNNING kernel beating less recently than this is STALE.
    dead_after: one beating less recently than this is DEAD (None: it stays STALE).
    kernel_ids: show only these kernels (empty: every kernel).
    width, height: the screen; lines are cut to `width`, and the tables
        shortened to fit `height` (open slots first). None: no limit.
    """

    source: str = ""
    interval: float = 1.0
    stale_after: float = STALE_AFTER_S
    dead_after: float | None = None
    kernel_ids: frozenset[str] = field(default_factory=frozenset)
    width: int | None = None
    height: int | None = None


# ----- reading documents -------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits, which JSON allows
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return "?" if value is None else str(value)


def kernel_state(
    status: Mapping[str, Any] | None, now: float, stale_after: float, dead_after: float | None = None
) -> str:
    """RUNNING, STOPPED, STALE (says RUNNING, but has not beaten for `stale_after` s), DEAD
    (nor for `dead_after` s: it died without stopping) or GONE (no `dita.kernels` entry,
    yet its account or slots are still in the maps: a STOPPED entry expired)."""
    if status is None:
        return "GONE"
    state = status.get("state")
    if state == "STOPPED":
        return "STOPPED"
    beat = _number(status.get("heartbeat_at"))
    if beat is not None and dead_after is not None and now - beat > dead_after:
        return "DEAD"
    if beat is None or now - beat > stale_after:
        return "STALE"
    return "RUNNING" if state == "RUNNING" else _text(state)


def control_sync(kernel_id: str, status: Mapping[str, Any], control: Mapping[str, Mapping[str, Any]]) -> str:
    """Whether a kernel applied what operators wrote for it: "ok", "behind <key>" (a newer
    rev is in `dita.control` than the kernel reports), "REFUSED <key>" (it refused it),
    "HOLDING <key>" (the entry it applied is gone from the map, and it keeps it) or
    "never read" (it has not read `dita.control` yet: started without its cluster)."""
    report = _dict(status.get("control_report"))
    if report and report.get("control_read_at") is None and "control_read_at" in report:
        return "never read"
    applied = _dict(report.get("revs"))
    refusal = _dict(report.get("last_refusal"))
    held = _dict(report.get("held"))
    for key in (GLOBAL_KEY, KERNEL_PREFIX + kernel_id):
        if key in held and key not in control:
            return f"HOLDING {'own' if key != GLOBAL_KEY else key}"
    for key in (GLOBAL_KEY, KERNEL_PREFIX + kernel_id):
        wanted = _int(_dict(control.get(key)).get("rev"))
        if wanted is None or (_int(applied.get(key)) or 0) >= wanted:
            continue
        name = "own" if key != GLOBAL_KEY else key
        if refusal.get("key") == key and refusal.get("rev") == wanted:
            return f"REFUSED {name}"
        return f"behind {name}"
    return "ok"


# ----- formatting ----------------------------------------------------------------------------


def clock(at: float) -> str:
    """HH:MM:SS in local time, as an operator reads a wall clock."""
    return time.strftime("%H:%M:%S", time.localtime(at))


def age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def money(value: Any) -> str:
    x = _number(value)
    return "?" if x is None else f"{x:,.2f}"


def pnl(value: Any) -> str:
    x = _number(value)
    return "?" if x is None else f"{x:+,.2f}"


def size(value: Any) -> str:
    x = _number(value)
    if x is None:
        return "?"
    return f"{x:,.4f}".rstrip("0").rstrip(".")


def price(value: Any) -> str:
    x = _number(value)
    if x is None:
        return "?"
    return f"{x:.6g}" if abs(x) < 1 else f"{x:,.2f}"


def _cut(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


@dataclass(frozen=True)
class _Column:
    title: str
    right: bool = False


@dataclass
class _Block:
    """A titled table; `rows` may be shortened to fit the screen."""

    title: str
    columns: Sequence[_Column]
    rows: list[tuple[list[str], bool]]
    noun: str
    empty: str = "none"
    lines_after: list[Line] = field(default_factory=list)

    def render(self) -> list[Line]:
        lines = [Line(self.title)]
        if not self.rows:
            return [*lines, Line(f"  {self.empty}"), *self.lines_after]
        limits = [_CELL_LIMITS.get(col.title) for col in self.columns]
        cells = [[_cut(cell, limit) for cell, limit in zip(row, limits, strict=True)] for row, _ in self.rows]
        widths = [max(len(col.title), *(len(r[i]) for r in cells)) for i, col in enumerate(self.columns)]

        def join(values: Sequence[str]) -> str:
            parts = [
                v.rjust(w) if col.right else v.ljust(w)
                for v, w, col in zip(values, widths, self.columns, strict=True)
            ]
            return ("  " + "  ".join(parts)).rstrip()

        lines.append(Line(join([c.title for c in self.columns])))
        lines.extend(Line(join(r), alert) for r, (_, alert) in zip(cells, self.rows, strict=True))
        return [*lines, *self.lines_after]

    def height(self) -> int:
        """Lines `render()` gives, without formatting a row."""
        table = 1 + len(self.rows) if self.rows else 1  # header and rows, or the "none" line
        return 1 + table + len(self.lines_after)

    def shorten(self, lines: int) -> int:
        """Drops rows until the block is `lines` shorter (or one row and a "more" line
        are left); returns how many lines it gave up."""
        rows = len(self.rows)
        keep = max(1, rows - lines - 1)
        if keep + 1 >= rows:
            return 0
        hidden = rows - keep
        self.lines_after = [Line(f"  … {hidden} more {self.noun} (a taller terminal, or --once, shows all)")]
        self.rows = self.rows[:keep]
        return rows - keep - 1


# ----- the frame -----------------------------------------------------------------------------


def render(
    view: ProjectionView | None,
    *,
    now: float,
    settings: Settings | None = None,
    outage: Outage | None = None,
) -> Frame:
    """The frame for `view` (the newest good read, None before the first one) at `now`.

    With `outage` set, the cluster is not answering: the frame still shows
    `view`, under a banner that says since when and how old the data is.
    """
    settings = settings or Settings()
    source = f" · {settings.source}" if settings.source else ""
    head = [Line(f"dita watch{source} · {clock(now)} · every {settings.interval:g}s")]
    if outage is not None:
        since = f"cluster unreachable since {clock(outage.since)}"
        if view is None:
            head.append(Line(f"!! {since}, no data read yet ({outage.error})", alert=True))
        else:
            head.append(
                Line(
                    f"!! STALE DATA: {since}, showing data from {now - view.read_at:.0f} s ago "
                    f"({outage.error})",
                    alert=True,
                )
            )
    elif view is None:
        head.append(Line("waiting for the first read of the cluster"))
    else:
        head.append(Line(f"live: read at {clock(view.read_at)} in {view.took_s * 1e3:.0f} ms"))
    if view is None:
        return _fit(head, [], settings)
    if view.unreadable:
        head.append(
            Line(
                f"!! {view.unreadable} value(s) in dita's maps are not JSON objects dita can read "
                "(refused or malformed); not shown",
                alert=True,
            )
        )

    wanted = settings.kernel_ids
    kernels = {k: d for k, d in view.kernels.items() if not wanted or k in wanted}
    accounts = {k: d for k, d in view.accounts.items() if not wanted or k in wanted}
    slots = [
        d
        for d in view.slots
        if d.get("fsm_state") in LIVE_STAGES and (not wanted or d.get("kernel_id") in wanted)
    ]
    ids = sorted(set(kernels) | set(accounts) | {_text(d.get("kernel_id")) for d in slots})
    states = {
        kid: kernel_state(kernels.get(kid), now, settings.stale_after, settings.dead_after) for kid in ids
    }

    head.extend(_totals(states, slots, accounts))
    blocks = [
        _kernels_block(ids, kernels, states, view.control, now),
        _control_block(view.control, ids if wanted else None, now),
        _accounts_block(accounts),
        _slots_block(slots),
    ]
    return _fit(head, blocks, settings)


def _totals(
    states: Mapping[str, str], slots: Sequence[dict[str, Any]], accounts: Mapping[str, Any]
) -> list[Line]:
    counts = Counter(states.values())
    order = ("RUNNING", "STALE", "DEAD", "STOPPED", "GONE")
    by_state = ", ".join(f"{counts[s]} {s}" for s in (*order, *sorted(set(counts) - set(order))) if counts[s])
    unrealized = sum(_number(d.get("unrealized_pnl")) or 0.0 for d in slots)
    realized_open = sum(_number(d.get("realized_pnl")) or 0.0 for d in slots)
    docs = list(accounts.values())

    def total(name: str) -> float:
        return sum(_number(d.get(name)) or 0.0 for d in docs)

    reconcile = Counter(_text(d.get("reconcile_status")) for d in docs)
    out_of = sum(n for status, n in reconcile.items() if status in ("WARN", "ERROR"))
    kernels_line = f"TOTALS  kernels {len(states)}" + (f" ({by_state})" if by_state else "")
    slots_part = f"open slots {len(slots)}: unrealized {pnl(unrealized)}, realized {pnl(realized_open)}"
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(reconcile.items())) or "-"
    # What needs an operator comes first: a narrow terminal cuts the end of a line.
    alarm = f" ({out_of} OUT OF RECONCILE)" if out_of else ""
    accounts_line = (
        f"        accounts {len(docs)}: reconcile {statuses}{alarm} · equity {money(total('equity'))}, "
        f"realized {pnl(total('realized_pnl'))}, fees {money(total('k_fees_paid'))}"
    )
    return [Line(f"{kernels_line} · {slots_part}"), Line(accounts_line, alert=out_of > 0)]


def _kernels_block(
    ids: Iterable[str],
    kernels: Mapping[str, dict[str, Any]],
    states: Mapping[str, str],
    control: Mapping[str, Mapping[str, Any]],
    now: float,
) -> _Block:
    columns = [
        _Column("KERNEL"),
        _Column("STATE"),
        _Column("MODE"),
        _Column("VERBOSITY"),
        _Column("REVS global/own"),
        _Column("CONTROL"),
        _Column("SIGNING"),
        _Column("HEARTBEAT", right=True),
        _Column("BACKLOG", right=True),
        _Column("LAG p50/max ms", right=True),
        _Column("ERRORS", right=True),
        _Column("PROCESS"),
    ]
    rows: list[tuple[list[str], bool]] = []
    for kid in ids:
        state = states[kid]
        doc = kernels.get(kid)
        if doc is None:
            rows.append(([kid, state, *["-"] * (len(columns) - 2)], True))
            continue
        applied = _dict(doc.get("control"))
        revs = _dict(_dict(doc.get("control_report")).get("revs"))
        projection = _dict(doc.get("projection"))
        beat = _number(doc.get("heartbeat_at"))
        sync = control_sync(kid, doc, control) if state in ("RUNNING", "STALE") else "-"
        report = _dict(doc.get("control_report"))
        # Anyone who reaches the cluster can steer a kernel that applies unsigned entries.
        signing = "-" if "signed" not in report else ("signed" if report["signed"] is True else "UNSIGNED")
        p50, worst = _number(projection.get("lag_ms_p50")), _number(projection.get("lag_ms_max"))
        lag = "-" if p50 is None or worst is None else f"{p50:.1f}/{worst:.1f}"
        rows.append(
            (
                [
                    kid,
                    state,
                    _text(applied.get("mode")),
                    _text(applied.get("verbosity")),
                    f"{revs.get(GLOBAL_KEY, '-')}/{revs.get(KERNEL_PREFIX + kid, '-')}",
                    sync,
                    signing,
                    "?" if beat is None else age(now - beat),
                    _text(projection.get("backlog")),
                    lag,
                    _text(projection.get("errors")),
                    f"{doc.get('host', '?')}:{doc.get('pid', '?')}",
                ],
                state in ("STALE", "DEAD", "GONE") or sync not in ("ok", "-") or signing == "UNSIGNED",
            )
        )
    return _Block(f"KERNELS ({len(rows)})", columns, rows, "kernels", empty="none in the cluster")


def _control_block(control: Mapping[str, Mapping[str, Any]], ids: Sequence[str] | None, now: float) -> _Block:
    columns = [_Column("ENTRY"), _Column("WANTS"), _Column("REV", right=True), _Column("WRITTEN")]
    rows: list[tuple[list[str], bool]] = []
    shown = [GLOBAL_KEY, *sorted(k for k in control if k.startswith(KERNEL_PREFIX))]
    for key in shown:
        entry = control.get(key)
        if entry is None or (ids is not None and key != GLOBAL_KEY and key[len(KERNEL_PREFIX) :] not in ids):
            continue
        wants = " ".join(f"{k}={entry[k]}" for k in ("mode", "verbosity", "journal") if k in entry) or "-"
        if entry.get("clear") is True:
            wants = "cleared (kernels fall back)"
        if entry.get("flatten") is True:
            wants += " flatten"
        if "signature" not in entry:
            wants += " (UNSIGNED)"
        issued = _number(entry.get("issued_at"))
        written = "?" if issued is None else f"{age(now - issued)} ago"
        written += f" by {entry.get('author', '?')}"
        if entry.get("reason"):
            written += f": {entry['reason']}"
        rows.append(([key, wants, _text(entry.get("rev")), written], False))
    return _Block(
        "CONTROL (what operators wrote)",
        columns,
        rows,
        "entries",
        empty="no entries: kernels keep their start control",
    )


def _accounts_block(accounts: Mapping[str, dict[str, Any]]) -> _Block:
    columns = [
        _Column("KERNEL"),
        _Column("RECONCILE"),
        _Column("DELTA", right=True),
        _Column("K CAPITAL", right=True),
        _Column("E WALLET", right=True),
        _Column("EQUITY", right=True),
        _Column("REALIZED", right=True),
        _Column("UNREALIZED", right=True),
        _Column("FEES", right=True),
        _Column("OPEN", right=True),
        _Column("WHY"),
    ]
    rows: list[tuple[list[str], bool]] = []
    for kid in sorted(accounts):
        doc = accounts[kid]
        status = _text(doc.get("reconcile_status"))
        rows.append(
            (
                [
                    kid,
                    status,
                    money(doc.get("reconcile_delta")),
                    money(doc.get("k_capital")),
                    money(doc.get("e_wallet_balance")) if doc.get("e_known") else "-",
                    money(doc.get("equity")),
                    pnl(doc.get("realized_pnl")),
                    pnl(doc.get("unrealized_pnl")),
                    money(doc.get("k_fees_paid")),
                    _text(doc.get("open_positions")),
                    _text(doc.get("reconcile_explanation")) if status != "OK" else "",
                ],
                status in ("WARN", "ERROR"),
            )
        )
    return _Block(f"ACCOUNTS ({len(rows)})", columns, rows, "accounts")


def _slots_block(slots: Sequence[dict[str, Any]]) -> _Block:
    columns = [
        _Column("KERNEL"),
        _Column("SLOT", right=True),
        _Column("TRADE"),
        _Column("ASSET"),
        _Column("SIDE"),
        _Column("SIZE", right=True),
        _Column("ENTRY", right=True),
        _Column("MARK", right=True),
        _Column("UNREALIZED", right=True),
        _Column("REALIZED", right=True),
        _Column("STAGE"),
    ]
    rows = [
        (
            [
                _text(d.get("kernel_id")),
                _text(d.get("slot_id")),
                _text(d.get("trade_id")),
                _text(d.get("asset")),
                _text(d.get("side")),
                size(d.get("size")),
                price(d.get("entry_price")),
                price(d.get("last_mark_price")) if (_number(d.get("last_mark_price")) or 0) > 0 else "-",
                pnl(d.get("unrealized_pnl")),
                pnl(d.get("realized_pnl")),
                _text(d.get("fsm_state")),
            ],
            False,
        )
        for d in slots
    ]
    return _Block(f"OPEN SLOTS ({len(rows)})", columns, rows, "open slots")


def _fit(head: list[Line], blocks: list[_Block], settings: Settings) -> Frame:
    """Shortens the tables to the screen's height (open slots first, kernels last) and
    cuts every line to its width, so a frame never scrolls or wraps a terminal."""
    if settings.height is not None:
        over = len(head) + sum(b.height() + 1 for b in blocks) - settings.height
        for block in reversed(blocks):
            if over <= 0:
                break
            over -= block.shorten(over)
    lines = list(head)
    for block in blocks:
        lines.append(Line(""))
        lines.extend(block.render())
    if settings.height is not None:
        lines = lines[: max(1, settings.height)]
    if settings.width is not None:
        lines = [Line(_cut(line.text, settings.width), line.alert) for line in lines]
    return Frame(tuple(lines))
