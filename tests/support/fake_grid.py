"""The tests' in-process Grid: :class:`server.inprocess.InProcessGrid` that keeps its traffic."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flwr.app import Message
from flwr.clientapp import ClientApp

from server.inprocess import InProcessGrid


class LocalGrid(InProcessGrid):
    """Nodes 1000 + i with partition i; ``sent`` and ``replies`` keep every message."""

    def __init__(
        self, client_app: ClientApp, num_nodes: int, run_config: dict[str, Any] | None = None
    ) -> None:
        super().__init__(client_app, num_nodes, run_config or {})
        self.sent: list[Message] = []
        self.replies: list[Message] = []

    def push_messages(self, messages: Iterable[Message]) -> list[str]:
        messages = list(messages)
        self.sent.extend(messages)
        return list(super().push_messages(messages))

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        replies = list(super().pull_messages(message_ids))
        self.replies.extend(replies)
        return replies
