"""Device alerts read from every RTDS alert, and alerts built from device data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smarthydra.gbcs.alerts import der_alert, device_alert, dlms_alert, gbz_alert
from smarthydra.gbcs.axdr import Data, DataType
from smarthydra.gbcs.catalogue import Catalogue
from smarthydra.gbcs.errors import BadField
from smarthydra.gbcs.gbz import GbzPayload
from smarthydra.gbcs.rtds import RtdsKeystore, read_hex_file
from smarthydra.gbcs.usecase import (
    MessageKeys,
    UseCaseParams,
    build_alert,
    decode_use_case_message,
    verify_message,
)
from smarthydra.gbcs.xdlms import AccessRequest, DataNotification
from tests.conftest import conformance_path


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(conformance_path("gbcs"))


def test_every_rtds_alert_has_code_time_and_data(catalogue: Catalogue) -> None:
    root = conformance_path("gbcs", "rtds-4.5.0")
    files = sorted(p for p in root.rglob("*.HEX") if "_ALERT" in p.name)
    assert len(files) == 93
    codecs = set()
    for path in files:
        decoded = decode_use_case_message(read_hex_file(path), catalogue=catalogue)
        alert = device_alert(decoded.payload, catalogue)
        codecs.add(alert.codec)
        # The file names carry the alert code where the RTDS names one (…_8F66_…).
        named = [p for p in path.name.split("_") if len(p) == 4 and p.startswith("8")]
        if named:
            assert f"{alert.alert_code:04X}" == named[0], path.name
        assert alert.description is not None
        assert alert.to_json()["alert_code"] == f"{alert.alert_code:04X}"
    assert codecs == {"xdlms", "gbz", "der"}


def test_gbz_and_der_alert_times(catalogue: Catalogue) -> None:
    root = conformance_path("gbcs", "rtds-4.5.0")
    gbz = decode_use_case_message(
        read_hex_file(root / "NA_GCA-ZigBee" / "GCA-ZigBee_NA_8F30_ALERT_GBCS.HEX")
    )
    alert = device_alert(gbz.payload, catalogue)
    assert alert.alert_code == 0x8F30 and alert.time == datetime(2015, 1, 1, tzinfo=UTC)
    assert "Critical" in (alert.description or "") or alert.description
    rebuilt = gbz_alert(0x8F30, datetime(2015, 1, 1, tzinfo=UTC))
    assert rebuilt.encode() == gbz.payload.encode()


def test_build_dlms_alert_from_device_data(catalogue: Catalogue) -> None:
    keys = RtdsKeystore.load(conformance_path("gbcs", "rtds-keystore"))
    path = conformance_path(
        "gbcs", "rtds-4.5.0", "NA_GNCA-DLMS", "GNCA-DLMS_NA_810E_ALERT_GBCS.HEX"
    )
    original = decode_use_case_message(read_hex_file(path), catalogue=catalogue)
    payload = dlms_alert(0x810E, datetime(2015, 1, 1, tzinfo=UTC), counter=original.counter)
    z = keys.shared_secret(original.originator, original.recipient)
    assert z is not None
    wire = build_alert(
        0x1001,
        UseCaseParams(payload=payload),
        device=original.originator,
        recipient=original.recipient,
        counter=original.counter,
        keys=MessageKeys(mac_z=z),
        catalogue=catalogue,
    )
    # The RTDS sends an unspecified day-of-week and deviation like ours: byte for byte.
    assert wire == original.message.wire()
    assert verify_message(decode_use_case_message(wire), mac_z=z)


def test_build_der_alert() -> None:
    node = der_alert(0x8F66, datetime(2030, 1, 15, 9, tzinfo=UTC))
    alert = device_alert(node)
    assert alert.alert_code == 0x8F66 and alert.codec == "der"
    assert alert.time == datetime(2030, 1, 15, 9, tzinfo=UTC)
    assert node.children[0].content == bytes.fromhex("008f66")


def test_not_alerts() -> None:
    with pytest.raises(BadField, match="structure"):
        device_alert(DataNotification(1, None, Data(DataType.NULL_DATA)))
    with pytest.raises(BadField, match="not an alert"):
        device_alert(AccessRequest(1, None, [], []))
    with pytest.raises(BadField, match="no alert header"):
        device_alert(GbzPayload(0))
    with pytest.raises(BadField, match="GeneralizedTime"):
        device_alert(der_alert(1, datetime(2030, 1, 1, tzinfo=UTC)).children[0])
    alert = device_alert(dlms_alert(0x8F30, None, counter=3))
    assert alert.time is None and alert.alert_code == 0x8F30
