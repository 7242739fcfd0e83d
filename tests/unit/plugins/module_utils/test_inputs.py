"""The one input checker (module_utils/inputs.py) and its filters: every rule, accepted and refused values."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.filter.input_problems import input_problems
from ansible_collections.cloudnet.cilium_eks.plugins.filter.strict_bool import strict_bool
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import eksctl_config, inputs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

ACCEPTED = [
    ("bool", True), ("bool", "yes"), ("bool", "Off"), ("bool", 0), ("bool", "t"),
    ("timeout", 1), ("timeout", "600"), ("count", 0), ("count", "25"), ("port", 443),
    ("dns_label", "kube-system"), ("helm_release_name", "cilium"), ("helm_release_name", "cilium.v2"),
    ("label_key", "node.cilium.io/agent-not-ready"), ("label_key", "team"), ("label_value", ""),
    ("label_value", "my_value.1"), ("labels", {"team": "net", "example.com/tier": "a-1"}),
    ("aws_tags", {"team": "network", "AwsOwner": "x"}), ("cidr", "10.0.0.0/16"), ("cidr", "fd00::/64"),
    ("cidrs", ["192.168.0.0/24"]), ("file_path", "~/.kube/config-new"), ("dir_path", "reports/x"),
]
REFUSED = [
    ("bool", "enabled", "not a boolean"), ("bool", "sometimes", "not a boolean"), ("bool", 2, "not a boolean"),
    ("bool", None, "not a boolean"), ("timeout", 0, "at least 1"), ("timeout", -5, "at least 1"),
    ("timeout", "1h", "whole number of seconds"), ("timeout", True, "whole number of seconds"),
    ("count", "25%", "not a whole number"), ("count", -1, "out of range"), ("port", 70000, "out of range"),
    ("dns_label", "kube-system\n", "not a DNS-1123 label"), ("dns_label", "Kube", "not a DNS-1123 label"),
    ("helm_release_name", "c" * 54, "not a Helm release name"), ("label_key", "team\n", "label key"),
    ("label_key", "-team", "label key"), ("label_key", "Bad_Prefix/team", "label key"),
    ("label_value", "has space", "label value"), ("label_value", "v" * 64, "label value"),
    ("label_value", "ends-", "label value"), ("labels", {"team": "a b"}, "label value"),
    ("aws_tags", {"aws:created": "x"}, "AWS reserves"), ("aws_tags", {"AWS:x": "y"}, "AWS reserves"),
    ("aws_tags", {"k" * 129: "y"}, "tag key"), ("aws_tags", {"k": "v" * 257}, "at most 256"),
    ("cidr", "10.0.0.1/16", "not a CIDR"), ("cidr", "10.0.0.0", "not a CIDR"), ("cidr", "10.0.0.0/16\n", "not a CIDR"),
    ("cidrs", "10.0.0.0/16", "a list of CIDRs"), ("file_path", "", "no path"), ("file_path", "/tmp/", "directory"),
    ("dir_path", "", "no path"),
]


@pytest.mark.parametrize("rule,value", ACCEPTED, ids=[f"{rule}-{value!r}" for rule, value in ACCEPTED])
def test_accepted(rule, value):
    inputs.check(value, "x", rule)


@pytest.mark.parametrize("rule,value,problem", REFUSED, ids=[f"{case[0]}-{case[1]!r}"[:60] for case in REFUSED])
def test_refused_naming_the_input_and_value(rule, value, problem):
    with pytest.raises(ValidationError) as caught:
        inputs.check(value, "my_var", rule)
    assert caught.value.msg.startswith("Invalid `my_var")
    assert problem in caught.value.msg


def test_a_directory_is_not_a_file_and_a_file_is_not_a_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValidationError, match="is a directory"):
        inputs.file_path(str(tmp_path), "kubeconfig")
    with pytest.raises(ValidationError, match="is a file"):
        inputs.dir_path(str(tmp_path / "f"), "report_dir")


def test_rule_options_and_optional_values():
    assert inputs.check("", "x", {"rule": "cidr", "optional": True}) == ""
    with pytest.raises(ValidationError, match="from 1 to 3"):
        inputs.check(4, "x", {"rule": "int", "min": 1, "max": 3})
    with pytest.raises(ValidationError, match="IPv4"):
        inputs.check("fd00::/64", "x", {"rule": "cidr", "version": 4})
    with pytest.raises(ValueError, match="unknown input rule"):
        inputs.check(1, "x", "no-such-rule")


def test_bool_words_are_ansibles():
    from ansible.module_utils.parsing.convert_bool import BOOLEANS_FALSE, BOOLEANS_TRUE

    assert {w for w in BOOLEANS_TRUE if isinstance(w, str)} == set(inputs.BOOL_TRUE)
    assert {w for w in BOOLEANS_FALSE if isinstance(w, str)} == set(inputs.BOOL_FALSE)


def test_filters():
    assert input_problems({"a": "bool", "b": "timeout"}, {"a": "yes", "b": 5}) == []
    found = input_problems({"a": "bool", "b": "timeout"}, {"a": "enabled", "b": 0})
    assert [m.split(":")[0] for m in found] == ["Invalid `a` 'enabled'", "Invalid `b` 0"]
    assert strict_bool("on", "x") is True
    with pytest.raises(AnsibleFilterError, match="Invalid `cilium_eks_bbr` 'enabled'"):
        strict_bool("enabled", "cilium_eks_bbr")
    with pytest.raises(AnsibleFilterError, match="unknown input rule"):
        input_problems({"a": "nope"}, {"a": 1})


@pytest.mark.parametrize("check,value", [(eksctl_config.validate_cluster_name, "basic-cilium\n"),
                                         (eksctl_config.validate_region, "us-east-1\n"),
                                         (eksctl_config.validate_version, "1.33\n")])
def test_eksctl_names_are_full_matches(check, value):
    with pytest.raises(ValidationError):
        check(value)


SOURCE = {"rule": "source_cidrs", "source_name": "my_source", "version": 4}


def test_cidrs_of_a_source_are_required_with_cidrs_and_refused_with_another_source():
    assert inputs.check(["203.0.113.0/24"], "my_cidrs", dict(SOURCE, source="cidrs")) == ["203.0.113.0/24"]
    assert inputs.check([], "my_cidrs", dict(SOURCE, source="node_public_ips")) == []
    with pytest.raises(ValidationError, match=r"Invalid `my_cidrs` \[\]: is empty but `my_source` is cidrs"):
        inputs.check([], "my_cidrs", dict(SOURCE, source="cidrs"))
    with pytest.raises(ValidationError, match=r"is given but `my_source` is node_public_ips.*`my_source: cidrs`"):
        inputs.check(["10.0.0.0/16"], "my_cidrs", dict(SOURCE, source="node_public_ips"))
    with pytest.raises(ValidationError, match=r"Invalid `my_cidrs\[0\]` 'fd00::/64'"):
        inputs.check(["fd00::/64"], "my_cidrs", dict(SOURCE, source="cidrs"))
