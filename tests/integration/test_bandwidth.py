"""bandwidth_manager role and cilium_bandwidth_test module on their own sandbox, real chart and helm.

Cilium 1.18 is installed with plain ``helm install`` (not the collection's install roles, so these
tests do not depend on them). The measurement runs for real on this machine's kernel between two
network namespaces (``eks_sandbox.netns_datapath``), shaped from the server pod's annotation.
"""
import json

import pytest
from helpers import (
    helm_json,
    helm_run,
    install_cilium,
    local_inventory,
    namespace_exists,
    start_sandbox,
    write_play,
)

from eks_sandbox import agent_sim, charts, netns_datapath

VERSION = "1.18.11"
OLD_KERNEL = "5.10.238-231.953.amzn2.x86_64"
# Values a platform team would have set at install time; the role must keep every one of them.
INSTALL_VALUES = ("eni.enabled=true", "ipam.mode=eni", "routingMode=native", "egressMasqueradeInterfaces=eth0",
                  "cluster.name=it-bwm", "operator.replicas=1", "hubble.relay.enabled=false")
TEST_NS = "it-bwm-test"
HOST = "sandbox"
REFUSAL = "Refuse what the release cannot run (BBR in CNI chaining mode or on old kernels, keys its chart lacks)"


def user_values(helm, box):
    return helm_json(helm, box.env, "get", "values", "cilium")


def role_play(tmp_path, box, helm, **overrides):
    variables = {"bandwidth_manager_chart_path": str(charts.ensure_chart(VERSION)),
                 "bandwidth_manager_helm_path": str(helm), "bandwidth_manager_kubeconfig": box.kubeconfig,
                 "bandwidth_manager_rollout_timeout": 300}
    variables.update({f"bandwidth_manager_{k}": v for k, v in overrides.items()})
    return (write_play(tmp_path / "bwm.yml", "bandwidth manager", role="bandwidth_manager", variables=variables),
            local_inventory(tmp_path / "inventory.ini"))


def module_play(tmp_path, box, **args):
    options = {"kubeconfig": box.kubeconfig, "namespace": TEST_NS, "tool": "iperf3", "duration": 5,
               "timeout": 120}
    options.update(args)
    return (write_play(tmp_path / "bwtest.yml", "bandwidth test", module="cilium_bandwidth_test", args=options),
            local_inventory(tmp_path / "inventory.ini"))


def daemonset(api):
    from kubernetes import client
    return client.AppsV1Api(api).read_namespaced_daemon_set("cilium", "kube-system")


@pytest.fixture(scope="module")
def box(sandbox_factory):
    return start_sandbox(sandbox_factory, "it-bwm", nodes=3, aws=False)


@pytest.fixture(scope="module")
def api(box, helm):
    return install_cilium(helm, box, INSTALL_VALUES, VERSION)


def run_measurement(api, box, datapath, run_playbook, tmp_path, factor=1.0, **args):
    binding = netns_datapath.bind_namespace(api, TEST_NS, datapath, box.kubeconfig, factor=factor)
    try:
        play, inventory = module_play(tmp_path, box, **args)
        return run_playbook(play, inventory, box.env)
    finally:
        netns_datapath.unbind_namespace(api, binding)


# ------------------------------------------------------------------ order matters: the manager starts off

def test_module_fails_clearly_while_the_manager_is_off(api, box, run_playbook, tmp_path):
    play, inventory = module_play(tmp_path, box)
    result = run_playbook(play, inventory, box.env)
    assert result.failed("sandbox") == 1, result
    failure = result.task("bandwidth test", HOST)
    assert "Bandwidth Manager is off" in failure["msg"] and "enable-bandwidth-manager" in failure["msg"]
    assert not namespace_exists(api, TEST_NS)


def test_role_enables_the_manager_keeping_the_release_values(api, box, helm, run_playbook, tmp_path):
    before = user_values(helm, box)
    generation = daemonset(api).metadata.generation
    play, inventory = role_play(tmp_path, box, helm)
    result = run_playbook(play, inventory, box.env)
    assert result.rc == 0 and result.changed("sandbox") >= 2, result  # upgrade + restart

    after = user_values(helm, box)
    assert after["bandwidthManager"]["enabled"] is True and after["bandwidthManager"]["bbr"] is False
    assert {k: v for k, v in after.items() if k != "bandwidthManager"} == before
    from kubernetes import client
    cm = client.CoreV1Api(api).read_namespaced_config_map("cilium-config", "kube-system")
    assert cm.data["enable-bandwidth-manager"] == "true" and cm.data["enable-bbr"] == "false"
    ds = daemonset(api)
    assert ds.metadata.generation > generation  # the pod template changed: the agents were restarted
    assert "kubectl.kubernetes.io/restartedAt" in (ds.spec.template.metadata.annotations or {})
    verified = result.task("Check every agent reports the Bandwidth Manager as configured", HOST)
    assert verified["status"]["bandwidth_manager"]["enabled"] is True
    assert verified["status"]["bandwidth_manager"]["congestion_control"] == "cubic"


def test_role_second_run_changes_nothing_and_does_not_restart(api, box, helm, run_playbook, tmp_path):
    ds = daemonset(api)
    annotation = ds.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]
    revision = helm_json(helm, box.env, "history", "cilium")[-1]
    play, inventory = role_play(tmp_path, box, helm)
    result = run_playbook(play, inventory, box.env)
    assert result.rc == 0 and result.changed("sandbox") == 0, result
    again = daemonset(api)
    assert again.metadata.generation == ds.metadata.generation
    assert again.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == annotation
    latest = helm_json(helm, box.env, "history", "cilium")[-1]
    assert latest["revision"] == revision["revision"]


def test_real_shaping_at_the_annotated_limit_passes(api, box, datapath, run_playbook, tmp_path):
    result = run_measurement(api, box, datapath, run_playbook, tmp_path, limit="10M",
                             report_dir=str(tmp_path / "report"))
    assert result.rc == 0, result
    outcome = result.task("bandwidth test", HOST)
    print(f"10M limit, shaped at 10M: ratio {outcome['ratio']}")
    assert outcome["passed"] is True and 0.85 <= outcome["ratio"] <= 1.05
    assert outcome["server_node"] != outcome["client_node"]  # the real scheduler honoured the anti-affinity
    server = {"metadata": {"namespace": TEST_NS, "name": "netperf-server"}}
    assert outcome["map_limit"] == "10M"  # the replay's map row for the ID of agent_sim's CiliumEndpoint
    assert outcome["endpoint_id"] == agent_sim.endpoint_ids([server])[(TEST_NS, "netperf-server")]
    assert outcome["bandwidth_manager"]["congestion_control"] == "CUBIC"
    assert "rate 10Mbit" in datapath.qdisc() or "maxrate 10Mbit" in datapath.qdisc()
    assert outcome["cleaned_up"] is True and not namespace_exists(api, TEST_NS)
    report = json.loads((tmp_path / "report" / "bandwidth-test.json").read_text())
    assert report["ratio"] == outcome["ratio"]
    assert oct((tmp_path / "report" / "bandwidth-test.md").stat().st_mode & 0o777) == "0o644"


def test_real_shaping_at_the_wrong_rate_is_caught(api, box, datapath, run_playbook, tmp_path):
    result = run_measurement(api, box, datapath, run_playbook, tmp_path, factor=2.0, limit="10M")
    assert result.failed("sandbox") == 1, result
    failure = result.task("bandwidth test", HOST)
    print(f"10M limit, shaped at 20M: ratio {failure['ratio']}")
    assert failure["passed"] is False and 1.7 <= failure["ratio"] <= 2.1
    assert "above the 10.00 Mbit/s limit" in failure["msg"]
    assert not namespace_exists(api, TEST_NS)  # cleaned up after a failure too


def test_unparseable_measurement_is_shown(api, box, datapath, run_playbook, tmp_path):
    # netperf is not in Debian main: the shim reports the missing binary, the module shows what it got.
    if netns_datapath._real_binary("netperf"):
        pytest.skip("netperf is installed here: the failure path needs it absent")
    result = run_measurement(api, box, datapath, run_playbook, tmp_path, tool="netperf", limit="10M")
    assert result.failed("sandbox") == 1, result
    failure = result.task("bandwidth test", HOST)
    assert "netperf" in failure["msg"] and "netns_datapath: netperf" in failure["msg"]
    assert not namespace_exists(api, TEST_NS)


def test_one_schedulable_node_is_a_clear_failure(api, box, run_playbook, tmp_path):
    from kubernetes import client
    core = client.CoreV1Api(api)
    nodes = sorted(n.metadata.name for n in core.list_node().items)
    try:
        for name in nodes[1:]:
            core.patch_node(name, {"spec": {"unschedulable": True}})
        play, inventory = module_play(tmp_path, box)
        result = run_playbook(play, inventory, box.env)
    finally:
        for name in nodes[1:]:
            core.patch_node(name, {"spec": {"unschedulable": False}})
    assert result.failed("sandbox") == 1, result
    failure = result.task("bandwidth test", HOST)
    assert "found 1 schedulable node out of 3" in failure["msg"] and nodes[0] in failure["msg"]
    assert not namespace_exists(api, TEST_NS)


def test_bad_limit_is_refused_before_anything(api, box, run_playbook, tmp_path):
    play, inventory = module_play(tmp_path, box, limit="10 Mbit")
    result = run_playbook(play, inventory, box.env)
    assert result.failed("sandbox") == 1, result
    assert "Invalid `limit` '10 Mbit'" in result.task("bandwidth test", HOST)["msg"]
    assert not namespace_exists(api, TEST_NS)


# ------------------------------------------------------------------ BBR on old kernels: its own sandbox

def test_bbr_refused_on_old_kernels_naming_the_nodes(sandbox_factory, helm, run_playbook, tmp_path):
    old = start_sandbox(sandbox_factory, "it-bwm-old", nodes=2, aws=False, kernel_version=OLD_KERNEL)
    install_cilium(helm, old, INSTALL_VALUES, VERSION)
    before = user_values(helm, old)
    play, inventory = role_play(tmp_path, old, helm, bbr=True)
    result = run_playbook(play, inventory, old.env)
    assert result.failed("sandbox") == 1, result
    failure = result.task(REFUSAL, HOST)
    assert "Invalid `bandwidth_manager_bbr` True: needs a Linux kernel 5.18 or later on every node" in failure["msg"]
    assert "2 node(s) are older" in failure["msg"]
    assert "ip-192-168-0-" in failure["msg"] and f"(kernel {OLD_KERNEL})" in failure["msg"]
    assert user_values(helm, old) == before  # nothing changed


def test_bbr_refused_in_chaining_mode(sandbox_factory, helm, run_playbook, tmp_path):
    chained = start_sandbox(sandbox_factory, "it-bwm-chain", nodes=2, aws=False)
    install_cilium(helm, chained, ("cni.chainingMode=aws-cni", "cni.exclusive=false", "enableIPv4Masquerade=false",
                                   "routingMode=native"), VERSION)
    before = user_values(helm, chained)
    play, inventory = role_play(tmp_path, chained, helm, bbr=True)
    result = run_playbook(play, inventory, chained.env)
    assert result.failed("sandbox") == 1, result
    failure = result.task(REFUSAL, HOST)
    assert "Invalid `bandwidth_manager_bbr` True: the Cilium agent refuses to start with BBR in CNI chaining mode" \
        in failure["msg"]
    assert user_values(helm, chained) == before


# ------------------------------------------------------------------ BBR for pods needs BPF host routing

# ENI mode with kube-proxy replacement and no masquerading: what BBR for pods needs (docs/running-on-real-eks.md).
BPF_HOST_ROUTING_VALUES = ("eni.enabled=true", "ipam.mode=eni", "routingMode=native", "enableIPv4Masquerade=false",
                           "kubeProxyReplacement=true", "k8sServiceHost=api.it-bwm-bbr.example", "k8sServicePort=443",
                           "cluster.name=it-bwm-bbr", "operator.replicas=1")
AGENTS_REFUSAL = "Refuse BBR for pods while the agents run legacy host routing"


def test_bbr_for_pods_refused_without_kube_proxy_replacement(api, box, helm, run_playbook, tmp_path):
    """The release of this module runs without kube-proxy replacement: its agents run legacy host routing."""
    before = user_values(helm, box)
    play, inventory = role_play(tmp_path, box, helm, bbr=True)
    result = run_playbook(play, inventory, box.env)
    assert result.failed("sandbox") == 1, result
    assert "Invalid `bandwidth_manager_bbr` True: BBR for pods needs BPF host routing" in result.task(REFUSAL, HOST)["msg"]
    assert user_values(helm, box) == before


def test_bbr_for_pods_waits_for_the_agents_to_report_bpf_host_routing(sandbox_factory, helm, run_playbook, tmp_path):
    """The settings allow BBR, but the agents run legacy host routing (here bpf.hostLegacyRouting): refused from
    what they report, before any change. Without it they report BPF, and BBR is turned on and checked."""
    bbr_box = start_sandbox(sandbox_factory, "it-bwm-bbr", nodes=2, aws=False)
    install_cilium(helm, bbr_box, BPF_HOST_ROUTING_VALUES + ("bpf.hostLegacyRouting=true",), VERSION)
    before = user_values(helm, bbr_box)
    play, inventory = role_play(tmp_path, bbr_box, helm, bbr=True)
    result = run_playbook(play, inventory, bbr_box.env)
    assert result.failed("sandbox") == 1, result
    assert "the Cilium agents report host routing Legacy, not BPF" in result.task(AGENTS_REFUSAL, HOST)["msg"]
    assert user_values(helm, bbr_box) == before

    sets = [item for value in BPF_HOST_ROUTING_VALUES for item in ("--set", value)]
    helm_run(helm, bbr_box.env, "upgrade", "cilium", str(charts.ensure_chart(VERSION)), "-n", "kube-system",
             "--reset-values", *sets)
    result = run_playbook(play, inventory, bbr_box.env)
    assert result.rc == 0, result
    assert user_values(helm, bbr_box)["bandwidthManager"] == {"enabled": True, "bbr": True}
