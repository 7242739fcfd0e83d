# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: input_problems
short_description: What the collection's input rules refuse in a set of variables, each message naming the variable
version_added: 0.3.0
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
description:
  - Applies the collection's one input checker (the same Python the modules use) to variables, before any change.
  - The input is a table of rules, variable name to rule; the values are looked up in O(values).
  - "A rule is a name (V(bool), V(int), V(timeout), V(count), V(port), V(dns_label), V(helm_release_name),
    V(label_key), V(label_value), V(labels), V(aws_tags), V(cidr), V(cidrs), V(source_cidrs), V(file_path), V(dir_path))
    or a mapping with C(rule) and its options (C(min)/C(max) for V(int), C(minimum) for V(timeout), C(choices) for
    V(choice), C(version) for V(cidr)/V(cidrs)/V(source_cidrs), C(source) and C(source_name) for V(source_cidrs) (the
    CIDRs are required when the source is V(cidrs) and refused otherwise), C(optional) to accept an empty value)."
  - Patterns are full matches, booleans are real booleans or the words Ansible converts, numbers are whole numbers.
positional: _input, values
options:
  _input:
    description: The rules, variable name to rule.
    type: dict
    required: true
  values:
    description: The variables' values, variable name to value.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Check every input of the role before any change
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }} Nothing was changed."
  vars:
    rules: {my_timeout: timeout, my_enabled: bool, my_cidrs: {rule: cidrs, version: 4}}
    problems: "{{ rules | cloudnet.cilium_eks.input_problems({'my_timeout': my_timeout, 'my_enabled': my_enabled,
                                                             'my_cidrs': my_cidrs}) }}"
"""

RETURN = r"""
_value:
  description: One message per refused variable (naming it, its value and what is accepted); empty when all pass.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import inputs


def input_problems(rules, values):
    """Pure function behind the filter; see DOCUMENTATION."""
    if not isinstance(rules, dict) or not isinstance(values, dict):
        raise AnsibleFilterError("input_problems: rules and values must be mappings")
    try:
        return inputs.problems(rules, values)
    except ValueError as err:
        raise AnsibleFilterError("input_problems: %s" % err) from err


class FilterModule:
    def filters(self):
        return {"input_problems": input_problems}
