"""GBCS use cases end to end: decode any message into its use case and typed parameters, and
build any use case's command, response or alert from them.

Usage::

    from smarthydra.gbcs.usecase import (
        MessageKeys, UseCaseParams, build_command, build_response, decode_command,
        decode_use_case_message, keystore_signer,
    )

    # Decode: use case, header fields and the typed payload (xDLMS APDU, GBZ payload, DER tree)
    command = decode_command(wire)
    command.use_case_code, command.message_code, command.counter, command.params.payload

    # Build a non-critical command (MAC'd by the Access Control Broker with Z = ACB KA x device KA)
    wire = build_command(
        "ECS17b", UseCaseParams(payload=access_request),
        originator=supplier_eui, recipient=esme_eui, counter=counter,
        keys=MessageKeys(mac_z=acb_z),
    )

    # Critical: the same call with a signer (the supplier's DS key) gives the signed, MAC'd
    # command; build_precommand gives the unsigned pre-command the DCC returns for signing.
    wire = build_command("ECS43", params, originator=..., recipient=..., counter=...,
                         keys=MessageKeys(mac_z=acb_z,
                                          signer=keystore_signer(keystore, "supplier-ds")))

    # Device side: a response (same counter as the command, MAC'd with Z = device KA x
    # recipient KA); sensitive values are given as plaintext and encrypted into the payload's
    # protected slots (xDLMS protected attributes, encrypted GBZ components) in order.
    wire = build_response("ECS17b", UseCaseParams(payload=response, sensitive=(plain,)),
                          device=esme_eui, recipient=supplier_eui, counter=counter,
                          keys=MessageKeys(mac_z=z, encryption_z=z))
    # smarthydra.gbcs.responses.data_protection_response(request, device=..., recipient=...,
    # plaintexts=[...]) makes those params from the command's access-request; alerts come
    # from smarthydra.gbcs.alerts (dlms_alert / gbz_alert / der_alert) and build_alert.

Parameters are :class:`UseCaseParams`: the typed payload plus the GBCS header fields a use case
may need (header date-time, supplementary remote party id / counters / key-agreement
certificate) and the plaintext sensitive values. They convert to and from JSON
(:meth:`UseCaseParams.to_json` / :meth:`UseCaseParams.from_json`), which is what
``smarthydra gbcs build --params`` reads and ``smarthydra gbcs parse --json`` prints.

Keys are given as inputs (:class:`MessageKeys`): Z values from
``Keystore.derive_shared_secret`` (or :func:`rtds_keys` for the RTDS test keys), and a
signer callable, so this module does no key storage and no I/O (the one exception: naming a
use case by its code without passing a catalogue loads :meth:`Catalogue.default`).

Everything here is checked against the RTDS: rebuilding every COMMAND file from the
parameters decoded out of it gives the same bytes (critical ones: the signature verifies).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import Keystore
from smarthydra.gbcs import security
from smarthydra.gbcs.axdr import Data, decode_data_exact
from smarthydra.gbcs.builder import build_general_signing, mac_message_z
from smarthydra.gbcs.catalogue import Catalogue, Category, UseCase
from smarthydra.gbcs.der import DerNode, decode_der, is_der
from smarthydra.gbcs.envelope import (
    DATE_TIME_SIZE,
    SEGMENTED_TAGS,
    SYSTEM_TITLE_SIZE,
    CraFlag,
    GbcsMessage,
    GeneralSigning,
    OtherInformation,
    decode_general_signing,
    decode_message,
    decode_segmented,
)
from smarthydra.gbcs.errors import BadField, GbcsEncodeError
from smarthydra.gbcs.gbz import (
    EncryptedZcl,
    GbzPayload,
    ZclBody,
    decode_gbz,
    decode_zcl_body,
    is_gbz,
)
from smarthydra.gbcs.gbz_clusters import ClusterCommand, decode_cluster_command
from smarthydra.gbcs.payload_json import (
    ParamsError,
    Payload,
    encode_payload,
    payload_from_json,
    payload_to_json,
)
from smarthydra.gbcs.rtds import KeyKind, RtdsKeystore, mac_secret
from smarthydra.gbcs.sensitive import XDLMS_TAGS, protected_blocks, replace_protected_blocks
from smarthydra.gbcs.xdlms import AccessRequest, AccessResponse, DataNotification, decode_xdlms

_SEGMENTED = {bytes([tag]) for tag in SEGMENTED_TAGS}

Signer = Callable[[bytes], bytes]
"""Signs the GBCS signed data (general-signing without ``DF``, through the payload): r || s."""

UseCaseRef = str | int | UseCase
"""A use case: its code (``"ECS17b"``), its 2-byte message code, or a catalogue entry."""


class UseCaseError(GbcsEncodeError):
    """The use case, its parameters and the keys given do not fit together."""


class UnknownUseCase(UseCaseError):
    """The use case code or message code is not in the catalogue."""


# --- Parameters and decoded messages ----------------------------------------------------------


@dataclass(frozen=True)
class UseCaseParams:
    """What a use case's message carries besides addressing, counter and keys.

    ``payload`` is the typed payload (:class:`~smarthydra.gbcs.xdlms.AccessRequest` /
    ``AccessResponse`` / ``DataNotification``, :class:`~smarthydra.gbcs.gbz.GbzPayload`, or
    :class:`~smarthydra.gbcs.der.DerNode`). ``date_time`` is the 12-byte COSEM date-time of the
    GBCS header (responses to future-dated commands carry one). The ``supplementary_*`` fields
    go into other-information (CS08, CCS01, ECS21b KRP/URP, ...). ``sensitive`` holds the
    plaintext of each protected slot, in payload order; when given, the builder encrypts them
    into the payload (the ciphertext already in ``payload`` is then ignored).
    """

    payload: Payload
    date_time: bytes | None = None
    supplementary_remote_party_id: bytes | None = None
    supplementary_remote_party_counter: int | None = None
    supplementary_originator_counter: int | None = None
    supplementary_remote_party_ka_certificate: bytes | None = None
    sensitive: tuple[bytes, ...] = ()

    def other_information(self, message_code: int) -> OtherInformation:
        return OtherInformation(
            message_code,
            self.supplementary_remote_party_id,
            self.supplementary_remote_party_counter,
            self.supplementary_originator_counter,
            self.supplementary_remote_party_ka_certificate,
        )

    def to_json(self) -> dict[str, object]:
        """JSON form (see :mod:`smarthydra.gbcs.payload_json`); ``from_json`` reads it back."""
        out: dict[str, object] = {"payload": payload_to_json(self.payload)}
        if self.date_time is not None:
            out["date_time"] = self.date_time.hex()
        if self.supplementary_remote_party_id is not None:
            out["supplementary_remote_party_id"] = self.supplementary_remote_party_id.hex()
        if self.supplementary_remote_party_counter is not None:
            out["supplementary_remote_party_counter"] = self.supplementary_remote_party_counter
        if self.supplementary_originator_counter is not None:
            out["supplementary_originator_counter"] = self.supplementary_originator_counter
        if self.supplementary_remote_party_ka_certificate is not None:
            out["supplementary_remote_party_ka_certificate"] = (
                self.supplementary_remote_party_ka_certificate.hex()
            )
        if self.sensitive:
            out["sensitive"] = [s.hex() for s in self.sensitive]
        return out

    @classmethod
    def from_json(cls, value: object, *, counter: int | None = None) -> UseCaseParams:
        """Parse the JSON form; raises :class:`ParamsError` naming the bad field.

        ``counter`` lets an xDLMS ``invoke_id`` be ``"auto"`` (or omitted).
        """
        if not isinstance(value, Mapping):
            raise ParamsError("params: expected a JSON object with a 'payload'")
        known = {
            "payload",
            "date_time",
            "supplementary_remote_party_id",
            "supplementary_remote_party_counter",
            "supplementary_originator_counter",
            "supplementary_remote_party_ka_certificate",
            "sensitive",
        }
        unknown = sorted(set(value) - known)
        if unknown:
            raise ParamsError(f"params: unknown field(s) {unknown}; known: {sorted(known)}")
        if "payload" not in value:
            raise ParamsError("params: missing 'payload'")
        sensitive = value.get("sensitive", [])
        if not isinstance(sensitive, list):
            raise ParamsError("params.sensitive: expected a list of hex strings")
        return cls(
            payload=payload_from_json(value["payload"], "params.payload", counter),
            date_time=_opt_hex(value, "date_time", DATE_TIME_SIZE),
            supplementary_remote_party_id=_opt_hex(
                value, "supplementary_remote_party_id", SYSTEM_TITLE_SIZE
            ),
            supplementary_remote_party_counter=_opt_counter(
                value, "supplementary_remote_party_counter"
            ),
            supplementary_originator_counter=_opt_counter(
                value, "supplementary_originator_counter"
            ),
            supplementary_remote_party_ka_certificate=_opt_hex(
                value, "supplementary_remote_party_ka_certificate", None
            ),
            sensitive=tuple(
                _hex_item(s, f"params.sensitive[{i}]") for i, s in enumerate(sensitive)
            ),
        )


def _hex_item(value: object, path: str) -> bytes:
    if not isinstance(value, str):
        raise ParamsError(f"{path}: expected a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ParamsError(f"{path}: {value!r} is not hex") from None


def _opt_hex(obj: Mapping[str, Any], key: str, size: int | None) -> bytes | None:
    value = obj.get(key)
    if value is None:
        return None
    raw = _hex_item(value, f"params.{key}")
    if size is not None and len(raw) != size:
        raise ParamsError(f"params.{key}: expected {size} bytes, got {len(raw)}")
    return raw


def _opt_counter(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise ParamsError(f"params.{key}: expected an integer counter (8 bytes)")
    return value


@dataclass(frozen=True)
class UseCaseMessage:
    """A decoded GBCS message: use case, header fields, typed parameters and security fields.

    ``use_case`` is the catalogue entry when the message code names a catalogued use case
    (alerts such as 8F66 future-dated execution have a message code but no use case).
    ``signature`` is ``None`` when the signature field is absent (an RTDS pre-command),
    ``b""`` when unsigned. ``mac`` is ``None`` for a message that is not MAC'd.
    """

    cra_flag: CraFlag
    message_code: int
    use_case: UseCase | None
    originator: bytes
    recipient: bytes
    counter: int
    params: UseCaseParams
    signature: bytes | None
    mac: bytes | None
    message: GbcsMessage = field(repr=False)

    @property
    def use_case_code(self) -> str | None:
        return None if self.use_case is None else self.use_case.code

    @property
    def payload(self) -> Payload:
        return self.params.payload

    @property
    def date_time(self) -> bytes | None:
        return self.params.date_time

    @property
    def is_signed(self) -> bool:
        return bool(self.signature)

    @property
    def is_precommand(self) -> bool:
        return self.cra_flag is CraFlag.COMMAND and self.mac is None and not self.signature

    @property
    def from_date_times(self) -> tuple[int, ...]:
        """GBZ future-dated execution times (UTC seconds since 2000) of the components."""
        payload = self.params.payload
        if not isinstance(payload, GbzPayload):
            return ()
        return tuple(c.from_date_time for c in payload.components if c.from_date_time is not None)

    def sensitive_values(self) -> list[Data | ZclBody | ClusterCommand]:
        """The decrypted sensitive values decoded: A-XDR Data (xDLMS); for GBZ the typed
        cluster command where :mod:`~smarthydra.gbcs.gbz_clusters` knows it, else the ZCL
        body (profile-wide commands typed, other cluster commands as bytes)."""
        payload = self.params.payload
        if isinstance(payload, GbzPayload):
            encrypted = [c for c in payload.components if isinstance(c.body, EncryptedZcl)]
            values: list[Data | ZclBody | ClusterCommand] = []
            for component, plain in zip(encrypted, self.params.sensitive, strict=False):
                header = component.zcl
                typed = decode_cluster_command(
                    component.cluster_id, header.frame_control, header.command_id, plain
                )
                values.append(
                    typed
                    if typed is not None
                    else decode_zcl_body(header.frame_control, header.command_id, plain)
                )
            return values
        return [decode_data_exact(plain) for plain in self.params.sensitive]

    def to_json(self) -> dict[str, object]:
        return {
            "cra_flag": self.cra_flag.name.lower(),
            "message_code": f"{self.message_code:04X}",
            "use_case": self.use_case_code,
            "originator": self.originator.hex().upper(),
            "recipient": self.recipient.hex().upper(),
            "counter": self.counter,
            "signature": None if self.signature is None else self.signature.hex(),
            "mac": None if self.mac is None else self.mac.hex(),
            "params": self.params.to_json(),
        }


UseCaseCommand = UseCaseMessage
"""A decoded command (CRA flag 1): see :func:`decode_command`."""


# --- Payload codec selection ---------------------------------------------------------------


def decode_payload(payload: bytes, cra_flag: CraFlag) -> Payload:
    """Decode a payload with its codec: xDLMS (D9/DA/0F), GBZ (01 09) or DER.

    Raises a :class:`~smarthydra.gbcs.errors.GbcsDecodeError` subclass for a payload none of
    the codecs accepts.
    """
    if payload and payload[0] in XDLMS_TAGS:
        return decode_xdlms(payload)
    if is_gbz(payload):
        return decode_gbz(payload, alert=cra_flag is CraFlag.ALERT)
    if is_der(payload):
        return decode_der(payload)
    raise BadField(f"payload starting 0x{payload[:1].hex() or '(empty)'} is not xDLMS, GBZ or DER")


# --- Decoding -------------------------------------------------------------------------------


def _lookup(catalogue: Catalogue | None, message_code: int) -> UseCase | None:
    return None if catalogue is None else catalogue.for_message_code(message_code)


def _from_general_signing(
    gs: GeneralSigning,
    message: GbcsMessage,
    catalogue: Catalogue | None,
    encryption_z: bytes | None,
) -> UseCaseMessage:
    payload = decode_payload(gs.payload, gs.cra_flag)
    sensitive: tuple[bytes, ...] = ()
    if encryption_z is not None:
        blocks = protected_blocks(payload)
        if blocks:
            key = security.message_encryption_key(encryption_z, gs)
            sensitive = tuple(
                security.decrypt_payload(key, gs.originator, block) for block in blocks
            )
    other = gs.other_information
    params = UseCaseParams(
        payload=payload,
        date_time=gs.date_time,
        supplementary_remote_party_id=other.supplementary_remote_party_id,
        supplementary_remote_party_counter=other.supplementary_remote_party_counter,
        supplementary_originator_counter=other.supplementary_originator_counter,
        supplementary_remote_party_ka_certificate=other.supplementary_remote_party_ka_certificate,
        sensitive=sensitive,
    )
    return UseCaseMessage(
        cra_flag=gs.cra_flag,
        message_code=gs.message_code,
        use_case=_lookup(catalogue, gs.message_code),
        originator=gs.originator,
        recipient=gs.recipient,
        counter=gs.originator_counter,
        params=params,
        signature=gs.signature,
        mac=message.mac,
        message=message,
    )


def decode_use_case_message(
    data: bytes,
    *,
    catalogue: Catalogue | None = None,
    encryption_z: bytes | None = None,
) -> UseCaseMessage:
    """Decode any GBCS message (command, pre-command, response, alert) with its payload.

    With ``catalogue`` the use case is looked up from the message code. With ``encryption_z``
    (Z between the originator's and the party's key-agreement keys) sensitive blocks are
    decrypted into ``params.sensitive`` (raises
    :class:`~smarthydra.gbcs.errors.DecryptionFailed` if one does not authenticate).
    A stream of general-block-transfer blocks (a segmented message) is reassembled first.
    Does not check the MAC or signature: see :func:`verify_message`.
    """
    data = bytes(data)
    message = decode_segmented(data) if data[:1] in _SEGMENTED else decode_message(data)
    return _from_general_signing(message.general_signing, message, catalogue, encryption_z)


def decode_command(data: bytes, *, catalogue: Catalogue | None = None) -> UseCaseCommand:
    """Decode a command or pre-command (CRA flag 1) into its use case and typed parameters."""
    decoded = decode_use_case_message(data, catalogue=catalogue)
    if decoded.cra_flag is not CraFlag.COMMAND:
        raise BadField(f"CRA flag is {decoded.cra_flag.name.lower()}, not command")
    return decoded


def verify_message(
    decoded: UseCaseMessage | GbcsMessage,
    *,
    mac_z: bytes | None = None,
    signer_public_key: ec.EllipticCurvePublicKey | None = None,
) -> bool:
    """Check the MAC (with Z) and the signature (with the originator's DS key) given.

    False if a check given fails, or if a check is asked for and the message lacks the MAC
    or signature.
    """
    message = decoded.message if isinstance(decoded, UseCaseMessage) else decoded
    if mac_z is not None:
        if message.mac is None:
            return False
        if not security.verify_mac(security.message_mac_key(mac_z, message), message):
            return False
    if signer_public_key is not None:
        if not message.general_signing.signature:
            return False
        return security.verify_signature(message, signer_public_key)
    return True


# --- Keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageKeys:
    """The secrets one message needs.

    ``mac_z``: Z for the MAC (commands: ACB KA x device KA; responses and alerts: device KA x
    recipient KA); ``None`` gives a message that is not MAC'd (pre-commands, signed-only).
    ``signer``: signs critical messages. ``encryption_z``: Z for sensitive payloads (device
    KA x the party's KA); defaults to ``mac_z``.
    """

    mac_z: bytes | None = None
    signer: Signer | None = None
    encryption_z: bytes | None = None


def keystore_signer(keystore: Keystore, label: str) -> Signer:
    """A signer using a key held in a :class:`~smarthydra.crypto.keystore.Keystore`."""

    def sign(data: bytes) -> bytes:
        return keystore.sign(label, data)

    return sign


def private_key_signer(private_key: ec.EllipticCurvePrivateKey) -> Signer:
    """A signer from a raw private key (tests, the RTDS)."""

    def sign(data: bytes) -> bytes:
        return primitives.ecdsa_sign(private_key, data)

    return sign


def rtds_keys(
    keystore: RtdsKeystore,
    *,
    cra_flag: CraFlag,
    originator: bytes,
    recipient: bytes,
    sign: bool = False,
    encryption_party: bytes | None = None,
) -> MessageKeys:
    """The :class:`MessageKeys` for a message between RTDS parties, from the test keystore.

    MAC: ACB x device for a remote party's command, originator x recipient otherwise. The
    signer is the originator's DS private key (``sign``); raises :class:`UseCaseError` when a
    key needed is not published.
    """
    shell = GbcsMessage(
        build_general_signing(
            cra_flag=cra_flag,
            originator=originator,
            recipient=recipient,
            counter=0,
            message_code=0,
            payload=b"",
        )
    )
    mac_z = mac_secret(keystore, shell)
    signer = None
    if sign:
        party = keystore.parties.get(originator)
        if party is None or KeyKind.DS not in party.private:
            raise UseCaseError(f"no published DS private key for {originator.hex().upper()}")
        signer = private_key_signer(party.private[KeyKind.DS])
    encryption_z = None
    if encryption_party is not None:
        encryption_z = keystore.shared_secret(originator, encryption_party)
    return MessageKeys(mac_z=mac_z, signer=signer, encryption_z=encryption_z)


# --- Building -------------------------------------------------------------------------------


def resolve_use_case(
    use_case: UseCaseRef,
    *,
    catalogue: Catalogue | None = None,
    message_code: int | None = None,
) -> tuple[UseCase | None, int]:
    """(catalogue entry or None, message code) for a use case reference.

    A code string needs the catalogue (``catalogue``, else :meth:`Catalogue.default`, which
    reads the conformance folder). A message code needs none: with a catalogue its use case
    is looked up and checked, without one the caller vouches for it. A use case with several
    message codes (CS02b) needs ``message_code``.
    """
    if isinstance(use_case, int) and not isinstance(use_case, bool):
        code = use_case if message_code is None else message_code
        if not 0 <= code <= 0xFFFF:
            raise UnknownUseCase(f"message code {code:#x} is not 2 bytes")
        # A bare message code needs no catalogue (and reads no files): without one, the
        # category checks are the caller's.
        return _lookup(catalogue, code), code
    if isinstance(use_case, UseCase):
        entry = use_case
    elif isinstance(use_case, bool):
        raise UnknownUseCase("a use case is a code string, a message code or a UseCase")
    else:
        cat = catalogue or Catalogue.default()
        found = cat.use_case(use_case)
        if found is None:
            raise UnknownUseCase(f"no use case {use_case!r} in the catalogue")
        entry = found
    if message_code is not None:
        if entry.message_codes and message_code not in entry.message_codes:
            codes = ", ".join(f"{c:04X}" for c in entry.message_codes)
            raise UseCaseError(f"{entry.code} uses message code(s) {codes}, not {message_code:04X}")
        return entry, message_code
    if len(entry.message_codes) == 1:
        return entry, entry.message_codes[0]
    if not entry.message_codes:
        raise UnknownUseCase(
            f"{entry.code} has no message code in the catalogue; give message_code"
        )
    codes = ", ".join(f"{c:04X}" for c in entry.message_codes)
    raise UseCaseError(f"{entry.code} has several message codes ({codes}); give message_code")


_COMMAND_PAYLOADS = (AccessRequest, GbzPayload, DerNode)
_RESPONSE_PAYLOADS = (AccessResponse, GbzPayload, DerNode)
_ALERT_PAYLOADS = (DataNotification, GbzPayload, DerNode)


def _payload_bytes(
    params: UseCaseParams,
    cra_flag: CraFlag,
    keys: MessageKeys,
    originator: bytes,
    counter: int,
    recipient: bytes,
) -> bytes:
    payload = params.payload
    allowed = {
        CraFlag.COMMAND: _COMMAND_PAYLOADS,
        CraFlag.RESPONSE: _RESPONSE_PAYLOADS,
        CraFlag.ALERT: _ALERT_PAYLOADS,
    }[cra_flag]
    if not isinstance(payload, allowed):
        raise UseCaseError(
            f"a {cra_flag.name.lower()} cannot carry a {type(payload).__name__} payload"
        )
    if isinstance(payload, GbzPayload) and (payload.alert is not None) != (
        cra_flag is CraFlag.ALERT
    ):
        raise UseCaseError("a GBZ alert header belongs in alerts only (and alerts need one)")
    if params.sensitive:
        z = keys.encryption_z if keys.encryption_z is not None else keys.mac_z
        if z is None:
            raise UseCaseError("sensitive values need keys.encryption_z (or mac_z)")
        other = params.other_information(0)
        enc_counter = (
            other.supplementary_originator_counter
            if other.supplementary_originator_counter is not None
            else counter
        )
        party = other.supplementary_remote_party_id or recipient
        key = security.encryption_key(z, originator, enc_counter, party)
        blocks = [security.encrypt_payload(key, originator, p) for p in params.sensitive]
        payload = replace_protected_blocks(payload, blocks)
    return encode_payload(payload)


def _assemble(
    *,
    cra_flag: CraFlag,
    message_code: int,
    params: UseCaseParams,
    originator: bytes,
    recipient: bytes,
    counter: int,
    keys: MessageKeys,
    signature: bytes | None,
    signature_field: bool = True,
) -> GbcsMessage:
    payload = _payload_bytes(params, cra_flag, keys, originator, counter, recipient)
    gs = build_general_signing(
        cra_flag=cra_flag,
        originator=originator,
        recipient=recipient,
        counter=counter,
        message_code=message_code,
        payload=payload,
        date_time=params.date_time,
        other_information=params.other_information(message_code),
        signature=b"" if signature_field else None,
    )
    if signature is not None:
        if len(signature) != 64:
            raise UseCaseError(f"a GBCS signature is 64 bytes (r || s), got {len(signature)}")
        gs = gs.with_signature(signature)
    elif keys.signer is not None:
        made = keys.signer(gs.signed_data())
        if len(made) != 64:
            raise UseCaseError(f"the signer returned {len(made)} bytes, not r || s (64)")
        gs = gs.with_signature(made)
    if keys.mac_z is None:
        return GbcsMessage(gs, raw=gs.wire())
    return mac_message_z(gs, keys.mac_z)


def _check_category(entry: UseCase | None, wanted: CraFlag) -> None:
    if entry is None:
        return
    alerts = (Category.CRITICAL_ALERT, Category.NON_CRITICAL_ALERT)
    if wanted is CraFlag.ALERT and entry.category not in (*alerts, Category.OTHER):
        raise UseCaseError(f"{entry.code} is a {entry.category.value}, not an alert")
    if wanted is not CraFlag.ALERT and entry.category in alerts:
        raise UseCaseError(f"{entry.code} is a {entry.category.value}; use build_alert")


def build_command(
    use_case: UseCaseRef,
    params: UseCaseParams,
    *,
    originator: bytes,
    recipient: bytes,
    counter: int,
    keys: MessageKeys,
    signature: bytes | None = None,
    catalogue: Catalogue | None = None,
    message_code: int | None = None,
) -> bytes:
    """A use case's command, as the device receives it.

    Non-critical: unsigned (signature length 00), MAC'd with ``keys.mac_z``. Critical:
    signed with ``keys.signer`` (or carrying ``signature``, e.g. from a signed pre-command),
    then MAC'd. ``keys.mac_z=None`` leaves it un-MAC'd (the signed-only CS02 commands).
    Raises :class:`UseCaseError` when the keys do not fit the use case (a critical command
    with no signer, a signer for a non-critical one) and a ``GbcsEncodeError`` for bad params.
    """
    entry, code = resolve_use_case(use_case, catalogue=catalogue, message_code=message_code)
    _check_category(entry, CraFlag.COMMAND)
    signing = signature is not None or keys.signer is not None
    if entry is not None and entry.category is Category.CRITICAL_COMMAND and not signing:
        raise UseCaseError(f"{entry.code} is critical: give keys.signer or signature")
    if entry is not None and entry.category is Category.NON_CRITICAL_COMMAND and signing:
        raise UseCaseError(f"{entry.code} is non-critical: commands are not signed")
    message = _assemble(
        cra_flag=CraFlag.COMMAND,
        message_code=code,
        params=params,
        originator=originator,
        recipient=recipient,
        counter=counter,
        keys=keys,
        signature=signature,
    )
    return message.wire()


def build_precommand(
    use_case: UseCaseRef,
    params: UseCaseParams,
    *,
    originator: bytes,
    recipient: bytes,
    counter: int,
    catalogue: Catalogue | None = None,
    message_code: int | None = None,
    signature_field: bool = False,
) -> bytes:
    """The pre-command of a use case: the general-signing APDU before signing.

    By default it ends at the payload, as the RTDS pre-command files do; with
    ``signature_field`` it ends with signature length ``00`` (the GBCS form).
    Sign it with :func:`smarthydra.gbcs.builder.sign_precommand`.
    """
    entry, code = resolve_use_case(use_case, catalogue=catalogue, message_code=message_code)
    _check_category(entry, CraFlag.COMMAND)
    message = _assemble(
        cra_flag=CraFlag.COMMAND,
        message_code=code,
        params=params,
        originator=originator,
        recipient=recipient,
        counter=counter,
        keys=MessageKeys(),
        signature=None,
        signature_field=signature_field,
    )
    return message.wire()


def _build_from_device(
    cra_flag: CraFlag,
    use_case: UseCaseRef,
    params: UseCaseParams,
    *,
    device: bytes,
    recipient: bytes,
    counter: int,
    keys: MessageKeys,
    signature: bytes | None,
    catalogue: Catalogue | None,
    message_code: int | None,
) -> bytes:
    """A message a device originates (a response or an alert): checked against the use
    case's category, then assembled and protected as ``keys`` say."""
    entry, code = resolve_use_case(use_case, catalogue=catalogue, message_code=message_code)
    _check_category(entry, cra_flag)
    return _assemble(
        cra_flag=cra_flag,
        message_code=code,
        params=params,
        originator=device,
        recipient=recipient,
        counter=counter,
        keys=keys,
        signature=signature,
    ).wire()


def build_response(
    use_case: UseCaseRef,
    params: UseCaseParams,
    *,
    device: bytes,
    recipient: bytes,
    counter: int,
    keys: MessageKeys,
    signature: bytes | None = None,
    catalogue: Catalogue | None = None,
    message_code: int | None = None,
) -> bytes:
    """A device's response to a use case's command (CRA 2; the command's counter).

    MAC'd with ``keys.mac_z`` (device KA x recipient KA) when given; signed with
    ``keys.signer`` (the device's DS key) when given, as the responses to critical commands
    are in the RTDS (signed, not MAC'd). ``params.sensitive`` plaintexts are encrypted into
    the protected slots with ``keys.encryption_z``.
    """
    return _build_from_device(
        CraFlag.RESPONSE, use_case, params, device=device, recipient=recipient, counter=counter,
        keys=keys, signature=signature, catalogue=catalogue, message_code=message_code)


def build_alert(
    alert: UseCaseRef,
    params: UseCaseParams,
    *,
    device: bytes,
    recipient: bytes,
    counter: int,
    keys: MessageKeys,
    signature: bytes | None = None,
    catalogue: Catalogue | None = None,
    message_code: int | None = None,
) -> bytes:
    """A device alert (CRA 3) from device data: ``alert`` is the alert's message code
    (e.g. ``0x00CC`` future-dated execution, ``0x1000`` generic critical alert) or an alert
    use case (``"ECS68"``). The device alert code and its data live in the payload (a GBZ
    alert header, or the xDLMS data-notification body). MAC'd and/or signed as ``keys`` say.
    """
    return _build_from_device(
        CraFlag.ALERT, alert, params, device=device, recipient=recipient, counter=counter,
        keys=keys, signature=signature, catalogue=catalogue, message_code=message_code)


def rebuild(
    decoded: UseCaseMessage,
    keys: MessageKeys,
    *,
    catalogue: Catalogue | None = None,
    keep_signature: bool = False,
) -> bytes:
    """Build ``decoded`` again from its own parameters (conformance and round-trip checks).

    Pre-commands come back as pre-commands; with ``keep_signature`` the decoded signature is
    reused (byte-identical output), else ``keys.signer`` signs afresh.
    """
    signature = decoded.signature if keep_signature and decoded.signature else None
    code = decoded.message_code
    if decoded.is_precommand:
        return build_precommand(
            code,
            decoded.params,
            originator=decoded.originator,
            recipient=decoded.recipient,
            counter=decoded.counter,
            catalogue=catalogue,
            signature_field=decoded.signature is not None,
        )
    message = _assemble(
        cra_flag=decoded.cra_flag,
        message_code=code,
        params=decoded.params,
        originator=decoded.originator,
        recipient=decoded.recipient,
        counter=decoded.counter,
        keys=keys,
        signature=signature,
    )
    return message.wire()


def precommand_from_command(data: bytes) -> GeneralSigning:
    """The general-signing part of a command, unsigned (what the signer signed)."""
    gs = decode_message(data).general_signing
    return decode_general_signing(replace(gs, signature=b"", raw=b"").encode())


__all__ = [
    "MessageKeys",
    "ParamsError",
    "Signer",
    "UnknownUseCase",
    "UseCaseCommand",
    "UseCaseError",
    "UseCaseMessage",
    "UseCaseParams",
    "UseCaseRef",
    "build_alert",
    "build_command",
    "build_precommand",
    "build_response",
    "decode_command",
    "decode_payload",
    "decode_use_case_message",
    "keystore_signer",
    "private_key_signer",
    "rebuild",
    "resolve_use_case",
    "rtds_keys",
    "verify_message",
]
