"""The container runtime's CNI step (cni.py): which configuration runs, what each plugin reads, the results."""
import json

import pytest

from eks_sandbox import cni

CILIUM_CONFLIST = {"cniVersion": "0.3.1", "name": "cilium", "plugins": [
    {"type": "cilium-cni", "enable-debug": False, "log-file": "/var/run/cilium/cilium-cni.log"}]}


def test_the_first_valid_file_by_name_wins(tmp_path):
    (tmp_path / "10-aws.conflist").write_text(json.dumps({"cniVersion": "0.4.0", "name": "aws-cni",
                                                          "plugins": [{"type": "aws-cni"}]}))
    assert cni.active_conf(tmp_path)[0] == "10-aws.conflist"
    (tmp_path / "05-cilium.conflist").write_text(json.dumps(CILIUM_CONFLIST))
    (tmp_path / "01-broken.conf").write_text("{not json")
    (tmp_path / "00-readme.txt").write_text("ignored: not a CNI file name")
    name, conflist = cni.active_conf(tmp_path)
    assert name == "05-cilium.conflist" and conflist["plugins"][0]["type"] == "cilium-cni"


def test_a_single_conf_becomes_a_list_and_no_conf_is_none(tmp_path):
    assert cni.active_conf(tmp_path / "missing") is None
    assert cni.active_conf(tmp_path) is None
    (tmp_path / "99-loop.conf").write_text(json.dumps({"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}))
    assert cni.active_conf(tmp_path)[1]["plugins"] == [{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}]


def test_plugin_config_carries_the_list_name_version_and_prev_result():
    stdin = json.loads(cni.plugin_config(CILIUM_CONFLIST, CILIUM_CONFLIST["plugins"][0], {"ips": []}))
    assert stdin["name"] == "cilium" and stdin["cniVersion"] == "0.3.1" and stdin["prevResult"] == {"ips": []}
    assert "prevResult" not in json.loads(cni.plugin_config(CILIUM_CONFLIST, CILIUM_CONFLIST["plugins"][0], None))


def test_cni_args_and_result_address():
    pod = {"metadata": {"namespace": "default", "name": "web", "uid": "u1"}}
    assert cni.cni_args(pod, "c1") == ("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;"
                                       "K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=u1")
    result = {"ips": [{"address": "fd00::5/128"}, {"address": "192.168.14.112/32", "gateway": "192.168.15.39"}]}
    assert cni.result_ipv4(result) == "192.168.14.112"
    assert cni.result_ipv4({}) is None


def test_node_view_shows_the_nodes_folders_at_host_paths(tmp_path):
    mounts = {m.target: m for m in cni.node_view_mounts(tmp_path)}
    assert mounts["/run/cilium"].source == str(tmp_path / "run/cilium")
    assert mounts["/opt/cni/bin"].source == str(tmp_path / "opt/cni/bin")
    assert mounts["/run/netns"].source == "/run/netns"
    assert mounts["/run/xtables.lock"].is_file


def test_stand_in_ipam_avoids_used_addresses():
    ipam = cni.StandInIpam("10.9.0.0/29")  # 6 hosts
    first = ipam.pick(set(), "pod-a")
    assert first == ipam.pick(set(), "pod-a")  # stable for a pod
    taken = set()
    for seed in "abcdef":
        taken.add(ipam.pick(taken, seed))
    assert len(taken) == 6
    with pytest.raises(cni.CniError, match="no free address"):
        ipam.pick(taken, "g")
