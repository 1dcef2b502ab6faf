"""A GlobalPlatform client: the off-card entity's side of card content management.

Two layers:

* command builders (pure functions returning APDU bytes): INSTALL in all its forms, LOAD
  blocks, DELETE, GET STATUS, SET STATUS, PUT KEY, STORE DATA, GET DATA; with optional
  delegated-management tokens. They are what :func:`one_way_scp03_script` and
  :func:`one_way_scp11c_script` protect ahead of time, so a script can travel
  store-and-forward to a card that answers nobody;
* :class:`GpClient` over any ``transmit(bytes) -> bytes`` (an in-process card, a card
  process, a PC/SC reader): select, open SCP03 or SCP11, then the management operations,
  with GET RESPONSE and GET STATUS paging handled and status words turned into
  :class:`GpCommandError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.card.apdu import ClassByte
from smarthydra.card.gp import management as gpm
from smarthydra.card.gp import tlv
from smarthydra.card.gp.apdu import CommandApdu, ResponseApdu
from smarthydra.card.gp.certificates import parse_certificate_store
from smarthydra.card.gp.keystore import SdKey, encode_put_key
from smarthydra.card.gp.management import ISD_AID, InstallP1
from smarthydra.card.gp.scp03 import (
    Scp03HostSession,
    Scp03StaticKeys,
    precompute_scp03_script,
)
from smarthydra.card.gp.scp11 import (
    Scp11HostSession,
    Scp11Script,
    Scp11Variant,
    precompute_scp11c_script,
)

Transmit = Callable[[bytes], bytes]
TokenSigner = Callable[[bytes], bytes]  # token data -> signature
LOAD_BLOCK = 200  # LOAD block size: a wrapped block (MAC, padding) must stay a short APDU


class GpCommandError(Exception):
    """The card refused a command; ``sw`` is its status word."""

    def __init__(self, what: str, sw: int) -> None:
        super().__init__(f"{what} refused with SW {sw:04X}")
        self.what = what
        self.sw = sw


# --- command builders -------------------------------------------------------------------


def _apdu(ins: int, p1: int, p2: int, data: bytes = b"", le: bool = True) -> bytes:
    return CommandApdu(0x80, ins, p1, p2, data, 0x00 if le else None).to_bytes()


def select_command(aid: bytes = ISD_AID) -> bytes:
    return CommandApdu(0x00, 0xA4, 0x04, 0x00, aid, 0x00).to_bytes()


def _install(p1: int, data: gpm.InstallData, signer: TokenSigner | None) -> bytes:
    if signer is not None:
        token = signer(gpm.token_data(p1, 0x00, data.fields_for(p1)))
        data = gpm.InstallData(data.field1, data.field2, data.field3, data.field4,
                               data.field5, token)
    return _apdu(gpm.INS_INSTALL, p1, 0x00, data.encode(p1))


def install_for_load_command(load_file_aid: bytes, *, sd_aid: bytes = b"",
                             block_hash: bytes = b"", load_parameters: bytes = b"",
                             token_signer: TokenSigner | None = None) -> bytes:
    return _install(InstallP1.LOAD, gpm.InstallData(load_file_aid, sd_aid, block_hash,
                                                    load_parameters), token_signer)


def load_commands(load_file: bytes | gpm.LoadFile, block_size: int = LOAD_BLOCK) -> list[bytes]:
    """LOAD blocks for ``load_file`` (the E2 DAP blocks and C4 LFDB, or those bytes)."""
    data = load_file.encode() if isinstance(load_file, gpm.LoadFile) else bytes(load_file)
    blocks = [data[i:i + block_size] for i in range(0, len(data), block_size)] or [b""]
    if len(blocks) > 256:
        raise ValueError("a load file is at most 256 LOAD blocks; use larger blocks")
    return [_apdu(gpm.INS_LOAD, 0x80 if n == len(blocks) - 1 else 0x00, n, block)
            for n, block in enumerate(blocks)]


def install_command(load_file_aid: bytes, module_aid: bytes, app_aid: bytes, *,
                    privileges: bytes = b"\x00", params: bytes = b"",
                    make_selectable: bool = True,
                    token_signer: TokenSigner | None = None) -> bytes:
    p1 = InstallP1.INSTALL_AND_MAKE_SELECTABLE if make_selectable else InstallP1.INSTALL
    return _install(p1, gpm.InstallData(load_file_aid, module_aid, app_aid, privileges,
                                        tlv.encode(0xC9, params)), token_signer)


def make_selectable_command(app_aid: bytes, privileges: bytes = b"",
                            token_signer: TokenSigner | None = None) -> bytes:
    return _install(InstallP1.MAKE_SELECTABLE, gpm.InstallData(b"", b"", app_aid, privileges),
                    token_signer)


def extradition_command(sd_aid: bytes, aid: bytes,
                        token_signer: TokenSigner | None = None) -> bytes:
    return _install(InstallP1.EXTRADITION, gpm.InstallData(sd_aid, b"", aid), token_signer)


def registry_update_command(app_aid: bytes, *, sd_aid: bytes = b"", privileges: bytes = b"",
                            token_signer: TokenSigner | None = None) -> bytes:
    return _install(InstallP1.REGISTRY_UPDATE,
                    gpm.InstallData(sd_aid, b"", app_aid, privileges), token_signer)


def install_for_personalization_command(app_aid: bytes) -> bytes:
    return _apdu(gpm.INS_INSTALL, InstallP1.PERSONALIZATION, 0x00,
                 gpm.lv(b"") + gpm.lv(b"") + gpm.lv(app_aid) + gpm.lv(b"") * 3)


def delete_command(aid: bytes, *, related: bool = False,
                   token_signer: TokenSigner | None = None) -> bytes:
    data = gpm.DeleteData(aid=aid)
    p2 = 0x80 if related else 0x00
    if token_signer is not None:
        data = gpm.DeleteData(aid=aid, token=token_signer(gpm.token_data(0x00, p2,
                                                                         data.fields())))
    return _apdu(gpm.INS_DELETE, 0x00, p2, data.encode())


def delete_key_command(key_version: int | None = None, key_id: int | None = None) -> bytes:
    return _apdu(gpm.INS_DELETE, 0x00, 0x00,
                 gpm.DeleteData(key_id=key_id, key_version=key_version).encode())


def get_status_command(p1: int, aid_prefix: bytes = b"", *, next_page: bool = False) -> bytes:
    return _apdu(gpm.INS_GET_STATUS, p1, 0x02 | (0x01 if next_page else 0x00),
                 tlv.encode(0x4F, aid_prefix))


def set_status_command(p1: int, state: int, aid: bytes = b"") -> bytes:
    return _apdu(gpm.INS_SET_STATUS, p1, state, aid, le=False)


def put_key_command(keys: Sequence[SdKey], dek: bytes, *, replace_kvn: int = 0) -> bytes:
    if not keys:
        raise ValueError("PUT KEY needs keys")
    p2 = keys[0].kid | (0x80 if len(keys) > 1 else 0x00)
    return _apdu(gpm.INS_PUT_KEY, replace_kvn, p2, encode_put_key(keys[0].kvn, keys, dek))


def store_data_commands(data: bytes, *, structure: int = 0x08, block_size: int = 200
                        ) -> list[bytes]:
    """STORE DATA blocks; ``structure`` 08 = DGI, 10 = BER-TLV, 00 = no information."""
    blocks = [data[i:i + block_size] for i in range(0, len(data), block_size)] or [b""]
    return [_apdu(gpm.INS_STORE_DATA, structure | (0x80 if n == len(blocks) - 1 else 0), n,
                  block) for n, block in enumerate(blocks)]


def get_data_command(tag: int, data: bytes = b"") -> bytes:
    return _apdu(gpm.INS_GET_DATA, tag >> 8, tag & 0xFF, data)


# --- one-way scripts --------------------------------------------------------------------


def one_way_scp03_script(keys: Scp03StaticKeys, *, sd_aid: bytes, sequence_counter: int,
                         commands: Sequence[bytes], security_level: int = 0x33,
                         host_challenge: bytes | None = None, s_mode: int = 8) -> list[bytes]:
    """SELECT + a precomputed SCP03 session (pseudo-random card challenge) over ``commands``.

    ``sequence_counter`` is the card's current counter (GET DATA C1); the card will use the
    next value, which is what makes its challenge, and so the whole session, predictable.
    """
    challenge = host_challenge if host_challenge is not None else os.urandom(s_mode)
    return [select_command(sd_aid), *precompute_scp03_script(
        keys, aid=sd_aid, sequence_counter=sequence_counter + 1, commands=commands,
        security_level=security_level, host_challenge=challenge, s_mode=s_mode)]


def one_way_scp11c_script(*, sd_aid: bytes, sd_public_key: ec.EllipticCurvePublicKey,
                          oce_private_key: ec.EllipticCurvePrivateKey,
                          oce_certificates: Sequence[bytes], commands: Sequence[bytes],
                          kvn: int, ephemeral_key: ec.EllipticCurvePrivateKey | None = None
                          ) -> tuple[list[bytes], Scp11Script]:
    """SELECT + PSO + MUTUAL AUTHENTICATE (SCP11c) + ``commands``, computed without the card."""
    script = precompute_scp11c_script(
        sd_public_key=sd_public_key, oce_private_key=oce_private_key,
        oce_certificates=oce_certificates, commands=commands, kvn=kvn,
        ephemeral_key=ephemeral_key)
    return [select_command(sd_aid), *script.apdus], script


# --- the client -------------------------------------------------------------------------


@dataclass(frozen=True)
class Confirmation:
    """What a delegated operation answered: the receipt data, if any."""

    raw: bytes

    @property
    def parsed(self) -> gpm.Confirmation | None:
        return gpm.Confirmation.parse(self.raw)


class GpClient:
    """Card content management over ``transmit`` (plain until a secure channel is opened).

    ``channel``: the logical channel (0..19, opened beforehand with MANAGE CHANNEL) every
    command goes to; the builders make channel-0 commands and the client re-codes their CLA.
    """

    def __init__(self, transmit: Transmit, channel: int = 0) -> None:
        if not 0 <= channel <= 19:
            raise ValueError("logical channels are 0..19")
        self._transmit = transmit
        self.channel = channel
        self.session: Scp03HostSession | Scp11HostSession | None = None

    # --- raw exchange ---------------------------------------------------------------

    def _on_channel(self, command: bytes) -> bytes:
        if self.channel == 0 or len(command) < 4:
            return command
        return bytes((ClassByte.with_channel(command[0], self.channel),)) + command[1:]

    def _exchange(self, command: bytes) -> bytes:
        response = self._transmit(command)
        data = b""
        while len(response) >= 2 and response[-2] == 0x61:
            data += response[:-2]
            get_response = bytes((ClassByte.with_channel(0x00, self.channel), 0xC0, 0, 0,
                                  response[-1]))
            response = self._transmit(get_response)
        return data + response

    def send(self, command: bytes) -> ResponseApdu:
        """Send one command (wrapped when a session is open); the unwrapped response."""
        command = self._on_channel(command)
        if self.session is None:
            return ResponseApdu.parse(self._exchange(command))
        return self.session.unwrap(self._exchange(self.session.wrap(command)))

    def check(self, command: bytes, what: str, ok: Sequence[int] = (0x9000,)) -> bytes:
        response = self.send(command)
        if response.sw not in ok:
            raise GpCommandError(what, response.sw)
        return response.data

    def run_script(self, script: Sequence[bytes]) -> list[ResponseApdu]:
        """Replay a one-way script (built for its channel): raw bytes out, responses recorded
        (not interpreted)."""
        return [ResponseApdu.parse(self._exchange(command)) for command in script]

    # --- sessions -------------------------------------------------------------------

    def select(self, aid: bytes = ISD_AID) -> bytes:
        self.session = None
        response = ResponseApdu.parse(self._exchange(self._on_channel(select_command(aid))))
        if response.sw != 0x9000:
            raise GpCommandError(f"SELECT {aid.hex().upper()}", response.sw)
        return response.data

    def open_scp03(self, keys: Scp03StaticKeys, *, security_level: int = 0x33,
                   s_mode: int = 8, sd_aid: bytes | None = None,
                   host_challenge: bytes | None = None) -> Scp03HostSession:
        self.session = None
        session = Scp03HostSession(keys, s_mode=s_mode, aid=sd_aid,
                                   host_challenge=host_challenge,
                                   logical_channel=self.channel)
        response = self._exchange(session.initialize_update())
        session.process_initialize_update_response(response)
        session.process_external_authenticate_response(
            self._exchange(session.external_authenticate(security_level)))
        self.session = session
        return session

    def certificate_store(self, kid: int = 0x13, kvn: int = 0x01) -> bytes:
        data = tlv.encode(0xA6, tlv.encode(0x83, bytes((kid, kvn))))
        return self.check(get_data_command(0xBF21, data), "GET DATA BF21")

    def sd_public_key(self, kid: int = 0x13, kvn: int = 0x01) -> ec.EllipticCurvePublicKey:
        """PK.SD.ECKA from the certificate store (the caller checks the certificate chain)."""
        public = parse_certificate_store(self.certificate_store(kid, kvn))[-1].public_key
        return public

    def open_scp11(self, variant: Scp11Variant, sd_public_key: ec.EllipticCurvePublicKey, *,
                   kvn: int = 0x01, oce_private_key: ec.EllipticCurvePrivateKey | None = None,
                   oce_certificates: Sequence[bytes] = (), oce_kvn: int | None = None
                   ) -> Scp11HostSession:
        self.session = None
        session = Scp11HostSession(variant, sd_public_key, kvn=kvn,
                                   oce_private_key=oce_private_key,
                                   oce_certificates=oce_certificates, oce_kvn=oce_kvn)
        for command in session.perform_security_operation():
            response = ResponseApdu.parse(self._exchange(self._on_channel(command)))
            if response.sw != 0x9000:
                raise GpCommandError("PERFORM SECURITY OPERATION", response.sw)
        session.process_authenticate_response(
            self._exchange(self._on_channel(session.authenticate())))
        self.session = session
        return session

    @property
    def dek(self) -> bytes:
        """The key that encrypts PUT KEY values: K-DEK (SCP03) or S-DEK (SCP11)."""
        if isinstance(self.session, Scp03HostSession):
            return self.session.keys.dek
        if isinstance(self.session, Scp11HostSession) and self.session.keys is not None:
            dek = self.session.keys.session.s_dek
            assert dek is not None
            return dek
        raise GpCommandError("PUT KEY without a secure channel", 0x6982)

    # --- content management ---------------------------------------------------------

    def get_status(self, p1: int, aid_prefix: bytes = b"") -> list[gpm.StatusEntry]:
        response = self.send(get_status_command(p1, aid_prefix))
        data = b""
        while response.sw == 0x6310:
            data += response.data
            response = self.send(get_status_command(p1, aid_prefix, next_page=True))
        if response.sw == 0x6A88:
            return gpm.StatusEntry.parse_tlv(data)
        if response.sw != 0x9000:
            raise GpCommandError("GET STATUS", response.sw)
        return gpm.StatusEntry.parse_tlv(data + response.data)

    def load(self, load_file_aid: bytes, data_block: bytes, *, sd_aid: bytes = b"",
             daps: dict[bytes, bytes] | None = None,
             token_signer: TokenSigner | None = None) -> Confirmation:
        """INSTALL [for load] then LOAD; ``daps`` maps SD AIDs to DAP signatures."""
        block_hash = gpm.load_file_data_block_hash(data_block)
        self.check(install_for_load_command(load_file_aid, sd_aid=sd_aid, block_hash=block_hash,
                                            token_signer=token_signer), "INSTALL [for load]")
        last = b""
        for command in load_commands(gpm.LoadFile(dict(daps or {}), data_block)):
            last = self.check(command, "LOAD")
        return Confirmation(last)

    def install(self, load_file_aid: bytes, module_aid: bytes, app_aid: bytes, *,
                privileges: bytes = b"\x00", params: bytes = b"", make_selectable: bool = True,
                token_signer: TokenSigner | None = None) -> Confirmation:
        return Confirmation(self.check(install_command(
            load_file_aid, module_aid, app_aid, privileges=privileges, params=params,
            make_selectable=make_selectable, token_signer=token_signer), "INSTALL"))

    def make_selectable(self, app_aid: bytes, privileges: bytes = b"") -> Confirmation:
        return Confirmation(self.check(make_selectable_command(app_aid, privileges),
                                       "INSTALL [for make selectable]"))

    def personalize(self, app_aid: bytes, data: bytes, *, structure: int = 0x08) -> bytes:
        self.check(install_for_personalization_command(app_aid),
                   "INSTALL [for personalization]")
        out = b""
        for command in store_data_commands(data, structure=structure):
            out = self.check(command, "STORE DATA")
        return out

    def store_data(self, data: bytes, *, structure: int = 0x08) -> bytes:
        out = b""
        for command in store_data_commands(data, structure=structure):
            out = self.check(command, "STORE DATA")
        return out

    def delete(self, aid: bytes, *, related: bool = False,
               token_signer: TokenSigner | None = None) -> Confirmation:
        return Confirmation(self.check(delete_command(aid, related=related,
                                                      token_signer=token_signer), "DELETE"))

    def set_status(self, p1: int, state: int, aid: bytes = b"") -> None:
        self.check(set_status_command(p1, state, aid), "SET STATUS")

    def lock(self, aid: bytes) -> None:
        self.set_status(0x40, 0x80, aid)

    def unlock(self, aid: bytes) -> None:
        self.set_status(0x40, 0x00, aid)

    def put_key(self, keys: Sequence[SdKey], *, replace_kvn: int = 0) -> bytes:
        return self.check(put_key_command(keys, self.dek, replace_kvn=replace_kvn), "PUT KEY")

    def get_data(self, tag: int) -> bytes:
        return self.check(get_data_command(tag), f"GET DATA {tag:04X}")

    def sequence_counter(self) -> int:
        item = tlv.parse_one(self.get_data(0x00C1))[0]
        return int.from_bytes(item.value, "big")


def token_signer_for(key: gpm.PrivateKey) -> TokenSigner:
    """Sign token data with ``key`` (ECDSA P-256 or RSA), as the card issuer / KMA does."""
    return lambda data: gpm.sign(key, data)


def dap_signature(key: gpm.PrivateKey, data_block: bytes) -> bytes:
    """A DAP over a Load File Data Block: a signature of its hash."""
    return gpm.sign(key, gpm.load_file_data_block_hash(data_block))


__all__ = [
    "GpClient", "GpCommandError", "Scp11Variant", "dap_signature", "delete_command",
    "install_command", "install_for_load_command", "load_commands", "one_way_scp03_script",
    "one_way_scp11c_script", "put_key_command", "select_command", "set_status_command",
    "store_data_commands", "token_signer_for",
]
