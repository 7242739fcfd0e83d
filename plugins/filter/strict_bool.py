# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: strict_bool
short_description: A boolean, or a failure naming the variable when the value is not one
version_added: 0.3.0
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
description:
  - Use instead of C(| bool) on a user's switch. C(| bool) reads any word it does not know (V(enabled),
    V(sometimes)) as V(false), which can turn a feature off silently; this filter fails instead, naming the variable.
  - Accepts a real boolean or the words Ansible converts (V(true)/V(false), V(yes)/V(no), V(on)/V(off), V(y)/V(n),
    V(t)/V(f), V(1)/V(0), any case), the same list modules and role argument specs accept.
positional: _input, name
options:
  _input:
    description: The value.
    type: raw
    required: true
  name:
    description: The variable's name, for the message.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Settle a switch
  ansible.builtin.set_fact:
    cilium_eks_bbr: "{{ cilium_eks_bbr | default(false) | cloudnet.cilium_eks.strict_bool('cilium_eks_bbr') }}"
"""

RETURN = r"""
_value:
  description: The boolean.
  type: bool
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import inputs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError


def strict_bool(value, name):
    """Pure function behind the filter; see DOCUMENTATION."""
    try:
        return inputs.strict_bool(value, name)
    except ValidationError as err:
        raise AnsibleFilterError(err.msg + " Nothing was changed.") from err


class FilterModule:
    def filters(self):
        return {"strict_bool": strict_bool}
