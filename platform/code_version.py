"""The code a sweep runs: every trial checks that its node imports the same ``elm/`` and ``platform/`` sources as
the driver that planned the sweep.

Why: a trial is a fresh process that imports the project from disk when it starts, while the driver keeps the code
it started with. Edit the checkout while a sweep runs (or start a node with another checkout) and later trials run a
mix of versions. At best that fails far from its cause (a trainable that no longer takes the driver's keyword
arguments: ``TypeError ... unexpected keyword argument``); at worst it silently trains later trials with other code,
so their numbers are not comparable with the earlier ones. Here the driver fingerprints the sources once and every
trial compares before it trains; a mismatch fails that trial at once with one line naming the changed files, and the
sweep goes on with the trials already running. Keep a checkout that a long sweep runs from unchanged (work in a
``git worktree``); to run a failed trial on the new code, start a new sweep (``--out``) with that variant or trial.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping

from elm.config import ConfigError

PACKAGES = ("elm", "platform")  # what a trial imports from the checkout
SHOWN = 3  # changed files named in the error


class CodeChangedError(RuntimeError):
    """The sources on this node differ from those the sweep was planned with."""


def code_root() -> Path:
    """The checkout whose ``elm/`` and ``platform/`` this process imports."""
    return Path(__file__).resolve().parent.parent


def source_digests(root: Path | None = None) -> dict[str, str]:
    """SHA-256 of every ``*.py`` under ``root/elm`` and ``root/platform``, keyed by POSIX path relative to ``root``.

    Cost: about 200 small files, a few milliseconds.
    """
    root = code_root() if root is None else root
    return {
        path.relative_to(root).as_posix(): _digest(path)
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
        if not any(part == "__pycache__" or part.startswith(".") for part in path.relative_to(root).parts)
        and not path.is_symlink()  # an editor's lock file (Emacs: .#name.py, a dangling link) is not code
    }


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:  # removed or unreadable between listing and reading: it differs from whatever was planned
        return "unreadable"


def changed_files(expected: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    """Files added, removed or edited between two ``source_digests``, sorted."""
    return sorted(k for k in set(expected) | set(actual) if expected.get(k) != actual.get(k))


def _names(changed: list[str]) -> str:
    return ", ".join(changed[:SHOWN]) + (f" and {len(changed) - SHOWN} more" if len(changed) > SHOWN else "")


def check_same_code(expected: Mapping[str, str], root: Path | None = None) -> None:
    """Raise if this node's sources differ from ``expected`` (the driver's ``source_digests``).

    Raises:
        CodeChangedError: one line, with the number of changed files, the first few, and what to do.
    """
    root = code_root() if root is None else root
    changed = changed_files(expected, source_digests(root))
    if changed:
        shown = _names(changed)
        raise CodeChangedError(
            f"the code in {root} changed since this sweep was planned ({len(changed)} file(s): {shown}); this "
            "trial would run a mix of versions, so it stops here (the sweep goes on); do not edit a checkout a sweep "
            "runs from"
        )


def same_code_trainable(fn: Callable[..., Any], forward_code: bool = False) -> Callable[..., Any]:
    """``fn(config, **params)`` as a trainable that first checks ``code`` (the driver's ``source_digests``).

    Pass it to ``tune.with_parameters(..., code=source_digests(), **params)``. It keeps ``fn``'s name, so trial
    names and ``Tuner.restore``'s trainable check are those of ``fn``. ``forward_code``: also pass ``code`` on to
    ``fn`` (the ``ray_train`` driver hands it to its workers, which are processes of their own).
    """

    def trainable(config: dict[str, Any], *, code: Mapping[str, str], **params: Any) -> Any:
        try:
            check_same_code(code)
        except CodeChangedError as error:
            from ray import tune

            from platform.failures import FAILURE_KEY, reason

            tune.report({FAILURE_KEY: reason(error)})  # so Tune does not retry it (platform.failures)
            raise
        return fn(config, code=code, **params) if forward_code else fn(config, **params)

    trainable.__name__ = trainable.__qualname__ = fn.__name__
    trainable.__doc__ = fn.__doc__
    return trainable


def check_code_on_resume(record: Path, code: Mapping[str, str], allow: bool) -> None:
    """Refuse to resume a sweep whose ``elm/`` and ``platform/`` sources changed since it started: its finished
    trials ran the earlier code, the rest would run this one. ``record``: the digests saved when the sweep started
    (``ExperimentDir.code``); a sweep started before they were kept passes.

    Raises:
        ConfigError: one line naming the changed files and ``--allow-code-change``.
    """
    if not record.is_file():
        return
    changed = changed_files(json.loads(record.read_text()), code)
    if not changed:
        return
    shown = _names(changed)
    if not allow:
        raise ConfigError(
            f"--resume: {len(changed)} source file(s) changed since this sweep started ({shown}); its finished trials "
            "ran the earlier code: resume from an unchanged checkout, or pass --allow-code-change to mix them"
        )
    print(
        f"--resume: {len(changed)} source file(s) changed since this sweep started ({shown}); continuing on "
        "this code (--allow-code-change)",
        flush=True,
    )
