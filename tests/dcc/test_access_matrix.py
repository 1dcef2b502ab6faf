"""Every service request variant of the published matrix against every user role.

The DCC loads its role rules from ``service-request-matrix.json``; this test reads the raw
JSON itself and checks each of the 129 x 7 decisions the DCC makes: a role the matrix does not
list is refused with E2, a listed role gets past the role check (to whatever the next check
says). A few rows are also pinned from the DUIS specification, so a wrong matrix file fails.
"""

from __future__ import annotations

import json

import pytest

from smarthydra.dcc.inventory import DccUser, UserStatus
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId, ServiceRequest
from smarthydra.eui import Eui64
from tests.conftest import conformance_path
from tests.dcc.dccboxed_helpers import ESME, boxed, private_key

ROLES = ("IS", "GS", "ES", "ED", "GT", "OU", "RSA")
EVERY_ROLE_USER = Eui64.parse("90B3D51F300A0000")


def _rows() -> list[dict[str, object]]:
    rows = json.loads(conformance_path("duis", "service-request-matrix.json").read_text())
    assert len(rows) == 129
    return rows


def _command_variant(row: dict[str, object]) -> CommandVariant:
    if row["Non-Device Request"] == "Yes":
        return CommandVariant.NON_DEVICE
    if row["Critical"] == "Yes":
        return CommandVariant.CRITICAL_TRANSFORM
    return CommandVariant.NON_CRITICAL_TO_DEVICE


@pytest.mark.parametrize("role", ROLES)
def test_every_srv_for_role(role: str) -> None:
    setup = boxed()
    dcc = setup.profile.dcc
    key = private_key(conformance_path("gbcs", "rtds-keystore", "90b3d51f30010000-ds.key"))
    dcc.users.add(
        DccUser(
            EVERY_ROLE_USER,
            "holds every role",
            {r: UserStatus.ACTIVE for r in ROLES},
            key.public_key(),
        )
    )
    refused = allowed = 0
    for counter, row in enumerate(_rows(), start=1):
        variant = str(row["Service Reference Variant"])
        eligible = role in row["Eligible User Roles"]  # type: ignore[operator]
        request = ServiceRequest(
            RequestId(EVERY_ROLE_USER, ESME, counter),
            EVERY_ROLE_USER,
            role,
            variant,
            _command_variant(row),
        )
        code = dcc.accept(request).code
        if eligible:
            assert code is not ResponseCode.ROLE_NOT_ELIGIBLE, (variant, role)
            allowed += 1
        else:
            assert code is ResponseCode.ROLE_NOT_ELIGIBLE, (variant, role, code)
            refused += 1
    assert allowed + refused == 129


def test_rows_pinned_from_the_duis_specification() -> None:
    rows = {str(r["Service Reference Variant"]): r for r in _rows()}
    assert set(rows["7.2"]["Eligible User Roles"]) == {"IS", "GS"}  # type: ignore[arg-type]
    assert rows["7.2"]["Critical"] == "Yes"
    assert "ED" in rows["4.1.1"]["Eligible User Roles"]  # type: ignore[operator]
    assert rows["8.2"]["Non-Device Request"] == "Yes"


def test_critical_srv_with_cv1_is_e12_and_wrong_url_is_e13() -> None:
    from smarthydra.dcc.gateway import Endpoint
    from tests.dcc.test_durable import send

    setup = boxed()
    assert (
        send(setup, setup.request("7.2", CommandVariant.NON_CRITICAL_TO_DEVICE)).code
        is ResponseCode.INVALID_COMMAND_VARIANT
    )
    assert (
        send(setup, setup.request("7.2", CommandVariant.CRITICAL_TRANSFORM), Endpoint.SEND).code
        is ResponseCode.WRONG_URL_FOR_COMMAND_VARIANT
    )
