"""Talking to the sandbox's API server: server-side apply and short-poll waits."""
import time

from kubernetes import client, config, dynamic

FIELD_MANAGER = "eks-sandbox"


def dynamic_client(kubeconfig) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(config.new_client_from_config(config_file=str(kubeconfig)))


def apply(api: dynamic.DynamicClient, obj: dict):
    """Server-side apply one object (create or update), as ``kubectl apply --server-side`` does."""
    resource = api.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    meta = obj["metadata"]
    return resource.server_side_apply(body=obj, name=meta["name"], namespace=meta.get("namespace"),
                                      field_manager=FIELD_MANAGER, force_conflicts=True)


def apply_all(api, objects):
    return [apply(api, obj) for obj in objects]


def wait_for(predicate, what: str, timeout: float = 60, interval: float = 0.1):
    """Poll ``predicate`` until it returns a truthy value; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - the API may be briefly unavailable; retried
            last_error = exc
        time.sleep(interval)
    detail = f" (last error: {last_error})" if last_error else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


def ready_nodes(api: dynamic.DynamicClient) -> list:
    nodes = api.resources.get(api_version="v1", kind="Node").get()
    return [n.metadata.name for n in nodes.items
            if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))]


def daemonset_rolled_out(api, namespace, name) -> bool:
    ds = api.resources.get(api_version="apps/v1", kind="DaemonSet").get(name=name, namespace=namespace)
    status = ds.status
    desired = status.desiredNumberScheduled or 0
    return (status.observedGeneration or 0) >= ds.metadata.generation and desired > 0 and \
        (status.updatedNumberScheduled or 0) == desired and (status.numberAvailable or 0) == desired


def deployment_rolled_out(api, namespace, name) -> bool:
    dep = api.resources.get(api_version="apps/v1", kind="Deployment").get(name=name, namespace=namespace)
    status = dep.status
    replicas = dep.spec.replicas or 0
    return (status.observedGeneration or 0) >= dep.metadata.generation and \
        (status.updatedReplicas or 0) == replicas and (status.availableReplicas or 0) == replicas


def core_v1(kubeconfig) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def set_pod_ready(core, namespace, pod_name, ready, container="cilium-agent"):
    """Flip a pod's Ready and ContainersReady conditions, as the kubelet does on a readiness probe result."""
    status = "True" if ready else "False"
    reason = None if ready else "ContainersNotReady"
    message = None if ready else f"containers with unready status: [{container}]"
    core.patch_namespaced_pod_status(pod_name, namespace, {"status": {"conditions": [
        {"type": "Ready", "status": status, "reason": reason, "message": message},
        {"type": "ContainersReady", "status": status, "reason": reason, "message": message}]}})
