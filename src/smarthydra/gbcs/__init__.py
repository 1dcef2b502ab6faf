"""GBCS: the Great Britain Companion Specification message layer.

- :mod:`smarthydra.gbcs.envelope`: general-ciphering / general-signing codec, MAC header,
  GBT blocks.
- :mod:`smarthydra.gbcs.security`: MAC keys, MACs, signatures, sensitive-payload encryption.
- :mod:`smarthydra.gbcs.builder`: commands, pre-commands, responses and alerts from parts.
- :mod:`smarthydra.gbcs.rtds`: the RTDS keystore and the conformance checker.
- :mod:`smarthydra.gbcs.usecase`: any use case's command / response / alert decoded into and
  built from typed parameters (:class:`UseCaseParams`), with MAC, signature and encryption.
- :mod:`smarthydra.gbcs.catalogue`: use cases, message codes, alert codes, roles, replay rules.
- :mod:`smarthydra.gbcs.alerts`: device alerts (code, time, data) in xDLMS, GBZ and DER.
- :mod:`smarthydra.gbcs.responses`: a device's xDLMS responses (incl. sensitive ones) to a
  command.
- :mod:`smarthydra.gbcs.replay`: receiving as a device (MAC first, signature, anti-replay).
- :mod:`smarthydra.gbcs.gbz_clusters`: typed ZCL cluster commands (metering, prepayment).
- :mod:`smarthydra.gbcs.payload_json`: typed payloads to JSON and back (``gbcs build``).
"""

from smarthydra.gbcs.builder import (
    build_alert,
    build_command,
    build_general_signing,
    build_precommand,
    build_response,
    mac_command,
    mac_message,
    mac_message_z,
    sign_message,
    sign_precommand,
)
from smarthydra.gbcs.envelope import (
    CraFlag,
    GbcsMessage,
    GbtBlock,
    GeneralSigning,
    MacHeader,
    OtherInformation,
    TransactionId,
    decode_gbt_block,
    decode_general_signing,
    decode_message,
    parse_mac_header,
)
from smarthydra.gbcs.errors import (
    GbcsDecodeError,
    GbcsEncodeError,
    GbcsError,
    GbcsSecurityError,
)
from smarthydra.gbcs.security import (
    compute_mac,
    decrypt_payload,
    encrypt_payload,
    encryption_key,
    mac_key,
    message_encryption_key,
    message_mac_key,
    signed_data,
    verify_mac,
    verify_signature,
)
from smarthydra.gbcs.usecase import (
    MessageKeys,
    UseCaseCommand,
    UseCaseError,
    UseCaseMessage,
    UseCaseParams,
    decode_command,
    decode_use_case_message,
)

__all__ = [
    "CraFlag",
    "GbcsDecodeError",
    "GbcsEncodeError",
    "GbcsError",
    "GbcsMessage",
    "GbcsSecurityError",
    "GbtBlock",
    "GeneralSigning",
    "MacHeader",
    "MessageKeys",
    "OtherInformation",
    "TransactionId",
    "UseCaseCommand",
    "UseCaseError",
    "UseCaseMessage",
    "UseCaseParams",
    "build_alert",
    "build_command",
    "build_general_signing",
    "build_precommand",
    "build_response",
    "compute_mac",
    "decode_command",
    "decode_gbt_block",
    "decode_general_signing",
    "decode_message",
    "decode_use_case_message",
    "decrypt_payload",
    "encrypt_payload",
    "encryption_key",
    "mac_command",
    "mac_key",
    "mac_message",
    "mac_message_z",
    "message_encryption_key",
    "message_mac_key",
    "parse_mac_header",
    "sign_message",
    "sign_precommand",
    "signed_data",
    "verify_mac",
    "verify_signature",
]
