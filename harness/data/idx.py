"""The IDX format of the MNIST family of datasets, gzipped or not.

An IDX file is two zero bytes, a byte naming the element type, a byte giving the number of
dimensions, each dimension as a big-endian uint32, then the elements in C order.
"""
import gzip
import math
import pathlib
import struct

import numpy as np

ELEMENT_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
                 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"


def _raw(path: pathlib.Path) -> bytes:
  data = path.read_bytes()
  if not data.startswith(GZIP_MAGIC):
    return data
  try:
    return gzip.decompress(data)
  except (OSError, EOFError) as error:  # BadGzipFile, or a stream cut short.
    raise ValueError(f"{path}: not a whole gzip file ({error})") from None


def read(path) -> np.ndarray:
  """The array an IDX file holds (gzipped or not); ValueError naming the file if it is not
  one, or holds fewer or more elements than its header says."""
  path = pathlib.Path(path)
  data = _raw(path)
  if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in ELEMENT_TYPES:
    raise ValueError(f"{path}: not an IDX file (its first bytes are {data[:4].hex() or 'missing'})")
  ndim, dtype = data[3], ELEMENT_TYPES[data[2]]
  start = 4 + 4 * ndim
  if len(data) < start:
    raise ValueError(f"{path}: its header is cut short")
  shape = struct.unpack(f">{ndim}I", data[4:start])
  expected = math.prod(shape) * dtype.itemsize
  if len(data) - start != expected:
    raise ValueError(f"{path}: holds {len(data) - start} bytes of elements, its header "
                     f"{'x'.join(map(str, shape))} of {dtype.name} says {expected}")
  return np.frombuffer(data, dtype, offset=start).reshape(shape)


def write(path, array: np.ndarray) -> None:
  """Writes `array` as an IDX file, gzipped if the name ends in .gz (for fixtures)."""
  path = pathlib.Path(path)
  code = next(c for c, dtype in ELEMENT_TYPES.items() if dtype == array.dtype.newbyteorder(">")
              or dtype == array.dtype)
  body = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
  body += np.ascontiguousarray(array, ELEMENT_TYPES[code]).tobytes()
  path.write_bytes(gzip.compress(body, mtime=0) if path.suffix == ".gz" else body)
