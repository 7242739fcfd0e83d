#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: go_build_tool
short_description: Build eksctl, kubectl, helm, cilium or aws-iam-authenticator from a Go module proxy
version_added: 0.1.0
description:
  - Builds one CLI at a pinned version from its Go module, through a Go module proxy (for sites without
    access to the release downloads but with a proxy mirror), into O(bin_dir).
  - Nothing is built when the tool in O(bin_dir) already reports O(version) (unless O(force=true)).
  - The module is built through a throwaway module that requires it, so that upstream C(replace)
    directives pointing at local directories (kubectl's C(k8s.io/kubernetes), eksctl) do not stop the
    build; the upstream go.sum seeds the throwaway one. The binary is stamped with the version the way the
    project's own release does (C(-X) linker flags), so its version command reports O(version); that is
    checked before the binary replaces the installed one, so a failed build leaves the old one in place.
  - Modules and versions used - helm V(helm.sh/helm/v3) (package C(cmd/helm)), kubectl
    V(k8s.io/kubernetes) (C(cmd/kubectl)), eksctl V(github.com/weaveworks/eksctl) (C(cmd/eksctl); its module path, the
    C(github.com/eksctl-io/eksctl) path is refused by Go module proxies), cilium
    V(github.com/cilium/cilium-cli) (C(cmd/cilium)), aws-iam-authenticator V(sigs.k8s.io/aws-iam-authenticator)
    (C(cmd/aws-iam-authenticator)). A proxy that refuses the module version (public proxies answer 403
    for cilium-cli) gives an error that says so and what to do.
author:
  - cloudnet.cilium_eks contributors (@cloudnet)
extends_documentation_fragment:
  - cloudnet.cilium_eks.attributes.no_diff
attributes:
  check_mode:
    support: full
    description: Reports whether a build would happen, without building.
options:
  name:
    description: Tool to build.
    type: str
    required: true
    choices: [eksctl, kubectl, helm, cilium, aws-iam-authenticator]
  version:
    description: Version to build, a version of the Go module (V(v3.19.5); a missing leading V(v) is added).
    type: str
    required: true
  bin_dir:
    description: Directory the binary is installed in (must exist). The binary is named after O(name).
    type: path
    required: true
  module:
    description:
      - Go module to build from instead of the default one (see the description), for example a fork on
        the proxy. Its version is O(version).
    type: str
  package:
    description: Main package to build, when O(module) moves it.
    type: str
  goproxy:
    description: C(GOPROXY) of the build; default the environment's (C(go env GOPROXY)).
    type: str
  gosumdb:
    description: C(GOSUMDB) of the build (V(off) for a proxy mirror without a checksum database).
    type: str
  goflags:
    description: Extra C(GOFLAGS); C(-mod=mod -buildvcs=false) are always set.
    type: str
  gotoolchain:
    description: C(GOTOOLCHAIN) of the build; V(local) never downloads another Go toolchain.
    type: str
    default: local
  env:
    description: Other environment variables of the go commands (C(GOPRIVATE), C(GOMODCACHE), C(GOCACHE), ...).
    type: dict
    default: {}
  go_path:
    description: Path of the go command; default C(go) on C(PATH).
    type: path
  force:
    description: Build even when the installed binary already reports O(version).
    type: bool
    default: false
  timeout:
    description: Seconds each go command may take (kubectl from a cold cache takes several minutes).
    type: int
    default: 3600
notes:
  - Needs a Go toolchain recent enough for the module (the C(go) line of its go.mod).
"""

EXAMPLES = r"""
- name: Build helm from the proxy mirror
  cloudnet.cilium_eks.go_build_tool:
    name: helm
    version: v3.19.5
    bin_dir: ~/.local/bin
    goproxy: https://goproxy.example.internal
    gosumdb: "off"
"""

RETURN = r"""
path:
  description: Path of the tool.
  returned: always
  type: str
  sample: /home/me/.local/bin/helm
version:
  description: Version the tool reports after the run (the wanted one in check mode when a build is needed).
  returned: always
  type: str
  sample: v3.19.5
previous_version:
  description: Version it reported before; V(null) when missing or unusable.
  returned: always
  type: str
module:
  description: Module and version built from.
  returned: always
  type: str
  sample: helm.sh/helm/v3@v3.19.5
ldflags:
  description: Linker flags used (the version stamps).
  returned: when built
  type: str
commands:
  description: The go commands run.
  returned: when built
  type: list
  elements: list
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cli_tools import TOOLS, go_build_tool
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule


def main():
    module = CiliumEksModule(
        argument_spec=dict(
            name=dict(type="str", required=True, choices=list(TOOLS)),
            version=dict(type="str", required=True),
            bin_dir=dict(type="path", required=True),
            module=dict(type="str"),
            package=dict(type="str"),
            goproxy=dict(type="str"),
            gosumdb=dict(type="str"),
            goflags=dict(type="str"),
            gotoolchain=dict(type="str", default="local"),
            env=dict(type="dict", default={}),
            go_path=dict(type="path"),
            force=dict(type="bool", default=False),
            timeout=dict(type="int", default=3600),
        ),
        supports_check_mode=True,
    )
    module.run(lambda mod: go_build_tool(mod.params, check_mode=mod.check_mode))


if __name__ == "__main__":
    main()
