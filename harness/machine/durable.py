"""The one way the harness writes its results and what they depend on (checkpoints, start
files, artifacts, exports, FLOP counts, tables and figures): a file or folder appears whole or
not at all, and a failure to store it is one line.

Each is written under a temporary name beside its target, synced, and renamed into place,
so a reader never sees half of it and a killed writer leaves only a temporary that the next
writer of that target ignores. Any failure while writing becomes a `StorageError` naming
what could not be written and why, with the temporary removed. An OSError says why itself;
other errors count as storage failures only when the disk is full, since some writers report
a full disk in their own words (torch.save: RuntimeError "unexpected pos 576 vs 534";
safetensors: SafetensorError "I/O error: No space left on device").
"""
import contextlib
import hashlib
import os
import pathlib
import shutil
import uuid
from typing import Callable, Optional

# A disk with less than this free counts as full when a writer fails in words of its own.
FULL_BELOW_BYTES = 1 << 20


class StorageError(OSError):
  """Results could not be written (e.g. the disk is full): said in one line."""


def _nearest_existing(path: pathlib.Path) -> pathlib.Path:
  path = path.absolute()
  while not path.exists() and path != path.parent:
    path = path.parent
  return path


def disk_full(path) -> bool:
  """Whether the filesystem that holds `path` (or would) has less than FULL_BELOW_BYTES free."""
  try:
    stat = os.statvfs(_nearest_existing(pathlib.Path(path)))
  except OSError:
    return False
  return stat.f_bavail * stat.f_frsize < FULL_BELOW_BYTES


def _remove(path: Optional[pathlib.Path]) -> None:
  if path is None:
    return
  if path.is_dir() and not path.is_symlink():
    shutil.rmtree(path, ignore_errors=True)
  else:
    with contextlib.suppress(OSError):
      path.unlink()


@contextlib.contextmanager
def storing(what: str, target, temporary: Optional[pathlib.Path] = None):
  """Turns a failure inside into StorageError("cannot write <what> <target>: <why>") and removes
  `temporary`; an error that is neither an OSError nor met on a full disk passes unchanged."""
  try:
    yield
  except StorageError:
    _remove(temporary)
    raise
  except Exception as error:
    full = disk_full(target)  # Before the temporary is removed, which frees its space.
    _remove(temporary)
    if isinstance(error, OSError):
      why = error.strerror or str(error)
    elif full:
      why = "no space left on its disk"
    else:
      raise
    raise StorageError(f"cannot write {what} {target}: {why}") from None


def fsync(path: pathlib.Path) -> None:
  """Commits a file, or a folder's entries, to the disk."""
  fd = os.open(path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def _temporary(target: pathlib.Path) -> pathlib.Path:
  return target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")


def is_temporary(path: pathlib.Path) -> bool:
  """Whether `path` is a temporary a writer left (killed before its rename)."""
  return path.name.startswith(".") and ".tmp-" in path.name


def write_file(target, write: Callable[[pathlib.Path], None], what: str) -> None:
  """Writes `target` whole or not at all: write(temporary) fills a temporary beside it."""
  target = pathlib.Path(target)
  temporary = _temporary(target)
  with storing(what, target, temporary):
    target.parent.mkdir(parents=True, exist_ok=True)
    write(temporary)
    fsync(temporary)
    os.replace(temporary, target)
    fsync(target.parent)


def write_text(target, text: str, what: str) -> None:
  write_file(target, lambda path: path.write_text(text), what)


def write_folder(target, write: Callable[[pathlib.Path], None], what: str) -> None:
  """Writes the folder `target` whole or not at all (replacing one there): write(temporary)
  fills a temporary folder beside it."""
  target = pathlib.Path(target)
  temporary = _temporary(target)
  with storing(what, target, temporary):
    temporary.mkdir(parents=True)
    write(temporary)
    for path in temporary.rglob("*"):
      if path.is_file():
        fsync(path)
    if target.exists():  # Written before by a writer that died after its rename: replaced.
      shutil.rmtree(target)
    os.rename(temporary, target)
    fsync(target.parent)


def sha256(path) -> str:
  with open(path, "rb") as f:
    return hashlib.file_digest(f, "sha256").hexdigest()
