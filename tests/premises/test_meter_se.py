"""A meter whose GBCS keys are generated and used in its own secure element."""

from __future__ import annotations

import pytest

from smarthydra.crypto.keystore import KeyNotFound, Keystore, KeyUsage, KeyUsageError
from smarthydra.premises.esme import SupplyState
from smarthydra.premises.meter_se import SecureElementKeystore
from smarthydra.sim.world import build_world, in_memory_keystores


def _factory(name: str) -> Keystore:
    if name.startswith("esme-"):
        return SecureElementKeystore(seed=name.encode())
    return in_memory_keystores(name)


def test_keys_stay_in_the_card_and_work_for_ecdh_and_signatures() -> None:
    store = SecureElementKeystore(seed=b"unit")
    with pytest.raises(KeyNotFound):
        store.public_key("ka")
    ka = store.generate("ka", KeyUsage.KEY_AGREEMENT)
    store.generate("ds", KeyUsage.DIGITAL_SIGNATURE)
    assert store.labels() == ["ka", "ds"] and "ka" in store
    other = in_memory_keystores("peer")
    peer = other.generate("ka", KeyUsage.KEY_AGREEMENT)
    assert store.derive_shared_secret("ka", peer) == other.derive_shared_secret("ka", ka)
    with pytest.raises(KeyUsageError):
        store.sign("ka", b"x")
    with pytest.raises(KeyUsageError):
        store.generate("ds", KeyUsage.KEY_AGREEMENT)
    from smarthydra.crypto.primitives import ecdsa_verify

    assert ecdsa_verify(store.public_key("ds"), b"message", store.sign("ds", b"message"))


def test_an_esme_with_keys_on_its_secure_element_serves_the_dcc() -> None:
    world = build_world(homes=1, seed=31, keystores=_factory)
    esme = world.home(0).esme
    assert isinstance(esme._keystore, SecureElementKeystore)
    esme.consume(4321)
    read = world.supplier.read_import_registers(world.dcc, esme.eui)
    assert read.registers is not None
    assert read.registers.active_import_wh == esme.registers.active_import_wh
    disabled = world.supplier.disable_supply(world.dcc, esme.eui)
    assert disabled.outcome.name == "DONE"
    assert esme.supply is SupplyState.DISABLED
