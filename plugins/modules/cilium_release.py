#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# An action plugin (plugins/action/cilium_release.py) runs kubernetes.core.helm; this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: cilium_release
short_description: Install or upgrade a Helm release with kubernetes.core.helm, showing a diff of its values
version_added: 0.2.0
description:
  - Runs M(kubernetes.core.helm) with every option given except O(installed_values), plus the task's
    C(module_defaults) for M(kubernetes.core.helm) (C(group/kubernetes.core.helm)).
  - With C(--diff), when the release changes (or would, in check mode), the diff is the release's values, from
    O(installed_values) (what C(helm get values) shows) to O(release_values), as YAML. Neither the helm-diff plugin
    nor the rendered objects are needed; M(kubernetes.core.helm) is run without Ansible's diff flag, so it does not
    warn that helm-diff is missing.
  - While helm waits (O(wait) or O(atomic)), a line about every 30 s (the variable C(cilium_eks_progress_interval))
    says what it waits for, on stderr.
  - The module runs on the target directly. M(kubernetes.core.helm)'s own action plugin, which copies controller
    files (templated values files, a controller kubeconfig for a remote target), is not used.
author:
  - cloudnet.cilium_eks contributors (@cloudnet)
attributes:
  check_mode:
    support: full
    description: M(kubernetes.core.helm) in check mode; the diff shows the values it would install.
  diff_mode:
    support: full
    description: The release's user-supplied values before and after, as YAML.
options:
  installed_values:
    description:
      - The release's user-supplied values now (C(helm get values)), the "before" of the diff. Not given, or
        C(null), when there is no release.
    type: dict
  release_name:
    description: Passed to M(kubernetes.core.helm).
    type: str
    required: true
  release_namespace:
    description: Passed to M(kubernetes.core.helm).
    type: str
    required: true
  release_values:
    description: Passed to M(kubernetes.core.helm); the "after" of the diff.
    type: dict
    default: {}
  chart_ref:
    description: Passed to M(kubernetes.core.helm); named in the diff's header.
    type: str
  chart_version:
    description: Passed to M(kubernetes.core.helm); named in the diff's header.
    type: str
  wait:
    description: Passed to M(kubernetes.core.helm); with it, progress lines while helm waits.
    type: bool
    default: false
  atomic:
    description: Passed to M(kubernetes.core.helm); with it, progress lines while helm waits.
    type: bool
    default: false
  timeout:
    description: Passed to M(kubernetes.core.helm) (for example C(600s)); named in the progress lines.
    type: str
notes:
  - Any other option of M(kubernetes.core.helm) (C(chart_repo_url), C(reset_values), C(kubeconfig), C(context),
    C(binary_path)...) is passed as given.
seealso:
  - module: kubernetes.core.helm
"""

EXAMPLES = r"""
- name: Upgrade Cilium, showing the values that change under --diff
  cloudnet.cilium_eks.cilium_release:
    release_name: cilium
    release_namespace: kube-system
    chart_ref: cilium/cilium
    chart_version: 1.20.2
    chart_repo_url: https://helm.cilium.io/
    release_values: "{{ rendered['values'] }}"
    installed_values: "{{ rendered.release['values'] if rendered.release else omit }}"
    reset_values: true
    atomic: true
    wait: true
    timeout: 600s
"""

RETURN = r"""
status:
  description: What M(kubernetes.core.helm) returns (the release's status); all of its return values are returned.
  type: dict
  returned: always
diff:
  description: The values before and after (YAML strings with headers), with C(--diff) when the release changed.
  type: dict
  returned: when changed, with --diff
  sample:
    before: "bandwidthManager:\n  enabled: false\n"
    after: "bandwidthManager:\n  enabled: true\n"
    before_header: "kube-system/cilium: user-supplied values (helm get values)"
    after_header: "kube-system/cilium: values to install (chart cilium 1.20.2)"
"""
