# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cilium_problems
short_description: What the collection's Cilium table refuses in a set of Cilium settings
version_added: 0.2.0
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
description:
  - Checks Cilium settings against the rules the collection keeps in one table (the Python C(cilium_table) that the
    modules use too). The mode exists, the version is supported, no rule is broken (for example BBR in CNI chaining
    mode), no chart key is used on a version that does not have it, and the nodes' kernels are recent enough for the
    settings that need it (BBR).
  - Returns a list of messages, each naming the input at fault, or an empty list. The roles and playbooks assert it is
    empty before they touch anything, so the rules are written once, in Python, with their upstream sources.
positional: _input
options:
  _input:
    description:
      - "The settings: C(mode) (omitted: read from C(values), as an installed release's mode), C(version) (Cilium
        X.Y.Z, optional), C(values) (Helm values, optional), C(nodes) (Node objects, optional: checks kernels)."
    type: dict
    required: true
  names:
    description:
      - How the messages name the inputs (input to variable name), for example C(mode) to C(cilium_eks_mode) and
        C(bandwidthManager.bbr) to C(cilium_eks_bbr). Keys are C(mode), C(version) or chart value keys.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Refuse BBR in chaining mode before touching anything
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
  vars:
    problems: >-
      {{ {'mode': cilium_eks_mode, 'values': {'bandwidthManager': {'bbr': cilium_eks_bbr}}}
         | cloudnet.cilium_eks.cilium_problems({'mode': 'cilium_eks_mode', 'bandwidthManager.bbr': 'cilium_eks_bbr'}) }}
"""

RETURN = r"""
_value:
  description: One message per problem found, each naming the input at fault; empty when the settings are accepted.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_table as table
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_values import dotted_paths
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

SETTINGS = frozenset(("mode", "version", "values", "nodes"))


def _invalid(names, key, problem, value):
    return ValidationError(names.get(key, key), problem, value=value).msg


def _mode_and_version(settings, names):
    """``(mode, version, problems)``: the mode (given, or of the values) and the supported version."""
    mode = settings.get("mode") or table.detect_mode(settings.get("values"))
    if settings.get("mode") and mode not in table.MODES:
        return None, None, [ValidationError(names.get("mode", "mode"), "unknown mode", value=mode,
                                            accepted=list(table.MODES)).msg]
    version = settings.get("version") or None
    if version is not None:
        try:
            version = table.release(version).version
        except ValidationError as err:
            return mode, None, [err.renamed({"version": names.get("version", "version")}).msg]
    return mode, version, []


def cilium_problems(settings, names=None):
    """Pure function behind the filter; see DOCUMENTATION."""
    if not isinstance(settings, dict) or set(settings) - SETTINGS:
        raise AnsibleFilterError("cilium_problems expects a dict with keys among %s, got %r"
                                 % (", ".join(sorted(SETTINGS)), settings))
    names = dict(names or {})
    mode, version, problems = _mode_and_version(settings, names)
    values = settings.get("values") or {}
    if problems:
        return problems
    for rule in table.conflicts(values, mode, version):
        problems.append(_invalid(names, rule.key, rule.problem, table.get_path(values, rule.key)))
    for key, problem in table.gated_key_problems(dotted_paths(values), version) if version else ():
        problems.append(_invalid(names, key, "%s: the release runs Cilium %s" % (problem, version),
                                 table.get_path(values, key)))
    for key, requirement in table.KERNEL_REQUIREMENTS.items():
        if settings.get("nodes") is not None and table.get_path(values, key) not in (None, False):
            old = table.old_kernels(settings["nodes"], key)
            if old:
                problems.append(_invalid(names, key, "needs a Linux kernel %s or later on every node (%s); %d node(s) "
                                         "are older: %s. Upgrade their AMI (e.g. Amazon Linux 2023) or turn it off"
                                         % (requirement.minimum, requirement.why, len(old), ", ".join(old)),
                                         table.get_path(values, key)))
    return problems


class FilterModule:
    def filters(self):
        return {"cilium_problems": cilium_problems}
