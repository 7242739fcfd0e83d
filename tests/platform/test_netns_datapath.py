"""The netns stand-in datapath: real namespaces, a veth, tc shaping and iperf3 on this kernel."""
import json

import pytest

from eks_sandbox import netns_datapath


def test_target_of_the_measurement_command():
    assert netns_datapath._target(["-c", "192.168.64.3", "-R", "-J"]) == "192.168.64.3"
    assert netns_datapath._target(["-H", "10.0.0.1", "-t", "TCP_MAERTS"]) == "10.0.0.1"
    assert netns_datapath._target(["-s"]) is None


def test_pair_names_fit_interface_limits():
    pair = netns_datapath.NetnsPair("abc123")
    assert len(pair.client_if) <= 15 and len(pair.server_if) <= 15
    assert pair.client_ip.startswith("10.213.") and pair.client_ip.rsplit(".", 1)[0] == pair.server_ip.rsplit(".", 1)[0]
    with pytest.raises(ValueError):
        netns_datapath.NetnsPair("way-too-long")


def test_shim_without_binding_behaves_like_a_missing_binary(monkeypatch, capsys):
    monkeypatch.delenv(netns_datapath.ENV_CLIENT_NS, raising=False)
    assert netns_datapath.tool_main(["iperf3", "-c", "10.0.0.1"]) == 127
    assert '"iperf3": executable file not found in $PATH' in capsys.readouterr().err


@pytest.fixture
def pair():
    reason = netns_datapath.unavailable_reason()
    if reason:
        pytest.skip(reason)
    pair = netns_datapath.NetnsPair("ptest").up()
    yield pair
    pair.down()
    assert not pair.exists(), "namespaces left behind"


def measure(pair, target):
    result = pair.run_client(["iperf3", "-c", target, "-R", "-J", "-t", "3"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["end"]["sum_received"]["bits_per_second"]


@pytest.mark.parametrize("rate", [10_000_000, 20_000_000])
def test_shaped_rate_is_measured(pair, rate):
    pair.shape(rate)
    assert f"{rate // 1_000_000}Mbit" in pair.qdisc()
    ratio = measure(pair, pair.server_ip) / rate
    assert 0.8 <= ratio <= 1.05, ratio


def test_pod_ip_alias_reaches_the_server_namespace(pair):
    pair.shape(10_000_000)
    pair.add_server_address("192.168.64.77")  # a sandbox pod IP, configured inside the namespaces only
    assert 0.8 <= measure(pair, "192.168.64.77") / 10_000_000 <= 1.05
