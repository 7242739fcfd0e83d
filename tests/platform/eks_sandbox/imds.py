"""The EC2 instance metadata service (IMDSv2) of a sandbox node, answered from moto.

What Cilium reads from it, at v1.20.2:
* the operator, ``pkg/aws/api/api.go``: the region from ``dynamic/instance-identity/document``
  (``GetInstanceIdentityDocument``), and through the SDK's default credential chain the instance role's
  credentials (``meta-data/iam/security-credentials/<role>``); it cannot start without IMDS;
* agent and operator, ``pkg/aws/metadata/metadata.go`` ``GetInstanceMetadata``: ``instance-id``,
  ``instance-type``, ``mac``, ``network/interfaces/macs/<mac>/vpc-id`` and ``/subnet-id``,
  ``placement/availability-zone`` (the agent writes them into its CiliumNode in ENI mode).

Served here as EC2 serves them (docs: "Instance metadata categories", IMDSv2 ``PUT /latest/api/token``
first, then ``X-aws-ec2-metadata-token``); listings end a folder's names with ``/``. The answers are
built from DescribeInstances/DescribeNetworkInterfaces of the node's instance at each request (ENIs
the operator attaches show up under ``macs/``). The credentials are moto's dummy ones: moto does not
check them.
"""
from __future__ import annotations

import json
import secrets
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .aws import DUMMY_CREDENTIALS

TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
ROLE_NAME = "eks-sandbox-node-role"


def metadata_tree(instance: dict, enis: list, subnets: dict, vpc_cidrs: list, region: str, account: str,
                  now: float | None = None) -> dict:
    """``{path: text}`` of every leaf under ``latest/`` for one instance (pure; unit-tested)."""
    epoch = now if now is not None else time.time()
    moment = time.gmtime(epoch)
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch + 6 * 3600))
    primary = next(e for e in enis if int(e["Attachment"]["DeviceIndex"]) == 0)
    zone = instance["Placement"]["AvailabilityZone"]
    hostname = "ip-" + instance["PrivateIpAddress"].replace(".", "-") + (
        ".ec2.internal" if region == "us-east-1" else f".{region}.compute.internal")
    meta = {
        "ami-id": instance.get("ImageId", ""),
        "instance-id": instance["InstanceId"],
        "instance-type": instance["InstanceType"],
        "local-ipv4": instance["PrivateIpAddress"],
        "local-hostname": hostname,
        "hostname": hostname,
        "mac": primary["MacAddress"].lower(),
        "placement/availability-zone": zone,
        "placement/region": region,
        "iam/info": json.dumps({"Code": "Success", "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", moment),
                                "InstanceProfileArn": f"arn:aws:iam::{account}:instance-profile/{ROLE_NAME}",
                                "InstanceProfileId": "AIPA" + instance["InstanceId"][2:18].upper()}),
        f"iam/security-credentials/{ROLE_NAME}": json.dumps({
            "Code": "Success", "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", moment), "Type": "AWS-HMAC",
            "AccessKeyId": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], "Token": "", "Expiration": expires}),
    }
    for eni in enis:
        mac = eni["MacAddress"].lower()
        base = f"network/interfaces/macs/{mac}/"
        addresses = sorted(eni.get("PrivateIpAddresses") or [], key=lambda a: not a.get("Primary"))
        meta.update({
            base + "device-number": str(eni["Attachment"]["DeviceIndex"]),
            base + "interface-id": eni["NetworkInterfaceId"],
            base + "local-ipv4s": "\n".join(a["PrivateIpAddress"] for a in addresses),
            base + "mac": mac,
            base + "owner-id": account,
            base + "security-group-ids": "\n".join(g["GroupId"] for g in eni.get("Groups") or []),
            base + "security-groups": "\n".join(g["GroupName"] for g in eni.get("Groups") or []),
            base + "subnet-id": eni["SubnetId"],
            base + "subnet-ipv4-cidr-block": subnets.get(eni["SubnetId"], ""),
            base + "vpc-id": eni["VpcId"],
            base + "vpc-ipv4-cidr-block": vpc_cidrs[0] if vpc_cidrs else "",
            base + "vpc-ipv4-cidr-blocks": "\n".join(vpc_cidrs),
        })
    tree = {f"latest/meta-data/{key}": value for key, value in meta.items()}
    tree["latest/dynamic/instance-identity/document"] = json.dumps({
        "accountId": account, "architecture": "x86_64", "availabilityZone": zone, "billingProducts": None,
        "devpayProductCodes": None, "marketplaceProductCodes": None, "imageId": instance.get("ImageId", ""),
        "instanceId": instance["InstanceId"], "instanceType": instance["InstanceType"], "kernelId": None,
        "pendingTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", moment), "privateIp": instance["PrivateIpAddress"],
        "ramdiskId": None, "region": region, "version": "2017-09-30"}, indent=2)
    return tree


def answer(tree: dict, path: str):
    """The text IMDS gives for ``path`` (a leaf, or a folder's listing), None when there is none."""
    path = path.lstrip("/")
    if path in tree:
        return tree[path]
    folder = path if path.endswith("/") or not path else path + "/"
    children = set()
    for key in tree:
        if key.startswith(folder):
            head, sep, _rest = key[len(folder):].partition("/")
            children.add(head + sep)
    return "\n".join(sorted(children)) if children else None


class MotoInstanceSource:
    """Reads one instance's metadata from moto (through the sandbox's AWS endpoint) on demand, cached 1 s."""

    def __init__(self, ec2, instance_id: str, region: str):
        self.ec2, self.instance_id, self.region = ec2, instance_id, region
        self._cached = (0.0, None)

    def tree(self) -> dict:
        stamp, cached = self._cached
        if cached is not None and time.monotonic() - stamp < 1.0:
            return cached
        instance = self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"][0]["Instances"][0]
        enis = self.ec2.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [self.instance_id]}])["NetworkInterfaces"]
        subnet_ids = sorted({e["SubnetId"] for e in enis})
        subnets = {s["SubnetId"]: s["CidrBlock"] for s in self.ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]}
        vpc = self.ec2.describe_vpcs(VpcIds=[instance["VpcId"]])["Vpcs"][0]
        cidrs = [a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet") or []] or [vpc["CidrBlock"]]
        account = (enis[0].get("OwnerId") if enis else None) or "123456789012"
        tree = metadata_tree(instance, enis, subnets, cidrs, self.region, account)
        self._cached = (time.monotonic(), tree)
        return tree


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "ImdsServer"

    def _send(self, status: int, text: str = "", content_type: str = "text/plain") -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if status == 200 and self.path.startswith("/latest/api/token"):
            self.send_header(TOKEN_TTL_HEADER, self.headers.get(TOKEN_TTL_HEADER, "21600"))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path != "/latest/api/token":
            return self._send(404)
        if not self.headers.get(TOKEN_TTL_HEADER):
            return self._send(400, "missing " + TOKEN_TTL_HEADER)
        token = secrets.token_urlsafe(32)
        self.server.tokens.add(token)
        return self._send(200, token)

    def do_GET(self):  # noqa: N802
        if self.headers.get(TOKEN_HEADER) not in self.server.tokens:
            return self._send(401)  # IMDSv2 only, as EKS node launch templates require (HttpTokens: required)
        try:
            text = answer(self.server.source.tree(), self.path.split("?", 1)[0])
        except Exception as exc:  # noqa: BLE001 - moto unreachable: EC2 answers 500 in such cases too
            return self._send(500, str(exc))
        if text is None:
            return self._send(404)
        json_path = self.path.startswith("/latest/dynamic/") or "/iam/" in self.path
        return self._send(200, text, "application/json" if json_path and text.startswith("{") else "text/plain")

    def log_message(self, format, *args):  # noqa: A002 - quiet: the node runtime logs what matters
        pass


class ImdsServer(ThreadingHTTPServer):
    """IMDS on an already bound and listening socket (e.g. 169.254.169.254:80 inside a node's namespace)."""
    daemon_threads = True

    def __init__(self, sock, source):
        self.source, self.tokens = source, set()
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
