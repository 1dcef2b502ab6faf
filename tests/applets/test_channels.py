"""Each party reaches its applet only through its own SSD's GlobalPlatform secure channel."""

from __future__ import annotations

import pytest

from smarthydra.applets.base import CLA, PARTY_LEVEL
from smarthydra.applets.billing import INS_CLOSE_PERIOD, INS_SET_TARIFF
from smarthydra.applets.hub import (
    BILLING,
    METER_DATA,
    POWER_QUALITY,
    TELEHEALTH,
    ChannelRefused,
    HydraCommandError,
    PartyChannel,
    ssd_aid,
)
from smarthydra.applets.tariff import economy7, peak_tou
from smarthydra.applets.telehealth import INS_ENROL, HealthReading
from smarthydra.card.apdu import SW
from smarthydra.card.gp.apdu import CommandApdu
from smarthydra.card.gp.client import GpClient
from smarthydra.card.gp.scp03 import Scp03StaticKeys
from smarthydra.card.gp.sd import SECURE_CHANNEL_PARAMETER
from smarthydra.sim.hydra import HydraHome
from tests.applets.helpers import day, home_with_days

NEW_DEVICE = bytes.fromhex("00124B0000AA0077")


@pytest.fixture(scope="module")
def home() -> HydraHome:
    return home_with_days(3)


def _recording(home: HydraHome, log: list[bytes]):  # type: ignore[no-untyped-def]
    def transmit(command: bytes) -> bytes:
        log.append(command)
        response = home.host.relay(command)
        log.append(response)
        return response

    return transmit


def test_party_commands_without_a_channel_are_refused(home: HydraHome) -> None:
    tariff = home.parties.supplier.tariff_message(economy7())
    for slot, ins, data in ((BILLING, INS_SET_TARIFF, tariff[:100]),
                            (BILLING, INS_CLOSE_PERIOD, bytes(8)),
                            (POWER_QUALITY, 0x40, bytes(4)), (TELEHEALTH, INS_ENROL, NEW_DEVICE)):
        with pytest.raises(HydraCommandError) as refused:
            home.host.call(slot, ins, data)  # the hub host itself, no session
        assert refused.value.sw == SW.SECURITY_STATUS_NOT_SATISFIED
    # the host's own data feed and the public key need no party channel
    assert len(home.host.public_key(BILLING)) == 64


def test_the_party_channel_carries_the_tariff_protected(home: HydraHome) -> None:
    log: list[bytes] = []
    supplier = PartyChannel(_recording(home, log), BILLING, home.setup.channel_keys("supplier"),
                            channel=home.host.channel)
    message = home.parties.supplier.tariff_message(peak_tou())
    supplier.call(INS_SET_TARIFF, message)  # longer than one command: APPEND segments
    sealed = supplier.call(INS_CLOSE_PERIOD, day(0).toordinal().to_bytes(4, "big")
                           + day(2).toordinal().to_bytes(4, "big"))
    bill = home.parties.supplier.receive_bill(sealed, home.setup.meter)
    assert bill.tariff_id == "AGILE-LIKE-TOU"
    wire = b"".join(log)
    # C-DECRYPTION and R-ENCRYPTION: neither the tariff nor the sealed bill crosses in clear
    assert message[40:80] not in wire and sealed[:60] not in wire
    assert supplier.client.session is not None
    assert supplier.client.session.sm is not None
    assert supplier.client.session.sm.security_level & 0x33 == PARTY_LEVEL & 0x33


def test_a_tampered_or_replayed_command_ends_the_session(home: HydraHome) -> None:
    log: list[bytes] = []
    distributor = PartyChannel(_recording(home, log), POWER_QUALITY,
                               home.setup.channel_keys("distributor"), channel=home.host.channel)
    distributor.call(0x40, day(1).toordinal().to_bytes(4, "big"))
    command = next(c for c in reversed(log[0::2]) if c[1] == 0x40)
    replayed = home.host.card.transmit(command)  # the same protected command again
    assert replayed[-2:] == SW.SECURITY_STATUS_NOT_SATISFIED.to_bytes(2, "big")
    distributor.drop()
    distributor.call(0x40, day(1).toordinal().to_bytes(4, "big"))
    tampered = bytearray(next(c for c in reversed(log[0::2]) if c[1] == 0x40))
    tampered[7] ^= 0x01
    assert home.host.card.transmit(bytes(tampered))[-2:] == b"\x69\x82"
    # and after the failure the applet answers no plain command either
    plain = CommandApdu(CLA | home.host.channel, 0x40, 0, 0,
                        day(1).toordinal().to_bytes(4, "big"), 0).to_bytes()
    assert home.host.card.transmit(plain)[-2:] == b"\x69\x82"


def test_a_party_without_the_ssd_keys_cannot_open_the_channel(home: HydraHome) -> None:
    # the supplier (its own SSD keys) tries the telehealth applet; a guess fares no better
    for keys in (home.setup.channel_keys("supplier"),
                 Scp03StaticKeys(bytes(16), bytes(16), bytes(16), 0x30)):
        intruder = PartyChannel(home.host.relay, TELEHEALTH, keys, channel=home.host.channel)
        with pytest.raises(ChannelRefused):
            intruder.call(INS_ENROL, NEW_DEVICE)
    with pytest.raises(HydraCommandError):
        home.host.health_reading(NEW_DEVICE, HealthReading("weight", 1, "g", 0))


def test_the_suppliers_session_cannot_drive_the_telehealth_applet(home: HydraHome) -> None:
    client = GpClient(home.host.relay, home.host.channel)
    # a genuine supplier session, on its own SSD
    client.select(ssd_aid("supplier"))
    client.open_scp03(home.setup.channel_keys("supplier"), security_level=0x33)
    assert client.session is not None
    session = client.session
    # selecting the telehealth applet ends it; its commands wrapped with the supplier's
    # session keys are refused, and so are plain ones
    client.select(TELEHEALTH.aid)
    client.session = session
    assert client.send(CommandApdu(CLA, INS_ENROL, 0, 0, NEW_DEVICE, 0).to_bytes()).sw == 0x6982
    client.session = None
    assert client.send(CommandApdu(CLA, INS_ENROL, 0, 0, NEW_DEVICE, 0).to_bytes()).sw == 0x6982
    # opening through the telehealth applet uses the telehealth SSD's keys: refused
    with pytest.raises(Exception, match="cryptogram"):
        client.open_scp03(home.setup.channel_keys("supplier"), security_level=0x33)


def test_the_provider_enrols_over_its_own_channel(home: HydraHome) -> None:
    provider = PartyChannel(home.host.relay, TELEHEALTH, home.setup.channel_keys("telehealth"),
                            channel=home.host.channel)
    provider.call(INS_ENROL, NEW_DEVICE)
    sealed = home.host.health_reading(NEW_DEVICE, HealthReading("weight", 64_000, "g", 0))
    assert home.parties.telehealth.receive(sealed).device == NEW_DEVICE


def test_security_domains_give_their_channel_to_their_own_applets_only(home: HydraHome) -> None:
    runtime = home.host.card.runtime
    from smarthydra.card.firewall import entered

    billing = runtime.applet(BILLING.aid)
    meter_data = runtime.applet(METER_DATA.aid)
    assert billing is not None and meter_data is not None
    for applet, sd, expected in ((billing, ssd_aid("supplier"), True),
                                 (billing, ssd_aid("telehealth"), False),
                                 (meter_data, ssd_aid("supplier"), False)):
        context = runtime.context_of_applet(applet.aid)
        assert context is not None
        with entered(context, applet.aid):
            service = applet.card.lookup_shareable(sd, SECURE_CHANNEL_PARAMETER)
        assert (service is not None) is expected
