"""What ``feel compare`` runs: the grid of cells, schemes, seeds and learning rates.

Defaults, and why (the paper gives no value for any of them):

- ``time_budget_s = 30``: every scheme trains for 30 simulated seconds (rounds of different
  latency then cover the same clock, as in Figs. 4-5); ``rounds = 1000`` only caps a run.
  On digits every gradient scheme but ``online`` passes 90 % within it.
- ``target_accuracy = 0.9``: the test accuracy whose simulated time the table reports.
- ``sweep_learning_rates = (0.025, 0.1)``: half and twice the default eta0 = 0.05. With the
  run config's eta0 they are the grid of base learning rates of *every* scheme, on every seed
  and cell; the table reports each scheme at its own best eta0
  (:func:`cli.compare.table.best_runs`), and the proposed scheme's runs over the grid are Fig. 3.
- ``individual_patiences = (1, 5)``: the stopping rule's sensitivity, individual learning again
  with these patiences besides the run config's (3), at the run config's eta0.
- ``repeats = 2``: two seeds, so the table gives mean ± std (a seed draws another fleet,
  partition, initial model and sampling); the grid (every scheme at 3 eta0, 184 runs) then takes
  about 45 minutes on 2 cores (an estimate: 64 runs took 572 s before the eta0 grid).
- ``clients = (6, 12)`` and ``partitions = ("iid", "shards")``: Table II's K and data cases.
- ``scenario = "cpu"``: the device compute model of Sec. III and the schemes of Sec. VI-C;
  ``"gpu"`` is Sec. VI-D's comparison, Assumption 1 devices against the baselines ``online``,
  ``full`` and ``random`` of Figs. 4-5 (:data:`SCENARIO_SCHEMES`).
- ``decay_batches = (1, 2, 8, 32, 64, 128)``: the batches per device of the Eq. (8) check's
  fixed-batch runs (``gradient-feel-bmax`` at ``fixed-batch``), each with eta ~ sqrt(B) and
  with eta fixed, for ``decay_rounds = 10`` rounds and no time budget, first seed only, their
  training loss measured on ``probe_examples = 512`` training examples
  (:mod:`cli.compare.decay`).
- ``gradient_bits = (32,)``: the paper's float32 gradients; more values (``--gradient-bits
  32 8 1``) add cells that upload gradients encoded to b bits (Sec. III-B).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strategy.schemes import BASELINES, SCHEME_NAMES
from task.config import DEFAULTS
from task.names import LR_SCALINGS
from task.quantize import FULL_PRECISION_BITS

ENGINES = ("inprocess", "flower")
# The scheme whose time to target is the speedup's reference (Table II).
REFERENCE_SCHEME = "individual"
# The scheme of the learning-rate sweep (Fig. 3) and of the allocation plot (Remarks 2-3).
PROPOSED = "proposed"
# The schemes each scenario compares by default: Sec. VI-C's on CPUs, Sec. VI-D's on GPUs.
SCENARIO_SCHEMES = {"cpu": SCHEME_NAMES, "gpu": (PROPOSED, *BASELINES)}
# The loss-decay check's fixed-batch runs (Eq. 8): gradient-FEEL's one step at a given batch,
# planned when gradient-FEEL is compared.
DECAY_SCHEME, DECAY_WITH = "gradient-feel-bmax", "gradient-feel"


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid.

    Attributes
    ----------
    clients, partition, gradient_bits
        The cell: number of devices K, data partition and gradient bits b.
    seed
        Run seed (fleet, partitions, model initialisation, sampling).
    scheme
        Training scheme.
    learning_rate
        Base learning rate eta0 of a sweep run; None for the run config's.
    patience
        Individual learning's patience of a sensitivity run; None for the run config's.
    fixed_batch, lr_scaling
        Batch per device and learning-rate law of a decay run (Eq. 8 check); 0 for the
        other runs.
    """

    clients: int
    partition: str
    seed: int
    scheme: str
    learning_rate: float | None = None
    gradient_bits: int = FULL_PRECISION_BITS
    patience: int | None = None
    fixed_batch: int = 0
    lr_scaling: str = "sqrt"

    @property
    def cell(self) -> str:
        """The cell's name, e.g. ``K6-iid``, or ``K6-iid-b8`` below 32 gradient bits."""
        bits = "" if self.gradient_bits == FULL_PRECISION_BITS else f"-b{self.gradient_bits}"
        return f"K{self.clients}-{self.partition}{bits}"

    @property
    def name(self) -> str:
        """The name in its cell and seed: ``proposed``, ``full-lr0.1``, ``*-b8-fixed``, ..."""
        suffix = "" if self.learning_rate is None else f"-lr{self.learning_rate:g}"
        suffix += "" if self.patience is None else f"-patience{self.patience}"
        if self.fixed_batch:
            suffix += f"-b{self.fixed_batch}-{self.lr_scaling}"
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.scheme) + suffix

    def directory(self, root: Path) -> Path:
        """Return the run's results directory under ``root``."""
        return Path(root) / "runs" / self.cell / f"seed{self.seed}" / self.name


@dataclass(frozen=True)
class CompareSettings:
    """A comparison grid.

    Attributes
    ----------
    schemes
        Schemes to run in every cell.
    scenario
        Device compute model of every run, ``cpu`` or ``gpu`` (the run config's ``scenario``).
    clients, partitions, gradient_bits
        The cells: every K with every partition and every number of gradient bits.
    rounds
        Rounds of every run (a cap when there is a time budget).
    time_budget_s
        Simulated seconds of every run; 0 runs ``rounds`` rounds.
    target_accuracy
        Test accuracy whose simulated time the table reports.
    repeats
        Seeds per run: ``seed``, ``seed + 1``, ...
    seed
        First seed.
    sweep_learning_rates
        Extra base learning rates of every scheme, the grid besides the run config's (Fig. 3).
    individual_patiences
        Patiences of individual learning's sensitivity runs besides the run config's.
    decay_batches, decay_rounds, probe_examples
        Batches per device, rounds and probe-set size of the decay runs (Eq. 8); no
        batches: no decay runs.
    scheme_learning_rates
        Base learning rates of the named schemes, replacing the run config's and the sweep's
        for them (a scheme whose rate law diverges at its batch, e.g. gradient-feel's
        whole-data step).
    run_config
        Further run-config keys of every run (dataset, model, data-dir, ...).
    engine
        ``inprocess`` (the ServerApp and ClientApp in this process) or ``flower`` (each run
        through ``feel simulate``, Flower's Simulation Engine).
    jobs
        Runs at once, each in its own process (1: one after another, in this process).
    """

    schemes: tuple[str, ...] = SCHEME_NAMES
    scenario: str = "cpu"
    clients: tuple[int, ...] = (6, 12)
    partitions: tuple[str, ...] = ("iid", "shards")
    gradient_bits: tuple[int, ...] = (FULL_PRECISION_BITS,)
    rounds: int = 1000
    time_budget_s: float = 30.0
    target_accuracy: float = 0.9
    repeats: int = 2
    seed: int = 0
    sweep_learning_rates: tuple[float, ...] = (0.025, 0.1)
    individual_patiences: tuple[int, ...] = (1, 5)
    decay_batches: tuple[int, ...] = (1, 2, 8, 32, 64, 128)
    decay_rounds: int = 10
    probe_examples: int = 512
    scheme_learning_rates: dict[str, tuple[float, ...]] = field(default_factory=dict)
    run_config: dict[str, Any] = field(default_factory=dict)
    engine: str = "inprocess"
    jobs: int = 1

    def seeds(self) -> list[int]:
        """Return the seeds of the repeats."""
        return [self.seed + i for i in range(self.repeats)]

    def cells(self) -> list[tuple[int, str, int]]:
        """Return the (K, partition, gradient bits) cells in table order."""
        return [
            (k, p, b) for k in self.clients for p in self.partitions for b in self.gradient_bits
        ]

    def learning_rates(self, scheme: str = PROPOSED) -> tuple[float | None, ...]:
        """Return the base learning rates of ``scheme``: the run config's (None), the sweep's.

        Or the scheme's own, from ``scheme_learning_rates``.
        """
        if scheme in self.scheme_learning_rates:
            return self.scheme_learning_rates[scheme]
        return (None, *self.sweep_learning_rates)

    def runs(self) -> list[RunSpec]:
        """Every run: per cell and seed each scheme at each eta0, then the patience runs."""
        patience = self.run_config.get("patience", DEFAULTS["patience"])
        others = [p for p in self.individual_patiences if p != patience]
        patiences = others if REFERENCE_SCHEME in self.schemes else []
        return [
            spec
            for k, partition, bits in self.cells()
            for seed in self.seeds()
            for spec in [
                RunSpec(k, partition, seed, scheme, rate, bits)
                for scheme in self.schemes
                for rate in self.learning_rates(scheme)
            ]
            + [RunSpec(k, partition, seed, REFERENCE_SCHEME, None, bits, p) for p in patiences]
        ] + self.decay_runs()

    def decay_runs(self) -> list[RunSpec]:
        """Return the Eq. (8) check's runs: per cell, law and batch (first seed).

        Planned when gradient-FEEL is compared; they run its one step at a fixed batch.
        """
        if DECAY_WITH not in self.schemes:
            return []
        return [
            RunSpec(k, partition, self.seed, DECAY_SCHEME, None, bits, None, batch, law)
            for k, partition, bits in self.cells()
            for law in LR_SCALINGS
            for batch in self.decay_batches
        ]


# ``--quick``: every scheme in one small cell, a short budget (CI; about two minutes on 2 cores).
QUICK = CompareSettings(
    clients=(4,), partitions=("iid",), time_budget_s=10.0, repeats=1, sweep_learning_rates=(0.1,)
)
