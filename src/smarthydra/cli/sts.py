"""``smarthydra sts``: vend and decode IEC 62055-41 (STS) tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from smarthydra.prepay.errors import PrepayError
from smarthydra.prepay.sts_algorithms import (
    BaseDate,
    EncryptionAlgorithm,
    KeyGenerationAlgorithm,
    MeterIdentity,
)
from smarthydra.prepay.sts_tokens import (
    CreditToken,
    KeyChangeToken1,
    KeyChangeToken2,
    KeyChangeToken3,
    KeyChangeToken4,
    ManagementToken,
    MeterTestToken,
    Token,
    decode_token,
    issued_at,
)
from smarthydra.prepay.sts_vending import SoftVendingKey, VendingServer

app = typer.Typer(no_args_is_help=True, help="STS (IEC 62055-41) prepayment tokens")

VendingKeyOpt = Annotated[str, typer.Option("--vending-key", help="vending key, hex")]
DkgaOpt = Annotated[str, typer.Option("--dkga", help="decoder key generation: 02 or 04")]
EaOpt = Annotated[str, typer.Option("--ea", help="encryption algorithm: 07 (STA) or 11 (MISTY1)")]
BaseDateOpt = Annotated[int, typer.Option("--base-date", help="1993, 2014 or 2035")]
SgcOpt = Annotated[str, typer.Option("--sgc", help="supply group code (6 digits)")]
TiOpt = Annotated[int, typer.Option("--ti", help="tariff index")]
KrnOpt = Annotated[int, typer.Option("--krn", help="key revision number")]
KtOpt = Annotated[int, typer.Option("--kt", help="key type")]
PanOpt = Annotated[str, typer.Option("--pan", help="meter PAN (18 digits)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON output")]


@dataclass(frozen=True)
class _Setup:
    server: VendingServer
    meter: MeterIdentity


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _setup(vending_key: str, dkga: str, ea: str, base_date: int, sgc: str, ti: int, krn: int,
           kt: int, pan: str) -> _Setup:
    try:
        key = bytes.fromhex(vending_key)
    except ValueError:
        raise _fail("--vending-key is not hex") from None
    try:
        generation = KeyGenerationAlgorithm(dkga.zfill(2))
    except ValueError:
        raise _fail("--dkga must be 02 or 04") from None
    try:
        algorithm = EncryptionAlgorithm(ea.zfill(2))
    except ValueError:
        raise _fail("--ea must be 07 or 11") from None
    try:
        base = BaseDate(base_date)
    except ValueError:
        raise _fail("--base-date must be 1993, 2014 or 2035") from None
    try:
        return _Setup(VendingServer(SoftVendingKey(key), generation, algorithm, base),
                      MeterIdentity(pan, sgc, ti, krn, kt))
    except PrepayError as exc:
        raise _fail(str(exc)) from None


def _parse_issued(text: str) -> datetime:
    try:
        issued = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"--issued {text!r} is not an ISO date-time") from None
    return issued if issued.tzinfo else issued.replace(tzinfo=UTC)


def describe(token: Token, base_date: BaseDate) -> dict[str, Any]:
    """The decode fields: class, subclass, amount, tid, issued (and class-specific extras)."""
    out: dict[str, Any] = {"class": int(token.token_class), "subclass": int(token.subclass),
                           "amount": None, "tid": None, "issued": None}
    if isinstance(token, CreditToken | ManagementToken):
        out["tid"] = token.tid
        out["issued"] = issued_at(token.tid, base_date).isoformat()
        out["amount"] = str(token.amount) if isinstance(token, CreditToken) else token.value
        out["rnd"] = token.rnd
    elif isinstance(token, MeterTestToken):
        out["amount"] = token.control
        out["manufacturer"] = token.manufacturer
    elif isinstance(token, KeyChangeToken1):
        out.update(kenho=token.kenho, krn=token.krn, ro=token.ro, kt=token.kt,
                   nkho=f"{token.nkho:08x}")
    elif isinstance(token, KeyChangeToken2):
        out.update(kenlo=token.kenlo, ti=token.ti, nklo=f"{token.nklo:08x}")
    elif isinstance(token, KeyChangeToken3):
        out.update(sgclo=token.sgclo, nkmo2=f"{token.nkmo2:08x}")
    elif isinstance(token, KeyChangeToken4):
        out.update(sgcho=token.sgcho, nkmo1=f"{token.nkmo1:08x}")
    return out


@app.command()
def vend(
    vending_key: VendingKeyOpt, dkga: DkgaOpt, ea: EaOpt, base_date: BaseDateOpt, sgc: SgcOpt,
    ti: TiOpt, krn: KrnOpt, kt: KtOpt, pan: PanOpt,
    token_class: Annotated[int, typer.Option("--class", help="token class 0, 1 or 2")],
    subclass: Annotated[int, typer.Option("--subclass", help="token subclass")],
    amount: Annotated[str, typer.Option("--amount", help="kWh, m3, currency, or the value")],
    issued: Annotated[str, typer.Option("--issued", help="issue time, ISO 8601 (UTC default)")],
    random: Annotated[int | None, typer.Option("--random", help="RND 0..15 (deterministic)")]
    = None,
    manufacturer: Annotated[int, typer.Option("--mfr", help="class 1 manufacturer code")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Print the 20-digit token."""
    setup = _setup(vending_key, dkga, ea, base_date, sgc, ti, krn, kt, pan)
    when = _parse_issued(issued)
    try:
        token = setup.server.build(token_class, subclass, amount, when, random, manufacturer)
        result = setup.server.vend(setup.meter, token)
    except PrepayError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps({"token": result.digits,
                               **describe(token, setup.server.base_date)}))
    else:
        typer.echo(result.digits)


@app.command()
def decode(
    token: Annotated[str, typer.Argument(help="the 20-digit token")],
    vending_key: VendingKeyOpt, dkga: DkgaOpt, ea: EaOpt, base_date: BaseDateOpt, sgc: SgcOpt,
    ti: TiOpt, krn: KrnOpt, kt: KtOpt, pan: PanOpt, as_json: JsonOpt = False,
) -> None:
    """Decrypt and check a token; print its fields or the reason it is refused."""
    setup = _setup(vending_key, dkga, ea, base_date, sgc, ti, krn, kt, pan)
    try:
        key = setup.server.decoder_key(setup.meter)
        decoded = decode_token(token, key, setup.server.algorithm)
    except PrepayError as exc:
        if as_json:
            typer.echo(json.dumps({"refused": exc.reason, "message": str(exc)}))
        raise _fail(f"refused ({exc.reason}): {exc}", 1) from None
    fields = describe(decoded, setup.server.base_date)
    if as_json:
        typer.echo(json.dumps(fields))
        return
    for name, value in fields.items():
        typer.echo(f"{name}: {'-' if value is None else value}")


@app.command("key-change")
def key_change(
    vending_key: VendingKeyOpt, dkga: DkgaOpt, ea: EaOpt, base_date: BaseDateOpt, sgc: SgcOpt,
    ti: TiOpt, krn: KrnOpt, kt: KtOpt, pan: PanOpt,
    new_krn: Annotated[int, typer.Option("--new-krn", help="new key revision number")],
    new_ti: Annotated[int | None, typer.Option("--new-ti")] = None,
    new_sgc: Annotated[str | None, typer.Option("--new-sgc")] = None,
    ken: Annotated[int, typer.Option("--ken", help="key expiry number 0..255")] = 255,
    rollover: Annotated[bool, typer.Option("--rollover", help="move to the next base date")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """Print the key change tokens, one a line, in entry order: tokens 1 and 2 for a 64-bit
    (EA07) key, 1 to 4 for a 128-bit (EA11) key (with --rollover: the TID base-date rollover)."""
    setup = _setup(vending_key, dkga, ea, base_date, sgc, ti, krn, kt, pan)
    try:
        new = MeterIdentity(pan, new_sgc or sgc, ti if new_ti is None else new_ti, new_krn, kt)
        change = setup.server.key_change(setup.meter, new, ken=ken, rollover=rollover)
    except PrepayError as exc:
        raise _fail(str(exc)) from None
    digits = [vend.digits for vend in change.tokens]
    if as_json:
        typer.echo(json.dumps({"tokens": digits}))
    else:
        for line in digits:
            typer.echo(line)
