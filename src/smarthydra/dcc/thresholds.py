"""Anomaly detection threshold files: what each user submits, and the DCC's own.

A threshold file is CSV, one rule a line; blank lines and ``#`` comments are ignored::

    # kind,      service reference variant, limit,   window (s) or element
    threshold,   4.1.1,                     5000,    86400
    threshold,   7.2,                       20,      3600
    value-limit, 1.5,                       10000,   AdjustMeterBalance

``threshold``: at most ``limit`` requests for the SRV within the window. ``value-limit``: any
``element`` of an SRV request whose magnitude exceeds ``limit`` is quarantined; only the DCC's
own file may set these (a user may not lift the DCC's data-value rules). A submitted file
replaces that user's previous one as a whole.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import timedelta

from smarthydra.dcc.anomaly import AnomalyDetector, Threshold, ValueLimit
from smarthydra.dcc.store import SqlDccStore
from smarthydra.duis.matrix import ServiceRequestMatrix
from smarthydra.eui import Eui64

DCC_WIDE = "*"
MAX_WINDOW_SECONDS = 366 * 86400


class ThresholdFileError(ValueError):
    """A threshold file that cannot be accepted; the message names the line."""


@dataclass(frozen=True)
class ThresholdFile:
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    value_limits: tuple[ValueLimit, ...] = ()

    def rows(self) -> list[tuple[str, int, float]]:
        return [
            (srv, t.max_requests, t.window.total_seconds()) for srv, t in self.thresholds.items()
        ]


def parse_threshold_file(
    text: str, *, matrix: ServiceRequestMatrix | None = None, dcc_wide: bool = False
) -> ThresholdFile:
    thresholds: dict[str, Threshold] = {}
    limits: list[ValueLimit] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ThresholdFileError(f"line {reader.line_num}: not CSV: {exc}") from None
    for number, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) != 4:
            raise ThresholdFileError(f"line {number}: expected 4 fields, found {len(cells)}")
        kind, srv, limit_text, last = cells
        if matrix is not None and srv not in matrix:
            raise ThresholdFileError(f"line {number}: unknown service reference variant {srv}")
        if not (limit_text.isascii() and limit_text.isdigit()) or len(limit_text) > 9:
            raise ThresholdFileError(f"line {number}: limit {limit_text!r} is not a count")
        limit = int(limit_text)
        if kind == "threshold":
            try:
                window = float(last)
            except ValueError:
                raise ThresholdFileError(f"line {number}: window {last!r} is not seconds") from None
            if not 0 < window <= MAX_WINDOW_SECONDS:
                raise ThresholdFileError(
                    f"line {number}: window must be 1 s to {MAX_WINDOW_SECONDS} s"
                )
            if srv in thresholds:
                raise ThresholdFileError(f"line {number}: a second threshold for {srv}")
            thresholds[srv] = Threshold(limit, timedelta(seconds=window))
        elif kind == "value-limit":
            if not dcc_wide:
                raise ThresholdFileError(
                    f"line {number}: value limits are the DCC's; a user file may not set them"
                )
            if not last.isidentifier():
                raise ThresholdFileError(f"line {number}: {last!r} is not an element name")
            limits.append(ValueLimit(srv, last, limit))
        else:
            raise ThresholdFileError(
                f"line {number}: kind {kind!r} is neither threshold nor value-limit"
            )
    return ThresholdFile(thresholds, tuple(limits))


def apply_threshold_file(
    detector: AnomalyDetector[object], user: Eui64 | None, parsed: ThresholdFile
) -> None:
    """Install a parsed file: ``user`` None for the DCC's own (wide) thresholds."""
    if user is None:
        detector.dcc_thresholds = dict(parsed.thresholds)
        detector.value_limits = list(parsed.value_limits)
        return
    for key in [k for k in detector.user_thresholds if k[0] == user]:
        del detector.user_thresholds[key]
    for srv, threshold in parsed.thresholds.items():
        detector.set_user_threshold(user, srv, threshold)


def submit_threshold_file(
    store: SqlDccStore,
    detector: AnomalyDetector[object] | None,
    user: Eui64 | None,
    text: str,
    matrix: ServiceRequestMatrix | None = None,
) -> ThresholdFile:
    """Parse, store (replacing the previous file) and, if a detector is given, install."""
    parsed = parse_threshold_file(text, matrix=matrix, dcc_wide=user is None)
    rows = parsed.rows()
    if user is None:
        rows += [(f"{v.srv}|{v.element}", v.max_abs, 0.0) for v in parsed.value_limits]
    store.replace_thresholds(DCC_WIDE if user is None else str(user), rows)
    if detector is not None:
        apply_threshold_file(detector, user, parsed)
    return parsed


def load_stored_thresholds(store: SqlDccStore, detector: AnomalyDetector[object]) -> None:
    """At start-up: every user's submitted thresholds and the DCC's own, from the database."""
    for user, srv, max_requests, window in store.thresholds():
        if user == DCC_WIDE and "|" in srv:
            variant, element = srv.split("|", 1)
            detector.value_limits.append(ValueLimit(variant, element, max_requests))
        elif user == DCC_WIDE:
            detector.dcc_thresholds[srv] = Threshold(max_requests, timedelta(seconds=window))
        else:
            detector.set_user_threshold(
                Eui64.parse(user), srv, Threshold(max_requests, timedelta(seconds=window))
            )
