"""Device CA issuance counts survive a restart; the key is destroyed on the token at the cap."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from smarthydra.crypto import softhsm
from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.pkcs11store import Pkcs11Keystore
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.pki.hierarchy import CaHierarchy, DeviceCaExhausted, FileLedger, SmkiRepository
from smarthydra.pki.issue import IssuanceError
from tests.crypto.softhsm_fixtures import USER_PIN
from tests.pki.test_hierarchy import _labels_on_token

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)


def _key() -> object:
    return SoftKeystore(None, b"").generate("k", KeyUsage.KEY_AGREEMENT)


def _issue(hierarchy: CaHierarchy, i: int) -> object:
    return hierarchy.device_ca.issue(
        subject_public_key=_key(),  # type: ignore[arg-type]
        eui64=i.to_bytes(8, "big"),
        usage=KeyUsage.KEY_AGREEMENT,
        not_before=T0,
    )


def test_count_survives_restart_and_key_is_destroyed_on_the_token(
    softhsm_token: softhsm.SoftHsmToken, tmp_path: Path
) -> None:
    store = Pkcs11Keystore(softhsm_token.module_path, softhsm_token.token_label, USER_PIN)
    ledger_path = tmp_path / "ledger.json"
    hierarchy = CaHierarchy.create(
        store, not_before=T0, not_after=T1, device_ca_capacity=3, ledger=FileLedger(ledger_path)
    )
    hierarchy.save(tmp_path / "hierarchy.json")
    _issue(hierarchy, 1)
    _issue(hierarchy, 2)
    store.close()

    # Restart: a new session on the token, the hierarchy and counts from disk.
    store = Pkcs11Keystore(softhsm_token.module_path, softhsm_token.token_label, USER_PIN)
    resumed = CaHierarchy.load(store, tmp_path / "hierarchy.json", ledger=FileLedger(ledger_path))
    assert resumed.device_ca.issued == 2 and not resumed.device_ca.retired
    assert json.loads(ledger_path.read_text()) == {"smki-device-ca-1": 2}
    third = _issue(resumed, 3)
    assert resumed.device_ca.retired
    assert "smki-device-ca-1" not in _labels_on_token(softhsm_token)
    with pytest.raises(DeviceCaExhausted):
        _issue(resumed, 4)
    repository = SmkiRepository(resumed.ca_certificates)
    repository.validate(third, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    store.close()


def test_a_crash_after_the_last_issue_still_destroys_the_key(tmp_path: Path) -> None:
    store = SoftKeystore(None, b"")
    ledger = FileLedger(tmp_path / "ledger.json")
    hierarchy = CaHierarchy.create(
        store, not_before=T0, not_after=T1, device_ca_capacity=2, ledger=ledger
    )
    hierarchy.save(tmp_path / "h.json")
    _issue(hierarchy, 1)
    # Simulate a crash between reserving the last slot and destroying the key.
    ledger.reserve("smki-device-ca-1")
    assert "smki-device-ca-1" in store
    resumed = CaHierarchy.load(
        store, tmp_path / "h.json", ledger=FileLedger(tmp_path / "ledger.json")
    )
    assert resumed.device_ca.retired
    assert "smki-device-ca-1" not in store


def test_bad_state_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "ledger.json").write_text("[1, 2]")
    with pytest.raises(IssuanceError, match="not a map of counts"):
        FileLedger(tmp_path / "ledger.json").issued("x")
    (tmp_path / "h.json").write_text("{}")
    with pytest.raises(IssuanceError, match="cannot resume"):
        CaHierarchy.load(SoftKeystore(None, b""), tmp_path / "h.json")
