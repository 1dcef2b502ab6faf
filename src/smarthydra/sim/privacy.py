"""Privacy measurement: what each party receives over a simulated year, and what it can infer.

For each of ``homes`` simulated households (:mod:`smarthydra.sim.household`, seeded) over a
year, the data each party receives is built with the applets' own release functions
(:mod:`smarthydra.applets.release`, :mod:`smarthydra.applets.tariff`), under two schemes:

* **conventional** - the supplier reads half-hourly import every day (as a GB supplier with
  half-hourly settlement consent does);
* **hydra** - the supplier gets a monthly bill figure; the distributor daily power-quality
  summaries; the energy agent hourly data for the homes that consented (one in three); the
  price-comparison Other User 13 months of daily totals for the homes that consented (one in
  five); the ombudsman the band totals of one disputed month (one home in twenty); the
  telehealth provider health readings only.

Then simple, documented inferences run on exactly what each party got, and are scored
against the simulated ground truth with balanced accuracy (0.5 = no better than a guess):

* **occupancy** (someone at home and active, per half hour): a half hour is judged occupied
  when its import is over 1.4 x the day's baseload + 60 Wh; hourly figures are split evenly
  over their two half hours; coarser data, or none, allows only a constant guess;
* **electric vehicle**: night half hours over 2.5 kWh (hourly: 5 kWh) on at least 5 nights,
  or with daily data at least 10 days over twice the median day;
* **electric heating**: winter (Dec-Feb) over summer (Jun-Aug) consumption above 1.8, from
  any series that covers both seasons (monthly bills included, standing charge removed).

Bytes are the sizes of the canonical CBOR payloads plus the envelope overhead (COSE_Sign1 and
the sealed envelope) measured once with the same code the applets use; the conventional
supplier's daily read is costed the same way, so the comparison is like for like.

Run ``python -m smarthydra.sim.privacy --homes 100 --out privacy/`` for the JSON and HTML.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import io
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smarthydra.applets import cose
from smarthydra.applets.consent import Granularity
from smarthydra.applets.release import aggregate, power_quality
from smarthydra.applets.tariff import bill, economy7
from smarthydra.crypto import primitives
from smarthydra.sim.household import Household, generate_day, occupied

SLOTS = 48


@dataclass
class HomeTruth:
    index: int
    household: Household
    start: dt.date
    import_wh: list[list[int]]
    voltage_v: list[list[int]]
    occupancy: list[list[bool]]

    @property
    def days(self) -> int:
        return len(self.import_wh)


def simulate_home(index: int, start: dt.date, days: int) -> HomeTruth:
    household = Household.sample(10_000 + index)
    imports, volts, occupancy = [], [], []
    for n in range(days):
        date = start + dt.timedelta(days=n)
        demand = generate_day(household, date)
        imports.append(demand.import_wh)
        volts.append(demand.voltage_v)
        occupancy.append([occupied(household, date, s) for s in range(SLOTS)])
    return HomeTruth(index, household, start, imports, volts, occupancy)


# --- what a party receives -------------------------------------------------------------------


@dataclass
class Received:
    """One party's data from one home: a consumption series at some granularity, if any."""

    granularity: str  # half-hourly / hourly / daily / monthly / one-month / none
    series: list[float] = field(default_factory=list)
    first_day: int = 0
    messages: int = 0
    bytes: int = 0
    fields: tuple[str, ...] = ()


def envelope_overhead() -> int:
    """Bytes a sealed, signed statement adds to its payload (measured, not estimated)."""
    key = primitives.generate_private_key()
    payload = {"x": 0}
    statement = cose.sign1(payload, bytes(8), lambda d: primitives.ecdsa_sign(key, d))
    sealed = cose.seal(statement, sender="hub-00001/billing", recipient="supplier-a",
                       recipient_xy=primitives.public_key_to_xy(key.public_key()),
                       ephemeral=cose.HostAgreement.fresh(), iv=bytes(12))
    return len(sealed) - len(cose.canonical(payload))


def _months(truth: HomeTruth) -> list[tuple[int, int]]:
    """(first, last) day indices of each whole calendar month in the simulated span."""
    out, first = [], 0
    for n in range(truth.days):
        date = truth.start + dt.timedelta(days=n)
        if (date + dt.timedelta(days=1)).day == 1:
            out.append((first, n))
            first = n + 1
    return out


def party_views(truth: HomeTruth, overhead: int) -> dict[tuple[str, str], Received]:
    """What every party receives from one home, under both schemes."""
    first_day = truth.start.toordinal()
    views: dict[tuple[str, str], Received] = {}

    def cost(payloads: Sequence[Any]) -> int:
        return sum(len(cose.canonical(p)) + overhead for p in payloads)

    daily_reads = [{"day": first_day + n, "import-wh": d} for n, d in enumerate(truth.import_wh)]
    views[("supplier", "conventional")] = Received(
        "half-hourly", [v for d in truth.import_wh for v in d], first_day, len(daily_reads),
        cost(daily_reads), ("import Wh per half hour",))

    tariff = economy7()
    bills: list[dict[str, Any]] = []
    energy: list[float] = []
    for first, last in _months(truth):
        amount = bill(tariff, truth.import_wh[first:last + 1]).amount_pence
        # the supplier knows its standing charge: what is left is a price-weighted energy
        energy.append(amount - tariff.standing_charge * (last - first + 1) / 1000)
        bills.append({"type": "bill", "period": [first, last], "tariff": tariff.tariff_id,
                      "amount-pence": amount, "applet": bytes(8), "source-sha256": bytes(32),
                      "tariff-sha256": bytes(32), "meter": "mpan", "hub": "hub"})
    views[("supplier", "hydra")] = Received(
        "monthly", energy, first_day, len(bills), cost(bills),
        ("period", "tariff", "amount-pence", "applet source hash"))

    summaries = [{"type": "power-quality", "hub": "hub",
                  **power_quality(first_day + n, v)} for n, v in enumerate(truth.voltage_v)]
    views[("distributor", "hydra")] = Received(
        "none", [], first_day, len(summaries), cost(summaries),
        ("v-min", "v-max", "v-mean", "under", "over", "outage-half-hours"))

    if truth.index % 3 == 0:
        hourly = [aggregate(first_day + n, [d], Granularity.HOURLY)
                  for n, d in enumerate(truth.import_wh)]
        payloads = [{"type": "consumption", "data": h, "first-day": first_day + n}
                    for n, h in enumerate(hourly)]
        views[("energy agent", "hydra")] = Received(
            "hourly", [v for h in hourly for v in h], first_day, len(payloads), cost(payloads),
            ("hourly import Wh",))
    else:
        views[("energy agent", "hydra")] = Received("none")

    if truth.index % 5 == 0:
        daily = [sum(d) for d in truth.import_wh][-396:]
        views[("other user", "hydra")] = Received(
            "daily", [float(v) for v in daily], first_day + truth.days - len(daily), 1,
            cost([{"type": "consumption", "data": daily}]), ("daily import Wh",))
    else:
        views[("other user", "hydra")] = Received("none")

    if truth.index % 20 == 0 and _months(truth):
        first, last = _months(truth)[0]
        breakdown = bill(tariff, truth.import_wh[first:last + 1])
        views[("ombudsman", "hydra")] = Received(
            "one-month", [float(sum(breakdown.energy_wh.values()))], first_day + first, 1,
            cost([breakdown.to_payload()]), ("energy and cost per band", "standing charge"))
    else:
        views[("ombudsman", "hydra")] = Received("none")

    readings = [{"type": "health-reading", "kind": "weight", "value": 80_000, "unit": "g",
                 "time": n, "device": bytes(8)} for n in range(truth.days)]
    views[("telehealth provider", "hydra")] = Received(
        "none", [], first_day, len(readings), cost(readings), ("health readings only",))
    return views


# --- inference -------------------------------------------------------------------------------


def infer_occupancy(received: Received, days: int) -> list[list[bool]] | None:
    """Per half-hour occupancy from half-hourly or hourly data; None when it cannot."""
    if received.granularity not in ("half-hourly", "hourly"):
        return None
    per_day = SLOTS if received.granularity == "half-hourly" else SLOTS // 2
    out = []
    for n in range(days):
        values = received.series[n * per_day:(n + 1) * per_day]
        if received.granularity == "hourly":
            values = [v / 2 for v in values for _ in range(2)]
        base = min(values)
        out.append([v > 1.4 * base + 60 for v in values])
    return out


def infer_ev(received: Received) -> bool:
    series = received.series
    if received.granularity in ("half-hourly", "hourly"):
        per_day = SLOTS if received.granularity == "half-hourly" else SLOTS // 2
        night = 10 if per_day == SLOTS else 5
        limit = 2500 if per_day == SLOTS else 5000
        nights = sum(1 for n in range(len(series) // per_day)
                     if any(v > limit for v in series[n * per_day:n * per_day + night]))
        return nights >= 5
    if received.granularity == "daily" and series:
        median = statistics.median(series)
        return sum(1 for v in series if v > 2 * median) >= 10
    return False


def _monthly(received: Received) -> dict[int, float]:
    """Consumption by calendar month (1..12) from any series covering whole days or months."""
    if received.granularity == "monthly":
        start = dt.date.fromordinal(received.first_day)
        return {((start.month - 1 + i) % 12) + 1: v for i, v in enumerate(received.series)}
    per_day = {"half-hourly": SLOTS, "hourly": SLOTS // 2, "daily": 1}.get(received.granularity)
    if per_day is None:
        return {}
    months: dict[int, float] = {}
    for n in range(len(received.series) // per_day):
        month = dt.date.fromordinal(received.first_day + n).month
        months[month] = months.get(month, 0) + sum(received.series[n * per_day:
                                                                  (n + 1) * per_day])
    return months


def infer_electric_heating(received: Received) -> bool:
    months = _monthly(received)
    winter = [months[m] for m in (12, 1, 2) if m in months]
    summer = [months[m] for m in (6, 7, 8) if m in months]
    if not winter or not summer:
        return False
    return statistics.mean(winter) > 1.8 * max(statistics.mean(summer), 1.0)


def balanced_accuracy(truth: Sequence[bool], guess: Sequence[bool]) -> float:
    positives = [g for t, g in zip(truth, guess, strict=True) if t]
    negatives = [not g for t, g in zip(truth, guess, strict=True) if not t]
    rates = [sum(p) / len(p) for p in (positives, negatives) if p]
    return round(sum(rates) / len(rates), 4) if rates else 0.5


# --- the report ------------------------------------------------------------------------------


@dataclass
class PartyResult:
    party: str
    scheme: str
    granularity: str
    fields: tuple[str, ...]
    homes_receiving: int
    messages: int
    bytes: int
    occupancy: float
    electric_vehicle: float
    electric_heating: float
    #: the same three scores over only the homes whose consumption the party received
    among_receiving: tuple[float, float, float] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"party": self.party, "scheme": self.scheme, "granularity": self.granularity,
                "fields": list(self.fields), "homes_receiving": self.homes_receiving,
                "messages": self.messages, "bytes": self.bytes,
                "occupancy_balanced_accuracy": self.occupancy,
                "ev_balanced_accuracy": self.electric_vehicle,
                "electric_heating_balanced_accuracy": self.electric_heating,
                "among_homes_with_consumption_data": None if self.among_receiving is None else
                dict(zip(("occupancy", "ev", "electric_heating"), self.among_receiving,
                         strict=True))}


@dataclass
class PrivacyReport:
    homes: int
    days: int
    start: dt.date
    parties: list[PartyResult]
    raw: PartyResult
    ground_truth: dict[str, int]
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {"homes": self.homes, "days": self.days, "start": self.start.isoformat(),
                "method": "balanced accuracy of simple inferences against simulated truth; "
                          "0.5 means no better than a guess",
                "ground_truth": self.ground_truth, "raw_half_hourly": self.raw.as_json(),
                "parties": [p.as_json() for p in self.parties],
                "seconds": round(self.seconds, 2)}

    def html(self) -> str:
        return render_html(self)


def measure(homes: int = 100, days: int = 365, start: dt.date = dt.date(2026, 1, 1),
            progress: Callable[[int, int], None] | None = None) -> PrivacyReport:
    if homes < 1 or days < 1:
        raise ValueError("at least one home and one day")
    began = time.perf_counter()
    overhead = envelope_overhead()
    truths: list[HomeTruth] = []
    views: dict[tuple[str, str], list[Received]] = {}
    for index in range(homes):
        truth = simulate_home(index, start, days)
        truths.append(truth)
        for key, received in party_views(truth, overhead).items():
            views.setdefault(key, []).append(received)
        if progress is not None:
            progress(index + 1, homes)
    ev_truth = [t.household.electric_vehicle for t in truths]
    heat_truth = [t.household.electric_heating for t in truths]
    occupancy_truth = [o for t in truths for day in t.occupancy for o in day]

    def scores(homes_: Sequence[int], received: list[Received]) -> tuple[float, float, float]:
        truth_o: list[bool] = []
        guesses: list[bool] = []
        for i in homes_:
            truth, got = truths[i], received[i]
            truth_o.extend(o for day in truth.occupancy for o in day)
            inferred = infer_occupancy(got, truth.days)
            guesses.extend(o for day in inferred for o in day) if inferred else guesses.extend(
                [False] * (truth.days * SLOTS))
        return (balanced_accuracy(truth_o, guesses),
                balanced_accuracy([ev_truth[i] for i in homes_],
                                  [infer_ev(received[i]) for i in homes_]),
                balanced_accuracy([heat_truth[i] for i in homes_],
                                  [infer_electric_heating(received[i]) for i in homes_]))

    def score(key: tuple[str, str], received: list[Received]) -> PartyResult:
        everyone = scores(range(homes), received)
        with_data = [i for i, r in enumerate(received) if r.series]
        return PartyResult(
            key[0], key[1], next((r.granularity for r in received if r.granularity != "none"),
                                 "none"),
            next((r.fields for r in received if r.fields), ()),
            sum(1 for r in received if r.messages), sum(r.messages for r in received),
            sum(r.bytes for r in received), *everyone,
            scores(with_data, received) if with_data else None)

    results = [score(key, received) for key, received in views.items()]
    raw = next(r for r in results if r.scheme == "conventional")
    raw = PartyResult("raw data (reference)", "raw", raw.granularity, raw.fields, homes,
                      raw.messages, raw.bytes, raw.occupancy, raw.electric_vehicle,
                      raw.electric_heating, raw.among_receiving)
    return PrivacyReport(homes, days, start, results, raw,
                         {"ev_homes": sum(ev_truth), "electric_heating_homes": sum(heat_truth),
                          "occupied_half_hour_share_percent":
                              round(100 * sum(occupancy_truth) / len(occupancy_truth))},
                         time.perf_counter() - began)


def _png(draw: Callable[[Any], None]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 3.6))
    draw(axes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _among(result: PartyResult) -> str:
    if result.among_receiving is None:
        return "-"
    return " / ".join(f"{v:.3f}" for v in result.among_receiving)


def render_html(report: PrivacyReport) -> str:
    parties = report.parties
    labels = [f"{p.party}\n({p.scheme})" for p in parties]

    def bytes_plot(axes: Any) -> None:
        axes.barh(labels, [max(p.bytes, 1) for p in parties], color="#4477aa")
        axes.set_xscale("log")
        axes.set_xlabel(f"bytes received over {report.days} days, {report.homes} homes (log)")

    def inference_plot(axes: Any) -> None:
        width = 0.27
        positions = range(len(parties))
        for offset, (name, values) in enumerate((
                ("occupancy", [p.occupancy for p in parties]),
                ("electric vehicle", [p.electric_vehicle for p in parties]),
                ("electric heating", [p.electric_heating for p in parties]))):
            axes.barh([i + (offset - 1) * width for i in positions], values, height=width,
                      label=name)
        axes.set_yticks(list(positions), labels)
        axes.axvline(0.5, color="grey", linestyle="--", linewidth=1)
        axes.set_xlim(0.4, 1.0)
        axes.set_xlabel("balanced accuracy of inference (0.5 = guessing)")
        axes.legend(loc="lower right", fontsize=8)

    rows = "".join(
        f"<tr><td>{html.escape(p.party)}</td><td>{p.scheme}</td><td>{p.granularity}</td>"
        f"<td>{html.escape(', '.join(p.fields))}</td><td>{p.homes_receiving}</td>"
        f"<td>{p.messages}</td><td>{p.bytes:,}</td><td>{p.occupancy:.3f}</td>"
        f"<td>{p.electric_vehicle:.3f}</td><td>{p.electric_heating:.3f}</td>"
        f"<td>{_among(p)}</td></tr>"
        for p in [report.raw, *parties])
    truth = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.ground_truth.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>smarthydra privacy report</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}
table{{border-collapse:collapse;font-size:0.85em}}td,th{{border:1px solid #ccc;padding:4px}}
</style></head><body>
<h1>What each party receives, and what it can infer</h1>
<p>{report.homes} simulated homes, {report.days} days from {report.start}. Ground truth: {truth}.
Inference scores are balanced accuracies against the simulated truth (0.5 = no better than a
guess). Conventional: the supplier reads half-hourly data. Hydra: applets on the hub's secure
element release only what each party needs.</p>
<h2>Bytes received</h2><img alt="bytes per party" src="data:image/png;base64,{_png(bytes_plot)}">
<h2>Inference accuracy</h2>
<img alt="inference accuracy per party" src="data:image/png;base64,{_png(inference_plot)}">
<h2>Table</h2><table><tr><th>party</th><th>scheme</th><th>granularity</th><th>fields</th>
<th>homes</th><th>messages</th><th>bytes</th><th>occupancy</th><th>EV</th>
<th>electric heating</th><th>occupancy / EV / heating, homes it has data for</th></tr>
{rows}</table>
<p>Method: {html.escape(__doc__ or '').split('Then simple')[1].split('Bytes are')[0]
            if __doc__ else ''}</p>
</body></html>
"""


def write_report(report: PrivacyReport, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "privacy.json", out / "privacy.html"
    json_path.write_text(json.dumps(report.as_json(), indent=2))
    html_path.write_text(report.html())
    return json_path, html_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smarthydra.sim.privacy",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--homes", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--out", type=Path, default=Path("privacy-report"))
    args = parser.parse_args(argv)
    if args.homes < 1 or args.days < 1:
        parser.error("--homes and --days must be at least 1")
    report = measure(args.homes, args.days, progress=lambda done, total: print(
        f"\rsimulating homes {done}/{total}", end="", file=sys.stderr))
    print(file=sys.stderr)
    json_path, html_path = write_report(report, args.out)
    print(f"wrote {json_path} and {html_path} ({report.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
