"""Recovery drills: a compromised supplier key, a compromised root, and a compromised SMKI.

1. **Supplier key compromised.** The attacker holds Supplier A's signing key. The SMKI
   revokes A's DS certificate and publishes a CRL; the DCC adopts it and refuses A's requests
   (E1). A gets new keys and certificates; the DCC's recovery party signs a CS02b
   anyExceptAbnormalRootByRecovery replacing A's supplier cells in every meter. Afterwards A's
   new key works through the DCC, and the attacker's commands signed with the old key (MAC'd
   by a corrupt insider) are dropped by the meters themselves.
2. **Root compromised.** A new root and organisation CA are made; every organisation
   certificate is re-issued under them; the contingency key (unwrapped on the device by the
   symmetric key the command reveals) signs a CS02b anyByContingency that replaces the root
   cell and every other cell. Afterwards the meters refuse certificates from the old root.
3. **Beyond GB: dual certification.** The attacker controls the SMKI itself: its root, its
   organisation CA and the contingency key. On meters with only GB's defences it installs its
   own supplier key; on meters that also hold an independent root it is refused, while the
   genuine operators (who hold both CAs) still recover the meters.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from smarthydra.crypto.keystore import Keystore, KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.duis.codes import ResponseCode
from smarthydra.eui import Eui64
from smarthydra.parties.party import Outcome
from smarthydra.pki.certificates import OrganisationCertificate
from smarthydra.pki.credentials import (
    ROOT_CELL,
    CellId,
    CredentialsReplacementMode,
    StatusCode,
)
from smarthydra.pki.hierarchy import CaHierarchy
from smarthydra.pki.profile import SmkiRole
from smarthydra.premises.esme import DropReason
from smarthydra.sim.scenarios.cos import (
    KeystoresFor,
    in_memory_scenario_keystores,
    insider_critical_command,
)
from smarthydra.sim.scenarios.smki import (
    CONTINGENCY_EUI,
    RECOVERY_EUI,
    CredentialsRefused,
    DccSecurityOperations,
    OrganisationKeys,
    enable_smki,
    issue_organisation_keys,
    read_response,
    replace_user_key,
)
from smarthydra.sim.world import START, SUPPLIER_EUI, KeystoreFactory, World, build_world

Mode = CredentialsReplacementMode


@dataclass
class DrillReport:
    name: str
    homes: int
    steps: dict[str, object] = field(default_factory=dict)
    ok: bool = False


@dataclass
class RecoveryReport:
    drills: list[DrillReport]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.drills)

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "seconds": self.seconds, "drills": [asdict(d) for d in self.drills]}


def _smki_world(
    name: str,
    homes: int,
    conformance: Path | None,
    keystores_for: KeystoresFor,
    *,
    independent_root: bool = False,
) -> tuple[KeystoreFactory, World, DccSecurityOperations]:
    """A drill's world with SMKI enabled, its keys in the keystores named ``name``."""
    keystores = keystores_for(name)
    world = build_world(homes, conformance=conformance, keystores=keystores)
    return keystores, world, enable_smki(world, independent_root=independent_root)


def _all_success(world: World, wire: bytes | None, home_eui: Eui64, recipient: Eui64) -> bool:
    try:
        outcome = read_response(world, wire, home_eui, recipient).outcome
    except CredentialsRefused:
        return False
    return outcome is not None and all(o.status == StatusCode.SUCCESS for o in outcome.outcomes)


def drill_supplier_key(
    homes: int = 2,
    *,
    conformance: Path | None = None,
    keystores_for: KeystoresFor = in_memory_scenario_keystores,
) -> DrillReport:
    keystores, world, operations = _smki_world("supplier-key", homes, conformance, keystores_for)
    report = DrillReport("compromised supplier key replaced by recovery", homes)
    supplier = world.supplier
    stolen = supplier.keystore  # the attacker's copy of the old keys

    # Revocation: the SMKI revokes the DS certificate, the DCC adopts the signed CRL.
    old_ds = [
        c for c in world.repository.by_eui64(SUPPLIER_EUI.value, usage=KeyUsage.DIGITAL_SIGNATURE)
    ]
    for certificate in old_ds:
        world.repository.revoke(certificate.serial, world.clock.now())
    crl = world.repository.crl(
        world.smki.organisation_signer(),
        world.clock.now(),
        world.clock.now() + dt.timedelta(days=7),
    )
    report.steps["crl_revoked_serials"] = operations.revocation.refresh(
        crl, world.smki.organisation_ca
    )
    refused = supplier.read_import_registers(world.dcc, world.homes[0].esme.eui)
    report.steps["dcc_refuses_revoked_supplier"] = refused.code.value

    # New keys and certificates; the DCC learns the new signing key.
    new_keys = issue_organisation_keys(
        world.smki,
        world.repository,
        SUPPLIER_EUI,
        SmkiRole.SUPPLIER,
        ("ds", "ka", "pp-ka"),
        keystore=keystores("supplier-new"),
    )
    replace_user_key(world, SUPPLIER_EUI, new_keys.keystore)
    supplier.keystore = new_keys.keystore

    accepted = 0
    for home in world.homes:
        wire = operations.replace_by_recovery(home.esme.eui, _replacements(new_keys))
        if _all_success(world, wire, home.esme.eui, RECOVERY_EUI):
            accepted += 1
    report.steps["meters_recovered"] = accepted

    reads = sum(
        supplier.read_import_registers(world.dcc, h.esme.eui).outcome is Outcome.DONE
        for h in world.homes
    )
    report.steps["supplier_reads_with_new_key"] = reads
    disabled = supplier.disable_supply(world.dcc, world.homes[0].esme.eui)
    report.steps["supplier_disable_with_new_key"] = disabled.outcome.value

    rejected = 0
    for home in world.homes:
        before = len(home.esme.security_log)
        wire = insider_critical_command(world, supplier, stolen, home.esme.eui)
        answer = world.wan.deliver(home.hub.eui, wire)
        if answer is None and any(
            e.reason is DropReason.SIGNATURE_INVALID for e in home.esme.security_log[before:]
        ):
            rejected += 1
    report.steps["attacker_old_key_rejected_by_meters"] = rejected
    report.ok = (
        refused.code is ResponseCode.USER_NOT_AUTHORISED
        and accepted == homes
        and reads == homes
        and disabled.outcome is Outcome.DONE
        and rejected == homes
    )
    return report


def _replacements(keys: OrganisationKeys) -> list[tuple[CellId, bytes]]:
    return [(cell, certificate.der) for cell, certificate in keys.replacements()]


def reissue_all(
    world: World, hierarchy: CaHierarchy
) -> list[tuple[CellId, OrganisationCertificate]]:
    """Every organisation certificate a meter anchors, re-issued (same keys) by ``hierarchy``."""
    out: list[tuple[CellId, OrganisationCertificate]] = []
    for home in world.homes[:1]:
        anchors = home.esme.anchors
        assert anchors is not None
        for cell_id, cell in sorted(anchors.cells.items(), key=lambda kv: kv[0].key):
            if cell_id == ROOT_CELL:
                continue
            usage = (
                KeyUsage.DIGITAL_SIGNATURE
                if cell_id.key_usage.value == "digital_signature"
                else KeyUsage.KEY_AGREEMENT
            )
            certificate = hierarchy.issue_organisation(
                subject_public_key=cell.public_key,
                role=cell_id.role,
                eui64=cell.subject,
                usage=usage,
                not_before=START,
                not_after=START + dt.timedelta(days=3650),
            )
            world.repository.publish(certificate)
            out.append((cell_id, certificate))
    return out


def _new_hierarchy(
    name: str, prefix: str, org_name: str, keystore: Keystore | None = None
) -> CaHierarchy:
    return CaHierarchy.create(
        keystore if keystore is not None else SoftKeystore(None, passphrase=prefix.encode()),
        not_before=START,
        not_after=START + dt.timedelta(days=36500),
        device_ca_capacity=4,
        label_prefix=prefix,
        root_name=name,
        organisation_ca_name=org_name,
    )


def _contingency_replacements(
    new_root_der: bytes, reissued: list[tuple[CellId, OrganisationCertificate]]
) -> list[tuple[CellId, bytes]]:
    return [(ROOT_CELL, new_root_der), *[(c, cert.der) for c, cert in reissued]]


def drill_root(
    homes: int = 2,
    *,
    conformance: Path | None = None,
    keystores_for: KeystoresFor = in_memory_scenario_keystores,
) -> DrillReport:
    keystores, world, operations = _smki_world("root", homes, conformance, keystores_for)
    report = DrillReport("compromised root replaced by contingency", homes)
    old_smki = world.smki
    new_smki = _new_hierarchy("ROOT2", "smki2", "Z2", keystores("smki-new"))
    for ca in new_smki.ca_certificates:
        world.repository.publish(ca)
    reissued = reissue_all(world, new_smki)
    accepted = 0
    for home in world.homes:
        wire = operations.replace_by_contingency(
            home.esme.eui,
            _contingency_replacements(new_smki.root.der, reissued),
            path=(new_smki.organisation_ca.der,),
        )
        if _all_success(world, wire, home.esme.eui, CONTINGENCY_EUI):
            accepted += 1
    report.steps["meters_on_new_root"] = accepted
    world.smki = new_smki  # the DCC's SMKI from now on

    reads = sum(
        world.supplier.read_import_registers(world.dcc, h.esme.eui).outcome is Outcome.DONE
        for h in world.homes
    )
    report.steps["supplier_reads_after"] = reads

    # A supplier certificate from the old (compromised) root no longer becomes an anchor.
    forged = issue_organisation_keys(
        old_smki, world.repository, SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ds",)
    )
    refused = 0
    for home in world.homes:
        wire = operations.replace_by_recovery(
            home.esme.eui,
            [(cell, c.der) for cell, c in forged.replacements()],
            path=(old_smki.organisation_ca.der,),
        )
        outcome = read_response(world, wire, home.esme.eui, RECOVERY_EUI).outcome
        if outcome is not None and outcome.outcomes[0].status == StatusCode.NO_TRUST_ANCHOR:
            refused += 1
    report.steps["old_root_certificates_refused"] = refused
    report.ok = accepted == homes and reads == homes and refused == homes
    return report


def drill_compromised_smki(
    homes: int = 2,
    *,
    conformance: Path | None = None,
    keystores_for: KeystoresFor = in_memory_scenario_keystores,
) -> DrillReport:
    """The SMKI operator is compromised (root, organisation CA, contingency key)."""
    report = DrillReport("compromised SMKI vs dual certification (beyond GB)", homes)
    results: dict[str, object] = {}
    for dual in (False, True):
        keystores, world, operations = _smki_world(
            "smki-dual" if dual else "smki-gb", homes, conformance, keystores_for,
            independent_root=dual)
        attacker = issue_organisation_keys(
            world.smki, world.repository, SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ds", "ka")
        )
        taken = 0
        for home in world.homes:
            wire = operations.replace_by_contingency(
                home.esme.eui,
                [(cell, c.der) for cell, c in attacker.replacements()],
                path=(world.smki.organisation_ca.der,),
            )
            if _all_success(world, wire, home.esme.eui, CONTINGENCY_EUI):
                taken += 1
        results["meters_taken_over_dual" if dual else "meters_taken_over_gb_only"] = taken
        if dual:
            results["genuine_recovery_with_both_cas"] = _genuine_dual_recovery(
                world, operations, keystores("smki-new")
            )
    report.steps = results
    report.ok = (
        results["meters_taken_over_gb_only"] == homes
        and results["meters_taken_over_dual"] == 0
        and results["genuine_recovery_with_both_cas"] == homes
    )
    return report


def _genuine_dual_recovery(
    world: World, operations: DccSecurityOperations, keystore: Keystore
) -> int:
    """Replace the root under dual certification: new root cross-certified by the
    independent root, every anchor re-issued by both the new and the independent CA."""
    independent = operations.independent
    assert independent is not None
    new_smki = _new_hierarchy("ROOT3", "smki3", "Z3", keystore)
    cross = independent.certify_ca(
        subject_name_der=new_smki.root.subject_der,
        subject_public_key=new_smki.root.public_key,
        not_before=START,
    )
    reissued = reissue_all(world, new_smki)
    vouched = reissue_all(world, independent)
    path = (
        new_smki.organisation_ca.der,
        independent.organisation_ca.der,
        cross.der,
        *[c.der for _, c in vouched],
    )
    recovered = 0
    for home in world.homes:
        wire = operations.replace_by_contingency(
            home.esme.eui, _contingency_replacements(new_smki.root.der, reissued), path=path
        )
        if _all_success(world, wire, home.esme.eui, CONTINGENCY_EUI):
            recovered += 1
    return recovered


def run_recovery(
    homes: int = 2,
    *,
    conformance: Path | None = None,
    keystores_for: KeystoresFor = in_memory_scenario_keystores,
) -> RecoveryReport:
    """The three drills; ``keystores_for`` as for :func:`~smarthydra.sim.scenarios.cos.run_cos`
    (each drill's world gets its own SoftHSM2 tokens)."""
    started = time.perf_counter()
    drills = [
        drill_supplier_key(homes, conformance=conformance, keystores_for=keystores_for),
        drill_root(homes, conformance=conformance, keystores_for=keystores_for),
        drill_compromised_smki(homes, conformance=conformance, keystores_for=keystores_for),
    ]
    return RecoveryReport(drills, time.perf_counter() - started)


__all__ = [
    "DrillReport",
    "RecoveryReport",
    "drill_compromised_smki",
    "drill_root",
    "drill_supplier_key",
    "reissue_all",
    "run_recovery",
]
