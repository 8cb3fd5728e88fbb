"""The `platform` package is a faithful superset of the standard-library module it shadows: `import platform` from
the repo root must still give every stdlib function (Ray, torch and pip call them) besides this project's modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import platform

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, platform; print(json.dumps({"
    "'system': platform.system(), 'machine': platform.machine(), 'release': platform.release(),"
    "'python_version': platform.python_version(), 'implementation': platform.python_implementation(),"
    "'uname': list(platform.uname()), 'platform': platform.platform(), 'libc': list(platform.libc_ver()),"
    "'architecture': list(platform.architecture()),"
    " 'names': sorted(n for n in dir(platform) if not n.startswith('__'))}))"
)


def clean_interpreter_answers() -> dict:
    """The standard module's answers in an isolated interpreter started outside the repo."""
    out = subprocess.run([sys.executable, "-I", "-c", PROBE], cwd="/", capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_this_is_the_repo_package() -> None:
    assert Path(platform.__file__).resolve() == REPO_ROOT / "platform" / "__init__.py"
    assert hasattr(platform, "__path__")  # a package: platform.tune etc. import


def test_standard_api_answers_as_in_a_clean_interpreter() -> None:
    ref = clean_interpreter_answers()
    ours = json.loads(
        subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    )
    assert {k: v for k, v in ours.items() if k != "names"} == {k: v for k, v in ref.items() if k != "names"}
    missing = set(ref["names"]) - set(ours["names"])
    assert missing == set(), f"standard names not re-exported: {sorted(missing)}"
    assert platform.system() == ref["system"] and list(platform.uname()) == ref["uname"]


def test_libraries_that_import_platform_still_work_from_the_repo_root() -> None:
    code = (
        "import platform, uuid, torch, ray, mlflow, optuna, pandas, pytest; "
        "import platform.tune, platform.trainables; assert platform.__path__; "
        "print(uuid.uuid4().version, torch.tensor([1.0]).sum().item())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["4", "1.0"]


def test_runtime_env_puts_the_repo_root_first_for_ray_workers() -> None:
    from platform.runtime import REPO_ROOT as root
    from platform.runtime import runtime_env

    assert runtime_env()["env_vars"]["PYTHONPATH"].split(":")[0] == str(REPO_ROOT) == str(root)
    shipped = runtime_env(ship_code=True)
    assert shipped["working_dir"] == str(REPO_ROOT) and ".venv" in shipped["excludes"]


def test_a_private_cluster_names_its_dashboard_to_every_worker() -> None:
    import socket

    from platform.runtime import free_port, ray_init_kwargs, runtime_env

    env = runtime_env(api_server="http://127.0.0.1:1234")
    assert env["env_vars"]["RAY_API_SERVER_ADDRESS"] == "http://127.0.0.1:1234"
    assert env["env_vars"]["PYTHONPATH"].split(":")[0] == str(REPO_ROOT)
    assert "RAY_API_SERVER_ADDRESS" not in runtime_env()["env_vars"]
    local = ray_init_kwargs(None)
    assert local["address"] == "local"
    assert (
        local["runtime_env"]["env_vars"]["RAY_API_SERVER_ADDRESS"]
        == f"http://{local['dashboard_host']}:{local['dashboard_port']}"
    )
    remote = ray_init_kwargs("10.0.0.1:6379")
    assert remote["address"] == "10.0.0.1:6379" and "dashboard_port" not in remote
    assert remote["runtime_env"]["working_dir"] == str(REPO_ROOT)
    assert "RAY_API_SERVER_ADDRESS" not in remote["runtime_env"]["env_vars"]  # a joined cluster has its own
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))  # free: binding it succeeds
