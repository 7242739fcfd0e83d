"""One ``cilium_status`` check in this process (no Ansible): ``python bench/_status_once.py KUBECONFIG [SAMPLE]``.

SAMPLE: ``sample_agents`` (default 0: ask every agent).

Prints the checker's result as one JSON line (healthy, elapsed, problems); exits 1 when not healthy.
Run as a child by the benchmarks, so its wall time and peak RSS are measured on their own.
"""
import json
import sys

import _common


def main(argv=None):
    _common.prepare_environment()
    from kubernetes import config

    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_status import CiliumStatusChecker

    args = argv or sys.argv[1:]
    kubeconfig, sample = args[0], int(args[1]) if len(args) > 1 else 0
    checker = CiliumStatusChecker(config.new_client_from_config(config_file=kubeconfig), sample_agents=sample)
    status = checker.wait(timeout=1800)
    print(json.dumps({"healthy": status["healthy"], "elapsed": status["elapsed"], "problems": status["problems"]}))
    return 0 if status["healthy"] else 1


if __name__ == "__main__":
    sys.exit(main())
