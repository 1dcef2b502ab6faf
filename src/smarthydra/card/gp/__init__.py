"""GlobalPlatform secure channel cryptography, sans-I/O: SCP03, SCP11a/b/c, SCP02 (host).

Pure functions and small state machines over bytes; transports, storage and randomness are the
caller's. See :mod:`smarthydra.card.gp.scp03`, :mod:`smarthydra.card.gp.scp11`,
:mod:`smarthydra.card.gp.sm` and :func:`smarthydra.card.gp.conformance.replay_vectors`.

Card content management lives in modules imported on their own (they need the card runtime):
:mod:`~smarthydra.card.gp.sd` (security domains as on-card applets),
:mod:`~smarthydra.card.gp.management` and :mod:`~smarthydra.card.gp.keystore` (the data both
ends compute), :mod:`~smarthydra.card.gp.client` (the host library, one-way scripts) and
:mod:`~smarthydra.card.gp.profile` (card images with an issuer security domain).
"""

from smarthydra.card.gp.apdu import CommandApdu, ResponseApdu
from smarthydra.card.gp.certificates import (
    Scp11Certificate,
    build_gp_certificate,
    parse_certificate_store,
    parse_certificates,
)
from smarthydra.card.gp.conformance import ConformanceReport, replay_vectors
from smarthydra.card.gp.errors import (
    AuthenticationFailed,
    ConditionsNotSatisfied,
    ConfigurationError,
    GpError,
    IncorrectParameters,
    IncorrectSecureMessagingData,
    MalformedApdu,
    ReferencedDataNotFound,
    SecurityStatusNotSatisfied,
    WrongData,
)
from smarthydra.card.gp.kdf import kcv_aes, kdf_counter_cmac, scp03_kdf
from smarthydra.card.gp.scp02 import Scp02HostSession, Scp02StaticKeys
from smarthydra.card.gp.scp03 import (
    InitializeUpdateResponse,
    Scp03CardConfig,
    Scp03CardSession,
    Scp03HostSession,
    Scp03StaticKeys,
    derive_session_keys,
    precompute_scp03_script,
    pseudo_random_card_challenge,
)
from smarthydra.card.gp.scp11 import (
    Scp11CardConfig,
    Scp11CardSession,
    Scp11HostSession,
    Scp11Script,
    Scp11Variant,
    precompute_scp11c_script,
)
from smarthydra.card.gp.sm import (
    C_DECRYPTION,
    C_MAC,
    R_ENCRYPTION,
    R_MAC,
    SecureMessaging,
    SessionKeys,
)

__all__ = [
    "C_DECRYPTION",
    "C_MAC",
    "R_ENCRYPTION",
    "R_MAC",
    "AuthenticationFailed",
    "CommandApdu",
    "ConditionsNotSatisfied",
    "ConfigurationError",
    "ConformanceReport",
    "GpError",
    "IncorrectParameters",
    "IncorrectSecureMessagingData",
    "InitializeUpdateResponse",
    "MalformedApdu",
    "ReferencedDataNotFound",
    "ResponseApdu",
    "Scp02HostSession",
    "Scp02StaticKeys",
    "Scp03CardConfig",
    "Scp03CardSession",
    "Scp03HostSession",
    "Scp03StaticKeys",
    "Scp11CardConfig",
    "Scp11CardSession",
    "Scp11Certificate",
    "Scp11HostSession",
    "Scp11Script",
    "Scp11Variant",
    "SecureMessaging",
    "SecurityStatusNotSatisfied",
    "SessionKeys",
    "WrongData",
    "build_gp_certificate",
    "derive_session_keys",
    "kcv_aes",
    "kdf_counter_cmac",
    "parse_certificate_store",
    "parse_certificates",
    "precompute_scp03_script",
    "precompute_scp11c_script",
    "pseudo_random_card_challenge",
    "replay_vectors",
    "scp03_kdf",
]
