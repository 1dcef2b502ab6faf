"""Interoperability of the on-card issuer security domain with Yubico's yubikit, an independent
host-side implementation of GlobalPlatform SCP03 / SCP11 and Security Domain management.

Each operation runs through yubikit against one card and through our GpClient against a twin
card (same profile, same RNG seed); the results are compared. Where yubikit deviates from the
GP specification (it follows the YubiKey's own Security Domain) the test pins the deviation
and docs/interop.md gives the specification reference.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from yubikit.core import TRANSPORT
from yubikit.core.smartcard import ApduError
from yubikit.core.smartcard.scp import (
    KeyRef,
    Scp03KeyParams,
    Scp11KeyParams,
    ScpKid,
    StaticKeys,
)
from yubikit.securitydomain import SecurityDomainSession

from smarthydra.card.card import Card
from smarthydra.card.gp import tlv
from smarthydra.card.gp.client import GpClient, delete_key_command
from smarthydra.card.gp.keystore import KeyType, SdKey
from smarthydra.card.gp.management import ISD_AID, KeyId
from smarthydra.card.gp.profile import TEST_KEY, TEST_KVN
from smarthydra.card.gp.scp03 import Scp03StaticKeys
from smarthydra.card.gp.scp11 import Scp11Variant
from smarthydra.crypto.primitives import private_key_from_scalar
from tests.card.gp.gpcards import gp_card, scp03_client, scp11_key

from .yubikit_link import CardLink, sd_public_key

SCP03_TEST = KeyRef(ScpKid.SCP03, TEST_KVN)
SCP11B_KEY = KeyRef(ScpKid.SCP11b, 0x01)
NEW_ENC, NEW_MAC, NEW_DEK = (bytes([b]) * 16 for b in (0x11, 0x22, 0x33))
STORE_TAG = bytes.fromhex("A604830213" + "01")  # A6 { 83 KID KVN }: which key's certificates


def _session(card: Card, transport: TRANSPORT = TRANSPORT.NFC
             ) -> tuple[SecurityDomainSession, CardLink]:
    link = CardLink(card.transmit, transport)
    return SecurityDomainSession(link), link


def _key_information(template: bytes) -> dict[tuple[int, int], tuple[int, int]]:
    """GET DATA E0 parsed by the GP rules: (KID, KVN) -> (key type, length)."""
    e0 = tlv.parse_one(template)[0]
    assert e0.tag == 0xE0
    out = {}
    for c0 in tlv.parse_all(e0.value):
        kid, kvn, key_type, length = c0.value[:4]
        out[(kid, kvn)] = (key_type, length)
    return out


def _yubikit_scp03(card: Card, ref: KeyRef = SCP03_TEST,
                   keys: StaticKeys | None = None) -> SecurityDomainSession:
    session, _ = _session(card)
    session.authenticate(Scp03KeyParams(ref=ref, keys=keys or StaticKeys.default()))
    return session


def _twin_cards() -> tuple[Card, Card]:
    return gp_card(), gp_card()


# --- plain GET DATA (no secure channel) ----------------------------------------------------


@pytest.mark.parametrize("tag", [0x0066, 0x00E0, 0x00CF, 0x0042, 0x0045, 0x9F7F, 0x00C1])
def test_get_data_outside_a_session_matches_our_client(tag: int) -> None:
    ours, theirs = _twin_cards()
    client = GpClient(ours.transmit)
    client.select()
    session, link = _session(theirs)
    assert link.traffic[0].command[:5] == bytes.fromhex("00A4040008")  # yubikit's SELECT
    assert session.get_data(tag) == client.get_data(tag)


def test_card_recognition_data_names_scp03_and_scp11b() -> None:
    session, _ = _session(gp_card())
    raw = session.get_data(0x0066)
    card_data = tlv.parse_one(raw)[0]
    recognition = tlv.parse_one(card_data.value)[0]
    assert (card_data.tag, recognition.tag) == (0x66, 0x73)
    oids = [tlv.parse_one(item.value)[0].value for item in tlv.parse_all(recognition.value)
            if item.tag == 0x64]
    assert [oid[-3:] for oid in oids] == [bytes((0x04, 0x03, 0x70)), bytes((0x04, 0x11, 0x07))]


def test_yubikit_reads_card_recognition_and_key_information_without_the_gp_wrapper() -> None:
    """Deviation (docs/interop.md #1, #2): yubikit expects GET DATA 66 to answer with the
    bare 73 template and GET DATA E0 with bare C0 entries; GP 2.3.1 11.3.3 (and
    GlobalPlatformPro) have the response carry the 66 / E0 tag, as this card does."""
    session, _ = _session(gp_card())
    with pytest.raises(ValueError, match="expected 0x73"):
        session.get_card_recognition_data()
    with pytest.raises(ValueError, match="expected 0xc0"):
        session.get_key_information()


# --- SCP03 ---------------------------------------------------------------------------------


def test_yubikit_opens_scp03_with_the_default_test_keys() -> None:
    ours, theirs = _twin_cards()
    session, link = _session(theirs)
    session.authenticate(Scp03KeyParams(ref=SCP03_TEST, keys=StaticKeys.default()))
    assert StaticKeys.default().key_enc == TEST_KEY
    external_authenticate = link.traffic[-1]
    assert external_authenticate.command[:4] == bytes.fromhex("84823300")  # full level 33
    assert external_authenticate.sw == 0x9000
    # a protected command (C-MAC, C-DECRYPTION) and its protected response (R-MAC, R-ENC)
    through_yubikit = session.get_data(0x00E0)
    wrapped = link.traffic[-1] if link.traffic[-1].command[1] == 0xCA else link.traffic[-2]
    assert wrapped.command[0] == 0x04 and through_yubikit not in wrapped.response
    assert through_yubikit == scp03_client(ours).get_data(0x00E0)
    assert _key_information(through_yubikit) == {
        (1, TEST_KVN): (0x88, 16), (2, TEST_KVN): (0x88, 16), (3, TEST_KVN): (0x88, 16),
        (KeyId.SCP11B, 0x01): (0xB1, 32)}


def test_yubikit_scp03_with_wrong_keys_is_refused() -> None:
    session, _ = _session(gp_card())
    wrong = StaticKeys(bytes(16), bytes(16), bytes(16))
    with pytest.raises(ValueError, match="Incorrect SCP parameters"):  # card cryptogram
        session.authenticate(Scp03KeyParams(ref=SCP03_TEST, keys=wrong))


def test_yubikit_scp03_unknown_key_version() -> None:
    session, _ = _session(gp_card())
    with pytest.raises(ValueError, match="Incorrect SCP parameters"):  # 6A88 from the card
        session.authenticate(Scp03KeyParams(ref=KeyRef(1, 0x55), keys=StaticKeys.default()))


def test_many_protected_commands_keep_the_mac_chain_and_counter_in_step() -> None:
    card = gp_card()
    session = _yubikit_scp03(card)
    first = session.get_data(0x00E0)
    for tag in (0x0066, 0x00CF, 0x0042, 0x0045, 0x9F7F) * 4:
        assert session.get_data(tag)[:1] in (b"\x66", b"\xCF", b"\x42", b"\x45", b"\x9F")
    assert session.get_data(0x00E0) == first


def test_card_error_inside_yubikit_scp03_session_comes_back_bare() -> None:
    session = _yubikit_scp03(gp_card())
    with pytest.raises(ApduError) as info:
        session.get_data(0x0099)  # no such data object: 6A88, no R-MAC on an error
    assert info.value.sw == 0x6A88
    assert session.get_data(0x0042) == tlv.encode(0x42, bytes.fromhex("5348594452"))


def test_put_key_new_scp03_key_set_then_open_with_it() -> None:
    ours, theirs = _twin_cards()
    session = _yubikit_scp03(theirs)
    session.put_key(KeyRef(ScpKid.SCP03, 0x31), StaticKeys(NEW_ENC, NEW_MAC, NEW_DEK))
    # yubikit checked the card's answer: new KVN || the three KCVs it computed itself
    client = scp03_client(ours)
    ours_answer = client.put_key([SdKey(0x31, kid, KeyType.AES, key) for kid, key in
                                  ((1, NEW_ENC), (2, NEW_MAC), (3, NEW_DEK))])
    assert ours_answer[0] == 0x31 and len(ours_answer) == 10
    assert session.get_data(0x00E0) == client.get_data(0x00E0)
    # both hosts open SCP03 with the new key set on the card yubikit provisioned
    again = _yubikit_scp03(theirs, KeyRef(ScpKid.SCP03, 0x31),
                           StaticKeys(NEW_ENC, NEW_MAC, NEW_DEK))
    assert 0x31 in {kvn for (_, kvn) in _key_information(again.get_data(0x00E0))}
    gp = GpClient(theirs.transmit)
    gp.select()
    gp.open_scp03(Scp03StaticKeys(NEW_ENC, NEW_MAC, NEW_DEK, 0x31))
    assert gp.get_data(0x00E0) == client.get_data(0x00E0)


def test_put_key_replaces_the_default_key_set() -> None:
    card = gp_card()
    session = _yubikit_scp03(card)
    session.put_key(KeyRef(ScpKid.SCP03, 0x32), StaticKeys(NEW_ENC, NEW_MAC, NEW_DEK),
                    replace_kvn=TEST_KVN)
    information = _key_information(session.get_data(0x00E0))
    assert {kvn for (kid, kvn) in information if kid in (1, 2, 3)} == {0x32}
    with pytest.raises(ValueError):
        _yubikit_scp03(card)  # KVN 30 is gone
    _yubikit_scp03(card, KeyRef(ScpKid.SCP03, 0x32), StaticKeys(NEW_ENC, NEW_MAC, NEW_DEK))


def test_put_key_with_a_wrong_kcv_is_refused() -> None:
    """The card checks the KCV yubikit sends; a mismatch is 6A80, and the session ends."""
    card = gp_card()
    session = _yubikit_scp03(card)
    state = session.protocol._processor.state  # type: ignore[attr-defined]
    dek = state._keys.key_dek
    from smarthydra.crypto.primitives import aes_cbc_encrypt

    block = bytes((0x88, 16)) + aes_cbc_encrypt(dek, bytes(16), NEW_ENC) + b"\x03" + b"\0\0\0"
    with pytest.raises(ApduError) as info:
        session.protocol.send_apdu(0x80, 0xD8, 0, 0x81, b"\x33" + block * 3)
    assert info.value.sw == 0x6A80
    assert 0x33 not in {kvn for (_, kvn) in _key_information(
        _yubikit_scp03(card).get_data(0x00E0))}


def test_put_and_delete_ec_keys() -> None:
    ours, theirs = _twin_cards()
    new_sd = private_key_from_scalar(bytes.fromhex("5a" * 32))
    ca = private_key_from_scalar(bytes.fromhex("6b" * 32))
    session = _yubikit_scp03(theirs)
    session.put_key(KeyRef(ScpKid.SCP11b, 0x02), new_sd)
    session.put_key(KeyRef(KeyId.CA_KLOC, 0x03), ca.public_key())
    client = scp03_client(ours)
    assert client.put_key([SdKey.ec_private(0x02, KeyId.SCP11B, new_sd)]) == b"\x02"
    assert client.put_key([SdKey.ec_public(0x03, KeyId.CA_KLOC, ca.public_key())]) == b"\x03"
    information = _key_information(session.get_data(0x00E0))
    assert information[(KeyId.SCP11B, 0x02)] == (0xB1, 32)
    assert information[(KeyId.CA_KLOC, 0x03)] == (0xB0, 65)
    assert session.get_data(0x00E0) == client.get_data(0x00E0)
    # the private key really arrived (decrypted with the DEK): SCP11b with it works
    scp11, _ = _session(theirs)
    scp11.authenticate(Scp11KeyParams(KeyRef(ScpKid.SCP11b, 0x02), new_sd.public_key()))
    # delete by KVN, and by KID + KVN, as yubikit builds it (D0 / D2 tags)
    session = _yubikit_scp03(theirs)
    session.delete_key(kvn=0x03)
    session.delete_key(ScpKid.SCP11b, 0x02)
    client.send(delete_key_command(key_version=0x03))
    client.send(delete_key_command(key_version=0x02, key_id=KeyId.SCP11B))
    assert session.get_data(0x00E0) == client.get_data(0x00E0)
    assert set(_key_information(session.get_data(0x00E0))) == {
        (1, TEST_KVN), (2, TEST_KVN), (3, TEST_KVN), (KeyId.SCP11B, 0x01)}


def test_delete_the_default_scp03_key_set_by_version() -> None:
    card = gp_card()
    session = _yubikit_scp03(card)
    session.put_key(KeyRef(ScpKid.SCP03, 0x31), StaticKeys(NEW_ENC, NEW_MAC, NEW_DEK))
    session.delete_key(ScpKid.SCP03, TEST_KVN)  # yubikit turns this into KVN-only (D2 30)
    with pytest.raises(ValueError):
        _yubikit_scp03(card)
    remaining = _yubikit_scp03(card, KeyRef(ScpKid.SCP03, 0x31),
                               StaticKeys(NEW_ENC, NEW_MAC, NEW_DEK))
    assert {kvn for (kid, kvn) in _key_information(remaining.get_data(0x00E0))
            if kid in (1, 2, 3)} == {0x31}


def test_delete_of_a_missing_key_is_6a88() -> None:
    session = _yubikit_scp03(gp_card())
    with pytest.raises(ApduError) as info:
        session.delete_key(kvn=0x44)
    assert info.value.sw == 0x6A88


def test_store_data_through_yubikit_secure_channel() -> None:
    """yubikit's store_data() sends CLA 00 (docs/interop.md #4): refused with 6E00. The same
    STORE DATA with the GP class byte, wrapped by yubikit's SCP03, is accepted."""
    ours, theirs = _twin_cards()
    session = _yubikit_scp03(theirs)
    with pytest.raises(ApduError) as info:
        session.store_data(tlv.encode(0x42, b"YUBI"))
    assert info.value.sw == 0x6E00
    session = _yubikit_scp03(theirs)  # the refused command ended the session
    session.protocol.send_apdu(0x80, 0xE2, 0x90, 0x00, tlv.encode(0x42, b"YUBI"))
    client = scp03_client(ours)
    client.store_data(tlv.encode(0x42, b"YUBI"), structure=0x10)
    assert session.get_data(0x0042) == client.get_data(0x0042) == tlv.encode(0x42, b"YUBI")


# --- SCP11b --------------------------------------------------------------------------------


def test_yubikit_opens_scp11b_with_the_published_certificate() -> None:
    ours, theirs = _twin_cards()
    session, link = _session(theirs)
    store = session.get_data(0xBF21, STORE_TAG)
    client = GpClient(ours.transmit)
    client.select()
    public = sd_public_key(store)
    # the twin's certificate differs only in its (randomised) ECDSA signature
    assert public.public_numbers() == sd_public_key(client.certificate_store()).public_numbers()
    assert public.public_numbers() == scp11_key().public_key().public_numbers()
    session.authenticate(Scp11KeyParams(SCP11B_KEY, public))  # yubikit checks the receipt
    authenticate = next(x for x in link.traffic if x.command[1] == 0x88)
    assert authenticate.command[:4] == bytes.fromhex("80880113")  # INT. AUTH. KVN 01 KID 13
    client.open_scp11(Scp11Variant.B, public)
    assert session.get_data(0x00E0) == client.get_data(0x00E0)
    assert session.get_data(0x0066) == client.get_data(0x0066)


def test_scp11b_with_the_wrong_card_key_fails_yubikits_receipt_check() -> None:
    session, _ = _session(gp_card())
    impostor = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(Exception) as info:
        session.authenticate(Scp11KeyParams(SCP11B_KEY, impostor))
    assert type(info.value).__name__ == "InvalidSignature"


def test_scp11b_is_not_allowed_to_manage_keys() -> None:
    """SCP11b authenticates the card only; yubikit documents that such a session cannot do
    what needs OCE authentication. This card agrees: 6982 for PUT KEY and DELETE."""
    card = gp_card()
    session, _ = _session(card)
    session.authenticate(Scp11KeyParams(SCP11B_KEY, sd_public_key(
        session.get_data(0xBF21, STORE_TAG))))
    with pytest.raises(ApduError) as info:
        session.put_key(KeyRef(ScpKid.SCP03, 0x31), StaticKeys(NEW_ENC, NEW_MAC, NEW_DEK))
    assert info.value.sw == 0x6982
    _yubikit_scp03(card)  # the default key set is untouched


def test_certificate_bundle_is_gp_format_not_x509() -> None:
    """Deviation (docs/interop.md #3): yubikit parses the BF21 answer as bare X.509 DER
    certificates; Amendment F's certificate store holds GP certificates (7F21) in BF21."""
    session, _ = _session(gp_card())
    with pytest.raises(ValueError):
        session.get_certificate_bundle(SCP11B_KEY)
    store = tlv.parse_one(session.get_data(0xBF21, STORE_TAG))[0]
    assert store.tag == 0xBF21 and tlv.parse_one(store.value)[0].tag == 0x7F21


# --- what yubikit does that GP does not define ----------------------------------------------


def test_yubikey_only_operations() -> None:
    """GENERATE KEY (INS F1) is the YubiKey's own; CA identifiers (FF33/FF34) are absent."""
    session = _yubikit_scp03(gp_card())
    with pytest.raises(ApduError) as info:
        session.generate_ec_key(KeyRef(ScpKid.SCP11b, 0x05))
    assert info.value.sw == 0x6D00
    session = _yubikit_scp03(gp_card())
    assert session.get_supported_ca_identifiers() == {}  # 6A88, read by yubikit as none


def test_yubikit_extended_length_mode() -> None:
    """yubikit over USB sends every command as an extended-length APDU and MACs its
    three-byte Lc (docs/interop.md #6); the card MACs the Lc as it arrived."""
    card = gp_card()
    session, link = _session(card, TRANSPORT.USB)
    assert session.get_data(0x0042) == tlv.encode(0x42, bytes.fromhex("5348594452"))
    session.authenticate(Scp03KeyParams(ref=SCP03_TEST, keys=StaticKeys.default()))
    external_authenticate = next(x for x in link.traffic if x.command[1] == 0x82)
    assert external_authenticate.command[4] == 0x00  # extended Lc
    assert external_authenticate.sw == 0x9000
    assert _key_information(session.get_data(0x00E0))[(1, TEST_KVN)] == (0x88, 16)
    session.put_key(KeyRef(ScpKid.SCP03, 0x31), StaticKeys(NEW_ENC, NEW_MAC, NEW_DEK))
    session, _ = _session(card, TRANSPORT.USB)
    session.authenticate(Scp03KeyParams(KeyRef(ScpKid.SCP03, 0x31),
                                        StaticKeys(NEW_ENC, NEW_MAC, NEW_DEK)))
    session.delete_key(kvn=TEST_KVN)
    session, _ = _session(card, TRANSPORT.USB)
    session.authenticate(Scp11KeyParams(SCP11B_KEY, scp11_key().public_key()))
    assert set(_key_information(session.get_data(0x00E0))) == {
        (1, 0x31), (2, 0x31), (3, 0x31), (KeyId.SCP11B, 0x01)}


def test_a_failed_external_authenticate_goes_unnoticed_by_yubikit() -> None:
    """yubikit does not check EXTERNAL AUTHENTICATE's status word (docs/interop.md #7); the
    card refuses it and then every protected command, so nothing runs unauthenticated."""
    card = gp_card()
    session, link = _session(card)
    state_before = card.transmit  # a link that garbles the host cryptogram in transit

    def garble(apdu: bytes) -> bytes:
        if apdu[1:2] == b"\x82":
            apdu = apdu[:6] + bytes((apdu[6] ^ 1,)) + apdu[7:]
        return state_before(apdu)

    link.transmit = garble
    session.authenticate(Scp03KeyParams(ref=SCP03_TEST, keys=StaticKeys.default()))
    assert next(x for x in link.traffic if x.command[1] == 0x82).sw == 0x6300  # GP: auth failed
    with pytest.raises(ApduError) as info:
        session.get_data(0x00E0)
    assert info.value.sw == 0x6982


def test_isd_is_what_yubikit_selects() -> None:
    assert bytes.fromhex("A000000151000000") == ISD_AID
    card = gp_card()
    _, link = _session(card)
    assert link.traffic[0].command == bytes.fromhex("00A4040008A000000151000000")


def test_scp11a_with_an_x509_oce_certificate_is_refused() -> None:
    """yubikit's SCP11a/c send the OCE chain as X.509 (docs/interop.md #3); this card takes
    GP-format OCE certificates (Amendment F), so PERFORM SECURITY OPERATION fails and no
    session opens."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from smarthydra.card.gp.profile import IsdSetup, gp_profile, gp_test_keys

    sd, ca, oce = scp11_key(), private_key_from_scalar(b"\x2a" * 32), private_key_from_scalar(
        b"\x3b" * 32)
    card = gp_card(gp_profile(IsdSetup(keys=[
        *gp_test_keys(), SdKey.ec_private(0x01, KeyId.SCP11A, sd),
        SdKey.ec_public(0x01, KeyId.CA_KLOC, ca.public_key())])))
    start = datetime.datetime(2026, 1, 1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OCE")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA-KLOC")]))
        .public_key(oce.public_key()).serial_number(5)
        .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=365))
        .sign(ca, hashes.SHA256()))
    session, link = _session(card)
    with pytest.raises(ApduError):
        session.authenticate(Scp11KeyParams(KeyRef(ScpKid.SCP11a, 0x01), sd.public_key(),
                                            KeyRef(KeyId.CA_KLOC, 0x01), oce, [certificate]))
    assert any(x.command[1] == 0x2A and x.sw != 0x9000 for x in link.traffic)
    assert not any(x.command[1] == 0x82 for x in link.traffic)  # never got to authenticate
