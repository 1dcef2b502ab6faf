"""SMKI certificate profile constants, as carried by the published GB test certificates.

Every value here was read off the certificates in ``shared/conformance/smki`` and
``shared/conformance/gbcs/rtds-keystore`` (the conformance tests re-check them).
"""

from __future__ import annotations

import enum

# Certificate policies (critical). Organisation certificates in the DCC test SMKI carry the
# first; the RTDS device certificates carry the second.
ORGANISATION_POLICY_OID = "1.2.826.0.1.8641679.1.2.1.4"
DEVICE_POLICY_OID = "1.2.826.0.1.1800000.1.2.1.4"

# RFC 4108 hardwareModuleName other-name, and the hwType the RTDS device certificates use.
HARDWARE_MODULE_NAME_OID = "1.3.6.1.5.5.7.8.4"
DEVICE_HW_TYPE_OID = "1.2.826.0.1.8641679.1.2.2.1"

# x500UniqueIdentifier: an organisation's EUI-64 as a BIT STRING.
UNIQUE_IDENTIFIER_OID = "2.5.4.45"

EUI64_SIZE = 8
SERIAL_SIZE = 16  # every test certificate has a 16-byte serial
KEY_IDENTIFIER_SIZE = 8  # RFC 7093 / RFC 5280 method 2 key identifiers, 64 bits


class SmkiRole(enum.IntEnum):
    """Organisation role codes carried as the subject OU (two upper-case hex digits)."""

    RECOVERY = 0x01
    SUPPLIER = 0x02
    NETWORK_OPERATOR = 0x03
    ACCESS_CONTROL_BROKER = 0x04
    TRANSITIONAL_COS = 0x05
    WAN_PROVIDER = 0x06
    ISSUING_AUTHORITY = 0x07
    LOAD_CONTROLLER = 0x08
    OTHER_USER = 0x7F
    XML_SIGNING_USER = 0x87
    XML_SIGNING_DCC = 0x89


def role_code(role: int) -> str:
    """The OU form of a role: two upper-case hex digits."""
    if not 0 <= role <= 0xFF:
        raise ValueError(f"an SMKI role code is one byte, got {role}")
    return f"{role:02X}"


def role_name(role: int) -> str:
    try:
        return SmkiRole(role).name.lower()
    except ValueError:
        return f"role-{role:02X}"
