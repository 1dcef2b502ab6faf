"""Service request variant x device type -> use case and how its payload is filled.

One entry per device service request variant of the DUIS service request matrix that this
DCC transforms. A use case with no slots is a parameter-less read or action: its payload is
the template with the header values substituted. ``Choice`` entries pick the use case from a
body value or a fact about the request (``@role``, ``@esme-variant``, ``@execution``).
"""

from __future__ import annotations

from smarthydra.dcc.transform.device import DeviceType
from smarthydra.dcc.transform.spec import (
    NOW,
    BodyCodec,
    Choice,
    Conversion,
    Mapping,
    Slot,
    UseCaseSpec,
)

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
) -> UseCaseSpec:
    return UseCaseSpec(use_case, tuple(slots), execution, variant, unused, codec)


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
        Slot(f"{START}..{END}", zcl(0, 7, 2), INT_LE, scale=interval),
    )


def gas_event_log(use_case: str) -> UseCaseSpec:
    """ZCL GetEventLog: start and end time of the events wanted."""
    return uc(
        use_case,
        Slot(START, zcl(0, 3, 4), Conversion.SECONDS_2000_LE),
        Slot(END, zcl(0, 7, 4), Conversion.SECONDS_2000_LE),
    )


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


MAPPINGS: dict[str, dict[DeviceType, Mapping]] = {
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
    "4.18": {ESME: uc("ECS82"), GSME: uc("GCS60"), GPF: uc("GCS60a")},
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
                "ALCSEvent": log_period("ECS35g"),
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
    "4.4.3": {GSME: gas_snapshot_log("GCS15c")},
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
        GSME: uc(
            "GCS15e", Slot(START, ("from", 0), Conversion.SECONDS_2000_BE), unused=(END,)
        ),
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
    "4.14": {ESME: protected_log("ECS21b"), GSME: gas_snapshot_log("GCS16b")},
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
                )
            },
        ),
        GSME: Choice(
            "@present:Credit",
            {
                "yes": uc(
                    "GCS02",
                    Slot(NOW, at(15, 4), Conversion.SECONDS_2000_LE),
                    execution=(at(19, 4),),
                )
            },
        ),
    },
    # Gas: ZCL Display Message (message id = time of issue, start time = execution).
    "3.1": {
        ESME: uc("ECS10", Slot("SupplierMessage", ("data", 0), TEXT)),
        GSME: uc(
            "GCS07",
            Slot(NOW, zcl(0, 0, 4), LE_TIME),
            Slot("SupplierMessage", zstr(0, 11), TEXT),
            execution=(zcl(0, 5, 4),),
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
        # Gas: ZCL Change of Supplier (issuer event id, implementation date-time, name and
        # contact details as trailing strings).
        GSME: uc(
            "GCS44",
            Slot(NOW, zcl(0, 4, 4), LE_TIME),
            Slot("SupplierName", zstr(0, 21, 0), TEXT),
            Slot("SupplierTelephoneNumber", zstr(0, 21, 1), TEXT),
            execution=(zcl(0, 9, 4),),
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
    # Configuration reads with several RTDS use cases: the current ("all periodicities",
    # identity with tamper state) variants.
    "6.2.3": {ESME: uc("ECS26l"), GSME: uc("GCS21k")},
    "6.2.4": {ESME: uc("ECS26m"), CHF: uc("ECS26n"), GSME: uc("GCS21m")},
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
            execution=(zcl(0, 4, 4),),
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
    "6.24.2": {dev: uc("CS02e", CREDENTIAL_TYPE) for dev in (ESME, GSME, CHF, GPF, PPMID, HCALCS)},
    # --- device join details (the DUIS ReadSecurityDetails flag does not change the command)
    "8.9": {dev: uc("CS07") for dev in (GSME, PPMID, HCALCS, DeviceType.IHD)},
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
    "14.1": {
        dev: uc("GCS31", Slot(NOW, zcl(0, 0, 4), Conversion.SECONDS_2000_LE)) for dev in (GSME, GPF)
    },
}
