"""ptp4l's view, from `pmc -u -b 0 'GET TIME_STATUS_NP' 'GET PORT_DATA_SET' 'GET CURRENT_DATA_SET'
'GET PARENT_DATA_SET'` (one pmc call, four answers).

pmc prints each answer as a header line — `<port identity> seq N RESPONSE MANAGEMENT <DATA SET>` —
then one indented `name value` line per field (see tests/fixtures/clock/pmc_*.txt, recorded from a
real ptp4l 3.1.1). An error answer says `MANAGEMENT_ERROR_STATUS`; a ptp4l that is not running gives
only the `sending:` lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from syncrig_agent.clock_state.base import parse_int

QUERIES = ("GET TIME_STATUS_NP", "GET PORT_DATA_SET", "GET CURRENT_DATA_SET", "GET PARENT_DATA_SET")

_HEADER = re.compile(
    r"^\s*(?P<port>\S+)\s+seq\s+\d+\s+RESPONSE\s+(?P<kind>MANAGEMENT(?:_ERROR_STATUS)?)\s+(?P<tlv>\w+)"
)
_FIELD = re.compile(r"^\s+(?P<key>[A-Za-z][\w.]*)\s+(?P<value>\S.*?)\s*$")

#: Port states in which this clock is locked to (or is) the grandmaster. UNCALIBRATED is the
#: servo converging after a master was chosen; LISTENING hears no master yet.
LOCKED_PORT_STATES = ("SLAVE",)
MASTER_PORT_STATES = ("MASTER", "GRAND_MASTER")


class PmcParseError(ValueError):
    """The output is not what pmc prints."""


@dataclass
class PtpView:
    """The four data sets, as far as pmc answered them."""

    port_state: str | None = None
    port_identity: str | None = None
    master_offset_ns: int | None = None  # TIME_STATUS_NP: PHC − master at the last Sync
    mean_path_delay_ns: int | None = None  # CURRENT_DATA_SET
    offset_from_master_ns: int | None = None  # CURRENT_DATA_SET (filtered, what the servo used)
    steps_removed: int | None = None
    gm_present: bool | None = None
    gm_identity: str | None = None
    parent_port: str | None = None
    gm_priority1: int | None = None
    delay_mechanism: int | None = None
    errors: list[str] = field(default_factory=list)  # MANAGEMENT_ERROR_STATUS answers
    answered: list[str] = field(default_factory=list)  # data sets that came back

    @property
    def is_grandmaster(self) -> bool:
        if self.port_state in MASTER_PORT_STATES:
            return True
        # A grandmaster's parent is its own clock (port 0).
        return bool(self.gm_identity and self.parent_port and self.parent_port.startswith(self.gm_identity))


def split_answers(text: str) -> dict[str, dict[str, str]]:
    """pmc output → {data set name: {field: value}}; error answers under "ERROR:<name>"."""
    answers: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("sending:") or not line.strip():
            continue
        header = _HEADER.match(line)
        if header:
            name = header["tlv"]
            if header["kind"] == "MANAGEMENT_ERROR_STATUS":
                name = f"ERROR:{name}"
            current = answers.setdefault(name, {"_port": header["port"]})
            continue
        fld = _FIELD.match(line)
        if fld and current is not None:
            current[fld["key"]] = fld["value"]
        elif current is not None and line.strip().startswith("ERROR"):
            current["ERROR"] = line.strip()
    return answers


def parse_pmc(text: str) -> PtpView:
    """Parse one pmc run. Raises PmcParseError when nothing in it is a pmc answer."""
    answers = split_answers(text)
    if not answers:
        if "sending:" in text:
            raise PmcParseError("ptp4l did not answer pmc (not running, or another uds_address)")
        raise PmcParseError("no pmc answer in the output")
    view = PtpView(answered=sorted(a for a in answers if not a.startswith("ERROR:")))
    view.errors = [
        f"{k[6:]}: {v.get('ERROR', 'error')}" for k, v in answers.items() if k.startswith("ERROR:")
    ]
    try:
        ts = answers.get("TIME_STATUS_NP")
        if ts:
            if "master_offset" in ts:
                view.master_offset_ns = parse_int(ts["master_offset"])
            if "gmPresent" in ts:
                view.gm_present = ts["gmPresent"].lower() == "true"
            view.gm_identity = ts.get("gmIdentity") or view.gm_identity
        pds = answers.get("PORT_DATA_SET")
        if pds:
            view.port_state = pds.get("portState")
            view.port_identity = pds.get("portIdentity")
            if "delayMechanism" in pds:
                view.delay_mechanism = parse_int(pds["delayMechanism"])
        cds = answers.get("CURRENT_DATA_SET")
        if cds:
            if "offsetFromMaster" in cds:
                view.offset_from_master_ns = parse_int(cds["offsetFromMaster"])
            if "meanPathDelay" in cds:
                view.mean_path_delay_ns = parse_int(cds["meanPathDelay"])
            if "stepsRemoved" in cds:
                view.steps_removed = parse_int(cds["stepsRemoved"])
        parent = answers.get("PARENT_DATA_SET")
        if parent:
            view.parent_port = parent.get("parentPortIdentity")
            view.gm_identity = parent.get("grandmasterIdentity") or view.gm_identity
            if "grandmasterPriority1" in parent:
                view.gm_priority1 = parse_int(parent["grandmasterPriority1"])
    except (ValueError, OverflowError) as exc:
        raise PmcParseError(f"unreadable value in pmc output: {exc}") from None
    if view.port_state is None and view.master_offset_ns is None and view.offset_from_master_ns is None:
        raise PmcParseError("pmc answered without port state or offsets: " + "; ".join(view.errors or ["?"]))
    return view
