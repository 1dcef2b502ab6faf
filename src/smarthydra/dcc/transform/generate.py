"""Generate ``templates.json`` from the RTDS: one payload template per use case.

    python -m smarthydra.dcc.transform.generate /path/to/conformance/gbcs/rtds-4.5.0

For each use case folder the template comes from one COMMAND file (an immediate success
where there is one). Header-dependent leaves are found and blanked, and every leaf the
mapping table fills from the DUIS body is blanked too, so the shipped templates carry the
structure of each use case's command and none of the RTDS parameter values.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from smarthydra.dcc.transform.payload import (
    TEMPLATES_RESOURCE,
    Codec,
    HeaderField,
    HeaderLeaf,
    PayloadTemplate,
    byte_ranges,
    decode_access_request,
    get_leaf,
    iter_leaves,
    read_strings,
    set_leaf,
    write_strings,
)
from smarthydra.dcc.transform.spec import IMMEDIATE_COSEM, Choice, Mapping, UseCaseSpec
from smarthydra.dcc.transform.table import MAPPINGS
from smarthydra.gbcs.axdr import BitString, Data, DataType
from smarthydra.gbcs.envelope import GeneralSigning, decode_general_signing, decode_message
from smarthydra.gbcs.rtds import read_hex_file


def _specs(mapping: Mapping) -> list[UseCaseSpec]:
    if isinstance(mapping, Choice):
        return [s for option in mapping.options.values() for s in _specs(option)]
    return [mapping]


def specs_by_use_case() -> dict[str, list[UseCaseSpec]]:
    out: dict[str, list[UseCaseSpec]] = {}
    for by_device in MAPPINGS.values():
        for mapping in by_device.values():
            for spec in _specs(mapping):
                out.setdefault(spec.use_case, []).append(spec)
    return out


# Use cases whose usual (SUCCESS) command is the odd one out in its RTDS folder: the
# template comes from the file the others agree with.
TEMPLATE_SOURCES = {
    # SUCCESS is sent by the DCC on the supplier's behalf; ERROR and NOT_FOUND by the supplier.
    "GCS15d": "GCS15d_4.4.4_ERROR_COMMAND_GBCS.HEX",
    # SUCCESS carries an unknown remote party's certificate (so the DCC sends it).
    "GCS61": "GCS61_4.17_NOT_FOUND_COMMAND_GBCS.HEX",
    # The template needs every optional request specification.
    "ECS46c": "ECS46c_6.14.2_FUTURE_DATED_ALL_OPTIONALS_SUCCESS_COMMAND_GBCS.HEX",
}


def _rank(name: str) -> tuple[int, str]:
    score = 0 if "SUCCESS" in name else 2
    score += 1 if ("FUTURE" in name or "CANCEL" in name) else 0
    return score, name


def read_general_signing(path: Path) -> GeneralSigning:
    data = read_hex_file(path)
    return decode_general_signing(data) if data[0] == 0xDF else decode_message(data).general_signing


def _blank(leaf: Data) -> Data:
    if isinstance(leaf.value, bool):
        return Data(leaf.type, False)
    if isinstance(leaf.value, int):
        return Data(leaf.type, 0)
    if isinstance(leaf.value, bytes):
        return Data(leaf.type, bytes(len(leaf.value)))
    if isinstance(leaf.value, str):
        return Data(leaf.type, "")
    if isinstance(leaf.value, BitString):
        return Data(leaf.type, BitString(leaf.value.length, bytes(len(leaf.value.data))))
    return leaf


def template_from(
    folder: Path, specs: list[UseCaseSpec], variant: str = ""
) -> PayloadTemplate | None:
    use_case = folder.name.split("_", 1)[1]
    commands = sorted(
        (
            p
            for p in folder.iterdir()
            if "_COMMAND_" in p.name and (not variant or f"_{variant}_" in p.name)
        ),
        key=lambda p: _rank(p.name),
    )
    preferred = TEMPLATE_SOURCES.get(use_case)
    if preferred is not None:
        commands.sort(key=lambda p: p.name != preferred)
    if not commands:
        return None
    critical = any("_PRECOMMAND_" in p.name for p in folder.iterdir())
    gs = read_general_signing(commands[0])
    payload = gs.payload
    headers: list[HeaderLeaf] = []
    if payload[:1] == b"\xd9":
        codec = Codec.XDLMS
        apdu = decode_access_request(payload)
        apdu = replace(apdu, invoke_id=apdu.invoke_id & 0xFF000000)
        for path, leaf in iter_leaves(apdu):
            value = leaf.value
            if leaf.type is not DataType.OCTET_STRING or not isinstance(value, bytes):
                continue
            if value == gs.originator:
                headers.append(HeaderLeaf(path, HeaderField.ORIGINATOR))
            elif value == gs.recipient:
                headers.append(HeaderLeaf(path, HeaderField.RECIPIENT))
            elif len(value) == 9 and value[1:] == gs.originator_counter.to_bytes(8, "big"):
                headers.append(HeaderLeaf(path, HeaderField.TRANSACTION_ID))
        for header in headers:
            leaf = get_leaf(apdu, header.at)
            assert isinstance(leaf.value, bytes)
            blank = (
                leaf.value[:1] + bytes(8)
                if header.field is HeaderField.TRANSACTION_ID
                else bytes(8)
            )
            apdu = set_leaf(apdu, header.at, Data(DataType.OCTET_STRING, blank))
        for spec in specs:
            for slot in spec.slots:
                if slot.at[0] == "obis":
                    continue  # a logical name byte: always written
                apdu = set_leaf(apdu, slot.at, _blank(get_leaf(apdu, slot.at)))
            for path in spec.execution:
                apdu = set_leaf(apdu, path, Data(DataType.OCTET_STRING, IMMEDIATE_COSEM))
            built = [listed.at for listed in spec.lists] + [array.at for array in spec.arrays]
            for path in built:  # arrays built from the request
                apdu = set_leaf(apdu, path, Data(DataType.ARRAY, []))
            for built_leaf in spec.leaves:  # leaves built from the request
                apdu = set_leaf(apdu, built_leaf.at, _blank(get_leaf(apdu, built_leaf.at)))
        payload = apdu.encode()
    else:
        codec = Codec.GBZ if payload[:2] == b"\x01\x09" else Codec.DER
        blanked = bytearray(payload)
        strings: set[tuple[int, int]] = set()
        for spec in specs:
            for path in [slot.at for slot in spec.slots] + list(spec.execution):
                if path == ("payload",):  # the whole payload comes from the request
                    blanked = bytearray()
                    continue
                if path[0] == "zstr":  # trailing ZCL strings: left empty
                    component, offset = path[1], path[2]
                    assert isinstance(component, int) and isinstance(offset, int)
                    strings.add((component, offset))
                    continue
                for offset, size in byte_ranges(payload, path):
                    blanked[offset : offset + size] = bytes(size)
        payload = bytes(blanked)
        for component, offset in sorted(strings, reverse=True):
            count = len(read_strings(payload, component, offset))
            payload = write_strings(payload, component, offset, [b""] * count)
    if any(spec.codec is not None for spec in specs):
        payload = b""  # built in code from the request: the template carries no payload
    return PayloadTemplate(
        f"{use_case}:{variant}" if variant else use_case,
        gs.message_code,
        codec,
        payload,
        gs.other_information.to_bytes(),
        critical,
        tuple(headers),
        commands[0].name,
        dcc_signed=not critical and gs.is_signed,
    )


def generate(rtds: Path) -> dict[str, PayloadTemplate]:
    by_use_case = specs_by_use_case()
    out: dict[str, PayloadTemplate] = {}
    for folder in sorted(p for p in rtds.iterdir() if p.is_dir()):
        use_case = folder.name.split("_", 1)[1]
        if use_case not in by_use_case:
            continue  # only use cases the table maps are shipped
        specs = by_use_case[use_case]
        for variant in sorted({spec.variant for spec in specs}):
            chosen = [spec for spec in specs if spec.variant == variant]
            template = template_from(folder, chosen, variant)
            if template is not None:
                out[template.use_case] = template
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m smarthydra.dcc.transform.generate RTDS_DIR", file=sys.stderr)
        return 2
    templates = generate(Path(argv[0]))
    target = Path(__file__).with_name(TEMPLATES_RESOURCE)
    body = {name: t.to_json() for name, t in sorted(templates.items())}
    target.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    print(f"{len(templates)} templates written to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
