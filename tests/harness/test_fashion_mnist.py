"""Fashion-MNIST: its IDX files read (gzipped or not) and checked; found under data.root,
Debian's folder or the user cache; downloaded into the cache and checked against their
SHA-256. On small files of its format and a server on loopback: no test downloads anything."""
import http.server
import socket
import threading

import numpy as np
import pytest
from omegaconf import OmegaConf

from harness import data as datasets
from harness.configs import compose
from harness.configs.schema import FashionMNISTData
from harness.data import download, fashion_mnist, idx
from harness.data.base import BACKGROUND, TARGET
from harness.testing import tiny_datasets

TRAIN, TEST, VALIDATION = 40, 12, 8


def write_files(folder, gz=True):
  return tiny_datasets.fashion_mnist(folder, TRAIN, TEST, gz)


def spec(root, **fields):
  return OmegaConf.structured(FashionMNISTData(root=str(root), validation_size=VALIDATION, **fields))


@pytest.fixture(autouse=True)
def nowhere_else(tmp_path, monkeypatch):
  """No test sees this machine's Debian copy or cache."""
  monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "debian")
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  fashion_mnist.load.cache_clear()


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, name, dtype):
  array = (np.arange(24) - 5).reshape(2, 3, 4).astype(dtype)
  idx.write(tmp_path / name, array)
  back = idx.read(tmp_path / name)
  assert back.shape == array.shape and np.array_equal(back, array)


def test_idx_refuses_what_is_not_a_whole_idx_file_naming_it(tmp_path):
  idx.write(tmp_path / "plain", np.zeros((3, 28, 28), np.uint8))
  idx.write(tmp_path / "packed.gz", np.zeros((3, 28, 28), np.uint8))
  (tmp_path / "plain").write_bytes((tmp_path / "plain").read_bytes()[:-5])
  (tmp_path / "packed.gz").write_bytes((tmp_path / "packed.gz").read_bytes()[:-9])
  (tmp_path / "text").write_text("no idx here")
  for name, words in (("plain", "header 3x28x28 of uint8 says 2352"), ("packed.gz", "not a whole gzip"),
                      ("text", "not an IDX file")):
    with pytest.raises(ValueError, match=words) as error:
      idx.read(tmp_path / name)
    assert str(tmp_path / name) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("gz", [True, False])
def test_a_run_trains_on_train_minus_validation_and_is_scored_on_its_split(tmp_path, gz):
  root = write_files(tmp_path / "fmnist", gz)
  test_run = datasets.make(spec(root), seed=0, image_size=32)
  validation_run = datasets.make(spec(root, eval_split="validation"), seed=0, image_size=32)
  held_out = fashion_mnist.validation_indices(TRAIN, VALIDATION)
  all_train = idx.read(root / (fashion_mnist.PARTS["train"][0] + (".gz" if gz else "")))
  assert len(test_run.train_labels) == TRAIN - VALIDATION
  assert np.array_equal(validation_run.eval_images, all_train[held_out])
  assert not {bytes(i) for i in test_run.train_images} & {bytes(i) for i in all_train[held_out]}
  x, y = test_run.test_set
  assert x.shape == (TEST, 32, 32, 1) and x.dtype == np.float32 and y.dtype == np.int32
  assert x.min() >= -1 and x.max() <= 1 and np.all(x[:, :2] == -1) and np.all(x[:, -2:] == -1)
  assert np.array_equal(y, np.arange(TEST) % 10)
  # An epoch of the kept images, each once, in an order of the seed's.
  epoch = np.concatenate([test_run.train_batch(step, 8)[0] for step in range(4)])
  assert len({bytes(image) for image in epoch}) == TRAIN - VALIDATION
  again = datasets.make(spec(root), seed=0, image_size=32).train_batch(3, 8)
  other = datasets.make(spec(root), seed=1, image_size=32).train_batch(3, 8)
  assert np.array_equal(again[0], test_run.train_batch(3, 8)[0]) and not np.array_equal(again[0], other[0])
  halves = [test_run.train_batch(3, 8, (i, 2))[0] for i in range(2)]
  assert np.array_equal(np.concatenate(halves), again[0])
  assert np.array_equal(datasets.make(spec(root, test_size=5), seed=0, image_size=32).test_set[1], y[:5])
  layers = test_run.test_layers(2)
  assert set(np.unique(layers)) <= {BACKGROUND, TARGET} and np.all(layers[:, 0] == BACKGROUND)


def test_bad_fields_and_a_root_without_a_file_are_refused_in_one_line(tmp_path):
  root = write_files(tmp_path / "fmnist")
  (root / "t10k-labels-idx1-ubyte.gz").unlink()
  with pytest.raises(ValueError, match="no t10k-labels-idx1-ubyte") as error:
    datasets.check(spec(root), 32)
  assert "\n" not in str(error.value)
  root = write_files(tmp_path / "whole")
  with pytest.raises(ValueError, match="eval_split"):
    datasets.check(spec(root, eval_split="train"), 32)
  with pytest.raises(ValueError, match="leaves none"):
    datasets.check(OmegaConf.merge(spec(root), {"validation_size": TRAIN}), 32)
  with pytest.raises(ValueError, match="does not fit"):
    datasets.check(spec(root), 16)


def test_the_run_config_composes_and_counts_ten_classes(tmp_path):
  root = write_files(tmp_path / "fmnist")
  cfg = compose.load(["experiment=table1", "row=base", "data=fashion_mnist", f"data.root={root}",
                      f"data.validation_size={VALIDATION}",
                      f"tracking.results_dir={tmp_path / 'results'}"])
  assert cfg.data.source == "fashion_mnist" and datasets.num_classes(cfg.data) == 10


def test_debian_copy_then_the_cache_are_found_before_any_download(tmp_path, monkeypatch):
  write_files(fashion_mnist.DEBIAN_DIR, gz=False)
  refused = f"http://127.0.0.1:{_closed_port()}/"
  assert fashion_mnist.locate("", base_url=refused) == fashion_mnist.DEBIAN_DIR
  monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "elsewhere")
  write_files(fashion_mnist.cache_dir())
  assert fashion_mnist.locate("", base_url=refused) == fashion_mnist.cache_dir()


class _Server(http.server.BaseHTTPRequestHandler):
  """Serves `files` (name -> bytes); the names in `cut` stop halfway through."""
  files, cut, asked = {}, set(), []

  def do_GET(self):
    name = self.path.lstrip("/")
    self.asked.append(name)
    if name not in self.files:
      self.send_error(404)
      return
    body = self.files[name]
    self.send_response(200)
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body[:len(body) // 2] if name in self.cut else body)

  def log_message(self, *args):
    pass


@pytest.fixture
def server(tmp_path):
  """A server on loopback holding a small Fashion-MNIST's four files; (its URL, the files'
  SHA-256 by name)."""
  folder = write_files(tmp_path / "published")
  files = {p.name: p.read_bytes() for p in folder.iterdir()}
  handler = type("Handler", (_Server,), {"files": files, "cut": set(), "asked": []})
  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  checksums = {p.name: download.content_sha256(p) for p in folder.iterdir()}
  yield handler, f"http://127.0.0.1:{httpd.server_address[1]}/", checksums
  httpd.shutdown()


def _closed_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _cache_listing():
  cache = fashion_mnist.cache_dir()
  return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_a_download_is_checked_and_kept_once(server):
  handler, url, checksums = server
  assert fashion_mnist.locate("", base_url=url, files=checksums) == fashion_mnist.cache_dir()
  assert _cache_listing() == sorted(checksums)
  assert len(fashion_mnist.load(fashion_mnist.cache_dir())["train"][1]) == TRAIN
  asked = len(handler.asked)
  assert fashion_mnist.locate("", base_url=url, files=checksums) == fashion_mnist.cache_dir()
  assert len(handler.asked) == asked == 4  # Found in the cache: nothing asked again.


@pytest.mark.parametrize("fault", ["truncated", "wrong checksum", "refused"])
def test_a_failed_download_keeps_nothing_and_says_both_ways_in_one_line(server, fault):
  handler, url, checksums = server
  name = "train-labels-idx1-ubyte.gz"
  if fault == "truncated":
    handler.cut.add(name)
  elif fault == "wrong checksum":
    checksums = {**checksums, name: "0" * 64}
  else:
    url = f"http://127.0.0.1:{_closed_port()}/"
  with pytest.raises(ValueError) as error:
    fashion_mnist.locate("", base_url=url, files=checksums)
  message = str(error.value)
  assert "\n" not in message and "apt-get install dataset-fashion-mnist" in message
  assert "data.root" in message
  if fault == "wrong checksum":
    assert "content SHA-256" in message and name in message
  assert name not in _cache_listing() and not [n for n in _cache_listing() if n.startswith(".")]


def test_the_checksums_are_of_the_content_however_it_is_compressed(tmp_path):
  """A gzipped and a plain copy of one file verify alike; a gzip stream cut short does not."""
  write_files(tmp_path / "gz")
  write_files(tmp_path / "plain", gz=False)
  stem = fashion_mnist.PARTS["test"][0]
  packed, plain = tmp_path / "gz" / f"{stem}.gz", tmp_path / "plain" / stem
  assert download.content_sha256(packed) == download.content_sha256(plain)
  packed.write_bytes(packed.read_bytes()[:-20])
  with pytest.raises(download.DownloadError, match="not a whole gzip"):
    download.content_sha256(packed)
