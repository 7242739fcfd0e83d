# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""EKS through boto3 and eksctl: ``ClusterManager`` reads a cluster, its node groups and its CloudFormation stacks,
and runs eksctl (through the collection's one runner), keeping a record of every command for the module result.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.aws_client import AwsClients, AwsError, eksctl_env
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eksctl_output import failed_stack_events
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CommandError, tail

# Seconds the runner gives eksctl past its own ``--timeout`` before killing it, so that eksctl gives up first and says
# which wait ran out.
KILL_GRACE = 60

# CloudFormation stack statuses after which a stack must be deleted before eksctl can retry.
FAILED_STACK_STATUSES = frozenset(("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS",
                                   "DELETE_FAILED"))


class ClusterManager:
    """Reads a cluster through boto3 and changes it through eksctl. ``module`` is a CiliumEksModule."""

    def __init__(self, module, region, aws=None):
        self.module = module
        self.region = region
        self.aws = aws or AwsClients(region, params=module.params, calls=getattr(module, "aws_calls", None))
        self.commands = []
        self._eksctl = None

    # -- AWS reads ------------------------------------------------------------------------------
    def describe(self, name):
        """``(cluster, {nodegroup name: nodegroup})`` from EKS; ``(None, {})`` when there is no such cluster."""
        found = self.aws.call("eks", "describe_cluster", missing_ok=("ResourceNotFoundException",), name=name)
        if found is None:
            return None, {}
        cluster = found["cluster"]
        names = self.aws.paginate("eks", "list_nodegroups", "nodegroups", clusterName=name)
        nodegroups = {n: self.aws.call("eks", "describe_nodegroup", clusterName=name, nodegroupName=n)["nodegroup"]
                      for n in names}
        return cluster, nodegroups

    # -- Kubernetes read ----------------------------------------------------------------------------
    @staticmethod
    def daemonset_exists(kubeconfig, namespace, name):
        """Whether DaemonSet ``namespace/name`` exists in the cluster ``kubeconfig`` reaches."""
        from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import get_api_client
        from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_service import K8sService

        return K8sService(get_api_client(kubeconfig=kubeconfig)).get("DaemonSet", name, namespace) is not None

    def list_clusters(self):
        return sorted(self.aws.paginate("eks", "list_clusters", "clusters"))

    def stacks(self, name):
        """eksctl's CloudFormation stacks of cluster ``name`` (any status but DELETE_COMPLETE)."""
        prefix = "eksctl-%s-" % name
        found = []
        for stack in self.aws.paginate("cloudformation", "describe_stacks", "Stacks"):
            stack_name = stack.get("StackName", "")
            if not stack_name.startswith(prefix) or stack.get("StackStatus") == "DELETE_COMPLETE":
                continue
            kind = "cluster" if stack_name == prefix + "cluster" else (
                "nodegroup" if stack_name.startswith(prefix + "nodegroup-") else "other")
            found.append({"name": stack_name, "status": stack.get("StackStatus"), "kind": kind,
                          "nodegroup": stack_name[len(prefix + "nodegroup-"):] if kind == "nodegroup" else None,
                          "reason": stack.get("StackStatusReason"),
                          "termination_protection": bool(stack.get("EnableTerminationProtection"))})
        return found

    def stack_failures(self, stacks):
        """Failed events of the given stacks (best effort: a stack gone meanwhile is skipped)."""
        failures = []
        for stack in stacks:
            try:
                events = self.aws.paginate("cloudformation", "describe_stack_events", "StackEvents",
                                           StackName=stack["name"])
            except AwsError:
                continue
            failures.extend(failed_stack_events(events))
        return failures

    # -- eksctl ---------------------------------------------------------------------------------
    @property
    def eksctl(self):
        if self._eksctl is None:
            timeout = self.wait_timeout
            self._eksctl = self.module.runner("eksctl", timeout=timeout + KILL_GRACE if timeout else None,
                                              env=eksctl_env(self.module.params, self.region))
        return self._eksctl

    @property
    def wait_timeout(self):
        """The module's ``timeout`` (seconds), or None."""
        return self.module.params.get("timeout")

    def timeout_flag(self):
        """``["--timeout", "<n>s"]``: eksctl's own waits (CloudFormation stacks, nodes) end with the module's timeout,
        not at eksctl's default 25 min (``DefaultWaitTimeout``, pkg/apis/eksctl.io/v1alpha5/types.go at v0.225.0) or
        65 min for ``upgrade cluster`` (pkg/ctl/upgrade/cluster.go). Not for ``delete cluster``: eksctl ignores it there
        (pkg/ctl/delete/cluster.go, "WaitTimeout is not respected by cluster.Delete")."""
        return ["--timeout", "%ds" % self.wait_timeout] if self.wait_timeout else []

    def run_eksctl(self, args, config_yaml=None, check=True):
        """Run eksctl (with ``-f <tmpfile>`` holding ``config_yaml`` when given); record it in ``commands``."""
        path = None
        try:
            if config_yaml is not None:
                handle, path = tempfile.mkstemp(prefix="eksctl-", suffix=".yaml")
                with os.fdopen(handle, "w") as stream:
                    stream.write(config_yaml)
                args = list(args) + ["-f", path]
            try:
                result = self.eksctl.run(args, check=check)
            except CommandError as err:
                self.commands.append({"argv": err.argv, "rc": err.rc, "stdout": err.stdout_tail,
                                      "stderr": err.stderr_tail, "duration": err.duration})
                raise
            self.commands.append({"argv": result.argv, "rc": result.rc, "stdout": tail(result.stdout, 40),
                                  "stderr": tail(result.stderr, 40), "duration": round(result.duration, 1)})
            return result
        finally:
            if path:
                os.unlink(path)

    def write_kubeconfig(self, name, path):
        """``eksctl utils write-kubeconfig`` into ``path`` (mode 0600). True when the file changed."""
        path = os.path.abspath(os.path.expanduser(path))
        before = _digest(path)
        mode_before = os.stat(path).st_mode & 0o777 if os.path.exists(path) else None
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700)
        self.run_eksctl(["utils", "write-kubeconfig", "--cluster", name, "--region", self.region,
                         "--kubeconfig", path])
        os.chmod(path, 0o600)
        return before != _digest(path) or mode_before != 0o600

    def kubeconfig_would_change(self, name, path, cluster=None):
        """Would ``write_kubeconfig`` change ``path``? Not when ``path`` is mode 0600, its current context already
        reaches ``cluster`` (the DescribeCluster answer; see ``kubeconfig_reaches``) and its login command is on PATH
        (else eksctl may now pick another one: ``kubeconfig_login``). Otherwise eksctl writes
        (merges, as it would into ``path``) into a copy in a scratch folder, which is compared with it; nothing
        outside the scratch folder changes."""
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.exists(path):
            return True
        login = kubeconfig_login(path)
        if cluster and file_mode(path) == "0600" and kubeconfig_reaches(path, cluster) and (not login or login["path"]):
            return False
        with tempfile.TemporaryDirectory(prefix="eksctl-kubeconfig-") as scratch:
            copy = os.path.join(scratch, "kubeconfig")
            shutil.copyfile(path, copy)
            self.run_eksctl(["utils", "write-kubeconfig", "--cluster", name, "--region", self.region,
                             "--kubeconfig", copy])
            return _digest(copy) != _digest(path) or file_mode(path) != "0600"


def kubeconfig_reaches(path, cluster):
    """True when the current context of the kubeconfig at ``path`` names a user it defines and a cluster entry with
    ``cluster``'s endpoint and certificate authority (``cluster`` is a DescribeCluster answer): what eksctl's
    write-kubeconfig would leave there. It saves an eksctl run per no-op play; after an eksctl upgrade that changes
    the user entry's format, run ``eksctl utils write-kubeconfig`` once yourself."""
    user, server = _current_context(path)
    server = server or {}
    return (user is not None
            and server.get("server") == cluster.get("endpoint")
            and server.get("certificate-authority-data") == (cluster.get("certificateAuthority") or {}).get("data"))


def _current_context(path):
    """``(user, cluster)``: the entries the current context of the kubeconfig at ``path`` names, each None when the
    file lacks it or cannot be read."""
    import yaml  # only here: most runs never read a kubeconfig

    try:
        with open(path) as stream:
            config = yaml.safe_load(stream)
    except (OSError, yaml.YAMLError):
        return None, None
    if not isinstance(config, dict):
        return None, None

    def entry(kind, name):
        found = [e.get(kind) for e in config.get(kind + "s") or [] if isinstance(e, dict) and e.get("name") == name]
        return found[0] if found and isinstance(found[0], dict) else None

    context = entry("context", config.get("current-context")) or {}
    return entry("user", context.get("user")), entry("cluster", context.get("cluster"))


def kubeconfig_login(path, search_path=None):
    """How the kubeconfig at ``path`` logs in: ``{"command", "path"}`` for an exec user (``path``: where
    ``command`` is on ``search_path``, default PATH; None when it is not there), None for any other user.

    eksctl writes an exec user running ``aws-iam-authenticator`` when that is on PATH, else ``aws`` (``aws eks
    get-token``) when that is, else ``aws-iam-authenticator`` anyway (``lookupAuthenticator`` and
    ``authenticatorCommands`` in pkg/utils/kubeconfig/kubeconfig.go at v0.225.0): a kubeconfig written on a host
    that has neither cannot log in, and every Kubernetes client using it fails with "executable not found"."""
    user = _current_context(os.path.abspath(os.path.expanduser(path)))[0] or {}
    command = (user.get("exec") or {}).get("command")
    if not command:
        return None
    return {"command": command, "path": shutil.which(command, path=search_path)}


def file_mode(path):
    """``"0600"``-style permission bits of ``path``, or None when it does not exist."""
    try:
        return "%04o" % (os.stat(os.path.abspath(os.path.expanduser(path))).st_mode & 0o777)
    except OSError:
        return None


def _digest(path):
    try:
        with open(path, "rb") as stream:
            return hashlib.sha256(stream.read()).hexdigest()
    except OSError:
        return None


def jsonable(value):
    """DescribeCluster answers hold datetimes: make them ISO strings for the module result."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
