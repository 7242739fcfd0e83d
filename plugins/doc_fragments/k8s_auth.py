# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Options every module that talks to the Kubernetes API shares (see module_utils/k8s_client.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to the kubeconfig of the cluster.
      - When not given, C(K8S_AUTH_KUBECONFIG), then C(KUBECONFIG), then C(~/.kube/config) are used.
    type: path
  context:
    description:
      - The kubeconfig context to use. Defaults to the kubeconfig's current context.
      - Can also be set with C(K8S_AUTH_CONTEXT).
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. Defaults to what the kubeconfig says.
    type: bool
    aliases: [verify_ssl]
requirements:
  - kubernetes >= 24.2.0 (Python package)
"""
