"""The Ray / Optuna / MLflow side of the project, and a faithful stand-in for the standard ``platform`` module.

The standard library also has a module named ``platform`` (imported by pytest, uuid, torch, ray and mlflow);
run from the repo root, this package shadows it. So before anything else it executes the standard library's own
``platform.py`` in this namespace: every standard name (``platform.system()``, ``uname()``, ...) behaves exactly
as in a clean interpreter, and ``platform.tune`` etc. are subpackages on top. Ray workers must import this same
package: ``platform.runtime.runtime_env`` puts the repo root first on their PYTHONPATH.
"""

import os as _os
import sysconfig as _sysconfig

# This package shadows the stdlib `platform` module that pytest, uuid, torch, ray and mlflow import;
# run the stdlib's own platform.py here so every standard name is re-exported unchanged.
_STDLIB_PLATFORM = _os.path.join(_sysconfig.get_paths()["stdlib"], "platform.py")
with open(_STDLIB_PLATFORM, encoding="utf-8") as _f:
    exec(compile(_f.read(), _STDLIB_PLATFORM, "exec"), globals())  # noqa: S102
del _f
