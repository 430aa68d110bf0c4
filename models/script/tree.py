"""Find and end every process a script started, including the ones that left its process group and session.

A child runs in its own session, so a group kill reaches what it forks. A descendant can still escape: `setsid`
(or a double fork) gives it a new session and group, and once its parent exits it is reparented away from the
child, out of the parent chain too. Every child therefore gets a run marker in its environment, which its
descendants inherit (`/proc/<pid>/environ` shows the environment a process was started with, whatever it did
with it since); the sweep ends every process that descends from the child, shares its group or session, or carries
its marker. Linux only (/proc); elsewhere only the group is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from pathlib import Path

MARKER_ENV = "CASCADE_SCRIPT_RUN"
_PROC = Path("/proc")
# Each round kills what it finds; a process forking during the sweep is caught by the next round.
_ROUNDS = 20


def new_marker() -> str:
    return uuid.uuid4().hex


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgid, sid) of a process, or None when it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[3])


def _carries(pid: int, needle: bytes) -> bool:
    try:
        return needle in (_PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or not ours to read: not one of our children's descendants either way
        return False


def members(root: int, marker: str, *, root_alive: bool = True) -> set[int]:
    """Live processes that belong to the run started as `root` with `marker` (not this process, never init).

    Once the child has been reaped its pid may be reused by an unrelated process (and become a group or session
    id again), so then only the marker, and what descends from its carriers, counts.
    """
    if not _PROC.is_dir():
        return set()
    needle = f"{MARKER_ENV}={marker}\0".encode()
    parents: dict[int, int] = {}
    found: set[int] = set()
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        info = _stat(pid)
        if info is None or info[0] in ("Z", "X"):  # already dead, waiting to be reaped
            continue
        _, ppid, pgid, sid = info
        parents[pid] = ppid
        if (root_alive and root in (pid, pgid, sid)) or _carries(pid, needle):
            found.add(pid)
    # Descendants through the parent chain, for any that dropped both the session and the marker.
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    stack = [root, *found] if root_alive else list(found)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found - {os.getpid(), 1}


def kill_tree(root: int, marker: str, *, root_alive: bool = True) -> set[int]:
    """SIGKILL the run's group and every member `members` finds, until none is left; the pids it signalled."""
    signalled: set[int] = set()
    if root_alive or not _PROC.is_dir():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(root, signal.SIGKILL)
    for _ in range(_ROUNDS):
        alive = members(root, marker, root_alive=root_alive)
        if not alive:
            break
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        signalled |= alive
    return signalled
