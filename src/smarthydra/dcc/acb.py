"""The Access Control Broker: the only party able to make a command acceptable to a device.

It adds the per-device, per-message MAC (GBCS general-ciphering) with a key derived from
ECDH between its own key-agreement key and the target device's. Because each device's key
differs, a MAC for one device is useless for every other, and a party that bypasses the DCC
cannot produce one at all.

The static-static ECDH secret Z of each device is the same for every command to it (the
per-message key is derived from Z and the message's own header), so Z is cached per device
key: one key agreement per device, not per command. The cache lives only in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto.keystore import Keystore
from smarthydra.eui import Eui64
from smarthydra.gbcs.builder import mac_message_z
from smarthydra.gbcs.envelope import CraFlag, GeneralSigning
from smarthydra.gbcs.errors import GbcsEncodeError

DEFAULT_SECRET_CACHE = 100_000  # devices; 32 bytes of Z (plus the key point) each


class AccessControlBroker:
    def __init__(
        self,
        eui: Eui64,
        keystore: Keystore,
        label: str = "acb-ka",
        *,
        secret_cache_size: int = DEFAULT_SECRET_CACHE,
    ) -> None:
        self.eui = eui
        self._keystore = keystore
        self._label = label
        self.commands_macd = 0
        self.key_agreements = 0
        self._secret_cache_size = secret_cache_size
        # device key (uncompressed point) -> Z; least recently used first
        self._secrets: OrderedDict[bytes, bytes] = OrderedDict()
        self._secrets_lock = threading.Lock()

    @property
    def key_agreement_key(self) -> ec.EllipticCurvePublicKey:
        return self._keystore.public_key(self._label)

    def shared_secret(self, device_key_agreement_key: ec.EllipticCurvePublicKey) -> bytes:
        """Z with the device, from the cache or by one ECDH in the keystore."""
        point = device_key_agreement_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        with self._secrets_lock:
            z = self._secrets.get(point)
            if z is not None:
                self._secrets.move_to_end(point)
                return z
        z = self._keystore.derive_shared_secret(self._label, device_key_agreement_key)
        with self._secrets_lock:
            self.key_agreements += 1
            if self._secret_cache_size > 0:
                self._secrets[point] = z
                while len(self._secrets) > self._secret_cache_size:
                    self._secrets.popitem(last=False)
        return z

    def forget_secrets(self) -> None:
        """Drop every cached Z (after the ACB's own key-agreement key is replaced)."""
        with self._secrets_lock:
            self._secrets.clear()

    def mac_command(
        self, general_signing: GeneralSigning, device_key_agreement_key: ec.EllipticCurvePublicKey
    ) -> bytes:
        """Wrap a command in general-ciphering with the device-specific MAC."""
        if general_signing.cra_flag is not CraFlag.COMMAND:
            raise GbcsEncodeError("the ACB MACs commands only")
        z = self.shared_secret(device_key_agreement_key)
        self.commands_macd += 1
        return mac_message_z(general_signing, z).wire()
