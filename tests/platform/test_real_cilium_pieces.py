"""Small pieces of the real-Cilium platform: kwok's Stages for real mode, the node runtime's pod selection and the
status it writes for workload pods, namespace-scoped sockets and mount bookkeeping."""
import os
import socket
import subprocess

import pytest

from eks_sandbox import cluster, linux_ns, node_runtime


@pytest.fixture(scope="module")
def stage_dir():
    try:
        return cluster.kwok_stage_dir()
    except Exception as exc:  # noqa: BLE001 - no Go toolchain or proxy here
        pytest.skip(f"kwok's Stage manifests are not available: {exc}")


def test_real_mode_stages_keep_kwoks_defaults_but_narrow_pod_ready(stage_dir):
    stages = cluster.real_cilium_stages(stage_dir)
    names = [s["metadata"]["name"] for s in stages]
    assert names == ["node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-complete", "pod-delete"]
    ready = next(s for s in stages if s["metadata"]["name"] == "pod-ready")
    expressions = ready["spec"]["selector"]["matchExpressions"]
    assert expressions[-len(cluster.REAL_CILIUM_POD_READY_EXCLUSIONS):] == cluster.REAL_CILIUM_POD_READY_EXCLUSIONS
    assert {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"} in expressions  # kwok's own kept
    delete = next(s for s in stages if s["metadata"]["name"] == "pod-delete")["spec"]["selector"]["matchExpressions"]
    assert delete[-len(cluster.REAL_CILIUM_POD_DELETE_EXCLUSIONS):] == cluster.REAL_CILIUM_POD_DELETE_EXCLUSIONS
    config = cluster.kwokctl_config({"kube-apiserver": "a", "kube-controller-manager": "b", "kube-scheduler": "c",
                                     "etcd": "d", "kwok": "e"}, stages=stages)
    assert config[1:] == stages
    assert {"Logs", "ClusterLogs"} <= set(config[0]["options"]["enableCRDs"])
    assert "Logs" not in cluster.kwokctl_config({"kube-apiserver": "a", "kube-controller-manager": "b",
                                                 "kube-scheduler": "c", "etcd": "d", "kwok": "e"})[0]["options"]["enableCRDs"]


def test_which_pods_the_node_runtime_takes():
    agent = {"metadata": {"labels": {"k8s-app": "cilium"}}, "spec": {"nodeName": "n", "hostNetwork": True}}
    operator = {"metadata": {"labels": {"io.cilium/app": "operator"}}, "spec": {"nodeName": "n", "hostNetwork": True}}
    workload = {"metadata": {"labels": {"app": "web"}}, "spec": {"nodeName": "n"}}
    host = {"metadata": {"labels": {"k8s-app": "aws-node"}}, "spec": {"nodeName": "n", "hostNetwork": True}}
    unscheduled = {"metadata": {}, "spec": {}}
    real_aws_node = {"metadata": {"labels": {"k8s-app": "aws-node", "eks-sandbox.cloudnet.io/run": "real"}},
                     "spec": {"nodeName": "n", "hostNetwork": True}}  # eks_objects.vpc_cni_addon's (real VPC CNI)
    assert [node_runtime.is_cilium_pod(p) for p in (agent, operator, workload, host, real_aws_node)] == [
        True, True, False, False, True]
    # the pre-flight check's pods (chart templates/cilium-preflight/ at v1.20.2) run the Cilium image for real too
    preflight = [{"metadata": {"labels": {"k8s-app": app}}, "spec": {"nodeName": "n", "hostNetwork": True}}
                 for app in ("cilium-pre-flight-check", "cilium-pre-flight-check-deployment")]
    assert [node_runtime.is_cilium_pod(p) for p in preflight] == [True, True]
    k8s_app = next(e for e in cluster.REAL_CILIUM_POD_READY_EXCLUSIONS if e["key"] == '.metadata.labels["k8s-app"]')
    assert k8s_app["values"] == list(node_runtime.CILIUM_K8S_APPS)  # kwok leaves exactly those pods to the runtime
    assert [node_runtime.needs_network(p) for p in (agent, workload, host, unscheduled)] == [False, True, False, False]
    assert node_runtime.finished({"metadata": {"deletionTimestamp": "x"}, "status": {}})
    assert node_runtime.finished({"metadata": {}, "status": {"phase": "Succeeded"}})
    assert not node_runtime.finished({"metadata": {}, "status": {"phase": "Running"}})


def test_workload_status_is_running_with_the_cni_address():
    pod = {"metadata": {"name": "web"}, "spec": {
        "containers": [{"name": "c", "image": "nginx"}], "initContainers": [{"name": "i", "image": "busybox"}]}}
    status = node_runtime.workload_status(pod, "192.168.0.11", "192.168.14.112", {"startTime": "2026-01-01T00:00:00Z"})
    assert status["phase"] == "Running" and status["podIP"] == "192.168.14.112"
    assert status["podIPs"] == [{"ip": "192.168.14.112"}] and status["hostIP"] == "192.168.0.11"
    assert status["startTime"] == "2026-01-01T00:00:00Z"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    name = f"cek-test-{os.getpid()}"
    linux_ns.ip("netns", "add", name)
    linux_ns.ip("link", "set", "lo", "up", netns=name)
    yield name
    linux_ns.ip("netns", "del", name, check=False)


def test_sockets_made_in_a_namespace_live_there(netns):
    path = linux_ns.netns_path(netns)
    listener = linux_ns.listen_in(path, "127.0.0.1", 7071)
    with listener:
        with pytest.raises(OSError):  # not on the host's loopback
            socket.create_connection(("127.0.0.1", 7071), timeout=1).close()
        linux_ns.connect_in(path, "127.0.0.1", 7071).close()
        assert linux_ns.pids_in_netns(netns) == []
        sleeper = subprocess.Popen(["ip", "netns", "exec", netns, "sleep", "30"])
        try:
            for _attempt in range(50):
                if sleeper.pid in linux_ns.pids_in_netns(netns):
                    break
                subprocess.run(["sleep", "0.05"], check=True)
            assert sleeper.pid in linux_ns.pids_in_netns(netns)
        finally:
            sleeper.kill()
            sleeper.wait()


def test_unmount_under_removes_nested_mounts(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    (tmp_path / "a" / "b").mkdir(parents=True)
    linux_ns.run(["mount", "-t", "tmpfs", "tmpfs", tmp_path / "a"])
    (tmp_path / "a" / "b").mkdir()
    linux_ns.run(["mount", "-t", "tmpfs", "tmpfs", tmp_path / "a" / "b"])
    assert linux_ns.mounts_under(tmp_path) == [str(tmp_path / "a" / "b"), str(tmp_path / "a")]
    assert len(linux_ns.unmount_under(tmp_path)) == 2
    assert linux_ns.mounts_under(tmp_path) == []


def test_probe_counts_consecutive_results_like_the_kubelet():
    from eks_sandbox import pod_runtime

    probe = pod_runtime.Probe({"periodSeconds": 30, "failureThreshold": 3, "successThreshold": 1,
                               "initialDelaySeconds": 5})
    probe.schedule(100.0, first=True)
    assert probe.next_at == 105.0 and not probe.due(104.0) and probe.due(105.0)
    probe.count(True, 105.0)
    assert probe.succeeded and not probe.failed and probe.next_at == 135.0
    probe.count(False, 135.0)
    probe.count(False, 165.0)
    assert not probe.failed and not probe.succeeded  # two failures: below the threshold
    probe.count(False, 195.0)
    assert probe.failed
    probe.count(True, 225.0)
    assert probe.succeeded and probe.failures == 0  # a success resets the failures


def test_cri_log_lines_round_trip():
    from eks_sandbox import pod_runtime

    line = pod_runtime.cri_line("stderr", b"panic: boom\n", moment=0.5)
    assert line == b"1970-01-01T00:00:00.500000000Z stderr F panic: boom\n"
    assert pod_runtime.cri_text(line.decode().rstrip("\n")) == "panic: boom"
    assert pod_runtime.cri_line("stdout", b"partial", moment=0).split()[2] == b"P"
    assert pod_runtime.cri_text("not a CRI line") == "not a CRI line"


def test_images_map_to_the_tools_built_here_or_say_why_not():
    """Which built tool backs an image tag: Cilium's agent/operator of the built versions, the generic operator of the
    default one (chaining's cluster-pool IPAM), the AWS VPC CNI of its built version; anything else is an image pull
    error naming the way out."""
    from eks_sandbox import pod_runtime, pod_spec, versions

    def tool(image):
        return pod_runtime.image_tool(pod_spec.image_layout(image), image, pod_spec.image_version(image))

    default = versions.CILIUM_AGENTS[0]
    assert tool(f"quay.io/cilium/cilium:v{default}") == "cilium"
    assert tool(f"quay.io/cilium/operator-generic:v{default}") == "cilium-operator-generic"
    assert tool(f"602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:{versions.AWS_VPC_CNI}-eksbuild.1") == \
        "aws-vpc-cni"
    with pytest.raises(pod_runtime.ImageUnavailable, match="replay"):
        tool("quay.io/cilium/cilium:v1.16.5")
    with pytest.raises(pod_runtime.ImageUnavailable, match="chaining's real tier"):
        tool(f"quay.io/cilium/operator-generic:v{versions.CILIUM_AGENTS[1]}")
    with pytest.raises(pod_runtime.ImageUnavailable, match=versions.AWS_VPC_CNI):
        tool("602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.10.4-eksbuild.1")
