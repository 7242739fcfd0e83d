"""The node's IMDSv2 (imds.py): the metadata tree built from moto's records, and the HTTP protocol."""
import json
import socket
import threading
import urllib.request

import pytest

from eks_sandbox import imds

INSTANCE = {"InstanceId": "i-0abc", "InstanceType": "t3.medium", "PrivateIpAddress": "192.168.0.11",
            "ImageId": "ami-1", "Placement": {"AvailabilityZone": "us-east-1a"}, "VpcId": "vpc-1"}
ENIS = [
    {"NetworkInterfaceId": "eni-0", "MacAddress": "02:00:00:AA:BB:01", "SubnetId": "subnet-a", "VpcId": "vpc-1",
     "Attachment": {"DeviceIndex": 0}, "Groups": [{"GroupId": "sg-1", "GroupName": "eks-cluster-sg"}],
     "PrivateIpAddresses": [{"PrivateIpAddress": "192.168.0.20", "Primary": False},
                            {"PrivateIpAddress": "192.168.0.11", "Primary": True}]},
    {"NetworkInterfaceId": "eni-1", "MacAddress": "02:00:00:aa:bb:02", "SubnetId": "subnet-a", "VpcId": "vpc-1",
     "Attachment": {"DeviceIndex": 1}, "Groups": [], "PrivateIpAddresses": [{"PrivateIpAddress": "192.168.0.30"}]},
]


def tree():
    return imds.metadata_tree(INSTANCE, ENIS, {"subnet-a": "192.168.0.0/19"}, ["192.168.0.0/16"], "us-east-1",
                              "123456789012", now=0)


def test_what_cilium_reads_is_there():
    leaves = tree()
    meta = "latest/meta-data/"
    assert leaves[meta + "instance-id"] == "i-0abc"
    assert leaves[meta + "instance-type"] == "t3.medium"
    assert leaves[meta + "mac"] == "02:00:00:aa:bb:01"  # the primary ENI's, lower case as EC2 prints it
    assert leaves[meta + "network/interfaces/macs/02:00:00:aa:bb:01/vpc-id"] == "vpc-1"
    assert leaves[meta + "network/interfaces/macs/02:00:00:aa:bb:01/subnet-id"] == "subnet-a"
    assert leaves[meta + "network/interfaces/macs/02:00:00:aa:bb:01/local-ipv4s"] == "192.168.0.11\n192.168.0.20"
    assert leaves[meta + "network/interfaces/macs/02:00:00:aa:bb:02/device-number"] == "1"
    assert leaves[meta + "placement/availability-zone"] == "us-east-1a"
    document = json.loads(leaves["latest/dynamic/instance-identity/document"])
    assert (document["region"], document["instanceId"], document["privateIp"]) == ("us-east-1", "i-0abc", "192.168.0.11")
    role = leaves[meta + "iam/security-credentials/" + imds.ROLE_NAME]
    assert json.loads(role)["Expiration"] == "1970-01-01T06:00:00Z"


def test_folders_list_their_children():
    leaves = tree()
    assert imds.answer(leaves, "/latest/meta-data/network/interfaces/macs/") == "02:00:00:aa:bb:01/\n02:00:00:aa:bb:02/"
    assert imds.answer(leaves, "/latest/meta-data/iam/security-credentials/") == imds.ROLE_NAME
    assert "placement/" in imds.answer(leaves, "/latest/meta-data/").split("\n")
    assert imds.answer(leaves, "/latest/meta-data/nothing") is None


class FixedSource:
    def tree(self):
        return tree()


@pytest.fixture
def server():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    srv = imds.ImdsServer(sock, FixedSource())
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    srv.shutdown()
    srv.server_close()


def call(url, method="GET", headers=None):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


def test_imdsv2_token_first(server):
    assert call(server + "/latest/meta-data/instance-id")[0] == 401
    assert call(server + "/latest/api/token", "PUT")[0] == 400  # the TTL header is required
    status, token = call(server + "/latest/api/token", "PUT", {imds.TOKEN_TTL_HEADER: "21600"})
    assert status == 200 and token
    assert call(server + "/latest/meta-data/instance-id", headers={imds.TOKEN_HEADER: token}) == (200, "i-0abc")
    assert call(server + "/latest/meta-data/nope", headers={imds.TOKEN_HEADER: token})[0] == 404
