"""Per-epoch logs of a run: a CSV file (rewritten whole, so resumed runs stay clean) and TensorBoard."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping

from .distributed import is_main
from .results import atomic_write

__all__ = ["RunLogger"]


class RunLogger:
    """Writes ``log.csv`` and TensorBoard events under ``out_dir``; under torchrun only rank 0
    writes (the other ranks' loggers do nothing)."""

    def __init__(self, out_dir: str | Path, tensorboard: bool = True) -> None:
        self.csv_path = Path(out_dir) / "log.csv"
        self._writer = None
        self._make_writer = None
        self.active = is_main()
        if tensorboard and self.active:
            try:
                from torch.utils.tensorboard import SummaryWriter

                # made at the first log, so a run that fails before its first epoch leaves no events file
                self._make_writer = lambda: SummaryWriter(str(Path(out_dir) / "tensorboard"))
            except ImportError:  # tensorboard is optional for library users
                self._writer = None

    def log(self, rows: list[Mapping[str, Any]], step: int) -> None:
        """Rewrite the CSV with all ``rows``; send the last row's numbers to TensorBoard."""
        if not self.active:
            return
        rows = [_flat(row) for row in rows]
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.csv_path, lambda f: f.write(buffer.getvalue()))
        if self._writer is None and self._make_writer is not None:
            self._writer, self._make_writer = self._make_writer(), None
        if self._writer is not None and rows:
            last = rows[-1]
            for key, value in last.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(f"{last.get('stage', 'run')}/{key}", value, step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _flat(row: Mapping[str, Any]) -> dict[str, Any]:
    """Lift the ``metrics`` mapping into the row; drop other nested values."""
    flat = {k: v for k, v in row.items() if k != "metrics" and not isinstance(v, Mapping)}
    flat.update(row.get("metrics") or {})
    return flat
