"""Change of supplier end to end (SRV 6.23, CS02b supplierByTransCoS).

Supplier B wins the homes of Supplier A. On the change-of-supplier date the registration
data names B for each MPAN; B sends 6.23 with its own organisation certificates; the DCC,
as transitional CoS party, signs the CS02b command and the ACB MACs it; each meter checks the
TransCoS signature and B's certificates against its root, replaces its supplier cells and
moves the supplier's anti-replay floors. Afterwards:

- B's reads and critical commands (disable supply) are accepted by the meters;
- A's requests are refused by the DCC (E4, not the registered supplier), and A's critical
  commands that reach a meter anyway (through a corrupt insider who MACs them) are dropped
  by the meter itself, because A is no longer in its supplier cells;
- the DCC's ownership records (registration of the MPAN) and every meter's supplier cells
  name the same supplier.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from smarthydra.crypto.keystore import Keystore
from smarthydra.dcc.inventory import DccUser, Registration, UserStatus
from smarthydra.duis.request import CommandVariant, ServiceRequest
from smarthydra.eui import Eui64
from smarthydra.gbcs.builder import build_precommand, sign_precommand
from smarthydra.gbcs.esme_payloads import MESSAGE_CODE_ECS43, open_load_switch_command
from smarthydra.parties.party import Outcome, Party
from smarthydra.pki.credentials import CellRole, StatusCode
from smarthydra.pki.profile import SmkiRole
from smarthydra.premises.esme import DropReason
from smarthydra.sim.scenarios.smki import (
    NEW_SUPPLIER_EUI,
    TRANS_COS_EUI,
    CredentialsRefused,
    change_of_supplier_body,
    enable_smki,
    issue_organisation_keys,
    read_response,
)
from smarthydra.sim.world import (
    CENTRAL_KEYSTORES,
    KeystoreFactory,
    World,
    build_world,
    in_memory_keystores,
)

# Besides the world's central parties, the scenarios' own: the gaining supplier (CoS), the
# supplier's replacement keys and the replacement SMKI (recovery drills).
SCENARIO_KEYSTORES = (*CENTRAL_KEYSTORES, "gaining-supplier", "supplier-new", "smki-new")

KeystoresFor = Callable[[str], KeystoreFactory]
"""Keystores for one world of a scenario, by the world's name (each world needs fresh ones:
its CAs and parties generate keys under the same labels)."""


def softhsm_scenario_keystores(directory: Path, user_pin: str = "0000") -> KeystoresFor:
    """SoftHSM2 tokens for the SMKI CAs and the parties of each world, under
    ``directory/<world>``. Each world's tokens are created, then its store activated (which
    re-initialises the PKCS#11 library: a world's keys are usable until the next world's
    store is activated, so the worlds of a scenario run one after another)."""
    from smarthydra.crypto import softhsm
    from smarthydra.crypto.pkcs11store import Pkcs11Keystore

    def for_world(name: str) -> KeystoreFactory:
        tokens = {
            party: softhsm.init_token(directory / name, party, user_pin, so_pin=user_pin + "so")
            for party in SCENARIO_KEYSTORES
        }
        softhsm.activate(next(iter(tokens.values())))
        stores: dict[str, Keystore] = {}

        def factory(party: str) -> Keystore:
            token = tokens.get(party)
            if token is None:
                return in_memory_keystores(party)  # devices keep their own keys
            if party not in stores:
                stores[party] = Pkcs11Keystore(token.module_path, token.token_label, token.user_pin)
            return stores[party]

        return factory

    return for_world


def in_memory_scenario_keystores(_name: str) -> KeystoreFactory:
    return in_memory_keystores


@dataclass
class CosReport:
    homes: int
    gaining_supplier: str
    losing_supplier: str
    cos_accepted: int = 0
    cos_failures: list[str] = field(default_factory=list)
    gaining_reads_ok: int = 0
    gaining_disable_ok: int = 0
    losing_dcc_refusals: dict[str, int] = field(default_factory=dict)
    losing_rejected_by_meter: int = 0
    losing_accepted_by_meter: int = 0
    ownership_agrees: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.cos_accepted == self.homes
            and self.gaining_reads_ok == self.homes
            and self.gaining_disable_ok == 1
            and self.losing_rejected_by_meter == self.homes
            and self.losing_accepted_by_meter == 0
            and self.ownership_agrees == self.homes
            and set(self.losing_dcc_refusals) == {"E4"}
        )

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


def insider_critical_command(
    world: World, party: Party, keystore: Keystore, target: Eui64
) -> bytes:
    """A Disable Supply command signed by ``party`` and MAC'd by the ACB outside the DCC's
    checks (a corrupt insider): only the meter's own trust anchors stand in its way."""
    party.counter += 1
    pre = build_precommand(
        originator=party.eui.value,
        recipient=target.value,
        counter=party.counter,
        message_code=MESSAGE_CODE_ECS43,
        payload=open_load_switch_command(party.counter),
    )
    signed = sign_precommand(pre, keystore=keystore, label="ds")
    record = world.dcc.inventory.device(target)
    assert record is not None
    return world.dcc.acb.mac_command(signed, record.key_agreement_key)


def run_cos(
    homes: int = 3,
    *,
    conformance: Path | None = None,
    world: World | None = None,
    keystores_for: KeystoresFor = in_memory_scenario_keystores,
) -> CosReport:
    """Change of supplier for ``homes`` meters; with ``keystores_for`` from
    :func:`softhsm_scenario_keystores` the SMKI CAs' and the suppliers', network operator's and
    ACB's keys live in SoftHSM2."""
    started = time.perf_counter()
    keystores = keystores_for("cos")
    world = world or build_world(homes, conformance=conformance, keystores=keystores)
    operations = enable_smki(world)
    losing = world.supplier
    report = CosReport(len(world.homes), str(NEW_SUPPLIER_EUI), str(losing.eui))

    # Supplier B joins: SMKI certificates (DS, KA, prepayment top-up KA), a DCC user.
    gaining_keys = issue_organisation_keys(
        world.smki,
        world.repository,
        NEW_SUPPLIER_EUI,
        SmkiRole.SUPPLIER,
        ("ds", "ka", "pp-ka"),
        keystore=keystores("gaining-supplier"),
    )
    world.dcc.users.add(
        DccUser(
            NEW_SUPPLIER_EUI,
            "Supplier B",
            {"IS": UserStatus.ACTIVE},
            gaining_keys.keystore.public_key("ds"),
        )
    )
    gaining = Party("Supplier B", NEW_SUPPLIER_EUI, "IS", gaining_keys.keystore, losing.devices)

    # The change-of-supplier date: registration data names B from today.
    world.clock.advance(dt.timedelta(days=1))
    cos_at = world.clock.now()
    for home in world.homes:
        world.dcc.inventory.register(Registration(home.mpan, "IS", NEW_SUPPLIER_EUI, cos_at))

    for home in world.homes:
        rid = gaining.next_request_id(home.esme.eui)
        response = world.dcc.submit(
            ServiceRequest(
                rid,
                NEW_SUPPLIER_EUI,
                "IS",
                "6.23",
                CommandVariant.NON_CRITICAL_TO_DEVICE,
                change_of_supplier_body(gaining_keys, operations.path(), home.mpan),
            )
        )
        if not response.ok or response.gbcs is None:
            report.cos_failures.append(f"{home.esme.eui}: {response.code.value} {response.detail}")
            continue
        try:
            outcome = read_response(world, response.gbcs, home.esme.eui, TRANS_COS_EUI).outcome
        except CredentialsRefused as exc:
            report.cos_failures.append(f"{home.esme.eui}: {exc}")
            continue
        if outcome is not None and all(o.status == StatusCode.SUCCESS for o in outcome.outcomes):
            report.cos_accepted += 1
        else:
            report.cos_failures.append(f"{home.esme.eui}: {outcome}")

    for home in world.homes:
        if gaining.read_import_registers(world.dcc, home.esme.eui).outcome is Outcome.DONE:
            report.gaining_reads_ok += 1
    if gaining.disable_supply(world.dcc, world.homes[0].esme.eui).outcome is Outcome.DONE:
        report.gaining_disable_ok += 1

    for home in world.homes:
        refused = losing.read_import_registers(world.dcc, home.esme.eui)
        code = refused.code.value
        report.losing_dcc_refusals[code] = report.losing_dcc_refusals.get(code, 0) + 1
        before = len(home.esme.security_log)
        wire = insider_critical_command(world, losing, losing.keystore, home.esme.eui)
        answer = world.wan.deliver(home.hub.eui, wire)
        dropped = home.esme.security_log[before:]
        if answer is None and any(e.reason is DropReason.UNKNOWN_ORIGINATOR for e in dropped):
            report.losing_rejected_by_meter += 1
        elif answer is not None:
            report.losing_accepted_by_meter += 1

    now = world.clock.now()
    for home in world.homes:
        registered = world.dcc.inventory.registered_party(home.mpan, "IS", now)
        anchors = home.esme.anchors
        if (
            anchors is not None
            and registered == NEW_SUPPLIER_EUI
            and anchors.subject(CellRole.SUPPLIER) == NEW_SUPPLIER_EUI.value
        ):
            report.ownership_agrees += 1
    report.seconds = time.perf_counter() - started
    return report
