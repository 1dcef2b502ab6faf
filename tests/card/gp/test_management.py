"""GlobalPlatform card content management on the card, end to end over APDUs.

Full life cycles over SCP03 (every security level, S8 and S16) and SCP11a/b/c: load a signed
applet package, install, make selectable, personalise, lock, unlock, delete; privileges and
DAP enforced with the right status words; one-way precomputed scripts.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from smarthydra.card.card import Card
from smarthydra.card.gp import management as gpm
from smarthydra.card.gp import tlv
from smarthydra.card.gp.certificates import build_gp_certificate, parse_certificate_store
from smarthydra.card.gp.client import (
    GpClient,
    GpCommandError,
    dap_signature,
    delete_key_command,
    install_command,
    install_for_load_command,
    load_commands,
    one_way_scp03_script,
    one_way_scp11c_script,
    set_status_command,
    token_signer_for,
)
from smarthydra.card.gp.keystore import KeyType, SdKey
from smarthydra.card.gp.management import ISD_AID, SD_MODULE_AID, SD_PACKAGE_AID, KeyId
from smarthydra.card.gp.profile import IsdSetup, gp_profile, gp_test_keys
from smarthydra.card.gp.scp03 import Scp03HostSession, Scp03StaticKeys
from smarthydra.card.gp.scp11 import Scp11Variant
from smarthydra.card.gp.sd import keys_dgi
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.registry import Privilege, privileges_of
from smarthydra.crypto.primitives import private_key_from_scalar

from .gpcards import (
    NOTE_APP_AID,
    NOTE_MODULE_AID,
    NOTE_PACKAGE_AID,
    gp_card,
    note_package,
    scp03_client,
    scp11_key,
)

SSD_AID = bytes.fromhex("A000000151535344")
SSD_KEY = bytes(range(0x60, 0x70))


def _apdu(card: Card, hex_or_bytes: bytes | str) -> tuple[bytes, int]:
    raw = bytes.fromhex(hex_or_bytes) if isinstance(hex_or_bytes, str) else hex_or_bytes
    response = card.transmit(raw)
    return response[:-2], int.from_bytes(response[-2:], "big")


def _note(card: Card) -> tuple[bytes, int]:
    _, sw = _apdu(card, bytes.fromhex("00A4040007") + NOTE_APP_AID + b"\x00")
    if sw != 0x9000:
        return b"", sw
    return _apdu(card, "8012000000")


def _life_cycle(client: GpClient, card: Card) -> None:
    """load, install, make selectable, personalise, lock, unlock, delete."""
    package = note_package().encode()
    assert client.load(NOTE_PACKAGE_AID, package).raw == b"\x00"
    client.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID, params=b"hi",
                   make_selectable=False)
    apps = {e.aid: e for e in client.get_status(0x40)}
    assert apps[NOTE_APP_AID].life_cycle == 0x03  # INSTALLED
    client.make_selectable(NOTE_APP_AID)
    client.personalize(NOTE_APP_AID, b"personalised")
    client.lock(NOTE_APP_AID)
    assert {e.aid: e for e in client.get_status(0x40)}[NOTE_APP_AID].life_cycle == 0x87
    client.unlock(NOTE_APP_AID)
    lfs = {e.aid: e for e in client.get_status(0x10)}
    assert lfs[NOTE_PACKAGE_AID].modules == (NOTE_MODULE_AID,)


def _after_life_cycle(card: Card, reopen: Callable[[], GpClient]) -> None:
    assert _note(card) == (b"personalised", 0x9000)
    client = reopen()
    client.delete(NOTE_PACKAGE_AID, related=True)
    assert NOTE_PACKAGE_AID not in {e.aid for e in client.get_status(0x20)}
    assert _note(card)[1] == 0x6A82


@pytest.mark.parametrize(("level", "s_mode", "key"), [
    (0x01, 8, bytes(range(0x40, 0x50))),
    (0x03, 8, bytes(range(0x40, 0x50))),
    (0x11, 16, bytes(range(0x40, 0x58))),
    (0x13, 8, bytes(range(0x40, 0x60))),
    (0x33, 8, bytes(range(0x40, 0x60))),
    (0x33, 16, bytes(range(0x40, 0x50))),
])
def test_full_life_cycle_over_scp03(level: int, s_mode: int, key: bytes) -> None:
    card = gp_card(gp_profile(IsdSetup(keys=gp_test_keys(key=key))))
    client = GpClient(card.transmit)
    client.select()
    keys = Scp03StaticKeys(key, key, key, 0x30)
    client.open_scp03(keys, security_level=level, s_mode=s_mode, sd_aid=ISD_AID)
    _life_cycle(client, card)

    def reopen() -> GpClient:
        client.select()
        client.open_scp03(keys, security_level=level, s_mode=s_mode)
        return client

    _after_life_cycle(card, reopen)


def test_random_card_challenge_scp03() -> None:
    card = gp_card(gp_profile(IsdSetup(scp03_i=0x60)))
    client = scp03_client(card)
    assert isinstance(client.session, Scp03HostSession)
    assert client.session.sequence_counter is None  # i=60: random challenge, no counter
    first = client.session.card_challenge
    client = scp03_client(card)
    assert isinstance(client.session, Scp03HostSession)
    assert client.session.card_challenge != first
    assert client.get_status(0x80)[0].aid == ISD_AID


def _scp11_world(card_key: ec.EllipticCurvePrivateKey) -> tuple[
        ec.EllipticCurvePrivateKey, ec.EllipticCurvePrivateKey, bytes]:
    ca = private_key_from_scalar(bytes.fromhex("2a" * 32))
    oce = private_key_from_scalar(bytes.fromhex("3b" * 32))
    cert = build_gp_certificate(serial=b"\x05", ca_kloc_id=b"\xca", subject_id=b"OCE",
                                public_key=oce.public_key(), signer=ca)
    return ca, oce, cert


@pytest.mark.parametrize("variant", [Scp11Variant.A, Scp11Variant.C])
def test_full_life_cycle_over_scp11(variant: Scp11Variant) -> None:
    sd = scp11_key()
    ca, oce, cert = _scp11_world(sd)
    keys = [*gp_test_keys(), SdKey.ec_private(0x01, KeyId.SCP11A, sd),
            SdKey.ec_private(0x01, KeyId.SCP11B, sd), SdKey.ec_private(0x01, KeyId.SCP11C, sd),
            SdKey.ec_public(0x01, KeyId.CA_KLOC, ca.public_key())]
    from smarthydra.card.gp.profile import certificate_store

    card = gp_card(gp_profile(IsdSetup(keys=keys, certificate_store=certificate_store(sd, ca))))
    client = GpClient(card.transmit)
    client.select()
    store = parse_certificate_store(client.certificate_store())
    store[-1].verify(ca.public_key())  # the host trusts PK.SD through the card issuer's CA

    def open_channel() -> GpClient:
        client.select()
        client.open_scp11(variant, store[-1].public_key, kvn=0x01,
                          oce_private_key=None if variant is Scp11Variant.B else oce,
                          oce_certificates=() if variant is Scp11Variant.B else (cert,))
        return client

    _life_cycle(open_channel(), card)
    _after_life_cycle(card, open_channel)


def test_scp11_refuses_an_oce_certificate_from_another_ca() -> None:
    sd = scp11_key()
    ca, oce, _ = _scp11_world(sd)
    rogue = private_key_from_scalar(bytes.fromhex("4c" * 32))
    forged = build_gp_certificate(serial=b"\x06", ca_kloc_id=b"\xca", subject_id=b"OCE",
                                  public_key=oce.public_key(), signer=rogue)
    keys = [*gp_test_keys(), SdKey.ec_private(0x01, KeyId.SCP11A, sd),
            SdKey.ec_public(0x01, KeyId.CA_KLOC, ca.public_key())]
    card = gp_card(gp_profile(IsdSetup(keys=keys)))
    client = GpClient(card.transmit)
    client.select()
    with pytest.raises(GpCommandError) as info:
        client.open_scp11(Scp11Variant.A, sd.public_key(), oce_private_key=oce,
                          oce_certificates=(forged,))
    assert info.value.sw == 0x6982


def test_management_needs_a_secure_channel_and_bad_macs_end_it() -> None:
    card = gp_card()
    assert _apdu(card, "00A4040008A00000015100000000")[1] == 0x9000
    assert _apdu(card, "80F24002024F0000")[1] == 0x6982
    client = scp03_client(card)
    assert client.session is not None
    wrapped = bytearray(client.session.wrap(bytes.fromhex("80F24002024F0000")))
    wrapped[-2] ^= 1  # corrupt the C-MAC
    assert _apdu(card, bytes(wrapped))[1] == 0x6982
    assert _apdu(card, "80F24002024F0000")[1] == 0x6982  # the session is gone


def test_status_words_for_refusals() -> None:
    card = gp_card()
    client = scp03_client(card)
    assert client.send(bytes.fromhex("80F2400200")).sw == 0x6A80  # no search criteria
    assert client.send(bytes.fromhex("80F2050200")).sw == 0x6A86  # bad P1
    assert client.send(bytes.fromhex("80F24002074F05F0F0F0F0F000")).sw == 0x6A88
    assert client.send(bytes.fromhex("80E8800000")).sw == 0x6985  # LOAD without INSTALL
    assert client.send(bytes.fromhex("80E40000074F05F0F0F0F0F000")).sw == 0x6A88
    assert client.send(bytes.fromhex("80E400000A4F08A00000015100000000")).sw == 0x6985
    assert client.send(bytes.fromhex("8077000000")).sw == 0x6D00
    assert client.send(bytes.fromhex("80CA00FF00")).sw == 0x6A88
    assert client.send(bytes.fromhex("80F00105")).sw == 0x6A86
    # a ROM load file cannot be deleted
    assert client.send(bytes.fromhex("80E40000094F07A000000151535000")).sw == 0x6985


def test_get_status_pages_with_6310() -> None:
    card = gp_card()
    client = scp03_client(card)
    package = note_package().encode()
    client.load(NOTE_PACKAGE_AID, package)
    for n in range(12):
        client.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID + bytes((n,)))
    first = client.send(bytes.fromhex("80F24002024F0000"))
    assert first.sw == 0x6310
    entries = client.get_status(0x40)
    assert len(entries) == 12
    assert client.send(bytes.fromhex("80F24003024F0000")).sw == 0x6985  # nothing to continue


def test_get_data_objects() -> None:
    card = gp_card()
    client = GpClient(card.transmit)
    client.select()
    recognition = tlv.parse_one(client.get_data(0x0066))[0]
    assert recognition.tag == 0x66
    assert gpm.GP_OID + bytes((0x04, 0x03, 0x70)) in recognition.value
    template = tlv.parse_one(client.get_data(0x00E0))[0]
    infos = [c.value for c in template.children()]
    assert bytes((0x01, 0x30, 0x88, 0x10)) in infos and bytes((0x13, 0x01, 0xB1, 0x20)) in infos
    cplc = tlv.parse_one(client.get_data(0x9F7F))[0]
    assert cplc.tag == 0x9F7F and len(cplc.value) == 42
    before = client.sequence_counter()
    scp03_client(card)
    client.select()
    assert client.sequence_counter() == before + 1
    assert tlv.parse_one(client.get_data(0x00C2))[0].value == b"\x00\x00"
    store = parse_certificate_store(client.certificate_store())
    assert store[-1].public_key.public_numbers() == scp11_key().public_key().public_numbers()


def test_put_key_aes_and_ec_with_check_values() -> None:
    card = gp_card()
    client = scp03_client(card)
    new = bytes(range(0x70, 0x80))
    keys = [SdKey(0x31, kid, KeyType.AES, new) for kid in (1, 2, 3)]
    answer = client.put_key(keys)
    assert answer == b"\x31" + b"".join(k.kcv() for k in keys)
    ec_key = private_key_from_scalar(bytes.fromhex("5d" * 32))
    assert client.put_key([SdKey.ec_private(0x02, KeyId.SCP11B, ec_key)]) == b"\x02"
    assert client.put_key([SdKey.ec_public(0x02, KeyId.CA_KLOC,
                                           ec_key.public_key())]) == b"\x02"
    # a wrong KCV is refused
    from smarthydra.card.gp.client import put_key_command

    bad = bytearray(put_key_command([SdKey(0x32, 1, KeyType.AES, new)], client.dek))
    bad[-2] ^= 0xFF  # last KCV byte (before Le)
    assert client.send(bytes(bad)).sw == 0x6A80
    # replacing a version that does not exist
    assert client.send(put_key_command([SdKey(0x33, 1, KeyType.AES, new)], client.dek,
                                       replace_kvn=0x44)).sw == 0x6A88
    # the new key set opens a channel; the old one still does too
    client.select()
    client.open_scp03(Scp03StaticKeys(new, new, new, 0x31))
    client.delete_key = None  # type: ignore[attr-defined]
    from smarthydra.card.gp.client import delete_key_command

    assert client.send(delete_key_command(key_version=0x30)).sw == 0x9000
    client.select()
    with pytest.raises(Exception):  # noqa: B017 - the card has no key version 30 any more
        client.open_scp03(Scp03StaticKeys.test_keys())


def test_put_key_over_scp11_uses_the_session_dek() -> None:
    sd = scp11_key()
    ca, oce, cert = _scp11_world(sd)
    card = gp_card(gp_profile(IsdSetup(keys=[
        *gp_test_keys(), SdKey.ec_private(0x01, KeyId.SCP11A, sd),
        SdKey.ec_public(0x01, KeyId.CA_KLOC, ca.public_key())])))
    client = GpClient(card.transmit)
    client.select()
    client.open_scp11(Scp11Variant.A, sd.public_key(), oce_private_key=oce,
                      oce_certificates=(cert,))
    new = bytes(range(0x20, 0x40))
    assert client.put_key([SdKey(0x40, k, KeyType.AES, new) for k in (1, 2, 3)])[0] == 0x40
    client.select()
    client.open_scp03(Scp03StaticKeys(new, new, new, 0x40))


def test_scp11b_reads_but_never_manages() -> None:
    """SCP11b authenticates the card, not the host: anyone with the published PK.SD.ECKA can
    open it, so it gets GET DATA / GET STATUS and nothing that changes the card (6982)."""
    card = gp_card()
    client = GpClient(card.transmit)
    client.select()
    client.open_scp11(Scp11Variant.B, client.sd_public_key())
    assert client.get_status(0x80)[0].aid == ISD_AID
    assert client.get_data(0x00E0)[:1] == b"\xE0"
    new = bytes(range(0x20, 0x40))
    with pytest.raises(GpCommandError) as info:
        client.put_key([SdKey(0x40, k, KeyType.AES, new) for k in (1, 2, 3)])
    assert info.value.sw == 0x6982
    for refused in (delete_key_command(key_version=0x30),
                    set_status_command(0x80, 0x7F)):
        assert client.send(refused).sw == 0x6982
    client.select()
    client.open_scp03(Scp03StaticKeys.test_keys())  # the test keys are still there


def test_secure_messaging_without_a_session_is_refused() -> None:
    """A command that carries the SM indication but reaches the SD with no session open was
    never MAC-checked: refused, not answered as if it were plain."""
    card = gp_card()
    GpClient(card.transmit).select()
    assert card.transmit(bytes.fromhex("84CA00E008") + bytes(8))[-2:] == b"\x69\x82"
    assert card.transmit(bytes.fromhex("80CA00E000"))[-2:] == b"\x90\x00"


# --- DAP, privileges, delegated management -------------------------------------------------


def _ssd_setup(client: GpClient, privileges: bytes, extra_keys: list[SdKey] | None = None
               ) -> None:
    """Create an SSD and give it a key set (INSTALL, then personalisation through the ISD)."""
    client.install(SD_PACKAGE_AID, SD_MODULE_AID, SSD_AID, privileges=privileges)
    keys = [SdKey(0x30, kid, KeyType.AES, SSD_KEY) for kid in (1, 2, 3)]
    data = keys_dgi(keys)
    for key in extra_keys or []:
        data += keys_dgi([key])
    client.personalize(SSD_AID, data)


def _open_ssd(card: Card) -> GpClient:
    client = GpClient(card.transmit)
    client.select(SSD_AID)
    client.open_scp03(Scp03StaticKeys(SSD_KEY, SSD_KEY, SSD_KEY, 0x30))
    return client


def test_mandated_dap_refuses_an_unsigned_load_file() -> None:
    card = gp_card()
    isd = scp03_client(card)
    authority = private_key_from_scalar(bytes.fromhex("6e" * 32))
    _ssd_setup(isd, privileges_of(Privilege.SECURITY_DOMAIN, Privilege.MANDATED_DAP),
               [SdKey.ec_public(0x01, KeyId.DAP, authority.public_key())])
    block = note_package().encode()
    with pytest.raises(GpCommandError) as info:
        isd.load(NOTE_PACKAGE_AID, block)
    assert info.value.sw == 0x6982
    rogue = private_key_from_scalar(bytes.fromhex("7f" * 32))
    with pytest.raises(GpCommandError) as info:
        isd.load(NOTE_PACKAGE_AID, block, daps={SSD_AID: dap_signature(rogue, block)})
    assert info.value.sw == 0x6982
    isd.load(NOTE_PACKAGE_AID, block, daps={SSD_AID: dap_signature(authority, block)})
    isd.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID, params=b"signed")
    assert _note(card) == (b"signed", 0x9000)


def test_rsa_dap_for_a_dap_verification_sd() -> None:
    card = gp_card()
    isd = scp03_client(card)
    authority = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _ssd_setup(isd, privileges_of(Privilege.SECURITY_DOMAIN, Privilege.DAP_VERIFICATION,
                                  Privilege.AUTHORIZED_MANAGEMENT),
               [SdKey.rsa_public(0x01, KeyId.DAP, authority.public_key())])
    ssd = _open_ssd(card)
    block = note_package().encode()
    with pytest.raises(GpCommandError) as info:
        ssd.load(NOTE_PACKAGE_AID, block)  # loading into a DAP-verifying SD needs its DAP
    assert info.value.sw == 0x6982
    ssd.load(NOTE_PACKAGE_AID, block, daps={SSD_AID: dap_signature(authority, block)})
    ssd.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID)
    assert {e.aid: e for e in ssd.get_status(0x40)}[NOTE_APP_AID].associated_sd == SSD_AID


def test_tampered_load_file_is_refused_by_its_hash() -> None:
    card = gp_card()
    client = scp03_client(card)
    block = note_package().encode()
    client.check(install_for_load_command(
        NOTE_PACKAGE_AID, block_hash=gpm.load_file_data_block_hash(block)), "INSTALL")
    tampered = block[:-1] + bytes((block[-1] ^ 1,))
    responses = [client.send(c).sw for c in load_commands(gpm.LoadFile({}, tampered))]
    assert responses[-1] == 0x6982


def test_an_sd_without_management_privileges_is_refused() -> None:
    card = gp_card()
    isd = scp03_client(card)
    _ssd_setup(isd, privileges_of(Privilege.SECURITY_DOMAIN))
    ssd = _open_ssd(card)
    with pytest.raises(GpCommandError) as info:
        ssd.load(NOTE_PACKAGE_AID, note_package().encode())
    assert info.value.sw == 0x6982


def test_privileges_are_checked_at_install() -> None:
    card = gp_card()
    isd = scp03_client(card)
    block = note_package().encode()
    isd.load(NOTE_PACKAGE_AID, block)
    # an application cannot hold SD-only privileges
    for privileges in ("400000", "200000", "004000", "000080"):  # DAP, DM, AM, receipts
        response = isd.send(install_command(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID,
                                            privileges=bytes.fromhex(privileges)))
        assert response.sw == 0x6A80, privileges
    # delegated and authorized management together
    response = isd.send(install_command(SD_PACKAGE_AID, SD_MODULE_AID, SSD_AID,
                                        privileges=privileges_of(
                                            Privilege.DELEGATED_MANAGEMENT,
                                            Privilege.AUTHORIZED_MANAGEMENT)))
    assert response.sw == 0x6A80
    # an SD from an applet load file
    response = isd.send(install_command(NOTE_PACKAGE_AID, NOTE_MODULE_AID, SSD_AID,
                                        privileges=privileges_of(Privilege.SECURITY_DOMAIN)))
    assert response.sw == 0x6A80
    # an application may hold Global Delete (a card manager application)
    isd.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID,
                privileges=privileges_of(Privilege.GLOBAL_DELETE))


def test_a_delegated_sd_cannot_grant_issuer_privileges() -> None:
    card, issuer, _ = _delegated_card()
    ssd = _open_ssd(card)
    signer = token_signer_for(issuer)
    ssd.load(NOTE_PACKAGE_AID, note_package().encode(), token_signer=signer)
    response = ssd.send(install_command(
        SD_PACKAGE_AID, SD_MODULE_AID, SSD_AID + b"\x01",
        privileges=privileges_of(Privilege.SECURITY_DOMAIN, Privilege.AUTHORIZED_MANAGEMENT),
        token_signer=signer))
    assert response.sw == 0x6982
    response = ssd.send(install_command(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID,
                                        privileges=privileges_of(Privilege.CARD_TERMINATE),
                                        token_signer=signer))
    assert response.sw == 0x6982


def _delegated_card() -> tuple[Card, ec.EllipticCurvePrivateKey, bytes]:
    issuer = private_key_from_scalar(bytes.fromhex("11" * 32))
    receipt_key = bytes(range(0xA0, 0xB0))
    keys = [*gp_test_keys(), SdKey.ec_public(0x01, KeyId.TOKEN, issuer.public_key()),
            SdKey(0x01, KeyId.RECEIPT, KeyType.AES, receipt_key)]
    card = gp_card(gp_profile(IsdSetup(keys=keys)))
    isd = scp03_client(card)
    _ssd_setup(isd, privileges_of(Privilege.SECURITY_DOMAIN, Privilege.DELEGATED_MANAGEMENT))
    return card, issuer, receipt_key


def test_delegated_management_with_tokens_and_receipts() -> None:
    card, issuer, receipt_key = _delegated_card()
    ssd = _open_ssd(card)
    block = note_package().encode()
    with pytest.raises(GpCommandError) as info:
        ssd.load(NOTE_PACKAGE_AID, block)  # no token
    assert info.value.sw == 0x6982
    rogue = token_signer_for(private_key_from_scalar(bytes.fromhex("22" * 32)))
    with pytest.raises(GpCommandError) as info:
        ssd.load(NOTE_PACKAGE_AID, block, token_signer=rogue)
    assert info.value.sw == 0x6982
    signer = token_signer_for(issuer)
    loaded = ssd.load(NOTE_PACKAGE_AID, block, token_signer=signer).parsed
    cud = bytes.fromhex("5348594452") + bytes.fromhex("0000000001")
    assert loaded is not None  # the load receipt comes with the last LOAD block
    assert loaded.receipt == gpm.receipt(receipt_key, loaded.counter, cud,
                                         [NOTE_PACKAGE_AID, SSD_AID])
    installed = ssd.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID, params=b"dm",
                            token_signer=signer).parsed
    assert installed is not None and installed.counter == loaded.counter + 1
    assert installed.card_unique_data == cud
    assert installed.receipt == gpm.receipt(receipt_key, installed.counter, cud,
                                            [NOTE_PACKAGE_AID, NOTE_APP_AID])
    assert _note(card) == (b"dm", 0x9000)
    ssd = _open_ssd(card)
    deleted = ssd.delete(NOTE_PACKAGE_AID, related=True, token_signer=signer).parsed
    assert deleted is not None and deleted.counter == installed.counter + 1
    assert deleted.receipt == gpm.receipt(receipt_key, deleted.counter, cud,
                                          [NOTE_PACKAGE_AID])


def test_delegated_extradition_and_registry_update() -> None:
    card, issuer, _ = _delegated_card()
    isd = scp03_client(card)
    isd.load(NOTE_PACKAGE_AID, note_package().encode())
    isd.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID)
    from smarthydra.card.gp.client import extradition_command, registry_update_command

    isd.check(extradition_command(SSD_AID, NOTE_APP_AID), "extradition")
    apps = {e.aid: e for e in isd.get_status(0x40)}
    assert apps[NOTE_APP_AID].associated_sd == SSD_AID
    ssd = _open_ssd(card)
    signer = token_signer_for(issuer)
    assert ssd.send(registry_update_command(NOTE_APP_AID, privileges=b"\x00\x00\x00")
                    ).sw == 0x6982
    data = ssd.check(registry_update_command(NOTE_APP_AID, privileges=b"\x00\x00\x00",
                                             token_signer=signer), "registry update")
    assert gpm.Confirmation.parse(data) is not None
    ssd.check(extradition_command(ISD_AID, NOTE_APP_AID, token_signer=signer), "extradite")


def test_kma_profile_enables_the_card_and_certifies_loads_and_deletes() -> None:
    kma = private_key_from_scalar(bytes.fromhex("33" * 32))
    card = gp_card(gp_profile(IsdSetup(kma_mode=True)))
    isd = scp03_client(card)
    block = note_package().encode()
    with pytest.raises(GpCommandError) as info:  # not enabled: no KMA key on the card
        isd.load(NOTE_PACKAGE_AID, block, token_signer=token_signer_for(kma))
    assert info.value.sw == 0x6982
    isd.put_key([SdKey.ec_public(0x01, KeyId.TOKEN, kma.public_key())])  # enablement
    with pytest.raises(GpCommandError):
        isd.load(NOTE_PACKAGE_AID, block)  # even the issuer needs a load certificate
    certificate = token_signer_for(kma)
    isd.load(NOTE_PACKAGE_AID, block, token_signer=certificate)
    isd.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID, token_signer=certificate)
    with pytest.raises(GpCommandError):
        isd.delete(NOTE_PACKAGE_AID, related=True)
    isd.delete(NOTE_PACKAGE_AID, related=True, token_signer=certificate)


# --- card life cycle --------------------------------------------------------------------


def test_card_lock_unlock_and_terminate() -> None:
    card = gp_card()
    isd = scp03_client(card)
    isd.load(NOTE_PACKAGE_AID, note_package().encode())
    isd.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID)
    isd.set_status(0x80, 0x7F)  # CARD_LOCKED
    assert _note(card)[1] == 0x6A82  # only the ISD is selectable
    isd = scp03_client(card)
    assert isd.get_status(0x80)[0].life_cycle == 0x7F
    assert isd.send(install_command(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID + b"\x01")
                    ).sw == 0x6985
    isd.set_status(0x80, 0x0F)  # back to SECURED
    assert _note(card) == (b"", 0x9000)
    isd = scp03_client(card)
    assert isd.send(bytes.fromhex("80F0800701")[:4] + b"\x00").sw == 0x6985  # no going back
    isd.set_status(0x80, 0xFF)
    assert isd.send(bytes.fromhex("80F24002024F0000")).sw == 0x6985
    assert _note(card)[1] == 0x6A82


def test_the_registry_survives_power_cycles() -> None:
    backing = MemoryBacking()
    card = gp_card(backing=backing)
    isd = scp03_client(card)
    isd.load(NOTE_PACKAGE_AID, note_package().encode())
    isd.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID, params=b"kept")
    card.power_off()
    card = gp_card(backing=backing)
    assert _note(card) == (b"kept", 0x9000)


# --- one-way scripts --------------------------------------------------------------------


def _install_script_commands() -> list[bytes]:
    block = note_package().encode()
    return [install_for_load_command(NOTE_PACKAGE_AID,
                                     block_hash=gpm.load_file_data_block_hash(block)),
            *load_commands(gpm.LoadFile({}, block)),
            install_command(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID, params=b"1way")]


def test_precomputed_scp03_script_installs_an_applet() -> None:
    card = gp_card()
    probe = GpClient(card.transmit)
    probe.select()
    counter = probe.sequence_counter()  # known to the back office from the last session
    script = one_way_scp03_script(Scp03StaticKeys.test_keys(), sd_aid=ISD_AID,
                                  sequence_counter=counter, commands=_install_script_commands(),
                                  host_challenge=bytes(8))
    # store and forward: the card gets the bytes later, nobody reads the answers
    responses = GpClient(card.transmit).run_script(script)
    assert all(r.sw == 0x9000 for r in responses), [hex(r.sw) for r in responses]
    assert _note(card) == (b"1way", 0x9000)


def test_precomputed_scp11c_script_installs_an_applet() -> None:
    sd = scp11_key()
    ca, oce, cert = _scp11_world(sd)
    keys = [*gp_test_keys(), SdKey.ec_private(0x01, KeyId.SCP11C, sd),
            SdKey.ec_public(0x01, KeyId.CA_KLOC, ca.public_key())]
    card = gp_card(gp_profile(IsdSetup(keys=keys)))
    script, expected = one_way_scp11c_script(
        sd_aid=ISD_AID, sd_public_key=sd.public_key(), oce_private_key=oce,
        oce_certificates=(cert,), commands=_install_script_commands(), kvn=0x01,
        ephemeral_key=private_key_from_scalar(bytes.fromhex("44" * 32)))
    responses = GpClient(card.transmit).run_script(script)
    assert all(r.sw == 0x9000 for r in responses), [hex(r.sw) for r in responses]
    assert responses[2].to_bytes() == expected.expected_authenticate_response
    assert _note(card) == (b"1way", 0x9000)
    # replaying the same script: the load file exists now, so the card refuses it
    again = GpClient(card.transmit).run_script(script)
    assert again[3].sw != 0x9000


# --- hostile load files through LOAD --------------------------------------------------------

_IMPORTS_OS = '''
import os
from smarthydra.card.applet import Applet


class NoteApplet(Applet):
    def process(self, apdu):
        return os.listdir("/")
'''

_LOOPS = '''
from smarthydra.card.applet import Applet


class NoteApplet(Applet):
    def process(self, apdu):
        if apdu.is_selecting:
            return None
        n = 0
        while True:
            n = n + 1
'''


def test_a_load_file_that_imports_is_refused_at_load() -> None:
    card = gp_card()
    client = scp03_client(card)
    with pytest.raises(GpCommandError) as info:
        client.load(NOTE_PACKAGE_AID, note_package(source=_IMPORTS_OS).encode())
    assert info.value.sw == 0x6A80
    assert NOTE_PACKAGE_AID not in {e.aid for e in client.get_status(0x20)}


def test_a_runaway_applet_is_stopped_and_the_card_keeps_working() -> None:
    card = gp_card()
    client = scp03_client(card)
    client.load(NOTE_PACKAGE_AID, note_package(source=_LOOPS).encode())
    client.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID)
    client.load(bytes.fromhex("F0534847B0"), note_package(
        aid=bytes.fromhex("F0534847B0"), module=bytes.fromhex("F0534847B001")).encode())
    client.install(bytes.fromhex("F0534847B0"), bytes.fromhex("F0534847B001"),
                   bytes.fromhex("F0534847B00101"), params=b"ok")
    assert _apdu(card, bytes.fromhex("00A4040007") + NOTE_APP_AID + b"\x00")[1] == 0x9000
    assert _apdu(card, "8012000000")[1] == 0x6F00
    assert _apdu(card, "00A4040007F0534847B0010100")[1] == 0x9000
    assert _apdu(card, "8012000000") == (b"ok", 0x9000)
    client = scp03_client(card)
    client.delete(NOTE_PACKAGE_AID, related=True)


def test_get_status_legacy_format_and_search_prefix() -> None:
    card = gp_card()
    client = scp03_client(card)
    response = client.send(bytes.fromhex("80F28000024F0000"))
    assert response.sw == 0x9000
    assert response.data == gpm.lv(ISD_AID) + bytes((0x0F, 0x9E))  # AID, card life cycle, priv
    response = client.send(bytes.fromhex("80F21000024F0000"))
    assert response.sw == 0x9000 and response.data.startswith(gpm.lv(SD_PACKAGE_AID) + b"\x01")
    matching = client.get_status(0x20, bytes.fromhex("A0000001"))
    assert [e.aid for e in matching] == [SD_PACKAGE_AID]


def test_load_survives_power_cuts_all_or_nothing() -> None:
    """Cut the power at every NVM write while the last LOAD block is stored: after power-up
    the load file is either completely there (and installable) or not there at all."""
    from smarthydra.card.memory import PowerCut, PowerCutInjector

    block = note_package().encode()
    commands = [install_for_load_command(NOTE_PACKAGE_AID,
                                         block_hash=gpm.load_file_data_block_hash(block)),
                *load_commands(gpm.LoadFile({}, block))]
    outcomes = set()
    for cut_after in range(0, 12):
        backing = MemoryBacking()
        injector = PowerCutInjector()
        card = gp_card(backing=backing, injector=injector)
        client = scp03_client(card)
        for command in commands[:-1]:
            assert client.send(command).sw == 0x9000
        injector.arm(cut_after)
        try:
            client.send(commands[-1])
            outcomes.add("completed")
        except PowerCut:
            outcomes.add("cut")
        card = gp_card(backing=backing)
        client = scp03_client(card)
        present = NOTE_PACKAGE_AID in {e.aid for e in client.get_status(0x20)}
        if present:
            client.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID, params=b"x")
            assert _note(card) == (b"x", 0x9000)
    assert outcomes == {"cut", "completed"}


def test_secure_channel_on_a_logical_channel_beside_an_applet() -> None:
    card = gp_card()
    isd = scp03_client(card)
    isd.load(NOTE_PACKAGE_AID, note_package().encode())
    isd.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID, params=b"ch0")
    assert _note(card) == (b"ch0", 0x9000)  # the applet is selected on channel 0
    opened, sw = _apdu(card, "0070000001")
    assert sw == 0x9000 and opened == b"\x01"
    for level, s_mode in ((0x33, 8), (0x13, 16)):
        side = GpClient(card.transmit, channel=1)
        side.select()
        side.open_scp03(Scp03StaticKeys.test_keys(), security_level=level, s_mode=s_mode)
        assert NOTE_APP_AID in {e.aid for e in side.get_status(0x40)}
        side.lock(NOTE_APP_AID)
        assert _apdu(card, "8012000000")[1] != 0x9000  # the locked applet was deselected
        side.unlock(NOTE_APP_AID)
        assert _note(card) == (b"ch0", 0x9000)
    side = GpClient(card.transmit, channel=1)
    side.select()
    side.open_scp11(Scp11Variant.B, side.sd_public_key())
    assert side.get_status(0x80)[0].aid == ISD_AID


def test_tokens_verified_by_the_sd_holding_token_verification() -> None:
    """An ISD without Token Verification: the SD that holds it checks the tokens."""
    from smarthydra.card.gp.profile import ISD_PRIVILEGES

    issuer_privileges = (int.from_bytes(ISD_PRIVILEGES, "big")
                         & ~int(Privilege.TOKEN_VERIFICATION)).to_bytes(3, "big")
    card = gp_card(gp_profile(IsdSetup(privileges=issuer_privileges)))
    isd = scp03_client(card)
    verifier_aid = bytes.fromhex("A000000151535356")
    authority = private_key_from_scalar(bytes.fromhex("55" * 32))
    isd.install(SD_PACKAGE_AID, SD_MODULE_AID, verifier_aid,
                privileges=privileges_of(Privilege.SECURITY_DOMAIN,
                                         Privilege.TOKEN_VERIFICATION))
    isd.personalize(verifier_aid, keys_dgi([SdKey.ec_public(0x01, KeyId.TOKEN,
                                                            authority.public_key())]))
    _ssd_setup(isd, privileges_of(Privilege.SECURITY_DOMAIN, Privilege.DELEGATED_MANAGEMENT))
    ssd = _open_ssd(card)
    with pytest.raises(GpCommandError):
        ssd.load(NOTE_PACKAGE_AID, note_package().encode(),
                 token_signer=token_signer_for(private_key_from_scalar(b"\x11" * 32)))
    ssd.load(NOTE_PACKAGE_AID, note_package().encode(),
             token_signer=token_signer_for(authority))


@pytest.mark.parametrize("length", [20, 32, 48, 64])
def test_load_file_data_block_hash_algorithms(length: int) -> None:
    import hashlib

    card = gp_card()
    client = scp03_client(card)
    block = note_package().encode()
    name = {20: "sha1", 32: "sha256", 48: "sha384", 64: "sha512"}[length]
    digest = hashlib.new(name, block).digest()
    client.check(install_for_load_command(NOTE_PACKAGE_AID, block_hash=digest), "INSTALL")
    for command in load_commands(gpm.LoadFile({}, block)):
        assert client.send(command).sw == 0x9000
    wrong = client.send(install_for_load_command(NOTE_PACKAGE_AID + b"\x01",
                                                 block_hash=digest[:-1]))
    assert wrong.sw == 0x6A80
