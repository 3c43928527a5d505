"""Where a command writes: output paths checked before any work, and run directories that one run owns at a time.

A training run's directory (``--out``) is created if missing, locked for the run's duration (``refvae.lock``, with
the owner's pid; a lock left by a killed run is taken over), cleaned of the temporary files an interrupted atomic
write leaves, and never silently replaced: a new run over an existing one needs ``--resume`` (continue it) or
``--force`` (replace it). Every error is one line saying what was wrong and what to do (a ValueError).
"""

from __future__ import annotations

import contextlib
import glob
import os
import socket
import sys
from pathlib import Path

__all__ = ["LOCK_NAME", "RUN_FILES", "check_output_file", "make_directory", "note", "run_directory"]

#: The files that make a directory a run's: a new run there needs --resume (continue) or --force (replace).
RUN_FILES = ("checkpoint.npz", "metrics.json", "report.md")
#: The lock file of a run directory: it holds the pid (and host) of the run that owns the directory.
LOCK_NAME = "refvae.lock"


def note(message: str) -> None:
    """Print ``refvae: note: message`` on stderr (something done that the user should know of)."""
    print(f"refvae: note: {message}", file=sys.stderr, flush=True)


def _reason(err: OSError) -> str:
    return f"{err.strerror} ({err.filename})" if err.strerror and err.filename else (err.strerror or str(err))


def _blocker(path: Path):
    """The first of ``path`` and its parents that exists but is not a directory, or None."""
    return next((q for q in (path, *path.parents) if q.exists() and not q.is_dir()), None)


def make_directory(path, option: str) -> bool:
    """Create the directory ``path`` (named by ``option`` in errors) with its parents; True if it was created.

    Raises a one-line ValueError if ``path`` or one of its parents is a file, or the directory cannot be created.
    """
    path = Path(path)
    blocker = _blocker(path)
    if blocker == path:
        raise ValueError(f"{option} {path} is a file, not a directory: pass a directory (it is created if missing)")
    if blocker is not None:
        raise ValueError(f"cannot create {option} {path}: {blocker} is a file, not a directory; pass a path whose "
                         "parents are directories")
    existed = path.is_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create {option} {path}: {_reason(err)}; pass a directory that can be "
                         "created") from None
    return not existed


def check_output_file(path, option: str, suffixes: dict | None = None, inputs=()) -> Path:
    """Check, before any work, that the file ``path`` (named by ``option``) can be written: not a directory, its
    directory created if missing, writable, and (with ``suffixes``, suffix -> what it holds) of a known kind. It
    must not be one of the command's ``inputs``, nor an existing file of a training run (a directory holding
    checkpoint.npz and metrics.json): no command writes over a run's own files or its input."""
    path = Path(path)
    _refuse_overwriting(path, option, inputs)
    if path.is_dir():
        kinds = " or ".join(suffixes) if suffixes else "a file name"
        raise ValueError(f"{option} {path} is a directory: pass a file name ending in {kinds}")
    if suffixes and path.suffix.lower() not in suffixes:
        kinds = " or ".join(f"{suffix} ({what})" for suffix, what in suffixes.items())
        raise ValueError(f"{option} must end in {kinds}, got {str(path)!r}")
    blocker = _blocker(path.parent)
    if blocker is not None:
        raise ValueError(f"cannot write {option} {path}: {blocker} is a file, not a directory; pass a path whose "
                         "parents are directories")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as err:
        raise ValueError(f"cannot write {option} {path}: {_reason(err)}; pass a writable path") from None
    if not existed:
        path.unlink()
    return path


def _refuse_overwriting(path: Path, option: str, inputs) -> None:
    """An output may not replace an input of the command, nor a file a training run wrote."""
    if not path.exists() or path.is_dir():
        return
    for source in inputs:
        source = Path(source)
        candidates = [source, source / "checkpoint.npz"] if source.is_dir() else [source]
        if any(c.exists() and os.path.samefile(c, path) for c in candidates):
            raise ValueError(f"{option} {path} is this command's input: pass another file name")
    run = path.parent
    if (run / RUN_FILES[0]).is_file() and (run / RUN_FILES[1]).is_file():
        raise ValueError(f"{option} {path} is a file of the training run in {run}: pass a new file name, or a path "
                         "outside the run")


# ------------------------------------------------------------------------------------------------
# run directories: one writer at a time, no silent replacement, no stale temporaries
# ------------------------------------------------------------------------------------------------
def _pid_runs(pid: int) -> bool:
    if os.name != "posix":          # os.kill(pid, 0) is not a probe on Windows: assume the owner still runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                 # e.g. PermissionError: it runs, as another user
        return True
    return True


def _owner(text: str):
    """(pid, host) from a lock file's text, or (None, None)."""
    parts = text.split()
    try:
        return int(parts[0]), (parts[1] if len(parts) > 1 else None)
    except (IndexError, ValueError):
        return None, None


def _flock(fd) -> bool | None:
    """Take the advisory lock of ``fd`` without waiting: True if taken, False if another process holds it, None
    where the system has no such locks (then the pid in the file decides)."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:                 # e.g. a file system without flock
        return None
    return True


class _RunLock:
    """``<dir>/refvae.lock``, holding ``"<pid> <host>"`` of the run that owns the directory.

    Where the system has advisory locks (flock) the lock is the kernel's: it ends with the process, however the
    process ends, so a lock file left by a killed run is recognised as stale and taken over. Elsewhere the pid in
    the file decides (a pid that no longer runs leaves a stale lock)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / LOCK_NAME
        self.fd = None

    def _refuse(self, text: str, hint: str = ""):
        pid, host = _owner(text)
        who = f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "") if pid else "unknown"
        raise ValueError(f"--out {self.directory} is in use by another refvae run ({who}; lock file {self.path}): "
                         f"wait for it to finish, or pass another --out{hint}")

    def acquire(self) -> None:
        for _ in range(5):
            if os.path.islink(self.path):
                raise ValueError(f"--out {self.directory} holds {LOCK_NAME} as a symbolic link ({self.path} -> "
                                 f"{os.readlink(self.path)}): refvae does not follow links inside a run; remove it")
            try:                   # O_NOFOLLOW: a link put there between the check and the open is not followed
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            except OSError as err:
                raise ValueError(f"cannot write into --out {self.directory}: {_reason(err)}; pass a writable "
                                 "directory (without links inside it)") from None
            try:
                locked = _flock(fd)
                previous = os.read(fd, 256).decode("utf-8", "replace")
                if locked is False:
                    self._refuse(previous)
                pid, host = _owner(previous)
                if locked is None and pid is not None and pid != os.getpid() and (
                        _pid_runs(pid) or (host and host != socket.gethostname())):
                    self._refuse(previous, f" (if no run is using it, delete {self.path})")
                try:               # a run that just finished may have removed the file we opened: start again
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                if pid is not None and pid != os.getpid():
                    note(f"took over the stale lock {self.path} left by pid {pid}, which no longer holds it (a "
                         "run that was killed)")
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
                self.fd = fd
                return
            except BaseException:
                os.close(fd)
                raise
        raise ValueError(f"could not lock --out {self.directory}: other runs keep starting and stopping there; "
                         "pass another --out")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if os.path.samestat(os.fstat(self.fd), os.stat(self.path)):
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)       # ends the advisory lock
        self.fd = None


def _remove_stale_temporaries(directory: Path, names) -> None:
    """Remove ``<name>.*.tmp`` (an atomic write's temporary file, left by a run killed mid-write) for each name."""
    stale = sorted({p for name in names for p in directory.glob(f"{glob.escape(name)}.*.tmp") if p.is_file()})
    for path in stale:
        path.unlink()
    if stale:
        note(f"removed {len(stale)} temporary file{'s' if len(stale) > 1 else ''} left in {directory} by an "
             f"interrupted write ({', '.join(p.name for p in stale)})")


@contextlib.contextmanager
def run_directory(out, *, resume: bool = False, force: bool = False, outputs=()):
    """The directory of a training run (``--out``), owned by this run until the block ends.

    Creates it (parents too), locks it (a second run into it is refused while this one lasts; a lock left by a
    killed run is taken over with a note), removes temporary files left there by an interrupted write, and
    refuses to start over a run already there (``RUN_FILES``) unless ``resume`` (continue it: training reads the
    checkpoint) or ``force`` (replace it: its ``RUN_FILES`` and ``outputs``, the command's plots, are removed
    first). A directory it created and left empty (the run failed before writing) is removed at the end.

    Raises
    ------
    ValueError
        One line saying what was wrong and what to do: ``--out`` is a file or cannot be created, another run holds
        it, a run is there without ``--resume`` or ``--force``, both were given, or ``--resume`` finds a run's
        files without its checkpoint (it would start again from epoch 0 and replace them).
    """
    if resume and force:
        raise ValueError("pass --resume to continue the run in --out, or --force to replace it, not both")
    out = Path(out)
    created = make_directory(out, "--out")
    lock = _RunLock(out)
    try:
        lock.acquire()
        try:
            names = (*RUN_FILES, *outputs)
            _remove_stale_temporaries(out, names)
            present = [name for name in RUN_FILES if (out / name).exists()]
            if resume and present and RUN_FILES[0] not in present:
                raise ValueError(f"--resume: --out {out} holds a run's {', '.join(present)} but no {RUN_FILES[0]} "
                                 "to continue from; restore the checkpoint, pass --force to start the run again, "
                                 "or another --out")
            if present and not resume:
                if not force:
                    raise ValueError(f"--out {out} already holds a run ({', '.join(present)}): pass --resume to "
                                     "continue it, --force to replace it, or another --out")
                removed = [name for name in names if (out / name).is_file()]
                for name in removed:
                    (out / name).unlink()
                note(f"--force: replacing the run in {out} (removed {', '.join(removed)})")
            yield out
        finally:
            lock.release()
    finally:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()         # only if empty
