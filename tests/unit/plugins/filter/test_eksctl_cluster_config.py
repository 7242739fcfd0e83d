# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.filter.eksctl_cluster_config import (
    FilterModule,
    eksctl_cluster_config,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eksctl_config import render_config

TAINT = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NoExecute"}
OPTIONS = {"name": "basic-cilium", "region": "us-east-1", "version": "1.33", "tags": {},
           "nodegroups": [{"name": "ng-1", "instance_type": "t3.medium", "desired_size": 2, "min_size": 2,
                           "max_size": 2, "taints": [TAINT]}],
           "disable_default_addons": False}


def test_renders_what_the_module_hands_to_eksctl():
    config = eksctl_cluster_config(OPTIONS)
    assert config == render_config(OPTIONS)
    assert config["metadata"] == {"name": "basic-cilium", "region": "us-east-1", "version": "1.33",
                                  "tags": {"cloudnet.cilium_eks/managed": "true"}}
    assert config["managedNodeGroups"] == [{"name": "ng-1", "instanceType": "t3.medium", "desiredCapacity": 2,
                                            "minSize": 2, "maxSize": 2, "taints": [TAINT]}]


def test_module_only_options_are_ignored():
    with_module_options = dict(OPTIONS, state="present", allow_upgrade=False, kubeconfig="/k", eksctl_path="/e",
                               timeout=60, force=False)
    assert eksctl_cluster_config(with_module_options) == eksctl_cluster_config(OPTIONS)


def test_disable_default_addons():
    assert eksctl_cluster_config(dict(OPTIONS, disable_default_addons=True))["addonsConfig"] == {
        "disableDefaultAddons": True}


@pytest.mark.parametrize("options, named", [
    (dict(OPTIONS, name="1bad"), "name"),
    (dict(OPTIONS, region="mars-1"), "region"),
    (dict(OPTIONS, nodegroups=[{"name": "ng-1", "instance_type": "huge"}]), "instance_type"),
    (dict(OPTIONS, colour="blue"), "colour"),
    ("not a dict", "dict"),
])
def test_errors_name_the_input(options, named):
    with pytest.raises(AnsibleFilterError, match=named):
        eksctl_cluster_config(options)


def test_registered():
    assert FilterModule().filters()["eksctl_cluster_config"] is eksctl_cluster_config
