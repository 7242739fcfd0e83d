# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The filters through which roles and playbooks read the Cilium table and the eksctl validation."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.filter.cilium_expect import cilium_expect
from ansible_collections.cloudnet.cilium_eks.plugins.filter.cilium_problems import cilium_problems
from ansible_collections.cloudnet.cilium_eks.plugins.filter.eksctl_cluster_problems import eksctl_cluster_problems


BBR_PODS = {"kubeProxyReplacement": "true", "enableIPv4Masquerade": False, "bandwidthManager": {"bbr": True}}


def test_accepted_settings_have_no_problem():
    assert cilium_problems({"mode": "eni", "version": "1.18.11", "values": BBR_PODS}) == []


def test_bbr_for_pods_without_bpf_host_routing_is_refused():
    """Without kube-proxy replacement the agent runs legacy host routing, where BBR does not reach pods."""
    problems = cilium_problems({"mode": "eni", "values": {"bandwidthManager": {"bbr": True}}},
                               {"bandwidthManager.bbr": "cilium_eks_bbr"})
    assert len(problems) == 1 and "BBR for pods needs BPF host routing" in problems[0]
    # An installed 1.17 release of an older collection: masquerading left to the chart (on, iptables).
    problems = cilium_problems({"mode": "eni", "version": "1.17.17",
                                "values": {"kubeProxyReplacement": "true", "bandwidthManager": {"bbr": True}}})
    assert len(problems) == 1 and "without iptables masquerading" in problems[0]


def test_an_unknown_mode_is_named_as_the_caller_names_it():
    assert cilium_problems({"mode": "overlay"}, {"mode": "cilium_mode"}) == [
        "Invalid `cilium_mode` 'overlay': unknown mode. Accepted values: eni, chaining"]


def test_a_rule_names_the_variable_behind_the_key():
    problems = cilium_problems({"mode": "chaining", "values": {"bandwidthManager": {"bbr": True}}},
                               {"bandwidthManager.bbr": "cilium_eks_bbr"})
    assert len(problems) == 1 and problems[0].startswith("Invalid `cilium_eks_bbr` True: the Cilium agent refuses")


def test_the_mode_of_an_installed_release_is_read_from_its_values():
    values = {"cni": {"chainingMode": "aws-cni"}, "bandwidthManager": {"bbr": True}}
    assert "CNI chaining mode" in cilium_problems({"values": values})[0]


def test_a_key_the_release_s_chart_does_not_have_is_refused():
    values = {"bandwidthManager": {"bbrHostNamespaceOnly": True}}
    problem = cilium_problems({"mode": "eni", "version": "1.17.17", "values": values},
                              {"bandwidthManager.bbrHostNamespaceOnly": "bandwidth_manager_bbr_host_namespace_only"})
    assert problem == ["Invalid `bandwidth_manager_bbr_host_namespace_only` True: in the chart from Cilium 1.18 only; "
                       "use a newer Cilium, or leave it unset: the release runs Cilium 1.17.17"]
    assert cilium_problems({"mode": "eni", "version": "1.18.11", "values": values}) == []


def test_old_kernels_are_refused_for_bbr_only():
    nodes = [{"metadata": {"name": "n1"}, "status": {"nodeInfo": {"kernelVersion": "5.10.238-231.953.amzn2.x86_64"}}}]
    problem = cilium_problems({"mode": "eni", "values": BBR_PODS, "nodes": nodes})
    assert "1 node(s) are older: n1 (kernel 5.10.238-231.953.amzn2.x86_64)" in problem[0]
    assert cilium_problems({"mode": "eni", "values": {"bandwidthManager": {"bbr": False}}, "nodes": nodes}) == []


def test_settings_the_filter_does_not_know_are_a_filter_error():
    with pytest.raises(AnsibleFilterError):
        cilium_problems({"mode": "eni", "bbr": True})


def test_expect_reads_the_mode_profile():
    assert cilium_expect("chaining") == {"chaining_mode": "aws-cni", "routing_mode": "native"}
    assert cilium_expect("eni", False)["kube_proxy_replacement"] is False
    with pytest.raises(AnsibleFilterError, match="unknown mode"):
        cilium_expect("overlay")


def test_eksctl_problems_name_the_role_variables():
    options = {"name": "basic_cilium", "region": "us-east-1", "nodegroups": [{"name": "ng-1"}]}
    assert eksctl_cluster_problems(options, {"name": "eks_cluster_name"}) == [
        "Invalid `eks_cluster_name` 'basic_cilium': an EKS cluster name starts with a letter and has only letters, "
        "digits and hyphens, at most 100 characters. Expected: e.g. basic-cilium"]
    options = dict(options, name="basic-cilium", nodegroups=[{"name": "ng-1", "instance_type": "huge"}])
    assert eksctl_cluster_problems(options, {"nodegroups": "eks_cluster_nodegroups"})[0].startswith(
        "Invalid `eks_cluster_nodegroups[ng-1].instance_type` 'huge'")
    assert eksctl_cluster_problems(dict(options, nodegroups=[], version="1.29"), supported_versions=["1.33"])[0] \
        .startswith("Invalid `version` '1.29': this version is not one EKS supports")
    assert eksctl_cluster_problems(dict(options, nodegroups=[])) == []


def test_status_mismatches_reuse_the_module_s_comparison():
    from ansible_collections.cloudnet.cilium_eks.plugins.filter.cilium_status_mismatches import cilium_status_mismatches

    status = {"ipam_mode": "eni", "routing_mode": "native",
              "bandwidth_manager": {"enabled": True, "congestion_control": "cubic", "devices": []}}
    assert cilium_status_mismatches(status, {"ipam_mode": "eni", "bandwidth_manager": True}) == []
    assert cilium_status_mismatches(status, {"congestion_control": "bbr"}) == [
        "congestion_control: expected bbr, found cubic"]
    with pytest.raises(AnsibleFilterError):
        cilium_status_mismatches(status, {"nonsense": 1})


def test_pods_without_masquerading_on_public_nodes_are_refused():
    """Egress vpc on nodes with public IPs (public subnets): the internet gateway does not translate pod addresses."""
    public = {"metadata": {"name": "ip-192-168-1-1"}, "status": {"addresses": [
        {"type": "InternalIP", "address": "192.168.1.1"}, {"type": "ExternalIP", "address": "54.243.4.228"}]}}
    private = {"metadata": {"name": "ip-192-168-99-1"}, "status": {"addresses": [
        {"type": "InternalIP", "address": "192.168.99.1"}]}}
    vpc = {"eni": {"enabled": True}, "enableIPv4Masquerade": False}
    problems = cilium_problems({"mode": "eni", "version": "1.20.2", "values": vpc, "nodes": [public, private]},
                               {"enableIPv4Masquerade": "cilium_eni_egress"})
    assert len(problems) == 1 and problems[0].startswith("Invalid `cilium_eni_egress` 'vpc': leaves pods")
    assert "ip-192-168-1-1 have public IPs" in problems[0] and "ip-192-168-99-1" not in problems[0]
    assert cilium_problems({"mode": "eni", "version": "1.20.2", "values": vpc, "nodes": [private]}) == []
    masquerade = dict(vpc, enableIPv4Masquerade=True, egressMasqueradeInterfaces="ens+")
    assert cilium_problems({"mode": "eni", "version": "1.20.2", "values": masquerade, "nodes": [public]}) == []
    assert cilium_problems({"mode": "chaining", "values": {}, "nodes": [public]}) == []


def test_only_checks_the_keys_a_role_changes():
    """bandwidth_manager checks its keys of a release whose other settings are not its business."""
    release = {"eni": {"enabled": True}, "egressMasqueradeInterfaces": "eth0", "kubeProxyReplacement": "true",
               "enableIPv4Masquerade": False, "bandwidthManager": {"bbr": True}}
    everything = cilium_problems({"mode": "eni", "version": "1.18.11", "values": release})
    assert len(everything) == 1 and "`egressMasqueradeInterfaces`" in everything[0]
    assert cilium_problems({"mode": "eni", "version": "1.18.11", "values": release}, only=["bandwidthManager"]) == []
    no_kpr = dict(release, kubeProxyReplacement="false")
    assert "host routing" in cilium_problems({"mode": "eni", "values": no_kpr}, only=["bandwidthManager"])[0]
