"""The message indexes answer the Simulation Engine's pick-ups and the ServerApp's pulls
as Flower's LinkState does."""

import threading
import time
import uuid

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

from server.message_index import index_messages


@pytest.fixture(autouse=True)
def task_identity(monkeypatch):
    """The ServerApp's identity, which a simulation sets before its grid pushes."""
    for name, value in {"run_id": 7, "node_id": 1, "task_id": 70}.items():
        monkeypatch.setattr(TaskIdentity, f"_{name}", value)


def grid_with_nodes(num_nodes, indexed, wake_timeout_s=0.0, full_pull_s=60.0):
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
        index_messages(grid, wake_timeout_s, full_pull_s)
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


def timed_pick_up(grid, nodes):
    """Start one pick-up round in a thread; return a function giving (ids, seconds taken)."""
    result = {}

    def run():
        start = time.monotonic()
        result["ids"] = pick_up(grid, nodes)
        result["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=run)
    thread.start()

    def join():
        thread.join()
        return result["ids"], result["seconds"]

    return join


def test_an_idle_pick_up_round_hands_out_a_push_as_soon_as_it_is_in():
    grid, nodes = grid_with_nodes(3, indexed=True, wake_timeout_s=30.0)
    join = timed_pick_up(grid, nodes)
    time.sleep(0.2)
    sent = push(grid, nodes)
    ids, seconds = join()
    assert ids == [[m] for m in sent]
    assert 0.2 <= seconds < 10.0


def test_an_idle_pick_up_round_waits_once_for_the_timeout_at_most():
    grid, nodes = grid_with_nodes(3, indexed=True, wake_timeout_s=0.3)
    ids, seconds = timed_pick_up(grid, nodes)()
    assert ids == [[], [], []]
    assert 0.3 <= seconds < 0.6  # one wait, at the first node, not one per node


def test_a_pick_up_round_with_a_message_waiting_does_not_wait():
    grid, nodes = grid_with_nodes(2, indexed=True, wake_timeout_s=30.0)
    sent = push(grid, [nodes[1], nodes[1]])
    assert pick_up(grid, nodes) == [[], [sent[0]]]
    ids, seconds = timed_pick_up(grid, nodes)()
    assert ids == [[], [sent[1]]]
    assert seconds < 10.0


def reply_to_all(grid, nodes):
    """Hand each node its next message and store a reply, as the engine's threads do."""
    for node in nodes:
        for message in grid.state.get_message_ins(node, 1):
            reply = Message(RecordDict(), reply_to=message)
            reply.metadata.__dict__["_message_id"] = str(uuid.uuid4())
            grid.state.store_message_res(reply)


@pytest.mark.parametrize("indexed", [False, True])
def test_a_pull_returns_the_replies_stored_so_far(indexed):
    grid, nodes = grid_with_nodes(3, indexed)
    sent = push(grid, nodes)
    assert list(grid.pull_messages(sent)) == []
    reply_to_all(grid, nodes[:2])
    replies = list(grid.pull_messages(sent))
    assert sorted(r.metadata.reply_to_message_id for r in replies) == sorted(sent[:2])
    assert list(grid.pull_messages(sent[2:])) == []
    reply_to_all(grid, nodes[2:])
    assert [r.metadata.reply_to_message_id for r in grid.pull_messages(sent[2:])] == [sent[2]]


def test_the_errors_the_state_makes_come_back_at_the_next_full_pull():
    grid, nodes = grid_with_nodes(1, indexed=True, full_pull_s=0.3)
    sent = push(grid, nodes, ttl=0.01)
    time.sleep(0.05)
    assert list(grid.pull_messages(sent)) == []  # no reply stored: the state is not asked
    time.sleep(0.3)
    (error,) = grid.pull_messages(sent)
    assert error.has_error() and error.metadata.reply_to_message_id == sent[0]
