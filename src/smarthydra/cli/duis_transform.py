"""``smarthydra duis transform FILE.xml``: the GBCS the DCC would produce for a DUIS request.

Prints, as hex, the whole command with the ACB MAC for a non-critical request (command
variants 1-3), the pre-command for a critical one (4), the MAC'd signed command for a signed
pre-command (5-7), or the DUIS response code the DCC would refuse the request with (exit 1).
In the ``dccboxed`` profile the ACB key, the device keys and the inventory come from the
conformance data, so the output is comparable with the RTDS file of the same use case.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from lxml.etree import _Element

from smarthydra.crypto.primitives import ecdsa_sign
from smarthydra.dcc.dccboxed import xml_signing_certificates
from smarthydra.dcc.transform import DccOriginator, TransformError, transform
from smarthydra.dcc.transform.engine import mapping_for, resolve
from smarthydra.dcc.transform.profiles import (
    DCCBOXED_INVENTORY,
    DCCBOXED_SENDERS,
    dccboxed_inventory,
)
from smarthydra.dcc.transform.spec import parse_xs_datetime
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.xml import (
    DuisRequest,
    DuisSchema,
    DuisXmlError,
    SchemaNotFound,
    parse_xml,
    read_request,
)
from smarthydra.duis.xmldsig import (
    DS_NS,
    VerifiedSignature,
    XmlSignatureError,
    check_signer,
    static_lookup,
    verify_enveloped,
)
from smarthydra.eui import Eui64
from smarthydra.gbcs.builder import mac_message_z
from smarthydra.gbcs.envelope import decode_general_signing
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.rtds import KeyKind, RtdsKeystore, RtdsKeystoreError

app = typer.Typer(no_args_is_help=True)

DEFAULT_CONFORMANCE = Path(__file__).resolve().parents[3].parent / "shared" / "conformance"
# DCC Boxed's users and the roles they send in.
DCCBOXED_ROLES = {
    bytes.fromhex("90B3D51F30010000"): "IS",
    bytes.fromhex("90B3D51F30020000"): "ED",
    bytes.fromhex("00DB123456780004"): "OU",
}


@dataclass(frozen=True)
class Refusal(Exception):
    code: ResponseCode
    message: str


def _emit_error(message: str, as_json: bool, code: ResponseCode | None, exit_code: int) -> NoReturn:
    if as_json:
        body: dict[str, object] = {"error": message}
        if code is not None:
            body["response_code"] = code.value
        typer.echo(json.dumps(body))
    else:
        prefix = f"refused {code.value} ({code.meaning}): " if code is not None else "error: "
        typer.echo(prefix + message, err=True)
    raise typer.Exit(exit_code)


def _read(path: Path, conformance: Path) -> tuple[DuisRequest, _Element, Eui64 | None]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Refusal(ResponseCode.INVALID_REQUEST, f"cannot read {path}: {exc}") from None
    try:
        root = parse_xml(data)
        DuisSchema.load(conformance / "duis").validate(root)
    except DuisXmlError as exc:
        raise Refusal(exc.code, str(exc)) from None
    verified: VerifiedSignature | None = None
    if root.find(f"{{{DS_NS}}}Signature") is not None:
        lookup = static_lookup(xml_signing_certificates(conformance / "smki"))
        try:
            verified = verify_enveloped(root, lookup)
        except XmlSignatureError as exc:
            raise Refusal(ResponseCode.USER_NOT_AUTHORISED, f"XML signature: {exc}") from None
    try:
        request = read_request(root)
    except DuisXmlError as exc:
        raise Refusal(exc.code, str(exc)) from None
    if verified is not None:
        try:
            check_signer(verified, request.request_id.originator)
        except XmlSignatureError as exc:
            raise Refusal(ResponseCode.REQUEST_ID_ORIGINATOR_MISMATCH, str(exc)) from None
    return request, root, verified.signer if verified is not None else None


def _transform(
    request: DuisRequest,
    conformance: Path,
    dcc_counter: int | None,
    role: str | None,
    issued_at: dt.datetime,
    legacy: bool = False,
) -> dict[str, object]:
    rid = request.request_id
    target = DCCBOXED_INVENTORY.get(rid.target.value)
    if target is None:
        raise Refusal(
            ResponseCode.UNKNOWN_DEVICE, f"{rid.target.hyphenated} is not in the inventory"
        )
    # The RTDS sends both a use case and the one it superseded to the same device, so the
    # profile cannot say which the device implements: --legacy asks for the earlier one.
    target = replace(target, legacy=legacy)
    inventory = dccboxed_inventory(conformance / "gbcs" / "rtds-keystore")
    try:
        keystore = RtdsKeystore.load(conformance / "gbcs" / "rtds-keystore")
    except RtdsKeystoreError as exc:
        raise Refusal(ResponseCode.INVALID_REQUEST, str(exc)) from None
    acb = keystore.access_control_broker
    z = keystore.shared_secret(acb, rid.target.value) if acb is not None else None
    if acb is None or z is None:
        raise Refusal(
            ResponseCode.UNKNOWN_DEVICE, f"no key-agreement key for {rid.target.hyphenated}"
        )
    out: dict[str, object] = {
        "request_id": str(rid),
        "service_reference_variant": request.service_reference_variant,
        "command_variant": int(request.command_variant),
    }
    if request.command_variant.carries_signed_precommand:
        assert request.gbcs is not None
        try:
            signed = decode_general_signing(request.gbcs)
        except GbcsError as exc:
            raise Refusal(ResponseCode.INVALID_REQUEST, f"signed pre-command: {exc}") from None
        if not signed.is_signed:
            raise Refusal(ResponseCode.INVALID_REQUEST, "the pre-command is not signed")
        out.update(kind="command", gbcs=mac_message_z(signed, z).wire().hex().upper())
        return out
    user_role = role or DCCBOXED_ROLES.get(rid.originator.value, "IS")
    service_request = request.to_service_request(rid.originator, user_role)
    counter = rid.counter if dcc_counter is None else dcc_counter
    try:
        spec = resolve(
            mapping_for(service_request.service_reference_variant, target),
            service_request,
            target,
            inventory,
        )
        sender = DCCBOXED_SENDERS.get(spec.use_case, acb)
        result = transform(
            service_request,
            target,
            dcc=DccOriginator(sender, counter),
            issued_at=issued_at,
            inventory=inventory,
        )
    except TransformError as exc:
        raise Refusal(exc.code, str(exc)) from None
    out["use_case"] = result.use_case
    out["critical"] = result.critical
    if result.critical:
        out.update(kind="pre-command", gbcs=result.general_signing.wire().hex().upper())
        return out
    command = result.general_signing
    if result.dcc_signed:
        # The DCC sends this use case in its own name and signs it with its own key.
        party = keystore.parties.get(sender)
        private = party.private.get(KeyKind.DS) if party is not None else None
        if private is None:
            raise Refusal(ResponseCode.INVALID_REQUEST, "no DCC digital-signing key to sign with")
        command = command.with_signature(ecdsa_sign(private, command.signed_data()))
    out.update(kind="command", gbcs=mac_message_z(command, z).wire().hex().upper())
    return out


@app.command("transform")
def transform_command(
    file: Annotated[Path, typer.Argument(help="DUIS request (XML, signed or not)")],
    profile: Annotated[str, typer.Option(help="key and inventory profile")] = "dccboxed",
    conformance: Annotated[
        Path, typer.Option(help="conformance data directory (dccboxed profile)")
    ] = DEFAULT_CONFORMANCE,
    role: Annotated[str | None, typer.Option(help="user role (default: by sender)")] = None,
    dcc_counter: Annotated[
        int | None,
        typer.Option(help="the DCC's counter for use cases it sends in its own name"),
    ] = None,
    issued_at: Annotated[
        str | None,
        typer.Option(
            help="the DCC's time of issue (xs:dateTime) for ZigBee issuer event ids; default now"
        ),
    ] = None,
    legacy: Annotated[
        bool,
        typer.Option(help="the device implements the earlier use cases GBCS superseded"),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print the GBCS the DCC would produce for FILE, or the response code it refuses with."""
    if profile != "dccboxed":
        _emit_error(f"unknown profile {profile!r} (known: dccboxed)", as_json, None, 2)
    if not conformance.is_dir():
        _emit_error(f"conformance directory not found: {conformance}", as_json, None, 2)
    try:
        request, _, _ = _read(file, conformance)
        issued = dt.datetime.now(dt.UTC) if issued_at is None else parse_xs_datetime(issued_at)
        result = _transform(request, conformance, dcc_counter, role, issued, legacy)
    except Refusal as refusal:
        _emit_error(refusal.message, as_json, refusal.code, 1)
    except TransformError as exc:  # a bad --issued-at
        _emit_error(str(exc), as_json, None, 2)
    except SchemaNotFound as exc:
        _emit_error(str(exc), as_json, None, 2)
    if as_json:
        typer.echo(json.dumps(result, indent=1))
    else:
        typer.echo(str(result["gbcs"]))
