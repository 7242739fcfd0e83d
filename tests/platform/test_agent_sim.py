"""The pure builders of eks_sandbox.agent_sim (what it writes for the agent and operator it stands in for)."""
import ipaddress

import pytest

from eks_sandbox import agent_replay, agent_sim, versions
from eks_sandbox.agent_replay import NodeState, PodInfo


def k8s_node(name="ip-192-168-0-11.ec2.internal", ip="192.168.0.11"):
    return {
        "metadata": {"name": name, "uid": "node-uid",
                     "labels": {"topology.kubernetes.io/zone": "us-east-1a",
                                "node.kubernetes.io/instance-type": "t3.medium"}},
        "spec": {"providerID": "aws:///us-east-1a/i-0123456789abcdef0",
                 "taints": [{"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NoExecute"},
                            {"key": "dedicated", "value": "x", "effect": "NoSchedule"}]},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]},
    }


def pod(name, namespace="default", node="ip-192-168-0-11.ec2.internal", ip="192.168.64.7", host_network=False,
        labels=None, phase="Running", deleting=False, created=None):
    meta = {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels or {}}
    if created:
        meta["creationTimestamp"] = created
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node, "hostNetwork": host_network},
            "status": {"phase": phase, "podIP": ip}}


def test_agent_exec_routes_the_pod_to_the_replay_as_its_node():
    agent = pod("cilium-x2x8k", namespace="kube-system", labels={"k8s-app": "cilium"})
    obj = agent_sim.agent_exec(agent, "/k/kubeconfig", "/shims", "/py")
    assert (obj["apiVersion"], obj["kind"]) == ("kwok.x-k8s.io/v1alpha1", "Exec")
    assert (obj["metadata"]["name"], obj["metadata"]["namespace"]) == ("cilium-x2x8k", "kube-system")
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-cilium-x2x8k"
    (target,) = obj["spec"]["execs"]
    assert target["containers"] == ["cilium-agent"]
    envs = {e["name"]: e["value"] for e in target["local"]["envs"]}
    assert envs["CILIUM_REPLAY_POD"] == "kube-system/cilium-x2x8k"
    assert envs["NODE_NAME"] == "ip-192-168-0-11.ec2.internal"
    assert envs["KUBECONFIG"] == "/k/kubeconfig" and envs["PYTHONPATH"] == "/py"
    assert target["local"]["workDir"] == "/shims"


@pytest.mark.parametrize("image, version", [
    ("quay.io/cilium/operator-aws:v1.18.11@sha256:ab", "1.18.11"), ("quay.io/cilium/operator-generic:v1.13.4", "1.13.4"),
    ("quay.io/cilium/operator-aws@sha256:ab", None),
])
def test_operator_image_version(image, version):
    assert agent_sim.image_version(image) == version


def test_crd_version_is_the_pinned_patch_of_the_minor():
    assert agent_sim.chart_version_for("1.18.11", versions.CILIUM_CHARTS) == "1.18.11"
    assert agent_sim.chart_version_for("1.18.4", versions.CILIUM_CHARTS) == versions.CILIUM_CHARTS["1.18"]
    assert agent_sim.chart_version_for("1.9.0", versions.CILIUM_CHARTS) is None


def test_cilium_node_cluster_pool_like_the_blog():
    obj = agent_sim.cilium_node(k8s_node(), "cluster-pool", 0)
    spec = obj["spec"]
    assert spec["ipam"] == {"podCIDRs": ["10.0.0.0/24"]}
    addresses = {a["type"]: a["ip"] for a in spec["addresses"]}
    assert addresses["InternalIP"] == "192.168.0.11"
    assert ipaddress.ip_address(addresses["CiliumInternalIP"]) in ipaddress.ip_network("10.0.0.0/24")
    assert ipaddress.ip_address(spec["health"]["ipv4"]) in ipaddress.ip_network("10.0.0.0/24")
    assert spec["health"]["ipv4"] != addresses["CiliumInternalIP"]
    assert obj["metadata"]["ownerReferences"][0] == {"apiVersion": "v1", "kind": "Node",
                                                     "name": "ip-192-168-0-11.ec2.internal", "uid": "node-uid"}
    assert agent_sim.cilium_node(k8s_node(), "cluster-pool", 3)["spec"]["ipam"] == {"podCIDRs": ["10.0.3.0/24"]}


def test_cilium_node_eni():
    spec = agent_sim.cilium_node(k8s_node(), "eni", 1)["spec"]
    assert spec["eni"]["instance-id"] == "i-0123456789abcdef0"
    assert spec["eni"]["instance-type"] == "t3.medium" and spec["eni"]["availability-zone"] == "us-east-1a"
    pool = spec["ipam"]["pool"]
    assert len(pool) == agent_sim.ENI_POOL_SIZE and spec["ipam"]["pre-allocate"] == agent_sim.ENI_PRE_ALLOCATE
    assert len({v["resource"] for v in pool.values()}) == 1
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("192.168.0.0/16") for ip in pool)
    router = next(a["ip"] for a in spec["addresses"] if a["type"] == "CiliumInternalIP")
    assert router in pool and spec["health"]["ipv4"] in pool
    assert set(pool).isdisjoint(agent_sim.cilium_node(k8s_node(), "eni", 0)["spec"]["ipam"]["pool"])


def test_cilium_node_keeps_existing_addresses():
    first = agent_sim.cilium_node(k8s_node(), "cluster-pool", 0)
    first["spec"]["addresses"][1]["ip"] = "10.0.0.121"  # the blog's router IP
    again = agent_sim.cilium_node(k8s_node(), "cluster-pool", 5, existing=first)
    assert {"ip": "10.0.0.121", "type": "CiliumInternalIP"} in again["spec"]["addresses"]
    assert again["spec"]["ipam"] == {"podCIDRs": ["10.0.0.0/24"]}


def test_remove_taint():
    taints = k8s_node()["spec"]["taints"]
    assert agent_sim.remove_taint(taints) == [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
    assert agent_sim.remove_taint(taints[1:]) is None
    assert agent_sim.remove_taint(None) is None


@pytest.mark.parametrize("obj, workload", [
    (pod("web"), True), (pod("agent", host_network=True), False), (pod("new", ip=None), False),
    (pod("done", phase="Succeeded"), False), (pod("going", deleting=True), False), (pod("unscheduled", node=None), False),
])
def test_is_workload(obj, workload):
    assert agent_sim.is_workload(obj) is workload


@pytest.mark.parametrize("created, first_ready, managed", [
    ("2026-01-01T10:00:05Z", "2026-01-01T10:00:00Z", True),  # created after the agent was Ready
    ("2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z", True),  # same second: after (1 s resolution)
    ("2026-01-01T09:59:59Z", "2026-01-01T10:00:00Z", False),  # predates the agent: previous CNI's network
    ("2026-01-01T10:00:05Z", None, False),  # the agent of its node was never Ready
    (None, "2026-01-01T10:00:00Z", False),
])
def test_cni_managed(created, first_ready, managed):
    assert agent_sim.cni_managed(pod("web", created=created), first_ready) is managed


def test_cni_managed_goes_by_the_start_on_the_node():
    # Created while the agent-not-ready taint kept it Pending, started once the agent was Ready: Cilium's network.
    held = pod("web", created="2026-01-01T09:00:00Z")
    held["status"]["startTime"] = "2026-01-01T10:00:01Z"
    assert agent_sim.cni_managed(held, "2026-01-01T10:00:00Z") is True
    held["status"]["startTime"] = "2026-01-01T09:00:01Z"
    assert agent_sim.cni_managed(held, "2026-01-01T10:00:00Z") is False


def test_ready_since():
    ready = {"status": {"conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "t0"},
                                       {"type": "Ready", "status": "True", "lastTransitionTime": "t1"}]}}
    assert agent_sim.ready_since(ready) == "t1"
    assert agent_sim.ready_since({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}) is None


class _RecordingSim(agent_sim.AgentSimulator):
    """The simulator's reconcile loop without an API server: writes are recorded."""

    def __init__(self):  # pylint: disable=super-init-not-called
        self.pods, self.namespaces, self.config, self.ceps, self.first_ready = {}, {}, {}, {}, {}
        self.nodes = {"n1": {**k8s_node("n1", "192.168.0.11"), "spec": {"taints": []}}}
        self.node_index, self.cnodes, self.execs = {"n1": 0}, {}, set()
        self.operator_image, self.crds_done, self.crds_pending, self.crds_failed = None, set(), set(), {}
        self.crds_ready = {"ciliumnodes", "ciliumendpoints"}
        self.kubeconfig, self.shim_dir, self.pythonpath = "kubeconfig", "shims", "pythonpath"
        self.applied, self.deleted = [], []

    def _apply(self, obj):
        self.applied.append((obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]))

    def _delete(self, api_version, kind, name, namespace=None):
        self.deleted.append((kind, namespace, name))

    def _get(self, api_version, kind, name, namespace=None):
        return None

    def set_pod(self, obj):
        self.pods[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj


def agent_pod(ready_at=None, name="cilium-abcde"):
    obj = pod(name, namespace="kube-system", node="n1", host_network=True, labels={"k8s-app": "cilium"},
              created="2026-01-01T09:59:00Z")
    if ready_at:
        obj["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]
    return obj


def test_endpoints_only_for_pods_created_after_the_agent_and_kept_across_agent_restarts():
    sim = _RecordingSim()
    sim.set_pod(pod("coredns-old", namespace="kube-system", node="n1", created="2026-01-01T09:00:00Z"))
    sim.set_pod(agent_pod())
    sim.reconcile()  # agent not Ready: no endpoint at all
    assert [a for a in sim.applied if a[0] == "CiliumEndpoint"] == []
    sim.set_pod(agent_pod(ready_at="2026-01-01T10:00:00Z"))
    sim.reconcile()
    assert sim.first_ready == {"n1": "2026-01-01T10:00:00Z"}
    assert [a for a in sim.applied if a[0] == "CiliumEndpoint"] == []  # coredns-old predates the agent
    sim.set_pod(pod("coredns-new", namespace="kube-system", node="n1", created="2026-01-01T10:05:00Z"))
    sim.reconcile()
    assert ("CiliumEndpoint", "kube-system", "coredns-new") in sim.applied
    assert set(sim.ceps) == {("kube-system", "coredns-new")}
    # The agent restarts (e.g. ds/cilium rolled by the bandwidth manager): not Ready for a while, then Ready later.
    del sim.pods[("kube-system", "cilium-abcde")]
    sim.set_pod(agent_pod(name="cilium-fghij"))
    sim.reconcile()
    assert set(sim.ceps) == {("kube-system", "coredns-new")} and sim.deleted.count(
        ("CiliumEndpoint", "kube-system", "coredns-new")) == 0
    sim.set_pod(agent_pod(name="cilium-fghij", ready_at="2026-01-01T11:00:00Z"))
    sim.reconcile()
    assert sim.first_ready == {"n1": "2026-01-01T10:00:00Z"}
    assert set(sim.ceps) == {("kube-system", "coredns-new")}
    # The pod goes: its endpoint goes with it.
    del sim.pods[("kube-system", "coredns-new")]
    sim.reconcile()
    assert sim.ceps == {} and ("CiliumEndpoint", "kube-system", "coredns-new") in sim.deleted


def test_endpoint_ids_agree_with_the_replay():
    pods = [pod("netperf-server"), pod("netperf-client"), pod("coredns-1", namespace="kube-system")]
    ids = agent_sim.endpoint_ids(pods)
    replay_ids, _host = agent_replay.endpoint_ids(NodeState(name="n", live=True, pods=[
        PodInfo(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods]))
    assert ids == replay_ids
    assert all(1 <= i <= 4095 for i in ids.values()) and len(set(ids.values())) == 3
    kept = agent_sim.endpoint_ids(pods, taken={("default", "netperf-server"): 124})
    assert kept[("default", "netperf-server")] == 124


def test_cilium_endpoint_like_kubectl_get_ciliumendpoint():
    obj = agent_sim.cilium_endpoint(pod("netperf-server", labels={"app": "netperf", "pod-template-hash": "abc"},
                                        ip="192.168.62.98"), 124, "192.168.0.11", {"team": "net"})
    status = obj["status"]
    assert status["id"] == 124 and status["state"] == "ready"
    assert status["networking"] == {"addressing": [{"ipv4": "192.168.62.98"}], "node": "192.168.0.11"}
    assert "k8s:app=netperf" in status["identity"]["labels"]
    assert not any("pod-template-hash" in label for label in status["identity"]["labels"])
    assert "k8s:io.cilium.k8s.namespace.labels.team=net" in status["identity"]["labels"]
    assert 256 <= status["identity"]["id"] <= 65535
    assert obj["metadata"]["ownerReferences"][0]["kind"] == "Pod"


def test_identity_is_shared_by_pods_with_the_same_labels():
    one = agent_sim.identity_labels(pod("a-1", labels={"app": "a", "pod-template-hash": "1"}))
    two = agent_sim.identity_labels(pod("a-2", labels={"app": "a", "pod-template-hash": "2"}))
    other = agent_sim.identity_labels(pod("b", labels={"app": "b"}))
    assert agent_sim.identity_id(one) == agent_sim.identity_id(two) != agent_sim.identity_id(other)


def test_egress_selector_uses_the_unix_socket():
    config = agent_sim.egress_selector_config("/s/node-network.sock")
    (selection,) = config["egressSelections"]
    assert selection["name"] == "cluster"
    assert selection["connection"] == {"proxyProtocol": "HTTPConnect",
                                       "transport": {"uds": {"udsName": "/s/node-network.sock"}}}


def test_proxy_routes_nodes_to_loopback_and_refuses_the_rest(tmp_path):
    proxy = agent_sim.NodeNetworkProxy(str(tmp_path / "p.sock"), lambda: {"ip-192-168-0-11.ec2.internal",
                                                                          "192.168.0.11"})
    try:
        assert proxy.route("ip-192-168-0-11.ec2.internal", 32757) == ("127.0.0.1", 32757)
        assert proxy.route("192.168.0.11", 10250) == ("127.0.0.1", 10250)
        assert proxy.route("127.0.0.1", 8080) == ("127.0.0.1", 8080)
        assert proxy.route("example.com", 443) is None
        assert proxy.route("10.0.0.5", 32757) is None
    finally:
        proxy.server_close()


def test_proxy_tunnels_a_connect_to_the_local_kubelet_port(tmp_path):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def echo_once():
        conn, _addr = listener.accept()
        with conn:
            conn.sendall(conn.recv(1024).upper())

    threading.Thread(target=echo_once, daemon=True).start()
    path = str(tmp_path / "p.sock")
    proxy = agent_sim.NodeNetworkProxy(path, lambda: {"ip-192-168-0-11.ec2.internal"})
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(10)
            client.connect(path)
            client.sendall(f"CONNECT ip-192-168-0-11.ec2.internal:{port} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            assert client.recv(1024) == b"HTTP/1.1 200 Connection established\r\n\r\n"
            client.sendall(b"exec please")
            assert client.recv(1024) == b"EXEC PLEASE"
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(10)
            client.connect(path)
            client.sendall(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n")
            assert client.recv(1024).startswith(b"HTTP/1.1 403 Forbidden")
    finally:
        proxy.shutdown()
        proxy.server_close()
        listener.close()


@pytest.mark.parametrize("version", ["1.13.4", "1.20.2"])
def test_prune_keeps_what_each_crd_declares(version):
    import yaml

    from eks_sandbox import cache

    crd_dir = cache.charts_dir() / version / "crds"
    if not (crd_dir / "ciliumnodes.cilium.io.yaml").is_file():
        pytest.skip(f"Cilium {version} CRDs not fetched (python -m eks_sandbox charts --version {version})")
    crd = yaml.safe_load((crd_dir / "ciliumnodes.cilium.io.yaml").read_text())
    obj = agent_sim.cilium_node(k8s_node(), "eni", 0)
    pruned = agent_sim.prune_object(obj, crd)
    eni_props = next(v for v in crd["spec"]["versions"] if v["name"] == "v2")["schema"]["openAPIV3Schema"][
        "properties"]["spec"]["properties"]["eni"]["properties"]
    assert set(pruned["spec"]["eni"]) == set(obj["spec"]["eni"]) & set(eni_props)
    assert ("instance-id" in pruned["spec"]["eni"]) is (version != "1.20.2")  # 1.20 moved it to spec.instance-id
    assert pruned["spec"]["instance-id"] == "i-0123456789abcdef0"
    assert pruned["spec"]["addresses"] == obj["spec"]["addresses"]
    assert pruned["spec"]["ipam"]["pool"] == obj["spec"]["ipam"]["pool"]  # additionalProperties map kept
    assert pruned["metadata"] == obj["metadata"]


def test_prune_on_a_small_schema():
    schema = {"type": "object", "properties": {
        "keep": {"type": "string"},
        "nested": {"type": "object", "properties": {"a": {"type": "integer"}}},
        "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"r": {"type": "string"}}}},
        "list": {"type": "array", "items": {"type": "object", "properties": {"ip": {"type": "string"}}}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "empty": {"type": "object"},
    }}
    value = {"keep": "x", "drop": 1, "nested": {"a": 1, "b": 2}, "map": {"k": {"r": "v", "z": 0}},
             "list": [{"ip": "1.2.3.4", "type": "x"}], "free": {"any": {"thing": 1}}, "empty": {"gone": 1}}
    assert agent_sim.prune(value, schema) == {"keep": "x", "nested": {"a": 1}, "map": {"k": {"r": "v"}},
                                              "list": [{"ip": "1.2.3.4"}], "free": {"any": {"thing": 1}}, "empty": {}}
