"""Turn the devices' profile reports into the scheduler's instance (Sec. II-C, Sec. III-B)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from scheduler.channel import ChannelParams, average_rate_bps, instantaneous_rate_bps
from scheduler.instance import EFFECTIVE_CAPACITANCE, GPU_POWER_W
from task.protocol import COMPUTE_FIELDS, ProfileReport
from task.system_model import Workload


@dataclass(frozen=True)
class ProfileBounds:
    """Plausibility bounds on the devices' profile reports (the run config's defaults).

    The compute bounds are on the FLOPs a report claims per cycle or per second: of the
    model's training FLOPs per sample and update FLOPs (the settings' ``workload``).

    Attributes
    ----------
    max_cpu_hz
        Fastest CPU clock f_k^C (Table I's fleet: 0.7 to 2.1 GHz).
    min_distance_m
        Nearest distance to the base station: the path gain may not exceed Table I's
        path loss there (:func:`scheduler.channel.path_gain`).
    max_distance_m
        Farthest distance: the path gain may not fall below Table I's there.
    max_fading
        Largest fading power |h|^2 of a sample (Exp(1) in Eqs. (5)-(6)).
    min_gpu_floor_s
        Shortest GPU latency floor t_k^l of Eq. (27); its batch threshold B_k^th may not
        exceed the instance's B^max.
    max_flops_per_cycle
        Most FLOPs a CPU does per cycle, in training (C of Eq. (9)) and in the update (M^C of
        Eq. (12)): 1024 is the peak of 16 AVX-512 cores with two FMA units each (the fleet
        does 1 at ``cycles-per-flop`` 1, 100 at the paper-scale runs' 0.01; a measured
        single-thread step of the digits CNN 5.4).
    max_gpu_flops
        Most FLOP/s a GPU sustains on any batch of Eq. (27) and in the update of Eq. (28):
        1e15, above an H100's or H200's dense FP16 peak (the fleet's GPUs do 1e12 to 3e12).
    min_flops
        Fewest FLOP/s a device of either kind trains or updates at: 1e7, 70 times below
        the slowest CPU of Sec. VI-B at one cycle per FLOP, 0.7 GHz.
    """

    max_cpu_hz: float = 3e9
    min_distance_m: float = 10.0
    max_distance_m: float = 2000.0
    max_fading: float = 50.0
    min_gpu_floor_s: float = 1e-4
    max_flops_per_cycle: float = 1024.0
    max_gpu_flops: float = 1e15
    min_flops: float = 1e7


@dataclass(frozen=True)
class InstanceSettings:
    """What the server knows about a round besides the devices' reports.

    Attributes
    ----------
    scenario
        ``"cpu"`` or ``"gpu"``.
    gradient_size_bits
        Size s in bits of one upload and one download (Sec. III-B, Eqs. 10-11): the encoded
        gradient at gradient-bits, or for the model-based schemes the encoded model at
        model-bits (:func:`task.codec.encoded_bits`; b * p at 32 bits).
    frame_s
        Uplink and downlink TDMA frame lengths T_f^U = T_f^D.
    min_batch, max_batch
        Batch-size bounds of constraint (17e).
    channel
        Table I channel parameters.
    fading
        Use this round's fading sample (instantaneous rate) instead of the average rate of
        Eq. (5)/(6).
    bounds
        Plausibility bounds on the reports (:func:`strategy.validation.check_profile`).
    workload
        The FLOPs the latency model charges per sample and per update
        (:func:`task.system_model.charged_workload`), which the compute bounds scale with;
        None (an instance without a model) leaves the compute fields unbounded.
    effective_capacitance, gpu_power_w, idle_power_w
        The devices' computation and idle-listening energy (:mod:`scheduler.energy`); they
        transmit at the channel's power.
    """

    scenario: str
    gradient_size_bits: float
    frame_s: float = 0.01
    min_batch: int = 1
    max_batch: int = 128
    channel: ChannelParams = field(default_factory=ChannelParams)
    fading: bool = False
    bounds: ProfileBounds = field(default_factory=ProfileBounds)
    workload: Workload | None = None
    effective_capacitance: float = EFFECTIVE_CAPACITANCE
    gpu_power_w: float = GPU_POWER_W
    idle_power_w: float = 0.0


def link_rates(report: ProfileReport, settings: InstanceSettings) -> tuple[float, float]:
    """Uplink and downlink rates R_k^U, R_k^D in bit/s of one device.

    Eq. (5)/(6) from the large-scale path gain, or W log2(1 + SNR |h|^2) with the reported
    fading sample when ``settings.fading``.
    """
    if settings.fading:
        up = instantaneous_rate_bps(report.path_gain, report.fading_up, settings.channel)
        down = instantaneous_rate_bps(report.path_gain, report.fading_down, settings.channel)
        return float(up), float(down)
    rate = float(average_rate_bps(report.path_gain, settings.channel))
    return rate, rate


def device_entry(report: ProfileReport, settings: InstanceSettings) -> dict[str, float]:
    """One device of the instance: its link rates and its compute profile.

    Raises
    ------
    ValueError
        If the report is for another scenario.
    """
    if report.scenario != settings.scenario:
        raise ValueError(
            f"partition {report.partition_id}: profile scenario {report.scenario!r} "
            f"but the run uses {settings.scenario!r}"
        )
    up, down = link_rates(report, settings)
    fields = COMPUTE_FIELDS[settings.scenario]
    compute = {name: report.compute[key] for name, key in fields.items()}
    return {"uplink_rate_bps": up, "downlink_rate_bps": down, **compute}


def build_instance(reports: Sequence[ProfileReport], settings: InstanceSettings) -> dict:
    """Return the scheduler's JSON instance for ``reports``, devices in the given order."""
    return {
        "scenario": settings.scenario,
        "gradient_bits": settings.gradient_size_bits,
        "uplink_frame_s": settings.frame_s,
        "downlink_frame_s": settings.frame_s,
        "min_batch": settings.min_batch,
        "max_batch": settings.max_batch,
        "uplink_power_w": settings.channel.tx_power_w,
        "effective_capacitance": settings.effective_capacitance,
        "gpu_power_w": settings.gpu_power_w,
        "idle_power_w": settings.idle_power_w,
        "devices": [device_entry(r, settings) for r in reports],
    }
