"""One rule for every command that writes into a folder: never silently replace a *different* result.

``fit`` run folders, ``evaluate``, ``export``, ``predict`` and the demo all record what a folder holds (its
identity: checkpoints and their sha256, dataset, settings, run id) and call :func:`check_same_result`
before writing. A rerun with the same identity resumes or refreshes in place; anything else is one
:class:`~hoi_adapt.utils.errors.ConfigError` naming the folder, the fields that differ and the flags that
allow it (another output folder, or an explicit overwrite).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hoi_adapt.utils.errors import ConfigError

_SHOW_VALUES_UP_TO = 80  # longer values (config texts, long paths) are named, not printed


def field_value(record: Mapping[str, Any] | None, dotted: str) -> Any:
    """``record["a"]["b"]`` for ``"a.b"``; None where any part is missing."""
    cur: Any = record
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def differences(recorded: Mapping[str, Any] | None, requested: Mapping[str, Any], fields: Iterable[str]) -> list[str]:
    """Human-readable ``field: A in the folder, B requested`` for each dotted field whose values differ."""
    out = []
    for name in fields:
        a, b = field_value(recorded, name), field_value(requested, name)
        if json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str):
            continue
        if max(len(repr(a)), len(repr(b))) > _SHOW_VALUES_UP_TO:
            out.append(f"{name} differs")
        else:
            out.append(f"{name}: {a!r} in the folder, {b!r} requested")
    return out


def check_same_result(folder: str | Path, recorded: Mapping[str, Any] | None, requested: Mapping[str, Any],
                      fields: Iterable[str], *, what: str, new_folder_flag: str | None = "--out",
                      overwrite_flag: str | None = "--overwrite", overwrite: bool = False,
                      hint: str | None = None) -> list[str]:
    """Refuse to write ``requested`` into ``folder`` when it holds a different ``what`` (``recorded``).

    Args:
        folder: the folder named in the error.
        recorded: identity of the result already there (None: nothing there, always allowed).
        requested: identity of the result about to be written.
        fields: dotted identity fields to compare.
        what: what the folder holds, for the message ("export", "evaluation", "run").
        new_folder_flag: option that picks another folder (None: the command has none).
        overwrite_flag: option that allows replacing the result (None: replacing is never allowed).
        overwrite: that option was given.
        hint: a further way out, appended in parentheses.

    Returns:
        The differences (empty: same result, or nothing recorded); non-empty only with ``overwrite``.
    """
    if recorded is None:
        return []
    diffs = differences(recorded, requested, fields)
    if diffs and not (overwrite and overwrite_flag):
        ways = [f"choose another {new_folder_flag} folder"] if new_folder_flag else []
        if overwrite_flag:
            ways.append(f"pass {overwrite_flag} to replace it")
        raise ConfigError(f"{folder} holds a different {what} ({'; '.join(diffs)}); refusing to overwrite it"
                          + (f": {' or '.join(ways)}" if ways else "") + (f" ({hint})" if hint else ""))
    return diffs


__all__ = ["check_same_result", "differences", "field_value"]
