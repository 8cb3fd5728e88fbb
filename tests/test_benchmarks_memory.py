"""The memory benchmark names each process by what it runs, whatever interpreter flags precede it."""

import pytest

from benchmarks.memory import python_target


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-m", "platform.tune", "a.yaml"], "platform.tune"),
        (["-u", "/x/site-packages/ray/_private/log_monitor.py", "--x"], "log_monitor.py"),
        (["-B", "-c", "import sys; print(sys.path)"], "-c"),
        (["-X", "importtime", "-W", "ignore", "-m", "pytest"], "pytest"),
        (["-cprint(1)"], "-c"),
        ([], "(interactive)"),
    ],
)
def test_python_target_skips_interpreter_flags(args, expected):
    assert python_target(args) == expected
