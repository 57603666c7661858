"""What ``feel paper-scale`` runs: a pre-trained start and the grids of Sec. VI at N/K per device.

Sizing, and why (the whole command within 2 hours on a 2-core CPU with ``--jobs 2``, see
docs/performance.md):

- Fashion-MNIST (60,000 + 10,000), the small CNN trained, the latencies DenseNet121's
  (``system-model``): p = 6,956,426 parameters, 32x32x3 training FLOPs per sample.
- ``cycles-per-flop = 0.1`` (10 FLOPs per cycle, what a SIMD core sustains): the proposed
  scheme's batches then span the paper's range up to B^max = 128 and a round's compute and
  its DenseNet121 upload take comparable time. The regime map varies it.
- A pre-trained start: the CNN trained on a held-out slice no device holds, as Table II starts
  from a pre-trained DenseNet121.
- Every run trains for ``epochs_of_budget`` local epochs of the slowest device (Eq. (9) at
  0.7 GHz), in simulated seconds, and is evaluated on the 10,000 test images about
  ``evaluations`` times (``eval-every-s``), at the same simulated times for every scheme.
- ``gradient-chunk = 128`` (B^max): gradient-FEEL's whole-data gradient in chunks of a
  mini-batch, twice as fast on one thread as chunks of 1,024.
- One seed, and one base learning rate per scheme: eta0 = 0.05 (eta = eta0 sqrt(B / 64)),
  gradient-FEEL eta0 = 0.001 (eta = 0.030 at its whole-data batch B ~ 57,000): at 0.05 its
  first step leaves the model at chance (10%), at 0.005 (eta = 0.15) three steps take the
  pre-trained 84.8% down to 67%.
- Individual learning stops a device after ``patience = 1`` epoch without a better training
  loss, so that it can stop within the budget.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.compare.settings import PROPOSED, CompareSettings

# The schemes of Table II, then the baselines of Figs. 4-5.
TABLE_II_SCHEMES = (
    "individual",
    "model-feel",
    "gradient-feel",
    PROPOSED,
    "online",
    "full",
    "random",
)
REGIME_SCHEMES = (PROPOSED, "model-feel", "gradient-feel")
GPU_SCHEMES = (PROPOSED, "online", "full", "random")
# Cycles per FLOP of Table II and of the regime map's columns.
TABLE_CYCLES_PER_FLOP = 0.1
SLOWEST_CPU_HZ = 0.7e9
LEARNING_RATES = {"gradient-feel": (0.001,)}
MODEL_FILE = "pretrained-cnn.pt"


@dataclass(frozen=True)
class Pretraining:
    """``feel pretrain``'s options: the held-out slice and when to stop."""

    holdout_examples: int
    target_accuracy: float
    epochs: int


@dataclass(frozen=True)
class Grid:
    """One ``feel compare`` grid of the plan, in its own subdirectory ``name``."""

    name: str
    purpose: str
    settings: CompareSettings


@dataclass(frozen=True)
class PaperScalePlan:
    """The pre-training and the grids.

    ``targets`` are the test accuracies of every table's times to target and speedups, a low
    and a high one; the grids' own reports use the high one.

    The regime map runs ``gradient_bits`` at :data:`TABLE_CYCLES_PER_FLOP` and 32 and
    ``regime_gradient_bits`` at its other ``cycles_per_flop``.
    """

    pretraining: Pretraining
    targets: tuple[float, ...]
    cycles_per_flop: tuple[float, ...]
    gradient_bits: tuple[int, ...]
    clients: tuple[int, ...]
    partitions: tuple[str, ...]
    gpu_budget_share: float
    regime_gradient_bits: tuple[int, ...] = (1,)
    epochs_of_budget: float = 3.0
    evaluations: int = 8
    table_schemes: tuple[str, ...] = TABLE_II_SCHEMES
    gpu_schemes: tuple[str, ...] = GPU_SCHEMES
    sweep_learning_rates: tuple[float, ...] = (0.025, 0.1)
    run_config: dict[str, Any] = field(default_factory=dict)


FULL = PaperScalePlan(
    pretraining=Pretraining(holdout_examples=3000, target_accuracy=0.84, epochs=10),
    targets=(0.86, 0.88),
    cycles_per_flop=(0.01, 0.03, TABLE_CYCLES_PER_FLOP),
    gradient_bits=(32, 8, 1),
    clients=(6, 12),
    partitions=("iid", "shards"),
    gpu_budget_share=0.25,
)
# ``--quick``: the same grids, small. The devices share 3,000 images (the rest pre-trains
# for one epoch), one cell, four Table II schemes, two epochs; about 3 minutes on 2 cores.
QUICK = dataclasses.replace(
    FULL,
    pretraining=Pretraining(holdout_examples=57_000, target_accuracy=1.0, epochs=1),
    epochs_of_budget=2.0,
    evaluations=1,
    targets=(0.885, 0.89),
    cycles_per_flop=(0.01, TABLE_CYCLES_PER_FLOP),
    gradient_bits=(32, 1),
    clients=(6,),
    partitions=("iid",),
    table_schemes=TABLE_II_SCHEMES[:4],
    gpu_schemes=(PROPOSED, "full"),
    sweep_learning_rates=(0.1,),
)


def run_config(plan: PaperScalePlan, root: Path, data_dir: str) -> dict[str, Any]:
    """Return the run-config keys every run of ``plan`` shares."""
    config = {
        "dataset": "fashion-mnist",
        "system-model": "densenet121",
        "holdout-examples": plan.pretraining.holdout_examples,
        "initial-model": str((Path(root) / MODEL_FILE).resolve()),
        "patience": 1,
        "gradient-chunk": 128,
        **plan.run_config,
    }
    if data_dir:
        config["data-dir"] = str(Path(data_dir).expanduser().resolve())
    return config


def local_epoch_s(config: dict[str, Any], clients: int, cycles_per_flop: float) -> float:
    """Return the simulated seconds of a local epoch of the slowest device (Eq. (9), 0.7 GHz)."""
    from task.config import resolve_run_config
    from task.data import load_dataset
    from task.system_model import charged_workload

    resolved = resolve_run_config(config)
    data = load_dataset(resolved["dataset"], resolved["data-dir"] or None)
    per_device = (len(data.y_train) - resolved["holdout-examples"]) / clients
    flops = charged_workload(resolved).training_flops_per_sample
    return per_device * flops * cycles_per_flop / SLOWEST_CPU_HZ


def _settings(
    plan: PaperScalePlan,
    config: dict[str, Any],
    clients: int,
    cycles_per_flop: float,
    share: float = 1.0,
    **given: Any,
) -> CompareSettings:
    """Return a grid at K = ``clients``: its budget, evaluation grid and shared run config."""
    epoch = local_epoch_s(config, clients, cycles_per_flop)
    budget = round(share * plan.epochs_of_budget * epoch)
    run = {**config, "cycles-per-flop": cycles_per_flop, "eval-every-s": budget / plan.evaluations}
    defaults = {
        "clients": (clients,),
        "time_budget_s": float(budget),
        "repeats": 1,
        "sweep_learning_rates": (),
        "individual_patiences": (),
        "decay_batches": (),
        "scheme_learning_rates": LEARNING_RATES,
        "run_config": run,
    }
    return CompareSettings(**{**defaults, **given})


def grids(plan: PaperScalePlan, config: dict[str, Any]) -> list[Grid]:
    """Return the plan's grids, Table II first; ``config`` is :func:`run_config`'s."""
    table = TABLE_CYCLES_PER_FLOP
    first = plan.clients[0]
    cell = {"partitions": ("iid",), "target_accuracy": plan.targets[-1]}
    out = [
        Grid(
            f"table2-K{k}",
            f"Table II at K = {k}: every scheme, IID and non-IID",
            _settings(
                plan,
                config,
                k,
                table,
                schemes=plan.table_schemes,
                partitions=plan.partitions,
                target_accuracy=plan.targets[-1],
            ),
        )
        for k in plan.clients
    ]
    out.append(
        Grid(
            "bits",
            "gradient bits against 32-bit model parameters",
            _settings(
                plan,
                config,
                first,
                table,
                schemes=(PROPOSED, "gradient-feel"),
                gradient_bits=tuple(b for b in plan.gradient_bits if b != 32),
                **cell,
            ),
        )
    )
    last = plan.clients[-1]
    out.append(
        Grid(
            "lr-sweep",
            f"Fig. 3: the proposed scheme at other base learning rates, K = {last} non-IID",
            _settings(
                plan,
                config,
                last,
                table,
                schemes=(PROPOSED,),
                partitions=(plan.partitions[-1],),
                target_accuracy=plan.targets[-1],
                scheme_learning_rates={PROPOSED: plan.sweep_learning_rates},
            ),
        )
    )
    out.append(
        Grid(
            "gpu",
            "Sec. VI-D: the proposed scheme against the baselines on GPU devices",
            _settings(
                plan,
                config,
                first,
                table,
                plan.gpu_budget_share,
                schemes=plan.gpu_schemes,
                scenario="gpu",
                **cell,
            ),
        )
    )
    for cycles in plan.cycles_per_flop:
        if cycles == table:
            continue
        tag = f"regime-cpf{cycles:g}"
        out += [
            Grid(
                f"{tag}-b32",
                f"regime map at {cycles:g} cycles per FLOP, 32-bit gradients",
                _settings(plan, config, first, cycles, schemes=REGIME_SCHEMES, **cell),
            ),
            Grid(
                f"{tag}-bits",
                f"regime map at {cycles:g} cycles per FLOP, fewer gradient bits",
                _settings(
                    plan,
                    config,
                    first,
                    cycles,
                    schemes=(PROPOSED, "gradient-feel"),
                    gradient_bits=plan.regime_gradient_bits,
                    **cell,
                ),
            ),
        ]
    return out
