"""Local EKS look-alike for testing cloudnet.cilium_eks offline.

Real kube-apiserver/controller-manager/scheduler/etcd built from the Go module
proxy, kwok simulating nodes and pods, moto standing in for the AWS APIs.
Run ``python -m eks_sandbox --help`` (with ``tests/platform`` on PYTHONPATH).
"""
