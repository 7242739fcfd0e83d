# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Options every module that talks to the Kubernetes API shares (see module_utils/k8s_client.py).

The names, aliases and environment variables are kubernetes.core's (kubernetes.core 6.2.0,
plugins/doc_fragments/k8s_auth_options.py and plugins/module_utils/k8s/client.py), so that one
C(module_defaults) entry and AWX's Kubernetes credential reach these modules as they reach kubernetes.core's.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to the kubeconfig of the cluster.
      - When neither this nor O(host) with its own credentials is given, C(K8S_AUTH_KUBECONFIG), then
        C(KUBECONFIG), then C(~/.kube/config) are used.
    type: path
  context:
    description:
      - The kubeconfig context to use. Defaults to the kubeconfig's current context.
      - Can also be set with C(K8S_AUTH_CONTEXT).
    type: str
  host:
    description:
      - URL of the Kubernetes API server, overriding the kubeconfig's. With O(api_key), O(username) and
        O(password), or O(client_cert) and O(client_key), no kubeconfig is read.
      - Can also be set with C(K8S_AUTH_HOST) (what AWX's Kubernetes credential sets).
    type: str
  api_key:
    description:
      - Bearer token to authenticate with the API server.
      - Can also be set with C(K8S_AUTH_API_KEY).
    type: str
  username:
    description:
      - User name for basic authentication with the API server.
      - Can also be set with C(K8S_AUTH_USERNAME).
    type: str
  password:
    description:
      - Password for basic authentication with the API server.
      - Can also be set with C(K8S_AUTH_PASSWORD).
      - Kubernetes removed basic authentication from kube-apiserver in 1.19, and EKS never offered it; prefer
        O(api_key) or a kubeconfig.
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. Defaults to what the kubeconfig says.
      - Can also be set with C(K8S_AUTH_VALIDATE_CERTS) or C(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to a CA certificate to verify the API server with.
      - Can also be set with C(K8S_AUTH_CA_CERT) or C(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Path to a client certificate to authenticate with the API server.
      - Can also be set with C(K8S_AUTH_CLIENT_CERT) or C(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the key of O(client_cert).
      - Can also be set with C(K8S_AUTH_CLIENT_KEY) or C(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
  proxy:
    description:
      - URL of an HTTP proxy to reach the API server through.
      - Can also be set with C(K8S_AUTH_PROXY).
    type: str
  no_proxy:
    description:
      - Comma-separated hosts, domains, IP addresses or CIDRs reached without O(proxy).
      - Can also be set with C(K8S_AUTH_NO_PROXY).
    type: str
  impersonate_user:
    description:
      - User name to act as (C(Impersonate-User)).
      - Can also be set with C(K8S_AUTH_IMPERSONATE_USER).
      - A module that runs commands in pods (the agents' C(cilium-dbg status), the bandwidth measurement) fails when
        this or O(impersonate_groups) is set, because the kubernetes client does not send impersonation with an exec,
        which would then run with the rights of the identity itself.
    type: str
  impersonate_groups:
    description:
      - Group to act as (C(Impersonate-Group)); one group (the kubernetes client sends one value per header).
      - Can also be set with C(K8S_AUTH_IMPERSONATE_GROUPS), comma-separated.
    type: list
    elements: str
requirements:
  - kubernetes >= 24.2.0 (Python package)
notes:
  - The module group C(cloudnet.cilium_eks.k8s) takes these options for every module of this collection that talks
    to the Kubernetes API and, through C(extend_group), for kubernetes.core's C(k8s) group, so one
    C(module_defaults) entry gives the cluster access of the whole run.
"""
