"""Which pulled replies the strategy files under which node (`strategy.exchange.reply_sources`)."""

from types import SimpleNamespace

import pytest

from strategy.exchange import reply_sources

pytestmark = pytest.mark.security


def sent(message_id, node):
    return SimpleNamespace(metadata=SimpleNamespace(message_id=message_id, dst_node_id=node))


def reply(answers, source, error=False):
    metadata = SimpleNamespace(reply_to_message_id=answers, src_node_id=source)
    return SimpleNamespace(metadata=metadata, has_error=lambda: error)


def test_replies_are_filed_under_the_node_they_answer_for_and_forgeries_are_dropped():
    messages = [sent("m1", 1001), sent("m2", 1002), sent("m3", 1003)]
    honest = reply("m1", 1001)
    unavailable = reply("m2", 1, error=True)  # the SuperLink's own error for a silent node
    replies = [
        honest,
        unavailable,
        reply("m3", 1),  # a device's made-up message, filed by the SuperLink as from node 1
        reply("m3", 1001),  # node 1001 answering in node 1003's name
        reply("not-sent", 1001),  # an answer to nothing the strategy sent
    ]
    assert reply_sources(messages, replies) == {1001: honest, 1002: unavailable}
