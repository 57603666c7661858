"""Step 4 of a round: the train replies decoded, checked and kept or left out."""

from __future__ import annotations

from collections import Counter

from flwr.app import Message

from strategy.deadlines import TIMED_OUT
from strategy.rounds import DeviceUpdate, RoundPlan
from strategy.validation import check_update, error_summary, exclude
from task.protocol import ReplyError, TrainReply


def usable_updates(
    plan: RoundPlan,
    replies: dict[int, Message],
    message_type: str,
    bits: int,
    missing: str = TIMED_OUT,
) -> tuple[list[DeviceUpdate], dict[str, str]]:
    """Decode and check the replies to ``plan``'s train messages (of ``message_type``).

    Each update must come at the ``bits`` per element the devices were told to send; a
    device without a reply is left out for ``missing``.

    Returns the usable updates in partition-id order and, for every other device (at the
    profile query too), its partition id and why it was left out: no reply at all, an error
    reply, a reply that does not decode or fails :func:`~strategy.validation.check_update`,
    or a split of the model between update and buffers unlike the other devices'.
    """
    updates: list[DeviceUpdate] = []
    excluded = dict(plan.excluded)
    for node_id, assigned in zip(plan.node_ids, plan.allocation.batch_sizes, strict=True):
        pid, reply = plan.partition_of(node_id), replies.get(node_id)
        try:
            if reply is None:
                raise ReplyError(missing)
            if reply.has_error():
                raise ReplyError(f"error: {error_summary(reply.error.reason)}")
            decoded = TrainReply.from_record(reply.content, message_type)
            check_update(decoded, plan.model, int(assigned), message_type)
            if decoded.bits != bits:
                raise ReplyError(f"sent {decoded.bits} bits per element, but {bits} were asked")
        except ReplyError as exc:
            exclude(excluded, str(pid), node_id, str(exc))
            continue
        weight, loss = int(decoded.weight), decoded.train_loss
        updates.append(
            DeviceUpdate(node_id, pid, weight, loss, decoded.update, decoded.buffers, decoded.place)
        )
    layouts = Counter(frozenset(u.arrays) for u in updates)
    common = layouts.most_common(1)[0][0] if updates else frozenset()
    for u in updates:
        if frozenset(u.arrays) != common:
            reason = "splits the model unlike the other devices"
            exclude(excluded, str(u.partition_id), u.node_id, reason)
    updates = [u for u in updates if frozenset(u.arrays) == common]
    # Partition ids in numeric order: the profile replies come in any order.
    return updates, dict(sorted(excluded.items(), key=lambda item: (len(item[0]), item[0])))
