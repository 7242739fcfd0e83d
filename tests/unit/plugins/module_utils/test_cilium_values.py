# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The per-version values mapping: pure function tests (the real-chart renders are in test_cilium_chart_render.py)."""

from __future__ import annotations

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_table as table
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_values as cv
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

# The 1.13.4 chaining install of the blog post (part 4), flag for flag, plus ipam.mode written out as Cilium's
# aws-cni CI does (the chart's default, cluster-pool, either way).
BLOG_CHAINING_1134 = {"cni": {"chainingMode": "aws-cni", "exclusive": False}, "enableIPv4Masquerade": False,
                      "tunnel": "disabled", "endpointRoutes": {"enabled": True}, "ipam": {"mode": "cluster-pool"}}


def values(mode, version, **kwargs):
    kwargs.setdefault("cluster_name", "demo")
    return cv.build_values(mode, version, **kwargs)["values"]


NEWEST = table.DEFAULT_VERSION
NEXT_MINOR = "1.%d.0" % (int(NEWEST.split(".")[1]) + 1)  # one minor past the table: not supported yet


def test_default_version_is_the_newest_tested_patch():
    newest = max(table.TESTED_VERSIONS, key=lambda v: tuple(int(p) for p in v.split(".")))
    assert table.DEFAULT_VERSION == newest
    assert cv.build_values("eni", cluster_name="demo")["version"] == newest


def test_1_13_chaining_is_the_blog_post_plus_identity_and_explicit_kpr():
    got = values("chaining", "1.13.4")
    expected = cv.deep_merge(BLOG_CHAINING_1134, {"cluster": {"name": "demo", "id": 0},
                                                  "kubeProxyReplacement": "disabled"})
    assert got == expected


def test_1_13_eni_is_the_cli_values_of_the_blog_with_the_egress_made_explicit():
    # cilium install 1.13.3: cluster.id=0, cluster.name, egressMasqueradeInterfaces=eth0, eni.enabled=true,
    # ipam.mode=eni, kubeProxyReplacement=disabled, tunnel=disabled (+ chart defaults). The default egress (vpc)
    # turns masquerading off; iptables-masquerade with eth0 is the blog's exactly.
    got = values("eni", "1.13.4")
    assert got == {"cluster": {"name": "demo", "id": 0}, "eni": {"enabled": True}, "ipam": {"mode": "eni"},
                   "tunnel": "disabled", "kubeProxyReplacement": "disabled", "enableIPv4Masquerade": False}
    blog = values("eni", "1.13.4", egress="iptables-masquerade", egress_masquerade_interfaces="eth0")
    assert blog == dict(got, enableIPv4Masquerade=True, bpf={"masquerade": False}, egressMasqueradeInterfaces="eth0")


@pytest.mark.parametrize("version", [v for v in table.TESTED_VERSIONS if v != "1.13.4"])
@pytest.mark.parametrize("mode", table.MODES)
def test_1_14_and_later_use_routing_mode_and_boolean_kpr(mode, version):
    got = values(mode, version)
    assert got["routingMode"] == "native"
    assert "tunnel" not in got
    assert got["kubeProxyReplacement"] == "false"
    assert values(mode, version, kube_proxy_replacement=True, k8s_service_host="x.eks.amazonaws.com")[
        "kubeProxyReplacement"] == "true"


def test_1_13_kpr_on_is_strict():
    got = values("eni", "1.13.4", kube_proxy_replacement=True, k8s_service_host="https://abc.eks.amazonaws.com/")
    assert got["kubeProxyReplacement"] == "strict"
    assert got["k8sServiceHost"] == "abc.eks.amazonaws.com"
    assert got["k8sServicePort"] == 443


def test_eni_mode_values():
    got = values("eni", NEWEST, prefix_delegation=True, operator_replicas=1)
    assert got["eni"] == {"enabled": True, "awsEnablePrefixDelegation": True}
    assert got["ipam"] == {"mode": "eni"}
    assert got["operator"] == {"replicas": 1}
    assert "cni" not in got and got["enableIPv4Masquerade"] is False  # egress vpc, on every minor


def test_chaining_mode_values():
    got = values("chaining", NEWEST)
    assert got["cni"] == {"chainingMode": "aws-cni", "exclusive": False}
    assert got["enableIPv4Masquerade"] is False
    assert got["ipam"] == {"mode": "cluster-pool"}
    assert "eni" not in got


@pytest.mark.parametrize("version", table.TESTED_VERSIONS)
def test_chaining_follows_each_minor_s_docs_and_ci(version):
    got = values("chaining", version)
    old = version.startswith(("1.13.", "1.14."))
    assert ("endpointRoutes" in got) is old and got.get("endpointRoutes", {"enabled": True}) == {"enabled": True}
    assert ("enableIdentityMark" in got) is not old and got.get("enableIdentityMark", False) is False


@pytest.mark.parametrize("egress, extra, masquerading", [
    (None, {"enableIPv4Masquerade": False}, "disabled"),
    ("vpc", {"enableIPv4Masquerade": False}, "disabled"),
    ("iptables-masquerade", {"enableIPv4Masquerade": True, "bpf": {"masquerade": False},
                             "egressMasqueradeInterfaces": "ens+"}, "iptables"),
    ("bpf-masquerade", {"enableIPv4Masquerade": True, "bpf": {"masquerade": True}}, "bpf"),
])
@pytest.mark.parametrize("version", table.TESTED_VERSIONS)
def test_each_egress_sets_all_the_keys_it_owns_on_every_minor(version, egress, extra, masquerading):
    kpr = {"kube_proxy_replacement": True, "k8s_service_host": "x.eks.amazonaws.com"} if egress == "bpf-masquerade" \
        else {}
    interfaces = {"egress_masquerade_interfaces": "ens+"} if egress == "iptables-masquerade" else {}
    result = cv.build_values("eni", version, cluster_name="demo", egress=egress, **dict(kpr, **interfaces))
    for key, value in extra.items():
        assert result["values"][key] == value
    assert result["egress"] == (egress or "vpc") and result["expect"]["masquerading"] == masquerading
    assert table.masquerading(result["values"], "eni", version) == masquerading


def test_extra_values_are_merged_on_top():
    got = values("chaining", NEWEST, extra_values={
        "bandwidthManager": {"enabled": True}, "hubble": {"relay": {"enabled": True}}})
    assert got["bandwidthManager"] == {"enabled": True}
    assert got["hubble"] == {"relay": {"enabled": True}}


def test_masquerade_interfaces_go_with_iptables_masquerading_only():
    result = cv.build_values("eni", NEWEST, cluster_name="demo", egress="iptables-masquerade",
                             egress_masquerade_interfaces="eth+ ens+")
    assert result["values"]["egressMasqueradeInterfaces"] == "eth+ ens+"
    assert "never read" in expect_error("egress_masquerade_interfaces", egress_masquerade_interfaces="ens+")
    assert "BPF masquerading" in expect_error("egress_masquerade_interfaces", egress="bpf-masquerade",
                                              egress_masquerade_interfaces="ens+", kube_proxy_replacement=True,
                                              k8s_service_host="x.eks.amazonaws.com")
    assert "one interface pattern" in expect_error("egress_masquerade_interfaces", version="1.14.19",
                                                   egress="iptables-masquerade",
                                                   egress_masquerade_interfaces="eth+ ens+")


@pytest.mark.parametrize("version", table.TESTED_VERSIONS)
def test_masquerading_without_interfaces_is_refused_on_every_minor(version):
    """The 1.19+ panic (pkg/datapath/iptables/iptables.go) and the 1.13-1.18 rule that matches nothing."""
    msg = expect_error("egress", version=version, egress="iptables-masquerade")
    assert "Egress masquerading interfaces cannot be empty" in msg and "'iptables-masquerade'" in msg
    for extra in ({"enableIPv4Masquerade": True}, {"bpf": {"masquerade": True}}):
        assert "use egress instead" in expect_error("extra_values", version=version, extra_values=extra)


def test_bpf_masquerading_needs_kube_proxy_replacement():
    assert "BPF NodePort" in expect_error("egress", egress="bpf-masquerade")
    assert "has no egress choice" in expect_error("egress", mode="chaining", egress="vpc")
    assert "unknown egress" in expect_error("egress", egress="nat")


@pytest.mark.parametrize("version, kpr, egress, bbr_ok", [
    ("1.13.4", True, "vpc", False),                      # ENI 1.13: endpoint routes force legacy host routing
    ("1.14.19", True, "vpc", True), ("1.17.17", True, "bpf-masquerade", True),
    ("1.20.2", False, "vpc", False),                     # no kube-proxy replacement: legacy host routing
    ("1.20.2", True, "iptables-masquerade", False),      # iptables masquerading: legacy host routing
    ("1.20.2", True, "vpc", True), ("1.20.2", True, "bpf-masquerade", True),
])
def test_bbr_for_pods_only_where_the_agent_runs_bpf_host_routing(version, kpr, egress, bbr_ok):
    options = {"version": version, "egress": egress, "extra_values": {"bandwidthManager": {"bbr": True}}}
    if kpr:
        options.update(kube_proxy_replacement=True, k8s_service_host="x.eks.amazonaws.com")
    if egress == "iptables-masquerade":
        options["egress_masquerade_interfaces"] = "ens+"
    if bbr_ok:
        assert cv.build_values("eni", cluster_name="demo", **options)["values"]["bandwidthManager"]["bbr"] is True
    else:
        assert "host routing" in expect_error("extra_values", **options)


@pytest.mark.parametrize("mode", ["eni", "chaining"])
def test_bbr_for_host_network_pods_only_works_with_legacy_host_routing_from_1_18(mode):
    host_only = {"bandwidthManager": {"bbr": True, "bbrHostNamespaceOnly": True}}
    assert values(mode, "1.18.11", extra_values=host_only)["bandwidthManager"] == host_only["bandwidthManager"]
    assert "from Cilium 1.18 only" in expect_error("extra_values", mode=mode, version="1.17.17",
                                                   extra_values=host_only)


def test_upgrade_compatibility_is_a_quoted_minor():
    assert values("eni", NEWEST, upgrade_compatibility="1.18")["upgradeCompatibility"] == "1.18"
    assert "not a Cilium minor" in expect_error("upgrade_compatibility", upgrade_compatibility="1.18.2")
    assert "upgrade_compatibility" in expect_error("extra_values", extra_values={"upgradeCompatibility": "1.8"})


def test_kubernetes_outside_the_tested_range_is_a_warning():
    result = cv.build_values("eni", "1.20.2", cluster_name="demo", kubernetes_version="1.31")
    assert any("Kubernetes 1.31 is outside the versions Cilium 1.20 is tested with (1.33-1.36" in w
               for w in result["warnings"])
    assert cv.build_values("eni", "1.20.2", cluster_name="demo", kubernetes_version="1.34")["warnings"] == []


def expect_error(name, **kwargs):
    kwargs.setdefault("mode", "eni")
    kwargs.setdefault("cluster_name", "demo")
    with pytest.raises(ValidationError) as err:
        cv.build_values(**kwargs)
    assert err.value.name == name, err.value.msg
    return err.value.msg


@pytest.mark.parametrize("kwargs, name, words", [
    ({"mode": "overlay"}, "mode", "unknown mode"),
    ({"version": "1.12.9"}, "version", "not supported"),
    ({"version": NEXT_MINOR}, "version", "not supported"),
    ({"version": "latest"}, "version", "not a Cilium release"),
    ({"cluster_name": None}, "cluster_name", "required in ENI mode"),
    ({"cluster_name": "Prod_Cluster"}, "cluster_name", "32 lower-case"),
    ({"cluster_name": "a" * 33}, "cluster_name", "32 lower-case"),
    ({"cluster_id": 128}, "cluster_id", "21330"),
    ({"cluster_id": 255}, "cluster_id", "21330"),
    ({"cluster_id": 256}, "cluster_id", "out of range"),
    ({"cluster_id": -1}, "cluster_id", "out of range"),
    ({"mode": "chaining", "prefix_delegation": True}, "prefix_delegation", "ENABLE_PREFIX_DELEGATION"),
    ({"mode": "chaining", "egress_masquerade_interfaces": "ens+"}, "egress_masquerade_interfaces", "chaining"),
    ({"kube_proxy_replacement": True}, "k8s_service_host", "required"),
    ({"kube_proxy_replacement": "yes"}, "kube_proxy_replacement", "boolean"),
    ({"operator_replicas": 0}, "operator_replicas", "out of range"),
    ({"extra_values": {"ipam": {"mode": "cluster-pool"}}}, "extra_values", "eni mode decides"),
    ({"mode": "chaining", "extra_values": {"cni": {"exclusive": True}}}, "extra_values", "chaining mode decides"),
    ({"extra_values": {"cluster": {"name": "x"}}}, "extra_values", "cluster_name"),
    ({"extra_values": {"kubeProxyReplacement": "strict"}}, "extra_values", "kube_proxy_replacement"),
    ({"mode": "chaining", "version": "1.16.19", "extra_values": {"tunnel": "vxlan"}}, "extra_values",
     "chaining mode decides"),
    ({"extra_values": ["a"]}, "extra_values", "mapping"),
    ({"installed_values": {"cni": {"chainingMode": "aws-cni"}}}, "mode",
     "installed Cilium release runs in chaining mode"),
])
def test_bad_input_names_the_input(kwargs, name, words):
    assert words in expect_error(name, **kwargs)


def test_cluster_name_rule_is_only_a_warning_where_the_chart_does_not_enforce_it():
    result = cv.build_values("eni", "1.15.19", cluster_name="Prod_Cluster")
    assert any("does not enforce" in w for w in result["warnings"])


def test_cluster_id_up_to_511_needs_max_connected_clusters_511_and_1_15():
    extra = {"clustermesh": {"maxConnectedClusters": 511}}
    assert values("eni", NEWEST, cluster_id=300, extra_values=extra)["cluster"]["id"] == 300
    assert "out of range" in expect_error("cluster_id", version="1.14.19", cluster_id=300, extra_values=extra)
    assert "21330" in expect_error("cluster_id", cluster_id=400, extra_values=extra)


def test_errors_use_the_given_names():
    msg = expect_error("cilium_eni_cluster_id", cluster_id=200, names={"cluster_id": "cilium_eni_cluster_id"})
    assert msg.startswith("Invalid `cilium_eni_cluster_id` 200")


def test_same_mode_reinstall_is_accepted_and_reported():
    result = cv.build_values("eni", NEWEST, cluster_name="demo",
                             installed_values={"eni": {"enabled": True}, "ipam": {"mode": "eni"}})
    assert result["installed_mode"] == "eni"


ENI_RELEASE = {"eni": {"enabled": True}, "ipam": {"mode": "eni"}}


def test_the_install_keeps_the_bandwidth_manager_of_the_release():
    """bandwidth_manager owns bandwidthManager.*: an install role's upgrade keeps it (ux-review #1)."""
    installed = dict(ENI_RELEASE, bandwidthManager={"enabled": True, "bbr": True})
    result = cv.build_values("eni", NEWEST, cluster_name="demo", installed_values=installed)
    assert result["values"]["bandwidthManager"] == {"enabled": True, "bbr": True}
    assert result["kept_from_release"] == ["bandwidthManager"]


def test_extra_values_decide_the_bandwidth_manager_over_the_release():
    installed = dict(ENI_RELEASE, bandwidthManager={"enabled": True, "bbr": True})
    result = cv.build_values("eni", NEWEST, cluster_name="demo", installed_values=installed,
                             extra_values={"bandwidthManager": {"enabled": False}})
    assert result["values"]["bandwidthManager"] == {"enabled": False}
    assert result["kept_from_release"] == []


@pytest.mark.parametrize("installed", [None, {}, ENI_RELEASE])
def test_nothing_is_kept_when_the_release_has_no_bandwidth_manager(installed):
    result = cv.build_values("eni", NEWEST, cluster_name="demo", installed_values=installed)
    assert "bandwidthManager" not in result["values"] and result["kept_from_release"] == []


@pytest.mark.parametrize("installed, mode", [
    (None, None), ({}, None), ({"eni": {"enabled": True}}, "eni"), ({"ipam": {"mode": "eni"}}, "eni"),
    ({"cni": {"chainingMode": "aws-cni"}}, "chaining"), ({"ipam": {"mode": "cluster-pool"}}, "other"),
])
def test_detect_mode(installed, mode):
    assert table.detect_mode(installed) == mode


VALUES_YAML = """\
# -- comment: with a colon
cluster:
  name: default
  id: 0
eni:
  enabled: false
  # -- commented option
  # iamRole: ""
  awsEnablePrefixDelegation: false
extraConfig: {}
podAnnotations: {}
hubble:
  relay:
    enabled: false
nodeSelector:
  kubernetes.io/os: linux
# egressMasqueradeInterfaces: ""
#kubeProxyReplacement: "disabled"
tolerations:
  - operator: Exists
"""


def test_known_value_keys_include_commented_out_keys_at_their_level():
    import yaml

    tree, commented = cv.known_value_keys(VALUES_YAML, yaml.safe_load(VALUES_YAML))
    assert {"eni.iamRole", "egressMasqueradeInterfaces", "kubeProxyReplacement"} <= commented
    assert "iamRole" not in commented
    assert tree["eni"]["enabled"] is False


@pytest.mark.parametrize("extra, unknown", [
    ({"eni": {"iamRole": "arn"}}, []),
    ({"egressMasqueradeInterfaces": "ens+"}, []),
    ({"extraConfig": {"anything": "goes"}}, []),
    ({"podAnnotations": {"a": "b"}}, []),
    ({"tolerations": [{"operator": "Exists"}]}, []),
    ({"hubble": {"relay": {"enabled": True}}}, []),
    ({"hubble": {"relai": {"enabled": True}}}, ["hubble.relai"]),
    ({"bandwidthManager": {"enabled": True}}, ["bandwidthManager"]),
    ({"eni": {"iamRole": "x", "bogus": 1}}, ["eni.bogus"]),
    ({"nodeSelector": {"role": "infra"}}, []),
])
def test_unknown_keys(extra, unknown):
    import yaml

    tree, commented = cv.known_value_keys(VALUES_YAML, yaml.safe_load(VALUES_YAML))
    assert cv.unknown_keys(extra, tree, commented) == unknown


def test_unknown_extra_key_fails_when_the_chart_is_known():
    import yaml

    msg = expect_error("extra_values", extra_values={"hubble": {"relai": {"enabled": True}}},
                       chart_values=yaml.safe_load(VALUES_YAML), chart_values_text=VALUES_YAML)
    assert "hubble.relai" in msg and NEWEST in msg


class FakeHelm:
    def __init__(self, chart_yaml, values_yaml):
        self.outputs = {"chart": chart_yaml, "values": values_yaml}
        self.calls = []

    def run(self, args):
        self.calls.append(args)

        class Result:
            stdout = self.outputs[args[1]]

        return Result()


def test_compute_reads_the_chart_and_checks_its_version():
    helm = FakeHelm("name: cilium\nversion: 1.19.7\n", VALUES_YAML)
    with pytest.raises(ValidationError) as err:
        cv.compute({"mode": "eni", "version": NEWEST, "cluster_name": "demo", "chart_ref": "/charts/c.tgz"},
                   helm=helm, names={"version": "cilium_eni_version"})
    assert err.value.name == "cilium_eni_version" and "1.19.7" in err.value.msg
    assert helm.calls[0] == ["show", "chart", "/charts/c.tgz"]


def test_compute_with_a_repository_passes_repo_and_version():
    helm = FakeHelm("name: cilium\nversion: %s\n" % NEWEST, VALUES_YAML)
    result = cv.compute({"mode": "eni", "version": NEWEST, "cluster_name": "demo", "chart_ref": "cilium",
                         "chart_repo_url": "https://helm.cilium.io/", "extra_values": {}}, helm=helm)
    assert helm.calls[1] == ["show", "values", "cilium", "--repo", "https://helm.cilium.io/", "--version", NEWEST]
    assert result["chart"]["version"] == NEWEST and result["changed"] is False


def test_compute_refuses_another_chart():
    helm = FakeHelm("name: nginx\nversion: %s\n" % NEWEST, VALUES_YAML)
    with pytest.raises(ValidationError) as err:
        cv.compute({"mode": "eni", "version": NEWEST, "cluster_name": "demo", "chart_ref": "x"}, helm=helm)
    assert err.value.name == "chart_ref"


def test_the_result_says_what_the_agents_must_report():
    result = cv.build_values("chaining", NEWEST, cluster_name="demo", kube_proxy_replacement=True,
                             k8s_service_host="x.eks.amazonaws.com")
    assert result["expect"] == {"chaining_mode": "aws-cni", "routing_mode": "native", "kube_proxy_replacement": True}


def test_a_rule_names_the_option_that_set_the_key():
    msg = expect_error("cilium_chaining_egress_masquerade_interfaces", mode="chaining",
                       egress_masquerade_interfaces="ens+",
                       names={"egress_masquerade_interfaces": "cilium_chaining_egress_masquerade_interfaces"})
    assert "masquerading is off in chaining mode" in msg


class FakeHelmWithRelease(FakeHelm):
    """helm show of a chart, plus helm list/get values of one release."""

    def __init__(self, release):
        super().__init__("name: cilium\nversion: %s\n" % NEWEST, VALUES_YAML)
        self.release = release

    def run(self, args):
        import json

        if args[0] in ("list", "get"):
            self.calls.append(args)

            class Result:
                stdout = json.dumps([{k: v for k, v in self.release.items() if k != "values"}] if args[0] == "list"
                                    else self.release["values"]) if self.release else ("[]" if args[0] == "list"
                                                                                       else "null")

            return Result()
        return super().run(args)


def test_compute_reads_the_release_and_refuses_a_switch_of_mode(tmp_path):
    release = {"name": "cilium", "namespace": "kube-system", "status": "deployed", "chart": "cilium-%s" % NEWEST,
               "app_version": NEWEST, "revision": "3", "values": {"cni": {"chainingMode": "aws-cni"}}}
    helm = FakeHelmWithRelease(release)
    kubeconfig = tmp_path / "k"
    kubeconfig.write_text("apiVersion: v1\n")
    params = {"mode": "chaining", "version": NEWEST, "cluster_name": "demo", "chart_ref": "/c.tgz",
              "release_name": "cilium", "kubeconfig": str(kubeconfig)}
    result = cv.compute(params, helm=helm)
    assert result["release"]["status"] == "deployed" and result["release"]["values"] == release["values"]
    assert result["installed_mode"] == "chaining"
    assert ["list", "--all", "--namespace", "kube-system", "--filter", "^cilium$", "--output", "json",
            "--kubeconfig", str(kubeconfig)] in helm.calls
    with pytest.raises(ValidationError) as err:
        cv.compute(dict(params, mode="eni"), helm=FakeHelmWithRelease(release))
    assert "runs in chaining mode" in err.value.msg


def test_a_missing_kubeconfig_is_named_by_its_variable_before_helm_runs(tmp_path):
    helm = FakeHelmWithRelease(None)
    with pytest.raises(ValidationError) as err:
        cv.compute({"mode": "eni", "version": NEWEST, "cluster_name": "demo", "release_name": "cilium",
                    "kubeconfig": str(tmp_path / "sbx-new")}, helm=helm, names=cv.names_for("cilium_eni_"))
    assert err.value.msg.startswith("Invalid `cilium_eni_kubeconfig` '%s': the file does not exist" % (tmp_path / "sbx-new"))
    assert helm.calls == []


def test_a_pending_release_is_returned_but_its_values_do_not_count():
    release = {"name": "cilium", "status": "pending-upgrade", "chart": "cilium-1.19.7", "app_version": "1.19.7",
               "values": {"cni": {"chainingMode": "aws-cni"}}}
    result = cv.compute({"mode": "eni", "version": NEWEST, "cluster_name": "demo", "release_name": "cilium"},
                        helm=FakeHelmWithRelease(release))
    assert result["release"]["status"] == "pending-upgrade" and result["installed_mode"] is None
    assert cv.compute({"mode": "eni", "cluster_name": "demo", "release_name": "cilium"},
                      helm=FakeHelmWithRelease(None))["release"] is None


def test_switching_egress_on_a_running_release_before_1_20_warns_about_running_pods():
    old_collection = {"eni": {"enabled": True}, "ipam": {"mode": "eni"}}  # 1.17: masquerading on, no interfaces
    result = cv.build_values("eni", "1.17.17", cluster_name="demo", installed_values=old_collection)
    assert any("masquerading that matches nothing" in w and "until they restart" in w for w in result["warnings"])
    same = dict(old_collection, enableIPv4Masquerade=False)
    assert cv.build_values("eni", "1.19.7", cluster_name="demo", installed_values=same)["warnings"] == []
    # 1.20 agents migrate the rules themselves (routing.go)
    assert cv.build_values("eni", "1.20.2", cluster_name="demo", installed_values=old_collection)["warnings"] == []


def test_a_minor_upgrade_pins_upgrade_compatibility_to_the_installed_minor():
    release = {"chart": "cilium-1.19.7", "status": "deployed"}
    options = {"version": "1.20.2", "installed_values": {"eni": {"enabled": True}}}
    assert cv.plan_upgrade(options, release, {}) == {"from": "1.19.7", "to": "1.20.2", "minor_upgrade": True}
    assert options["upgrade_compatibility"] == "1.19"
    values = cv.build_values("eni", cluster_name="demo", **options)["values"]
    assert values["upgradeCompatibility"] == "1.19" and isinstance(values["upgradeCompatibility"], str)
    # later runs keep the release's value; a patch upgrade does not pin anything
    kept = {"version": "1.20.2", "installed_values": {"upgradeCompatibility": "1.18"}}
    assert cv.plan_upgrade(kept, {"chart": "cilium-1.20.2", "status": "deployed"}, {}) is None
    assert kept["upgrade_compatibility"] == "1.18"
    patch = {"version": "1.20.2", "installed_values": {}}
    assert cv.plan_upgrade(patch, {"chart": "cilium-1.20.0", "status": "deployed"}, {})["minor_upgrade"] is False
    assert "upgrade_compatibility" not in patch
    assert cv.plan_upgrade({"version": "1.20.2"}, None, {}) is None


def test_a_downgrade_or_a_jump_is_refused_naming_the_version_variable():
    names = cv.names_for("cilium_eni_")
    with pytest.raises(ValidationError, match=r"`cilium_eni_version` '1.19.7': Cilium 1.20.2 is installed and 1.19.7 is"
                                              r" a downgrade"):
        cv.plan_upgrade({"version": "1.19.7"}, {"chart": "cilium-1.20.2", "status": "deployed"}, names)
    with pytest.raises(ValidationError, match="skips 1.14"):
        cv.plan_upgrade({"version": "1.20.2"}, {"chart": "cilium-1.13.4", "status": "failed"}, names)
    assert cv.plan_upgrade({"version": "1.19.7"}, {"chart": "cilium-1.20.2", "status": "uninstalled"}, names) is None


def test_every_plain_option_key_names_its_option_in_option_keys():
    """check_rules names the option behind a refused key from OPTION_KEYS alone."""
    for option, key in cv.PLAIN_OPTIONS.items():
        assert cv.OPTION_KEYS[key] == option
