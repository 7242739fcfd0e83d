# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Parsers of the bandwidth test, on recorded outputs (tests/recordings/*/SOURCES.md say where each comes from)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.bandwidth_parsers import (
    OutputParseError,
    bandwidth_manager_off_in_output,
    find_limit,
    parse_bandwidth_manager_status,
    parse_bpf_bandwidth_list,
    parse_iperf3_json,
    parse_kernel_version,
    parse_netperf,
)

RECORDINGS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "recordings")


def recording(*parts):
    with open(os.path.join(RECORDINGS, *parts)) as handle:
        return handle.read()


# ------------------------------------------------------------------------------------ netperf

@pytest.mark.parametrize("name,test,throughput,elapsed,recv", [
    ("tcp-maerts.blog-part4.txt", "TCP_MAERTS", 9.91, 10.01, 131072),
    ("tcp-stream.axienet-patch.txt", "TCP_STREAM", 915.55, 10.03, 131072),
    ("tcp-stream.confidence.kep.txt", "TCP_STREAM", 13046.26, 10.00, 131072),
    ("tcp-stream.demo-interim.txt", "TCP_STREAM", 0.06, 253.44, 87380),
])
def test_netperf_recordings(name, test, throughput, elapsed, recv):
    parsed = parse_netperf(recording("netperf", name))
    assert parsed["test"] == test
    assert parsed["throughput"] == throughput
    assert parsed["units"] == "10^6bits/sec"
    assert parsed["bps"] == pytest.approx(throughput * 1e6)
    assert parsed["elapsed"] == elapsed and parsed["recv_socket"] == recv


def test_netperf_blog_result_is_under_the_10m_limit():
    assert parse_netperf(recording("netperf", "tcp-maerts.blog-part4.txt"))["bps"] == pytest.approx(9.91e6)


def test_netperf_other_units():
    text = recording("netperf", "tcp-maerts.blog-part4.txt").replace("10^6bits/sec", "10^3bits/sec")
    assert parse_netperf(text)["bps"] == pytest.approx(9910.0)


@pytest.mark.parametrize("text,problem", [
    ("", "banner"),
    ("establish control: are you sure there is a netserver listening on 10.0.0.1 at port 12865?\n"
     "establish_control could not establish the control connection from 0.0.0.0 port 0 address family AF_UNSPEC "
     "to 10.0.0.1 port 12865 address family AF_INET", "banner"),
    ("MIGRATED TCP MAERTS TEST from 0.0.0.0 (0.0.0.0) port 0 AF_INET to 1.2.3.4 () port 0 AF_INET\n", "unit"),
    ("MIGRATED TCP MAERTS TEST from x\nbytes  bytes   bytes    secs.    10^6bits/sec\n\n", "result line"),
])
def test_netperf_unparseable_outputs_are_shown(text, problem):
    with pytest.raises(OutputParseError) as info:
        parse_netperf(text)
    assert problem in info.value.problem
    assert (text.strip().splitlines()[-1] if text.strip() else "<empty>") in str(info.value)


# ------------------------------------------------------------------------------------- iperf3

def test_iperf3_real_run_10m():
    parsed = parse_iperf3_json(recording("iperf3", "reverse-10M-tbf.json"))
    assert parsed["reverse"] is True
    assert 9.0e6 < parsed["bps"] <= 10.0e6  # receiver side, under the shaping rate
    assert parsed["sent_bps"] > parsed["bps"]  # the sender counts what it queued
    assert len(parsed["intervals"]) == 5 and parsed["seconds"] > 4.9


def test_iperf3_real_run_20m():
    assert 18e6 < parse_iperf3_json(recording("iperf3", "reverse-20M-tbf.json"))["bps"] <= 20e6


def test_iperf3_error_document():
    with pytest.raises(OutputParseError) as info:
        parse_iperf3_json(recording("iperf3", "connect-error.json"))
    assert "unable to connect to server" in str(info.value)


@pytest.mark.parametrize("text", ["", "Connecting to host 10.42.0.52, port 5201", "[]", '{"end": {}}'])
def test_iperf3_bad_outputs(text):
    with pytest.raises(OutputParseError):
        parse_iperf3_json(text)


# ------------------------------------------------------------------------ bpf bandwidth list

def test_bpf_list_1_13_blog():
    entries = parse_bpf_bandwidth_list(recording("cilium", "1.13.4", "bpf-bandwidth-list.txt"))
    assert entries == [{"endpoint_id": 124, "direction": "Egress", "prio": None, "bps": 10_000_000,
                        "bandwidth": "10M"}]
    assert find_limit(entries, 124)["bps"] == 10_000_000
    assert find_limit(entries, 125) is None


def test_bpf_list_1_16_and_1_17_rc():
    assert parse_bpf_bandwidth_list(recording("cilium", "1.16.x", "bpf-bandwidth-list.txt"))[0]["bps"] == 5 * 10 ** 9
    entries = parse_bpf_bandwidth_list(recording("cilium", "1.17.0-rc.1", "bpf-bandwidth-list.txt"))
    assert len(entries) == 8 and all(e["bps"] == 0 for e in entries)


def test_bpf_list_1_17_layout():
    header = recording("cilium", "1.17.6", "bpf-bandwidth-list.header-from-source.txt")
    assert parse_bpf_bandwidth_list(header) == []
    entries = parse_bpf_bandwidth_list(header + "124        0      10M\n3011       7      0\n")
    assert entries[0] == {"endpoint_id": 124, "direction": "Egress", "prio": 0, "bps": 10_000_000, "bandwidth": "10M"}
    assert entries[1]["prio"] == 7 and entries[1]["bps"] == 0


@pytest.mark.parametrize("version", ["1.18.10", "1.20.2"])
def test_bpf_list_1_18_layout(version):
    entries = parse_bpf_bandwidth_list(recording("cilium", version, "bpf-bandwidth-list.docs-example.txt"))
    assert find_limit(entries, 724, "Egress")["bps"] == 10_000_000
    assert find_limit(entries, 724, "Ingress")["bps"] == 50_000_000


def test_bpf_list_empty_and_errors():
    assert parse_bpf_bandwidth_list("No entries found.\n") == []
    with pytest.raises(OutputParseError) as info:
        parse_bpf_bandwidth_list("IDENTITY   DSCP   BANDWIDTH\n1 2 3\n")
    assert "unknown header" in str(info.value)
    with pytest.raises(OutputParseError):
        parse_bpf_bandwidth_list("IDENTITY   EGRESS BANDWIDTH (BitsPerSec)\n124 10M extra\n")
    with pytest.raises(OutputParseError):
        parse_bpf_bandwidth_list("IDENTITY   EGRESS BANDWIDTH (BitsPerSec)\n124 10Mbit\n")


@pytest.mark.parametrize("text,off", [
    ("bandwidth manager not enabled", True),
    ("error dumping contents of map: loading pinned map /sys/fs/bpf/tc/globals/cilium_throttle: "
     "no such file or directory\n", True),
    ("IDENTITY   EGRESS BANDWIDTH (BitsPerSec)\n124        10M\n", False),
])
def test_bandwidth_manager_off_detection(text, off):
    assert bandwidth_manager_off_in_output(text) is off


# ------------------------------------------------------------------------------ status line

def test_status_line_blog_and_docs():
    blog = recording("cilium", "1.13.4", "status.grep-bandwidthmanager.txt")
    assert parse_bandwidth_manager_status(blog) == {
        "enabled": True, "congestion_control": "CUBIC", "devices": ["eth0", "eth1"],
        "line": "EDT with BPF [CUBIC] [eth0, eth1]"}
    bbr = parse_bandwidth_manager_status(recording("cilium", "1.18.4", "status.txt"))
    assert bbr["enabled"] and bbr["congestion_control"] == "BBR" and bbr["devices"] == ["eth0"]


@pytest.mark.parametrize("path", [("1.13.4", "status-verbose.txt"), ("1.19.0", "status.txt")])
def test_status_disabled(path):
    parsed = parse_bandwidth_manager_status(recording("cilium", *path))
    assert parsed["enabled"] is False and parsed["congestion_control"] is None


def test_status_json():
    parsed = parse_bandwidth_manager_status(recording("cilium", "1.18.4", "status.model-derived.json"))
    assert parsed["enabled"] and parsed["congestion_control"] == "BBR" and parsed["devices"] == ["eth0"]
    assert parse_bandwidth_manager_status(recording("cilium", "1.17.4", "status.model-derived.json"))["enabled"] is False


def test_status_unparseable():
    with pytest.raises(OutputParseError):
        parse_bandwidth_manager_status("KVStore: Ok\n")
    with pytest.raises(OutputParseError):
        parse_bandwidth_manager_status("BandwidthManager:   Something new\n")


@pytest.mark.parametrize("text,version", [("6.12.40-63.114.amzn2023.x86_64", (6, 12, 40)),
                                          ("5.10.238-231.953.amzn2.x86_64", (5, 10, 238)), ("5.18", (5, 18, 0))])
def test_kernel_versions(text, version):
    assert parse_kernel_version(text) == version


def test_kernel_version_garbage():
    with pytest.raises(ValueError):
        parse_kernel_version("Linux")
