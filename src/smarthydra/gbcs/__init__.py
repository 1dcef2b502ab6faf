"""GBCS: the Great Britain Companion Specification message layer.

- :mod:`smarthydra.gbcs.envelope`: general-ciphering / general-signing codec, MAC header,
  GBT blocks.
- :mod:`smarthydra.gbcs.security`: MAC keys, MACs, signatures, sensitive-payload encryption.
- :mod:`smarthydra.gbcs.builder`: commands, pre-commands, responses and alerts from parts.
- :mod:`smarthydra.gbcs.rtds`: the RTDS keystore and the conformance checker.
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
    "OtherInformation",
    "TransactionId",
    "build_alert",
    "build_command",
    "build_general_signing",
    "build_precommand",
    "build_response",
    "compute_mac",
    "decode_gbt_block",
    "decode_general_signing",
    "decode_message",
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
