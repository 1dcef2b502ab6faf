"""The Access Control Broker: the only party able to make a command acceptable to a device.

It adds the per-device, per-message MAC (GBCS general-ciphering) with a key derived from
ECDH between its own key-agreement key and the target device's. Because each device's key
differs, a MAC for one device is useless for every other, and a party that bypasses the DCC
cannot produce one at all.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto.keystore import Keystore
from smarthydra.eui import Eui64
from smarthydra.gbcs.builder import mac_message_z
from smarthydra.gbcs.envelope import CraFlag, GeneralSigning
from smarthydra.gbcs.errors import GbcsEncodeError


class AccessControlBroker:
    def __init__(self, eui: Eui64, keystore: Keystore, label: str = "acb-ka") -> None:
        self.eui = eui
        self._keystore = keystore
        self._label = label
        self.commands_macd = 0

    @property
    def key_agreement_key(self) -> ec.EllipticCurvePublicKey:
        return self._keystore.public_key(self._label)

    def mac_command(
        self, general_signing: GeneralSigning, device_key_agreement_key: ec.EllipticCurvePublicKey
    ) -> bytes:
        """Wrap a command in general-ciphering with the device-specific MAC."""
        if general_signing.cra_flag is not CraFlag.COMMAND:
            raise GbcsEncodeError("the ACB MACs commands only")
        z = self._keystore.derive_shared_secret(self._label, device_key_agreement_key)
        self.commands_macd += 1
        return mac_message_z(general_signing, z).wire()
