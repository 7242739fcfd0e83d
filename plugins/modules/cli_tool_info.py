#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cli_tool_info
short_description: Report which versions of eksctl, kubectl, helm, cilium and aws-iam-authenticator are installed
version_added: 0.1.0
description:
  - Runs the version command of each tool found in O(bin_dir) (C(eksctl version), C(kubectl version --client
    -o json), C(helm version --short), C(cilium version --client), C(aws-iam-authenticator version)), none of
    which contacts a cluster, and parses the version it prints.
  - Compares it with the wanted version and, when O(download_base_urls) is given, says where the official
    release of the wanted version is downloaded from, with the URL of the SHA-256 file its project
    publishes.
  - Also reports the operating system and architecture of the managed node (no fact gathering needed) and
    whether O(bin_dir) is on its C(PATH).
  - Read-only; never reports a change.
author:
  - cloudnet.cilium_eks contributors (@cloudnet)
extends_documentation_fragment:
  - cloudnet.cilium_eks.attributes.read_only
options:
  bin_dir:
    description: Directory the tools are installed in (C(~) is expanded on the managed node).
    type: path
    required: true
  tools:
    description: Tools to report on.
    type: list
    elements: str
    choices: [eksctl, kubectl, helm, cilium, aws-iam-authenticator]
    required: true
  versions:
    description:
      - "Wanted version of each tool, for example C({helm: v3.19.5, eksctl: v0.225.0}); a leading V(v) is
        optional. A tool without an entry is reported with RV(tools.up_to_date=false)."
    type: dict
    default: {}
  download_base_urls:
    description:
      - Base URL of the release downloads of each tool (mirrors). Tools without an entry use the official
        ones (get.helm.sh, dl.k8s.io/release, the GitHub release pages of eksctl-io/eksctl,
        cilium/cilium-cli and kubernetes-sigs/aws-iam-authenticator).
      - When empty, RV(tools.download) is not returned.
    type: dict
  os:
    description: Operating system of the release downloads; default the managed node's.
    type: str
    choices: [linux, darwin]
  arch:
    description: Architecture of the release downloads; default the managed node's.
    type: str
    choices: [amd64, arm64]
"""

EXAMPLES = r"""
- name: What is installed in ~/.local/bin?
  cloudnet.cilium_eks.cli_tool_info:
    bin_dir: ~/.local/bin
    tools: [eksctl, kubectl, helm, cilium]
    versions: {eksctl: v0.225.0, kubectl: v1.34.4, helm: v3.19.5, cilium: v0.19.7}
  register: tools

- name: List the tools to (re)install
  ansible.builtin.debug:
    msg: "{{ tools.tools | dict2items | rejectattr('value.up_to_date') | map(attribute='key') | list }}"
"""

RETURN = r"""
bin_dir:
  description: O(bin_dir), expanded and absolute.
  returned: always
  type: str
  sample: /home/me/.local/bin
bin_dir_on_path:
  description: Whether O(bin_dir) is on the C(PATH) of the module's environment.
  returned: always
  type: bool
os:
  description: Operating system used for the downloads.
  returned: always
  type: str
  sample: linux
arch:
  description: Architecture used for the downloads (V(null) when the node's is neither amd64 nor arm64).
  returned: always
  type: str
  sample: amd64
tools:
  description: One entry per tool of O(tools).
  returned: always
  type: dict
  contains:
    path:
      description: Where the tool is (or would be) installed.
      type: str
    installed:
      description: Whether an executable file is there.
      type: bool
    version:
      description: Version it reports, normalized as V(vX.Y.Z); V(null) when missing or unusable.
      type: str
    wanted:
      description: Wanted version, normalized; V(null) when O(versions) has none.
      type: str
    up_to_date:
      description: Whether the installed version is the wanted one.
      type: bool
    output:
      description: First lines of the version command's output (to understand a mismatch).
      type: str
    download:
      description:
        - Release download of the wanted version (only with O(download_base_urls)).
        - V(null) when the tool publishes no release for that operating system and architecture.
      type: dict
      returned: when O(download_base_urls) is given and a wanted version is known
      contains:
        url:
          description: URL of the release file.
          type: str
        checksum_url:
          description: URL of the SHA-256 file published with it.
          type: str
        filename:
          description: Name of the release file.
          type: str
        member:
          description: Path of the binary inside the archive; V(null) when the file is the binary.
          type: str
  sample:
    helm:
      path: /home/me/.local/bin/helm
      installed: true
      version: v3.19.5
      wanted: v3.19.5
      up_to_date: true
      output: v3.19.5+g4a19a5b
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cli_tools import (
    ARCHITECTURES,
    OPERATING_SYSTEMS,
    TOOLS,
    tools_report,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule


def main():
    module = CiliumEksModule(
        argument_spec=dict(
            bin_dir=dict(type="path", required=True),
            tools=dict(type="list", elements="str", choices=list(TOOLS), required=True),
            versions=dict(type="dict", default={}),
            download_base_urls=dict(type="dict"),
            os=dict(type="str", choices=list(OPERATING_SYSTEMS)),
            arch=dict(type="str", choices=sorted(set(ARCHITECTURES.values()))),
        ),
        supports_check_mode=True,
    )
    module.run(lambda mod: tools_report(
        mod.params["bin_dir"], mod.params["tools"], versions=mod.params["versions"],
        download_base_urls=mod.params["download_base_urls"], os_name=mod.params["os"], arch=mod.params["arch"],
    ))


if __name__ == "__main__":
    main()
