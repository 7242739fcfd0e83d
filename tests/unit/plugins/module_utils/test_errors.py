# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import (
    CiliumEksError,
    ClusterUnreachableError,
    CommandError,
    CommandNotFoundError,
    MissingLibraryError,
    ValidationError,
    format_argv,
    redact,
    tail,
)


def test_base_fail_kwargs_drop_none_and_protect_reserved_keys():
    err = CiliumEksError("boom", cluster="c1", region=None, changed=True, exception="x")
    assert err.to_fail_kwargs() == {
        "msg": "boom", "error_type": "CiliumEksError", "cluster": "c1", "error_changed": True, "error_exception": "x",
    }
    assert str(err) == "boom"


def test_all_errors_are_cilium_eks_errors():
    for cls in (CommandError, CommandNotFoundError, ClusterUnreachableError, ValidationError, MissingLibraryError):
        assert issubclass(cls, CiliumEksError)


def test_command_error_fields():
    err = CommandError(["helm", "install", "cilium", "with space"], 1, stdout="", stderr="Error: nope\n", duration=1.5)
    kwargs = err.to_fail_kwargs()
    assert kwargs["cmd"] == "helm install cilium 'with space'"
    assert kwargs["rc"] == 1 and kwargs["stderr"] == "Error: nope" and kwargs["timed_out"] is False
    assert "timeout" not in kwargs  # None dropped
    assert str(err).startswith("Command `helm install cilium 'with space'` failed with exit code 1")


def test_command_not_found_default_and_custom_option():
    assert "`cilium_path`" in str(CommandNotFoundError("cilium"))
    err = CommandNotFoundError("cilium", path="/opt/x/cilium", option="cilium_cli_path")
    assert "/opt/x/cilium" in str(err) and "`cilium_cli_path`" in str(err)
    assert err.to_fail_kwargs()["option"] == "cilium_cli_path"


def test_validation_error_message():
    err = ValidationError("kube_proxy_replacement", "unknown mode", accepted=("true", "false"), value="partial")
    assert str(err) == "Invalid `kube_proxy_replacement` 'partial': unknown mode. Accepted values: true, false"
    assert err.to_fail_kwargs()["accepted"] == ["true", "false"]
    assert ValidationError("x", "bad", accepted={"b", "a"}).accepted == ["a", "b"]
    assert str(ValidationError("kubeconfig", "missing", accepted="a file")).endswith("Expected: a file")


def test_cluster_unreachable_message():
    err = ClusterUnreachableError("https://x.eks.amazonaws.com", "connection refused", kubeconfig="kc", context="ctx",
                                  advice="Check it.")
    assert str(err) == ("Kubernetes API server https://x.eks.amazonaws.com is unreachable (kubeconfig kc, context ctx): "
                        "connection refused. Check it.")


def test_missing_library_message():
    assert "pip install kubernetes" in str(MissingLibraryError("kubernetes"))


def test_helpers():
    assert redact("a-secret and secret", ["secret", "a-secret", "", None]) == "******** and ********"
    assert redact("unchanged", []) == "unchanged"
    assert tail("\n".join(str(i) for i in range(30)) + "\n", 3) == "27\n28\n29"
    assert tail("") == ""
    assert format_argv(["a", "b c", "$X"]) == "a 'b c' '$X'"


def test_a_validation_error_can_be_renamed_after_the_caller_s_variables():
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

    err = ValidationError("nodegroups[ng-1].instance_type", "not an EC2 instance type", accepted=["t3.medium"],
                          value="huge")
    renamed = err.renamed({"nodegroups": "eks_cluster_nodegroups"})
    assert renamed.msg == ("Invalid `eks_cluster_nodegroups[ng-1].instance_type` 'huge': not an EC2 instance type. "
                           "Accepted values: t3.medium")
    assert err.renamed({"region": "eks_cluster_region"}) is err
