"""Record, and compare against, the reproducible part of every results file of a demo run.

A structural change proves itself by identical results: record before, run the same command
after, compare. The reproducible part is the results file without its run-specific keys
(``core.harness.results.reproducible_part``: wall times and the code version). Files are matched
by what they are runs of (task, model, method, rate, seed, sweep point; :func:`run_key`), not by
their folders, and paths under the runs folder are written relative to it, so two layouts compare.

    make demo RUNS=runs/before && python benchmarks/smoke_fingerprint.py record runs/before -o before.json.gz
    make demo RUNS=runs/after  && python benchmarks/smoke_fingerprint.py compare runs/after before.json.gz [--ignore config]

``compare`` prints, for each results file, the top-level keys whose values differ (and the first
differing entry of each), and exits 1 when any value outside ``--ignore`` differs.
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.harness.results import read_results, reproducible_part  # noqa: E402


def _relative(value: Any, root: str) -> Any:
    if isinstance(value, str):
        return value.replace(root, "<RUNS>")
    if isinstance(value, dict):
        return {k: _relative(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v, root) for v in value]
    return value


def run_key(results: dict[str, Any], relative: Path) -> str:
    """What a results file is a run of, whatever folder layout wrote it: the task folder (and for
    classification the table and experiment folders), model, method, rate, seed and sweep point."""
    parts = relative.parts
    where = "/".join(parts[-5:-2]) if results["task"] == "classification" else results["task"]  # classification/<table>/<experiment>
    sweep = ((results.get("config") or {}).get("recipe") or {}).get("extra", {}).get("sweep") or {}
    point = "_".join(f"{k}-{v}" for k, v in sorted(sweep.items()))
    return f"{where}|{results['model']}|{results['method']}|{results['target_compression']}|seed{results['seed']}|{point}"


def fingerprint(runs: Path) -> dict[str, Any]:
    """``run key -> reproducible part`` of every results.json under ``runs`` (:func:`run_key`)."""
    root, prints = str(runs.resolve()), {}
    for path in sorted(runs.rglob("results.json")):
        results = read_results(path)
        key = run_key(results, path.relative_to(runs))
        if key in prints:
            raise SystemExit(f"two results files are runs of {key}; the fingerprint cannot tell them apart")
        prints[key] = _relative(reproducible_part(results), root)
    return prints


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where ``a`` and ``b`` first differ, e.g. ``history[3].loss: 0.52 != 0.53``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{where}.{key}: only in {'before' if key in a else 'after'}"
            found = first_difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} entries != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} != {b!r}"


def compare(before: dict[str, Any], after: dict[str, Any], ignore: list[str]) -> int:
    """Print the differences; the number of results files whose compared values differ."""
    differing = 0
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            print(f"{name}: only {'before' if name in before else 'after'}")
            differing += 1
            continue
        keys = sorted(k for k in set(before[name]) | set(after[name]) if before[name].get(k) != after[name].get(k))
        counted = [k for k in keys if k not in ignore]
        if keys:
            print(f"{name}: differs in {', '.join(keys)}" + (" (ignored)" if not counted else ""))
            for key in keys:
                print(f"    {first_difference(before[name].get(key), after[name].get(key), key)}")
        differing += bool(counted)
    print(f"{len(before)} results files before, {len(after)} after; {differing} differ outside {ignore or 'nothing'}")
    return differing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="write the fingerprint of a runs folder")
    rec.add_argument("runs", type=Path)
    rec.add_argument("-o", "--output", type=Path, required=True)
    cmp_ = sub.add_parser("compare", help="compare a runs folder with a recorded fingerprint")
    cmp_.add_argument("runs", type=Path)
    cmp_.add_argument("recorded", type=Path)
    cmp_.add_argument("--ignore", action="append", default=[], help="a top-level key whose differences do not count (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "record":
        prints = fingerprint(args.runs)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(prints, indent=1, sort_keys=True) + "\n"
        if args.output.suffix == ".gz":
            args.output.write_bytes(gzip.compress(text.encode(), mtime=0))
        else:
            args.output.write_text(text)
        print(f"{len(prints)} results files recorded in {args.output}")
        return 0
    raw = args.recorded.read_bytes()
    recorded = json.loads(gzip.decompress(raw) if args.recorded.suffix == ".gz" else raw)
    return 1 if compare(recorded, fingerprint(args.runs), args.ignore) else 0


if __name__ == "__main__":
    raise SystemExit(main())
