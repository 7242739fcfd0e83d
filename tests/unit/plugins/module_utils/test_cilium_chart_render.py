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
    # The chart's own default changed in 1.18: no IPv4 masquerading in ENI mode unless asked for.
    assert data["enable-ipv4-masquerade"] == ("false" if minor(version) >= (1, 18) else "true")


@pytest.mark.parametrize("version", TESTED)
def test_chaining_values_render(helm, version):
    data, image, _spec = render(helm, version, cv.build_values("chaining", version, cluster_name=CLUSTER)["values"])
    assert data["cni-chaining-mode"] == "aws-cni"
    assert data.get("cni-exclusive", "false") == "false"  # 1.13 has no cni-exclusive key; exclusive=false there
    assert data["enable-ipv4-masquerade"] == "false"
    assert data["enable-endpoint-routes"] == "true"
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


def test_1_13_4_eni_renders_as_the_cli_of_the_blog_but_for_eth0(helm):
    ours, our_image, _spec = render(helm, "1.13.4", cv.build_values("eni", "1.13.4", cluster_name=CLUSTER)["values"])
    cli, cli_image, _spec = render(helm, "1.13.4", set_args=BLOG_CLI_ENI)
    assert cli.pop("egress-masquerade-interfaces") == "eth0"
    assert ours == cli
    assert our_image == cli_image


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
