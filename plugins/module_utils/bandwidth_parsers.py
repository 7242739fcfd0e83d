# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure parsers for the bandwidth test: netperf, iperf3 ``-J``, ``cilium[-dbg] bpf bandwidth list``,
the ``BandwidthManager:`` line of ``cilium[-dbg] status`` and node kernel versions.

Every parser takes the text a tool printed and returns plain data, or raises ``OutputParseError``
carrying that text, so the module can show what it could not read. Tested on recorded outputs
(``tests/recordings/netperf``, ``tests/recordings/iperf3``, ``tests/recordings/cilium``).
Pure stdlib; importable without Ansible.
"""

from __future__ import annotations

import json
import re

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError, tail
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.quantity import QuantityError, quantity_value


class OutputParseError(CiliumEksError):
    """A tool printed something this collection cannot read; ``output`` holds (the end of) it."""

    def __init__(self, tool, problem, output):
        shown = tail(output or "", 30)
        msg = "Could not parse the output of %s: %s. Output was:\n%s" % (tool, problem, shown or "<empty>")
        super().__init__(msg, tool=tool, output=shown)
        self.tool = tool
        self.problem = problem


# ------------------------------------------------------------------------------------------ netperf

_NETPERF_BANNER = re.compile(r"^(?:MIGRATED\s+)?(?P<proto>[A-Z0-9]+)\s+(?P<kind>[A-Z_/]+)\s+TEST\b")
# Units netperf prints in the column header (netperf -f): 10^N bits/s, or 2^(10N) bytes/s.
_NETPERF_UNITS = {
    "10^0bits/sec": 1.0, "10^3bits/sec": 1e3, "10^6bits/sec": 1e6, "10^9bits/sec": 1e9,
    "Bytes/sec": 8.0, "KBytes/sec": 8.0 * 2 ** 10, "MBytes/sec": 8.0 * 2 ** 20, "GBytes/sec": 8.0 * 2 ** 30,
}
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_NETPERF_RESULT = re.compile(r"^\s*(?P<recv>\d+)\s+(?P<send>\d+)\s+(?P<msg>\d+)\s+(?P<elapsed>%s)\s+(?P<tput>%s)\s*$"
                             % (_NUMBER, _NUMBER))


def parse_netperf(text):
    """Classic netperf stream-test output (TCP_STREAM, TCP_MAERTS) -> dict.

    Keys: ``test`` (``TCP_MAERTS``), ``throughput`` (as printed), ``units`` (header, e.g.
    ``10^6bits/sec``), ``bps`` (bits per second), ``elapsed`` (s), ``recv_socket``, ``send_socket``,
    ``message_size`` (bytes).
    """
    text = text or ""
    lines = text.splitlines()
    test = None
    for line in lines:
        match = _NETPERF_BANNER.match(line.strip())
        if match:
            test = "%s_%s" % (match.group("proto"), match.group("kind"))
            break
    if test is None:
        raise OutputParseError("netperf", "no 'TCP ... TEST' banner", text)
    units = None
    for line in lines:
        for word in line.split():
            if word in _NETPERF_UNITS:
                units = word
    if units is None:
        raise OutputParseError("netperf", "no throughput unit (e.g. 10^6bits/sec) in the column header", text)
    results = [m for m in (_NETPERF_RESULT.match(line) for line in lines) if m]
    if not results:
        raise OutputParseError("netperf", "no result line (recv socket, send socket, message size, "
                                          "elapsed, throughput)", text)
    result = results[-1]
    throughput = float(result.group("tput"))
    return {
        "test": test,
        "throughput": throughput,
        "units": units,
        "bps": throughput * _NETPERF_UNITS[units],
        "elapsed": float(result.group("elapsed")),
        "recv_socket": int(result.group("recv")),
        "send_socket": int(result.group("send")),
        "message_size": int(result.group("msg")),
    }


# ------------------------------------------------------------------------------------------- iperf3

def parse_iperf3_json(text, reverse=True):
    """``iperf3 -c ... -J`` (TCP) -> dict with ``bps`` measured at the receiver.

    With ``-R`` (``reverse``) the server sends and the client receives, so the rate that crossed the
    limit is ``end.sum_received`` (what arrived); ``sum_sent`` counts bytes written to the socket and
    overshoots by the queued tail. Keys: ``bps``, ``sent_bps``, ``seconds``, ``bytes``, ``retransmits``,
    ``reverse``, ``intervals`` (per-interval bits/s).
    """
    try:
        data = json.loads(text or "")
    except ValueError as exc:
        raise OutputParseError("iperf3", "not JSON (%s); was -J given?" % exc, text)
    if not isinstance(data, dict):
        raise OutputParseError("iperf3", "the JSON document is not an object", text)
    if data.get("error"):
        raise OutputParseError("iperf3", "iperf3 reported an error: %s" % data["error"], text)
    end = data.get("end") or {}
    received = end.get("sum_received") or {}
    sent = end.get("sum_sent") or {}
    if "bits_per_second" not in received:
        raise OutputParseError("iperf3", "no end.sum_received.bits_per_second (TCP test expected)", text)
    started = (data.get("start") or {}).get("test_start") or {}
    return {
        "bps": float(received["bits_per_second"]),
        "sent_bps": float(sent.get("bits_per_second", 0.0)),
        "seconds": float(received.get("seconds", 0.0)),
        "bytes": int(received.get("bytes", 0)),
        "retransmits": sent.get("retransmits"),
        "reverse": bool(started.get("reverse", reverse)),
        "intervals": [float((i.get("sum") or {}).get("bits_per_second", 0.0)) for i in data.get("intervals") or []],
    }


# ----------------------------------------------------------------------------- bpf bandwidth list

LAYOUT_1_13 = "IDENTITY EGRESS BANDWIDTH (BitsPerSec)"  # up to 1.16 (and 1.17.0-rc.1)
LAYOUT_1_17 = "IDENTITY PRIO EGRESS BANDWIDTH (BitsPerSec)"
LAYOUT_1_18 = "IDENTITY DIRECTION PRIO BANDWIDTH (BitsPerSec)"
_LAYOUTS = {LAYOUT_1_13: ("id", "bw"), LAYOUT_1_17: ("id", "prio", "bw"), LAYOUT_1_18: ("id", "dir", "prio", "bw")}
NOT_ENABLED_MARKERS = ("bandwidth manager not enabled", "cilium_throttle")


def bandwidth_manager_off_in_output(text):
    """True when ``bpf bandwidth list`` failed because the throttle map does not exist (manager off)."""
    lowered = (text or "").lower()
    return any(marker in lowered for marker in NOT_ENABLED_MARKERS) and (
        "not enabled" in lowered or "no such file" in lowered)


def parse_bpf_bandwidth_list(text):
    """``cilium[-dbg] bpf bandwidth list`` (any of the three layouts) -> list of entries.

    Each entry: ``endpoint_id`` (int: the IDENTITY column prints the map key, an endpoint ID),
    ``direction`` (``Egress``/``Ingress``), ``prio`` (int or None before 1.17), ``bps`` (int bit/s),
    ``bandwidth`` (as printed). ``No entries found.`` -> ``[]``.
    """
    text = text or ""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or (len(lines) == 1 and lines[0].strip() == "No entries found."):
        return []
    header = " ".join(lines[0].split())
    if header not in _LAYOUTS:
        raise OutputParseError("cilium bpf bandwidth list", "unknown header %r (known: %s)"
                               % (lines[0].strip(), "; ".join(_LAYOUTS)), text)
    columns = _LAYOUTS[header]
    entries = []
    for line in lines[1:]:
        cells = line.split()
        if len(cells) != len(columns):
            raise OutputParseError("cilium bpf bandwidth list", "row %r does not have the %d columns of %r"
                                   % (line.strip(), len(columns), header), text)
        row = dict(zip(columns, cells))
        try:
            entry = {
                "endpoint_id": int(row["id"]),
                "direction": row.get("dir", "Egress"),
                "prio": int(row["prio"]) if "prio" in row else None,
                "bps": quantity_value(row["bw"]),
                "bandwidth": row["bw"],
            }
        except (ValueError, QuantityError) as exc:
            raise OutputParseError("cilium bpf bandwidth list", "row %r: %s" % (line.strip(), exc), text)
        if entry["direction"] not in ("Egress", "Ingress"):
            raise OutputParseError("cilium bpf bandwidth list", "unknown direction %r" % entry["direction"], text)
        entries.append(entry)
    return entries


def find_limit(entries, endpoint_id, direction="Egress"):
    """The entry for ``endpoint_id`` and ``direction``, or None."""
    for entry in entries:
        if entry["endpoint_id"] == int(endpoint_id) and entry["direction"] == direction:
            return entry
    return None


# ------------------------------------------------------------------------------ cilium status line

_BWM_LINE = re.compile(r"^\s*BandwidthManager:\s*(?P<value>.*?)\s*$", re.MULTILINE)
_BWM_ENABLED = re.compile(r"^EDT with BPF\s+\[(?P<cc>[A-Z]+)\]\s+\[(?P<devices>[^\]]*)\]")


def parse_bandwidth_manager_status(text):
    """The ``BandwidthManager:`` line of ``cilium[-dbg] status`` (text) or ``bandwidth-manager`` of ``-o json``.

    -> ``{"enabled": bool, "congestion_control": "CUBIC"|"BBR"|None, "devices": [...], "line": str}``.
    """
    text = text or ""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise OutputParseError("cilium status -o json", "not JSON: %s" % exc, text)
        bwm = data.get("bandwidth-manager")
        if bwm is None:
            raise OutputParseError("cilium status -o json", "no 'bandwidth-manager' key", text)
        devices = list(bwm.get("devices") or [])
        enabled = bool(devices) or bool(bwm.get("enabled"))
        cc = bwm.get("congestionControl")
        return {"enabled": enabled, "congestion_control": cc.upper() if (enabled and cc) else (
            "CUBIC" if enabled else None), "devices": devices, "line": json.dumps(bwm, sort_keys=True)}
    match = _BWM_LINE.search(text)
    if not match:
        raise OutputParseError("cilium status", "no 'BandwidthManager:' line", text)
    value = match.group("value")
    enabled = _BWM_ENABLED.match(value)
    if enabled:
        devices = [d.strip() for d in enabled.group("devices").split(",") if d.strip()]
        return {"enabled": True, "congestion_control": enabled.group("cc"), "devices": devices, "line": value}
    if value == "Disabled":
        return {"enabled": False, "congestion_control": None, "devices": [], "line": value}
    raise OutputParseError("cilium status", "unknown BandwidthManager value %r" % value, text)


# ------------------------------------------------------------------------------------- kernels

_KERNEL = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


def parse_kernel_version(text):
    """``6.12.40-63.114.amzn2023.x86_64`` -> ``(6, 12, 40)``; ValueError if it does not start with X.Y."""
    match = _KERNEL.match((text or "").strip())
    if not match:
        raise ValueError("not a kernel version: %r" % (text,))
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
