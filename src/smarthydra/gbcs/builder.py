"""Building GBCS commands, pre-commands, responses and alerts from their parts.

The usual flows, with Z from ``Keystore.derive_shared_secret(label, peer_ka_public)``:

Non-critical command (e.g. 4.1.1 ECS17b Read Instantaneous Import Registers, code 0x0027),
the supplier's request MAC'd by the DCC Access Control Broker::

    z = acb_keystore.derive_shared_secret("acb-ka", device_ka_public)
    message = build_command(
        originator=supplier_eui, recipient=esme_eui, counter=counter,
        message_code=0x0027, payload=xdlms_payload, acb_z=z,
    )
    wire = message.encode()

Critical command (e.g. 7.2 ECS43 Disable Supply, code 0x0050): the DCC builds the pre-command,
the supplier signs it, the ACB MACs the signed command::

    pre = build_precommand(originator=supplier_eui, recipient=esme_eui, counter=counter,
                           message_code=0x0050, payload=xdlms_payload)
    pre_wire = pre.encode()                    # general-signing, signature length 00
    signed = sign_precommand(pre_wire, keystore=supplier_keystore, label="supplier-ds")
    command = mac_command(signed, acb_z=z)     # general-ciphering with the ACB MAC

Device side: check the MAC first (:func:`smarthydra.gbcs.envelope.parse_mac_header` then
:func:`smarthydra.gbcs.security.verify_mac`), then decode, then verify the signature if the
use case is critical. Reply with :func:`build_response` (same counter as the command, MAC'd
by the device with Z = device KA x recipient KA) or raise an alert with :func:`build_alert`.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto.keystore import Keystore
from smarthydra.gbcs import security
from smarthydra.gbcs.envelope import (
    SECURITY_CONTROL_MAC,
    CraFlag,
    GbcsMessage,
    GeneralSigning,
    OtherInformation,
    TransactionId,
    decode_general_signing,
)
from smarthydra.gbcs.errors import GbcsEncodeError


def build_general_signing(
    *,
    cra_flag: CraFlag,
    originator: bytes,
    recipient: bytes,
    counter: int,
    message_code: int,
    payload: bytes,
    date_time: bytes | None = None,
    other_information: OtherInformation | None = None,
    signature: bytes | None = b"",
) -> GeneralSigning:
    """A general-signing APDU from its fields, checked by encoding it once."""
    other = other_information or OtherInformation(message_code)
    if other.message_code != message_code:
        raise GbcsEncodeError("message_code and other_information.message_code differ")
    gs = GeneralSigning(
        TransactionId(CraFlag(cra_flag), counter),
        bytes(originator),
        bytes(recipient),
        date_time,
        other,
        bytes(payload),
        signature,
    )
    return decode_general_signing(gs.encode())


def mac_message(general_signing: GeneralSigning, mac_key: bytes) -> GbcsMessage:
    """Wrap a general-signing APDU in general-ciphering with the MAC under ``mac_key``."""
    wire = general_signing.wire()
    mac = security.compute_mac(mac_key, general_signing.originator, wire, SECURITY_CONTROL_MAC)
    unframed = GbcsMessage(general_signing, mac=mac)
    return GbcsMessage(general_signing, mac=mac, raw=unframed.wire())


def mac_message_z(general_signing: GeneralSigning, z: bytes) -> GbcsMessage:
    """:func:`mac_message` with the key derived from Z and the APDU's own header fields."""
    return mac_message(general_signing, security.message_mac_key(z, general_signing))


def build_command(
    *,
    originator: bytes,
    recipient: bytes,
    counter: int,
    message_code: int,
    payload: bytes,
    acb_z: bytes,
    date_time: bytes | None = None,
    other_information: OtherInformation | None = None,
) -> GbcsMessage:
    """A non-critical command: unsigned (signature length 00), MAC'd by the ACB."""
    gs = build_general_signing(
        cra_flag=CraFlag.COMMAND,
        originator=originator,
        recipient=recipient,
        counter=counter,
        message_code=message_code,
        payload=payload,
        date_time=date_time,
        other_information=other_information,
    )
    return mac_message_z(gs, acb_z)


def build_precommand(
    *,
    originator: bytes,
    recipient: bytes,
    counter: int,
    message_code: int,
    payload: bytes,
    date_time: bytes | None = None,
    other_information: OtherInformation | None = None,
    signature_field: bool = True,
) -> GeneralSigning:
    """A pre-command: the general-signing APDU before signing.

    With ``signature_field`` it ends with signature length ``00`` (GBCS); without, it ends at
    the payload, which is the form the RTDS pre-command files use.
    """
    return build_general_signing(
        cra_flag=CraFlag.COMMAND,
        originator=originator,
        recipient=recipient,
        counter=counter,
        message_code=message_code,
        payload=payload,
        date_time=date_time,
        other_information=other_information,
        signature=b"" if signature_field else None,
    )


def sign_precommand(
    precommand: GeneralSigning | bytes,
    *,
    keystore: Keystore | None = None,
    label: str | None = None,
    private_key: ec.EllipticCurvePrivateKey | None = None,
) -> GeneralSigning:
    """Sign a pre-command (object or wire bytes): returns the signed general-signing APDU."""
    gs = (
        precommand if isinstance(precommand, GeneralSigning) else decode_general_signing(precommand)
    )
    if gs.cra_flag is not CraFlag.COMMAND:
        raise GbcsEncodeError("only a command is signed from a pre-command")
    if gs.is_signed:
        raise GbcsEncodeError("this pre-command is already signed")
    signature = security.sign(gs, keystore=keystore, label=label, private_key=private_key)
    return gs.with_signature(signature)


def mac_command(signed: GeneralSigning, *, acb_z: bytes) -> GbcsMessage:
    """The ACB's step for a critical command: MAC the signed general-signing APDU."""
    if signed.cra_flag is not CraFlag.COMMAND:
        raise GbcsEncodeError("mac_command takes a command")
    return mac_message_z(signed, acb_z)


def build_response(
    *,
    device: bytes,
    recipient: bytes,
    counter: int,
    message_code: int,
    payload: bytes,
    z: bytes,
    date_time: bytes | None = None,
    other_information: OtherInformation | None = None,
) -> GbcsMessage:
    """A device's response (CRA 2), carrying the command's counter, MAC'd with Z."""
    gs = build_general_signing(
        cra_flag=CraFlag.RESPONSE,
        originator=device,
        recipient=recipient,
        counter=counter,
        message_code=message_code,
        payload=payload,
        date_time=date_time,
        other_information=other_information,
    )
    return mac_message_z(gs, z)


def build_alert(
    *,
    device: bytes,
    recipient: bytes,
    counter: int,
    message_code: int,
    payload: bytes,
    z: bytes,
    date_time: bytes | None = None,
) -> GbcsMessage:
    """A device alert (CRA 3), MAC'd with Z = device KA x recipient KA."""
    gs = build_general_signing(
        cra_flag=CraFlag.ALERT,
        originator=device,
        recipient=recipient,
        counter=counter,
        message_code=message_code,
        payload=payload,
        date_time=date_time,
    )
    return mac_message_z(gs, z)


def sign_message(
    general_signing: GeneralSigning,
    *,
    keystore: Keystore | None = None,
    label: str | None = None,
    private_key: ec.EllipticCurvePrivateKey | None = None,
) -> GbcsMessage:
    """A signed-only message (``DF ...`` with ``40 || r || s``), as some device alerts are."""
    signature = security.sign(
        general_signing, keystore=keystore, label=label, private_key=private_key
    )
    signed = general_signing.with_signature(signature)
    return GbcsMessage(signed, raw=signed.wire())
