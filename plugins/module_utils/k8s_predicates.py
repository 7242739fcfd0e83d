# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What Kubernetes objects say about themselves: readiness, rollouts, schedulability. Pure functions on dicts.

Every predicate takes the object as the API returns it (``K8sService`` reads them raw) and returns a plain
answer: ``pod_ready(pod)``, ``pod_not_ready_reason(pod)``, ``container_running(pod, name)``,
``daemonset_rollout(ds)``, ``deployment_rollout(dep)``, ``statefulset_rollout(sts)``, ``node_schedulable(node)``, ``pull_failure(pod)``,
``unschedulable_reason(pod)``, ``crash_loop(pod, name)``, ``current_daemonset_pod(pod, ds)``. Pure stdlib;
importable without Ansible.
"""

from __future__ import annotations

PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


def condition(obj, kind):
    """The ``status.conditions`` entry of type ``kind``, or None."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def condition_true(obj, kind):
    return (condition(obj, kind) or {}).get("status") == "True"


def terminating(obj):
    return bool(((obj or {}).get("metadata") or {}).get("deletionTimestamp"))


def container_image(pod_spec, name):
    """Image of container ``name`` in a pod spec (the first container's when there is none of that name)."""
    containers = (pod_spec or {}).get("containers") or []
    for container in containers:
        if container.get("name") == name:
            return container.get("image")
    return containers[0].get("image") if containers else None


def pod_ready(pod):
    """Ready and not terminating."""
    return not terminating(pod) and condition_true(pod, "Ready")


def pod_not_ready_reason(pod):
    """None if the pod is Running and Ready, else why not (phase, condition reason, waiting containers)."""
    status = pod.get("status") or {}
    if terminating(pod):
        return "is terminating"
    phase = status.get("phase")
    ready = condition(pod, "Ready")
    if phase == "Running" and ready and ready.get("status") == "True":
        return None
    details = []
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            details.append("%s: %s" % (cs.get("name"), waiting.get("reason") or "waiting"))
    if ready and ready.get("reason"):
        details.insert(0, ready["reason"] + (": %s" % ready["message"] if ready.get("message") else ""))
    return "is not Ready (phase %s%s)" % (phase or "unknown", "; " + "; ".join(details) if details else "")


def container_running(pod, name):
    """Can ``name`` in this pod be exec'd into already? The pod is Running, not terminating, and the container
    runs; without container statuses, only a Ready pod counts."""
    status = pod.get("status") or {}
    if terminating(pod) or status.get("phase") != "Running":
        return False
    for container in status.get("containerStatuses") or []:
        if container.get("name") == name:
            return bool((container.get("state") or {}).get("running"))
    return pod_not_ready_reason(pod) is None


def pull_failure(pod):
    """``(container status, waiting state)`` of a container whose image cannot be pulled, or None."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in PULL_FAILURES:
            return cs, waiting
    return None


def crash_loop(pod, name):
    """``{restarts, exit_code, reason, message, finished_at}`` of container ``name`` when the kubelet holds it in
    ``CrashLoopBackOff`` (it exited and waits its back-off before the next start), from its last termination; None
    otherwise. ``message`` is the termination message: with ``terminationMessagePolicy: FallbackToLogsOnError``
    (Cilium's chart sets it on the agent: install/kubernetes/cilium/templates/cilium-agent/daemonset.yaml l.310 at
    v1.20.2, l.305 at v1.19.7) the kubelet puts the tail of the log there when the container failed (kubernetes
    v1.34.4 pkg/kubelet/kuberuntime/kuberuntime_container.go l.559 ``getTerminationMessage``, limits in
    pkg/kubelet/container/runtime.go l.789-794: 80 lines, 2048 bytes)."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") != name:
            continue
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") != "CrashLoopBackOff":
            return None
        last = (cs.get("lastState") or {}).get("terminated") or {}
        return {"restarts": cs.get("restartCount") or 0, "exit_code": last.get("exitCode"),
                "reason": last.get("reason"), "message": last.get("message") or "",
                "finished_at": last.get("finishedAt")}
    return None


def current_daemonset_pod(pod, ds):
    """Is this pod of the DaemonSet's current template? The DaemonSet controller labels its pods with the
    template's generation (``pod-template-generation``, kubernetes v1.34.4 pkg/controller/daemon/util/daemonset_util.go
    l.116 and l.168);
    a pod without the label counts as current. An old pod is replaced by the rollout, so its crashes may end."""
    label = ((pod.get("metadata") or {}).get("labels") or {}).get("pod-template-generation")
    generation = ((ds or {}).get("metadata") or {}).get("generation")
    return label is None or generation is None or str(label) == str(generation)


def unschedulable_reason(pod):
    """The scheduler's message when it cannot place the pod, or None."""
    cond = condition(pod, "PodScheduled")
    if cond and cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
        return cond.get("message") or "Unschedulable"
    return None


def node_schedulable(node):
    """Ready, schedulable, and without NoSchedule/NoExecute taints (pods that tolerate nothing can land)."""
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    if any(t.get("effect") in ("NoSchedule", "NoExecute") for t in spec.get("taints") or []):
        return False
    return condition_true(node, "Ready")


def _observed(obj):
    return ((obj.get("status") or {}).get("observedGeneration") or 0) >= \
        ((obj.get("metadata") or {}).get("generation") or 0)


def daemonset_rollout(ds, container="cilium-agent"):
    """``{desired, ready, updated, available, image, rolled_out}`` of a DaemonSet dict (None: absent)."""
    if ds is None:
        return None
    status = ds.get("status") or {}
    desired = status.get("desiredNumberScheduled") or 0
    info = {
        "desired": desired,
        "ready": status.get("numberReady") or 0,
        "updated": status.get("updatedNumberScheduled") or 0,
        "available": status.get("numberAvailable") or 0,
        "image": container_image(((ds.get("spec") or {}).get("template") or {}).get("spec"), container),
    }
    info["rolled_out"] = bool(_observed(ds) and desired > 0 and info["ready"] == desired
                              and info["updated"] == desired and info["available"] == desired)
    return info


def deployment_rollout(dep, container="cilium-operator"):
    """``{replicas, ready, updated, available, image, rolled_out}`` of a Deployment dict (None: absent)."""
    if dep is None:
        return None
    status = dep.get("status") or {}
    spec = dep.get("spec") or {}
    replicas = spec.get("replicas", 1)
    info = {
        "replicas": replicas,
        "ready": status.get("readyReplicas") or 0,
        "updated": status.get("updatedReplicas") or 0,
        "available": status.get("availableReplicas") or 0,
        "image": container_image((spec.get("template") or {}).get("spec"), container),
    }
    info["rolled_out"] = bool(_observed(dep) and info["updated"] == replicas and info["available"] == replicas
                              and info["ready"] == replicas and (status.get("replicas") or 0) == replicas)
    return info


def statefulset_rollout(sts, _container=None):
    """``{replicas, ready, updated, rolled_out}`` of a StatefulSet dict (None: absent): every replica ready at the
    update revision, as ``kubectl rollout status`` waits for."""
    if sts is None:
        return None
    status = sts.get("status") or {}
    replicas = (sts.get("spec") or {}).get("replicas", 1)
    info = {"replicas": replicas, "ready": status.get("readyReplicas") or 0, "updated": status.get("updatedReplicas") or 0}
    info["rolled_out"] = bool(_observed(sts) and info["ready"] == replicas and info["updated"] == replicas
                              and status.get("currentRevision") == status.get("updateRevision"))
    return info
