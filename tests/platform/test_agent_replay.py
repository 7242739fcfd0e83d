"""The pure core of eks_sandbox.agent_replay against the recorded real Cilium outputs (no cluster)."""
import http.server
import json
import os
import re
import threading
from urllib.parse import parse_qsl, urlsplit

import pytest

from eks_sandbox import agent_replay as replay
from eks_sandbox.agent_replay import AgentConfig, Context, NodeState, PodInfo, RecordingStore, parse_version

RECORDINGS = replay.RECORDINGS_DIR
STORE = RecordingStore()

# The cilium-config each recording was taken with (as far as its own text shows it).
RECORDED_CONFIGS = {
    "1.13.3": {"ipam": "cluster-pool", "tunnel": "vxlan", "kube-proxy-replacement": "strict"},
    "1.13.4": {"ipam": "eni", "tunnel": "disabled", "kube-proxy-replacement": "disabled",
               "egress-masquerade-interfaces": "eth0"},
    "1.17.4": {"ipam": "eni", "routing-mode": "native", "kube-proxy-replacement": "true"},
    "1.18.4": {"ipam": "cluster-pool", "routing-mode": "native", "kube-proxy-replacement": "true",
               "enable-bandwidth-manager": "true", "enable-bbr": "true", "enable-bpf-masquerade": "true",
               "ipv4-native-routing-cidr": "10.100.0.0/16"},
    "1.19.0": {"ipam": "cluster-pool", "routing-mode": "tunnel", "tunnel-protocol": "vxlan",
               "kube-proxy-replacement": "false"},
}
ENI = {"ipam": "eni", "routing-mode": "native", "kube-proxy-replacement": "true",
       "egress-masquerade-interfaces": "eth0"}
CHAINING = {"ipam": "cluster-pool", "cni-chaining-mode": "aws-cni", "routing-mode": "native",
            "enable-ipv4-masquerade": "false", "enable-host-legacy-routing": "true",
            "kube-proxy-replacement": "false", "enable-bandwidth-manager": "true", "devices": "eth0 eth1"}
CHAINING_1_13 = dict(CHAINING, tunnel="disabled", **{"kube-proxy-replacement": "disabled"})
SANDBOX_VERSIONS = ["1.13.4", "1.18.10", "1.19.6", "1.20.2"]  # eks_sandbox.versions.CILIUM_CHARTS


def before(version, bound):
    return parse_version(version) < parse_version(bound)


def context(version, cm, node=None):
    return Context(version=parse_version(version), config=AgentConfig.from_configmap(cm),
                   node=node or NodeState(), store=STORE)


def recorded(path):
    return (RECORDINGS / path).read_text()


def netperf_node(**annotations):
    """The part-4 blog's node: netperf-server (endpoint 124) limited to 10M, netperf-client (2011)."""
    return NodeState(name="ip-192-168-62-10.ec2.internal", internal_ip="192.168.62.10", live=True, pods=[
        PodInfo("default", "netperf-server", "192.168.62.98", endpoint_id=124,
                annotations={"kubernetes.io/egress-bandwidth": "10M", **annotations}),
        PodInfo("default", "netperf-client", "192.168.27.99", endpoint_id=2011),
        PodInfo("kube-system", "cilium-mfqkg", "192.168.62.10", host_network=True),
    ])


# ----------------------------------------------------------------------------- recordings

def test_every_recording_is_listed_in_sources():
    sources = recorded("SOURCES.md")
    files = [p.relative_to(RECORDINGS).as_posix() for p in RECORDINGS.rglob("*") if p.is_file()]
    assert len(files) > 20
    for name in files:
        if name != "SOURCES.md":
            assert f"`{name}`" in sources, f"{name} has no line in SOURCES.md"


@pytest.mark.parametrize("version, expected", [
    ("1.13.4", "1.13.4"), ("1.13.1", "1.13.3"), ("1.18.10", "1.18.4"), ("1.19.6", "1.19.7"), ("1.20.2", "1.20.2"), ("1.17.0", "1.17.4"), ("1.19.0", "1.19.0"),
    ("1.20.0", "1.20.2"),
])
def test_nearest_status_recording_same_minor_first(version, expected):
    rec = STORE.nearest(parse_version(version), replay.STATUS_TEXT, replay.STATUS_VERBOSE)
    assert replay.vstr(rec.version) == expected


@pytest.mark.parametrize("version, name, verbose", [
    ("1.13.3", "status-verbose.txt", True), ("1.13.4", "status-verbose.txt", True), ("1.17.4", "status.txt", False),
    ("1.18.4", "status.txt", False), ("1.19.0", "status.txt", False),
])
def test_recording_replays_unchanged_under_its_own_config(version, name, verbose):
    """Adjusting only what the config changes: the recording's own config gives back its bytes."""
    rec = replay.Recording(parse_version(version), RECORDINGS / version / name)
    ctx = context(version, RECORDED_CONFIGS[version])
    assert replay.render_status(rec, ctx.version, ctx.config, ctx.node, verbose=verbose) == rec.text


@pytest.mark.parametrize("version", sorted(RECORDED_CONFIGS))
def test_model_derived_json_replays_unchanged_under_its_own_config(version):
    rec = replay.Recording(parse_version(version), RECORDINGS / version / "status.model-derived.json")
    ctx = context(version, RECORDED_CONFIGS[version])
    out = replay.render_status_json(rec, ctx.version, ctx.config, ctx.node)
    assert json.loads(out) == json.loads(rec.text)
    assert list(json.loads(out)) == sorted(json.loads(out))  # Go struct order


# The cilium-config of the chart that generated the real recordings (record_real_cilium.RECORD_VALUES: ENI,
# native routing, no kube-proxy replacement, Bandwidth Manager on), as the agent read it.
GENERATED_CONFIG = {"ipam": "eni", "routing-mode": "native", "kube-proxy-replacement": "false",
                    "enable-ipv4-masquerade": "false", "enable-bandwidth-manager": "true"}


@pytest.mark.parametrize("version", ["1.19.7", "1.20.2"])
def test_generated_recordings_replay_unchanged_under_their_own_config(version):
    """The replay, asked as the real agent was, gives back what the real agent printed (text and JSON)."""
    ctx = context(version, GENERATED_CONFIG)
    for name, verbose in (("status.txt", False), ("status-verbose.txt", True)):
        rec = replay.Recording(parse_version(version), RECORDINGS / version / name)
        assert replay.render_status(rec, ctx.version, ctx.config, ctx.node, verbose=verbose) == rec.text
    rec = replay.Recording(parse_version(version), RECORDINGS / version / "status.json")
    assert json.loads(replay.render_status_json(rec, ctx.version, ctx.config, ctx.node)) == json.loads(rec.text)
    assert replay.run(["cilium-dbg", "version"], ctx).stdout == recorded(f"{version}/version.txt")


@pytest.mark.parametrize("version", ["1.19.7", "1.20.2"])
def test_replayed_bandwidth_list_has_the_layout_of_the_real_one(version):
    """The replay's model of the throttle map against the real agent's: same header; the annotated pod's row as
    the agent printed it (its endpoint ID taken from the recording); the host endpoint's row in the same form.
    Known gap: the real list also has an unlimited row for every other endpoint of the node (health, coredns)."""
    real = recorded(f"{version}/bpf-bandwidth-list.txt").splitlines()
    limited = next(line for line in real[1:] if line.split()[-1] == "10M")
    node = NodeState(name="n", live=True, pods=[PodInfo(
        "default", "recorded-10m", endpoint_id=int(limited.split()[0]),
        annotations={"kubernetes.io/egress-bandwidth": "10M"})])
    lines = replay.run(["cilium-dbg", "bpf", "bandwidth", "list"], context(version, GENERATED_CONFIG, node)).stdout
    lines = lines.splitlines()
    host = re.compile(r"^\d+ +Egress +7 +0$")
    assert lines[0] == real[0] and limited in lines
    assert sum(map(bool, map(host.match, lines))) == 1 == sum(map(bool, map(host.match, real)))


def test_brief_1_13_layout_matches_the_recorded_grep_lines():
    """1.13 has only --verbose recordings; the non-verbose form is derived from them and must line
    up like the real 1.13.4 chaining + bandwidth-manager outputs of the blog (key column 25)."""
    out = replay.run(["cilium", "status"], context("1.13.4", CHAINING_1_13)).stdout
    assert recorded("1.13.4/status.grep-cni-chaining.txt") in out
    assert recorded("1.13.4/status.grep-bandwidthmanager.txt") in out
    assert "Allocated addresses:" not in out and "Controller Status:       26/26 healthy\n" in out
    assert out.endswith("Cluster health:          2/2 reachable   (2023-07-03T11:01:07Z)\n")


# ------------------------------------------------------------------------ status, adjusted

@pytest.mark.parametrize("version", SANDBOX_VERSIONS)
def test_eni_config_gives_eni_ipam_in_json(version):
    ctx = context(version, ENI, NodeState(name="ip-10-0-1-5.ec2.internal", internal_ip="10.0.1.5", live=True,
                                          eni_pool_size=18, pods=[PodInfo("default", "web", "10.0.1.77")]))
    data = json.loads(replay.run(["cilium", "status", "-o", "json"], ctx).stdout)
    if before(version, "1.20"):
        assert data["ipam"]["status"] == "IPv4: 3/18 allocated, "  # router + health + web; CRD form, no "from"
    else:  # ENI on the multi-pool allocator, as the real 1.20.2 agent prints it (1.20.2/status.json, generated)
        assert data["ipam"]["status"] == "IPv4: 1 IPAM pool(s) available, "
    assert data["kube-proxy-replacement"]["mode"] == ("Strict" if before(version, "1.14") else "True")
    assert data["cluster"]["self"] == "default/ip-10-0-1-5.ec2.internal"
    assert data["cni-chaining"] == {"mode": "none"}
    if not before(version, "1.16"):
        assert data["routing"]["inter-host-routing-mode"] == "Native"
    assert data["cilium"]["msg"].startswith(f"{version} (v{version}-")


@pytest.mark.parametrize("version", SANDBOX_VERSIONS)
def test_eni_config_gives_eni_ipam_in_text(version):
    out = replay.run(["cilium", "status"], context(version, ENI)).stdout
    ipam = re.search(r"^IPAM:\s+(.*)$", out, re.M).group(1)
    form = r"IPv4: \d+/\d+ allocated,\s*" if before(version, "1.20") else r"IPv4: 1 IPAM pool\(s\) available,\s*"
    assert re.fullmatch(form, ipam), ipam
    assert re.search(rf"^Cilium:\s+Ok   {re.escape(version)} \(v{re.escape(version)}-[0-9a-f]{{8}}\)$", out, re.M)


@pytest.mark.parametrize("version", SANDBOX_VERSIONS)
def test_chaining_config(version):
    cm = CHAINING_1_13 if before(version, "1.14") else CHAINING
    node = NodeState(name="n1", internal_ip="192.168.29.49", pod_cidr="10.0.0.0/24", live=True,
                     pods=[PodInfo("default", "app", "192.168.27.99")])
    ctx = context(version, cm, node)
    out = replay.run(["cilium", "status"], ctx).stdout
    assert re.search(r"^CNI Chaining:\s+aws-cni$", out, re.M)
    assert re.search(r"^IPAM:\s+IPv4: 2/254 allocated from 10\.0\.0\.0/24,", out, re.M)  # pods use aws-cni IPAM
    assert re.search(r"^Masquerading:\s+Disabled$", out, re.M)
    assert re.search(r"^KubeProxyReplacement:\s+(False|Disabled)\s*$", out, re.M)
    routing = r"^Host Routing:\s+Legacy$" if before(version, "1.16") else r"^Routing:\s+Network: Native   Host: Legacy$"
    assert re.search(routing, out, re.M)
    data = json.loads(replay.run(["cilium", "status", "-o", "json"], ctx).stdout)
    assert data["cni-chaining"]["mode"] == "aws-cni"
    assert data["masquerading"] == {"enabledProtocols": {}}  # disabled: no mode (real 1.19.7/1.20.2 status.json)


@pytest.mark.parametrize("version", SANDBOX_VERSIONS)
@pytest.mark.parametrize("bbr", [False, True])
def test_bandwidth_manager_on(version, bbr):
    cm = dict(ENI, **{"enable-bandwidth-manager": "true", "enable-bbr": str(bbr).lower(), "devices": "eth0 eth1"})
    ctx = context(version, cm)
    cc = "BBR" if bbr else "CUBIC"
    out = replay.run(["cilium", "status"], ctx).stdout
    assert re.search(rf"^BandwidthManager:\s+EDT with BPF \[{cc}\] \[eth0, eth1\]$", out, re.M)
    data = json.loads(replay.run(["cilium", "status", "-o", "json"], ctx).stdout)
    assert data["bandwidth-manager"] == {"congestionControl": cc.lower(), "devices": ["eth0", "eth1"], "enabled": True}


def test_bandwidth_manager_devices_default_to_the_recorded_native_devices():
    out = replay.run(["cilium-dbg", "status"], context("1.18.10", dict(ENI, **{"enable-bandwidth-manager": "true"}))).stdout
    assert "BandwidthManager:        EDT with BPF [CUBIC] [eth0]\n" in out


@pytest.mark.parametrize("version", SANDBOX_VERSIONS)
def test_bandwidth_manager_off(version):
    ctx = context(version, dict(ENI, **{"enable-bandwidth-manager": "false"}))
    assert re.search(r"^BandwidthManager:\s+Disabled$", replay.run(["cilium", "status"], ctx).stdout, re.M)
    data = json.loads(replay.run(["cilium", "status", "-o", "json"], ctx).stdout)
    assert data["bandwidth-manager"] == {"devices": None}


def test_kube_proxy_replacement_devices_from_the_node_when_the_recording_has_none():
    ctx = context("1.19.0", {"kube-proxy-replacement": "true"}, NodeState(name="n", internal_ip="10.1.2.3", live=True))
    out = replay.run(["cilium-dbg", "status"], ctx).stdout
    # 1.15+ prints one empty IP per address before the addresses (make([]string, n) + append)
    assert "KubeProxyReplacement:    True   [eth0  10.1.2.3 (Direct Routing)]\n" in out
    kpr = json.loads(replay.run(["cilium-dbg", "status", "-o", "json"], ctx).stdout)["kube-proxy-replacement"]
    assert kpr["deviceList"] == [{"ip": ["", "10.1.2.3"], "name": "eth0"}]


def test_host_routing_follows_config():
    bpf = dict(RECORDED_CONFIGS["1.18.4"])
    out = replay.run(["cilium-dbg", "status"], context("1.18.10", bpf)).stdout
    assert "Routing:                 Network: Native   Host: BPF\n" in out
    out = replay.run(["cilium-dbg", "status"], context("1.18.10", dict(bpf, **{"enable-bpf-masquerade": "false"}))).stdout
    assert "Routing:                 Network: Native   Host: Legacy\n" in out
    assert "Masquerading:            IPTables [IPv4: Enabled, IPv6: Disabled]\n" in out


def test_verbose_allocations_come_from_the_live_node():
    node = NodeState(name="n", live=True, router_ip="10.0.0.41", health_ip="10.0.0.106", pod_cidr="10.0.0.0/24",
                     pods=[PodInfo("default", "web", "10.0.0.9")])
    out = replay.run(["cilium", "status", "--verbose"], context("1.13.3", RECORDED_CONFIGS["1.13.3"], node)).stdout
    block = out.split("Allocated addresses:\n")[1].split("IPv6 BIG TCP")[0]
    assert block == "  10.0.0.106 (health)\n  10.0.0.41 (router)\n  10.0.0.9 (default/web)\n"
    assert "IPAM:                   IPv4: 3/254 allocated from 10.0.0.0/24,\n" in out
    # ENI recording, router/health unknown to the node: the recorded ones are kept
    eni = NodeState(name="n", live=True, pods=[PodInfo("default", "web", "192.168.7.7")])
    out = replay.run(["cilium", "status", "--verbose"], context("1.13.4", RECORDED_CONFIGS["1.13.4"], eni)).stdout
    assert out.split("Allocated addresses:\n")[1].split("IPv6 BIG TCP")[0] == (
        "  192.168.28.58 (router)\n  192.168.7.7 (default/web)\n  192.168.9.25 (health)\n")
    assert "IPAM:                   IPv4: 3/12 allocated,\n" in out


def test_brief():
    assert replay.run(["cilium-dbg", "status", "--brief"], context("1.20.2", ENI)).stdout == "OK\n"


# ------------------------------------------------------------------- bpf bandwidth list

def test_bandwidth_list_1_13_is_the_recorded_output():
    ctx = context("1.13.4", dict(CHAINING_1_13), netperf_node())
    assert replay.run(["cilium", "bpf", "bandwidth", "list"], ctx).stdout == recorded("1.13.4/bpf-bandwidth-list.txt")


def test_bandwidth_list_1_16_is_the_recorded_output():
    node = NodeState(name="n", live=True, pods=[
        PodInfo("default", "fast", endpoint_id=1763, annotations={"kubernetes.io/egress-bandwidth": "5G"})])
    ctx = context("1.16.5", {"enable-bandwidth-manager": "true"}, node)
    assert replay.run(["cilium-dbg", "bpf", "bandwidth", "list"], ctx).stdout == recorded("1.16.x/bpf-bandwidth-list.txt")


def test_bandwidth_list_1_17_has_prio_and_every_endpoint():
    ctx = context("1.17.6", {"enable-bandwidth-manager": "true"}, netperf_node(**{"bandwidth.cilium.io/priority": "5"}))
    lines = replay.run(["cilium-dbg", "bpf", "bandwidth", "list"], ctx).stdout.splitlines()
    assert lines[0] + "\n" == recorded("1.17.6/bpf-bandwidth-list.header-from-source.txt")
    assert "124        6      10M" in lines      # priority annotation + 1
    assert "2011       0      0" in lines        # unannotated endpoints get an unlimited entry
    assert sum(line.split()[1:] == ["7", "0"] for line in lines[1:]) == 1  # host endpoint, guaranteed QoS


@pytest.mark.parametrize("version, example", [("1.18.10", "1.18.10"), ("1.20.2", "1.20.2"), ("1.19.6", "1.18.10")])
def test_bandwidth_list_1_18_layout_matches_the_docs(version, example):
    node = NodeState(name="n", live=True, pods=[PodInfo("default", "netperf-server", endpoint_id=724, annotations={
        "kubernetes.io/egress-bandwidth": "10M", "kubernetes.io/ingress-bandwidth": "50M"})])
    out = replay.run(["cilium-dbg", "bpf", "bandwidth", "list"], context(version, {"enable-bandwidth-manager": "true"}, node)).stdout
    docs = recorded(f"{example}/bpf-bandwidth-list.docs-example.txt").splitlines()
    lines = out.splitlines()
    assert lines[0] == docs[0]
    assert docs[1] in lines and docs[2] in lines
    assert len(lines) == 4  # plus the host endpoint's row


def test_bandwidth_list_json_is_the_map_dump():
    ctx = context("1.18.10", {"enable-bandwidth-manager": "true"}, netperf_node())
    data = json.loads(replay.run(["cilium-dbg", "bpf", "bandwidth", "list", "-o", "json"], ctx).stdout)
    assert data["124, 0"] == ["1250000, 0"] and data["2011, 0"] == ["0, 0"]


@pytest.mark.parametrize("version, stderr", [
    ("1.13.4", "error dumping contents of map: Unable to get object /sys/fs/bpf/tc/globals/cilium_throttle"),
    ("1.19.6", "error dumping contents of map: loading pinned map /sys/fs/bpf/tc/globals/cilium_throttle"),
    ("1.20.2", "bandwidth manager not enabled"),
])
def test_bandwidth_list_when_the_manager_is_off(version, stderr):
    result = replay.run(["cilium", "bpf", "bandwidth", "list"], context(version, {}, netperf_node()))
    assert result.code == 1 and result.stderr.startswith(stderr) and result.stdout == ""


def test_bandwidth_list_without_entries():
    result = replay.run(["cilium", "bpf", "bandwidth", "list"], context("1.13.4", {"enable-bandwidth-manager": "true"}))
    assert (result.stdout, result.stderr, result.code) == ("", "No entries found.\n", 0)


@pytest.mark.parametrize("text, bits", [("10M", "10M"), ("1.5M", "1500k"), ("5G", "5G"), ("100Mi", "104857600"),
                                        ("1k", "1k"), ("100", "96")])
def test_quantities_round_trip_like_the_agent(text, bits):
    """annotation -> bytes/s (Value()/8) -> bits printed with resource.NewQuantity(DecimalSI)."""
    assert replay.format_quantity(replay.parse_quantity(text) // 8 * 8) == bits


def test_endpoint_ids_prefer_ciliumendpoints_and_are_stable():
    node = netperf_node()
    ids, host = replay.endpoint_ids(node)
    assert ids[("default", "netperf-server")] == 124
    again = NodeState(name=node.name, pods=[PodInfo(p.namespace, p.name, host_network=p.host_network) for p in node.pods])
    assert replay.endpoint_ids(again) == replay.endpoint_ids(again)
    assert 1 <= host <= 4095 and host not in ids.values()


# --------------------------------------------------------------------------- CLI surface

def test_cilium_dbg_does_not_exist_before_1_15():
    result = replay.run(["cilium-dbg", "status"], context("1.13.4", {}))
    assert result.code == 127 and '"cilium-dbg": executable file not found in $PATH' in result.stderr


@pytest.mark.parametrize("program", ["cilium", "cilium-dbg"])
def test_both_names_work_from_1_15(program):  # images ship a cilium -> cilium-dbg symlink
    assert replay.run([program, "status", "--brief"], context("1.18.10", ENI)).code == 0


def test_unknown_command_like_cobra():
    result = replay.run(["cilium-dbg", "statsu"], context("1.18.10", ENI))
    assert result.code == 1
    assert result.stderr.startswith('Error: unknown command "statsu" for "cilium-dbg"\n\nDid you mean this?\n\tstatus\n')
    assert result.stderr.endswith("Run 'cilium-dbg --help' for usage.\n")
    assert replay.run(["cilium", "frobnicate"], context("1.13.4", {})).stdout == 'unknown command "frobnicate" for "cilium"\n'


def test_real_but_unrecorded_commands_say_so():
    result = replay.run(["cilium-dbg", "endpoint", "list"], context("1.18.10", ENI))
    assert result.code == 1 and "no recording" in result.stderr


def test_unknown_flag():
    result = replay.run(["cilium-dbg", "status", "--bogus"], context("1.18.10", ENI))
    assert (result.code, result.stderr) == (1, "Error: unknown flag: --bogus\n")


def test_version():
    assert replay.run(["cilium-dbg", "version"], context("1.18.1", ENI)).stdout == recorded("1.18.1/version.txt")
    out = replay.run(["cilium-dbg", "version"], context("1.18.10", ENI)).stdout
    assert out.startswith("Client: 1.18.10 6bf2fe83 ") and "\nDaemon: 1.18.10 6bf2fe83 " in out
    data = json.loads(replay.run(["cilium-dbg", "version", "-o", "json"], context("1.18.10", ENI)).stdout)
    assert data["Daemon"]["Version"] == "1.18.10" and data["Daemon"]["GoRuntimeVersion"].startswith("go")


def test_global_flags_before_the_command():
    assert replay.run(["cilium-dbg", "-D", "-H", "unix:///var/run/cilium/cilium.sock", "status", "--brief"],
                      context("1.18.10", ENI)).stdout == "OK\n"


# ------------------------------------------------------------------------------- config

def test_config_from_the_configmap():
    cfg = AgentConfig.from_configmap({"ipam": "eni", "tunnel": "disabled", "devices": "eth+ ens5",
                                      "kube-proxy-replacement": "strict", "enable-bbr": "true"})
    assert (cfg.routing_mode, cfg.devices, cfg.bbr, cfg.bandwidth_manager) == ("native", ("ens5",), True, False)
    assert replay.kpr_mode((1, 13, 4), cfg.kube_proxy_replacement) == "Strict"
    assert replay.kpr_mode((1, 18, 10), cfg.kube_proxy_replacement) == "True"
    tunnel = AgentConfig.from_configmap({"routing-mode": "tunnel", "tunnel-protocol": "geneve"})
    assert (tunnel.routing_mode, tunnel.tunnel_protocol) == ("tunnel", "geneve")
    assert AgentConfig.from_configmap({}).ipam == "cluster-pool"


def test_versions_from_image_tags():
    assert replay._image_version("quay.io/cilium/cilium:v1.18.10@sha256:abc") == (1, 18, 10)
    assert replay._image_version("quay.io/cilium/cilium@sha256:abc") is None


# ------------------------------------------- the I/O shell, on a local HTTP server serving API objects

def pod(namespace, name, node, ip, labels=None, annotations=None, host_network=False, image="busybox"):
    return {"metadata": {"namespace": namespace, "name": name, "labels": labels or {}, "annotations": annotations},
            "spec": {"nodeName": node, "hostNetwork": host_network,
                     "containers": [{"name": "cilium-agent" if labels else "c", "image": image}]},
            "status": {"phase": "Running", "podIP": ip}}


class ApiObjects(http.server.BaseHTTPRequestHandler):
    """GETs of the paths ``load_context`` reads, answered from ``self.server.objects`` (404 otherwise)."""

    def do_GET(self):  # noqa: N802 - the name http.server calls
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        objects = self.server.objects
        self.server.requests.append((self.path, self.headers.get("Authorization")))
        pods = objects["pods"]
        answers = {
            "/api/v1/namespaces/kube-system/pods": {"items": [p for p in pods if p["metadata"]["labels"].get("k8s-app")
                                                              == query.get("labelSelector", "").split("=")[-1]]},
            "/api/v1/pods": {"items": [p for p in pods
                                       if p["spec"]["nodeName"] == query.get("fieldSelector", "=").split("=", 1)[1]]},
            "/api/v1/namespaces/kube-system/configmaps/cilium-config": {"data": objects["config"]},
        }
        answers.update({"/api/v1/namespaces/%s/pods/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]): p
                        for p in pods})
        answers.update({"/api/v1/nodes/%s" % name: {"spec": {"podCIDR": "10.0.3.0/24"}, "status": {"addresses": [
            {"type": "InternalIP", "address": "192.168.3.3"}]}} for name in ("node-a", "node-b")})
        answers.update(objects["endpoints"])
        body = answers.get(url.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        data = json.dumps(body if body is not None else {"kind": "Status", "code": 404}).encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def fake_cluster(tmp_path, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ApiObjects)
    server.requests = []
    server.objects = {
        "config": {"ipam": "eni", "routing-mode": "native", "kube-proxy-replacement": "true",
                   "enable-bandwidth-manager": "true"},
        "pods": [
            pod("kube-system", "cilium-aaaaa", "node-a", "192.168.3.3", labels={"k8s-app": "cilium"},
                host_network=True, image="quay.io/cilium/cilium:v1.18.10@sha256:0123"),
            pod("kube-system", "cilium-bbbbb", "node-b", "192.168.4.4", labels={"k8s-app": "cilium"},
                host_network=True, image="quay.io/cilium/cilium:v1.18.10@sha256:0123"),
            pod("default", "netperf-server", "node-b", "192.168.4.98", annotations={"kubernetes.io/egress-bandwidth": "10M"}),
        ],
        "endpoints": {"/apis/cilium.io/v2/namespaces/default/ciliumendpoints/netperf-server": {"status": {"id": 124}}},
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "current-context": "fake", "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        "clusters": [{"name": "fake", "cluster": {"server": "http://127.0.0.1:%d" % server.server_address[1]}}],
        "users": [{"name": "fake", "user": {"token": "t0ken"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    yield server
    server.shutdown()
    server.server_close()


def test_load_context_for_the_exec_target_pod(fake_cluster):
    ctx = replay.load_context({"KUBECONFIG": os.environ["KUBECONFIG"], "CILIUM_REPLAY_POD": "kube-system/cilium-bbbbb"})
    assert (ctx.version, ctx.node.name, ctx.node.internal_ip, ctx.node.pod_cidr) == ((1, 18, 10), "node-b", "192.168.3.3", "10.0.3.0/24")
    assert ctx.config.ipam == "eni" and ctx.notice == ""
    assert [(p.name, p.endpoint_id) for p in ctx.node.workloads] == [("netperf-server", 124)]
    out = replay.run(["cilium-dbg", "bpf", "bandwidth", "list"], ctx).stdout
    assert "124        Egress      0      10M\n" in out


def test_load_context_without_pod_identity_says_which_pod_it_assumed(fake_cluster):
    kubeconfig = os.environ["KUBECONFIG"]
    ctx = replay.load_context({"KUBECONFIG": kubeconfig})
    assert ctx.node.name == "node-a" and "cilium-aaaaa" in ctx.notice
    assert replay.load_context({"KUBECONFIG": kubeconfig, "NODE_NAME": "node-b"}).node.name == "node-b"


def test_main_writes_the_answer(fake_cluster, monkeypatch, capsys):
    monkeypatch.setenv("CILIUM_REPLAY_POD", "kube-system/cilium-aaaaa")
    assert replay.main(["cilium", "status", "--brief"]) == 0
    assert capsys.readouterr().out == "OK\n"
    assert replay.main(["cilium-dbg", "nope"]) == 1


def test_load_context_reads_only_the_exec_targets_objects_with_the_kubeconfig_token(fake_cluster):
    replay.load_context({"KUBECONFIG": os.environ["KUBECONFIG"], "CILIUM_REPLAY_POD": "kube-system/cilium-bbbbb"})
    paths = [path for path, _auth in fake_cluster.requests]
    assert {auth for _path, auth in fake_cluster.requests} == {"Bearer t0ken"}
    # per node, not per cluster: no list of every agent or every CiliumEndpoint (1000 nodes = 1000 execs)
    assert "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dcilium" not in paths
    assert not [p for p in paths if p.endswith("/ciliumendpoints")]
    assert "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-b" in paths


def test_main_says_when_the_exec_target_pod_is_gone(fake_cluster, monkeypatch, capsys):
    monkeypatch.setenv("CILIUM_REPLAY_POD", "kube-system/cilium-zzzzz")
    assert replay.main(["cilium-dbg", "status"]) == 1
    assert "agent pod kube-system/cilium-zzzzz (CILIUM_REPLAY_POD) does not exist" in capsys.readouterr().err
