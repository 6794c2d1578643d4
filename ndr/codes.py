"""Gateway and network error codes mapped to RFC 3463 status codes: data, in one place.

Each table maps what a gateway, an SMSC or a modem says about one part to a
``Verdict``: is the part delivered, still on its way, or failed for good,
and which enhanced status code a delivery status notification carries.

* Kannel DLR types (the ``type`` of a dlr-url, a bit mask).
* SMPP message states (``stat:`` of a delivery receipt, or ``message_state``).
* SMPP ``command_status`` of a refused ``submit_sm``.
* GSM MAP error codes (3GPP TS 29.002), which SMSCs pass in ``err:``.
* GSM status-report TP-ST values (3GPP TS 23.040, 9.2.3.15).
* ``+CMS ERROR`` codes of a modem (3GPP TS 27.005, 3.2.5; 0-255 are the
  network's RP and TP causes).

The first digit of a status always agrees with the verdict: 2 for delivered
and relayed, 4 for pending; a failure is 5, or 4 when the cause was temporary but the
network gave up (expired, 4.4.7, as Postfix reports an expired message).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["delivered", "relayed", "pending", "failed"]
DELIVERED: Outcome = "delivered"
RELAYED: Outcome = "relayed"  # taken by the next hop, which has not said more yet
PENDING: Outcome = "pending"
FAILED: Outcome = "failed"


@dataclass(frozen=True)
class Verdict:
    """What a code says about a part, with its RFC 3463 status and words for people."""

    outcome: Outcome
    status: str
    text: str

    @property
    def final(self) -> bool:
        """Delivered or failed: nothing more will come for this part."""
        return self.outcome in (DELIVERED, FAILED)


def _v(outcome: Outcome, status: str, text: str) -> Verdict:
    return Verdict(outcome, status, text)


UNKNOWN = Verdict(PENDING, "4.0.0", "unknown status")

# -- Kannel: dlr-url %d, a bit mask -------------------------------------------------------

KANNEL_DLR: Mapping[int, Verdict] = {
    1: _v(DELIVERED, "2.0.0", "delivered to the phone"),
    2: _v(FAILED, "5.0.0", "delivery to the phone failed"),
    4: _v(PENDING, "4.4.1", "buffered at the SMSC: the phone is not reachable now"),
    8: _v(RELAYED, "2.0.0", "submitted to the SMSC"),
    16: _v(FAILED, "5.3.0", "rejected by the SMSC"),
}

# -- SMPP 3.4: message_state (5.2.28) and the words of a delivery receipt's stat: --------------

SMPP_STATE: Mapping[str, Verdict] = {
    "ENROUTE": _v(PENDING, "4.4.1", "en route: the SMSC is still trying"),
    "DELIVRD": _v(DELIVERED, "2.0.0", "delivered to the phone"),
    "EXPIRED": _v(FAILED, "4.4.7", "validity period expired before the phone could be reached"),
    "DELETED": _v(FAILED, "5.3.0", "deleted at the SMSC"),
    "UNDELIV": _v(FAILED, "5.0.0", "undeliverable"),
    "ACCEPTD": _v(DELIVERED, "2.0.0", "accepted on behalf of the subscriber"),
    "UNKNOWN": _v(PENDING, "4.0.0", "the SMSC does not know the state"),
    "REJECTD": _v(FAILED, "5.7.1", "rejected by the SMSC"),
    "SCHEDULED": _v(PENDING, "4.4.1", "scheduled for later delivery"),
    "SKIPPED": _v(FAILED, "5.0.0", "skipped by the SMSC"),
}
# message_state as a number (submit/query responses), and the long spellings some SMSCs write.
SMPP_STATE_NUMBERS: Mapping[int, str] = {
    1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
    6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD", 9: "SKIPPED",
}  # fmt: skip
SMPP_STATE_ALIASES: Mapping[str, str] = {
    "DELIVERED": "DELIVRD", "UNDELIVERABLE": "UNDELIV", "ACCEPTED": "ACCEPTD",
    "REJECTED": "REJECTD", "EN_ROUTE": "ENROUTE",
}  # fmt: skip

# -- SMPP 3.4: command_status of a submit_sm_resp (5.1.3) ---------------------------------------

SMPP_COMMAND_STATUS: Mapping[int, Verdict] = {
    0x00000000: _v(RELAYED, "2.0.0", "ESME_ROK: accepted by the SMSC"),
    0x00000001: _v(FAILED, "5.3.4", "ESME_RINVMSGLEN: message too long"),
    0x00000002: _v(FAILED, "5.5.2", "ESME_RINVCMDLEN: invalid command length"),
    0x00000003: _v(FAILED, "5.5.1", "ESME_RINVCMDID: invalid command"),
    0x00000004: _v(PENDING, "4.3.5", "ESME_RINVBNDSTS: not bound for this command"),
    0x00000008: _v(PENDING, "4.3.0", "ESME_RSYSERR: SMSC system error"),
    0x0000000A: _v(FAILED, "5.1.7", "ESME_RINVSRCADR: invalid sender address"),
    0x0000000B: _v(FAILED, "5.1.1", "ESME_RINVDSTADR: invalid destination address"),
    0x0000000E: _v(PENDING, "4.3.5", "ESME_RINVPASWD: the SMSC refused the password"),
    0x0000000F: _v(PENDING, "4.3.5", "ESME_RINVSYSID: the SMSC refused the system id"),
    0x00000014: _v(PENDING, "4.3.1", "ESME_RMSGQFUL: SMSC message queue full"),
    0x00000033: _v(FAILED, "5.5.3", "ESME_RINVNUMDESTS: invalid number of destinations"),
    0x00000043: _v(FAILED, "5.6.0", "ESME_RINVESMCLASS: invalid esm_class"),
    0x00000045: _v(PENDING, "4.0.0", "ESME_RSUBMITFAIL: submit_sm failed"),
    0x00000048: _v(FAILED, "5.1.7", "ESME_RINVSRCTON: invalid sender address type"),
    0x00000050: _v(FAILED, "5.1.3", "ESME_RINVDSTTON: invalid destination address type"),
    0x00000058: _v(PENDING, "4.4.5", "ESME_RTHROTTLED: throttled, too many messages"),
    0x00000061: _v(FAILED, "5.5.4", "ESME_RINVSCHED: invalid scheduled delivery time"),
    0x00000062: _v(FAILED, "5.5.4", "ESME_RINVEXPIRY: invalid validity period"),
    0x00000064: _v(PENDING, "4.0.0", "ESME_RX_T_APPN: temporary error at the SMSC"),
    0x00000065: _v(FAILED, "5.0.0", "ESME_RX_P_APPN: permanent error at the SMSC"),
    0x00000066: _v(FAILED, "5.7.1", "ESME_RX_R_APPN: rejected by the SMSC"),
}

# -- GSM MAP error codes (3GPP TS 29.002), as SMSCs pass them in a receipt's err: ----------------

MAP_ERRORS: Mapping[int, Verdict] = {
    1: _v(FAILED, "5.1.1", "unknown subscriber"),
    5: _v(FAILED, "5.1.1", "unidentified subscriber"),
    6: _v(PENDING, "4.4.1", "absent subscriber: the phone is off or out of coverage"),
    9: _v(FAILED, "5.7.1", "illegal subscriber"),
    10: _v(FAILED, "5.2.1", "bearer service not provisioned"),
    11: _v(FAILED, "5.2.1", "teleservice not provisioned: the subscriber cannot receive SMS"),
    12: _v(FAILED, "5.7.1", "illegal equipment"),
    13: _v(FAILED, "5.7.1", "call barred"),
    21: _v(FAILED, "5.3.3", "facility not supported"),
    27: _v(PENDING, "4.4.1", "absent subscriber"),
    31: _v(PENDING, "4.2.0", "subscriber busy for MT SMS"),
    32: _v(PENDING, "4.2.2", "SM delivery failure: the phone's memory is full"),
    33: _v(PENDING, "4.3.1", "message waiting list full"),
    34: _v(PENDING, "4.3.0", "system failure"),
    35: _v(FAILED, "5.5.0", "data missing"),
    36: _v(FAILED, "5.5.0", "unexpected data value"),
}

# -- GSM status report TP-ST (3GPP TS 23.040, 9.2.3.15): named values, then ranges ------------------

TP_STATUS: Mapping[int, Verdict] = {
    0x00: _v(DELIVERED, "2.0.0", "received by the phone"),
    0x01: _v(DELIVERED, "2.0.0", "forwarded to the phone, receipt not confirmed"),
    0x02: _v(DELIVERED, "2.0.0", "replaced by the service centre"),
    0x20: _v(PENDING, "4.4.5", "congestion, still trying"),
    0x21: _v(PENDING, "4.2.0", "phone busy, still trying"),
    0x22: _v(PENDING, "4.4.1", "no response from the phone, still trying"),
    0x23: _v(PENDING, "4.7.0", "service rejected, still trying"),
    0x24: _v(PENDING, "4.3.0", "quality of service not available, still trying"),
    0x25: _v(PENDING, "4.3.0", "error in the phone, still trying"),
    0x40: _v(FAILED, "5.4.0", "remote procedure error"),
    0x41: _v(FAILED, "5.3.3", "incompatible destination"),
    0x42: _v(FAILED, "5.7.1", "connection rejected by the phone"),
    0x43: _v(FAILED, "5.1.1", "not obtainable"),
    0x44: _v(FAILED, "5.3.0", "quality of service not available"),
    0x45: _v(FAILED, "5.4.4", "no interworking available"),
    0x46: _v(FAILED, "4.4.7", "validity period expired"),
    0x47: _v(FAILED, "5.0.0", "deleted by the sender"),
    0x48: _v(FAILED, "5.3.0", "deleted by the service centre"),
    0x49: _v(FAILED, "5.0.0", "the message does not exist"),
    0x60: _v(FAILED, "4.4.5", "congestion, no more attempts"),
    0x61: _v(FAILED, "4.2.0", "phone busy, no more attempts"),
    0x62: _v(FAILED, "4.4.1", "no response from the phone, no more attempts"),
    0x63: _v(FAILED, "4.7.0", "service rejected, no more attempts"),
    0x64: _v(FAILED, "4.3.0", "quality of service not available, no more attempts"),
    0x65: _v(FAILED, "4.3.0", "error in the phone, no more attempts"),
}
# Reserved and service-centre-specific values take the meaning of their range.
TP_STATUS_RANGES: tuple[tuple[int, int, Verdict], ...] = (
    (0x00, 0x1F, _v(DELIVERED, "2.0.0", "delivered (service centre specific status)")),
    (0x20, 0x3F, _v(PENDING, "4.0.0", "temporary error, still trying")),
    (0x40, 0x5F, _v(FAILED, "5.0.0", "permanent error")),
    (0x60, 0x7F, _v(FAILED, "4.0.0", "temporary error, no more attempts")),
)

# -- +CMS ERROR (3GPP TS 27.005, 3.2.5): network causes 0-255, then the modem's own -----------------

CMS_ERRORS: Mapping[int, Verdict] = {
    1: _v(FAILED, "5.1.1", "unassigned (unallocated) number"),
    8: _v(FAILED, "5.7.1", "operator determined barring"),
    10: _v(FAILED, "5.7.1", "call barred"),
    21: _v(FAILED, "5.7.1", "short message transfer rejected"),
    27: _v(PENDING, "4.4.1", "destination out of service"),
    28: _v(FAILED, "5.1.1", "unidentified subscriber"),
    29: _v(FAILED, "5.3.3", "facility rejected"),
    30: _v(FAILED, "5.1.1", "unknown subscriber"),
    38: _v(PENDING, "4.4.0", "network out of order"),
    41: _v(PENDING, "4.0.0", "temporary failure"),
    42: _v(PENDING, "4.4.5", "congestion"),
    47: _v(PENDING, "4.3.0", "resources unavailable"),
    50: _v(FAILED, "5.7.1", "requested facility not subscribed"),
    69: _v(FAILED, "5.3.3", "requested facility not implemented"),
    81: _v(FAILED, "5.5.0", "invalid short message transfer reference value"),
    95: _v(FAILED, "5.6.0", "invalid message"),
    96: _v(FAILED, "5.6.0", "invalid mandatory information"),
    97: _v(FAILED, "5.5.0", "message type non-existent or not implemented"),
    98: _v(FAILED, "5.5.0", "message not compatible with short message protocol state"),
    99: _v(FAILED, "5.5.0", "information element non-existent or not implemented"),
    111: _v(FAILED, "5.5.0", "protocol error"),
    127: _v(FAILED, "5.4.0", "interworking error"),
    128: _v(FAILED, "5.3.3", "telematic interworking not supported"),
    129: _v(FAILED, "5.3.3", "short message type 0 not supported"),
    130: _v(FAILED, "5.3.3", "cannot replace short message"),
    143: _v(FAILED, "5.6.0", "unspecified TP-PID error"),
    144: _v(FAILED, "5.6.3", "data coding scheme (alphabet) not supported"),
    145: _v(FAILED, "5.3.3", "message class not supported"),
    159: _v(FAILED, "5.6.3", "unspecified TP-DCS error"),
    160: _v(FAILED, "5.5.1", "command cannot be actioned"),
    161: _v(FAILED, "5.5.1", "command unsupported"),
    175: _v(FAILED, "5.5.0", "unspecified TP-Command error"),
    176: _v(FAILED, "5.3.3", "TPDU not supported"),
    192: _v(PENDING, "4.4.5", "service centre busy"),
    193: _v(FAILED, "5.7.1", "no service centre subscription"),
    194: _v(PENDING, "4.3.0", "service centre system failure"),
    195: _v(FAILED, "5.1.3", "invalid destination address"),
    196: _v(FAILED, "5.7.1", "destination barred"),
    197: _v(FAILED, "5.3.0", "rejected as a duplicate"),
    198: _v(FAILED, "5.3.3", "TP-VPF not supported"),
    199: _v(FAILED, "5.3.3", "TP-VP not supported"),
    208: _v(PENDING, "4.2.2", "SIM SMS storage full"),
    209: _v(FAILED, "5.3.3", "no SMS storage capability in SIM"),
    210: _v(PENDING, "4.3.0", "error in the phone"),
    211: _v(PENDING, "4.2.2", "memory capacity exceeded"),
    212: _v(PENDING, "4.2.0", "SIM application toolkit busy"),
    213: _v(PENDING, "4.3.0", "SIM data download error"),
    255: _v(PENDING, "4.0.0", "unspecified error cause"),
    300: _v(PENDING, "4.3.0", "modem failure"),
    301: _v(PENDING, "4.3.0", "SMS service of the modem reserved"),
    302: _v(PENDING, "4.3.0", "operation not allowed"),
    303: _v(PENDING, "4.3.0", "operation not supported"),
    304: _v(FAILED, "5.6.0", "invalid PDU mode parameter"),
    305: _v(FAILED, "5.6.0", "invalid text mode parameter"),
    310: _v(PENDING, "4.3.5", "SIM not inserted"),
    311: _v(PENDING, "4.3.5", "SIM PIN required"),
    312: _v(PENDING, "4.3.5", "PH-SIM PIN required"),
    313: _v(PENDING, "4.3.0", "SIM failure"),
    314: _v(PENDING, "4.3.0", "SIM busy"),
    315: _v(PENDING, "4.3.5", "SIM wrong"),
    316: _v(PENDING, "4.3.5", "SIM PUK required"),
    317: _v(PENDING, "4.3.5", "SIM PIN2 required"),
    318: _v(PENDING, "4.3.5", "SIM PUK2 required"),
    320: _v(PENDING, "4.3.0", "memory failure"),
    321: _v(PENDING, "4.3.0", "invalid memory index"),
    322: _v(PENDING, "4.3.1", "memory full"),
    330: _v(PENDING, "4.3.5", "SMSC address unknown"),
    331: _v(PENDING, "4.4.0", "no network service"),
    332: _v(PENDING, "4.4.1", "network timeout"),
    340: _v(PENDING, "4.3.0", "no +CNMA acknowledgement expected"),
    500: _v(PENDING, "4.0.0", "unknown error"),
}
CMS_UNLISTED_NETWORK = Verdict(FAILED, "5.0.0", "network error")  # 0-255 without an entry
CMS_UNLISTED_MODEM = Verdict(PENDING, "4.0.0", "modem error")  # 256 and above (512+: manufacturer specific)

# -- generic words of HTTP gateways' delivery reports -------------------------------------------------

DLR_WORDS: Mapping[str, Verdict] = {
    "delivered": _v(DELIVERED, "2.0.0", "delivered to the phone"),
    "failed": _v(FAILED, "5.0.0", "delivery failed"),
    "undelivered": _v(FAILED, "5.0.0", "undeliverable"),
    "rejected": _v(FAILED, "5.7.1", "rejected"),
    "expired": _v(FAILED, "4.4.7", "validity period expired"),
    "unknown_subscriber": _v(FAILED, "5.1.1", "unknown subscriber"),
    "throttled": _v(PENDING, "4.4.5", "throttled"),
    "too_long": _v(FAILED, "5.3.4", "message too long"),
    "unrepresentable": _v(FAILED, "5.6.3", "text cannot be represented"),
    "buffered": _v(PENDING, "4.4.1", "buffered: the phone is not reachable now"),
    "submitted": _v(RELAYED, "2.0.0", "submitted to the SMSC"),
    "accepted": _v(RELAYED, "2.0.0", "accepted by the gateway"),
}


# -- look-ups ---------------------------------------------------------------------------------------


def kannel_dlr(mask: int) -> Verdict:
    """A Kannel DLR type: final bits (delivered, failed, rejected) win over the intermediate ones."""
    for bit in (1, 2, 16, 4, 8):
        if mask & bit:
            return KANNEL_DLR[bit]
    return UNKNOWN


def smpp_state(state: str | int) -> Verdict:
    """An SMPP message state, as a number or a receipt's ``stat:`` word (``DELIVRD``, ``EXPIRED`` ...)."""
    if isinstance(state, int):
        word = SMPP_STATE_NUMBERS.get(state, "")
    else:
        word = state.strip().upper()
        word = SMPP_STATE_ALIASES.get(word, word)
    return SMPP_STATE.get(word, UNKNOWN)


def smpp_command_status(code: int) -> Verdict:
    """A ``submit_sm_resp`` command_status; unlisted errors are permanent, as SMPP 3.4 leaves them."""
    found = SMPP_COMMAND_STATUS.get(code)
    if found is not None:
        return found
    return Verdict(FAILED, "5.0.0", f"SMPP error 0x{code:08X}")


def map_error(code: int) -> Verdict:
    """A GSM MAP error code from a receipt's ``err:`` field."""
    return MAP_ERRORS.get(code, Verdict(FAILED, "5.0.0", f"network error {code}"))


def tp_status(value: int) -> Verdict:
    """A status report's TP-ST value (0..255; bit 7 set is reserved: treated as a permanent error)."""
    found = TP_STATUS.get(value)
    if found is not None:
        return found
    for low, high, verdict in TP_STATUS_RANGES:
        if low <= value <= high:
            return verdict
    return Verdict(FAILED, "5.0.0", f"reserved status 0x{value:02X}")


def cms_error(code: int) -> Verdict:
    """A modem's ``+CMS ERROR: <code>``."""
    found = CMS_ERRORS.get(code)
    if found is not None:
        return found
    return CMS_UNLISTED_NETWORK if code < 256 else CMS_UNLISTED_MODEM


def dlr_word(word: str) -> Verdict:
    """A status word of an HTTP gateway's delivery report (``delivered``, ``expired`` ...)."""
    return DLR_WORDS.get(word.strip().lower().replace(" ", "_").replace("-", "_"), UNKNOWN)


def all_verdicts() -> list[tuple[str, Verdict]]:
    """Every entry of every table, named, for tests and ``mailsms`` documentation."""
    named: list[tuple[str, Verdict]] = []
    for table, entries in (
        ("kannel", KANNEL_DLR),
        ("smpp-state", SMPP_STATE),
        ("smpp-status", SMPP_COMMAND_STATUS),
        ("map", MAP_ERRORS),
        ("tp-st", TP_STATUS),
        ("cms", CMS_ERRORS),
        ("word", DLR_WORDS),
    ):
        named.extend((f"{table} {key}", verdict) for key, verdict in entries.items())
    named.extend((f"tp-st {low:#x}-{high:#x}", verdict) for low, high, verdict in TP_STATUS_RANGES)
    named += [("unknown", UNKNOWN), ("cms unlisted network", CMS_UNLISTED_NETWORK)]
    named += [("cms unlisted modem", CMS_UNLISTED_MODEM)]
    return named
