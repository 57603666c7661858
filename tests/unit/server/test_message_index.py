"""The node index answers the Simulation Engine's pick-ups as Flower's LinkState does."""

import time

import pytest
from flwr.app import Message, RecordDict
from flwr.proto.task_pb2 import Task
from flwr.server.superlink.fleet.vce.vce_api import _register_nodes
from flwr.server.superlink.linkstate import LinkStateFactory
from flwr.server.superlink.linkstate.in_memory_linkstate import RunRecord
from flwr.supercore.constant import FLWR_IN_MEMORY_DB_NAME, NOOP_FEDERATION_ID
from flwr.supercore.object_store import ObjectStoreFactory
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity
from flwr.superlink.federation import NoOpFederationManager
from flwr.superlink.grid import InMemoryGrid

from server.message_index import index_by_node


@pytest.fixture(autouse=True)
def task_identity(monkeypatch):
    """The ServerApp's identity, which a simulation sets before its grid pushes."""
    for name, value in {"run_id": 7, "node_id": 1, "task_id": 70}.items():
        monkeypatch.setattr(TaskIdentity, f"_{name}", value)


def grid_with_nodes(num_nodes, indexed):
    """A simulation's grid and its nodes, set up as Flower's ``run_simulation`` does."""
    factory = LinkStateFactory(
        FLWR_IN_MEMORY_DB_NAME, NoOpFederationManager(), ObjectStoreFactory()
    )
    state = factory.state()
    run = Run.create_empty(run_id=7)
    run.primary_task_id, run.federation_id = 70, NOOP_FEDERATION_ID
    state.run_ids[run.run_id] = RunRecord(run=run)
    state.task_store[70] = Task(task_id=70, run_id=run.run_id)
    nodes = sorted(_register_nodes(num_nodes, factory))
    grid = InMemoryGrid(state_factory=factory)
    grid.set_run(run)
    if indexed:
        index_by_node(grid)
    return grid, nodes


def push(grid, nodes, ttl=None):
    messages = [
        Message(RecordDict(), dst_node_id=n, message_type="train", group_id="1", ttl=ttl)
        for n in nodes
    ]
    return list(grid.push_messages(messages))


def pick_up(grid, nodes, limit=1, run_id=None):
    """One pick-up round of the Simulation Engine: each node's next message ids."""
    return [
        [m.metadata.message_id for m in grid.state.get_message_ins(n, limit, run_id=run_id)]
        for n in nodes
    ]


@pytest.mark.parametrize("indexed", [False, True])
def test_each_node_gets_its_messages_in_order_once(indexed):
    grid, nodes = grid_with_nodes(3, indexed)
    first = push(grid, nodes)
    second = push(grid, [nodes[0], nodes[0]])
    assert pick_up(grid, nodes) == [[first[0]], [first[1]], [first[2]]]
    assert pick_up(grid, nodes) == [[second[0]], [], []]
    assert pick_up(grid, nodes[:1], limit=None) == [[second[1]]]
    assert pick_up(grid, nodes) == [[], [], []]
    assert pick_up(grid, nodes[:1], run_id=8) == [[]]


def test_the_index_answers_as_flowers_scan_whatever_the_order():
    answers = []
    for indexed in (False, True):
        grid, nodes = grid_with_nodes(4, indexed)
        sent = [push(grid, nodes), push(grid, nodes[::-1]), push(grid, nodes[1:2])]
        order = {m: (i, j) for i, ids in enumerate(sent) for j, m in enumerate(ids)}
        rounds = [pick_up(grid, nodes[::-1], limit=2), pick_up(grid, nodes), pick_up(grid, nodes)]
        answers.append([[[order[m] for m in ids] for ids in r] for r in rounds])
    assert answers[0] == answers[1]


def test_a_message_whose_reply_was_pulled_is_not_handed_out():
    grid, nodes = grid_with_nodes(2, indexed=True)
    push(grid, nodes)
    grid.state.delete_messages(set(grid.state.message_ins_store))
    assert pick_up(grid, nodes) == [[], []]
    assert not any(grid.state.get_message_ins.__self__.pending.values())


@pytest.mark.parametrize("indexed", [False, True])
def test_an_expired_message_is_deleted_not_handed_out(indexed):
    grid, nodes = grid_with_nodes(2, indexed)
    expired = push(grid, nodes[:1], ttl=0.01)
    time.sleep(0.05)
    assert pick_up(grid, nodes) == [[], []]
    assert expired[0] not in grid.state.message_ins_store
