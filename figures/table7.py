"""Table 7: SLR vs ADMM on CIFAR-10 ResNet-18 at 1.96x to 8.71x, ours beside the paper's.

    python -m figures.table7 --runs runs/smoke/classification/table7 --out runs/smoke/figures
"""
from __future__ import annotations

from core.errors import exit_on_user_error
from figures.table1 import run_comparison_table


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    run_comparison_table(argv, "table7", "Table 7: SLR vs ADMM on CIFAR-10, ResNet-18 (top-1).")


if __name__ == "__main__":
    main()
