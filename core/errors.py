"""Errors a user can cause, and the one-line exit they end in."""
from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

__all__ = ["UserError", "ConfigError", "DataError", "CheckpointError", "TrainingDiverged", "PruningWarning",
           "exit_on_user_error", "user_message", "USER_ERROR_EXIT_CODE"]

USER_ERROR_EXIT_CODE = 2

F = TypeVar("F", bound=Callable)


class UserError(Exception):
    """A problem the user can fix (bad config, missing data, wrong checkpoint).

    The message names the problem and the fix in one line; command-line entry points print it
    and exit with code 2 instead of a traceback.
    """


class ConfigError(UserError, ValueError):
    """A sparsity, pipeline or task configuration that cannot be used."""


class DataError(UserError):
    """Missing or malformed data on disk."""


class CheckpointError(UserError):
    """A checkpoint or saved state that does not fit the model or run it is loaded into."""


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite (in the pipeline, or as given to ``update()``)."""


class PruningWarning(UserWarning):
    """A pruner used in a way that runs but is probably not what was meant (e.g. no penalty)."""


def exit_on_user_error(main: F) -> F:
    """Wrap a command-line ``main`` so a :class:`UserError` prints one line and exits with code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {user_message(err)}", file=sys.stderr)
            raise SystemExit(USER_ERROR_EXIT_CODE) from None

    return wrapper  # type: ignore[return-value]


def user_message(err: UserError) -> str:
    """The error's message on one line. A user error raised in a DataLoader worker comes back
    with the worker's whole traceback as its message; its last line holds the original one."""
    text = str(err)
    if "Original Traceback (most recent call last)" in text:
        last = text.strip().splitlines()[-1]
        name, _, rest = last.partition(": ")
        if rest and name.endswith(type(err).__name__):
            text = rest
    return " ".join(text.split())
