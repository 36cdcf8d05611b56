"""Table 6: SLR on CIFAR-10 ResNet-18 at 1.96x for M in {100, 200, 300} and r in {0.05, 0.1, 0.2},
ours beside the paper's.

    python -m figures.table6 --runs runs/smoke/classification/table6 --out runs/smoke/figures
"""
from __future__ import annotations

from core.errors import exit_on_user_error
from figures.table5 import run_ablation_table


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    run_ablation_table(argv, "table6", ("M", "r"), "Table 6: SLR on ResNet-18 with different M and r.")


if __name__ == "__main__":
    main()
