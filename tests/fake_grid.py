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

    def send_and_receive(self, messages: Iterable[Message], *, timeout=None) -> list[Message]:
        messages = list(messages)
        replies = super().send_and_receive(messages, timeout=timeout)
        self.sent.extend(messages)
        self.replies.extend(replies)
        return replies
