from __future__ import annotations

import json
from pathlib import Path

import pytest

from smarthydra.duis.matrix import (
    BUILTIN_VARIANTS,
    MatrixError,
    ServiceRequestMatrix,
    builtin_matrix,
    load_matrix,
)
from tests.conftest import conformance_path


def test_conformance_matrix_has_all_129_variants() -> None:
    matrix = ServiceRequestMatrix.from_json(conformance_path("duis", "service-request-matrix.json"))
    assert len(matrix) == 129
    disable = matrix.get("7.2")
    assert disable is not None and disable.critical
    assert disable.eligible_roles == {"IS", "GS"}
    assert not disable.allows("ED")


def test_builtin_variants_agree_with_the_published_matrix() -> None:
    published = ServiceRequestMatrix.from_json(
        conformance_path("duis", "service-request-matrix.json")
    )
    for ours in BUILTIN_VARIANTS:
        assert published.get(ours.variant) == ours, ours.variant


def test_load_matrix_falls_back_to_builtin(tmp_path: Path) -> None:
    assert len(load_matrix(tmp_path)) == len(builtin_matrix())
    assert len(load_matrix(None)) == len(BUILTIN_VARIANTS)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{}", "expected a JSON list"),
        ('[{"Service Reference": "1"}]', "malformed row"),
        ("not json", "cannot read"),
    ],
)
def test_malformed_matrix_files_give_clear_errors(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(MatrixError, match=message):
        ServiceRequestMatrix.from_json(path)


def test_missing_matrix_file(tmp_path: Path) -> None:
    with pytest.raises(MatrixError, match="not found"):
        ServiceRequestMatrix.from_json(tmp_path / "absent.json")


def test_duplicate_variants_rejected(tmp_path: Path) -> None:
    row = {
        "Service Request Name": "x",
        "Service Reference": "1",
        "Service Reference Variant": "1",
        "Critical": "No",
        "On Demand": "Yes",
        "Eligible User Roles": ["IS"],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps([row, row]))
    with pytest.raises(MatrixError, match="duplicate"):
        ServiceRequestMatrix.from_json(path)
