"""``feel pretrain``: train a model centrally on a held-out slice, for a pre-trained start.

Table II starts from a pre-trained DenseNet121. This trains the run config's ``model`` on
``holdout-examples`` training examples that no device holds (:func:`task.partition.holdout_split`),
epoch by epoch with plain SGD, until its test accuracy reaches ``--target-accuracy`` or
``--epochs`` are done, and writes a model file (:mod:`task.model_file`). Runs start from it with
``--initial-model PATH --holdout-examples N``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.errors import UsageError
from task.config import resolve_run_config
from task.errors import ConfigError

EPOCHS = 20
BATCH = 64
LEARNING_RATE = 0.05


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pretrain`` subcommand."""
    parser = subparsers.add_parser(
        "pretrain",
        help="train a model centrally on a held-out slice of the training set; write a model file",
        description=__doc__,
    )
    parser.add_argument("--out", required=True, type=Path, help="model file to write")
    parser.add_argument("--dataset", default="digits", help="dataset (default: digits)")
    parser.add_argument("--data-dir", default="", help="folder of the dataset's files")
    parser.add_argument("--model", default="cnn", help="model (default: cnn)")
    parser.add_argument(
        "--holdout-examples", type=int, required=True, help="training examples to hold out"
    )
    parser.add_argument(
        "--target-accuracy", type=float, default=1.0, help="stop at this test accuracy"
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"most epochs ({EPOCHS})")
    parser.add_argument("--batch-size", type=int, default=BATCH, help=f"mini-batch ({BATCH})")
    parser.add_argument(
        "--learning-rate", type=float, default=LEARNING_RATE, help=f"SGD rate ({LEARNING_RATE})"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of init and shuffling (0)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> dict:
    """Return the run config the model is for; raise UsageError naming a bad option."""
    for option, value, low in (
        ("--epochs", args.epochs, 1),
        ("--batch-size", args.batch_size, 1),
        ("--holdout-examples", args.holdout_examples, 1),
    ):
        if value < low:
            raise UsageError(option, f"must be >= {low}, got {value}")
    if not 0 < args.target_accuracy <= 1:
        raise UsageError("--target-accuracy", f"must be in (0, 1], got {args.target_accuracy}")
    if not args.learning_rate > 0:
        raise UsageError("--learning-rate", f"must be > 0, got {args.learning_rate}")
    keys = ("dataset", "data-dir", "model", "holdout-examples", "seed", "device")
    try:
        return resolve_run_config({key: getattr(args, key.replace("-", "_")) for key in keys})
    except ConfigError as exc:
        raise UsageError(f"--{exc.field}", exc.message) from None


def run(args: argparse.Namespace) -> int:
    """Pre-train, write the model file, print its accuracy and hash."""
    import numpy as np
    import torch
    from torch.nn import functional

    from task.data import load_dataset
    from task.model_file import PretrainedFacts, save_model
    from task.models import build_model
    from task.partition import holdout_split
    from task.training import evaluate, resolve_device

    config = _check(args)
    try:
        data = load_dataset(config["dataset"], config["data-dir"] or None)
        _, held_out = holdout_split(len(data.y_train), config["holdout-examples"])
        device = resolve_device(config["device"])
    except ConfigError as exc:
        raise UsageError(f"--{exc.field}", exc.message) from None
    torch.manual_seed(config["seed"])
    model = build_model(config["model"], data.num_classes, data.in_channels, data.image_size)
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate)
    rng = np.random.default_rng(config["seed"])
    x, y = data.x_train[held_out], data.y_train[held_out]
    loss, accuracy = evaluate(model, data.x_test, data.y_test, device)
    epoch = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True)) as progress:
        bar = progress.add_task(f"pretrain, test accuracy {accuracy:.1%}", total=args.epochs)
        while epoch < args.epochs and accuracy < args.target_accuracy:
            model.train()
            order = rng.permutation(len(x))
            for start in range(0, len(x), args.batch_size):
                batch = order[start : start + args.batch_size]
                optimizer.zero_grad()
                inputs, labels = (torch.tensor(a[batch], device=device) for a in (x, y))
                functional.cross_entropy(model(inputs), labels).backward()
                optimizer.step()
            epoch += 1
            loss, accuracy = evaluate(model, data.x_test, data.y_test, device)
            progress.update(bar, advance=1, description=f"pretrain, test accuracy {accuracy:.1%}")
    facts = PretrainedFacts(
        config["model"], config["dataset"], config["holdout-examples"], epoch, accuracy, loss
    )
    digest = save_model(args.out, {k: v.cpu() for k, v in model.state_dict().items()}, facts)
    print(f"{args.out}: test accuracy {accuracy:.2%} after {epoch} epochs, sha256 {digest}")
    return 0
