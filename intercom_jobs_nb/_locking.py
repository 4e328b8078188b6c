"""One writer per file: two runs (two kernels, a cron job beside a notebook, two threads, two
machines on a shared folder) never use one ledger or checkpoint at the same time.

A ledger's promise rests on it: each run reads which keys were sent, then sends the others; two
runs at once would both read "never sent" and both send. So a run takes the file's lock before it
reads anything, holds it to the end, and a second run **stops before sending**, with a message
naming the run that holds it (pid, host, since when) and what to do. Why stop rather than wait:
the first run may take hours (a large sheet under a shared rate limit), a notebook cell that
hangs silently looks broken, and a cron job that overlaps a notebook should skip its turn, not
queue behind it; once the first run ends, running again sends only what is left.

The lock is the operating system's (``flock`` on a file beside the one it guards, ``NAME.lock``;
``msvcrt.locking`` on Windows), not a row in the file or a pid file: the kernel releases it when
its process ends, however it ends (SIGKILL, a crash, a closed laptop), so a lock is never stale and
never needs cleaning by hand, and no pid has to be guessed alive (pids are reused, and a pid of
another machine cannot be checked). ``flock`` locks are per open file, so two threads or two
kernels of one machine exclude each other too; on NFS, Linux maps them to the server's locks, so
two machines exclude each other where the filesystem locks at all. The lock file holds who has it
(pid, host, since), for the message only.

The lock file is removed when the lock is released, so that a finished run leaves only its own
file. A process that opened the lock file just before it was removed could lock the removed
file; so after locking, a taker checks that the path still names the file it locked, and
otherwise tries again.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from ._errors import FileInUseError

__all__ = ["WriterLock", "this_run", "describe_run"]

_TRIES = 20  # a lock file replaced under us this many times in a row is a bug, not a race
_HOLDER_LOOKS = 50  # looks at the lock file, 10 ms apart, for who holds it
_LOCK_BYTE = 4096  # Windows locks a byte range: one past what the holder's details fill

if sys.platform == "win32":  # pragma: no cover - not run on this project's machines
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _LOCK_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _LOCK_BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def this_run() -> str:
    """Who this run is, as JSON (pid, host, since): written where another run will look (the
    lock file, a ledger's ``open_run`` mark), for its messages only."""
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})


def describe_run(text: str) -> str | None:
    """``pid N on host H, since T`` from what `this_run` wrote; None if it cannot be read."""
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on host {info['host']}, " + time.strftime(
            "since %Y-%m-%d %H:%M:%S UTC", time.gmtime(info["since"])
        )
    except (ValueError, KeyError, TypeError, OverflowError):
        return None


def _holder(path: Path) -> str:
    """Who holds the lock, as the lock file says. Its holder writes that just after locking,
    so a run that lost a race by microseconds waits a little for it; then less is said."""
    for _ in range(_HOLDER_LOOKS):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            text = ""
        described = describe_run(text)
        if described is not None:
            mine = json.loads(this_run())
            same = json.loads(text)
            here = same["host"] == mine["host"] and same["pid"] == mine["pid"]
            return f"{'another run in this process' if here else 'another run'} ({described})"
        time.sleep(0.01)
    return "another run"


class WriterLock:
    """The lock of one guarded file; `acquire` takes it or raises at once.

    Args:
        path: the guarded file (the lock is ``path`` + ``.lock``, beside it).
        noun: what the file is, for messages ("ledger", "checkpoint").
    """

    def __init__(self, path: Path, noun: str) -> None:
        self.path = path.with_name(path.name + ".lock")
        self.guarded = path
        self.noun = noun
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise at once.

        Raises:
            FileInUseError: another run holds it (the message says which, and what to do).
            OSError: the lock file cannot be made (no such folder, read-only folder).
        """
        for _ in range(_TRIES):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not _try_lock(fd):
                    raise FileInUseError(self._busy_message())
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if same:
                    self._write_holder(fd)
                    self._fd = fd
                    return
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # we locked a lock file its holder had just removed: try the new one
        raise RuntimeError(f"the lock file {self.path} kept being replaced")  # pragma: no cover

    def _busy_message(self) -> str:
        shown = str(self.guarded)
        return (
            f"{self.noun} {shown!r} is in use by {_holder(self.path)}: two runs on one "
            f"{self.noun} could both send what neither has recorded yet, so this one stopped "
            "before sending anything. Let that run end (or stop it), then run again: only what "
            "is left is sent. If that run was killed, its lock went with it: just run again"
        )

    def _write_holder(self, fd: int) -> None:
        data = this_run().encode()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)

    def release(self) -> None:
        """Remove the lock file, then let the lock go (in that order: see the module)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # Windows cannot remove an open file: there the lock file stays, harmless.
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None
