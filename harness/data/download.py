"""Files fetched from where a dataset's authors publish them, each checked against the SHA-256 of
its content before it is kept: written under a temporary name beside its destination and renamed
into place only once whole and verified, so that an interrupted or corrupted download leaves
nothing that looks like the file.

The checksum is of the content, gunzipped first where the file is gzipped: the same for every
copy of a dataset however it was compressed (a distribution's repackaged .gz, the authors' own,
an uncompressed file)."""
import gzip
import hashlib
import http.client
import os
import pathlib
import tempfile
import urllib.error
import urllib.request
from typing import Mapping

CHUNK = 1 << 20
TIMEOUT_S = 60


class DownloadError(ValueError):
  """A file that could not be fetched whole, or not with its published checksum; one line."""


def content_sha256(path: pathlib.Path) -> str:
  """SHA-256 of the file's content, gunzipped first if it is gzipped; DownloadError if it is a
  gzip stream cut short."""
  with open(path, "rb") as raw:
    gzipped = raw.read(2) == b"\x1f\x8b"
  digest = hashlib.sha256()
  try:
    with (gzip.open if gzipped else open)(path, "rb") as f:
      for chunk in iter(lambda: f.read(CHUNK), b""):
        digest.update(chunk)
  except (OSError, EOFError) as error:
    raise DownloadError(f"{path.name}: not a whole gzip file ({error})") from None
  return digest.hexdigest()


def fetch(url: str, destination: pathlib.Path, expected_sha256: str, timeout: float = TIMEOUT_S) -> None:
  """Downloads `url` to `destination` if its content's SHA-256 is `expected_sha256`; else
  DownloadError, and nothing at `destination`."""
  destination.parent.mkdir(parents=True, exist_ok=True)
  handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
  try:
    with os.fdopen(handle, "wb") as out:
      try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
          for chunk in iter(lambda: response.read(CHUNK), b""):
            out.write(chunk)
      except (urllib.error.URLError, http.client.HTTPException, OSError) as error:  # Refused, cut short.
        reason = getattr(error, "reason", None) or error
        raise DownloadError(f"{url}: {reason}") from None
    got = content_sha256(pathlib.Path(temporary))
    if got != expected_sha256:
      raise DownloadError(f"{url}: content SHA-256 {got}, not {expected_sha256}; not kept")
    os.replace(temporary, destination)
  finally:
    if os.path.exists(temporary):
      os.unlink(temporary)


def fetch_all(base_url: str, files: Mapping[str, str], folder: pathlib.Path,
              timeout: float = TIMEOUT_S) -> None:
  """Each file name -> content SHA-256 of `files`, from base_url + name into `folder`, unless
  there with that checksum already."""
  for name, expected in files.items():
    path = folder / name
    if not (path.exists() and content_sha256(path) == expected):
      print(f"data: downloading {base_url}{name}", flush=True)
      fetch(base_url + name, path, expected, timeout)
