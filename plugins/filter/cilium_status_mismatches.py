# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cilium_status_mismatches
short_description: How a status reported by cilium_status differs from what is expected
version_added: 0.2.0
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
description:
  - Compares a status returned by M(cloudnet.cilium_eks.cilium_status) with an C(expect) dictionary the way the
    module itself does (the same Python), so that a status read once can be checked again for other expectations
    without asking the agents again.
positional: _input
options:
  _input:
    description: The C(status) returned by M(cloudnet.cilium_eks.cilium_status).
    type: dict
    required: true
  expect:
    description: What to expect, as the O(cloudnet.cilium_eks.cilium_status#module:expect) option takes it.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Check a status read earlier against the mode's facts
  ansible.builtin.assert:
    that: (cilium.status | cloudnet.cilium_eks.cilium_status_mismatches(cilium_eks_mode | cloudnet.cilium_eks.cilium_expect)) == []
"""

RETURN = r"""
_value:
  description: One line per mismatch (the key, what was expected and what was found); empty when everything matches.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_status import compare, validate_expect
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError


def cilium_status_mismatches(status, expect):
    """Pure function behind the filter; see DOCUMENTATION."""
    if not isinstance(status, dict):
        raise AnsibleFilterError("cilium_status_mismatches expects the status dict of cilium_status, got %r" % (status,))
    try:
        return compare(validate_expect(expect), status)
    except ValidationError as err:
        raise AnsibleFilterError("cilium_status_mismatches: %s" % err) from err


class FilterModule:
    def filters(self):
        return {"cilium_status_mismatches": cilium_status_mismatches}
