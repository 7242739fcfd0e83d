# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""``CiliumEksModule``: AnsibleModule plus the collection's error handling, runners and k8s client.

Typical module::

    def main():
        module = CiliumEksModule(argument_spec=dict(
            name=dict(required=True), timeout=dict(type="int", default=1800), eksctl_path=dict(type="path"),
        ))
        module.run(create_cluster)   # create_cluster(module) returns the result dict

    def create_cluster(module):
        eksctl = module.runner("eksctl")
        result = eksctl.run(["get", "cluster", "--name", module.params["name"], "-o", "json"], check=False)
        ...
        return dict(changed=True, cluster=...)
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.runner import CommandRunner


class CiliumEksModule(AnsibleModule):
    """AnsibleModule with ``run(fn)``, ``runner(binary)`` and, when ``k8s_auth=True``, ``k8s_client()``.

    ``k8s_auth=True`` merges ``k8s_auth_argument_spec()`` (kubernetes.core's connection options) into
    ``argument_spec``; ``aws=True`` merges amazon.aws's AWS options (``aws_client.aws_argument_spec()``) and, as
    amazon.aws does, returns ``resource_actions`` when ``debug_botocore_endpoint_logs`` is on. The module's
    ``timeout`` option, if it has one, is the runners' default timeout.
    """

    def __init__(self, argument_spec=None, k8s_auth=False, aws=False, **kwargs):
        argument_spec = dict(argument_spec or {})
        if k8s_auth:
            from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import k8s_auth_argument_spec

            for name, spec in k8s_auth_argument_spec().items():
                argument_spec.setdefault(name, spec)
        if aws:
            from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.aws_client import aws_argument_spec

            for name, spec in aws_argument_spec().items():
                argument_spec.setdefault(name, spec)
        super().__init__(argument_spec=argument_spec, **kwargs)
        # AWS API calls made (``service:Operation``), returned as ``resource_actions`` when asked.
        self.aws_calls = [] if aws and self.params.get("debug_botocore_endpoint_logs") else None

    def exit_json(self, **kwargs):
        super().exit_json(**self._with_resource_actions(kwargs))

    def fail_json(self, msg, **kwargs):
        super().fail_json(msg, **self._with_resource_actions(kwargs))

    def _with_resource_actions(self, result):
        calls = getattr(self, "aws_calls", None)  # unset while AnsibleModule checks the arguments
        return dict(result, resource_actions=sorted(set(calls))) if calls is not None else result

    def run(self, fn):
        """Call ``fn(self)``; exit with its result dict, or fail cleanly on ``CiliumEksError``.

        Other exceptions propagate: they are bugs and Ansible shows their traceback.
        """
        try:
            result = fn(self)
        except CiliumEksError as err:
            self.fail_json(**err.to_fail_kwargs())
        else:
            self.exit_json(**(result if result is not None else {"changed": False}))

    def runner(self, binary, path_option=None, timeout=None, env=None):
        """A ``CommandRunner`` for ``binary`` (eksctl, helm, cilium, kubectl).

        Its path comes from the ``path_option`` module option (default ``<binary>_path``) if set, else
        PATH. Its timeout is ``timeout`` or the module's ``timeout`` option. The values of ``no_log``
        options are redacted from its argv and errors.
        """
        path_option = path_option or "%s_path" % binary
        return CommandRunner(
            binary,
            path=self.params.get(path_option),
            option=path_option,
            timeout=timeout if timeout is not None else self.params.get("timeout"),
            env=env,
            redact=sorted(self.no_log_values),
        )

    def k8s_client(self, check=True, timeout=None):
        """``ApiClient`` from the connection options (kubeconfig, context, host, api_key...); probed with
        ``/version`` if ``check``."""
        from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import (
            auth_options,
            check_reachable,
            get_api_client,
        )

        api_client = get_api_client(
            kubeconfig=self.params.get("kubeconfig"),
            context=self.params.get("context"),
            validate_certs=self.params.get("validate_certs"),
            **auth_options(self.params)
        )
        if check:
            check_reachable(api_client, timeout=timeout or 10)
        return api_client
