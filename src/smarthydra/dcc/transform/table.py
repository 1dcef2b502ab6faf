"""Service request variant x device type -> use case and how its payload is filled.

One entry per device service request variant of the DUIS service request matrix that this
DCC transforms. A use case with no slots is a parameter-less read or action: its payload is
the template with the header values substituted. ``Choice`` entries pick the use case from a
body value or a fact about the request (``@role``, ``@esme-variant``, ``@execution``).
"""

from __future__ import annotations

from smarthydra.dcc.transform.alerts import (
    NETWORK_OPERATOR_GROUPS,
    SUPPLIER_GROUPS,
    AlertFilter,
    GasAlertConfiguration,
)
from smarthydra.dcc.transform.codecs import (
    ChangeOfSupplierCredentialsUpdate,
    CredentialDetails,
    CredentialsUpdate,
    FirmwareActivation,
)
from smarthydra.dcc.transform.device import DeviceType
from smarthydra.dcc.transform.gas import GasPrepaymentConfiguration, GasPrices, GasTariff
from smarthydra.dcc.transform.items import (
    AuxiliaryControllerScript,
    BillingCalendar,
    ChannelMask,
    CreditChargeConfiguration,
    NamedScript,
    ScheduleEntry,
    SpecialDayEntry,
    SwitchScript,
)
from smarthydra.dcc.transform.joins import GpfDeviceLogRestore, JoinDevice, JoinMethod
from smarthydra.dcc.transform.restore import HanDeviceLogRestore
from smarthydra.dcc.transform.spec import (
    NOW,
    ArraySlot,
    BodyCodec,
    Choice,
    Conversion,
    LeafSlot,
    ListSlot,
    Mapping,
    Slot,
    UseCaseSpec,
)
from smarthydra.dcc.transform.tariff import (
    ELECTRICITY_PRICES,
    BlockThresholds,
    DayEntry,
    PriceEntry,
    PrimaryPrices,
    SeasonEntry,
    TariffSpecialDay,
    WeekEntry,
)
from smarthydra.pki.credentials import CredentialsReplacementMode

ESME = DeviceType.ESME
GSME = DeviceType.GSME
GPF = DeviceType.GPF
CHF = DeviceType.CHF
PPMID = DeviceType.PPMID
HCALCS = DeviceType.HCALCS
SAPC = DeviceType.SAPC

UINT = Conversion.UINT
BOOL = Conversion.BOOL
SECONDS = Conversion.SECONDS_2000
COSEM = Conversion.COSEM_DATE_TIME
TEXT = Conversion.TEXT
VALUES = Conversion.VALUES
EUI = Conversion.EUI
HEX = Conversion.HEX
INT_LE = Conversion.INT_LE
UINT_LE = Conversion.UINT_LE
COSEM_TIME = Conversion.COSEM_TIME


def at(offset: int, size: int) -> tuple[str | int, ...]:
    """A fixed-position field of a GBZ payload."""
    return ("bytes", offset, size)


# GBZ prepayment cluster commands: ZCL issuer event id (the DCC's time of issue) at 11.
ISSUER_EVENT_ID = Slot(NOW, ("bytes", 11, 4), Conversion.SECONDS_2000_LE)


def gas_balance(use_case: str, mode: str | None) -> UseCaseSpec:
    """GCS40a-d: a credit adjustment (type and value at 19/20; start time 0 = now)."""
    if mode is None:
        return uc(use_case, ISSUER_EVENT_ID)
    return uc(use_case, ISSUER_EVENT_ID, Slot(f"{mode}/AdjustMeterBalance", at(20, 4), INT_LE))


def uc(
    use_case: str,
    *slots: Slot,
    execution: tuple[tuple[str | int, ...], ...] = (),
    variant: str = "",
    unused: tuple[str, ...] = (),
    codec: BodyCodec | None = None,
    optional: tuple[tuple[str, int], ...] = (),
    dcc_originates: bool = False,
) -> UseCaseSpec:
    return UseCaseSpec(
        use_case,
        tuple(slots),
        execution,
        variant,
        optional=optional,
        unused=unused,
        codec=codec,
        dcc_originates=dcc_originates,
    )


# --- GBZ (gas) field positions: ("zcl", component, offset, size) inside a component's ZCL
# payload (component -1: every component), ("from", component) its from-date-time.
START = "ReadLogPeriod/StartDateTime"
END = "ReadLogPeriod/EndDateTime"
LOG_PERIOD = (START, END)
HALF_HOUR = 1800
DAY = 86400


def zcl(component: int, offset: int, size: int) -> tuple[str | int, ...]:
    return ("zcl", component, offset, size)


def zstr(component: int, offset: int, index: int = 0) -> tuple[str | int, ...]:
    """The ``index``-th of the ZCL strings that end a component, from ``offset``."""
    return ("zstr", component, offset, index)


LE_TIME = Conversion.SECONDS_2000_LE


def gas_snapshot_log(use_case: str) -> UseCaseSpec:
    """Snapshot reads (one ZCL command per snapshot slot): start and end time in each."""
    return uc(
        use_case,
        Slot(START, zcl(-1, 0, 4), Conversion.SECONDS_2000_LE),
        Slot(END, zcl(-1, 4, 4), Conversion.SECONDS_2000_LE),
    )


def gas_sampled_data(use_case: str, interval: int) -> UseCaseSpec:
    """ZCL GetSampledData: earliest sample time and the number of samples in the period."""
    return uc(
        use_case,
        Slot(START, zcl(0, 2, 4), Conversion.SECONDS_2000_LE),
        Slot(f"{START}..{END}", zcl(0, 7, 2), UINT_LE, scale=interval),
    )


def gas_event_log(use_case: str) -> UseCaseSpec:
    """ZCL GetEventLog: start and end time of the events wanted."""
    return uc(
        use_case,
        Slot(START, zcl(0, 3, 4), Conversion.SECONDS_2000_LE),
        Slot(END, zcl(0, 7, 4), Conversion.SECONDS_2000_LE),
    )


# Duration (3 bytes LE) and duration type of each periodicity; the block period has its
# control byte (02) between the two.
BILLING_PERIODS = {
    "Daily": (1, 0x21),
    "Weekly": (1, 0x22),
    "Monthly": (1, 0x23),
    "Quarterly": (3, 0x23),
    "SixMonthly": (6, 0x23),
    "Yearly": (12, 0x23),
}
GAS_BILLING = "GasBillingCalendar"


def gas_billing(use_case: str) -> UseCaseSpec:
    billing = tuple(
        (name, int.from_bytes(count.to_bytes(3, "little") + bytes([base]), "big"))
        for name, (count, base) in BILLING_PERIODS.items()
    )
    block = tuple(
        (name, int.from_bytes(count.to_bytes(3, "little") + bytes([0x02, base]), "big"))
        for name, (count, base) in BILLING_PERIODS.items()
    )
    return uc(
        use_case,
        Slot(NOW, zcl(-1, 4, 4), LE_TIME),
        Slot(f"{GAS_BILLING}/BillingPeriodStart", zcl(-1, 8, 4), LE_TIME),
        Slot(f"{GAS_BILLING}/Periodicity", zcl(0, 12, 4), VALUES, billing),
        Slot(f"{GAS_BILLING}/Periodicity", zcl(1, 12, 5), VALUES, block),
    )


SUPPLY_STATES = (("Unchanged", 3), ("Locked", 1))


def gas_flow(use_case: str, rate: str, decimals: int) -> UseCaseSpec:
    return uc(
        use_case,
        Slot(NOW, zcl(0, 4, 4), LE_TIME),
        Slot(rate, zcl(0, 8, 2), UINT_LE, decimals=decimals),
        Slot("SupplyDepletionState", zcl(1, 5, 1), VALUES, SUPPLY_STATES),
        Slot("SupplyTamperState", zcl(1, 4, 1), VALUES, SUPPLY_STATES),
        Slot("StabilisationPeriod", zcl(0, 15, 1), UINT_LE),
        Slot("MeasurementPeriod", zcl(0, 16, 2), UINT_LE),
        Slot(NOW, zcl(1, 0, 4), LE_TIME),
    )


RECOVERY_PERIODS = (("HOURLY", 3600), ("DAILY", 86400))


def elec_debt_recovery(n: int) -> tuple[Slot, ...]:
    """ElecDebtRecoveryN: the rate (inside the debt register's accounting structure), its
    price scale and its period in seconds."""
    at = f"ElecDebtRecovery{n}"
    return (
        Slot(f"{at}/DebtRecoveryRate", ("data", n - 1, 2, 0, 1), UINT),
        Slot(f"{at}/DebtRecoveryRatePriceScale", ("data", 4 + n), UINT),
        Slot(f"{at}/DebtRecoveryRatePeriod", ("data", 2 + n), VALUES, RECOVERY_PERIODS),
    )


def gas_debt_recovery(n: int) -> tuple[Slot, ...]:
    """GasDebtRecoveryN: ZCL debt recovery amount and frequency (0 hourly, 1 daily)."""
    at = f"GasDebtRecovery{n}"
    return (
        Slot(f"{at}/DebtRecoveryRate", zcl(n - 1, 18, 4), INT_LE),
        Slot(
            f"{at}/DebtRecoveryRatePeriod", zcl(n - 1, 17, 1), VALUES, (("HOURLY", 0), ("DAILY", 1))
        ),
    )


def to_prepayment(variant: str) -> UseCaseSpec:
    return UseCaseSpec(
        "ECS03",
        (Slot("Prepayment/DisablementThreshold", ("data", 1), UINT),),
        execution=(("data", 3), ("data", 4)),
        variant=variant,
        arrays=(ArraySlot(("data", 2), CreditChargeConfiguration(twin=variant == "TWIN")),),
    )


PRIMARY_TABLE = "ElecTariffElements/SwitchingTable"
PREPAY = "UpdatePrepayConfigElectricity"
NON_DISABLEMENT = f"{PREPAY}/ElectricityNonDisablementCalendar"
PREPAY_SPECIAL_DAYS = f"{NON_DISABLEMENT}/ElectricitySpecialDays/SpecialDay"
# The prepayment scripts (script table 0.0.10.0.106.255): start / stop non-disablement.
NON_DISABLEMENT_SCRIPTS = NamedScript("NonDisablementScript", (("START", 32), ("STOP", 33)))


def prepay_configuration(use_case: str) -> UseCaseSpec:
    return UseCaseSpec(
        use_case,
        (
            Slot(f"{PREPAY}/DebtRecoveryRateCap", ("data", 4), UINT),
            Slot(f"{PREPAY}/EmergencyCreditLimit", ("data", 7), UINT),
            Slot(f"{PREPAY}/EmergencyCreditThreshold", ("data", 9), UINT),
            Slot(f"{PREPAY}/LowCreditThreshold", ("data", 6), UINT),
            Slot(f"{PREPAY}/MaxMeterBalance", ("data", 1), UINT),
            Slot(f"{PREPAY}/MaxCreditThreshold", ("data", 2), UINT),
        ),
        execution=(("data", 8), *(("data", i) for i in range(10, 18))),
        lists=(
            ListSlot(PREPAY_SPECIAL_DAYS, ("data", 0), SpecialDayEntry()),
            ListSlot(
                f"{NON_DISABLEMENT}/ElectricityNonDisablementSchedule",
                ("data", 3),
                ScheduleEntry(
                    bytes([0, 0, 10, 0, 106, 255]), NON_DISABLEMENT_SCRIPTS, PREPAY_SPECIAL_DAYS
                ),
            ),
        ),
    )


ALCS_SPECIAL_DAYS = "ALCSHCALCSSpecialDays/ALCSHCALCSSpecialDay"
BUILT_IN_SWITCH = "00-00-00-00-00-00-00-00"  # the ESME's own ALCS
AUX_SPECIAL_DAYS = (
    "AuxiliaryControllerSpecialDayDefinitions/AuxiliaryControllerSpecialDayDefinition"
)

RMS = "RMSVoltageSettings"
LIMITERS = (  # limiter objects 0.0.17.0.1-4: threshold, then minimum duration
    "RMSExtremeOverVoltage",
    "RMSExtremeUnderVoltage",
    "RMSVoltageSag",
    "RMSVoltageSwell",
)


def voltage(use_case: str, limiters: int, averages: dict[str, tuple[int, int, int]]) -> UseCaseSpec:
    """6.5: the four RMS limiters from data item ``limiters`` on, and per phase settings
    ``path -> (period, over threshold, under threshold)`` data items."""
    slots = []
    for i, name in enumerate(LIMITERS):
        slots.append(Slot(f"{RMS}/{name}Threshold", ("data", limiters + 2 * i), UINT))
        slots.append(Slot(f"{RMS}/{name}MeasurementPeriod", ("data", limiters + 2 * i + 1), UINT))
    for path, (period, over, under) in averages.items():
        slots.append(Slot(f"{path}/AverageRMSOverVoltageThreshold", ("data", over), UINT))
        slots.append(Slot(f"{path}/AverageRMSUnderVoltageThreshold", ("data", under), UINT))
        slots.append(Slot(f"{path}/AverageRMSVoltageMeasurementPeriod", ("data", period), UINT))
    return uc(use_case, *slots)


def phase(n: int) -> str:
    return f"PolyPhaseVoltageSettings[Phase={n}]/PhaseVoltageSettings"


SINGLE_PHASE = "SinglePhaseVoltageSettings"

AUX_N = "@auxiliaryControllerN"


def aux_controller(use_case: str) -> UseCaseSpec:
    return uc(
        use_case,
        Slot(AUX_N, ("obis", 0, 4), UINT, offset=116),
        Slot(AUX_N, ("obis", 1, 4), UINT, offset=116),
        Slot("StartDateTime", ("data", 0), COSEM),
        Slot("EndDateTime", ("data", 1), COSEM),
        Slot(
            "CommandedStateLevel",
            ("data", 2),
            UINT,
            offset=0x1000,
            terms=(("@present:InputFromControlledLoad", 0x1000), (AUX_N, 0x100)),
        ),
    )


def legacy(current: str, earlier: str) -> Choice:
    """A read whose use case GBCS superseded: the earlier one for devices that predate it."""
    return Choice("@legacy", {"no": uc(current), "yes": uc(earlier)})


def by_variant(single: str, polyphase: str) -> Choice:
    """ESME use cases with a separate polyphase variant."""
    return Choice("@esme-variant", {"A": uc(single), "B": uc(single), "C": uc(polyphase)})


def gas(use_case: str) -> dict[DeviceType, Mapping]:
    """A gas read answered by the GSME or, from its mirror, the GPF."""
    return {GSME: uc(use_case), GPF: uc(use_case)}


def log_period(use_case: str, spec_index: int = 0) -> UseCaseSpec:
    """A log read whose selective access is a range of capture times (seconds since 2000)."""
    return uc(
        use_case,
        Slot("ReadLogPeriod/StartDateTime", ("selection", spec_index, 1), SECONDS),
        Slot("ReadLogPeriod/EndDateTime", ("selection", spec_index, 2), SECONDS),
    )


def clock_slots() -> tuple[Slot, ...]:
    return (
        Slot("CurrentDateTime", ("data", 1, 1), COSEM),
        Slot("CurrentDateTime+TolerancePeriod", ("data", 1, 2), COSEM),
    )


CREDENTIAL_TYPE = Slot(
    "CredentialType",
    ("bytes", 2, 4),
    Conversion.VALUES,
    (("Digital Signature", 0x03020780), ("Key Agreement", 0x03020308)),
)


def gas_clock_slots() -> tuple[Slot, ...]:
    """GCS28: DER SEQUENCE of two GeneralizedTimes, the validity interval."""
    return (
        Slot("CurrentDateTime", at(4, 15), Conversion.GENERALIZED_TIME),
        Slot("CurrentDateTime+TolerancePeriod", at(21, 15), Conversion.GENERALIZED_TIME),
    )


def protected_log(use_case: str) -> UseCaseSpec:
    """A protected log read (an ACTION on a data-protection object): the log period is the
    from/to COSEM date-times of the protected object's selective access."""
    return uc(
        use_case,
        Slot("ReadLogPeriod/StartDateTime", ("data", 0, 0, 0, 4, 1, 0), COSEM),
        Slot("ReadLogPeriod/EndDateTime", ("data", 0, 0, 0, 4, 1, 1), COSEM),
    )


# 6.22: which alert filter each DUIS ConfigureAlertBehaviour choice sets (ESME).
ALERT_FILTERS: tuple[tuple[str, str, tuple[tuple[str, tuple[int, ...]], ...]], ...] = (
    ("ElectricitySupplierAlerts", "ECS25a", SUPPLIER_GROUPS),
    ("ElectricitySupplierHANAlertSettings", "ECS25a1", SUPPLIER_GROUPS),
    ("ElectricitySupplierAlarmSettings", "ECS25a2", SUPPLIER_GROUPS),
    ("ElectricitySupplierLoggingSettings", "ECS25a3", SUPPLIER_GROUPS),
    ("ElectricityNetworkOperatorAlerts", "ECS25b", NETWORK_OPERATOR_GROUPS),
    ("ElectricityNetworkOperatorLoggingSettings", "ECS25b3", NETWORK_OPERATOR_GROUPS),
)


def alert_behaviour() -> Mapping:
    """The ESME's 6.22: the use case of whichever alert-settings element the body carries."""
    mapping: Mapping | None = None
    for element, use_case, groups in reversed(ALERT_FILTERS):
        spec = UseCaseSpec(use_case, leaves=(LeafSlot(("data", 0), AlertFilter(element, groups)),))
        mapping = Choice(
            f"@present:{element}", {"yes": spec, **({"no": mapping} if mapping else {})}
        )
    assert mapping is not None
    return mapping


def join(use_case: str, method: JoinMethod, *partners: DeviceType) -> UseCaseSpec:
    return uc(use_case, codec=JoinDevice(method, frozenset(partners)))


MAPPINGS: dict[str, dict[DeviceType, Mapping]] = {
    # --- joins: the other device's type (and, method C, certificate) from the inventory.
    # Critical: the ESME joins a PPMID or HCALCS (A1), the HCALCS the ESME (A2), the gas
    # meter a PPMID (C); non-critical: the gas meter its gas proxy (B), the PPMID the ESME
    # (A2) or the gas meter (C).
    "8.7.1": {
        ESME: join("CS03A1", JoinMethod.A_INITIATOR, PPMID, HCALCS),
        HCALCS: join("CS03A2Critical", JoinMethod.A_RESPONDER, ESME),
        GSME: join("CS03CCritical", JoinMethod.C, PPMID),
    },
    "8.7.2": {
        GSME: join("CS03B", JoinMethod.B, GPF),
        PPMID: Choice(
            "@other-device-type",
            {
                "ESME": join("CS03A2NonCritical", JoinMethod.A_RESPONDER, ESME),
                "GSME": join("CS03CNonCritical", JoinMethod.C, GSME),
            },
        ),
    },
    # --- a replaced comms hub's HAN (extended PAN id, device ids and keys), restored from the
    # backup the DCC keeps; sent by the DCC with the user as supplementary remote party
    "8.12.1": {CHF: uc("CCS03", codec=HanDeviceLogRestore())},
    # --- a replaced gas proxy's device log, restored on the new one by the DCC
    "8.12.2": {GPF: uc("GCS59", codec=GpfDeviceLogRestore(), dcc_originates=True)},
    # --- alert behaviour: the ESME's alert filters; the GSME's ZCL event configuration
    "6.22": {ESME: alert_behaviour(), GSME: uc("GCS20", codec=GasAlertConfiguration())},
    # --- prepayment, tariff and supply actions without parameters
    "1.7": {ESME: uc("ECS05")},
    "2.5": {ESME: uc("ECS09"), GSME: uc("GCS06")},
    "3.5": {ESME: uc("ECS14"), GSME: uc("GCS11")},
    # --- instantaneous reads
    "4.1.1": {ESME: uc("ECS17b"), **gas("GCS13a")},
    "4.1.2": {ESME: uc("ECS17d"), **gas("GCS13c")},
    "4.1.3": {ESME: uc("ECS17e")},
    "4.1.4": gas("GCS13b"),
    "4.2": {ESME: uc("ECS17a")},
    "4.3": {ESME: uc("ECS19"), **gas("GCS14")},
    "4.11.1": {ESME: uc("ECS24"), GSME: uc("GCS21f")},
    "4.11.2": {ESME: uc("ECS24b")},
    "4.12.1": {ESME: uc("ECS18b")},
    "4.12.2": {ESME: uc("ECS18a")},
    "4.13": {ESME: uc("ECS26a"), GSME: uc("GCS21b")},
    "4.15": {ESME: uc("ECS27")},
    "4.16": {ESME: uc("ECS17c")},
    # The gas meter's balance: GCS60a (answered by the GSME or, from its mirror, the GPF);
    # GCS60 on gas meters that predate it.
    "4.18": {ESME: uc("ECS82"), GSME: legacy("GCS60a", "GCS60"), GPF: uc("GCS60a")},
    # --- device configuration reads
    "6.2.1": {ESME: by_variant("ECS26b", "ECS26k")},
    "6.2.2": {ESME: uc("ECS26c")},
    "6.2.5": {ESME: uc("ECS26f")},
    "6.2.7": {ESME: uc("ECS40"), GSME: uc("GCS46")},
    "6.2.8": {GSME: uc("GCS21a")},
    "6.2.9": {ESME: uc("ECS26j"), GSME: uc("GCS21j")},
    "6.2.10": {
        ESME: Choice("@role", {"IS": uc("ECS25r1"), "ES": uc("ECS25r1"), "ED": uc("ECS25r2")}),
        GSME: uc("GCS20r"),
    },
    "6.4.2": {ESME: uc("ECS28b")},
    "6.27": {ESME: by_variant("ECS29e", "ECS29f")},
    # Sub-GHz configuration: the channel page masks (pages 28-31) and the thresholds,
    # percentages and duty cycles in hundredths.
    "6.28": {
        CHF: UseCaseSpec(
            "DBCH04",
            (
                Slot("NormalLimitedDutyCycleThreshold", ("data", 0, 4), UINT, decimals=2),
                Slot("LimitedCriticalDutyCycleThreshold", ("data", 0, 5), UINT, decimals=2),
                Slot("MaximumSubGHzChannelChangesPerWeek", ("data", 0, 6), UINT),
                Slot("GSMECurfew", ("data", 0, 7), UINT),
                Slot("ChannelQuieterThreshold", ("data", 0, 8), UINT),
                Slot("ChannelNoisierThreshold", ("data", 0, 9), UINT),
                Slot("NonGSMEPoorCommsPercentageThreshold", ("data", 0, 10), UINT, decimals=2),
                Slot("NonGSMEPoorCommsMeasurementPeriods", ("data", 0, 11), UINT),
                Slot("LocalCHNoiseMeasurementPeriod", ("data", 0, 12), UINT),
                Slot("LocalCHFailurePercentage", ("data", 0, 13), UINT, decimals=2),
                Slot("LocalCHRetryPercentage", ("data", 0, 14), UINT, decimals=2),
            ),
            leaves=(
                LeafSlot(("data", 0, 0), ChannelMask("LowerBandSubGHzChannels0To26", 28, 0, 27)),
                LeafSlot(("data", 0, 1), ChannelMask("LowerBandSubGHzChannels27To34", 29, 27, 8)),
                LeafSlot(("data", 0, 2), ChannelMask("LowerBandSubGHzChannels35To61", 30, 35, 27)),
                LeafSlot(("data", 0, 3), ChannelMask("UpperBandSubGHzChannels0To26", 31, 0, 27)),
            ),
        )
    },
    "6.29": {CHF: uc("DBCH05")},
    "6.30": {CHF: uc("DBCH03")},
    "6.31": {CHF: uc("DBCH01")},
    # --- supply
    "7.1": {ESME: uc("ECS42")},
    "7.2": {ESME: uc("ECS43"), GSME: uc("GCS32")},
    "7.3": {ESME: uc("ECS44"), GSME: uc("GCS39")},
    "7.4": {ESME: uc("ECS45"), GSME: uc("GCS33")},
    "7.7": {ESME: uc("ECS61a")},
    "7.14": {ESME: uc("ECS61d")},
    "7.15": {ESME: uc("ECS61e")},
    # --- logs
    "6.13": {
        ESME: Choice(
            "LogToRead",
            {
                "Event": log_period("ECS35a"),
                "Security": log_period("ECS35b"),
                "PowerEvent": log_period("ECS35e"),
                "ALCSEvent": Choice(
                    "@legacy", {"no": log_period("ECS35g"), "yes": log_period("ECS35f")}
                ),
            },
        ),
        CHF: Choice(
            "LogToRead",
            {"Event": log_period("ECS35c"), "Security": log_period("ECS35d")},
        ),
        GSME: Choice(
            "LogToRead",
            {
                "GSMEEvent": gas_event_log("CS10a"),
                "GSMESecurity": gas_event_log("CS10b"),
                "Event": gas_event_log("CS10a"),
                "Security": gas_event_log("CS10b"),
            },
        ),
    },
    # --- logs and profiles
    "4.4.2": {ESME: protected_log("ECS20b"), GSME: gas_snapshot_log("GCS15b")},
    "4.4.3": {
        ESME: uc(
            "ECS20c",
            *(
                Slot(path, ("data", 0, 0, profile, 4, 1, edge), COSEM)
                for profile in (0, 1)
                for edge, path in enumerate(LOG_PERIOD)
            ),
        ),
        GSME: gas_snapshot_log("GCS15c"),
    },
    # Debt payment and prepayment credit logs: read back from the start of the period (the
    # DCC keeps only the entries up to its end); GetDebtRepaymentLog takes a latest end time.
    "4.4.4": {
        ESME: log_period("ECS20a"),
        GSME: uc(
            "GCS15d",
            Slot(START, ("from", 0), Conversion.SECONDS_2000_BE),
            Slot(END, zcl(0, 0, 4), Conversion.SECONDS_2000_LE),
        ),
    },
    "4.4.5": {
        ESME: log_period("ECS20d"),
        GSME: uc("GCS15e", Slot(START, ("from", 0), Conversion.SECONDS_2000_BE), unused=(END,)),
    },
    "4.6.1": {ESME: protected_log("ECS21a"), GSME: gas_snapshot_log("GCS16a")},
    "4.6.2": {ESME: log_period("ECS21c")},
    "4.8.1": {ESME: protected_log("ECS22b"), GSME: gas_sampled_data("GCS17", HALF_HOUR)},
    "4.8.2": {ESME: log_period("ECS22c")},
    "4.8.3": {ESME: log_period("ECS22a")},
    "4.10": {
        ESME: Choice(
            "@esme-variant",
            {
                "A": log_period("ECS23", 4),
                "B": log_period("ECS23", 4),
                "C": log_period("ECS23b", 4),
            },
        ),
        # The GSME's network data log is read whole; the DCC keeps the period asked for.
        GSME: uc("GCS18", unused=LOG_PERIOD),
    },
    "4.14": {
        ESME: protected_log("ECS21b"),
        GSME: gas_snapshot_log("GCS16b"),
        GPF: gas_snapshot_log("GCS16b"),
    },
    "4.17": {ESME: protected_log("ECS66"), GPF: gas_sampled_data("GCS61", DAY)},
    # --- prepayment and supplier settings
    "1.5": {
        ESME: Choice(
            "@present:PrepaymentMode/ResetMeterBalance",
            {
                "no": uc("ECS04a", Slot("PrepaymentMode/AdjustMeterBalance", ("data", 0), UINT)),
                "yes": uc("ECS04b"),
            },
        ),
        GSME: Choice(
            "@present:PrepaymentMode",
            {
                "yes": Choice(
                    "@present:PrepaymentMode/ResetMeterBalance",
                    {
                        "no": gas_balance("GCS40a", "PrepaymentMode"),
                        "yes": gas_balance("GCS40b", None),
                    },
                ),
                "no": Choice(
                    "@present:CreditMode/ResetMeterBalance",
                    {
                        "no": gas_balance("GCS40c", "CreditMode"),
                        "yes": gas_balance("GCS40d", None),
                    },
                ),
            },
        ),
    },
    # Payment mode to credit: the ESME's tariff-to-register settings (single or twin element)
    # activated at the execution date-time; on the GSME issuer event id at 15, time at 19.
    "1.6": {
        ESME: Choice(
            "@present:Credit",
            {
                "yes": Choice(
                    "@esme-variant",
                    {
                        "A": uc("ECS02", execution=(("data", 2),), variant="SINGLE"),
                        "B": uc("ECS02", execution=(("data", 2),), variant="TWIN"),
                    },
                ),
                # To prepayment: the disablement threshold and the credit/charge settings.
                "no": Choice(
                    "@esme-variant",
                    {"A": to_prepayment("SINGLE"), "B": to_prepayment("TWIN")},
                ),
            },
        ),
        GSME: Choice(
            "@present:Credit",
            {
                "yes": uc(
                    "GCS02",
                    Slot(NOW, at(15, 4), Conversion.SECONDS_2000_LE),
                    execution=(at(19, 4),),
                ),
                # ZCL Change Payment Mode: payment control configuration 0x0097, with
                # debt collection suspended while disabled (0x0400) and not collected from
                # emergency credit (0x0800); the cut-off value is the disablement threshold.
                "no": uc(
                    "GCS03",
                    Slot(NOW, zcl(0, 4, 4), LE_TIME),
                    Slot(
                        "=151",
                        zcl(0, 12, 2),
                        UINT_LE,
                        terms=(
                            ("Prepayment/SuspendDebtEmergency=false", 0x800),
                            ("Prepayment/SuspendDebtDisabled=true", 0x400),
                        ),
                    ),
                    Slot("Prepayment/DisablementThreshold", zcl(0, 14, 4), INT_LE),
                    execution=(zcl(0, 8, 4),),
                ),
            },
        ),
    },
    # Gas: ZCL Display Message (message id = time of issue). Future-dated service requests
    # with the "DSP" pattern are held by the DCC and sent when due: their GBCS is immediate.
    "3.1": {
        ESME: uc("ECS10", Slot("SupplierMessage", ("data", 0), TEXT)),
        GSME: uc(
            "GCS07",
            Slot(NOW, zcl(0, 0, 4), LE_TIME),
            Slot("SupplierMessage", zstr(0, 11), TEXT),
        ),
    },
    # Gas: ZCL Publish Change of Tenancy (issuer event id, implementation date-time).
    "3.2": {
        ESME: uc("ECS12", Slot("RestrictionDateTime", ("data", 0), COSEM)),
        **{
            dev: uc(
                "GCS09",
                Slot(NOW, zcl(0, 4, 4), LE_TIME),
                Slot("RestrictionDateTime", zcl(0, 9, 4), LE_TIME),
            )
            for dev in (GSME, GPF)
        },
    },
    "3.4": {
        ESME: uc(
            "ECS16",
            Slot("SupplierName", ("data", 1), TEXT),
            Slot("SupplierTelephoneNumber", ("data", 0), TEXT),
        ),
        # Gas: ZCL Change of Supplier (issuer event id, name and contact details as trailing
        # strings).
        GSME: uc(
            "GCS44",
            Slot(NOW, zcl(0, 4, 4), LE_TIME),
            Slot("SupplierName", zstr(0, 21, 0), TEXT),
            Slot("SupplierTelephoneNumber", zstr(0, 21, 1), TEXT),
        ),
    },
    "6.12": {
        ESME: uc(
            "ECS34",
            Slot("LowMediumPowerThreshold", ("data", 0, 0), UINT),
            Slot("MediumHighPowerThreshold", ("data", 0, 1), UINT),
        )
    },
    "6.25": {
        ESME: uc(
            "ECS81",
            Slot(
                "SupplyTamperState",
                ("data", 0),
                VALUES,
                (("Locked", True), ("Unchanged", False)),
            ),
        )
    },
    "7.12": {ESME: uc("ECS38", Slot("RandomisedOffsetLimit", ("data", 0), UINT))},
    # Maximum demand: the configurable period's start and end (two single-action schedule
    # entries), and the registers to reset (one ACTION each, for the elements present).
    "6.18.1": {
        ESME: uc(
            "ECS37",
            Slot("MaximumDemandTimePeriodSchedule/StartTime", ("data", 0, 0, 4), COSEM_TIME),
            Slot("MaximumDemandTimePeriodSchedule/EndTime", ("data", 0, 1, 4), COSEM_TIME),
        )
    },
    "6.18.2": {
        ESME: uc(
            "ECS57",
            optional=(
                ("@present:MaxDemandActivePowerImportValue", 0),
                ("@present:MaxDemandConfigTimeActivePowerImportValue", 1),
                ("@present:MaxDemandActivePowerExportValue", 2),
            ),
        )
    },
    # Boost button: one SET per auxiliary load; a load named "true" is added (7.9) or
    # removed (7.10), the others are left as they are.
    "7.9": {
        ESME: uc(
            "ECS62Add", optional=tuple((f"AddToBoostButton[{i + 1}]=true", i) for i in range(5))
        )
    },
    "7.10": {
        ESME: uc(
            "ECS62Remove",
            optional=tuple((f"RemoveFromBoostButton[{i + 1}]=true", i) for i in range(5)),
        )
    },
    # Auxiliary controller N: the commanded period (two date-times of the controller's own
    # objects, logical name e-field 116 + N) and the script (0x10 or, driven by the
    # controlled load's input, 0x20, | N) << 8 | level.
    "7.13": {ESME: aux_controller("ECS47a")},
    "7.16": {ESME: aux_controller("ECS47e")},
    # Daily reset of the tariff block counter matrix: a midnight, every-day schedule entry.
    # (Turning it off needs an empty schedule, which no RTDS command shows: refused.)
    "6.26": {ESME: Choice("DailyTariffBlockCounterMatrixReset", {"true": uc("ECS48")})},
    # Configuration reads with several RTDS use cases: the current ("all periodicities",
    # identity with tamper state) variants.
    # (the earlier variants for devices that predate them).
    "6.2.3": {ESME: legacy("ECS26l", "ECS26d"), GSME: legacy("GCS21k", "GCS21d")},
    "6.2.4": {
        ESME: legacy("ECS26m", "ECS26e"),
        CHF: legacy("ECS26n", "ECS26i"),
        GSME: legacy("GCS21m", "GCS21e"),
    },
    # --- load limiting: settings, then their activation date-times
    "6.4.1": {
        ESME: uc(
            "ECS28a",
            Slot("LoadLimitPeriod", ("data", 2), UINT),
            Slot("LoadLimitPowerThreshold", ("data", 1), UINT),
            Slot("LoadLimitRestorationPeriod", ("data", 3), UINT),
            Slot(
                "LoadLimitSupplyState",
                ("data", 0),
                VALUES,
                (("Disable", True), ("Unchanged", False)),
            ),
            execution=(("data", 4), ("data", 5), ("data", 6), ("data", 7)),
        )
    },
    # --- clock: the validity interval is [CurrentDateTime, CurrentDateTime + TolerancePeriod]
    "6.11": {ESME: uc("ECS70", *clock_slots()), GSME: uc("GCS28", *gas_clock_slots())},
    "8.1.1": {
        ESME: uc("ECS70Commission", *clock_slots()),
        GSME: uc("GCS28Commission", *gas_clock_slots()),
    },
    # --- MPxNs
    "6.20.1": {
        ESME: Choice(
            "@present:ImportMPANs/SecondaryImportMPAN",
            {"no": uc("ECS39a", Slot("ImportMPANs/ImportMPAN", ("data", 0), TEXT))},
        ),
        GSME: uc(
            "GCS41",
            Slot(NOW, zcl(0, 0, 4), LE_TIME),
            Slot("ImportMPRN", zstr(0, 12), TEXT),
        ),
    },
    "6.20.2": {ESME: uc("ECS39b", Slot("ExportMPAN", ("data", 0), TEXT))},
    # --- auxiliary load control: script id = index << 8 | action
    "7.5": {
        ESME: uc(
            "ECS47Activate",
            Slot("ActivateALCSHCALCS/Duration", ("data", 0), UINT),
            Slot("ActivateALCSHCALCS/@index", ("data", 1), UINT, scale=0x100, offset=0x11),
        )
    },
    "7.6": {
        ESME: uc(
            "ECS47Deactivate",
            Slot("DeactivateALCSHCALCS/Duration", ("data", 0), UINT),
            Slot("DeactivateALCSHCALCS/@index", ("data", 1), UINT, scale=0x100, offset=0x12),
        )
    },
    "7.8": {
        ESME: uc(
            "ECS47Reset",
            Slot("ResetALCSHCALCS/@index", ("data", 0), UINT, scale=0x100, offset=0x20),
        )
    },
    # --- comms hub device log (sent by the DCC in its own name)
    "8.11": {
        CHF: Choice(
            "RequestType",
            {
                "Add": uc(
                    "CCS01",
                    Slot("DeviceID", ("data", 0, 0), EUI),
                    Slot("AddDeviceToCHFWhitelist/JoinTimePeriod", ("data", 1), UINT),
                    Slot("AddDeviceToCHFWhitelist/InstallCode", ("data", 0, 2), HEX),
                ),
                "Remove": uc("CCS02", Slot("DeviceID", ("data", 0), EUI)),
            },
        )
    },
    "6.32": {CHF: log_period("DBCH02")},
    "7.11": {ESME: log_period("ECS61c", 1)},
    # --- prepayment top-up (UTRN)
    "2.2": {
        ESME: uc("CS01a", Slot("UTRN", ("data", 0), TEXT)),
        GSME: uc("CS01b", Slot("UTRN", at(13, 20), TEXT)),
    },
    # --- HAN join / unjoin: the other device's EUI
    "8.8.1": {ESME: uc("CS04ACCritical", Slot("OtherDeviceID", at(2, 8), EUI))},
    "8.8.2": {
        GSME: uc("CS04B", Slot("OtherDeviceID", at(2, 8), EUI)),
        PPMID: uc("CS04ACNonCritical", Slot("OtherDeviceID", at(2, 8), EUI)),
        HCALCS: uc("CS04ACNonCritical", Slot("OtherDeviceID", at(2, 8), EUI)),
        DeviceType.IHD: uc("CS04ACNonCritical", Slot("OtherDeviceID", at(2, 8), EUI)),
    },
    # --- security credentials: the device certificate is the payload
    "6.15.2": {
        dev: uc("CS02d", Slot("DeviceCertificate", ("payload",), Conversion.BASE64))
        for dev in (ESME, GSME, CHF, GPF, PPMID, HCALCS)
    },
    # --- event logs
    "3.3": {
        ESME: Choice(
            "ESMEEventLogType", {"ESME": uc("ECS15a"), "ALCS": uc("ECS15c"), "": uc("ECS15a")}
        ),
        **{dev: uc("CS11") for dev in (GSME, PPMID, HCALCS, DeviceType.IHD)},
    },
    # --- device credentials: which certificate (a DER BIT STRING of the key usage)
    "6.17": {dev: uc("CS02c", CREDENTIAL_TYPE) for dev in (ESME, GSME, CHF, GPF, PPMID, HCALCS)},
    # Which roles' credentials to describe (CS02f on current ESMEs, CS02a otherwise).
    "6.24.1": {
        ESME: Choice(
            "@legacy",
            {
                "no": uc("CS02fMAC", codec=CredentialDetails()),
                "yes": uc("CS02aMAC", codec=CredentialDetails()),
            },
        ),
        **{
            dev: uc("CS02aMAC", codec=CredentialDetails())
            for dev in (GSME, CHF, GPF, PPMID, HCALCS, SAPC)
        },
    },
    "6.24.2": {dev: uc("CS02e", CREDENTIAL_TYPE) for dev in (ESME, GSME, CHF, GPF, PPMID, HCALCS)},
    # --- device join details (the DUIS ReadSecurityDetails flag does not change the command)
    "8.9": {
        **{dev: uc("CS07") for dev in (GSME, PPMID, HCALCS, DeviceType.IHD)},
        # The comms hub's device log: with the security credential hashes (CCS07) or with
        # the last communication times (CCS06); CCS05/CCS04 on earlier hubs.
        CHF: Choice(
            "@legacy",
            {
                "no": Choice(
                    "@present:ReadSecurityDetails", {"yes": uc("CCS07"), "no": uc("CCS06")}
                ),
                "yes": uc("CCS05CCS04"),
            },
        ),
    },
    # --- misc
    "9.1": {ESME: uc("ECS50"), GSME: uc("GCS36")},
    "11.2": {
        ESME: uc("ECS52"),
        CHF: uc("ECS52"),
        SAPC: uc("ECS52"),
        GSME: uc("GCS38"),
        PPMID: uc("CS08"),
        HCALCS: uc("CS08"),
    },
    # DCC-scheduled: the gas network data log is recorded as of the time of issue.
    # --- secondary element tariff: the activity calendar's passive seasons, week and day
    # profiles, the special days, the TOU prices; all activated at the execution date-time.
    "1.1.2": {
        ESME: UseCaseSpec(
            "ECS01c",
            (Slot("PriceElements/PriceScale", ("data", 0, 0, 1), UINT),),
            execution=(("data", 5), ("data", 6), ("data", 7)),
            lists=(
                ListSlot("PriceElements/ElectricityPriceElement", ("data", 0, 2), PriceEntry()),
                ListSlot("SwitchingTable/Seasons/Season", ("data", 1), SeasonEntry()),
                ListSlot("SwitchingTable/WeekProfiles/WeekProfile", ("data", 2), WeekEntry()),
                ListSlot("SwitchingTable/DayProfiles/DayProfile", ("data", 3), DayEntry()),
                ListSlot("SpecialDays/SpecialDay", ("data", 4), TariffSpecialDay()),
            ),
        )
    },
    # Primary element tariff: the active calendar's passive tables (TOU action n runs script
    # n, block action n script 100 + n), the block thresholds of the 8 TOU bands, the
    # currency, the standing charge and the whole price table.
    "1.1.1": {
        GSME: uc("GCS01a", codec=GasTariff()),
        ESME: UseCaseSpec(
            "ECS01a",
            (
                Slot("ElecTariffElements/CurrencyUnits", ("data", 12), VALUES, (("GBP", True),)),
                Slot(f"{ELECTRICITY_PRICES}/StandingCharge", ("data", 13, 2, 0, 1), UINT),
                Slot(f"{ELECTRICITY_PRICES}/StandingChargeScale", ("data", 13, 0, 1), UINT),
                Slot(f"{ELECTRICITY_PRICES}/PriceScale", ("data", 14, 0, 1), UINT),
            ),
            execution=tuple(("data", i) for i in range(15, 21)),
            lists=(
                ListSlot(f"{PRIMARY_TABLE}/Seasons/Season", ("data", 0), SeasonEntry()),
                ListSlot(f"{PRIMARY_TABLE}/WeekProfiles/WeekProfile", ("data", 1), WeekEntry()),
                ListSlot(
                    f"{PRIMARY_TABLE}/DayProfiles/DayProfile",
                    ("data", 2),
                    DayEntry(tou_base=0, block_base=100),
                ),
                ListSlot(
                    "ElecTariffElements/SpecialDays/SpecialDay", ("data", 3), TariffSpecialDay()
                ),
            ),
            arrays=(
                *(ArraySlot(("data", 3 + band), BlockThresholds(band)) for band in range(1, 9)),
                ArraySlot(("data", 14, 2), PrimaryPrices()),
            ),
        ),
    },
    # Primary element prices: the standing charge and the whole TOU and block price table;
    # on the GSME the ZCL tariff information and price matrix.
    "1.2.1": {
        GSME: uc("GCS01b", codec=GasPrices()),
        ESME: UseCaseSpec(
            "ECS01b",
            (
                Slot(f"{ELECTRICITY_PRICES}/StandingCharge", ("data", 0, 2, 0, 1), UINT),
                Slot(f"{ELECTRICITY_PRICES}/StandingChargeScale", ("data", 0, 0, 1), UINT),
                Slot(f"{ELECTRICITY_PRICES}/PriceScale", ("data", 1, 0, 1), UINT),
            ),
            execution=(("data", 2), ("data", 3)),
            arrays=(ArraySlot(("data", 1, 2), PrimaryPrices()),),
        ),
    },
    "1.2.2": {
        ESME: UseCaseSpec(
            "ECS01d",
            (Slot("PriceElements/PriceScale", ("data", 0, 0, 1), UINT),),
            execution=(("data", 1),),
            lists=(
                ListSlot("PriceElements/ElectricityPriceElement", ("data", 0, 2), PriceEntry()),
            ),
        )
    },
    # --- prepayment configuration: thresholds and the non-disablement calendar (special
    # days table and schedule), activated at the execution date-time. ECS08 on meters that
    # predate ECS08a (which sets the maximum meter balance through another attribute).
    "2.1": {
        GSME: uc("GCS05", codec=GasPrepaymentConfiguration()),
        ESME: Choice(
            "@legacy", {"no": prepay_configuration("ECS08a"), "yes": prepay_configuration("ECS08")}
        ),
    },
    # --- auxiliary load switch descriptions: one SET per switch described
    "6.14.1": {
        ESME: UseCaseSpec(
            "ECS46a",
            tuple(
                Slot(f"ALCSHCALCSDescription[{n}]/SwitchDescription", ("data", n - 1), TEXT)
                for n in range(1, 6)
            ),
            optional=tuple((f"@present:ALCSHCALCSDescription[{n}]", n - 1) for n in range(1, 6)),
        )
    },
    # --- auxiliary load switch calendar: which switch is which (ALCS or an HCALCS), the
    # special days and the switching schedule
    "6.14.2": {
        ESME: UseCaseSpec(
            "ECS46c",
            tuple(
                Slot(
                    f"SwitchTypeAndId[{n}]/HCALCS",
                    ("data", n - 1),
                    EUI,
                    default=BUILT_IN_SWITCH,
                    default_means=f"SwitchTypeAndId[{n}]/ALCS",
                )
                for n in range(1, 6)
            ),
            execution=(("data", 7), ("data", 8)),
            optional=tuple((f"@present:SwitchTypeAndId[{n}]", n - 1) for n in range(1, 6)),
            lists=(
                ListSlot(ALCS_SPECIAL_DAYS, ("data", 5), SpecialDayEntry("", "@index")),
                ListSlot(
                    "ALCSHCALCSConnectionSchedule",
                    ("data", 6),
                    ScheduleEntry(
                        bytes([0, 0, 10, 0, 103, 255]),
                        SwitchScript(),
                        ALCS_SPECIAL_DAYS,
                        times="ALCSScheduleDatesAndTime",
                        special_day_ids="SpecialDaysApplicability",
                        special_day_id="@index",
                        dates_as_parts=True,
                    ),
                ),
            ),
        )
    },
    # --- auxiliary controller calendar: special days and the schedule of controller levels
    "6.14.3": {
        dev: UseCaseSpec(
            "ECS46d",
            execution=(("data", 2), ("data", 3)),
            lists=(
                ListSlot(AUX_SPECIAL_DAYS, ("data", 0), SpecialDayEntry("", "@identifier")),
                ListSlot(
                    "AuxiliaryControllerSchedule",
                    ("data", 1),
                    ScheduleEntry(
                        bytes([0, 0, 10, 0, 103, 255]),
                        AuxiliaryControllerScript(),
                        AUX_SPECIAL_DAYS,
                        times="AuxiliaryControllerSchedulePeriodAndTime",
                        special_day_ids="SpecialDaysApplicability",
                        special_day_id="@identifier",
                        dates_as_parts=True,
                    ),
                ),
            ),
        )
        for dev in (ESME, SAPC)
    },
    # --- voltage: limiters and average RMS settings; the counters reset too (ECS29a/b)
    # unless RMSVoltageCountersNotReset (ECS29c/d). Each use case orders its objects its way.
    "6.5": {
        ESME: Choice(
            "@present:RMSVoltageCountersNotReset",
            {
                "no": Choice(
                    f"@present:{SINGLE_PHASE}",
                    {
                        "yes": voltage("ECS29a", 1, {SINGLE_PHASE: (0, 9, 10)}),
                        "no": voltage(
                            "ECS29b",
                            3,
                            {phase(1): (0, 11, 12), phase(2): (1, 14, 13), phase(3): (2, 16, 15)},
                        ),
                    },
                ),
                "yes": Choice(
                    f"@present:{SINGLE_PHASE}",
                    {
                        "yes": voltage("ECS29c", 3, {SINGLE_PHASE: (2, 1, 0)}),
                        "no": voltage(
                            "ECS29d",
                            9,
                            {phase(1): (6, 1, 0), phase(2): (7, 3, 2), phase(3): (8, 5, 4)},
                        ),
                    },
                ),
            },
        )
    },
    # --- gas: ZCL Publish Conversion Factor (5 decimals) and Publish Calorific Value (1)
    "6.6": {
        GSME: uc(
            "GCS23",
            Slot(NOW, zcl(-1, 0, 4), LE_TIME),
            Slot("ConversionFactor", zcl(0, 8, 4), UINT_LE, decimals=5),
            Slot("CalorificValue", zcl(1, 8, 4), UINT_LE, decimals=1),
        )
    },
    # Uncontrolled gas flow: threshold (divisor 1, or 10000 for the decimal form, GCS24a),
    # stabilisation and measurement periods, then ZCL Set Supply Status (tamper and
    # depletion states: 3 unchanged, 1 armed, i.e. locked when the event happens).
    "6.7": {
        GSME: Choice(
            "@present:UncontrolledGasFlowRate",
            {
                "yes": gas_flow("GCS24", "UncontrolledGasFlowRate", 0),
                "no": gas_flow("GCS24a", "UncontrolledGasFlowRateDecimal", 4),
            },
        )
    },
    # --- gas billing calendar: ZCL Publish Billing Period and Publish Block Period with the
    # period's start and its duration (count and time base: 1 days, 2 weeks, 3 months).
    # GCS25 on meters predating the all-periodicities GCS25a.
    "6.8": {
        ESME: Choice(
            "@legacy",
            {
                "no": UseCaseSpec("ECS30a", arrays=(ArraySlot(("data", 0), BillingCalendar()),)),
                "yes": UseCaseSpec("ECS30", arrays=(ArraySlot(("data", 0), BillingCalendar()),)),
            },
        ),
        GSME: Choice("@legacy", {"no": gas_billing("GCS25a"), "yes": gas_billing("GCS25")}),
    },
    # --- debt: the three debt registers and the recovery settings. On the GSME one ZCL
    # Change Debt per register (time-based 1 and 2, then payment-based).
    "2.3": {
        ESME: uc(
            "ECS07",
            Slot("TimeDebtRegister1", ("data", 7), UINT),
            Slot("TimeDebtRegister2", ("data", 8), UINT),
            Slot("PaymentDebtRegister", ("data", 9), UINT),
            Slot("DebtRecoveryPerPayment", ("data", 2), UINT),
            *elec_debt_recovery(1),
            *elec_debt_recovery(2),
        ),
        GSME: uc(
            "GCS04",
            Slot(NOW, zcl(-1, 0, 4), LE_TIME),
            Slot("TimeDebtRegister1", zcl(0, 5, 4), INT_LE),
            Slot("TimeDebtRegister2", zcl(1, 5, 4), INT_LE),
            Slot("PaymentDebtRegister", zcl(2, 5, 4), INT_LE),
            Slot("DebtRecoveryPerPayment", zcl(2, 22, 2), UINT_LE),
            *gas_debt_recovery(1),
            *gas_debt_recovery(2),
        ),
    },
    # --- security credentials (CS02b) and firmware activation (CS06): DER built in code
    # The supplier replaces the load controller's cells (CS02g, ESME only).
    "6.15.1": {
        dev: Choice(
            "RemotePartyRole",
            {
                "Supplier": uc("CS02bSupplierBySupplier", codec=CredentialsUpdate(wrapped=True)),
                "NetworkOperator": uc("CS02bNOByNO", codec=CredentialsUpdate(wrapped=True)),
                **(
                    {
                        "LoadController": uc(
                            "CS02gLoadControllerBySupplier", codec=CredentialsUpdate(wrapped=True)
                        )
                    }
                    if dev is ESME
                    else {}
                ),
            },
        )
        for dev in (ESME, GSME, CHF, GPF, PPMID, HCALCS, SAPC)
    },
    # Handover of a DCC-controlled device: the DCC replaces the cells it holds in the
    # user's role with the user's certificates, signing as that role itself.
    "6.21": {
        dev: Choice(
            "RemotePartyRole",
            {
                "Supplier": uc(
                    "CS02bSupplierBySupplierHandover",
                    codec=CredentialsUpdate(),
                    dcc_originates=True,
                ),
                "NetworkOperator": uc(
                    "CS02bNOByNOHandover", codec=CredentialsUpdate(), dcc_originates=True
                ),
            },
        )
        for dev in (CHF, GPF)
    },
    "6.23": {
        dev: uc(
            "CS02bSupplierByTransCoS",
            codec=ChangeOfSupplierCredentialsUpdate(),
            dcc_originates=True,
            unused=("ImportMPxN",),
        )
        for dev in (ESME, GSME, CHF, GPF, PPMID, HCALCS, SAPC)
    },
    "8.5": {
        dev: uc(
            "CS02bACBByACB",
            codec=CredentialsUpdate(
                fixed=CredentialsReplacementMode.ACB_BY_ACB, future_dated=False
            ),
            dcc_originates=True,
            unused=("ExecutionDateTime",),
        )
        for dev in (ESME, GSME, CHF, GPF, PPMID, HCALCS, SAPC)
    },
    "11.3": {
        dev: uc("CS06", codec=FirmwareActivation())
        for dev in (ESME, GSME, CHF, PPMID, HCALCS, SAPC)
    },
    "14.1": {
        dev: uc("GCS31", Slot(NOW, zcl(0, 0, 4), Conversion.SECONDS_2000_LE)) for dev in (GSME, GPF)
    },
}
