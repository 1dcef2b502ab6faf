"""The inventory and the user register kept in the DCC database.

Both load everything when opened and write each change through in its own transaction; reads
are served from memory. One DCC process owns its database, so the copy in memory is the truth
and a restart finds what was written.
"""

from __future__ import annotations

import datetime as dt
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import insert, select, update

from smarthydra.dcc.inventory import (
    DccUser,
    DeviceRecord,
    DeviceType,
    InventoryError,
    Registration,
    SmartMeteringInventory,
    SmiStatus,
    UserRegister,
    UserStatus,
)
from smarthydra.dcc.sealing import SealKeyMissing, is_sealed
from smarthydra.dcc.store import (
    SqlDccStore,
    dcc_users,
    device_logs,
    devices,
    registrations,
    user_roles,
)
from smarthydra.dcc.transform.device import HanBackup
from smarthydra.eui import Eui64

DEFAULT_REGION = "central"
# Where HAN backups live: part of the associated data that binds a sealed backup to its row.
HAN_BACKUP_COLUMN = "device_logs.han_backup"


def _pem(key: ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _key(pem: str) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InventoryError("a stored key is not an elliptic-curve public key")
    return key


def _backup_text(backup: HanBackup) -> str:
    return json.dumps(
        {
            "extended_pan_id": backup.extended_pan_id.hex(),
            "entries": [[eui.hex(), key.hex()] for eui, key in backup.entries],
        }
    )


def _backup(text: str) -> HanBackup:
    raw = json.loads(text)
    return HanBackup(
        bytes.fromhex(raw["extended_pan_id"]),
        tuple((bytes.fromhex(eui), bytes.fromhex(key)) for eui, key in raw["entries"]),
    )


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class SqlSmartMeteringInventory(SmartMeteringInventory):
    def __init__(self, store: SqlDccStore) -> None:
        super().__init__()
        self._store = store
        self._regions: dict[Eui64, str] = {}
        with store.engine.connect() as connection:
            for row in connection.execute(select(devices)).all():
                eui = Eui64.parse(row.eui)
                super().add_device(
                    DeviceRecord(
                        eui,
                        DeviceType(row.device_type),
                        Eui64.parse(row.hub),
                        row.mpxn,
                        _key(row.key_agreement_key),
                        SmiStatus(row.smi_status),
                        row.esme_variant or "A",
                        bytes.fromhex(row.key_agreement_certificate)
                        if row.key_agreement_certificate
                        else None,
                    )
                )
                self._regions[eui] = row.region
            for row in connection.execute(select(device_logs)).all():
                eui = Eui64.parse(row.eui)
                super().set_device_log(eui, tuple(Eui64.parse(e) for e in row.entries.split()))
                if row.han_backup:
                    super().record_han_backup(eui, _backup(self._open_backup(eui, row.han_backup)))
            for row in connection.execute(select(registrations).order_by(registrations.c.id)):
                super().register(
                    Registration(
                        row.mpxn, row.role, Eui64.parse(row.party), _utc(row.effective_from)
                    )
                )

    def add_device(self, record: DeviceRecord, region: str = DEFAULT_REGION) -> None:
        self.add_devices([record], region)

    def add_devices(self, records: list[DeviceRecord], region: str = DEFAULT_REGION) -> None:
        """Add several devices in one transaction (all or none)."""
        for record in records:
            if self.device(record.eui) is not None:
                raise InventoryError(f"device {record.eui} is already in the inventory")
        with self._store.transaction() as connection:
            for record in records:
                connection.execute(
                    insert(devices).values(
                        eui=str(record.eui),
                        device_type=record.device_type.value,
                        hub=str(record.hub),
                        mpxn=record.mpxn,
                        key_agreement_key=_pem(record.key_agreement_key),
                        smi_status=record.smi_status.value,
                        region=region,
                        esme_variant=record.esme_variant
                        if record.device_type is DeviceType.ESME
                        else None,
                        key_agreement_certificate=record.key_agreement_certificate.hex()
                        if record.key_agreement_certificate
                        else None,
                    )
                )
        for record in records:
            super().add_device(record)
            self._regions[record.eui] = region

    def region(self, eui: Eui64) -> str:
        return self._regions.get(eui, DEFAULT_REGION)

    def set_status(self, eui: Eui64, status: SmiStatus) -> None:
        super().set_status(eui, status)
        with self._store.transaction() as connection:
            connection.execute(
                update(devices).where(devices.c.eui == str(eui)).values(smi_status=status.value)
            )

    def set_device_log(self, eui: Eui64, entries: tuple[Eui64, ...]) -> None:
        super().set_device_log(eui, entries)
        self._save_device_log(eui)

    def record_han_backup(self, hub: Eui64, backup: HanBackup) -> None:
        super().record_han_backup(hub, backup)
        self._save_device_log(hub)

    def _open_backup(self, hub: Eui64, text: str) -> str:
        """A stored HAN backup's JSON: opened when sealed; as it is when written before sealing
        (the next save of the hub seals it, as every save writes with the current seal)."""
        seal = self._store.seal
        if seal is None:
            if is_sealed(text):
                raise SealKeyMissing(
                    f"the HAN backup of comms hub {hub} is sealed but no storage key is "
                    "configured: give the DCC its storage key file (dcc serve --storage-key FILE)"
                )
            return text
        return seal.unseal(text, column=HAN_BACKUP_COLUMN, row=str(hub)).value

    def _stored_backup(self, hub: Eui64, backup: HanBackup) -> str:
        text = _backup_text(backup)
        seal = self._store.seal
        return text if seal is None else seal.seal(text, column=HAN_BACKUP_COLUMN, row=str(hub))

    def _save_device_log(self, eui: Eui64) -> None:
        backup = self.han_backup(eui)
        values = {
            "entries": " ".join(str(e) for e in self.device_log(eui) or ()),
            "han_backup": None if backup is None else self._stored_backup(eui, backup),
        }
        with self._store.transaction() as connection:
            done = connection.execute(
                update(device_logs).where(device_logs.c.eui == str(eui)).values(**values)
            )
            if done.rowcount == 0:
                connection.execute(insert(device_logs).values(eui=str(eui), **values))

    def register(self, registration: Registration) -> None:
        super().register(registration)
        with self._store.transaction() as connection:
            connection.execute(
                insert(registrations).values(
                    mpxn=registration.mpxn,
                    role=registration.role,
                    party=str(registration.party),
                    effective_from=registration.effective_from,
                )
            )


class SqlUserRegister(UserRegister):
    def __init__(self, store: SqlDccStore) -> None:
        super().__init__()
        self._store = store
        self.endpoints: dict[Eui64, str] = {}
        with store.engine.connect() as connection:
            roles: dict[str, dict[str, UserStatus]] = {}
            for row in connection.execute(select(user_roles)).all():
                roles.setdefault(row.user_eui, {})[row.role] = UserStatus(row.status)
            for row in connection.execute(select(dcc_users)).all():
                eui = Eui64.parse(row.eui)
                super().add(
                    DccUser(
                        eui,
                        row.name,
                        roles.get(row.eui, {}),
                        _key(row.signing_key),
                        UserStatus(row.status),
                    )
                )
                if row.endpoint:
                    self.endpoints[eui] = row.endpoint

    def add(self, user: DccUser, endpoint: str | None = None) -> None:
        super().add(user)
        with self._store.transaction() as connection:
            connection.execute(
                insert(dcc_users).values(
                    eui=str(user.eui),
                    name=user.name,
                    status=user.status.value,
                    signing_key=_pem(user.signing_key),
                    endpoint=endpoint,
                )
            )
            for role, status in user.roles.items():
                connection.execute(
                    insert(user_roles).values(user_eui=str(user.eui), role=role, status=status.value)
                )
        if endpoint:
            self.endpoints[user.eui] = endpoint

    def set_status(self, eui: Eui64, status: UserStatus) -> None:
        user = self._require(eui)
        user.status = status
        with self._store.transaction() as connection:
            connection.execute(
                update(dcc_users).where(dcc_users.c.eui == str(eui)).values(status=status.value)
            )

    def set_endpoint(self, eui: Eui64, endpoint: str | None) -> None:
        self._require(eui)
        with self._store.transaction() as connection:
            connection.execute(
                update(dcc_users).where(dcc_users.c.eui == str(eui)).values(endpoint=endpoint)
            )
        if endpoint:
            self.endpoints[eui] = endpoint
        else:
            self.endpoints.pop(eui, None)

    def _require(self, eui: Eui64) -> DccUser:
        user = self.get(eui)
        if user is None:
            raise InventoryError(f"user {eui} is not registered")
        return user
