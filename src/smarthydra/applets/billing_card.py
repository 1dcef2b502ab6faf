"""The tariff/billing applet as the hub's secure element runs it: a restricted load file.

This file is the published source of the supplier's billing applet. It travels to the hub
as a signed applet package (:func:`smarthydra.applets.hub.billing_package`) whose Load File
Data Block carries exactly these bytes: the card issuer authorises the load with a token,
the supplier approves it with its DAP signature, the card checks both, and its sandbox
(:mod:`smarthydra.card.sandbox`) runs the code restricted. The SHA-256 of this file is the
source hash the issuer certifies with the applet's key and every bill names, so anyone can
check that the bill came from this code.

It imports only the card API. What it needs of cryptography and encoding the card provides:
the CBOR codec (:class:`~smarthydra.card.applet.CBOR`), SHA-256 and ECDSA verification
(:class:`~smarthydra.card.keys.CardCrypto`), ECDSA signing, ECDH with the SP 800-56A
single-step KDF, and AES-GCM through key handles. It speaks the envelopes of
:mod:`smarthydra.applets.cose` (COSE_Sign1 ES256; ECDH-ES + KDF + A128GCM sealed to the
supplier) and prices exactly as :func:`smarthydra.applets.tariff.bill` (integer micropence,
rounded once, half up).

Install parameters: a CBOR map with ``sd`` (its security domain). Personalisation, by STORE
DATA through the supplier's SSD (each block a CBOR map merged into the settings): ``hub``,
``party``, ``party-ka``, ``party-sig``, ``meter``, ``meter-data``, ``audit``, ``source-sha256``.

Commands (CLA 80): ``02`` PUBLIC KEY; ``04`` APPEND; ``50``/``82`` the supplier's secure
channel (passed to the SD); over that channel only: ``20`` SET TARIFF (COSE_Sign1 by the
supplier of the tariff and ``seq``), ``22`` CLOSE PERIOD ``first day(4) || last day(4)`` ->
the bill statement sealed to the supplier, ``24`` TARIFF -> the tariff's id.
"""

from __future__ import annotations

from smarthydra.card.apdu import SW
from smarthydra.card.applet import (
    APDU,
    CBOR,
    Applet,
    ISOException,
    PersistentBytes,
    PersistentInt,
)
from smarthydra.card.firewall import Shareable
from smarthydra.card.keys import CardCrypto, KeyError_

INS_PUBLIC_KEY = 0x02
INS_APPEND = 0x04
INS_SET_TARIFF = 0x20
INS_CLOSE_PERIOD = 0x22
INS_TARIFF = 0x24
INS_INITIALIZE_UPDATE = 0x50
INS_EXTERNAL_AUTHENTICATE = 0x82
PARTY_COMMANDS = (INS_SET_TARIFF, INS_CLOSE_PERIOD, INS_TARIFF)
PARTY_LEVEL = 0xB3  # authenticated, C-MAC, C-DECRYPTION, R-MAC, R-ENCRYPTION
SECURE_CHANNEL = 1  # lookup_shareable parameter: the SD's secure channel
SLOTS = 48
KEEP_BILLS = 13
BILLS_BYTES = 8192
MAX_COMMAND = 4096
MAX_DAYS = 401
ES256 = -7
COSE_SIGN1 = 18
SEAL_ALGORITHM = "ECDH-ES+SP800-56A/A128GCM"
MICRO_PER_PENNY = 1000000
REQUIRED = ("hub", "party", "party-ka", "party-sig", "meter", "meter-data", "sd")
TEXT_SETTINGS = ("hub", "party", "meter")
BYTES_SETTINGS = ("party-ka", "party-sig", "meter-data", "audit", "sd", "source-sha256")
EPOCH_ORDINAL = 719163  # 1970-01-01 as a proleptic Gregorian ordinal


def wrong_data(message: str) -> ISOException:
    return ISOException(SW.WRONG_DATA, message)


def not_now(message: str) -> ISOException:
    return ISOException(SW.CONDITIONS_NOT_SATISFIED, message)


def u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset:offset + 4], "big")


def lv(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def pad(number: int, width: int) -> str:
    text = str(number)
    while len(text) < width:
        text = "0" + text
    return text


def iso_date(ordinal: int) -> str:
    """The ISO 8601 date of a proleptic Gregorian day ordinal (H. Hinnant's days-to-civil)."""
    z = ordinal - EPOCH_ORDINAL + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2)


def whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_tariff(payload: object) -> dict:  # type: ignore[type-arg]
    """A tariff checked as :class:`smarthydra.applets.tariff.Tariff` checks it, in its
    canonical form (band slots sorted)."""
    if not isinstance(payload, dict):
        raise wrong_data("a tariff is a map")
    for key in payload:
        if not isinstance(key, str):
            raise wrong_data("tariff fields are named by text")
    keys = list(payload.keys())
    keys.sort()
    if keys != ["bands", "blocks", "id", "standing", "version"]:
        raise wrong_data("tariff fields are id, version, standing, bands, blocks")
    bands, blocks = payload["bands"], payload["blocks"]
    if not (isinstance(payload["id"], str) and whole(payload["version"])
            and whole(payload["standing"]) and isinstance(bands, list)
            and isinstance(blocks, list)):
        raise wrong_data("malformed tariff")
    if (len(bands) > 0) == (len(blocks) > 0):
        raise wrong_data("a tariff is either time of use (bands) or block (blocks)")
    covered = [0] * SLOTS
    canonical_bands = []
    for band in bands:
        if not (isinstance(band, list) and len(band) == 3 and isinstance(band[0], str)
                and whole(band[1]) and isinstance(band[2], list)):
            raise wrong_data("a band is [name, price, slots]")
        slots = []
        for slot in band[2]:
            if not (whole(slot) and slot < SLOTS):
                raise wrong_data("a band's slots are half hours 0..47")
            covered[slot] = covered[slot] + 1
            slots.append(slot)
        slots.sort()
        canonical_bands.append([band[0], band[1], slots])
    if bands:
        for count in covered:
            if count != 1:
                raise wrong_data("time-of-use bands must cover each half hour exactly once")
    canonical_blocks = []
    previous = 0
    for index, block in enumerate(blocks):
        if not (isinstance(block, list) and len(block) == 2 and whole(block[1])):
            raise wrong_data("a block is [upto kWh or null, price]")
        upto = block[0]
        last = index == len(blocks) - 1
        if last != (upto is None):
            raise wrong_data("only the last block is open-ended")
        if upto is not None:
            if not whole(upto) or upto <= previous:
                raise wrong_data("block thresholds must increase")
            previous = upto
        canonical_blocks.append([upto, block[1]])
    return {"id": payload["id"], "version": payload["version"], "standing": payload["standing"],
            "bands": canonical_bands, "blocks": canonical_blocks}


def price(tariff: dict, days: list) -> int:  # type: ignore[type-arg]
    """The bill in micropence of consecutive days of 48 half-hourly imports (Wh)."""
    total = tariff["standing"] * 1000 * len(days)
    if tariff["bands"]:
        price_of = [0] * SLOTS
        for band in tariff["bands"]:
            for slot in band[2]:
                price_of[slot] = band[1]
        for day in days:
            if len(day) != SLOTS:
                raise wrong_data("a day has 48 half hours")
            for slot, wh in enumerate(day):
                total += wh * price_of[slot]
        return int(total)
    used = 0
    for day in days:
        if len(day) != SLOTS:
            raise wrong_data("a day has 48 half hours")
        for wh in day:
            remaining = wh
            for block in tariff["blocks"]:  # a half hour straddling a threshold is split
                upto = block[0]
                room = remaining if upto is None else min(remaining, upto * 1000 - used)
                if room > 0:
                    total += room * block[1]
                    used += room
                    remaining -= room
                if remaining == 0:
                    break
    return int(total)


def sig_structure(protected: bytes, body: bytes) -> bytes:
    return CBOR.encode(["Signature1", protected, b"", body])


def verify_sign1(data: bytes, public_xy: object) -> object:
    """The payload of a COSE_Sign1 (ES256) that verifies with ``public_xy``."""
    if not isinstance(public_xy, bytes):
        raise not_now("no party signing key was personalised")
    parts = CBOR.decode(data)
    if not (isinstance(parts, list) and len(parts) == 4):
        raise wrong_data("COSE_Sign1 is an array of 4")
    protected, unprotected, body, signature = parts
    if not (isinstance(protected, bytes) and isinstance(unprotected, dict)
            and isinstance(body, bytes) and isinstance(signature, bytes)):
        raise wrong_data("COSE_Sign1 fields have the wrong types")
    if CBOR.decode(protected) != {1: ES256}:
        raise wrong_data("only ES256 signed statements are accepted")
    if not CardCrypto.ecdsa_verify(public_xy, sig_structure(protected, body), signature):
        raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, "signature does not verify")
    return CBOR.decode(body)


class BillingRecords(Shareable):
    """The bills made, with their tariff: shared with the audit applet only."""

    interface = frozenset(["bill_record"])

    def __init__(self, owner: BillingApplet) -> None:
        self.owner = owner

    def bill_record(self, first: int, last: int) -> dict:  # type: ignore[type-arg]
        owner = self.owner
        if owner.card.previous_context_aid() != owner.settings().get("audit"):
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, "only the audit applet")
        for record in owner.records():
            if record["first"] == first and record["last"] == last:
                return dict(record)
        raise ISOException(SW.REFERENCED_DATA_NOT_FOUND, "no bill for that period")


class BillingApplet(Applet):
    """Prices the period's half hours under the supplier's tariff; one sealed figure out."""

    multiselectable = True  # the host reads its public key on its channel; the supplier's
    # session lives on the party channel
    settings_raw = PersistentBytes(max_size=2048)
    tariff_raw = PersistentBytes(max_size=2048)
    tariff_seq = PersistentInt(size=4)
    bills_raw = PersistentBytes(max_size=BILLS_BYTES)
    sealed_count = PersistentInt(size=4)

    def __init__(self) -> None:
        self.signing = self.card.ec_key("sign")
        self.ephemeral = self.card.ec_key("eph")
        self.seal_key = self.card.aes_key("seal")
        self.records_service = BillingRecords(self)
        self.cache: dict | None = None  # type: ignore[type-arg]
        self.segments = b""

    # --- settings -----------------------------------------------------------------------

    def install(self, params: bytes) -> None:
        settings = CBOR.decode(params) if params else {}
        if not isinstance(settings, dict):
            raise wrong_data("install parameters are a CBOR map")
        self.settings_raw = CBOR.encode(settings)
        self.signing.generate()

    def process_data(self, data: bytes) -> bytes:
        """Personalisation from the supplier's SSD: a CBOR map merged into the settings."""
        update = CBOR.decode(data)
        if not isinstance(update, dict):
            raise wrong_data("personalisation data is a CBOR map")
        if "party-ka" in update and not CardCrypto.is_p256_point(update["party-ka"]):
            raise wrong_data("party-ka is not a P-256 point")
        settings = self.settings()
        for key, value in update.items():
            if not isinstance(key, str):
                raise wrong_data("settings are named by text")
            if key in TEXT_SETTINGS and not isinstance(value, str):
                raise wrong_data(key + " is text")
            if key in BYTES_SETTINGS and not isinstance(value, bytes):
                raise wrong_data(key + " is a byte string")
            settings[key] = value
        self.settings_raw = CBOR.encode(settings)
        self.cache = None
        return b""

    def settings(self) -> dict:  # type: ignore[type-arg]
        if self.cache is None:
            value = CBOR.decode(self.settings_raw) if self.settings_raw else {}
            self.cache = value if isinstance(value, dict) else {}
        return self.cache

    def records(self) -> list:  # type: ignore[type-arg]
        return CBOR.decode(self.bills_raw) if self.bills_raw else []

    def tariff(self) -> dict:  # type: ignore[type-arg]
        if not self.tariff_raw:
            raise not_now("no tariff yet")
        return CBOR.decode(self.tariff_raw)  # type: ignore[no-any-return]

    def get_shareable(self, client_aid: bytes | None, parameter: int) -> Shareable | None:
        audit = self.settings().get("audit")
        if client_aid is not None and client_aid == audit:
            return self.records_service
        return None

    # --- the supplier's secure channel ----------------------------------------------------

    def secure_channel(self) -> Shareable | None:
        sd = self.settings().get("sd")
        if not isinstance(sd, bytes):
            return None
        return self.card.lookup_shareable(sd, SECURE_CHANNEL)

    def security_level(self) -> int:
        channel = self.secure_channel()
        return channel.security_level() if channel is not None else 0

    def select(self) -> bool:
        self.segments = b""
        channel = self.secure_channel()
        if channel is not None:
            channel.reset_security()
        return True

    def deselect(self) -> None:
        self.segments = b""

    # --- envelopes ------------------------------------------------------------------------

    def sign_statement(self, payload: dict) -> bytes:  # type: ignore[type-arg]
        body = CBOR.encode(payload)
        protected = CBOR.encode({1: ES256})
        signature = self.signing.sign(sig_structure(protected, body))
        return CBOR.encode([protected, {4: self.aid}, body, signature], COSE_SIGN1)

    def seal(self, payload: dict) -> bytes:  # type: ignore[type-arg]
        """Sign ``payload`` and seal it to the supplier: ECDH-ES, SP 800-56A KDF, AES-GCM."""
        settings = self.settings()
        statement = self.sign_statement(payload)
        sender = settings["hub"] + "/billing"
        recipient = settings["party"]
        try:
            epk = self.ephemeral.generate()
            protected = CBOR.encode({"alg": SEAL_ALGORITHM, "epk": epk, "from": sender,
                                     "to": recipient})
            info = lv(b"A128GCM") + lv(sender.encode()) + lv(recipient.encode()) + lv(epk)
            self.ephemeral.agree_aes(settings["party-ka"], info, self.seal_key)
            iv = self.card.random(12)
            body = self.seal_key.gcm_encrypt(iv, statement, protected)
        finally:
            self.ephemeral.clear()
            self.seal_key.clear()
        self.sealed_count = (self.sealed_count + 1) % 4294967296
        return CBOR.encode([protected, iv, body])

    # --- commands ---------------------------------------------------------------------------

    def set_tariff(self, data: bytes) -> None:
        payload = verify_sign1(data, self.settings().get("party-sig"))
        if not isinstance(payload, dict) or not whole(payload.get("seq")):
            raise wrong_data("a tariff message is a tariff with seq")
        if payload["seq"] <= self.tariff_seq:
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, "replayed tariff")
        body = {}
        for key, value in payload.items():
            if key != "seq":
                body[key] = value
        tariff = parse_tariff(body)
        self.card.begin_transaction()
        self.tariff_raw = CBOR.encode(tariff)
        self.tariff_seq = payload["seq"]
        self.card.commit_transaction()

    def close_period(self, data: bytes) -> bytes:
        if len(data) != 8:
            raise ISOException(SW.WRONG_LENGTH, "a day range is 8 bytes")
        first, last = u32(data, 0), u32(data, 4)
        if first <= 0 or first > last or last - first >= MAX_DAYS:
            raise wrong_data("a day range is 1..401 days")
        settings = self.settings()
        for key in REQUIRED:
            if key not in settings:
                raise not_now("not personalised: no " + key)
        tariff = self.tariff()
        meter_data = self.card.lookup_shareable(settings["meter-data"], 0)
        if meter_data is None:
            raise not_now("the meter-data applet refused")
        days = meter_data.half_hours(first, last)
        amount = (price(tariff, days) + MICRO_PER_PENNY // 2) // MICRO_PER_PENNY
        statement = {
            "type": "bill", "hub": settings["hub"], "meter": settings["meter"],
            "period": [iso_date(first), iso_date(last)],
            "tariff": tariff["id"], "tariff-version": tariff["version"],
            "tariff-sha256": CardCrypto.sha256(CBOR.encode(tariff)), "amount-pence": amount,
            "currency": "GBP", "applet": self.aid,
            "source-sha256": settings.get("source-sha256", b""),
        }
        records = []
        for record in self.records():
            if not (record["first"] == first and record["last"] == last):
                records.append(record)
        records.append({"first": first, "last": last, "tariff": tariff, "amount": amount})
        records = records[-KEEP_BILLS:]
        encoded = CBOR.encode(records)
        while len(encoded) > BILLS_BYTES:  # keep the newest bills that fit
            records = records[1:]
            encoded = CBOR.encode(records)
        self.bills_raw = encoded
        return self.seal(statement)

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        if not apdu.cla & 0x80:
            raise ISOException(SW.CLA_NOT_SUPPORTED)
        ins = apdu.ins
        if ins in (INS_INITIALIZE_UPDATE, INS_EXTERNAL_AUTHENTICATE):
            self.segments = b""
            channel = self.secure_channel()
            if channel is None:
                raise not_now("no security domain channel")
            return channel.process_security(  # type: ignore[no-any-return]
                apdu.cla, ins, apdu.p1, apdu.p2, apdu.data)
        if ins == INS_PUBLIC_KEY:
            return self.signing.public_key()
        if ins in PARTY_COMMANDS and self.security_level() & PARTY_LEVEL != PARTY_LEVEL:
            self.segments = b""
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED,
                               "this command comes from the supplier over its secure channel")
        if ins == INS_APPEND:
            if len(self.segments) + len(apdu.data) > MAX_COMMAND:
                self.segments = b""
                raise ISOException(SW.WRONG_LENGTH, "a command carries at most 4096 bytes")
            self.segments = self.segments + apdu.data
            return None
        data = self.segments + apdu.data
        self.segments = b""
        try:
            if ins == INS_SET_TARIFF:
                self.set_tariff(data)
                return None
            if ins == INS_CLOSE_PERIOD:
                return self.close_period(data)
            if ins == INS_TARIFF:
                return self.tariff()["id"].encode()  # type: ignore[no-any-return]
        except KeyError_:
            raise wrong_data("a key operation failed") from None
        raise ISOException(SW.INS_NOT_SUPPORTED)
