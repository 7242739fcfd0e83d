#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cilium_release_repair
short_description: Recognise a Helm release left pending or failed by an interrupted run, and repair it
version_added: 0.3.0
description:
  - Reads the release's revisions (C(helm history)). When the last one is C(pending-install), C(pending-upgrade),
    C(pending-rollback), C(failed) or C(uninstalling), a helm run did not finish (Ctrl-C, a lost CI runner, a killed
    process). Every later C(helm upgrade) would fail with "another operation (install/upgrade/rollback) is in
    progress", and C(helm list) would not show the release at all.
  - A pending revision younger than O(wait_timeout) may still belong to a helm run at work; the module waits for it
    (polling every 5 seconds) until it settles or O(wait_timeout) has passed since its last update.
  - It then rolls back to the newest revision that ran (C(deployed) or C(superseded)), or, when none ran,
    uninstalls the release so that the next install starts clean; the result says which, and why.
  - Nothing is done, and C(changed) is false, when the release is deployed or absent.
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
extends_documentation_fragment:
  - cloudnet.cilium_eks.k8s_auth
  - cloudnet.cilium_eks.attributes.no_diff
attributes:
  check_mode:
    support: full
    description: Reads the release and reports the repair it would make; changes nothing.
options:
  release_name:
    description: Name of the release.
    type: str
    default: cilium
  release_namespace:
    description: Namespace of the release.
    type: str
    default: kube-system
  helm_path:
    description: Path of the helm binary. Looked up on C(PATH) when omitted.
    type: path
  wait_timeout:
    description: Seconds after its last update during which a pending revision may still belong to a helm run at work.
    type: int
    default: 300
  timeout:
    description: Seconds the rollback or uninstall may take (C(helm --wait --timeout)).
    type: int
    default: 600
requirements:
  - helm
"""

EXAMPLES = r"""
- name: Repair the Cilium release if an interrupted run left it pending
  cloudnet.cilium_eks.cilium_release_repair:
    kubeconfig: "{{ playbook_dir }}/kubeconfig"
    wait_timeout: 600
"""

RETURN = r"""
state:
  description:
    - The release's state before the repair. C(action) is V(none), V(rollback) (to C(to_revision)) or V(uninstall);
      C(interrupted) is true when a helm run did not finish; C(reason) says it in words.
  returned: success
  type: dict
  sample: {status: pending-upgrade, revision: 3, interrupted: true, action: rollback, to_revision: 2,
           reason: "left pending-upgrade by a helm run that did not finish: rolled back to revision 2 (cilium-1.20.2)"}
history:
  description: The revisions read (revision, status, chart, updated), oldest first.
  returned: success
  type: list
  elements: dict
waited:
  description: Seconds waited for another helm run (another run changing the release) to finish with it.
  returned: success
  type: int
status_after:
  description: Status of the last revision after the repair (V(none) when the release was uninstalled).
  returned: when a repair was made
  type: str
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.helm_release import run_module
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule


def main():
    module = CiliumEksModule(
        argument_spec=dict(
            release_name=dict(type="str", default="cilium"),
            release_namespace=dict(type="str", default="kube-system"),
            helm_path=dict(type="path"),
            wait_timeout=dict(type="int", default=300),
            timeout=dict(type="int", default=600),
        ),
        k8s_auth=True,
        supports_check_mode=True,
    )
    module.run(run_module)


if __name__ == "__main__":
    main()
