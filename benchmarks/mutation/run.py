"""Mutation testing of the core math with mutmut: the score and the surviving mutants.

Mutates the six modules that hold SLR's and ADMM's math (``MODULES``) and runs each mutant
against the tests of ``TESTS`` that call the mutated function (mutmut records which tests
reach which function in a first clean run). A benchmark, not a test: about 20 minutes on 2 cores.

It works in a scratch folder (default ``build/mutation``, emptied first), which holds a copy of
``core`` with the decorators mutmut skips rewritten away (see ``undecorate.py``), the test
files, and the mutmut settings. The score counts a mutant as caught when a test failed, timed
out or crashed on it; mutants listed in ``equivalent.yaml`` (they cannot change behaviour) are
left out of it. Exits 1 when the score is below ``--min-score``.

    python benchmarks/mutation/run.py [--jobs 2] [--min-score 90] [--work build/mutation]
    python benchmarks/mutation/run.py --rerun-survivors   # after writing a test for a survivor
    python benchmarks/mutation/run.py --report-only       # the last report again
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from undecorate import undecorate  # noqa: E402

MODULES = ["core/pruning/slr.py", "core/pruning/admm.py", "core/pruning/pruner.py", "core/pruning/projections.py", "core/pruning/masks.py", "core/pruning/sparsity.py"]
TESTS = [
    "tests/test_core_pruners.py",
    "tests/test_core_projections.py",
    "tests/test_core_masks_resume.py",
    "tests/test_core_config_stats.py",
    "tests/test_core_by_hand.py",
    "tests/test_core_mask_contract.py",
    "tests/test_core_resume_window.py",
    "tests/test_core_budgets.py",
    "tests/test_core_sparsity_config_forms.py",
    "tests/test_core_edges.py",
    "tests/test_core_user_cases.py",
    "tests/test_core_authors.py",
]
EQUIVALENT = HERE / "equivalent.yaml"
CAUGHT = {"killed", "timeout", "segfault"}
# a first pass with tight time limits, so that a mutant that hangs costs little; then the mutants
# that ran out of time get a second run on their own with generous limits, so that a timeout in
# the report is a real hang and not a test slowed down by a loaded machine
FIRST_LIMITS = (4.0, 2.0)  # mutmut's timeout_multiplier, timeout_constant (seconds)
RETRY_LIMITS = (10.0, 10.0)

CONFTEST_TAIL = """

# added by benchmarks/mutation/run.py: one torch thread per mutant worker; torch._dynamo,
# which the first optimizer imports (seconds), imported once in the process mutmut forks
# the workers from; and the tests a mutant runs ordered fastest first (by the durations of
# mutmut's clean run), so a mutant is usually killed by a test that takes milliseconds
import torch._dynamo  # noqa: E402,F401

torch.set_num_threads(1)


def pytest_collection_modifyitems(items):
    import json

    stats = Path("mutmut-stats.json")
    if stats.exists():
        duration = json.loads(stats.read_text())["duration_by_test"]
        items.sort(key=lambda item: duration.get(item.nodeid, 0.0))
"""

SETTINGS = """\
[tool.mutmut]
source_paths = ["core"]
only_mutate = {modules}
pytest_add_cli_args_test_selection = {tests}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-W", "ignore"]
do_not_mutate_patterns = ['^\\s*raise ']
timeout_multiplier = {multiplier}
timeout_constant = {constant}
process_isolation = "forkserver"
use_git_change_detection = false

[tool.pytest.ini_options]
testpaths = ["tests"]
"""


@dataclass(frozen=True)
class Mutant:
    """One mutant: mutmut's name, its status, where it is, and the lines it changes."""

    name: str
    status: str
    module: str
    function: str
    removed: tuple[str, ...]
    added: tuple[str, ...]

    def matches(self, entry: dict) -> bool:
        return (
            entry["module"] == self.module
            and entry["function"] == self.function
            and tuple(_lines(entry["before"])) == self.removed
            and tuple(_lines(entry["after"])) == self.added
        )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in str(text).strip().splitlines()]


def write_settings(work: Path, tests: list[str], limits: tuple[float, float]) -> None:
    as_toml = lambda items: "[" + ", ".join(f'"{i}"' for i in items) + "]"  # noqa: E731
    multiplier, constant = limits
    (work / "pyproject.toml").write_text(SETTINGS.format(modules=as_toml(MODULES), tests=as_toml(tests), multiplier=multiplier, constant=constant))


def copy_tests(folder: Path, tests: list[str]) -> None:
    (folder / "tests").mkdir(parents=True, exist_ok=True)
    for test in ["tests/conftest.py", *tests]:
        shutil.copy2(ROOT / test, folder / test)
    with open(folder / "tests" / "conftest.py", "a") as conftest:
        conftest.write(CONFTEST_TAIL)


def prepare(work: Path, tests: list[str]) -> None:
    """Fill ``work`` with the undecorated core, the tests and the mutmut settings."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    shutil.copytree(ROOT / "core", work / "core", ignore=shutil.ignore_patterns("__pycache__"))
    for module in MODULES:
        path = work / module
        path.write_text(undecorate(path.read_text()))
    copy_tests(work, tests)
    write_settings(work, tests, FIRST_LIMITS)


def _tests_of(work: Path) -> list[str]:
    """The test files the scratch folder was prepared with."""
    import tomllib

    return tomllib.loads((work / "pyproject.toml").read_text())["tool"]["mutmut"]["pytest_add_cli_args_test_selection"]


def _limits_of(work: Path) -> tuple[float, float]:
    """The time limits the scratch folder's last mutmut run used."""
    import tomllib

    settings = tomllib.loads((work / "pyproject.toml").read_text())["tool"]["mutmut"]
    return settings["timeout_multiplier"], settings["timeout_constant"]


def readable_function(mangled: str) -> tuple[str, str]:
    """``core.pruning.slr.xǁSLRǁ_update`` -> (``core/pruning/slr.py``, ``SLR._update``)."""
    module, _, name = mangled.rpartition(".x")
    if name.startswith("ǁ"):
        _, cls, method = name.split("ǁ")
        name = f"{cls}.{method}"
    else:
        name = name[1:]  # x_name
    return module.replace(".", "/") + ".py", name


def mutmut_run(work: Path, jobs: int, names: list[str] = ()) -> int:
    return subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *names], cwd=work).returncode


def timed_out(work: Path) -> list[str]:
    """Names of the mutants whose last run ran out of time."""
    from mutmut.stats import status_by_exit_code

    names = []
    for meta in (work / "mutants").rglob("*.py.meta"):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        names += [name for name, code in codes.items() if status_by_exit_code[code] == "timeout"]
    return sorted(names)


def collect(work: Path) -> list[Mutant]:
    """Every mutant of the last run in ``work``, with its status and changed lines."""
    os.chdir(work)
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    mutants = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in sorted(data.exit_code_by_key.items()):
            diff = get_diff_for_mutant(name, path=path).splitlines()
            removed = tuple(l[1:].strip() for l in diff if l.startswith("-") and not l.startswith("---"))
            added = tuple(l[1:].strip() for l in diff if l.startswith("+") and not l.startswith("+++"))
            module, function = readable_function(name.rpartition("__mutmut_")[0])
            mutants.append(Mutant(name, status_by_exit_code[code], module, function, removed, added))
    return mutants


def report(mutants: list[Mutant], equivalent: list[dict], seconds: float) -> float:
    """Print the score and the survivors; return the score in percent."""
    equal = [m for m in mutants if any(m.matches(e) for e in equivalent)]
    unused = [e for e in equivalent if not any(m.matches(e) for m in mutants)]
    counted = [m for m in mutants if m not in equal]
    caught = [m for m in counted if m.status in CAUGHT]
    survivors = [m for m in counted if m.status not in CAUGHT]
    score = 100.0 * len(caught) / len(counted) if counted else 100.0
    print(f"\nmutation score: {len(caught)} of {len(counted)} non-equivalent mutants caught = {score:.1f}% "
          f"({len(mutants)} mutants, {len(equal)} listed as equivalent; {seconds / 60:.1f} min)")
    by_module: dict[str, list[Mutant]] = {}
    for m in counted:
        by_module.setdefault(m.module, []).append(m)
    for module, items in sorted(by_module.items()):
        print(f"  {module:22s} {sum(m.status in CAUGHT for m in items):4d} / {len(items):4d}")
    if survivors:
        print(f"\nsurviving mutants ({len(survivors)}):")
        for m in survivors:
            print(f"  {m.module} {m.function} [{m.status}] ({m.name})")
            for line in m.removed:
                print(f"      - {line}")
            for line in m.added:
                print(f"      + {line}")
    if unused:
        print(f"\n{len(unused)} entries of {EQUIVALENT.name} match no mutant (the code moved on; update the list):")
        for e in unused:
            print(f"  {e['module']} {e['function']}: {e['before']!r} -> {e['after']!r}")
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--min-score", type=float, default=90.0, help="exit 1 below this percentage")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "mutation", help="scratch folder (emptied)")
    parser.add_argument("--tests", nargs="+", default=TESTS, help="test files to run the mutants against")
    parser.add_argument("--report-only", action="store_true", help="no new pass: retry the timeouts of the last run in --work, then report")
    parser.add_argument("--rerun-survivors", action="store_true",
                        help="no new pass: copy the current test files into the last run's folder and run its survivors again")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    start = time.time()
    equivalent = yaml.safe_load(EQUIVALENT.read_text()) or []
    if args.rerun_survivors:
        if _tests_of(work) != list(args.tests):
            print("the test files differ from the last run's; run a full pass instead", file=sys.stderr)
            return 2
        copy_tests(work, args.tests)
        copy_tests(work / "mutants", args.tests)
        survivors = [m.name for m in collect(work) if m.status not in CAUGHT and not any(m.matches(e) for e in equivalent)]
        os.chdir(ROOT)
        print(f"running the {len(survivors)} survivors of the last run again")
        code = mutmut_run(work, args.jobs, survivors) if survivors else 0
        if code:
            print(f"mutmut run failed with exit code {code}", file=sys.stderr)
            return code
    elif not args.report_only:
        prepare(work, args.tests)
        code = mutmut_run(work, args.jobs)
        if code:
            print(f"mutmut run failed with exit code {code}", file=sys.stderr)
            return code
    retry = timed_out(work) if _limits_of(work) != RETRY_LIMITS else []  # timeouts under generous limits are hangs
    if retry:
        print(f"\n{len(retry)} mutants ran out of time; running them again with generous limits")
        write_settings(work, _tests_of(work), RETRY_LIMITS)
        code = mutmut_run(work, args.jobs, retry)
        if code:
            print(f"mutmut run failed with exit code {code}", file=sys.stderr)
            return code
    score = report(collect(work), equivalent, time.time() - start)
    return 0 if score >= args.min_score else 1


if __name__ == "__main__":
    sys.exit(main())
