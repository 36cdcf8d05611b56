"""Run a table's grid of SLR / ADMM pruning runs on image classification.

    python -m classification --table table1 [--profile smoke|paper] [--data-root PATH]
        [--experiment r18_cifar] [--method slr|admm|both] [--seed 0 --seed 1] [--device cuda]
        [--dense-checkpoint dense.pt] [--set pruning.epochs=5] [--out runs/smoke/classification/table1]

Under ``torchrun --nproc_per_node=N -m classification ...`` the runs train in
DistributedDataParallel (gloo on the CPU, nccl on GPUs); ``batch_size`` stays the global batch
and only rank 0 writes results, checkpoints, logs and progress bars.

Each run writes ``<out>/<experiment>/<method>_<rate>x[_<sweep>]_seed<seed>/results.json``;
``figures/tableN.py`` turns them into the table. ``--set`` overrides apply to every selected
experiment (keys as in the config, e.g. ``batch_size=64``, ``data.train_subset=5000``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import exit_on_user_error
from core.harness import entry

from .data import load_data
from .task import ClassificationTask


class ClassificationEntry(entry.TaskEntry):
    name = "classification"
    description = __doc__
    config_dir = Path(__file__).resolve().parent / "configs"
    default_config = "table1"
    data_what = "the table's data sets (cifar10/, imagenet/)"

    def needs_data_root(self, settings: dict[str, Any]) -> bool:
        return settings["data"]["name"] != "digits" and not settings["data"].get("root")

    def load_data(self, settings: dict[str, Any], root: Path | None, out: Path):
        return load_data(settings["data"], root)

    def make_task(self, settings: dict[str, Any], data, device, progress: bool) -> ClassificationTask:
        return ClassificationTask(settings, data, device, progress=progress)

    def report(self, experiment, runs, results) -> None:
        for (name, _), r in zip(runs, results):
            m, metric = r["metrics"], r["primary_metric"]
            print(f"{experiment.name}/{name}: {metric} dense {m['dense'][metric]:.2f}  trained {m['after_training'][metric]:.2f}  "
                  f"hard-pruned {m['after_hard_pruning'][metric]:.2f}  retrained {m['after_retraining'][metric]:.2f}  "
                  f"rate {r['achieved_compression']['pruned_layers']:.2f}x")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    entry.main(ClassificationEntry(), argv)


if __name__ == "__main__":
    main()
