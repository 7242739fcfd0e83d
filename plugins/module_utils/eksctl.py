# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``eksctl_cluster`` and ``eksctl_cluster_info`` modules' work: one flow over the eksctl layers.

``eksctl_config`` validates the options and renders the ClusterConfig, ``eksctl_plan`` compares it with what EKS
reports, ``eks_service.ClusterManager`` reads AWS and runs eksctl, ``eksctl_output`` reads what eksctl printed.
``ensure(module, manager=None)`` and ``info(module, manager=None)`` take their manager (a ``ClusterManager``
built from the module when not given), so tests hand them one with recorded AWS answers.
"""

from __future__ import annotations

import os

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import inputs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.aws_client import region_from_env
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eks_service import (
    FAILED_STACK_STATUSES,
    ClusterManager,
    file_mode,
    jsonable,
    kubeconfig_login,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eksctl_config import (
    OWNERSHIP_TAG,
    bare_cluster,
    render_config,
    to_yaml,
    validate_cluster_name,
    validate_daemonset_ref,
    validate_region,
    without_nodegroups,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eksctl_output import describe_failure, parse_failures
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eksctl_plan import (
    defer_nodegroups,
    desired_from_config,
    nodegroups_summary,
    observed_config,
    observed_from_aws,
    plan,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError, CommandError


LOGIN_MISSING = ("The kubeconfig %s logs in by running %s, which is not on this host's PATH: every Kubernetes client "
                 "using it will fail. Install aws-iam-authenticator (the cloudnet.cilium_eks.tools role with "
                 "tools_aws_iam_authenticator: true) or the AWS CLI (aws eks get-token), then run again: eksctl writes "
                 "the kubeconfig for the one it finds")


class CreateFailedError(CiliumEksError):
    """eksctl create failed; carries the failing stack events and what to do next."""


class DeleteFailedError(CiliumEksError):
    """eksctl delete failed, or stacks of a cluster that is gone remain; carries the stack events and what to do."""


def _leftover_stacks(stacks, observed):
    """Stacks that block a retry: failed ones, and node group stacks whose node group is absent from EKS."""
    blocking = []
    existing = set(observed["nodegroups"]) if observed else set()
    for stack in stacks:
        if stack["status"] in FAILED_STACK_STATUSES:
            blocking.append(stack)
        elif stack["kind"] == "nodegroup" and stack["nodegroup"] not in existing and \
                not stack["status"].startswith("DELETE"):
            blocking.append(stack)
        elif stack["kind"] == "cluster" and observed is None and not stack["status"].startswith("DELETE"):
            blocking.append(stack)
    return blocking


def _delete_advice(stacks, name, region, cluster_exists):
    """The commands that remove leftover ``stacks`` of cluster ``name``.

    While the EKS cluster exists, ``eksctl delete cluster`` (it lifts the stacks' termination protection itself:
    ``DeleteStack`` in pkg/cfn/manager/api.go at v0.225.0). Without the cluster eksctl refuses ("unable to describe
    cluster control plane", tests/recordings/eksctl/delete_cluster_rolled_back_0.225.stderr.log), so CloudFormation's
    own commands: node group stacks before the cluster stack whose exports they import, each after lifting the
    termination protection eksctl 0.225 creates its stacks with (``EnableTerminationProtection``, same file;
    CloudFormation user guide, "Protect CloudFormation stacks from being deleted").
    """
    if cluster_exists and any(s["kind"] == "cluster" for s in stacks):
        return ["eksctl delete cluster --region %s --name %s --wait" % (region, name)]
    with_cluster_stack = any(s["kind"] == "cluster" for s in stacks)
    commands = []
    for stack in sorted(stacks, key=lambda s: s["kind"] == "cluster"):
        where = "--region %s --stack-name %s" % (region, stack["name"])
        if stack.get("termination_protection"):
            commands.append("aws cloudformation update-termination-protection %s --no-enable-termination-protection"
                            % where)
        commands.append("aws cloudformation delete-stack %s" % where)
        if with_cluster_stack and stack["kind"] != "cluster":
            commands.append("aws cloudformation wait stack-delete-complete %s" % where)
    return commands


def ensure(module, manager=None):
    """The ``eksctl_cluster`` module's work; returns the result dict. ``manager``: a ``ClusterManager`` (default:
    one for the module's region)."""
    params = module.params
    metadata = (params.get("config") or {}).get("metadata") or {}
    region = params.get("region") or metadata.get("region") or region_from_env()
    if params["state"] == "absent":
        name = validate_cluster_name(params.get("name") or metadata.get("name"))
        validate_region(region)
        return _absent(module, manager or ClusterManager(module, region), name)
    config = render_config(dict(params, region=region))
    if params.get("kubeconfig"):
        inputs.file_path(params["kubeconfig"], "kubeconfig")
    inputs.timeout(params["timeout"], "timeout")
    validate_daemonset_ref(params["cni_daemonset"])
    return _present(module, manager or ClusterManager(module, config["metadata"]["region"]), config)


def _result(manager, config, observed, changed, actions, drift, kubeconfig=None, deferred=()):
    desired = desired_from_config(config) if config else None
    name = (desired or observed or {}).get("name")
    result = {
        "changed": changed,
        "name": name,
        "region": manager.region,
        "version": observed.get("version") if observed else None,
        "status": observed.get("status") if observed else None,
        "endpoint": observed.get("endpoint") if observed else None,
        "arn": observed.get("arn") if observed else None,
        "nodegroups": nodegroups_summary(observed),
        "actions": actions,
        "drift": drift,
        "deferred_nodegroups": list(deferred),
        "kubeconfig": kubeconfig,
        "commands": manager.commands,
    }
    if config is not None:
        result["config"] = config
    return result


def _refuse_unfinished(observed, name, region):
    """A cluster in FAILED or DELETING cannot be converged: say what to do."""
    if observed and observed["status"] == "FAILED":
        raise CiliumEksError("EKS cluster %s in %s is in status FAILED; it cannot be repaired in place. Look at its "
                             "CloudFormation stack events, then delete it (`eksctl delete cluster --region %s --name %s "
                             "--wait`) and run again" % (name, region, region, name), cluster=name, status="FAILED")
    if observed and observed["status"] == "DELETING":
        raise CiliumEksError("EKS cluster %s in %s is being deleted; wait for the deletion to finish and run again"
                             % (name, region), cluster=name, status="DELETING")


def _refuse_leftovers(manager, name, observed, actions):
    """Leftovers of an earlier failed create block eksctl: say exactly what to delete, never delete."""
    creating = [a for a in actions if a["action"] in ("create_cluster", "create_nodegroup")]
    if not creating:
        return
    region, wanted = manager.region, {a.get("nodegroup") for a in creating}
    leftovers = _leftover_stacks(manager.stacks(name), observed)
    # A cluster stack in the way takes every stack left with it: node group stacks import its exports.
    blocking = leftovers if any(s["kind"] == "cluster" for s in leftovers) else [
        s for s in leftovers if s["nodegroup"] in wanted]
    if not blocking:
        return
    in_progress = any(s["status"].endswith("_IN_PROGRESS") for s in blocking)
    advice = _delete_advice(blocking, name, region, observed is not None)
    raise CreateFailedError(
        "An earlier create of EKS cluster %s in %s left CloudFormation stack(s) behind that block eksctl: %s. This "
        "module never deletes what you did not ask it to delete. Look at the failures below, then remove the stack(s) "
        "with: %s ; and run again" % (
            name, region, ", ".join("%s (%s)" % (s["name"], s["status"]) for s in blocking),
            " ; ".join(advice))
        + (". Stacks still *_IN_PROGRESS may belong to an eksctl run that is still going: wait for it, and delete them "
           "only if none is running" if in_progress else ""),
        cluster=name, region=region, stacks=blocking, stack_failures=manager.stack_failures(blocking),
        delete_commands=advice)


def _present(module, manager, config):
    name, region = config["metadata"]["name"], manager.region
    cluster, nodegroups = manager.describe(name)
    observed = observed_from_aws(cluster, nodegroups)
    _refuse_unfinished(observed, name, region)
    desired = desired_from_config(config)
    result_plan = plan(desired, observed, allow_upgrade=module.params.get("allow_upgrade"))
    drift = result_plan["drift"]
    actions, deferred = defer_nodegroups(result_plan["actions"], desired, bare_cluster(config),
                                         lambda: _cni_installed(module, manager))
    for item in drift:  # creation-only settings are listed in drift (and the role's plan), never warned about
        if not item["creation_only"]:
            module.warn("EKS cluster %s: drift on %s%s: wanted %r, found %r (%s)" % (
                name, item["field"], " of node group %s" % item["nodegroup"] if item["nodegroup"] else "",
                item["desired"], item["actual"], item["reason"]))
    config_yaml = to_yaml(config)
    diff = {"before": to_yaml(observed_config(observed, region)) if observed else "",
            "after": config_yaml, "before_header": "%s (EKS, %s)" % (name, region),
            "after_header": "%s (rendered ClusterConfig)" % name}
    _refuse_leftovers(manager, name, observed, actions)
    changed, kubeconfig = bool(actions), module.params.get("kubeconfig")
    kubeconfig_changed = None
    if module.check_mode and kubeconfig and observed and not actions:
        kubeconfig_changed = manager.kubeconfig_would_change(name, kubeconfig, cluster)
        changed = changed or kubeconfig_changed
    if not module.check_mode:
        for action in actions:
            try:
                _apply(manager, config, config_yaml, action)
            except CommandError as err:
                raise _create_failure(manager, name, region, action, err) from err
        if actions:
            observed = observed_from_aws(*manager.describe(name))
        if kubeconfig and observed:
            kubeconfig_changed = manager.write_kubeconfig(name, kubeconfig)
            changed = kubeconfig_changed or changed
    result = _result(manager, config, observed, changed, actions, drift, kubeconfig, deferred)
    result.update(diff=diff, kubeconfig_changed=kubeconfig_changed,
                  kubeconfig_mode=file_mode(kubeconfig) if kubeconfig else None,
                  kubeconfig_login=_checked_login(module, kubeconfig))
    return result


def _cni_installed(module, manager):
    """Whether the CNI's DaemonSet (``cni_daemonset``) exists, read through ``kubeconfig``; False without one (the
    node groups then wait for a run that has it: the kubeconfig is written at the end of this one)."""
    kubeconfig = module.params.get("kubeconfig")
    if not kubeconfig or not os.path.exists(os.path.expanduser(kubeconfig)):
        return False
    namespace, name = validate_daemonset_ref(module.params["cni_daemonset"])
    return manager.daemonset_exists(kubeconfig, namespace, name)


def _checked_login(module, kubeconfig):
    """``kubeconfig_login`` of the kubeconfig, warning when its login command is not on this host's PATH."""
    login = kubeconfig_login(kubeconfig) if kubeconfig else None
    if login and not login["path"]:
        module.warn(LOGIN_MISSING % (kubeconfig, login["command"]))
    return login


def _apply(manager, config, config_yaml, action):
    name, region = config["metadata"]["name"], manager.region
    kind, wait = action["action"], manager.timeout_flag()
    if kind == "create_cluster":
        # A cluster without a CNI is created without its node groups (eksctl_config.bare_cluster).
        manager.run_eksctl(["create", "cluster", "--write-kubeconfig=false"] + wait,
                           config_yaml=to_yaml(without_nodegroups(config)) if bare_cluster(config) else config_yaml)
    elif kind == "upgrade_cluster":
        manager.run_eksctl(["upgrade", "cluster", "--name", name, "--region", region, "--version", action["to"],
                            "--approve"] + wait)
    elif kind == "create_nodegroup":
        manager.run_eksctl(["create", "nodegroup", "--include", action["nodegroup"]] + wait, config_yaml=config_yaml)
    elif kind == "scale_nodegroup":
        manager.run_eksctl(["scale", "nodegroup", "--cluster", name, "--region", region, "--name",
                            action["nodegroup"], "--nodes", str(action["desired_size"]),
                            "--nodes-min", str(action["min_size"]), "--nodes-max", str(action["max_size"])])


def _diagnosis(manager, name, err):
    """What a failed eksctl run left: its output parsed, the cluster's stacks and their failed events, what EKS reports,
    and ``summary``: the failures (``. Failures: ...``) or else eksctl's cause (``: ...``)."""
    parsed = parse_failures("\n".join(part for part in (err.stdout_tail, err.stderr_tail) if part))
    try:
        stacks = manager.stacks(name)
        failures = manager.stack_failures([s for s in stacks if s["status"] in FAILED_STACK_STATUSES
                                           or s["name"] in parsed["stacks"]])
    except CiliumEksError:
        stacks, failures = [], []
    reasons = [describe_failure(f) for f in parsed["failed_resources"] + failures]
    summary = ". Failures: %s" % "; ".join(reasons) if reasons else (": %s" % parsed["cause"] if parsed["cause"] else "")
    return {"parsed": parsed, "stacks": stacks, "failures": failures, "summary": summary,
            "observed": observed_from_aws(*manager.describe(name))}


def _failure_details(manager, found, delete_commands):
    parsed = found["parsed"]
    return dict(failed_resources=parsed["failed_resources"], stack_failures=found["failures"], stacks=found["stacks"],
                delete_commands=delete_commands, eksctl_errors=parsed["errors"], eksctl_cause=parsed["cause"],
                commands=manager.commands)


def _stack_list(stacks):
    return ", ".join("%s (%s)" % (s["name"], s["status"]) for s in stacks)


def _create_failure(manager, name, region, action, err):
    """Turn a failed eksctl run into an error with eksctl's own diagnosis and the stack events."""
    found = _diagnosis(manager, name, err)
    observed = found["observed"]
    blocking = _leftover_stacks(found["stacks"], observed)
    advice = _delete_advice(blocking, name, region, observed is not None) if blocking else []
    msg = "eksctl failed to %s for EKS cluster %s in %s (exit code %s)%s" % (
        action["action"].replace("_", " ") + (" %s" % action["nodegroup"] if action.get("nodegroup") else ""),
        name, region, err.rc, found["summary"])
    if observed:
        msg += ". The control plane exists (status %s)" % observed["status"]
    if blocking:
        msg += (". Left behind: %s. Nothing was deleted. To retry, delete them (%s) and run again; the next run "
                "resumes from what exists" % (_stack_list(blocking), " ; ".join(advice)))
    else:
        msg += ". Run again to resume from what exists"
    return CreateFailedError(msg, cluster=name, region=region, failed_action=action,
                             **_failure_details(manager, found, advice))


def _delete_failure(manager, name, region, err):
    """A failed ``eksctl delete cluster``: its cause, the stacks left and their failed events, and what to do."""
    found = _diagnosis(manager, name, err)
    observed, left = found["observed"], _own_stacks(found["stacks"])
    advice = _delete_advice(left, name, region, observed is not None) if left else []
    msg = "eksctl failed to delete EKS cluster %s in %s (exit code %s)%s" % (name, region, err.rc, found["summary"])
    if left:
        msg += ". Left: %s" % _stack_list(left)
    msg += (". Fix what the failures name first (often something created outside eksctl's stacks that still uses the "
            "VPC: load balancers, network interfaces, security groups), then run again")
    if observed is None and left:
        msg += "; the EKS cluster is gone, so eksctl cannot delete the rest: remove the stacks with: %s" % (
            " ; ".join(advice))
    else:
        msg += "; the delete resumes from what is left"
    return DeleteFailedError(msg, cluster=name, region=region, **_failure_details(manager, found, advice))


def _own_stacks(stacks):
    """The cluster's own cluster and node group stacks: ``eksctl-<name>-...`` also matches the stacks of a cluster
    named ``<name>-<more>`` (kind ``other``)."""
    return [s for s in stacks if s["kind"] != "other"]


def _refuse_leftovers_of_absent(manager, name):
    """No EKS cluster, but eksctl's stacks of it remain (a create rolled back, a delete stopped half-way): eksctl
    cannot remove them (it describes the cluster first), so say how; stacks already being deleted are only warned
    about."""
    stacks = _own_stacks(manager.stacks(name))
    deleting = [s for s in stacks if s["status"] == "DELETE_IN_PROGRESS"]
    if deleting:
        manager.module.warn("EKS cluster %s: stack(s) still being deleted: %s" % (name, _stack_list(deleting)))
    left = [s for s in stacks if s not in deleting]
    if not left:
        return
    advice = _delete_advice(left, name, manager.region, False)
    raise DeleteFailedError(
        "EKS cluster %s in %s does not exist, but eksctl's CloudFormation stack(s) of it remain: %s (an earlier create "
        "or delete stopped half-way). eksctl cannot delete them without the cluster and this module does not delete "
        "stacks itself. Look at the failures below, remove the stack(s) with: %s ; and run again" % (
            name, manager.region, _stack_list(left), " ; ".join(advice)),
        cluster=name, region=manager.region, stacks=left, delete_commands=advice,
        stack_failures=manager.stack_failures([s for s in left if s["status"] in FAILED_STACK_STATUSES]))


def _absent(module, manager, name):
    cluster, nodegroups = manager.describe(name)
    observed = observed_from_aws(cluster, nodegroups)
    if observed is None:
        _refuse_leftovers_of_absent(manager, name)
        return _result(manager, None, None, False, [], [])
    tags = observed["tags"]
    if tags.get(OWNERSHIP_TAG[0]) != OWNERSHIP_TAG[1] and not module.params.get("force"):
        raise CiliumEksError(
            "Refusing to delete EKS cluster %s in %s: it does not carry the tag %s=%s that this collection puts on "
            "the clusters it creates. Set force: true to delete it anyway." % (
                name, manager.region, OWNERSHIP_TAG[0], OWNERSHIP_TAG[1]),
            cluster=name, region=manager.region, tags=tags)
    actions = [{"action": "delete_cluster"}]
    if not module.check_mode:
        try:
            manager.run_eksctl(["delete", "cluster", "--name", name, "--region", manager.region, "--wait"])
        except CommandError as err:
            raise _delete_failure(manager, name, manager.region, err) from err
    result = _result(manager, None, observed, True, actions, [])
    result["diff"] = {"before": to_yaml(observed_config(observed, manager.region)), "after": ""}
    return result


def info(module, manager=None):
    """The ``eksctl_cluster_info`` module's work. ``manager``: a ``ClusterManager`` (default: the module's region)."""
    region = validate_region(module.params.get("region") or region_from_env())
    manager = manager or ClusterManager(module, region)
    name = module.params.get("name")
    if not name:
        return {"changed": False, "region": region, "clusters": manager.list_clusters()}
    validate_cluster_name(name)
    cluster, nodegroups = manager.describe(name)
    observed = observed_from_aws(cluster, nodegroups)
    result = {"changed": False, "region": region, "name": name, "exists": observed is not None,
              "cluster": jsonable(cluster), "nodegroups": nodegroups_summary(observed),
              "status": observed["status"] if observed else None,
              "version": observed["version"] if observed else None,
              "endpoint": observed["endpoint"] if observed else None,
              "managed": bool(observed) and observed["tags"].get(OWNERSHIP_TAG[0]) == OWNERSHIP_TAG[1]}
    if module.params.get("stacks"):
        stacks = manager.stacks(name)
        result["stacks"] = stacks
        result["stack_failures"] = manager.stack_failures([s for s in stacks if s["status"] in FAILED_STACK_STATUSES])
    return result
