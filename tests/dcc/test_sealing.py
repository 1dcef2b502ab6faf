"""HAN backups (every joined device's link key) sealed at rest in the DCC database."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from typer.testing import CliRunner

from smarthydra.card.rng import DeterministicRandom
from smarthydra.cli.main import app
from smarthydra.dcc.persistent import HAN_BACKUP_COLUMN, SqlSmartMeteringInventory
from smarthydra.dcc.sealing import (
    KEY_SIZE,
    NONCE_SIZE,
    SEALED_PREFIX,
    ColumnSeal,
    Opened,
    SealBroken,
    SealKeyError,
    SealKeyMissing,
    is_sealed,
)
from smarthydra.dcc.store import SqlDccStore, device_logs
from smarthydra.dcc.transform.device import HanBackup
from smarthydra.eui import Eui64
from tests.conftest import conformance_path

HUB = Eui64.parse("00-DB-00-00-00-00-B2-01")
OTHER_HUB = Eui64.parse("00-DB-00-00-00-00-B2-02")
ESME = Eui64.parse("00-DB-00-00-00-00-E1-01")
GSME = Eui64.parse("00-DB-00-00-00-00-63-01")
LINK_KEYS = (bytes.fromhex("5A1C0FFEE0DDBA11C0DEFACE8BADF00D"), bytes.fromhex("D15EA5E0B16B00B5CAFEBABE12345678"))
BACKUP = HanBackup(
    bytes.fromhex("00DB00000000A001"),
    ((ESME.value, LINK_KEYS[0]), (GSME.value, LINK_KEYS[1])),
)
KEY = bytes(range(32))
runner = CliRunner()


def _seal(key: bytes = KEY) -> ColumnSeal:
    return ColumnSeal(key, DeterministicRandom(b"sealing-tests"))


def _stored(store: SqlDccStore, hub: Eui64) -> str:
    with store.engine.connect() as connection:
        value = connection.execute(
            select(device_logs.c.han_backup).where(device_logs.c.eui == str(hub))
        ).scalar_one()
    assert isinstance(value, str)
    return value


def _key_file(folder: Path, content: bytes, mode: int = 0o600) -> Path:
    path = folder / "storage.key"
    path.write_bytes(content)
    path.chmod(mode)
    return path


# --- ColumnSeal -------------------------------------------------------------------------------


def test_round_trip_and_stored_form() -> None:
    seal = _seal()
    sealed = seal.seal("link keys", column="t.c", row="r1")
    assert sealed.startswith(SEALED_PREFIX)
    assert seal.unseal(sealed, column="t.c", row="r1") == Opened("link keys", was_sealed=True)
    # The documented form, checked with AESGCM directly: base64(nonce || ciphertext || tag)
    # with the nonce drawn from the injected source and "column:row" as associated data.
    raw = base64.b64decode(sealed[len(SEALED_PREFIX) :])
    nonce = DeterministicRandom(b"sealing-tests").random_bytes(NONCE_SIZE)
    assert raw[:NONCE_SIZE] == nonce
    assert AESGCM(KEY).decrypt(nonce, raw[NONCE_SIZE:], b"t.c:r1") == b"link keys"


def test_each_seal_draws_a_fresh_nonce() -> None:
    seal = ColumnSeal(KEY)
    assert seal.seal("x", column="t.c", row="r") != seal.seal("x", column="t.c", row="r")


def test_unsealed_value_is_returned_as_it_is_and_says_so() -> None:
    assert _seal().unseal('{"a": 1}', column="t.c", row="r") == Opened('{"a": 1}', was_sealed=False)
    assert not is_sealed('{"a": 1}')


def test_tampered_ciphertext_is_broken() -> None:
    seal = _seal()
    sealed = seal.seal("link keys", column="t.c", row="r1")
    raw = bytearray(base64.b64decode(sealed[len(SEALED_PREFIX) :]))
    raw[NONCE_SIZE + 2] ^= 0x01
    with pytest.raises(SealBroken, match="does not open"):
        seal.unseal(SEALED_PREFIX + base64.b64encode(bytes(raw)).decode(), column="t.c", row="r1")


def test_wrong_row_wrong_column_and_wrong_key_are_broken() -> None:
    sealed = _seal().seal("link keys", column="t.c", row="r1")
    with pytest.raises(SealBroken, match="row r2"):
        _seal().unseal(sealed, column="t.c", row="r2")
    with pytest.raises(SealBroken):
        _seal().unseal(sealed, column="t.other", row="r1")
    with pytest.raises(SealBroken):
        _seal(bytes(32)).unseal(sealed, column="t.c", row="r1")


@pytest.mark.parametrize("body", ["!!!not base64", "", base64.b64encode(bytes(27)).decode()])
def test_malformed_sealed_values_are_broken(body: str) -> None:
    with pytest.raises(SealBroken):
        _seal().unseal(SEALED_PREFIX + body, column="t.c", row="r")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_any_sealed_looking_garbage_is_broken_never_garbage(body: str) -> None:
    with pytest.raises(SealBroken):
        _seal().unseal(SEALED_PREFIX + body, column="t.c", row="r")


def test_key_size_is_checked() -> None:
    with pytest.raises(SealKeyError, match="32 bytes"):
        ColumnSeal(bytes(16))


def test_repr_hides_the_key() -> None:
    assert KEY.hex() not in repr(_seal())


# --- key files --------------------------------------------------------------------------------


def test_created_key_file_is_private_loads_and_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "storage.key"
    created = ColumnSeal.create_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    sealed = created.seal("v", column="t.c", row="r")
    assert ColumnSeal.from_file(path).unseal(sealed, column="t.c", row="r").value == "v"
    before = path.read_bytes()
    with pytest.raises(SealKeyError, match="refusing to overwrite"):
        ColumnSeal.create_file(path)
    assert path.read_bytes() == before


def test_key_file_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        ColumnSeal.create_file(tmp_path / "k")
    finally:
        os.umask(old)
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content", [KEY, KEY.hex().encode(), KEY.hex().upper().encode() + b"\n"])
def test_key_file_hex_or_raw(tmp_path: Path, content: bytes) -> None:
    sealed = _seal().seal("v", column="t.c", row="r")
    loaded = ColumnSeal.from_file(_key_file(tmp_path, content))
    assert loaded.unseal(sealed, column="t.c", row="r").value == "v"


@pytest.mark.parametrize(
    "content", [bytes(16), bytes(33), KEY.hex()[:-2].encode(), b"zz" * 32, b""]
)
def test_key_file_of_the_wrong_size_is_refused(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(SealKeyError, match="32 raw bytes or 64 hex digits"):
        ColumnSeal.from_file(_key_file(tmp_path, content))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644])
def test_group_or_world_accessible_key_file_is_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(SealKeyError, match="chmod 600"):
        ColumnSeal.from_file(_key_file(tmp_path, KEY.hex().encode(), mode))


def test_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SealKeyError, match="cannot read"):
        ColumnSeal.from_file(tmp_path / "absent.key")
    with pytest.raises(SealKeyError, match="not a regular file"):
        ColumnSeal.from_file(tmp_path)


# --- the inventory's HAN backups --------------------------------------------------------------


def test_sealed_backup_round_trips_through_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    inventory = SqlSmartMeteringInventory(SqlDccStore(url, seal=_seal()))
    inventory.record_han_backup(HUB, BACKUP)
    inventory.set_device_log(HUB, (ESME, GSME))
    store = SqlDccStore(url, seal=_seal())
    assert is_sealed(_stored(store, HUB))
    again = SqlSmartMeteringInventory(store)
    assert again.han_backup(HUB) == BACKUP
    assert again.device_log(HUB) == (ESME, GSME)


def test_sealed_database_file_holds_no_link_key(tmp_path: Path) -> None:
    database = tmp_path / "dcc.sqlite3"
    store = SqlDccStore(f"sqlite:///{database}", seal=_seal())
    inventory = SqlSmartMeteringInventory(store)
    inventory.record_han_backup(HUB, BACKUP)
    inventory.record_han_backup(OTHER_HUB, BACKUP)
    files = [p for p in tmp_path.iterdir() if p.name.startswith(database.name)]
    assert database in files
    content = b"".join(p.read_bytes() for p in files)  # the database, its -wal and -shm
    for key in LINK_KEYS:
        for form in (key, key.hex().encode(), key.hex().upper().encode()):
            assert form not in content
    assert b"extended_pan_id" not in content
    # Without a seal the same writes do leave the keys in the file: the check can fail.
    plain_folder = tmp_path / "plain"
    plain_folder.mkdir()
    plain = SqlSmartMeteringInventory(SqlDccStore(f"sqlite:///{plain_folder / 'dcc.sqlite3'}"))
    plain.record_han_backup(HUB, BACKUP)
    plain_content = b"".join(p.read_bytes() for p in plain_folder.iterdir())
    assert LINK_KEYS[0].hex().encode() in plain_content


def test_legacy_plaintext_loads_and_is_sealed_on_the_next_save(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    SqlSmartMeteringInventory(SqlDccStore(url)).record_han_backup(HUB, BACKUP)
    store = SqlDccStore(url, seal=_seal())
    assert not is_sealed(_stored(store, HUB))
    inventory = SqlSmartMeteringInventory(store)
    assert inventory.han_backup(HUB) == BACKUP
    assert not is_sealed(_stored(store, HUB))  # loading alone writes nothing
    inventory.set_device_log(HUB, (ESME,))  # any save of the hub's row
    assert is_sealed(_stored(store, HUB))
    assert SqlSmartMeteringInventory(SqlDccStore(url, seal=_seal())).han_backup(HUB) == BACKUP


def test_without_a_seal_backups_are_stored_as_before(tmp_path: Path) -> None:
    store = SqlDccStore(f"sqlite:///{tmp_path / 'dcc.sqlite3'}")
    assert store.seal is None
    SqlSmartMeteringInventory(store).record_han_backup(HUB, BACKUP)
    assert _stored(store, HUB).startswith('{"extended_pan_id": "00db00000000a001"')


def test_sealed_database_opened_without_the_key_fails_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    SqlSmartMeteringInventory(SqlDccStore(url, seal=_seal())).record_han_backup(HUB, BACKUP)
    with pytest.raises(SealKeyMissing, match=f"comms hub {HUB} .*--storage-key"):
        SqlSmartMeteringInventory(SqlDccStore(url))
    with pytest.raises(SealBroken):
        SqlSmartMeteringInventory(SqlDccStore(url, seal=_seal(bytes(32))))


def test_backup_moved_to_another_hub_row_does_not_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    store = SqlDccStore(url, seal=_seal())
    inventory = SqlSmartMeteringInventory(store)
    inventory.record_han_backup(HUB, BACKUP)
    inventory.record_han_backup(OTHER_HUB, HanBackup(bytes(8), ()))
    with store.transaction() as connection:
        connection.execute(
            update(device_logs)
            .where(device_logs.c.eui == str(OTHER_HUB))
            .values(han_backup=_stored(store, HUB))
        )
    with pytest.raises(SealBroken, match=f"{HAN_BACKUP_COLUMN} of row {OTHER_HUB}"):
        SqlSmartMeteringInventory(SqlDccStore(url, seal=_seal()))


@pytest.mark.postgres
def test_sealed_backup_round_trips_on_postgresql(postgres_url: str) -> None:
    SqlSmartMeteringInventory(SqlDccStore(postgres_url, seal=_seal())).record_han_backup(HUB, BACKUP)
    store = SqlDccStore(postgres_url, seal=_seal())
    assert is_sealed(_stored(store, HUB))
    assert SqlSmartMeteringInventory(store).han_backup(HUB) == BACKUP


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_storage_key_new_creates_a_private_key_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "storage.key"
    result = runner.invoke(app, ["dcc", "storage-key", "new", str(path)])
    assert result.exit_code == 0, result.output
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(bytes.fromhex(path.read_text().strip())) == KEY_SIZE
    again = runner.invoke(app, ["dcc", "storage-key", "new", str(path)])
    assert again.exit_code == 2
    assert "refusing to overwrite" in again.output
    assert again.exception is None or isinstance(again.exception, SystemExit)


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [(KEY.hex().encode(), 0o644, "chmod 600"), (bytes(10), 0o600, "64 hex digits")],
)
def test_cli_serve_refuses_a_bad_key_file(
    tmp_path: Path, content: bytes, mode: int, message: str
) -> None:
    path = _key_file(tmp_path, content, mode)
    result = runner.invoke(app, ["dcc", "serve", "--insecure-http", "--storage-key", str(path)])
    assert result.exit_code == 2
    assert message in result.output
    assert isinstance(result.exception, SystemExit)


def test_cli_serve_refuses_a_storage_key_with_the_sim_profile(tmp_path: Path) -> None:
    path = tmp_path / "storage.key"
    ColumnSeal.create_file(path)
    result = runner.invoke(
        app, ["dcc", "serve", "--insecure-http", "--profile", "sim", "--storage-key", str(path)]
    )
    assert result.exit_code == 2
    assert "dccboxed" in result.output


def test_cli_serve_dccboxed_on_a_sealed_database_without_the_key_fails(tmp_path: Path) -> None:
    conformance = conformance_path()
    database = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    key = tmp_path / "storage.key"
    assert runner.invoke(app, ["dcc", "storage-key", "new", str(key)]).exit_code == 0
    SqlSmartMeteringInventory(
        SqlDccStore(database, seal=ColumnSeal.from_file(key))
    ).record_han_backup(HUB, BACKUP)
    result = runner.invoke(
        app,
        ["dcc", "serve", "--insecure-http", "--profile", "dccboxed",
         "--conformance", str(conformance), "--database", database],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "sealed but no storage key is configured" in result.output
    assert isinstance(result.exception, SystemExit)


def test_build_dccboxed_with_a_seal_keeps_backups_sealed(tmp_path: Path) -> None:
    from smarthydra.dcc.dccboxed import build_dccboxed

    database = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    profile = build_dccboxed(conformance_path(), database, seal=_seal())
    assert profile.store.seal is not None
    profile.dcc.inventory.record_han_backup(HUB, BACKUP)
    assert is_sealed(_stored(profile.store, HUB))
    again = build_dccboxed(conformance_path(), database, seal=_seal())
    assert again.dcc.inventory.han_backup(HUB) == BACKUP
