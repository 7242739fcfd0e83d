"""From a Pod to the process the node runtime starts (pod_spec.py): pure functions, on hand-made pods and on
the pods of the real Cilium 1.20.2 chart rendered by the real helm."""
import subprocess

import pytest
import yaml

from eks_sandbox import charts, gobuild, pod_spec

NODE = {"address": "192.168.0.11", "allocatable": {"memory": "3388364Ki", "cpu": "1930m"}}


def pod(containers, volumes=(), host_network=True, **spec):
    return {"metadata": {"name": "cilium-x", "namespace": "kube-system", "uid": "u-1", "labels": {"k8s-app": "cilium"}},
            "spec": {"nodeName": "ip-192-168-0-11.ec2.internal", "hostNetwork": host_network,
                     "serviceAccountName": "cilium", "containers": list(containers), "volumes": list(volumes), **spec},
            "status": {}}


def test_image_version_and_repository():
    assert pod_spec.image_version("quay.io/cilium/cilium:v1.20.2@sha256:abc") == "1.20.2"
    assert pod_spec.image_version("quay.io/cilium/operator-aws:v1.19.7") == "1.19.7"
    assert pod_spec.image_version("quay.io/cilium/cilium:latest") is None
    assert pod_spec.image_version("busybox") is None
    assert pod_spec.image_repository("quay.io/cilium/operator-aws:v1.20.2@sha256:x") == "cilium/operator-aws"


def test_canonical_host_path_treats_var_run_as_run():
    assert pod_spec.canonical_host_path("/var/run/cilium") == "/run/cilium"
    assert pod_spec.canonical_host_path("/var/run") == "/run"
    assert pod_spec.canonical_host_path("/var/runner") == "/var/runner"
    assert pod_spec.canonical_host_path("/sys/fs/bpf") == "/sys/fs/bpf"


def test_quantities():
    assert pod_spec.quantity_bytes("3388364Ki") == 3388364 * 1024
    assert pod_spec.quantity_bytes("1G") == 10 ** 9
    assert pod_spec.quantity_bytes("100m") == 0
    with pytest.raises(ValueError):
        pod_spec.quantity_bytes("lots")


def test_env_is_built_like_the_kubelet():
    container = {"name": "c", "env": [
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1"}}},
        {"name": "DEBUG", "valueFrom": {"configMapKeyRef": {"name": "cilium-config", "key": "debug"}}},
        {"name": "KEY", "valueFrom": {"secretKeyRef": {
            "name": "cilium-aws", "key": "AWS_ACCESS_KEY_ID", "optional": True}}},
        {"name": "REF", "value": "node=$(NODE) $$(NODE) $(NOPE)"}]}
    env = pod_spec.container_env(pod([container]), container, NODE,
                                 lambda name, key: {"debug": "false"}.get(key) if name == "cilium-config" else None,
                                 lambda name, key: None, {"KUBERNETES_SERVICE_HOST": "127.0.0.1"})
    assert env["NODE"] == "ip-192-168-0-11.ec2.internal" and env["NS"] == "kube-system"
    assert env["MEM"] == str(3388364 * 1024)  # no limit: the node's allocatable, as the kubelet does
    assert env["DEBUG"] == "false" and "KEY" not in env  # optional and missing: left out
    assert env["REF"] == "node=ip-192-168-0-11.ec2.internal $(NODE) $(NOPE)"
    assert env["PATH"].startswith(pod_spec.LLVM_BIN + ":") and env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"


def test_a_missing_required_key_is_a_create_container_config_error():
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}
    with pytest.raises(pod_spec.PodSpecError, match="CreateContainerConfigError"):
        pod_spec.container_env(pod([container]), container, NODE, lambda *_: None, lambda *_: None, {})


def test_argv_expands_variables_and_follows_the_kubernetes_rules_for_entrypoints():
    assert pod_spec.container_argv({"command": ["op"], "args": ["--debug=$(D)"]}, {"D": "true"}) == ["op", "--debug=true"]
    with pytest.raises(pod_spec.PodSpecError, match="no command"):
        pod_spec.container_argv({"name": "c", "args": ["x"]}, {})
    layout = pod_spec.ImageLayout("t", (), entrypoint=("/app/run",), cmd=("--default",))
    assert pod_spec.container_argv({"name": "c"}, {}, layout) == ["/app/run", "--default"]  # Entrypoint + Cmd
    assert pod_spec.container_argv({"name": "c", "args": ["--x"]}, {}, layout) == ["/app/run", "--x"]  # args replace Cmd
    assert pod_spec.container_argv({"name": "c", "command": ["sh"]}, {}, layout) == ["sh"]  # command replaces both


def test_image_layouts_by_repository():
    assert pod_spec.image_layout("quay.io/cilium/cilium:v1.20.2@sha256:x").tool == "cilium"
    assert pod_spec.image_layout("quay.io/cilium/operator-aws:v1.20.2").files == \
        pod_spec.image_layout("quay.io/cilium/cilium:v1.20.2").files
    aws = pod_spec.image_layout("602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.2-eksbuild.1")
    assert aws.entrypoint == ("/app/aws-vpc-cni",) and aws.workdir == "/app"
    init = pod_spec.image_layout("602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni-init:v1.19.2-eksbuild.1")
    assert init.cmd == ("/init/aws-vpc-cni-init",) and ("/init/portmap", "cni-plugins:bin/portmap") in init.files
    assert pod_spec.image_version("602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.2-eksbuild.1") \
        == "1.19.2"
    generic = pod_spec.image_layout("quay.io/cilium/operator-generic:v1.20.2@sha256:x")
    assert generic.tool == "cilium-operator-generic" and [t for t, _a in generic.files] == [
        "/usr/bin/cilium-operator-generic"]
    assert pod_spec.image_layout("busybox:1.36") is None
    mounts = {m.target: m for m in pod_spec.image_mounts(pod_spec.IMAGE_LAYOUTS["cilium/cilium"], {
        artifact: f"/c/{artifact}" for _target, artifact in pod_spec.IMAGE_LAYOUTS["cilium/cilium"].files})}
    assert mounts["/usr/bin/cilium"].source == "/c/cilium-dbg" and mounts["/usr/bin/cilium"].readonly
    assert not mounts["/var/lib/cilium/bpf"].readonly and not mounts["/var/lib/cilium/bpf"].is_file  # an overlay


def test_volume_mounts_map_host_paths_to_the_node_root_parents_first():
    container = {"name": "c", "volumeMounts": [
        {"name": "envoy", "mountPath": "/var/run/cilium/envoy/sockets"},
        {"name": "run", "mountPath": "/var/run/cilium"},
        {"name": "net", "mountPath": "/host/proc/sys/net"},
        {"name": "lock", "mountPath": "/run/xtables.lock"},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "cfg", "mountPath": "/tmp/cilium/config-map", "readOnly": True}]}
    volumes = [{"name": "envoy", "hostPath": {"path": "/var/run/cilium/envoy/sockets", "type": "DirectoryOrCreate"}},
               {"name": "run", "hostPath": {"path": "/var/run/cilium"}},
               {"name": "net", "hostPath": {"path": "/proc/sys/net", "type": "Directory"}},
               {"name": "lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
               {"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cilium-config"}}]
    mounts = pod_spec.volume_mounts(pod([container], volumes), container, {"tmp": "/p/tmp", "cfg": "/p/cfg"}, "/node")
    assert [m.target for m in mounts] == ["/tmp", "/run/xtables.lock", "/tmp/cilium/config-map", "/var/run/cilium",
                                          "/host/proc/sys/net", "/var/run/cilium/envoy/sockets"]
    by_target = {m.target: m for m in mounts}
    assert by_target["/var/run/cilium"].source == "/node/run/cilium"
    assert by_target["/var/run/cilium/envoy/sockets"].source == "/node/run/cilium/envoy/sockets"
    assert by_target["/host/proc/sys/net"].source == "proc-sys-net"
    assert by_target["/run/xtables.lock"].is_file and by_target["/tmp/cilium/config-map"].readonly


def test_unsupported_volume_kinds_are_named():
    container = {"name": "c", "volumeMounts": [{"name": "disk", "mountPath": "/data"}]}
    volumes = [{"name": "disk", "persistentVolumeClaim": {"claimName": "x"}}]
    with pytest.raises(pod_spec.PodSpecError, match="persistentVolumeClaim"):
        pod_spec.volume_mounts(pod([container], volumes), container, {}, "/node")


def test_start_script_mounts_then_execs_in_a_chroot(tmp_path):
    plan = pod_spec.ContainerPlan(
        argv=["cilium-agent", "--config-dir=/tmp/cilium/config-map"], env={"A": "b c"},
        mounts=[pod_spec.Mount("/var/run/cilium", "/node/run/cilium"),
                pod_spec.Mount("/host/proc/sys/net", "proc-sys-net"),
                pod_spec.Mount("/tmp/cilium/config-map", "/p/cfg", readonly=True)],
        image_files=pod_spec.image_mounts(
            pod_spec.ImageLayout("cilium", (("/usr/bin/cilium-agent", "cilium-agent"), ("/usr/bin/cilium-dbg", "cilium-dbg"),
                                            ("/usr/bin/cilium", "cilium-dbg"), ("/var/lib/cilium/bpf", "cilium:lib/bpf/"))),
            {"cilium-agent": "/cache/bin/cilium-agent", "cilium-dbg": "/cache/bin/dbg", "cilium:lib/bpf/": "/cache/lib/bpf"}))
    script = pod_spec.start_script("/r", "/u", plan, net_core="/n/core")
    lines = script.splitlines()
    assert "mount --make-rprivate /" in lines
    assert "mount -t overlay overlay -o lowerdir=/usr,upperdir=/u/usr,workdir=/u/usr.work \"$R/usr\"" in lines
    assert 'mount --bind /n/core "$R/proc/sys/net/core"' in lines
    assert 'mount --rbind /cache/bin/dbg "$R"/usr/bin/cilium' in lines  # cilium is cilium-dbg since 1.15
    assert ('mount -t overlay overlay -o lowerdir=/cache/lib/bpf,upperdir=/u/image3,workdir=/u/image3.work '
            '"$R"/var/lib/cilium/bpf') in lines  # the agent writes its feature headers there
    assert 'mount --rbind "$R/proc/sys/net" "$R"/host/proc/sys/net' in lines
    assert 'mount -o remount,bind,ro "$R"/tmp/cilium/config-map' in lines
    assert lines[-1] == ("exec chroot \"$R\" /usr/bin/env -i 'A=b c' cilium-agent "
                         "--config-dir=/tmp/cilium/config-map")
    assert subprocess.run(["sh", "-n"], input=script, text=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def chart_pods():
    """The agent DaemonSet and operator Deployment pod templates of the real 1.20.2 chart, ENI mode."""
    if gobuild.unavailable_reason("helm"):
        pytest.skip(gobuild.unavailable_reason("helm"))
    helm = gobuild.ensure("helm")["helm"]
    values = "eni:\n  enabled: true\nipam:\n  mode: eni\nroutingMode: native\ncluster:\n  name: t\n"
    rendered = subprocess.run([str(helm), "template", "cilium", str(charts.ensure_chart("1.20.2")), "-n", "kube-system",
                               "-f", "-"], input=values, capture_output=True, text=True, check=True).stdout
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered) if d}
    return {name: docs[(kind, name)]["spec"]["template"] for kind, name in
            (("DaemonSet", "cilium"), ("Deployment", "cilium-operator"))}


def test_the_charts_agent_container_plans_as_the_daemonset_says(chart_pods):
    template = chart_pods["cilium"]
    agent_pod = {"metadata": {"name": "cilium-abc", "namespace": "kube-system", "uid": "u"},
                 "spec": dict(template["spec"], nodeName="n1"), "status": {}}
    container = next(c for c in template["spec"]["containers"] if c["name"] == "cilium-agent")
    env = pod_spec.container_env(agent_pod, container, NODE, lambda *_: None, lambda *_: None, {})
    assert pod_spec.container_argv(container, env) == ["cilium-agent", "--config-dir=/tmp/cilium/config-map"]
    assert env["K8S_NODE_NAME"] == "n1" and env["CILIUM_K8S_NAMESPACE"] == "kube-system"
    folders = {v["name"]: f"/pod/{v['name']}" for v in template["spec"]["volumes"] if "hostPath" not in v}
    mounts = {m.target: m for m in pod_spec.volume_mounts(agent_pod, container, folders, "/node")}
    assert mounts["/sys/fs/bpf"].source == "/node/sys/fs/bpf"
    assert mounts["/host/etc/cni/net.d"].source == "/node/etc/cni/net.d"
    assert mounts["/host/proc/sys/kernel"].source == "proc-sys-kernel"
    assert mounts["/tmp"].source == "/pod/tmp"
    init = {c["name"] for c in template["spec"]["initContainers"]}
    from eks_sandbox import pod_runtime
    assert init <= set(pod_runtime.INIT_CONTAINERS)  # every init container of the chart has a decision


def test_the_charts_operator_container_plans(chart_pods):
    template = chart_pods["cilium-operator"]
    op_pod = {"metadata": {"name": "cilium-operator-1", "namespace": "kube-system", "uid": "u"},
              "spec": dict(template["spec"], nodeName="n1"), "status": {}}
    container = template["spec"]["containers"][0]
    env = pod_spec.container_env(op_pod, container, NODE, lambda name, key: "true" if key == "debug" else None,
                                 lambda *_: None, {})
    assert pod_spec.container_argv(container, env) == ["cilium-operator-aws", "--config-dir=/tmp/cilium/config-map",
                                                       "--debug=true"]
    assert pod_spec.image_version(container["image"]) == "1.20.2"
