"""Replay a GlobalPlatform secure-channel vector file and report, per vector set, what passed.

:func:`replay_vectors` reads a JSON file laid out like ``shared/conformance/gp/scp_vectors.json``
(CMAC and SP 800-108 KDF vectors, AES KCVs, SCP02, SCP03, GlobalPlatformPro key checks, SCP11)
and runs every check it can: the host side must produce the recorded commands and accept the
recorded responses; where the card's secret is published (all SCP03 sets), a card session given
the recorded host messages must produce the recorded responses. Nothing raises on a bad vector:
each problem is a failed check with its reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_private_key

from smarthydra.card.gp.apdu import ResponseApdu
from smarthydra.card.gp.certificates import parse_certificate_store
from smarthydra.card.gp.kdf import (
    KeyPurpose,
    diversify_emv,
    diversify_kdf3,
    diversify_visa2,
    kcv_3des,
    kcv_aes,
    kdf_counter_cmac,
    scp01_session_key,
    scp03_kdf,
)
from smarthydra.card.gp.scp02 import Scp02HostSession, Scp02StaticKeys, derive_scp02_session_keys
from smarthydra.card.gp.scp03 import (
    I_S16,
    InitializeUpdateResponse,
    Scp03CardConfig,
    Scp03CardSession,
    Scp03HostSession,
    Scp03StaticKeys,
    derive_session_keys,
)
from smarthydra.card.gp.scp11 import Scp11HostSession, Scp11Variant
from smarthydra.crypto.primitives import aes_cmac

Json = dict[str, Any]


@dataclass(frozen=True)
class CheckFailure:
    set_id: str
    check: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"set": self.set_id, "check": self.check, "detail": self.detail}


@dataclass
class SetResult:
    set_id: str
    source: str
    passed: int = 0
    failed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def checks(self) -> int:
        return self.passed + self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.set_id,
            "source": self.source,
            "checks": self.checks,
            "passed": self.passed,
            "failed": self.failed,
            "notes": list(self.notes),
        }


@dataclass
class ConformanceReport:
    path: str
    sets: list[SetResult] = field(default_factory=list)
    failures: list[CheckFailure] = field(default_factory=list)

    @property
    def checks(self) -> int:
        return sum(s.checks for s in self.sets)

    @property
    def passed(self) -> int:
        return sum(s.passed for s in self.sets)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.sets)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.checks > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sets": [s.to_dict() for s in self.sets],
            "checks": self.checks,
            "passed": self.passed,
            "failed": self.failed,
            "failures": [f.to_dict() for f in self.failures],
        }


class _Recorder:
    def __init__(self, report: ConformanceReport, set_id: str, source: str) -> None:
        self.report = report
        self.result = SetResult(set_id, source)
        report.sets.append(self.result)

    def check(self, name: str, fn: Callable[[], object]) -> bool:
        """Run one check: ``fn`` returns True, or anything else (a reason); exceptions fail it."""
        try:
            outcome = fn()
        except Exception as exc:  # a malformed vector or a bug is a failed check, not a crash
            outcome = f"{type(exc).__name__}: {exc}"
        if outcome is True:
            self.result.passed += 1
            return True
        self.result.failed += 1
        self.report.failures.append(CheckFailure(self.result.set_id, name, str(outcome)))
        return False

    def equal(self, name: str, got: Callable[[], bytes], expected_hex: str) -> bool:
        def run() -> object:
            value = got()
            expected = bytes.fromhex(expected_hex)
            return (
                True if value == expected else f"got {value.hex().upper()}, expected {expected_hex}"
            )

        return self.check(name, run)

    def note(self, text: str) -> None:
        self.result.notes.append(text)


def _source(entry: Json) -> str:
    src = entry.get("source", {})
    if isinstance(src, dict):
        return str(src.get("repo") or src.get("package") or "")
    return str(src)


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def replay_vectors(path: str | Path) -> ConformanceReport:
    """Replay every vector set in ``path``; never raises for bad content (only for I/O)."""
    report = ConformanceReport(str(path))
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        rec = _Recorder(report, "file", str(path))
        rec.check("load", partial(str, f"cannot read vector file: {exc}"))
        return report
    if not isinstance(doc, dict):
        _Recorder(report, "file", str(path)).check("load", lambda: "top level is not an object")
        return report
    handlers: dict[str, Callable[[ConformanceReport, Any], None]] = {
        "cmac_aes_nist_sp800_38b": _cmac,
        "kbkdf_nist_sp800_108_counter_cmac_middle_fixed_r8": _kbkdf,
        "aes_kcv": _aes_kcv,
        "scp02": _scp02_sets,
        "scp03": _scp03_sets,
        "scp03_gpp_plaintextkeys": _gpp,
        "scp11": _scp11_sets,
    }
    for key, value in doc.items():
        if key.startswith("_"):
            continue
        handler = handlers.get(key)
        if handler is None:
            rec = _Recorder(report, key, "")
            rec.check("known section", partial(str, f"unknown vector section {key!r}"))
            continue
        try:
            handler(report, value)
        except Exception as exc:  # a section with the wrong shape
            rec = _Recorder(report, key, "")
            rec.check("section shape", partial(str, f"{type(exc).__name__}: {exc}"))
    return report


# --- primitives ------------------------------------------------------------------------------


def _cmac(report: ConformanceReport, section: Json) -> None:
    rec = _Recorder(report, "cmac_aes_nist_sp800_38b", _source(section))
    for i, v in enumerate(section["vectors"]):
        rec.equal(
            f"vector {i} (AES-{v.get('key_bits')})",
            partial(aes_cmac, _h(v["key"]), _h(v["message"])),
            v["output"],
        )


def _kbkdf(report: ConformanceReport, section: Json) -> None:
    rec = _Recorder(report, "kbkdf_sp800_108_cmac_middle_r8", _source(section))
    for v in section["vectors"]:
        rec.equal(
            f"{v['prf']} L={v['L_bits']} count={v['count']}",
            partial(
                kdf_counter_cmac,
                _h(v["KI"]),
                _h(v["DataBeforeCtrData"]),
                _h(v["DataAfterCtrData"]),
                v["L_bits"] // 8,
            ),
            v["KO"],
        )


def _aes_kcv(report: ConformanceReport, entries: list[Json]) -> None:
    rec = _Recorder(report, "pysim_kcv", _source(entries[0]) if entries else "")
    for v in entries:
        rec.equal(f"KCV of {v['key']}", partial(kcv_aes, _h(v["key"])), v["kcv"])


def _gpp(report: ConformanceReport, section: Json) -> None:
    rec = _Recorder(report, "gpp_TestPlaintextKeys", _source(section))
    consts = section["constants"]
    kdd = _h(consts["KDD"])
    purposes = {"ENC": KeyPurpose.ENC, "MAC": KeyPurpose.MAC, "DEK": KeyPurpose.DEK}
    templates = {
        "emv": (diversify_emv, kcv_3des),
        "visa2": (diversify_visa2, kcv_3des),
        "kdf3": (diversify_kdf3, kcv_aes),
    }
    key16 = _h(consts["KEY_16"])
    zero = bytes(16)
    for test in section["tests"]:
        name = test["name"]
        template = test.get("kdf_template")
        if template is not None:
            diversify, kcv = templates[template]
            master = _h(consts[test["master_key"]])
            for item in test["kcv_asserts"]:
                purpose = purposes[item["what"]]
                rec.equal(
                    f"{name} {item['what']}",
                    partial(_compose, kcv, partial(diversify, master, kdd, purpose)),
                    item["kcv"],
                )
        elif name == "testDiversification_KDF3_ExternalVector":
            rec.equal(
                name,
                partial(diversify_kdf3, _h(test["master"]), _h(test["kdd"]), KeyPurpose.ENC),
                test["expectedDerivedKey"],
            )
        elif name == "testSessionKeys_SCP01":
            values = {
                "sEnc": lambda: kcv_3des(scp01_session_key(key16, zero[:8], zero[8:])),
                "sMac": lambda: kcv_3des(scp01_session_key(key16, zero[:8], zero[8:])),
                "sDek": lambda: kcv_3des(key16),  # SCP01 uses the static DEK
            }
            for item in test["kcv_asserts"]:
                rec.equal(f"{name} {item['what']}", values[item["what"]], item["kcv"])
        elif name == "testSessionKeys_SCP02":
            sk = derive_scp02_session_keys(Scp02StaticKeys(key16, key16, key16), b"\x00\x00")
            scp02 = {"sEnc": sk.s_enc, "sMac": sk.s_mac, "sDek": sk.s_dek, "sRmac": sk.s_rmac}
            for item in test["kcv_asserts"]:
                rec.equal(
                    f"{name} {item['what']}", partial(kcv_3des, scp02[item["what"]]), item["kcv"]
                )
        elif name == "testSessionKeys_SCP03":
            scp03 = {
                "sEnc": lambda: scp03_kdf(key16, 0x04, kdd, 128),
                "sMac": lambda: scp03_kdf(key16, 0x06, kdd, 128),
                "sRmac": lambda: scp03_kdf(key16, 0x07, kdd, 128),
                "sDek": lambda: key16,  # SCP03 uses the static DEK
            }
            for item in test["kcv_asserts"]:
                rec.equal(
                    f"{name} {item['what']}",
                    partial(_compose, kcv_aes, scp03[item["what"]]),
                    item["kcv"],
                )
        elif name == "testScp3Kdf":
            for item in test["kcv_asserts"]:
                rec.equal(
                    name, lambda: kcv_aes(kdf_counter_cmac(key16, zero, zero, 16)), item["kcv"]
                )
        else:
            rec.check(name, partial(str, f"no replay known for GlobalPlatformPro test {name}"))


# --- SCP02 -----------------------------------------------------------------------------------


def _scp02_sets(report: ConformanceReport, entries: list[Json]) -> None:
    for s in entries:
        _guarded(_scp02_set, _Recorder(report, str(s.get("id", "?")), _source(s)), s)


def _scp02_set(rec: _Recorder, s: Json) -> None:
    if True:
        keys = Scp02StaticKeys(_h(s["KIC"]), _h(s["KID"]), _h(s["KIK"]))
        iu = _h(s["init_update_cmd"])
        host = Scp02HostSession(keys, host_challenge=_h(s["host_challenge"]), kvn=iu[2])
        rec.equal("INITIALIZE UPDATE command", host.initialize_update, s["init_update_cmd"])
        response = _h(s["init_update_resp"]) + b"\x90\x00"
        if not rec.check(
            "card cryptogram verifies",
            lambda: bool(host.process_initialize_update_response(response)),
        ):
            return
        rec.equal(
            "EXTERNAL AUTHENTICATE command",
            lambda: host.external_authenticate(s["security_level"]),
            s["ext_auth_cmd"],
        )
        for i, step in enumerate(s.get("steps", [])):
            rec.equal(f"step {i} wrap", partial(host.wrap, _h(step["plain"])), step["wrapped"])


# --- SCP03 -----------------------------------------------------------------------------------


def _scp03_keys(s: Json) -> Scp03StaticKeys:
    k = s["keys"]
    return Scp03StaticKeys(_h(k["enc"]), _h(k["mac"]), _h(k["dek"]), s.get("kvn", 0x30))


def _iu_response(s: Json) -> bytes:
    if "init_update_resp_with_sw" in s:
        return _h(s["init_update_resp_with_sw"])
    return _h(s["init_update_resp"]) + b"\x90\x00"


def _step_plain(step: Json) -> bytes:
    return _h(step.get("plain") or step["plain_reconstructed"])


def _step_response(step: Json) -> bytes:
    if "wrapped_with_sw" in step:
        return _h(step["wrapped_with_sw"])
    return _h(step["wrapped"]) + _h(step["sw"])


def _aid(s: Json) -> bytes | None:
    for key in ("invoking_aid", "sd_aid"):
        if key in s:
            return _h(s[key])
    return None


def _scp03_sets(report: ConformanceReport, entries: list[Json]) -> None:
    for s in entries:
        rec = _Recorder(report, str(s.get("id", "?")), _source(s))
        _guarded(_scp03_host, rec, s)
        _guarded(_scp03_card, rec, s)


def _guarded(run: Callable[[_Recorder, Json], None], rec: _Recorder, s: Json) -> None:
    """Run one set's replay; a malformed set becomes one failed check, the others still run."""
    try:
        run(rec, s)
    except Exception as exc:
        rec.check("vector set shape", partial(str, f"{type(exc).__name__}: {exc}"))


def _scp03_host(rec: _Recorder, s: Json) -> None:
    keys = _scp03_keys(s)
    iu_cmd = _h(s["init_update_cmd"])
    challenge = _h(s["host_challenge"])
    aid = _aid(s)
    host = Scp03HostSession(
        keys, host_challenge=challenge, s_mode=len(challenge), kvn=iu_cmd[2], aid=aid
    )
    with_le = len(iu_cmd) > 5 + len(challenge)
    rec.equal(
        "host: INITIALIZE UPDATE command",
        lambda: host.initialize_update(with_le),
        s["init_update_cmd"],
    )
    response = _iu_response(s)
    check_name = "host: card cryptogram verifies"
    if aid is not None:
        check_name += " and pseudo-random card challenge matches its counter and AID"
    else:
        rec.note("pseudo-random card challenge not checked: invoking AID not stated in source")
    if not rec.check(check_name, lambda: bool(host.process_initialize_update_response(response))):
        return
    expected = dict(s.get("expected", {}))
    session = host.session_keys
    assert session is not None
    derived = {
        "s_enc": session.s_enc,
        "s_mac": session.s_mac,
        "s_rmac": session.s_rmac,
        "host_cryptogram": host.host_cryptogram or b"",
    }
    for name, value in derived.items():
        if name in expected:
            rec.equal(f"host: {name}", partial(bytes, value), expected[name])
    if "card_challenge" in expected:
        rec.equal("host: card challenge", lambda: host.card_challenge, expected["card_challenge"])
    ext_auth = s.get("ext_auth_cmd") or s["ext_auth_cmd_sl01"]
    level = _h(ext_auth)[2]
    rec.equal(
        "host: EXTERNAL AUTHENTICATE command", lambda: host.external_authenticate(level), ext_auth
    )
    host.mark_authenticated()
    if "mac_chain_after_ext_auth_sl01" in expected:
        rec.equal(
            "host: MAC chaining value after EXTERNAL AUTHENTICATE",
            lambda: host.sm.mac_chaining_value if host.sm else b"",
            expected["mac_chain_after_ext_auth_sl01"],
        )
    for i, step in enumerate(s.get("steps", [])):
        if step["op"] == "wrap":
            rec.equal(
                f"host: step {i} wrap", partial(host.wrap, _step_plain(step)), step["wrapped"]
            )
        else:
            rec.equal(
                f"host: step {i} unwrap",
                partial(_unwrap_data, host.unwrap, _step_response(step)),
                step["plain"],
            )
    if "cdec_test" in s:
        _asterix_cdec(rec, s, keys, challenge, aid)


def _asterix_cdec(
    rec: _Recorder, s: Json, keys: Scp03StaticKeys, challenge: bytes, aid: bytes | None
) -> None:
    test = s["cdec_test"]
    host = Scp03HostSession(keys, host_challenge=challenge, aid=aid)
    host.process_initialize_update_response(_iu_response(s))
    host.external_authenticate(test["security_level"])
    host.mark_authenticated()

    def encrypted_data() -> bytes:
        wrapped = host.wrap(_h(test["plain"]))
        return wrapped[5 : 5 + wrapped[4] - 8]

    rec.equal(
        "host: C-DECRYPTION data of the first command",
        encrypted_data,
        test["expected_encrypted_data"],
    )


def _scp03_card(rec: _Recorder, s: Json) -> None:
    keys = _scp03_keys(s)
    recorded = _iu_response(s)
    parsed = InitializeUpdateResponse.parse(recorded[:-2])
    card_keys = Scp03StaticKeys(keys.enc, keys.mac, keys.dek, parsed.kvn)
    aid = _aid(s)
    counter = parsed.sequence_counter
    config = Scp03CardConfig(
        i_param=parsed.i_param & ~I_S16,
        key_diversification_data=parsed.key_diversification_data,
        aid=aid,
        sequence_counter=(counter - 1) if counter else 0,
        key_sets=(card_keys,),
    )
    # Without the AID the card challenge cannot be derived, so it is injected as captured; with
    # it, the card must derive it (its random source refuses to be used).
    derivable = aid is not None and counter is not None
    card = Scp03CardSession(
        config, random_bytes=_refuse if derivable else (lambda n: parsed.card_challenge[:n])
    )
    name = "card: INITIALIZE UPDATE response"
    if derivable:
        name += " (pseudo-random challenge derived from counter and AID)"
    rec.equal(name, lambda: card.initialize_update(_h(s["init_update_cmd"])), recorded.hex())
    ext_auth = s.get("ext_auth_cmd") or s["ext_auth_cmd_sl01"]
    if not rec.equal(
        "card: EXTERNAL AUTHENTICATE accepted",
        lambda: card.external_authenticate(_h(ext_auth)),
        "9000",
    ):
        return
    for i, step in enumerate(s.get("steps", [])):
        if step["op"] == "wrap":
            rec.equal(
                f"card: step {i} unwrap command",
                partial(_unwrap_command_bytes, card, _h(step["wrapped"])),
                _step_plain(step).hex(),
            )
        else:
            recorded_rsp = _step_response(step)
            data, sw = _h(step["plain"]), int.from_bytes(recorded_rsp[-2:], "big")
            produced = card.wrap_response(data, sw)
            if produced != recorded_rsp and _non_minimal_padding(
                host_plain=data, recorded=recorded_rsp
            ):
                rec.note(
                    f"step {i}: recorded response uses non-minimal padding; card pads minimally"
                )
                continue
            rec.equal(f"card: step {i} wrap response", partial(bytes, produced), recorded_rsp.hex())
    if "cdec_test" in s:
        test = s["cdec_test"]
        card2 = Scp03CardSession(
            config, random_bytes=_refuse if derivable else (lambda n: parsed.card_challenge[:n])
        )
        card2.initialize_update(_h(s["init_update_cmd"]))
        host = Scp03HostSession(keys, host_challenge=_h(s["host_challenge"]), aid=aid)
        host.process_initialize_update_response(recorded)
        card2.external_authenticate(host.external_authenticate(test["security_level"]))
        host.mark_authenticated()
        rec.equal(
            "card: C-DECRYPTION command decrypts",
            lambda: card2.unwrap_command(host.wrap(_h(test["plain"]))).to_bytes(),
            test["plain"],
        )


def _compose(outer: Callable[[bytes], bytes], inner: Callable[[], bytes]) -> bytes:
    return outer(inner())


def _unwrap_data(unwrap: Callable[[bytes], ResponseApdu], raw: bytes) -> bytes:
    return unwrap(raw).data


def _unwrap_command_bytes(card: Scp03CardSession, raw: bytes) -> bytes:
    return card.unwrap_command(raw).to_bytes()


def _refuse(n: int) -> bytes:
    raise RuntimeError("the card challenge must be derived, not drawn at random")


def _non_minimal_padding(host_plain: bytes, recorded: bytes) -> bool:
    """True when the recorded encrypted body is longer than minimal 80-padding would make it."""
    body_len = len(recorded) - 2
    for mac_len in (8, 16):
        enc_len = body_len - mac_len
        if enc_len > 0 and enc_len % 16 == 0 and enc_len > (len(host_plain) // 16 + 1) * 16:
            return True
    return False


# --- SCP11 -----------------------------------------------------------------------------------

_CURVES = {"P256": "secp256r1", "P384": "secp384r1", "BP256": "brainpoolP256r1"}


def _scp11_sets(report: ConformanceReport, entries: list[Json]) -> None:
    for s in entries:
        _guarded(_scp11_set, _Recorder(report, str(s.get("id", "?")), _source(s)), s)


def _scp11_set(rec: _Recorder, s: Json) -> None:
    if True:
        rec.note("card side not replayed: SK.SD is not published (covered by tests with own keys)")
        certs: list[Any] = []

        def leaf_on_curve() -> object:
            certs.extend(parse_certificate_store(_h(s["sd_certificate_store_get_data_bf21"])))
            name = certs[-1].public_key.curve.name
            return True if name == _CURVES.get(s["curve"]) else f"leaf key on {name}"

        if not rec.check("SD certificate store parses; PK.SD on the named curve", leaf_on_curve):
            return
        sk = load_der_private_key(_h(s["sk_oce_ecka_pkcs8"]), None)
        esk = load_der_private_key(_h(s["esk_oce_ecka_pkcs8"]), None)
        if not isinstance(sk, ec.EllipticCurvePrivateKey) or not isinstance(
            esk, ec.EllipticCurvePrivateKey
        ):
            rec.check("OCE keys", partial(str, "OCE keys are not EC keys"))
            return
        variant = {"SCP11a": Scp11Variant.A, "SCP11b": Scp11Variant.B, "SCP11c": Scp11Variant.C}[
            s["variant"]
        ]
        host = Scp11HostSession(
            variant,
            certs[-1].public_key,
            kvn=int(s["kvn"], 16),
            kid=int(s["kid"], 16),
            oce_private_key=sk,
            ephemeral_key=esk,
            key_length=s["session_key_len"],
            s_mode=s["s_mode"],
        )
        rec.equal("host: MUTUAL AUTHENTICATE command", host.authenticate, s["mutual_auth_cmd"])
        if variant is Scp11Variant.C:
            rec.equal(
                "host: predicted SCP11c response",
                host.expected_response,
                s["mutual_auth_resp_with_sw"],
            )
        response = _h(s["mutual_auth_resp_with_sw"])

        def receipt_verifies() -> object:
            host.process_authenticate_response(response)
            return True

        if not rec.check("host: receipt verifies", receipt_verifies):
            return
        for i, step in enumerate(s.get("steps", [])):
            if step["op"] == "wrap":
                rec.equal(
                    f"host: step {i} wrap", partial(host.wrap, _h(step["plain"])), step["wrapped"]
                )
            else:
                rec.equal(
                    f"host: step {i} unwrap",
                    partial(_unwrap_data, host.unwrap, _step_response(step)),
                    step["plain"],
                )


def derive_for_report(keys: Scp03StaticKeys, host_challenge: bytes, card_challenge: bytes) -> bytes:
    """S-ENC||S-MAC||S-RMAC concatenated (a convenience for tools printing session keys)."""
    session = derive_session_keys(keys, host_challenge, card_challenge)
    return session.s_enc + session.s_mac + session.s_rmac
