"""Errors and warnings raised while locating, reading and verifying dataset files."""

from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
    """The dataset files are not where the config says, and could not be (or were not allowed to be) downloaded.

    The message names the folder and files expected, so the user can place them by hand.
    """


class DatasetCorruptError(ValueError):
    """A dataset file exists but cannot be read (truncated download, disk error, not the expected format).

    The message names the file and says to delete it and download the dataset again; it is deterministic, so a
    retry without that does not help.
    """


class ChecksumMismatchWarning(UserWarning):
    """A dataset file differs from the official release (e.g. a re-encoded copy); results may differ slightly.

    Filter it by name in pytest/warnings config: ``ignore::elm.data.errors.ChecksumMismatchWarning``.
    """
