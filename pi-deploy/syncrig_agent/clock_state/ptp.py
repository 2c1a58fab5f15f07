"""PTP clock state: ptp4l's port and servo (pmc) + phc2sys's direction and lock (its log), checked
against the kernel's view.

Two daemons, two hops: ptp4l locks the NIC's hardware clock (PHC) to the grandmaster; phc2sys
carries that to CLOCK_REALTIME, the clock the agent schedules and stamps frames on. ptp4l alone
(the first seed's setup) leaves CLOCK_REALTIME on NTP however good the PTP lock looks, so a camera
is only "synchronized" when both hops are:

- slave (port SLAVE, grandmaster present): phc2sys steers CLOCK_REALTIME from the PHC
  (`CLOCK_REALTIME phc offset ... s2`); offset = PHC−master + realtime−PHC.
- grandmaster (port MASTER): the direction is reversed — phc2sys steers the PHC from
  CLOCK_REALTIME (`eth0 sys offset ... s2`, phc2sys -a -rr), or the PHC the other cameras follow
  free-runs away from the clock this camera schedules on.
"""

from __future__ import annotations

from syncrig_agent.clock_state.base import SYNCHRONIZED, UNSYNCHRONIZED, ClockState
from syncrig_agent.clock_state.kernel import KernelClock, kernel_component
from syncrig_agent.clock_state.phc2sys import STALE_AFTER_S, Phc2sysView
from syncrig_agent.clock_state.pmc import LOCKED_PORT_STATES, MASTER_PORT_STATES, PtpView

_PORT_MEANING = {
    "UNCALIBRATED": "a master was chosen and the servo is still converging",
    "LISTENING": "no PTP master heard (cable, switch, or ptp4l stopped on the other cameras?)",
    "FAULTY": "the port is faulty (link down, or transmit timestamps time out)",
    "DISABLED": "the port is disabled",
    "INITIALIZING": "ptp4l is starting",
    "PRE_MASTER": "about to become master",
    "PASSIVE": "another port is the better master",
}


def _ptp_component(view: PtpView) -> dict:
    return {
        "port_state": view.port_state,
        "master_offset_ns": view.master_offset_ns,
        "offset_from_master_ns": view.offset_from_master_ns,
        "mean_path_delay_ns": view.mean_path_delay_ns,
        "gm_present": view.gm_present,
        "gm_identity": view.gm_identity,
        "steps_removed": view.steps_removed,
        "errors": view.errors,
    }


def _phc2sys_component(p: Phc2sysView | None, age: float | None, note: str | None) -> dict:
    if p is None:
        return {"running": None, "note": note}
    return {
        "target": p.target,
        "source": p.source_label,
        "offset_ns": p.offset_ns,
        "servo": p.servo,
        "freq_ppb": p.freq_ppb,
        "delay_ns": p.delay_ns,
        "age_s": None if age is None else round(age, 1),
        "summary_line": p.summary,
        "note": note,
    }


def ptp_state(
    view: PtpView,
    phc2sys: Phc2sysView | None,
    kernel: KernelClock | None,
    now: float,
    phc2sys_note: str | None = None,
) -> ClockState:
    """`phc2sys`: its latest update from the log, None when the log could not be read or holds no
    update (`phc2sys_note` says which)."""
    age = phc2sys.age_s(now) if phc2sys else None
    components = {"ptp4l": _ptp_component(view), "phc2sys": _phc2sys_component(phc2sys, age, phc2sys_note)}
    if kernel is not None:
        components["kernel"] = kernel_component(kernel)
    port = view.port_state or "?"
    base = dict(
        source="ptp",
        port_state=view.port_state,
        grandmaster=view.gm_identity,
        path_delay_ns=view.mean_path_delay_ns,
        components=components,
    )
    grandmaster = port in MASTER_PORT_STATES or (view.port_state is None and view.is_grandmaster)
    if port not in LOCKED_PORT_STATES and not grandmaster:
        why = _PORT_MEANING.get(port, "not locked to a master")
        return ClockState(
            state=UNSYNCHRONIZED, servo_state="unlocked", detail=f"PTP port {port}: {why}", **base
        )
    if not grandmaster and view.gm_present is False:
        return ClockState(
            state=UNSYNCHRONIZED,
            servo_state="unlocked",
            detail="PTP port SLAVE but no grandmaster present",
            **base,
        )

    # The second hop: phc2sys, in the direction this port's role needs.
    want_target_realtime = not grandmaster
    direction = "CLOCK_REALTIME from the PHC" if want_target_realtime else "the PHC from CLOCK_REALTIME"
    ptp_offset = (
        0
        if grandmaster
        else (view.master_offset_ns if view.master_offset_ns is not None else view.offset_from_master_ns)
    )
    if phc2sys is not None:
        if phc2sys.steers_system_clock != want_target_realtime:
            return ClockState(
                state=UNSYNCHRONIZED,
                servo_state=phc2sys.servo,
                detail=(
                    f"PTP port {port} but phc2sys steers {phc2sys.target} from {phc2sys.source_label}: "
                    f"it should steer {direction} (wrong direction — run phc2sys -a -rr)"
                ),
                **base,
            )
        if age is not None and age > STALE_AFTER_S:
            return ClockState(
                state=UNSYNCHRONIZED,
                servo_state="stale",
                detail=f"phc2sys has not updated {phc2sys.target} for {age:.0f} s (stopped?)",
                **base,
            )
        if phc2sys.servo != "locked":
            return ClockState(
                state=UNSYNCHRONIZED,
                servo_state=phc2sys.servo,
                offset_ns=phc2sys.offset_ns,
                detail=f"PTP port {port}; phc2sys servo {phc2sys.servo} steering {direction}",
                **base,
            )
        offset = (ptp_offset or 0) + phc2sys.offset_ns
        role = "grandmaster" if grandmaster else f"slave of {view.gm_identity}"
        return ClockState(
            state=SYNCHRONIZED,
            servo_state="locked",
            offset_ns=offset,
            local_reference=grandmaster,
            detail=(
                f"PTP {role}; phc2sys locked, steering {direction} "
                f"({phc2sys.offset_ns:+d} ns), PTP offset {ptp_offset or 0:+d} ns"
            ),
            **base,
        )

    # phc2sys's log unreadable: the kernel still tells whether someone steers CLOCK_REALTIME
    # (phc2sys marks it synchronised while locked). That cross-check only works for a slave.
    if want_target_realtime and kernel is not None and not kernel.unsync:
        return ClockState(
            state=SYNCHRONIZED,
            servo_state="locked",
            offset_ns=ptp_offset,
            error_bound_ns=None,
            detail=(
                f"PTP slave of {view.gm_identity}; phc2sys log unreadable ({phc2sys_note}), but the kernel "
                f"says CLOCK_REALTIME is disciplined (max error {kernel.maxerror_us} µs)"
            ),
            **base,
        )
    if want_target_realtime:
        why = "the kernel says CLOCK_REALTIME is not disciplined (STA_UNSYNC)" if kernel else "no kernel view"
        return ClockState(
            state=UNSYNCHRONIZED,
            servo_state="unlocked",
            offset_ns=ptp_offset,
            detail=(
                f"PTP port SLAVE locks only the PHC: phc2sys is not steering CLOCK_REALTIME "
                f"({phc2sys_note or 'no update in its log'}; {why})"
            ),
            **base,
        )
    return ClockState(
        state=UNSYNCHRONIZED,
        servo_state="free-running",
        detail=(
            f"PTP grandmaster, but no phc2sys update steering the PHC from CLOCK_REALTIME "
            f"({phc2sys_note or 'no update in its log'}): the PHC the other cameras follow free-runs"
        ),
        **base,
    )
