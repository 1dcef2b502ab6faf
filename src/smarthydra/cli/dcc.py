"""``smarthydra dcc``: run the DCC's DUIS gateway; audit, quarantine and thresholds by operators."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer

from smarthydra.dcc.gateway import DccGateway, DuisFront, GatewayConfigError, serve
from smarthydra.dcc.operators import OperatorError, OperatorRegistry
from smarthydra.dcc.sealing import ColumnSeal, SealError
from smarthydra.dcc.store import SqlDccStore, StoreError
from smarthydra.eui import Eui64, InvalidEui64

app = typer.Typer(no_args_is_help=True, help="The DCC: DUIS over HTTPS with mutual TLS.")
audit_app = typer.Typer(no_args_is_help=True, help="The DCC's hash-chained audit log.")
quarantine_app = typer.Typer(no_args_is_help=True, help="Requests held by anomaly detection.")
thresholds_app = typer.Typer(no_args_is_help=True, help="Anomaly detection threshold files.")
storage_key_app = typer.Typer(
    no_args_is_help=True, help="The key that seals secrets (HAN link keys) in the DCC database."
)
app.add_typer(audit_app, name="audit")
app.add_typer(storage_key_app, name="storage-key")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(thresholds_app, name="thresholds")
operators_app = typer.Typer(
    no_args_is_help=True, help="Named operator accounts for the operator API and web console."
)
app.add_typer(operators_app, name="operators")

DATABASE_HELP = "SQLAlchemy URL of the DCC database (sqlite:///FILE or postgresql://...)"


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _store(database: str) -> SqlDccStore:
    try:
        return SqlDccStore(database)
    except Exception as exc:  # any driver or migration failure: one clear line, not a trace
        _fail(f"cannot open the DCC database {database}: {exc}")


def _background(
    gateway: DccGateway, interval: float, endpoints: Callable[[str], str | None]
) -> None:
    """Dispatch, WAN carriage and delivery to users' endpoints, every ``interval`` seconds."""
    from smarthydra.dcc.delivery import DeliveryWorker, http_post

    store = gateway.dcc.store
    assert store is not None
    worker = DeliveryWorker(
        store, gateway.dcc.clock, endpoints, gateway.render, http_post(verify=False)
    )
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                gateway.work()
                worker.run_once()
            except Exception as exc:  # keep serving; the next round retries
                typer.echo(f"background work failed: {exc}", err=True)

    threading.Thread(target=loop, name="dcc-background", daemon=True).start()


@app.command("serve")
def serve_command(
    homes: int = typer.Option(10, min=1, help="homes to commission behind the DCC (sim profile)"),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8443, min=1, max=65535),
    cert: Path | None = typer.Option(None, help="server certificate (PEM)"),
    key: Path | None = typer.Option(None, help="server private key (PEM)"),
    ca: Path | None = typer.Option(None, help="CA that issues DCC users' client certificates"),
    insecure_http: bool = typer.Option(
        False, "--insecure-http", help="plain HTTP, for local tests"
    ),
    database: str = typer.Option("sqlite://", help=DATABASE_HELP),
    profile: str = typer.Option("sim", help="sim (a simulated fleet) or dccboxed"),
    conformance: Path | None = typer.Option(
        None, help="conformance data folder (smki/, gbcs/rtds-keystore/, duis/) for dccboxed"
    ),
    work_interval: float = typer.Option(
        1.0, min=0.01, help="seconds between rounds of dispatch and delivery (dccboxed)"
    ),
    endpoint: list[str] = typer.Option(
        [], help="EUI=URL: where a user's responses and alerts are POSTed (repeatable)"
    ),
    revoked: list[int] = typer.Option([], help="serial of a revoked certificate (repeatable)"),
    deferred_dispatch: bool = typer.Option(
        False,
        "--deferred-dispatch",
        help="acknowledge (I99) first and MAC and queue for the WAN in the background round, "
        "instead of in the transaction that accepts the request (dccboxed)",
    ),
    tie_tls_identity: bool = typer.Option(
        False,
        "--tie-tls-identity",
        help="refuse (E1) a request whose XML signer is not the user named by the TLS client "
        "certificate's EUI-64 (x500UniqueIdentifier); with --insecure-http, by the X-DUIS-User "
        "header (dccboxed; DCC Boxed's own TLS certificates name no user)",
    ),
    sqlite_synchronous: str = typer.Option(
        "NORMAL",
        help="SQLite durability: NORMAL survives the process being killed, FULL also power loss",
    ),
    wan_coverage: Path | None = typer.Option(
        None, help="the CSPs' SM WAN coverage CSV, for 12.1 Request WAN Matrix (dccboxed)"
    ),
    workers: int = typer.Option(
        0,
        min=0,
        max=64,
        help="worker processes for XML parsing, signature checks and response signing "
        "(0: in the server's process; dccboxed)",
    ),
    operator_token_env: str = typer.Option(
        "SMARTHYDRA_OPERATOR_TOKEN",
        help="environment variable holding the shared operator token for the operator API and "
        "the web console at /console (unset: open only to accounts from `dcc operators add`)",
    ),
    storage_key: Path | None = typer.Option(
        None,
        help="key file (dcc storage-key new) sealing HAN link keys in the database (dccboxed)",
    ),
) -> None:
    """Serve /api/v1/serviceS, serviceT, serviceN (and /api/v1/responses to poll)."""
    try:
        seal = None if storage_key is None else ColumnSeal.from_file(storage_key)
        if profile == "dccboxed":
            from smarthydra.dcc.dccboxed import build_dccboxed

            if conformance is None:
                _fail("the dccboxed profile needs --conformance DIR")
            built = build_dccboxed(
                conformance,
                database,
                revoked=revoked,
                sqlite_synchronous=sqlite_synchronous.upper(),
                front_door_processes=workers,
                seal=seal,
                tie_tls_identity=tie_tls_identity,
            )
            built.dcc.dispatch_on_accept = not deferred_dispatch
            if wan_coverage is not None:
                from smarthydra.wan.coverage import CoverageFileError, WanCoverage

                try:
                    built.dcc.wan_coverage = WanCoverage.load(wan_coverage)
                except CoverageFileError as exc:
                    _fail(f"--wan-coverage: {exc}")
            gateway = built.gateway
            gateway.operator_token = os.environ.get(operator_token_env) or None
            for item in endpoint:
                eui_text, sep, url = item.partition("=")
                try:
                    eui = Eui64.parse(eui_text)
                except InvalidEui64 as exc:
                    _fail(f"--endpoint {item!r}: {exc}")
                if not sep or not url:
                    _fail(f"--endpoint {item!r} is not EUI=URL")
                built.users.set_endpoint(eui, url)
            users = built.users
            _background(gateway, work_interval, lambda user: users.endpoints.get(Eui64.parse(user)))
        elif profile == "sim":
            if seal is not None:
                _fail("--storage-key is for the dccboxed profile: sim keeps its inventory in memory")
            from smarthydra.sim.gateway import gateway_for_world
            from smarthydra.sim.world import build_world

            world = build_world(homes, database_url=database)
            gateway, _ = gateway_for_world(world)
        else:
            _fail(f"unknown profile {profile!r}: sim or dccboxed")
        if gateway.operators is None and gateway.dcc.store is not None:
            gateway.operators = OperatorRegistry(
                gateway.dcc.store, audit=gateway.dcc.audit, clock=gateway.dcc.clock
            )
        extend = None
        # The operator console, beside the operator API: for the shared token or for accounts
        # (it stays closed, 404, while neither can log in).
        if gateway.operator_token or gateway.operators is not None:

            def extend(front: DuisFront) -> None:
                from smarthydra.console.app import mount_console

                mount_console(front, gateway)

        serve(gateway, host, port, cert, key, ca, insecure_http, extend=extend)
    except (GatewayConfigError, StoreError, SealError) as exc:
        _fail(str(exc))


@storage_key_app.command("new")
def storage_key_new(
    file: Path = typer.Argument(..., help="where to write the new key (mode 0600; never overwritten)"),
) -> None:
    """Create a random 32-byte storage key file for ``dcc serve --storage-key``."""
    try:
        ColumnSeal.create_file(file)
    except SealError as exc:
        _fail(str(exc))
    typer.echo(f"storage key written to {file} (keep a copy: sealed data is lost without it)")


@audit_app.command("verify")
def audit_verify(database: str = typer.Option(..., help=DATABASE_HELP)) -> None:
    """Check the audit chain end to end; exit 1 if any record was edited, removed or reordered."""
    count, problem = _store(database).verify_audit()
    if problem is not None:
        _fail(f"audit log tampered: {problem} ({count} records read)", code=1)
    typer.echo(f"audit log intact: {count} records")


@quarantine_app.command("list")
def quarantine_list(
    database: str = typer.Option(..., help=DATABASE_HELP),
    all_states: bool = typer.Option(False, "--all", help="include released and deleted"),
) -> None:
    """The held requests: ticket, user, SRV, RequestID, when and why."""
    rows = _store(database).quarantined(None if all_states else "held")
    for row in rows:
        typer.echo(
            f"{row.ticket}\t{row.state}\t{row.user}\t{row.srv}\t{row.request_id}\t"
            f"{row.held_at.isoformat()}\t{row.reason}"
        )
    if not rows:
        typer.echo("no requests in quarantine")


def _close(database: str, ticket: int, operator: str, release: bool, token_env: str) -> None:
    from smarthydra.clock import SystemClock
    from smarthydra.dcc.audit import AuditLog

    store = _store(database)
    actor = _quarantine_actor(store, operator, token_env)
    try:
        row = store.close_quarantine(ticket, actor, release=release)
    except StoreError as exc:
        _fail(str(exc))
    log = AuditLog(store.load_audit(), sink=store.append_audit, resync=store.load_audit)
    log.append(
        SystemClock().now(),
        actor,
        "quarantine released" if release else "quarantine deleted",
        ticket=ticket,
        request_id=row.request_id,
    )
    typer.echo(f"ticket {ticket} {row.state} by {actor}")


def _quarantine_actor(store: SqlDccStore, operator: str, token_env: str) -> str:
    """Who the audit log names: an operator account proves itself with its token (from the
    environment variable ``token_env``, else asked for); a name with no account is recorded
    as given at the CLI, unverified."""
    from smarthydra.dcc.operators import CLI_CLAIM_SUFFIX, claimed_name

    registry = OperatorRegistry(store)
    try:
        if not registry.is_active(operator):
            return claimed_name(operator, CLI_CLAIM_SUFFIX)
    except OperatorError as exc:
        _fail(str(exc))
    token = os.environ.get(token_env) or typer.prompt(
        f"operator token for {operator}", hide_input=True, default="", show_default=False
    )
    if registry.authenticate(operator, token) is None:
        _fail(f"that is not the operator token of {operator!r}")
    return operator


TOKEN_ENV_HELP = (
    "environment variable holding the operator account's token (asked for when unset); "
    "a name with no account is recorded as unverified"
)


@quarantine_app.command("release")
def quarantine_release(
    ticket: int,
    database: str = typer.Option(..., help=DATABASE_HELP),
    operator: str = typer.Option(..., help="who releases it (recorded in the audit log)"),
    token_env: str = typer.Option("SMARTHYDRA_OPERATOR_ACCOUNT_TOKEN", help=TOKEN_ENV_HELP),
) -> None:
    """Release a held request: the running DCC sends it in its next round."""
    _close(database, ticket, operator, True, token_env)


@quarantine_app.command("delete")
def quarantine_delete(
    ticket: int,
    database: str = typer.Option(..., help=DATABASE_HELP),
    operator: str = typer.Option(..., help="who deletes it (recorded in the audit log)"),
    token_env: str = typer.Option("SMARTHYDRA_OPERATOR_ACCOUNT_TOKEN", help=TOKEN_ENV_HELP),
) -> None:
    """Delete a held request: it is never sent."""
    _close(database, ticket, operator, False, token_env)


def _registry(database: str) -> OperatorRegistry:
    return OperatorRegistry(_store(database))


def _cli_actor() -> str:
    """Who adds or revokes an account, as the audit log records it: the OS account running
    this command (the database's own access control is what guards these commands)."""
    import getpass

    try:
        return f"{getpass.getuser()} (cli)"
    except (OSError, KeyError):
        return "unknown (cli)"


@operators_app.command("add")
def operators_add(
    name: str = typer.Argument(..., help="the operator's name, as the audit log will record it"),
    database: str = typer.Option(..., help=DATABASE_HELP),
) -> None:
    """Make an operator account and print its token, once: only a hash of it is kept."""
    try:
        token = _registry(database).add(name, by=_cli_actor())
    except OperatorError as exc:
        _fail(str(exc))
    typer.echo(f"operator {name} added; token (shown once, give it to {name} only):")
    typer.echo(token)


@operators_app.command("list")
def operators_list(database: str = typer.Option(..., help=DATABASE_HELP)) -> None:
    """The operator accounts: name, state, created (and revoked) when."""
    accounts = _registry(database).list()
    for account in accounts:
        state = "active" if account.revoked_at is None else f"revoked {account.revoked_at.isoformat()}"
        typer.echo(f"{account.name}\t{state}\tcreated {account.created_at.isoformat()}")
    if not accounts:
        typer.echo("no operator accounts")


@operators_app.command("revoke")
def operators_revoke(
    name: str = typer.Argument(..., help="the operator whose token stops working"),
    database: str = typer.Option(..., help=DATABASE_HELP),
) -> None:
    """Revoke an operator account for good (its name is not reused)."""
    try:
        _registry(database).revoke(name, by=_cli_actor())
    except OperatorError as exc:
        _fail(str(exc))
    typer.echo(f"operator {name} revoked")


@thresholds_app.command("load")
def thresholds_load(
    file: Path,
    database: str = typer.Option(..., help=DATABASE_HELP),
    user: str | None = typer.Option(None, help="the user's EUI-64; omit for the DCC's own file"),
) -> None:
    """Store a user's anomaly detection threshold file (it replaces the previous one)."""
    from smarthydra.dcc.thresholds import ThresholdFileError, submit_threshold_file

    try:
        text = file.read_text()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc}")
    try:
        owner = Eui64.parse(user) if user else None
        parsed = submit_threshold_file(_store(database), None, owner, text)
    except (ThresholdFileError, InvalidEui64) as exc:
        _fail(str(exc))
    typer.echo(
        f"stored {len(parsed.thresholds)} thresholds and {len(parsed.value_limits)} value limits "
        f"for {user or 'the DCC'} (applied when the DCC next starts)"
    )
