"""The SMKI repository HTTP service: queries by EUI-64, role and serial; CRL download."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.pki.certificates import parse_certificate
from smarthydra.pki.hierarchy import CaHierarchy, SmkiRepository, parse_crl
from smarthydra.pki.service import create_app

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
EUI = bytes.fromhex("90B3D51F30010000")


@pytest.fixture
def setup() -> tuple[TestClient, CaHierarchy, SmkiRepository, list[int]]:
    store = SoftKeystore(None, b"")
    hierarchy = CaHierarchy.create(
        store, not_before=T0, not_after=T0 + dt.timedelta(days=3650), device_ca_capacity=2
    )
    repository = SmkiRepository(hierarchy.ca_certificates)
    serials = []
    for usage in (KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_AGREEMENT):
        certificate = hierarchy.issue_organisation(
            subject_public_key=SoftKeystore(None, b"").generate("k", usage),
            role=2,
            eui64=EUI,
            usage=usage,
            not_before=T0,
            not_after=T0 + dt.timedelta(days=365),
        )
        repository.publish(certificate)
        serials.append(certificate.serial)
    repository.revoke(serials[0], T0 + dt.timedelta(days=1))

    def crl() -> bytes:
        return repository.crl(hierarchy.organisation_signer(), T0, T0 + dt.timedelta(days=7))

    return TestClient(create_app(repository, crl)), hierarchy, repository, serials


def test_queries(setup) -> None:  # type: ignore[no-untyped-def]
    client, _, _, serials = setup
    found = client.get("/certificates", params={"eui64": "90-B3-D5-1F-30-01-00-00"}).json()
    assert {c["serial"] for c in found} == {f"{s:X}" for s in serials}
    assert {c["revoked"] for c in found} == {True, False}
    only_ka = client.get("/certificates", params={"role": "02", "usage": "ka"}).json()
    assert [c["usage"] for c in only_ka] == ["ka"]
    one = client.get(f"/certificates/{serials[1]:X}").json()
    assert one["role"] == "02" and one["eui64"] == EUI.hex().upper()
    der = client.get(f"/certificates/{serials[1]:X}", params={"format": "der"})
    assert der.headers["content-type"] == "application/pkix-cert"
    assert parse_certificate(der.content).serial == serials[1]
    assert client.get("/health").json()["certificates"] == 5


def test_crl_download(setup) -> None:  # type: ignore[no-untyped-def]
    client, hierarchy, _, serials = setup
    response = client.get("/crl")
    assert response.headers["content-type"] == "application/pkix-crl"
    assert parse_crl(response.content, hierarchy.organisation_ca) == {serials[0]}


@pytest.mark.parametrize(
    ("path", "params", "status", "text"),
    [
        ("/certificates", {}, 400, "give eui64 or role"),
        ("/certificates", {"eui64": "nope"}, 400, "not an EUI-64"),
        ("/certificates", {"role": "zz"}, 400, "2 hex digits"),
        ("/certificates", {"role": "02", "usage": "x"}, 400, "ds or ka"),
        ("/certificates/XYZ", {}, 400, "hexadecimal"),
        ("/certificates/ABCDEF", {}, 404, "no certificate"),
    ],
)
def test_bad_requests(setup, path, params, status, text) -> None:  # type: ignore[no-untyped-def]
    client = setup[0]
    response = client.get(path, params=params)
    assert response.status_code == status
    assert text in response.json()["detail"]


def test_dcc_refuses_after_downloading_the_crl() -> None:
    """The DCC adopts the CRL it downloads from the repository service, then refuses (E1)."""
    from smarthydra.duis.codes import ResponseCode
    from smarthydra.duis.request import CommandVariant, ServiceRequest
    from smarthydra.pki.revocation import RevocationCheck
    from smarthydra.sim.world import SUPPLIER_EUI, build_world

    world = build_world(1)
    now = world.clock.now()
    client = TestClient(
        create_app(
            world.repository,
            lambda: world.repository.crl(
                world.smki.organisation_signer(), now, now + dt.timedelta(days=1)
            ),
        )
    )
    supplier_ds = client.get(
        "/certificates", params={"eui64": str(SUPPLIER_EUI), "usage": "ds"}
    ).json()
    world.repository.revoke(int(supplier_ds[0]["serial"], 16), now)
    check = RevocationCheck(SmkiRepository.from_json(world.repository.to_json()))
    check.refresh(client.get("/crl").content, world.smki.organisation_ca)
    world.dcc.credential_check = check.check_user
    rid = world.supplier.next_request_id(world.homes[0].esme.eui)
    response = world.dcc.submit(
        ServiceRequest(rid, SUPPLIER_EUI, "IS", "4.1.1", CommandVariant.NON_CRITICAL_TO_DEVICE)
    )
    assert response.code is ResponseCode.USER_NOT_AUTHORISED
