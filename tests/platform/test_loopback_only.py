"""A sweep's private Ray cluster listens on loopback only (issue 10, section 5).

Runs the smoke sweep as a user would and, while it runs, lists every listening TCP socket and unconnected UDP socket
held by its process tree (driver, GCS, raylet, dashboard, agents, workers) from ``/proc``. Before
``platform.runtime.listen_on_loopback_only`` the GCS, raylet, core workers and agents listened on ``*`` and the
runtime-env and dashboard agents on the machine's address.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.platform.procs import SMOKE, start_cli

pytestmark = pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="reads sockets from Linux /proc")

POLL_S = 0.25
SWEEP_TIMEOUT_S = 300  # the smoke sweep takes ~20 s in-trial here
MIN_SOCKETS = 5  # a sweep shows ~15 (GCS, raylet x2, dashboard, agents, one per core worker); fewer means we saw none
TCP_LISTEN, UDP_UNCONNECTED = "0A", "07"  # `st` in /proc/net/{tcp,udp}


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants now."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])  # the name in (...) may hold spaces
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def decode(hex_addr: str) -> tuple[str, int]:
    """``0100007F:1F90`` -> ("127.0.0.1", 8080); the address is in 32-bit words of host (little-endian) order."""
    ip_hex, port_hex = hex_addr.split(":")
    raw = bytes.fromhex(ip_hex)
    ip = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(ip)), int(port_hex, 16)


def listening_by_inode(pid: int) -> dict[str, tuple[str, str, int]]:
    """Socket inode -> (protocol, ip, port) for listening TCP and unconnected UDP sockets in ``pid``'s namespace."""
    found = {}
    for proto, state in (
        ("tcp", TCP_LISTEN),
        ("tcp6", TCP_LISTEN),
        ("udp", UDP_UNCONNECTED),
        ("udp6", UDP_UNCONNECTED),
    ):
        for line in Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]:
            fields = line.split()  # sl local_address rem_address st ... inode
            if fields[3] == state:
                found[fields[9]] = (proto, *decode(fields[1]))
    return found


def listening_sockets(root: int) -> set[tuple[str, str, str, int]]:
    """(process name, protocol, ip, port) of every listening socket the process tree of ``root`` holds."""
    sockets = listening_by_inode(root)
    held = set()
    for pid in process_tree(root):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            fds = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue  # exited meanwhile
        for target in fds:
            inode = target.removeprefix("socket:[").removesuffix("]")
            if target.startswith("socket:[") and inode in sockets:
                held.add((name, *sockets[inode]))
    return held


def is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    mapped = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) else None  # ::ffff:127.0.0.1
    return (mapped or addr).is_loopback


def test_decode_reads_proc_net_addresses() -> None:
    assert decode("0100007F:1F90") == ("127.0.0.1", 8080)
    assert decode("00000000000000000000000000000000:0050") == ("::", 80)
    ip, _ = decode("0000000000000000FFFF00000100007F:0050")
    assert ipaddress.ip_address(ip) == ipaddress.ip_address("::ffff:127.0.0.1")  # IPv4-mapped: a v6 socket on v4
    assert is_loopback("::ffff:127.0.0.1") and is_loopback("::1") and not is_loopback("::")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.2")


@pytest.mark.slow
def test_a_sweep_listens_on_loopback_only(tmp_path: Path) -> None:
    proc = start_cli(
        "platform.tune",
        *SMOKE,
        "--out",
        str(tmp_path / "exp"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        own_session=False,
    )
    seen: set[tuple[str, str, str, int]] = set()
    deadline = time.monotonic() + SWEEP_TIMEOUT_S
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                seen |= listening_sockets(proc.pid)
            except FileNotFoundError:  # the driver exited between poll() and the read
                break
            time.sleep(POLL_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate()[0]
    assert proc.returncode == 0, output[-3000:]
    exposed = sorted(s for s in seen if not is_loopback(s[2]))
    assert not exposed, f"listening beyond loopback (process, protocol, ip, port): {exposed}"
    assert len(seen) >= MIN_SOCKETS, sorted(seen)
