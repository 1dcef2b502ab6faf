"""``smarthydra dcc``: run the DCC's DUIS gateway over a simulated fleet."""

from __future__ import annotations

from pathlib import Path

import typer

from smarthydra.dcc.gateway import GatewayConfigError, serve
from smarthydra.sim.gateway import gateway_for_world
from smarthydra.sim.world import build_world

app = typer.Typer(no_args_is_help=True, help="The DCC: DUIS over HTTPS with mutual TLS.")


@app.command("serve")
def serve_command(
    homes: int = typer.Option(10, min=1, help="homes to commission behind the DCC"),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8443, min=1, max=65535),
    cert: Path | None = typer.Option(None, help="server certificate (PEM)"),
    key: Path | None = typer.Option(None, help="server private key (PEM)"),
    ca: Path | None = typer.Option(None, help="CA that issues DCC users' client certificates"),
    insecure_http: bool = typer.Option(
        False, "--insecure-http", help="plain HTTP, for local tests"
    ),
    database: str = typer.Option("sqlite://", help="SQLAlchemy URL of the DCC database"),
) -> None:
    """Serve /api/v1/serviceS, serviceT and serviceN for a freshly commissioned fleet."""
    world = build_world(homes, database_url=database)
    try:
        gateway, _ = gateway_for_world(world)
        serve(gateway, host, port, cert, key, ca, insecure_http)
    except GatewayConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
