"""Payload templates decoded once: a command is its template's bytes with the changed parts
spliced in.

Decoding a template's xDLMS access-request and encoding the whole command again for every
request was most of the transform's cost. A-XDR containers carry element counts, never byte
lengths, so the encoding of any node sits, self-contained, at a fixed span of the template's
encoding: replacing nodes (a leaf, an array built from the request) is the template's bytes
with each replaced span swapped for the new node's encoding, byte for byte what encoding the
changed tree gives. Where that does not hold (a node replaced inside another replaced one,
request specifications dropped), :class:`RequestPatch` builds the tree and encodes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from smarthydra.dcc.transform.payload import (
    LeafPath,
    TemplateError,
    decode_access_request,
    get_leaf,
    set_leaf,
)
from smarthydra.gbcs.axdr import Data, DataType, encode_data
from smarthydra.gbcs.envelope import encode_length
from smarthydra.gbcs.xdlms import AccessRequest

INVOKE_ID_SPAN = (1, 5)  # after the access-request tag: long-invoke-id-and-priority
NAME_OFFSET = 3  # in a request specification: kind (1), class id (2), then the logical name
NAME_SIZE = 6


@dataclass(frozen=True)
class CompiledRequest:
    """A template's access-request, decoded once and never changed, with the byte span of
    every node of its data and selections and the offset of each logical name."""

    apdu: AccessRequest
    encoded: bytes
    spans: dict[LeafPath, tuple[int, int]]
    names: tuple[int, ...]


def _walk(node: Data, path: LeafPath, start: int, spans: dict[LeafPath, tuple[int, int]]) -> int:
    encoded = encode_data(node)
    end = start + len(encoded)
    spans[path] = (start, end)
    if node.type in (DataType.STRUCTURE, DataType.ARRAY) and isinstance(node.value, list):
        children = [encode_data(child) for child in node.value]
        at = end - sum(len(c) for c in children)
        for i, child in enumerate(node.value):
            at = _walk(child, (*path, i), at, spans)
    return end


@lru_cache(maxsize=1024)
def compile_request(payload: bytes) -> CompiledRequest:
    """The template ``payload`` decoded, with its spans (cached per template)."""
    apdu = decode_access_request(payload)
    encoded = apdu.encode()
    spans: dict[LeafPath, tuple[int, int]] = {}
    names: list[int] = []
    specs_end = len(encoded) - sum(len(encode_data(d)) for d in apdu.data)
    specs_encoded = [spec.encode() for spec in apdu.specifications]
    # The data count's own length precedes the data; the specifications end before it.
    at = specs_end - len(encode_length(len(apdu.data))) - sum(len(s) for s in specs_encoded)
    for i, (spec, raw) in enumerate(zip(apdu.specifications, specs_encoded, strict=True)):
        names.append(at + NAME_OFFSET)
        if spec.selection is not None:
            selection_size = len(encode_data(spec.selection))
            _walk(spec.selection, ("selection", i), at + len(raw) - selection_size, spans)
        at += len(raw)
    at = specs_end
    for i, item in enumerate(apdu.data):
        at = _walk(item, ("data", i), at, spans)
    for i, spec in enumerate(apdu.specifications):
        if encoded[names[i] : names[i] + NAME_SIZE] != spec.descriptor.instance_id:
            raise TemplateError("template layout: a logical name is not where expected")
    if encoded != payload:
        raise TemplateError("template payload does not encode back to itself")
    return CompiledRequest(apdu, encoded, spans, tuple(names))


class RequestPatch:
    """The changes a request makes to a compiled template: the invoke-id, logical name bytes
    and replaced nodes. :meth:`encode` splices them into the template's bytes."""

    def __init__(self, compiled: CompiledRequest) -> None:
        self._compiled = compiled
        self.invoke_id = compiled.apdu.invoke_id
        self._nodes: dict[LeafPath, Data] = {}
        self._names: dict[int, bytearray] = {}
        self._keep: list[int] | None = None

    @property
    def template(self) -> AccessRequest:
        return self._compiled.apdu

    def _nested(self, path: LeafPath) -> bool:
        """Whether a node above or below ``path`` has been replaced."""
        return any(
            other != path and (other[: len(path)] == path or path[: len(other)] == other)
            for other in self._nodes
        )

    def get_leaf(self, path: LeafPath) -> Data:
        found = self._nodes.get(path)
        if found is not None:
            return found
        if self._nested(path):
            return get_leaf(self.apdu(), path)
        return get_leaf(self._compiled.apdu, path)

    def set_leaf(self, path: LeafPath, value: Data) -> None:
        if path not in self._compiled.spans:
            get_leaf(self._compiled.apdu, path)  # raises TemplateError naming the bad path
            raise TemplateError(f"leaf path {path}: not a node of the template")
        self._nodes.pop(path, None)  # re-inserted last: the order of changes is kept
        self._nodes[path] = value

    def set_name_byte(self, index: int, position: int, value: int) -> None:
        specs = self._compiled.apdu.specifications
        if not 0 <= index < len(specs):
            raise TemplateError(f"no request specification {index}")
        name = self._names.setdefault(index, bytearray(specs[index].descriptor.instance_id))
        name[position] = value

    def keep_specifications(self, keep: list[int]) -> None:
        """Send only these request specifications (and their data)."""
        self._keep = keep

    def apdu(self) -> AccessRequest:
        """The changed access-request as a tree (the slow path)."""
        apdu = replace(self._compiled.apdu, invoke_id=self.invoke_id)
        if self._names:
            specs = list(apdu.specifications)
            for index, name in self._names.items():
                spec = specs[index]
                specs[index] = replace(
                    spec, descriptor=replace(spec.descriptor, instance_id=bytes(name))
                )
            apdu = replace(apdu, specifications=specs)
        for path, value in self._nodes.items():
            apdu = set_leaf(apdu, path, value)
        if self._keep is not None:
            keep = self._keep
            apdu = replace(
                apdu,
                specifications=[apdu.specifications[i] for i in keep],
                data=[apdu.data[i] for i in keep]
                if len(apdu.data) == len(apdu.specifications)
                else apdu.data,
            )
        return apdu

    def encode(self) -> bytes:
        if self._keep is not None or any(self._nested(path) for path in self._nodes):
            return self.apdu().encode()
        compiled = self._compiled
        edits: list[tuple[int, int, bytes]] = [
            (*INVOKE_ID_SPAN, self.invoke_id.to_bytes(4, "big")),
            *(
                (compiled.names[i], compiled.names[i] + NAME_SIZE, bytes(name))
                for i, name in self._names.items()
            ),
            *((*compiled.spans[path], encode_data(value)) for path, value in self._nodes.items()),
        ]
        edits.sort(key=lambda edit: edit[0])
        out = bytearray()
        position = 0
        source = compiled.encoded
        for start, end, raw in edits:
            if start < position:
                return self.apdu().encode()  # overlapping changes: build the tree
            out += source[position:start]
            out += raw
            position = end
        out += source[position:]
        return bytes(out)
