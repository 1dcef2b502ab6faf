from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smarthydra.dcc.anomaly import AnomalyDetector, QuarantineError, QuarantineState, Threshold
from smarthydra.eui import Eui64

USER = Eui64.parse("90B3D51F30010000")
OTHER = Eui64.parse("90B3D51F30020000")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_user_threshold_counts_within_window_only() -> None:
    detector: AnomalyDetector[str] = AnomalyDetector()
    detector.set_user_threshold(USER, "7.2", Threshold(2, timedelta(hours=1)))
    for minute in range(2):
        now = T0 + timedelta(minutes=minute)
        assert detector.check(USER, "7.2", now) is None
        detector.record(USER, "7.2", now)
    assert "user threshold" in (detector.check(USER, "7.2", T0 + timedelta(minutes=3)) or "")
    # other users and other SRVs are counted separately
    assert detector.check(OTHER, "7.2", T0) is None
    assert detector.check(USER, "4.1.1", T0) is None
    # after the window has passed, the user may send again
    assert detector.check(USER, "7.2", T0 + timedelta(hours=1, minutes=2)) is None


def test_dcc_threshold_applies_to_every_user() -> None:
    detector: AnomalyDetector[str] = AnomalyDetector(
        dcc_thresholds={"7.2": Threshold(1, timedelta(days=1))}
    )
    detector.record(OTHER, "7.2", T0)
    assert detector.check(USER, "7.2", T0) is None
    detector.record(USER, "7.2", T0)
    assert "DCC threshold" in (detector.check(USER, "7.2", T0) or "")


def test_quarantine_release_and_delete_exactly_once() -> None:
    detector: AnomalyDetector[str] = AnomalyDetector()
    first = detector.quarantine(USER, "7.2", T0, "too many", "request-1")
    second = detector.quarantine(USER, "7.2", T0, "too many", "request-2")
    assert [q.ticket for q in detector.held()] == [first.ticket, second.ticket]
    sent: list[str] = []
    detector.release(first.ticket, sent.append)
    assert sent == ["request-1"]
    with pytest.raises(QuarantineError, match="already released"):
        detector.release(first.ticket, sent.append)
    detector.delete(second.ticket)
    assert second.state is QuarantineState.DELETED
    with pytest.raises(QuarantineError):
        detector.release(second.ticket, sent.append)
    with pytest.raises(QuarantineError, match="no quarantined request"):
        detector.delete(999)
    assert sent == ["request-1"] and detector.held() == []


def test_threshold_validation() -> None:
    with pytest.raises(ValueError):
        Threshold(-1, timedelta(hours=1))
    with pytest.raises(ValueError):
        Threshold(1, timedelta(0))
