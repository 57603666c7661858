"""The message contract between the FEEL strategy and a device's ClientApp (Sec. II-A).

=================  ==============================  ===========================================
message type       server -> device                device -> server
=================  ==============================  ===========================================
``query.profile``  :class:`ProfileQuery`           ``profile``: partition, size, path gain,
                                                   this round's fading, compute profile
``train``          :class:`TrainInstruction`       :class:`TrainReply` with ``grads``, or
                   (batch size, gradient bits)     below 32 bits ``encoded`` and ``encoding``
                                                   (:func:`encoded_records`); and ``buffers``,
                                                   the batch's BN statistics
``train.epoch``    :class:`TrainInstruction`       :class:`TrainReply` with ``arrays``, the
                   (local batch, learning rate,    parameters' change in one local epoch (or
                   model bits)                     the parameters, without model bits), below
                                                   32 bits ``encoded``; and ``buffers``, their
                                                   change (or the buffers)
=================  ==============================  ===========================================

Every train message carries the model to start from (``arrays``) and the device's sampling
cursor, so that a device keeps no state. A model, an update or its encoding is one packed
array in its record (:func:`~task.arrays.array_record`); a record of one array per tensor
reads the same. With ``profile-round`` in it, the reply also carries
the device's ``profile`` for that round (the next), as a ``query.profile`` reply would: a
round then needs one exchange with the devices instead of two. Each train reply names where
the device ran (``placement``), which the server records, bounded (:func:`reply_place`).
Record and metric keys are defined here once.
Below 32 bits a gradient or a model update travels encoded (:mod:`task.codec`): per tensor
its packed levels and its floats, whose bits are the s of Eq. (10); the server decodes them
here.
Decoding a reply raises :class:`ReplyError`, whose message is the reason the device is left
out of the round.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, MessageType, MetricRecord, RecordDict

from task.arrays import array_record, array_views
from task.codec import EncodedTensor, decode
from task.quantize import FULL_PRECISION_BITS

PROFILE_QUERY = "query.profile"
TRAIN_GRADIENT = MessageType.TRAIN
TRAIN_EPOCH = "train.epoch"

# Record keys.
ARRAYS, CONFIG, PROFILE, GRADS, BUFFERS, METRICS = (
    "arrays",
    "config",
    "profile",
    "grads",
    "buffers",
    "metrics",
)
# Records of an encoded update: its arrays, and its bits and tensor shapes.
ENCODED, ENCODING = "encoded", "encoding"
# Suffixes of a tensor's entries in those records, and the config key of the bits.
LEVELS, FLOATS, SHAPE, BITS = "/levels", "/floats", "/shape", "bits"
# Config key of the sampling cursor in a train message.
SAMPLE_CURSOR = "sample-cursor"
# Metric keys of a train reply.
BATCH_SIZE, NUM_EXAMPLES, TRAIN_LOSS, PARTITION_ID = (
    "batch-size",
    "num-examples",
    "train-loss",
    "partition-id",
)
# Record of a train reply naming where the device ran (a Ray node id, or a host name), its
# key, the characters of it that the server keeps, and what it records for none or a bad one.
PLACEMENT, PLACE, PLACE_CHARS, UNKNOWN_PLACE = "placement", "place", 64, "unknown"
# Profile key of the number of partitions K the device's partition id is one of.
NUM_PARTITIONS = "num-partitions"
# Profile keys of every report, and those that must be whole numbers.
PROFILE_NUMBERS = (
    "partition-id",
    NUM_PARTITIONS,
    "num-examples",
    "path-gain",
    "fading-up",
    "fading-down",
)
PROFILE_INTEGERS = ("partition-id", NUM_PARTITIONS, "num-examples")
# The profile key that names the report's compute model.
SCENARIO = "scenario"
# Scheduler field -> profile key of the compute profile, per scenario.
COMPUTE_FIELDS = {
    "cpu": {
        "cpu_hz": "cpu-hz",
        "cycles_per_sample": "cycles-per-sample",
        "update_cycles": "update-cycles",
    },
    "gpu": {
        "latency_floor_s": "latency-floor-s",
        "latency_slope_s": "latency-slope-s",
        "batch_threshold": "batch-threshold",
        "update_s": "update-s",
    },
}


# The update record and the weighing metric of each train message type.
UPDATE_KEYS = {TRAIN_GRADIENT: GRADS, TRAIN_EPOCH: ARRAYS}
WEIGHT_KEYS = {TRAIN_GRADIENT: BATCH_SIZE, TRAIN_EPOCH: NUM_EXAMPLES}


class ReplyError(ValueError):
    """A device's reply that cannot be used; the message is the reason it is excluded."""


@dataclass(frozen=True)
class ProfileQuery:
    """``query.profile``: the round whose profile (and fading sample) the device reports."""

    server_round: int

    def to_record(self) -> RecordDict:
        """Return the message content."""
        return RecordDict({CONFIG: ConfigRecord({"server-round": self.server_round})})

    @classmethod
    def from_record(cls, content: RecordDict) -> ProfileQuery:
        """Read a query's content."""
        return cls(int(content[CONFIG]["server-round"]))


def profile_reply_record(report: Mapping[str, Any]) -> RecordDict:
    """Return the content of a device's reply to ``query.profile`` with ``report``'s fields.

    The fields as the device has them, sound or not (an injected fault corrupts them).
    """
    return RecordDict({PROFILE: ConfigRecord(dict(report))})


@dataclass(frozen=True)
class ProfileReport:
    """A decoded profile report: what the scheduler needs of one device this round.

    Attributes
    ----------
    partition_id, num_examples
        The device's partition and its size N_k.
    scenario
        The compute model the device reports for (as sent; the strategy checks it).
    path_gain
        Large-scale path gain of the device's link (Sec. VI-A).
    fading_up, fading_down
        This round's Rayleigh fading powers |h|^2 of the uplink and the downlink.
    compute
        The scenario's compute fields by profile key (:data:`COMPUTE_FIELDS`).
    num_partitions
        The number of partitions K the device's partition is one of (its node config).
    """

    partition_id: int
    num_examples: int
    scenario: Any
    path_gain: float
    fading_up: float
    fading_down: float
    compute: dict[str, float]
    num_partitions: int

    def fields(self) -> dict[str, Any]:
        """Return the report's fields by profile key."""
        return {
            PARTITION_ID: self.partition_id,
            NUM_PARTITIONS: self.num_partitions,
            NUM_EXAMPLES: self.num_examples,
            SCENARIO: self.scenario,
            "path-gain": self.path_gain,
            "fading-up": self.fading_up,
            "fading-down": self.fading_down,
            **self.compute,
        }

    def to_record(self) -> RecordDict:
        """Return the content of the reply that carries this report."""
        return profile_reply_record(self.fields())

    @classmethod
    def from_fields(cls, report: Mapping[str, Any], scenario: str) -> ProfileReport:
        """Read a report of a run in ``scenario``.

        Every number must be present, finite and non-negative, and ids and dataset sizes
        whole; a key that is none of these or ``scenario`` is refused (a device cannot send
        what the checks do not see).

        Raises
        ------
        ReplyError
            Naming the first bad key and its value, or the first unknown key.
        """
        numbers = (*PROFILE_NUMBERS, *COMPUTE_FIELDS[scenario].values())
        for key in numbers:
            if key not in report:
                raise ReplyError(f"profile lacks {key!r}")
            value = report[key]
            if not is_number(value):
                raise ReplyError(f"profile {key!r} is not a number: {value!r}")
            if not math.isfinite(value):
                raise ReplyError(f"profile {key!r} is not finite: {value!r}")
            if value < 0:
                raise ReplyError(f"profile {key!r} is negative: {value!r}")
            if key in PROFILE_INTEGERS and value != int(value):
                raise ReplyError(f"profile {key!r} is not a whole number: {value!r}")
        known_keys(report, (*numbers, SCENARIO), PROFILE)
        return cls(
            int(report[PARTITION_ID]),
            int(report[NUM_EXAMPLES]),
            report.get(SCENARIO),
            float(report["path-gain"]),
            float(report["fading-up"]),
            float(report["fading-down"]),
            {key: float(report[key]) for key in COMPUTE_FIELDS[scenario].values()},
            int(report[NUM_PARTITIONS]),
        )

    @classmethod
    def from_record(cls, content: RecordDict, scenario: str) -> ProfileReport:
        """Decode a ``query.profile`` reply of a run in ``scenario`` (:meth:`from_fields`)."""
        return cls.from_fields(profile_fields(content), scenario)


def profile_fields(content: RecordDict) -> dict[str, Any]:
    """Return the profile fields of a reply as sent (none if it carries no report)."""
    return dict(content.config_records.get(PROFILE, {}))


def check_query_reply(content: RecordDict) -> None:
    """Raise unless a reply to ``query.profile`` holds its ``profile`` record and nothing else.

    Raises
    ------
    ReplyError
        Naming the first record other than ``profile``.
    """
    known_keys(content, (PROFILE,), "query reply")


@dataclass(frozen=True)
class TrainInstruction:
    """The config of a train message: a gradient step, or a local epoch with ``local_batch``.

    Attributes
    ----------
    server_round
        The round, which keys the device's random draws.
    sample_cursor
        Examples the device has consumed so far.
    batch_size, gradient_bits
        ``train``: the assigned B_k and the bits per gradient element b.
    local_batch, learning_rate, model_bits
        ``train.epoch``: the local mini-batch size, learning rate and the bits per element
        of the upload, the model's change from the one sent; without bits the device sends
        the model itself (individual learning's bookkeeping).
    profile_round
        The round whose profile the reply should carry too (none: no profile).
    """

    server_round: int
    sample_cursor: int = 0
    batch_size: int | None = None
    gradient_bits: int | None = None
    local_batch: int | None = None
    learning_rate: float | None = None
    model_bits: int | None = None
    profile_round: int | None = None

    def config(self) -> dict[str, int | float]:
        """Return the fields that are set, with kebab-case keys."""
        return {k.replace("_", "-"): v for k, v in asdict(self).items() if v is not None}

    def to_record(self, arrays: ArrayRecord, shared: Mapping[str, Any] = ()) -> RecordDict:
        """Return the message content: ``arrays`` and the ``shared`` config plus this one's."""
        return RecordDict({ARRAYS: arrays, CONFIG: ConfigRecord({**dict(shared), **self.config()})})

    @classmethod
    def from_record(cls, content: RecordDict) -> TrainInstruction:
        """Read the instruction of a train message's config (other keys are ignored)."""
        config = content[CONFIG]
        fields = {name: config.get(name.replace("_", "-")) for name in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in fields.items() if v is not None})


def encoded_records(encoded: Mapping[str, EncodedTensor]) -> dict[str, Any]:
    """Return the ``encoded`` and ``encoding`` records of an update encoded below 32 bits."""
    arrays = {}
    config: dict[str, Any] = {BITS: next(iter(encoded.values())).bits if encoded else 0}
    for name, tensor in encoded.items():
        arrays[name + LEVELS], arrays[name + FLOATS] = tensor.packed, tensor.floats
        config[name + SHAPE] = list(tensor.shape)
    return {ENCODED: array_record(arrays), ENCODING: ConfigRecord(config)}


def train_reply_record(
    message_type: str,
    update: Mapping[str, np.ndarray] | Mapping[str, EncodedTensor],
    metrics: Mapping[str, Any],
    buffers: Mapping[str, np.ndarray] | None = None,
    profile: Mapping[str, Any] | None = None,
    place: str | None = None,
) -> RecordDict:
    """Return the content of a device's reply to a train message of ``message_type``.

    ``update`` holds plain arrays, or :class:`~task.codec.EncodedTensor` values (an update
    sent below 32 bits), which go into :func:`encoded_records`; ``profile`` is the report
    asked for with ``profile-round``, ``place`` names where the device ran.
    """
    encoded = any(isinstance(value, EncodedTensor) for value in update.values())
    content = (
        encoded_records(update) if encoded else {UPDATE_KEYS[message_type]: array_record(update)}
    )
    if buffers is not None:
        content[BUFFERS] = array_record(buffers)
    content[METRICS] = MetricRecord(dict(metrics))
    if profile is not None:
        content[PROFILE] = ConfigRecord(dict(profile))
    if place is not None:
        content[PLACEMENT] = ConfigRecord({PLACE: place})
    return RecordDict(content)


def reply_place(content: RecordDict) -> str:
    """Return where a reply says its device ran: up to ``PLACE_CHARS`` printable characters.

    A device is not trusted: anything but a non-empty printable string is ``UNKNOWN_PLACE``.
    """
    record = content.get(PLACEMENT)
    place = record.get(PLACE) if isinstance(record, ConfigRecord) else None
    if not isinstance(place, str):
        return UNKNOWN_PLACE
    place = place[:PLACE_CHARS]
    return place if place and place.isprintable() else UNKNOWN_PLACE


@dataclass(frozen=True)
class TrainReply:
    """A decoded train reply.

    Attributes
    ----------
    update
        The gradient, or the local model's parameters or their change, as read-only arrays
        (decoded when sent encoded).
    buffers
        A gradient reply's batch BatchNorm statistics (:mod:`task.batchnorm`), a model
        reply's buffers or their change; empty when not sent.
    weight
        The reported batch size (or local dataset size).
    train_loss
        The training loss.
    bits
        Bits per element the update was sent with (32: plain float32).
    place
        Where the device says it ran (:func:`reply_place`).
    """

    update: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    weight: float
    train_loss: float
    bits: int = FULL_PRECISION_BITS
    place: str = UNKNOWN_PLACE

    @classmethod
    def from_record(cls, content: RecordDict, message_type: str) -> TrainReply:
        """Decode the reply to a train message of ``message_type``.

        Its records must be its own (:func:`_check_records`), and its metrics and placement
        hold only their own keys: the weight, ``train-loss`` and ``partition-id``, and
        ``place``.

        Raises
        ------
        ReplyError
            Saying what is missing, unknown, of the wrong kind, not a finite number or not
            decodable.
        """
        _check_records(content, message_type)
        metrics = _record(content, METRICS, MetricRecord)
        known_keys(metrics, (WEIGHT_KEYS[message_type], TRAIN_LOSS, PARTITION_ID), METRICS)
        if PLACEMENT in content:
            known_keys(content[PLACEMENT], (PLACE,), PLACEMENT)
        weight = _metric(metrics, WEIGHT_KEYS[message_type])
        loss = _metric(metrics, TRAIN_LOSS)
        key, bits = UPDATE_KEYS[message_type], FULL_PRECISION_BITS
        if ENCODED in content or ENCODING in content:
            update, bits = decoded_update(content)
        else:
            update = _decoded(_record(content, key, ArrayRecord), key)
        has_buffers = BUFFERS in content
        buffers = _decoded(_record(content, BUFFERS, ArrayRecord), BUFFERS) if has_buffers else {}
        return cls(update, buffers, weight, float(loss), bits, reply_place(content))


def _check_records(content: RecordDict, message_type: str) -> None:
    """Raise unless a train reply holds only its own records, and one kind of update."""
    update = UPDATE_KEYS[message_type]
    if extra := sorted(
        set(content) - {update, ENCODED, ENCODING, BUFFERS, METRICS, PROFILE, PLACEMENT}
    ):
        raise ReplyError(f"reply has unexpected records {extra}")
    if update in content and (ENCODED in content or ENCODING in content):
        raise ReplyError(f"reply has both {update!r} and {ENCODED!r}")


def known_keys(record: Mapping[str, Any], known: Collection[str], what: str) -> None:
    """Raise unless every key of ``record`` (the ``what`` of a reply) is one of ``known``.

    Raises
    ------
    ReplyError
        Naming the first unknown key (in sorted order).
    """
    if unknown := sorted(set(record) - set(known)):
        raise ReplyError(f"{what} has unknown key {unknown[0]!r}")


def _record(content: RecordDict, key: str, kind: type) -> Any:
    """Return ``content[key]`` if it is a record of type ``kind``."""
    if key not in content:
        raise ReplyError(f"reply lacks {key!r}")
    record = content[key]
    if not isinstance(record, kind):
        raise ReplyError(f"reply {key!r} is a {type(record).__name__}, not a {kind.__name__}")
    return record


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _metric(metrics: MetricRecord, key: str) -> float:
    """Return metric ``key``: present, a number and finite."""
    if key not in metrics:
        raise ReplyError(f"metrics lack {key!r}")
    value = metrics[key]
    if not is_number(value) or not math.isfinite(value):
        raise ReplyError(f"metric {key!r} is not a finite number: {value!r}")
    return value


def _decoded(record: ArrayRecord, what: str) -> dict[str, np.ndarray]:
    """Return the tensors of ``record`` (packed or not); raise if one does not decode."""
    arrays: dict[str, np.ndarray] = {}
    for name, array in record.items():
        try:
            views = array_views(name, array)
        except (ValueError, TypeError) as exc:
            raise ReplyError(f"{what} {name!r} does not decode: {exc}") from None
        if not views.keys().isdisjoint(arrays):
            raise ReplyError(f"{what} gives {sorted(views.keys() & arrays)[0]!r} twice")
        arrays.update(views)
    return arrays


def decoded_update(content: RecordDict) -> tuple[dict[str, np.ndarray], int]:
    """Decode the ``encoded`` update of a reply (:func:`encoded_records`); return it and b.

    Raises
    ------
    ReplyError
        If a record is missing, ``encoding`` holds a key other than ``bits`` and the shapes,
        a tensor lacks a part, or a part does not fit its shape.
    """
    arrays = _decoded(_record(content, ENCODED, ArrayRecord), ENCODED)
    config = _record(content, ENCODING, ConfigRecord)
    bits = config.get(BITS)
    if not isinstance(bits, int) or isinstance(bits, bool):
        raise ReplyError(f"{ENCODING} {BITS!r} is not an integer: {bits!r}")
    shapes = [key for key in config if key.endswith(SHAPE)]
    known_keys(config, (BITS, *shapes), ENCODING)
    names = [key.removesuffix(SHAPE) for key in shapes]
    update = {}
    for name in names:
        if name + LEVELS not in arrays or name + FLOATS not in arrays:
            raise ReplyError(f"{ENCODED} lacks the levels or floats of {name!r}")
        shape = tuple(int(n) for n in config[name + SHAPE])
        tensor = EncodedTensor(bits, shape, arrays[name + LEVELS], arrays[name + FLOATS])
        try:
            tensor.check()
        except ValueError as exc:
            raise ReplyError(f"{ENCODED} {name!r} does not decode: {exc}") from None
        update[name] = decode(tensor)
        update[name].flags.writeable = False
    if len(arrays) != 2 * len(names):
        raise ReplyError(f"{ENCODED} holds arrays without a shape in {ENCODING}")
    return update, bits
