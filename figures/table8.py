"""Table 8: SLR vs ADMM on ImageNet ResNet-18 at 4.03x, 6.5x and 7.15x (top-5), ours beside the paper's.

    python -m figures.table8 --runs runs/smoke/classification/table8 --out runs/smoke/figures
"""
from __future__ import annotations

from core.errors import exit_on_user_error
from figures.table1 import run_comparison_table


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    run_comparison_table(argv, "table8", "Table 8: SLR vs ADMM on ImageNet, ResNet-18 (top-5 in the paper).")


if __name__ == "__main__":
    main()
