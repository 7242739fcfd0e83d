# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The values of cilium_values rendered by the REAL Cilium chart of every tested version (helm template).

``helm template`` runs the chart's own validation (validate.yaml) and, from 1.16, its values.schema.json.
The cilium-config ConfigMap is what the agent reads: the assertions are on its keys, not on our values.
Needs the platform's helm and charts (``make platform``); skipped naming what is missing otherwise.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_table as table
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_values as cv

eks_sandbox = pytest.importorskip("eks_sandbox", reason="tests/platform must be on PYTHONPATH (make units does it)")
from eks_sandbox import charts, gobuild, versions  # noqa: E402  pylint: disable=wrong-import-position

CLUSTER = "it-cilium"


@pytest.fixture(scope="module")
def helm():
    reason = gobuild.unavailable_reason("helm")
    if reason:
        pytest.skip(reason)
    return str(gobuild.ensure("helm")["helm"])


def render(helm, version, values=None, set_args=()):
    argv = [helm, "template", "cilium", str(charts.ensure_chart(version)), "--namespace", "kube-system",
            "--values", "-"] + list(set_args)
    done = subprocess.run(argv, input=yaml.safe_dump(values or {}), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "cilium-config")
    operator = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "cilium-operator")
    return config["data"], operator["spec"]["template"]["spec"]["containers"][0]["image"], operator["spec"]


def minor(version):
    return tuple(int(p) for p in version.split(".")[:2])


TESTED = list(versions.CILIUM_CHARTS.values())


def test_the_collection_table_matches_the_platform_versions():
    assert sorted(table.TESTED_VERSIONS) == sorted(TESTED)


@pytest.mark.parametrize("version", TESTED)
def test_eni_values_render(helm, version):
    data, image, _spec = render(helm, version, cv.build_values("eni", version, cluster_name=CLUSTER)["values"])
    assert data["ipam"] == "eni"
    assert data["enable-endpoint-routes"] == "true"  # the chart turns it on with eni.enabled
    assert data["cluster-name"] == CLUSTER and data["cluster-id"] == "0"
    assert "/operator-aws:v%s" % version in image
    assert "egress-masquerade-interfaces" not in data
    assert data.get("cni-chaining-mode") in (None, "none")
    if minor(version) >= (1, 14):
        assert data["routing-mode"] == "native" and "tunnel" not in data
        assert data["kube-proxy-replacement"] == "false"
    else:
        assert data["tunnel"] == "disabled" and "routing-mode" not in data
        assert data["kube-proxy-replacement"] == "disabled"
    # The default egress (vpc) writes masquerading off on every minor: the chart's own default was on up to 1.17,
    # with a rule that matched no pod (no interfaces), and the 1.19+ agents panic on "on, no interfaces".
    assert data["enable-ipv4-masquerade"] == "false"


KPR = {"kube_proxy_replacement": True, "k8s_service_host": "ABC.gr7.us-east-1.eks.amazonaws.com"}
EGRESS_OPTIONS = {"vpc": {}, "iptables-masquerade": {"egress_masquerade_interfaces": "ens+"},
                  "bpf-masquerade": KPR}
# What the agent reads for each egress (cilium-config keys): enable-ipv4-masquerade, enable-bpf-masquerade,
# egress-masquerade-interfaces.
EGRESS_CONFIG = {"vpc": ("false", "false", None), "iptables-masquerade": ("true", "false", "ens+"),
                 "bpf-masquerade": ("true", "true", None)}


def panics_or_masquerades_nothing(data):
    """The config the 1.19+ agents panic on, and 1.13-1.18 agents masquerade nothing with, in ENI mode
    (pkg/datapath/iptables/iptables.go at v1.20.2 l.449-452; at v1.13.4 l.1137-1146)."""
    return (data.get("ipam") == "eni" and data.get("enable-ipv4-masquerade") == "true"
            and data.get("enable-bpf-masquerade") != "true" and not data.get("egress-masquerade-interfaces"))


@pytest.mark.parametrize("egress", list(EGRESS_CONFIG))
@pytest.mark.parametrize("version", TESTED)
def test_each_egress_renders_the_masquerading_keys_the_agent_reads(helm, version, egress):
    values = cv.build_values("eni", version, cluster_name=CLUSTER, egress=egress, **EGRESS_OPTIONS[egress])["values"]
    data, _image, _spec = render(helm, version, values)
    masquerade, bpf, interfaces = EGRESS_CONFIG[egress]
    assert data["enable-ipv4-masquerade"] == masquerade
    assert data.get("enable-bpf-masquerade", "false") == bpf
    assert data.get("egress-masquerade-interfaces") == interfaces
    assert not panics_or_masquerades_nothing(data)


@pytest.mark.parametrize("version", TESTED)
def test_the_chart_alone_renders_the_panic_config_the_collection_refuses(helm, version):
    """What the README advised before (enableIPv4Masquerade=true through extra values) and what the chart
    defaulted to up to 1.17: helm accepts it (no validate.yaml check), the agent does not."""
    data, _image, _spec = render(helm, version, {"eni": {"enabled": True}, "ipam": {"mode": "eni"},
                                                 "enableIPv4Masquerade": True})
    assert panics_or_masquerades_nothing(data)
    with pytest.raises(cv.ValidationError, match="Egress masquerading interfaces cannot be empty"):
        cv.build_values("eni", version, cluster_name=CLUSTER, egress="iptables-masquerade")


@pytest.mark.parametrize("version", TESTED)
def test_chaining_values_render(helm, version):
    data, image, _spec = render(helm, version, cv.build_values("chaining", version, cluster_name=CLUSTER)["values"])
    assert data["cni-chaining-mode"] == "aws-cni"
    assert data.get("cni-exclusive", "false") == "false"  # 1.13 has no cni-exclusive key; exclusive=false there
    assert data["enable-ipv4-masquerade"] == "false"
    # endpointRoutes as each minor's aws-cni chaining docs say (1.13/1.14 only); identity mark off from 1.15 as
    # Cilium's aws-cni CI runs it (cilium_table GATES aws_cni_endpoint_routes, aws_cni_identity_mark_off).
    assert data.get("enable-endpoint-routes") == ("true" if minor(version) < (1, 15) else None)
    assert data.get("enable-identity-mark") == ("false" if minor(version) >= (1, 15) else None)
    assert data["ipam"] == "cluster-pool"  # unused: the VPC CNI allocates the pod IPs
    assert "/operator-generic:v%s" % version in image
    if minor(version) >= (1, 14):
        assert data["routing-mode"] == "native" and "tunnel" not in data
    else:
        assert data["tunnel"] == "disabled"


@pytest.mark.parametrize("version", TESTED)
def test_kube_proxy_replacement_renders(helm, version):
    values = cv.build_values("eni", version, cluster_name=CLUSTER, kube_proxy_replacement=True,
                             k8s_service_host="ABC.gr7.us-east-1.eks.amazonaws.com")["values"]
    data, _image, spec = render(helm, version, values)
    assert data["kube-proxy-replacement"] == ("strict" if version == "1.13.4" else "true")
    env = {e["name"]: e.get("value") for e in spec["template"]["spec"]["containers"][0].get("env", [])}
    assert env.get("KUBERNETES_SERVICE_HOST") == "ABC.gr7.us-east-1.eks.amazonaws.com"


@pytest.mark.parametrize("version", TESTED)
def test_prefix_delegation_and_replicas_render(helm, version):
    values = cv.build_values("eni", version, cluster_name=CLUSTER, prefix_delegation=True,
                             operator_replicas=1)["values"]
    data, _image, spec = render(helm, version, values)
    assert data["aws-enable-prefix-delegation"] == "true"
    assert spec["replicas"] == 1


BLOG_CHAINING = ["--set", "cni.chainingMode=aws-cni", "--set", "cni.exclusive=false",
                 "--set", "enableIPv4Masquerade=false", "--set", "tunnel=disabled",
                 "--set", "endpointRoutes.enabled=true"]
# `cilium install` 1.13 on EKS (part 1 of the blog), minus the chart defaults it also passed.
BLOG_CLI_ENI = ["--set", "cluster.id=0,cluster.name=%s,egressMasqueradeInterfaces=eth0,eni.enabled=true,"
                "ipam.mode=eni,kubeProxyReplacement=disabled,tunnel=disabled" % CLUSTER]


def test_1_13_4_chaining_renders_exactly_as_the_blog_post(helm):
    ours, _image, _spec = render(helm, "1.13.4", cv.build_values("chaining", "1.13.4", cluster_name=CLUSTER)["values"])
    blog, _image, _spec = render(helm, "1.13.4", set_args=BLOG_CHAINING + ["--set", "cluster.name=%s" % CLUSTER])
    assert ours == blog


def test_1_13_4_eni_with_iptables_masquerading_on_eth0_renders_as_the_cli_of_the_blog(helm):
    blog_egress = {"egress": "iptables-masquerade", "egress_masquerade_interfaces": "eth0"}
    values = cv.build_values("eni", "1.13.4", cluster_name=CLUSTER, **blog_egress)["values"]
    ours, our_image, _spec = render(helm, "1.13.4", values)
    cli, cli_image, _spec = render(helm, "1.13.4", set_args=BLOG_CLI_ENI)
    # bpf.masquerade written out (false): the agent's own default (daemon/cmd/daemon_main.go at v1.13.4 l.652).
    assert ours.pop("enable-bpf-masquerade") == "false" and "enable-bpf-masquerade" not in cli
    assert ours == cli
    assert our_image == cli_image
    vpc, _image, _spec = render(helm, "1.13.4", cv.build_values("eni", "1.13.4", cluster_name=CLUSTER)["values"])
    assert vpc["enable-ipv4-masquerade"] == "false" and "egress-masquerade-interfaces" not in vpc


@pytest.mark.parametrize("version", [v for v in TESTED if minor(v) >= (1, 15)])
def test_the_tunnel_key_the_mapping_avoids_is_refused_by_the_chart(helm, version):
    argv = [helm, "template", "cilium", str(charts.ensure_chart(version)), "--set", "tunnel=disabled"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "tunnel" in done.stderr


@pytest.mark.parametrize("version", [v for v in TESTED if minor(v) >= (1, 16)])
def test_legacy_kpr_values_the_mapping_avoids_are_refused_by_the_chart(helm, version):
    argv = [helm, "template", "cilium", str(charts.ensure_chart(version)), "--set", "kubeProxyReplacement=disabled"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "kubeProxyReplacement" in done.stderr


@pytest.mark.parametrize("version", TESTED)
def test_commented_keys_of_each_real_chart_are_known(version):
    chart_dir = charts.ensure_chart_dir(version)
    text = (chart_dir / "values.yaml").read_text()
    tree, commented = cv.known_value_keys(text, yaml.safe_load(text))
    assert "egressMasqueradeInterfaces" in commented
    assert cv.unknown_keys({"egressMasqueradeInterfaces": "ens+", "eni": {"awsReleaseExcessIPs": True},
                            "bandwidthManager": {"enabled": True},
                            "operator": {"nodeSelector": {"role": "infra"}, "podAnnotations": {"a": "b"}},
                            "resources": {"limits": {"memory": "1Gi"}}}, tree, commented) == []
    assert cv.unknown_keys({"bandwidthManagr": {"enabled": True}}, tree, commented) == ["bandwidthManagr"]
    if minor(version) < (1, 18):
        assert "kubeProxyReplacement" in commented  # documented commented out before 1.18
