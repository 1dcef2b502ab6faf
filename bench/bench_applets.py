"""Hydra applets: signed bills, sealed telehealth readings, fleet deployment, privacy runs.

Each rate is reported with the crypto limit measured in the same run: a bill or a reading
costs one ECDSA signature, one ephemeral key generation and one ECDH in the card, so
``ratio_to_crypto_limit`` is the share of the time that is that crypto (1.0 = nothing else).
The billing applet runs restricted (post-issuance load file); ``restricted_bill_ratio_to_rom``
compares it with the same applet built into the card image. Party commands travel in SCP03
(C-MAC, C-DEC, R-MAC, R-ENC) through the party's SSD: the cost of opening a session (SELECT,
INITIALIZE UPDATE, EXTERNAL AUTHENTICATE) is compared with a command in an open one.
Party APDUs travel over the WAN to the hub's virtual terminal (one frame each);
``wan_party_command_ratio_to_in_process`` compares that with the in-process relay (test double).
Deployment is hubs per second through one-way SCP03 scripts, delegated-management tokens
and receipt reconciliation; the privacy figure is simulated home-years per second.
"""

from __future__ import annotations

import datetime as dt
import time

from bench.baseline import calls_per_second
from smarthydra.applets.hub import BILLING, PartyChannel
from smarthydra.applets.tariff import economy7
from smarthydra.applets.telehealth import HealthReading
from smarthydra.crypto import primitives
from smarthydra.parties.hydra_deploy import DeploymentCampaign, Fleet, flex_package
from smarthydra.sim import privacy
from smarthydra.sim.hydra import SCALE, HydraHome, HydraParties


def _crypto_limit(seconds: float) -> float:
    """Sign + generate + ECDH per second with ``cryptography`` directly."""
    key, peer = primitives.generate_private_key(), primitives.generate_private_key()

    def one() -> None:
        primitives.ecdsa_sign(key, b"x" * 200)
        ephemeral = primitives.generate_private_key()
        primitives.ecdh(ephemeral, peer.public_key())

    return calls_per_second(one, seconds)


def run(quick: bool) -> dict[str, object]:
    seconds = 0.3 if quick else 2.0
    limit = _crypto_limit(seconds)
    home = HydraHome.create(HydraParties.create())
    start = dt.date(2026, 1, 1)
    for n in range(31):
        home.live_day(start + dt.timedelta(days=n))
    home.host.set_tariff(home.parties.supplier.tariff_message(economy7()))
    bills = calls_per_second(
        lambda: home.host.close_period(start, start + dt.timedelta(days=30)), seconds)
    # the same bill from the ROM (unrestricted) billing applet, in the same run
    rom = HydraHome.create(home.parties, 2, post_issuance_billing=False)
    for n in range(31):
        rom.live_day(start + dt.timedelta(days=n))
    rom.host.set_tariff(home.parties.supplier.tariff_message(economy7()))
    rom_bills = calls_per_second(
        lambda: rom.host.close_period(start, start + dt.timedelta(days=30)), seconds)
    supplier = home.host.parties["supplier"]

    def fresh_session() -> None:  # SELECT, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, command
        supplier.drop()
        supplier.call(0x24)

    sessions = calls_per_second(fresh_session, seconds)
    in_session = calls_per_second(lambda: supplier.call(0x24), seconds)
    # the same command relayed in process (the test double) instead of over the WAN
    local = PartyChannel(home.host.relay, BILLING, home.setup.channel_keys("supplier"),
                         channel=home.host.channel)
    in_process = calls_per_second(lambda: local.call(0x24), seconds)
    stats = home.parties.wan.statistics
    down, up, frames = stats.bytes_down, stats.bytes_up, stats.delivered
    home.host.close_period(start, start + dt.timedelta(days=30))
    bill_wan = (stats.bytes_down - down, stats.bytes_up - up, stats.delivered - frames)
    reading = HealthReading("weight", 80_000, "g", 0)
    readings = calls_per_second(lambda: home.host.health_reading(SCALE, reading), seconds)
    days = calls_per_second(lambda: home.host.push_day(start, [100] * 48, [240] * 48), seconds)

    hubs = 50 if quick else 1000
    began = time.perf_counter()
    fleet = Fleet.build(hubs)
    built = time.perf_counter() - began
    campaign = DeploymentCampaign(fleet.issuer_token_key, flex_package(), fleet.records)
    began = time.perf_counter()
    outcome = campaign.reconcile(fleet.relay().submit(
        "flex-provider", campaign.deploy_scripts(list(fleet.cards))))
    deploy = time.perf_counter() - began

    homes = 3 if quick else 20
    began = time.perf_counter()
    privacy.measure(homes=homes, days=365)
    home_years = homes / (time.perf_counter() - began)
    return {
        "crypto_limit_sign_ecdh_per_s": round(limit, 1),
        "monthly_bills_per_s": round(bills, 1),
        "bill_ratio_to_crypto_limit": round(bills / limit, 3),
        "rom_monthly_bills_per_s": round(rom_bills, 1),
        "restricted_bill_ratio_to_rom": round(bills / rom_bills, 3),
        "party_commands_in_session_per_s": round(in_session, 1),
        "party_commands_in_process_per_s": round(in_process, 1),
        "wan_party_command_ratio_to_in_process": round(in_session / in_process, 3),
        "bill_wan_frames": bill_wan[2],
        "bill_wan_bytes_down_up": f"{bill_wan[0]}/{bill_wan[1]}",
        "party_sessions_opened_per_s": round(sessions, 1),
        "session_open_ratio_to_in_session": round(sessions / in_session, 3),
        "telehealth_readings_per_s": round(readings, 1),
        "reading_ratio_to_crypto_limit": round(readings / limit, 3),
        "meter_days_pushed_per_s": round(days, 1),
        "deploy_hubs": hubs,
        "deploy_hubs_deployed": len(outcome.deployed),
        "deploy_hubs_per_s": round(hubs / deploy, 1),
        "fleet_cards_built_per_s": round(hubs / built, 1),
        "privacy_home_years_per_s": round(home_years, 2),
    }
