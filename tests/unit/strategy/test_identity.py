"""Partitions pinned to nodes: first use or the operator's map, and sizes checked."""

import json

import pytest

from strategy.identity import PartitionPins, read_node_partitions
from task.errors import ConfigError
from task.protocol import ProfileReport

pytestmark = pytest.mark.security

COMPUTE = {"cpu-hz": 1e9, "cycles-per-sample": 1e6, "update-cycles": 1e4}


def report(pid, examples=50, count=4):
    return ProfileReport(pid, examples, "cpu", 1e-9, 1.0, 1.0, COMPUTE, count)


def test_first_reports_pin_their_partitions_and_a_later_claim_keeps_the_pinned_node():
    pins = PartitionPins()
    admitted, refused = pins.admit({10: report(0), 11: report(1)}, connected={10, 11})
    assert set(admitted) == {10, 11} and refused == {}
    admitted, refused = pins.admit({10: report(0), 11: report(1), 66: report(1)}, {10, 11, 66})
    assert set(admitted) == {10, 11}
    assert refused == {66: "partition 1 is pinned to node 11"}


def test_a_claim_while_the_pinned_node_is_silent_but_connected_is_refused():
    pins = PartitionPins()
    pins.admit({10: report(0), 11: report(1)}, {10, 11})
    admitted, refused = pins.admit({10: report(0), 66: report(1)}, connected={10, 11, 66})
    assert set(admitted) == {10} and refused == {66: "partition 1 is pinned to node 11"}


def test_a_device_back_as_a_new_node_takes_its_partition_once_the_old_node_is_gone():
    pins = PartitionPins()
    pins.admit({10: report(0), 11: report(1)}, {10, 11})
    admitted, refused = pins.admit({10: report(0), 12: report(1)}, connected={10, 12})
    assert set(admitted) == {10, 12} and refused == {}
    assert pins.nodes == {0: 10, 1: 12}


def test_two_nodes_claiming_an_unpinned_partition_at_once_are_both_refused():
    pins = PartitionPins()
    admitted, refused = pins.admit({10: report(0), 11: report(1), 66: report(1)}, {10, 11, 66})
    assert set(admitted) == {10}
    assert refused == {n: "partition id 1 claimed by 2 nodes at once" for n in (11, 66)}
    assert 1 not in pins.nodes


def test_sizes_are_checked_against_the_servers_cut_or_the_first_report():
    cut = PartitionPins(sizes=lambda count: [30, 40, 50, 60][:count] if count == 4 else None)
    _, refused = cut.admit({10: report(0, examples=30), 11: report(1, examples=400)}, {10, 11})
    assert refused == {11: "num-examples 400, but partition 1 holds 40"}
    first = PartitionPins()
    first.admit({10: report(0, examples=30)}, {10})
    _, refused = first.admit({10: report(0, examples=31)}, {10})
    assert refused == {10: "num-examples 31, but partition 0 holds 30"}


def test_every_device_must_report_the_k_most_of_the_first_reports_give():
    pins = PartitionPins()
    reports = {10: report(0), 11: report(1), 12: report(2, count=3), 13: report(7)}
    admitted, refused = pins.admit(reports, set(reports))
    assert set(admitted) == {10, 11} and pins.num_partitions == 4
    assert refused == {
        12: "num-partitions 3, but the devices have 4",
        13: "partition-id 7 is not below num-partitions 4",
    }


def test_the_operators_map_refuses_unknown_nodes_and_other_partitions():
    pins = PartitionPins(assigned={10: 0, 11: 1})
    reports = {10: report(0), 11: report(0), 66: report(2)}
    admitted, refused = pins.admit(reports, set(reports))
    assert set(admitted) == {10}
    assert refused == {
        11: "claims partition 0, but node-partitions gives node 11 partition 1",
        66: "claims partition 2, but node-partitions gives node 66 no partition",
    }


def test_a_node_partitions_file_is_read_and_a_bad_one_named(tmp_path):
    good = tmp_path / "pins.json"
    good.write_text(json.dumps({"123": 0, "456": 1}))
    assert read_node_partitions(str(good)) == {123: 0, 456: 1}
    cases = {
        "[1, 2]": "expected an object of node id: partition",
        '{"123": 0, "456": 0}': "a partition is given to two nodes",
        '{"abc": 0}': "bad entry 'abc': 0",
        '{"123": -1}': "bad entry '123': -1",
        "{": "Expecting property name",
    }
    for text, message in cases.items():
        good.write_text(text)
        with pytest.raises(ConfigError, match="node-partitions") as caught:
            read_node_partitions(str(good))
        assert message in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="node-partitions"):
        read_node_partitions(str(tmp_path / "missing.json"))
