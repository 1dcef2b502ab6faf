"""Compiled payload templates: splicing changed nodes into the template's bytes gives exactly
what encoding the changed tree gives (the RTDS tests check the commands themselves)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.dcc.transform.compiled import RequestPatch, compile_request
from smarthydra.dcc.transform.payload import Codec, TemplateError, load_templates
from smarthydra.gbcs.axdr import Data, DataType

XDLMS_TEMPLATES = sorted(
    name
    for name, t in load_templates().items()
    if t.codec is Codec.XDLMS and t.payload  # codec-built use cases carry no payload
)


def test_every_xdlms_template_compiles_and_encodes_back_to_itself() -> None:
    assert len(XDLMS_TEMPLATES) > 100
    for name in XDLMS_TEMPLATES:
        payload = load_templates()[name].payload
        compiled = compile_request(payload)
        assert compiled.encoded == payload
        assert RequestPatch(compiled).encode() == payload, name


def test_the_compiled_template_is_cached() -> None:
    payload = load_templates()[XDLMS_TEMPLATES[0]].payload
    assert compile_request(payload) is compile_request(bytes(payload))


def _replacement(node: Data, raw: bytes, number: int) -> Data:
    """A node of the same kind with other contents (octet strings of another length too)."""
    if node.type is DataType.OCTET_STRING:
        return Data(DataType.OCTET_STRING, raw)
    if node.type is DataType.ARRAY:
        return Data(DataType.ARRAY, [Data(DataType.OCTET_STRING, raw)] * (number % 3))
    if node.type in (DataType.UNSIGNED, DataType.ENUM):
        return Data(node.type, number % 0x100)
    if node.type is DataType.LONG_UNSIGNED:
        return Data(node.type, number % 0x10000)
    if node.type is DataType.BOOLEAN:
        return Data(node.type, bool(number % 2))
    return Data(DataType.NULL_DATA)  # a node of another type altogether


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(XDLMS_TEMPLATES),
    st.lists(
        st.tuples(st.integers(0, 10_000), st.binary(max_size=20), st.integers(0, 70_000)),
        max_size=5,
    ),
    st.integers(0, 0xFFFFFFFF),
)
def test_spliced_changes_equal_the_encoded_tree(
    name: str, changes: list[tuple[int, bytes, int]], invoke_id: int
) -> None:
    compiled = compile_request(load_templates()[name].payload)
    paths = sorted(compiled.spans)
    patch = RequestPatch(compiled)
    patch.invoke_id = invoke_id
    changed: list[tuple[object, ...]] = []
    for pick, raw, number in changes:
        path = paths[pick % len(paths)]
        if any(path[: len(c)] == c and path != c for c in changed):
            continue  # inside a node already replaced: no longer a path of the tree
        changed.append(path)
        patch.set_leaf(path, _replacement(patch.get_leaf(path), raw, number))
        if compiled.names and number % 5 == 0:
            patch.set_name_byte(number % len(compiled.names), number % 6, number % 0x100)
    assert patch.encode() == patch.apdu().encode()


def test_a_path_outside_the_template_is_a_template_error() -> None:
    patch = RequestPatch(compile_request(load_templates()[XDLMS_TEMPLATES[0]].payload))
    with pytest.raises(TemplateError):
        patch.set_leaf(("data", 99), Data(DataType.NULL_DATA))
    with pytest.raises(TemplateError):
        patch.set_name_byte(99, 0, 1)
