"""Non-device services (command variant 8): answered by the DCC itself, from its inventory.

- 8.2 Read Inventory: the devices for a DeviceID or an MPxN (``DSPInventory``, at most 17);
- 8.3 Decommission Device: the registered supplier sets the device Decommissioned;
- 8.4 Update Inventory: status Pending / InstalledNotCommissioned, or the device's MPxN;
- 8.14.1-8.14.4 Communications Hub status updates: installed (with or without SM WAN), or
  returned (faulty or not) and withdrawn from service;
- 12.1 Request WAN Matrix: the CSP region and SM WAN coverage of a property (by UPRN, or by
  postcode and address identifier) from the CSPs' coverage table
  (:class:`~smarthydra.wan.coverage.WanCoverage`); a property it does not cover is answered
  in region Unknown, without coverage details, rather than with invented ones;
- 12.2 Device Pre-notification: recorded, so a later commissioning can be checked against it;
- 5.1-5.3 DCC schedules: create (``DSPScheduleID``), read (``DSPSchedulesRead``), delete.
  :meth:`NonDeviceServices.run_due_schedules` turns each due schedule into an on-demand read,
  on the DCC's clock (simulated in tests), queued for dispatch like any accepted request.

Each answer is (response code, optional ResponseMessage element, detail).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from smarthydra.dcc.inventory import DeviceRecord, DeviceType, SmiStatus
from smarthydra.dcc.service import DataCommsCompany, _Refused
from smarthydra.dcc.store import Schedule, ScheduleStore
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import RequestId, ServiceRequest
from smarthydra.eui import Eui64, InvalidEui64

MAX_INVENTORY_DEVICES = 17  # DSPInventory's maxOccurs
MAX_SCHEDULES_READ = 99  # DSPSchedulesRead's maxOccurs

# The schedule's DSP element -> the on-demand service request variant it runs.
DSP_SCHEDULED = {
    "DSPRetrieveImportDailyReadLog": "4.6.1",
    "DSPRetrieveExportDailyReadLog": "4.6.2",
    "DSPReadActiveImportProfileData": "4.8.1",
    "DSPReadReactiveImportProfileData": "4.8.2",
    "DSPReadExportProfileData": "4.8.3",
    "DSPReadNetworkData": "4.10",
    "DSPReadMaximumDemandImportRegisters": "4.12.1",
    "DSPReadMaximumDemandExportRegisters": "4.12.2",
    "DSPReadPrepaymentDailyReadLog": "4.14",
    "DSPReadLoadLimitData": "4.15",
    "DSPReadActivePowerImport": "4.16",
    "DSPRetrieveDailyConsumptionLog": "4.17",
    "DSPRecordNetworkDataGAS": "14.1",
    "DSPReadInstantaneousExportRegisters": "4.2",
}
_MONTHS = {"Monthly": 1, "Quarterly": 3, "Half-Yearly": 6, "Yearly": 12}
_DAYS = {"Daily": 1, "Weekly": 7}


@dataclass(frozen=True)
class NonDeviceAnswer:
    code: ResponseCode
    body: tuple[str, object] | None = None
    detail: str = ""


def next_run(after: dt.datetime, frequency: str) -> dt.datetime:
    """The run after ``after`` for a DUIS ScheduleFrequency (calendar months kept whole)."""
    if frequency in _DAYS:
        return after + dt.timedelta(days=_DAYS[frequency])
    months = _MONTHS.get(frequency)
    if months is None:
        raise ValueError(f"unknown schedule frequency {frequency!r}")
    month = after.month - 1 + months
    year, month = after.year + month // 12, month % 12 + 1
    day = min(after.day, calendar.monthrange(year, month)[1])
    return after.replace(year=year, month=month, day=day)


def _text(parameters: dict[str, object], name: str) -> str:
    value = parameters.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _Refused(ResponseCode.INVALID_REQUEST, f"{name} is missing")
    return value.strip()


def _eui(parameters: dict[str, object], name: str = "DeviceID") -> Eui64:
    try:
        return Eui64.parse(_text(parameters, name))
    except InvalidEui64 as exc:
        raise _Refused(ResponseCode.INVALID_REQUEST, f"{name}: {exc}") from None


def _device_entry(device: DeviceRecord, region: str) -> dict[str, object]:
    entry: dict[str, object] = {
        "DeviceID": device.eui.hyphenated,
        "DeviceType": device.device_type.value,
        "DeviceStatus": device.smi_status.value,
        # The inventory does not record make and model; DUIS requires the elements.
        "DeviceManufacturer": "unrecorded",
        "DeviceModel": "unrecorded",
    }
    if device.mpxn and device.device_type in (DeviceType.ESME, DeviceType.GSME):
        entry["ImportMPxN"] = device.mpxn[:13]
    entry["CSPRegion"] = region.capitalize() if region.capitalize() in (
        "North",
        "Central",
        "South",
    ) else "Unknown"
    return entry


@dataclass
class NonDeviceServices:
    dcc: DataCommsCompany

    @property
    def schedules(self) -> ScheduleStore:
        return ScheduleStore(self.dcc._durable_store())

    def handle(self, request: ServiceRequest) -> NonDeviceAnswer:
        dcc = self.dcc
        try:
            user = dcc._check_user(request.sender, request.role)
            dcc._check_request_id(request.request_id, request.sender)
            variant = dcc._check_variant(request.service_reference_variant, request.role)
            dcc._check_command_variant(variant, request.command_variant, signed=False)
            handler = getattr(self, "_srv_" + variant.variant.replace(".", "_"), None)
            if handler is None:
                raise _Refused(
                    ResponseCode.INVALID_REQUEST,
                    f"non-device service {variant.variant} ({variant.name}) is not provided",
                )
            dcc._raise_counter_floor(request.sender, request.request_id.counter)
            answer: NonDeviceAnswer = handler(request, user.eui)
        except _Refused as refused:
            dcc._refuse(request.request_id, request.sender, refused)
            return NonDeviceAnswer(refused.code, detail=refused.detail)
        dcc._audit(request.sender, f"non-device {request.service_reference_variant}", request.request_id)
        return answer

    # --- 8.x inventory -----------------------------------------------------------------------

    def _owned(self, request: ServiceRequest, device: DeviceRecord) -> None:
        user = self.dcc.users.get(request.sender)
        assert user is not None
        self.dcc._check_ownership(user, request.role, device)

    def _device(self, parameters: dict[str, object]) -> DeviceRecord:
        eui = _eui(parameters)
        device = self.dcc.inventory.device(eui)
        if device is None:
            raise _Refused(ResponseCode.UNKNOWN_DEVICE, f"device {eui} is not in the inventory")
        return device

    def _srv_8_2(self, request: ServiceRequest, _user: Eui64) -> NonDeviceAnswer:
        parameters = request.parameters
        inventory = self.dcc.inventory
        if "DeviceID" in parameters:
            found = [self._device(parameters)]
        elif "MPxN" in parameters:
            mpxn = _text(parameters, "MPxN")
            found = [d for d in inventory.devices() if d.mpxn == mpxn]
        else:
            raise _Refused(
                ResponseCode.INVALID_REQUEST, "this DCC reads its inventory by DeviceID or MPxN"
            )
        if not found:
            raise _Refused(ResponseCode.UNKNOWN_DEVICE, "no device matches")
        entries = [_device_entry(d, inventory.region(d.eui)) for d in found[:MAX_INVENTORY_DEVICES]]
        return NonDeviceAnswer(ResponseCode.SUCCESS, ("DSPInventory", {"Device": entries}))

    def _srv_8_3(self, request: ServiceRequest, _user: Eui64) -> NonDeviceAnswer:
        device = self._device(request.parameters)
        self._owned(request, device)
        self.dcc.inventory.set_status(device.eui, SmiStatus.DECOMMISSIONED)
        return NonDeviceAnswer(ResponseCode.SUCCESS)

    def _srv_8_4(self, request: ServiceRequest, _user: Eui64) -> NonDeviceAnswer:
        parameters = request.parameters
        device = self._device(parameters)
        status = parameters.get("UpdateDeviceStatusExceptCH")
        if isinstance(status, str):
            if device.device_type is DeviceType.COMMS_HUB:
                raise _Refused(ResponseCode.INVALID_REQUEST, "a hub's status is set by 8.14.x")
            self.dcc.inventory.set_status(device.eui, SmiStatus(status.strip()))
            return NonDeviceAnswer(ResponseCode.SUCCESS)
        update = parameters.get("UpdateMPxN")
        if isinstance(update, dict):
            self._owned(request, device)
            mpxn = next((str(v) for v in update.values() if isinstance(v, str)), "")
            if not mpxn:
                raise _Refused(ResponseCode.INVALID_REQUEST, "UpdateMPxN carries no MPxN")
            device.mpxn = mpxn
            return NonDeviceAnswer(ResponseCode.SUCCESS)
        raise _Refused(
            ResponseCode.INVALID_REQUEST,
            "this DCC updates device status (except hubs) and MPxN only",
        )

    def _hub_status(self, request: ServiceRequest, status: SmiStatus) -> NonDeviceAnswer:
        device = self._device(request.parameters)
        if device.device_type is not DeviceType.COMMS_HUB:
            raise _Refused(ResponseCode.INVALID_REQUEST, f"{device.eui} is not a hub")
        self.dcc.inventory.set_status(device.eui, status)
        return NonDeviceAnswer(ResponseCode.SUCCESS)

    def _srv_8_14_1(self, request: ServiceRequest, user: Eui64) -> NonDeviceAnswer:
        """Communications hub installed with SM WAN: the supplier registered for the MPxN it
        was installed for says so, and the hub is commissioned. A hub returned or withdrawn
        cannot be installed again (E5)."""
        hub = self._device(request.parameters)
        if hub.device_type is not DeviceType.COMMS_HUB:
            raise _Refused(ResponseCode.INVALID_REQUEST, f"{hub.eui} is not a hub")
        mpxn = _text(request.parameters, "MPxN")
        registered = self.dcc.inventory.registered_party(mpxn, request.role, self.dcc.clock.now())
        if registered != user:
            raise _Refused(
                ResponseCode.NOT_DEVICE_OWNER,
                f"{user} is not the registered {request.role} for MPxN {mpxn}",
            )
        if hub.smi_status in (SmiStatus.WITHDRAWN, SmiStatus.DECOMMISSIONED):
            raise _Refused(
                ResponseCode.INVALID_SMI_STATUS, f"hub {hub.eui} is {hub.smi_status.value}"
            )
        return self._hub_status(request, SmiStatus.COMMISSIONED)

    def _srv_8_14_2(self, request: ServiceRequest, _user: Eui64) -> NonDeviceAnswer:
        return self._hub_status(request, SmiStatus.INSTALLED_NOT_COMMISSIONED)

    def _srv_8_14_3(self, request: ServiceRequest, _user: Eui64) -> NonDeviceAnswer:
        return self._hub_status(request, SmiStatus.WITHDRAWN)

    def _srv_8_14_4(self, request: ServiceRequest, _user: Eui64) -> NonDeviceAnswer:
        return self._hub_status(request, SmiStatus.WITHDRAWN)

    def _srv_12_1(self, request: ServiceRequest, _user: Eui64) -> NonDeviceAnswer:
        parameters = request.parameters
        coverage = self.dcc.wan_coverage
        echo: dict[str, object]
        if "UPRN" in parameters:
            text = _text(parameters, "UPRN")
            if not (text.isascii() and text.isdigit()) or not 1 <= len(text) <= 12 or int(text) == 0:
                raise _Refused(ResponseCode.INVALID_REQUEST, f"UPRN {text!r} is not a UPRN")
            echo = {"UPRN": text}
            found = coverage.for_uprn(int(text)) if coverage is not None else None
        elif isinstance(parameters.get("PartialAddress"), dict):
            address = parameters["PartialAddress"]
            assert isinstance(address, dict)
            postcode = _text(address, "PostCode")
            echo = {
                "PartialAddress": {
                    "PostCode": postcode,
                    "AddressIdentifier": _text(address, "AddressIdentifier"),
                }
            }
            found = coverage.for_postcode(postcode) if coverage is not None else None
        else:
            raise _Refused(ResponseCode.INVALID_REQUEST, "a WAN matrix needs a UPRN or an address")
        answer: dict[str, object] = {
            "CSPRegion": found.region if found is not None else "Unknown",
            "CSPRegionResponseCode": ResponseCode.SUCCESS.value,
        }
        if found is not None:
            answer["CoverageAvailability"] = "true" if found.available else "false"
            if found.anticipated is not None:
                answer["AnticipatedCoverageDate"] = found.anticipated.isoformat()
            answer["WANTechnology"] = found.technology
            answer["ConnectivityLikelihood"] = found.likelihood
            if found.auxiliary:
                answer["AuxiliaryEquipmentRequired"] = found.auxiliary
            if found.information:
                answer["AdditionalInformation"] = found.information
        return NonDeviceAnswer(
            ResponseCode.SUCCESS,
            ("DSPWANMatrix", {"Request": echo, "DSPWANMatrixResponse": [answer]}),
        )

    def _srv_12_2(self, request: ServiceRequest, _user: Eui64) -> NonDeviceAnswer:
        eui = _eui(request.parameters)
        device_type = _text(request.parameters, "DeviceType")
        if self.dcc.inventory.device(eui) is not None:
            raise _Refused(ResponseCode.INVALID_REQUEST, f"device {eui} is already known")
        store = self.dcc._durable_store()
        store.queue_message(
            str(request.sender),
            str(request.request_id),
            "prenotification",
            {"device": str(eui), "type": device_type},
            self.dcc.clock.now(),
        )
        return NonDeviceAnswer(ResponseCode.SUCCESS)

    # --- 5.x DCC schedules ---------------------------------------------------------------------

    def _srv_5_1(self, request: ServiceRequest, user: Eui64) -> NonDeviceAnswer:
        parameters = request.parameters
        frequency = _text(parameters, "ScheduleFrequency")
        if frequency not in _DAYS and frequency not in _MONTHS:
            raise _Refused(ResponseCode.INVALID_REQUEST, f"frequency {frequency!r}")
        try:
            start = dt.datetime.fromisoformat(_text(parameters, "ScheduleStartDate")[:10])
            end_text = parameters.get("ScheduleEndDate")
            end = dt.datetime.fromisoformat(str(end_text)[:10]) if end_text else None
        except ValueError as exc:
            raise _Refused(ResponseCode.INVALID_REQUEST, f"schedule date: {exc}") from None
        time_text = parameters.get("ScheduleExecutionStartTime")
        if isinstance(time_text, str):
            try:
                at = dt.time.fromisoformat(time_text.rstrip("Z")[:8])
            except ValueError as exc:
                raise _Refused(ResponseCode.INVALID_REQUEST, f"start time: {exc}") from None
            start = start.replace(hour=at.hour, minute=at.minute, second=at.second)
        start = start.replace(tzinfo=dt.UTC)
        end = end.replace(hour=23, minute=59, second=59, tzinfo=dt.UTC) if end else None
        device = self._device(parameters)
        self._owned(request, device)
        element = next((name for name in DSP_SCHEDULED if name in parameters), None)
        if element is None:
            raise _Refused(ResponseCode.INVALID_REQUEST, "no DSP scheduled read in the request")
        srv = DSP_SCHEDULED[element]
        variant = self.dcc.matrix.get(srv)
        if variant is None or not variant.allows(request.role):
            raise _Refused(ResponseCode.ROLE_NOT_ELIGIBLE, f"role {request.role} may not run {srv}")
        value = parameters[element]
        schedule_id = self.schedules.add(
            user=str(user),
            device=str(device.eui),
            srv=srv,
            role=request.role,
            parameters={"element": element, "value": value if isinstance(value, dict) else {}},
            start=start,
            end=end,
            frequency=frequency,
        )
        return NonDeviceAnswer(ResponseCode.SUCCESS, ("DSPScheduleID", str(schedule_id)))

    def _find(self, request: ServiceRequest, user: Eui64) -> list[Schedule]:
        parameters = request.parameters
        if "DSPScheduleID" in parameters:
            text = _text(parameters, "DSPScheduleID")
            if not (text.isascii() and text.isdigit()):
                raise _Refused(ResponseCode.INVALID_REQUEST, "DSPScheduleID is not a number")
            found = self.schedules.find(user=str(user), schedule_id=int(text))
        else:
            found = self.schedules.find(user=str(user), device=str(_eui(parameters)))
        if not found:
            raise _Refused(ResponseCode.INVALID_REQUEST, "no such schedule of this user")
        return found

    def _srv_5_2(self, request: ServiceRequest, user: Eui64) -> NonDeviceAnswer:
        entries = []
        for schedule in self._find(request, user)[:MAX_SCHEDULES_READ]:
            details: dict[str, object] = {
                "ScheduleFrequency": schedule.frequency,
                "ScheduleStartDate": schedule.start.date().isoformat(),
            }
            if schedule.end is not None:
                details["ScheduleEndDate"] = schedule.end.date().isoformat()
            details["DSPScheduledServiceReference"] = ".".join(schedule.srv.split(".")[:2])
            details["DSPScheduledServiceReferenceVariant"] = schedule.srv
            details["DeviceID"] = Eui64.parse(schedule.device).hyphenated
            details[str(schedule.parameters["element"])] = schedule.parameters["value"]
            entries.append(
                {"DSPScheduleID": str(schedule.schedule_id), "DSPScheduleDetails": details}
            )
        return NonDeviceAnswer(
            ResponseCode.SUCCESS, ("DSPSchedulesRead", {"DSPSchedules": entries})
        )

    def _srv_5_3(self, request: ServiceRequest, user: Eui64) -> NonDeviceAnswer:
        self.schedules.deactivate([s.schedule_id for s in self._find(request, user)])
        return NonDeviceAnswer(ResponseCode.SUCCESS)

    def run_due_schedules(self) -> int:
        """Queue every due schedule's read as an accepted request; returns how many."""
        now = self.dcc.clock.now()
        made = 0
        for schedule in self.schedules.due(now):
            run_at = schedule.next_run
            parameters = _on_demand_parameters(schedule, run_at)
            counter = int(run_at.timestamp() * 1000)
            rid = RequestId(Eui64.parse(schedule.user), Eui64.parse(schedule.device), counter)
            key = f"{rid}#schedule-{schedule.schedule_id}-{schedule.runs}"
            payload: dict[str, object] = {"parameters": parameters, "execution": None}
            if self.schedules.ran(
                schedule, next_run(run_at, schedule.frequency), request_key=key, payload=payload, at=now
            ):
                made += 1
                self.dcc._audit_actor("DCC scheduler", "scheduled read queued", request_id=key)
        return made


def _on_demand_parameters(schedule: Schedule, run_at: dt.datetime) -> dict[str, object]:
    """A DSP read's offsets (days back from the run, and times) as an on-demand ReadLogPeriod."""
    value = schedule.parameters.get("value")
    if not isinstance(value, dict) or "StartDateOffset" not in value:
        return {}
    try:
        start_day = run_at.date() + dt.timedelta(days=int(str(value["StartDateOffset"])))
        end_day = run_at.date() + dt.timedelta(days=int(str(value["EndDateOffset"])))
        start_time = dt.time.fromisoformat(str(value["StartTime"]).rstrip("Z")[:8])
        end_time = dt.time.fromisoformat(str(value["EndTime"]).rstrip("Z")[:8])
    except (KeyError, ValueError):
        return {}
    start = dt.datetime.combine(start_day, start_time, dt.UTC)
    end = dt.datetime.combine(end_day, end_time, dt.UTC)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return {"ReadLogPeriod": {"StartDateTime": start.strftime(stamp), "EndDateTime": end.strftime(stamp)}}


__all__ = ["DSP_SCHEDULED", "NonDeviceAnswer", "NonDeviceServices", "next_run"]
