"""Bad inputs the command line must refuse before anything is built, trained or recorded:
exit status 2 and one line on stderr, `error: ...`, naming the problem.

A case is the argv of `python -m harness`, what it writes first into a fresh folder of its
own (`{root}` in its argv and message), the environment it sets, and a string its error line
must contain: the field, file, row or video at fault. Its results go to {root}/results
unless its argv says where. `run` runs a case in this process.
"""
import contextlib
import dataclasses
import io
import os
import pathlib
import shutil
import sqlite3
from typing import Callable, Dict, List, Optional, Tuple

from harness.testing import tiny_datasets

ROOT = "{root}"
RUN = ("run", "scale=smoke")
IMAGENET_RUN = ("run", "experiment=table1", "scale=paper", "train.pretrained=", "data.root={root}/imagenet")
CHARADES_RUN = ("run", "experiment=table2", "row=mhsa", "scale=paper", "data.root={root}/charades")
TL_ROW = ("run", "experiment=table1", "row=tl16_at_12", "scale=smoke")  # 64 positions at proxy
VIDEO_TL_ROW = ("run", "experiment=table2", "row=tl_vectt_tokenfuser", "scale=smoke")  # a 4x4 grid
REPRODUCE = ("reproduce", "--experiments", "table1", "--frameworks", "jax", "scale=smoke")
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def _nothing(root: pathlib.Path) -> None:
  pass


@dataclasses.dataclass(frozen=True)
class BadInput:
  id: str
  argv: Tuple[str, ...]
  names: str  # what the error line must contain
  setup: Callable[[pathlib.Path], None] = _nothing
  env: Dict[str, str] = dataclasses.field(default_factory=dict)
  skip: str = ""  # why the case cannot be made here, if it cannot

  def command(self, root: pathlib.Path) -> List[str]:
    argv = [arg.replace(ROOT, str(root)) for arg in self.argv]
    if not any(arg.startswith("tracking.results_dir=") for arg in argv):
      argv.append(f"tracking.results_dir={root / 'results'}")
    return argv

  def message_names(self, root: pathlib.Path) -> str:
    return self.names.replace(ROOT, str(root))

  def describe(self) -> str:
    """What the case does, in words: what it writes, then its command line."""
    command = " ".join([*(f"{k}={v}" for k, v in self.env.items()), "python -m harness", *self.argv])
    return f"{self.setup.__doc__}; {command}" if self.setup.__doc__ else command


# What the cases write before running: a tiny dataset, then the fault.

def _imagenet(root: pathlib.Path) -> pathlib.Path:
  return tiny_datasets.imagenet(root / "imagenet")


def _imagenet_without_val(root):
  """A tiny ImageNet without val/"""
  shutil.rmtree(_imagenet(root) / "val")


def _imagenet_empty_class(root):
  """A tiny ImageNet with an empty class folder train/n04"""
  (_imagenet(root) / "train" / "n04").mkdir()


def _imagenet_val_class_not_in_train(root):
  """A tiny ImageNet with a class val/n99 that train/ lacks"""
  tiny_datasets.write_image(_imagenet(root) / "val" / "n99" / "val_9.png", 9)


def _imagenet_undecodable(root):
  """A tiny ImageNet with one image replaced by text"""
  (_imagenet(root) / "train" / "n02" / "n02_1.JPEG").write_bytes(b"not a JPEG")


def _charades(root: pathlib.Path) -> pathlib.Path:
  """A tiny Charades: 3 videos of 4 frames"""
  return tiny_datasets.charades(root / "charades", frames=4)


def _charades_without_test_csv(root):
  """A tiny Charades without Charades_v1_test.csv"""
  (_charades(root) / "Charades_v1_test.csv").unlink()


def _charades_malformed_actions(root):
  """A tiny Charades whose second train video's actions field is 'c156 0.00'"""
  tiny_datasets.charades_csv(_charades(root), "train", {"AAAAA": "c001 0.00 0.50", "BBBBB": "c156 0.00"})


def _charades_unknown_action(root):
  """A tiny Charades whose test video has action c999"""
  tiny_datasets.charades_csv(_charades(root), "test", {"CCCCC": "c999 0.00 1.00"})


def _charades_without_frames(root):
  """A tiny Charades without the frames of video BBBBB"""
  shutil.rmtree(_charades(root) / "Charades_v1_rgb" / "BBBBB")


def _charades_undecodable_frame(root):
  """A tiny Charades with one frame cut to 7 bytes"""
  (_charades(root) / "Charades_v1_rgb" / "CCCCC" / "CCCCC-000003.jpg").write_bytes(b"\xff\xd8 cut")


def _a_file(root):
  """A file where the results directory's parent should be"""
  root.mkdir(parents=True, exist_ok=True)
  (root / "file").write_text("")


def _sqlite(path: pathlib.Path, tables, rows: int = 0) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  connection = sqlite3.connect(path)
  for table in tables:
    connection.execute(f"CREATE TABLE {table} (value TEXT)")
  connection.executemany(f"INSERT INTO {tables[0]} VALUES (?)", [("x" * 200,)] * rows)
  connection.commit()
  connection.close()


MLFLOW_TABLES = ("metrics", "experiments", "runs", "params", "tags")


def _store_cut_in_half(root):
  """A tracking store results/mlflow.db (MLflow's tables, 2000 rows) cut in half"""
  store = root / "results" / "mlflow.db"
  _sqlite(store, MLFLOW_TABLES, rows=2000)
  store.write_bytes(store.read_bytes()[:store.stat().st_size // 2])


def _store_of_garbage(root):
  """A tracking store results/mlflow.db of 700 bytes of text"""
  (root / "results").mkdir(parents=True)
  (root / "results" / "mlflow.db").write_bytes(b"garbage" * 100)


def _store_of_another_program(root):
  """An SQLite database results/mlflow.db with one table, not MLflow's"""
  _sqlite(root / "results" / "mlflow.db", ("notes",))


def _read_only_results(root):
  """A results directory with mode 555"""
  (root / "results").mkdir(parents=True)
  (root / "results").chmod(0o555)


CASES = [
    # Arguments of the verbs.
    BadInput("jobs-zero", ("reproduce", "--jobs", "0"), "--jobs: '0'"),
    BadInput("jobs-negative", ("reproduce", "--jobs", "-2"), "--jobs: '-2'"),
    BadInput("jobs-not-a-number", ("reproduce", "--jobs", "two"), "--jobs: 'two'"),
    BadInput("seeds-not-numbers", ("reproduce", "--seeds", "0,one"), "--seeds: '0,one'"),
    BadInput("seeds-negative", ("reproduce", "--seeds", "-1"), "--seeds: '-1'"),
    BadInput("experiments-unknown", ("reproduce", "--experiments", "table9"), "'table9'"),
    BadInput("frameworks-unknown", ("list", "--frameworks", "mxnet"), "'mxnet'"),
    BadInput("verb-unknown", ("train", "scale=smoke"), "'train'"),
    BadInput("override-without-value", ("run", "smoke"), "unrecognised arguments: smoke"),
    # The run config.
    BadInput("experiment-unknown", (*RUN, "experiment=table9"), "experiment/table9"),
    BadInput("row-unknown", (*RUN, "row=nope"), "unknown row 'nope'"),
    BadInput("framework-unknown", (*RUN, "framework=mxnet"), "framework/mxnet"),
    BadInput("scale-unknown", ("run", "scale=huge"), "scale/huge"),
    BadInput("key-misspelt", (*RUN, "train.stepz=3"), "stepz"),
    BadInput("model-field-without-its-path", (*TL_ROW, "num_tokens=0"), "num_tokens"),
    BadInput("seed-not-a-number", (*RUN, "seed=abc"), "seed=abc"),
    BadInput("seed-negative", (*RUN, "seed=-1"), "seed=-1"),
    BadInput("seed-beyond-the-generators", (*RUN, "seed=18446744073709551616"), "seed=18446744073709551616"),
    BadInput("seeds-beyond-the-generators", ("reproduce", "--seeds", "0,4294967296"), "--seeds: '0,4294967296'"),
    BadInput("steps-zero", (*RUN, "train.steps=0"), "train.steps=0"),
    BadInput("batch-negative", (*RUN, "train.batch_size=-8"), "train.batch_size=-8"),
    BadInput("warmup-beyond-steps", (*RUN, "optim.warmup_steps=9"), "warmup_steps=9"),
    BadInput("optimizer-unknown", (*RUN, "optim.name=lamb"), "name='lamb'"),
    BadInput("learning-rate-negative", (*RUN, "optim.learning_rate=-1"), "learning_rate=-1.0"),
    BadInput("learning-rate-zero", (*RUN, "optim.learning_rate=0"), "learning_rate=0.0"),
    BadInput("learning-rate-infinite", (*RUN, "optim.learning_rate=inf"), "learning_rate=inf"),
    BadInput("label-smoothing-beyond-one", (*RUN, "optim.label_smoothing=5"), "label_smoothing=5.0"),
    BadInput("momentum-beyond-one", (*RUN, "optim=sgd", "optim.momentum=50"), "momentum=50.0"),
    BadInput("adam-b1-beyond-one", (*RUN, "optim.b1=1.5"), "b1=1.5"),
    BadInput("adam-eps-not-a-number", (*RUN, "optim.eps=nan"), "eps=nan"),
    BadInput("init-unknown", (*RUN, "train.init=random"), "train.init='random'"),
    BadInput("runtime-negative", (*RUN, "runtime.checkpoint_every=-1"), "runtime.checkpoint_every=-1"),
    BadInput("log-every-zero", (*RUN, "runtime.log_every=0"), "runtime.log_every=0"),
    BadInput("precision-unknown", (*RUN, "train.precision=float16"), "train.precision='float16'"),
    BadInput("micro-batches-uneven", (*RUN, "runtime.micro_batches=3"), "runtime.micro_batches=3"),
    # The model: token counts from 1 to the positions the row reduces.
    BadInput("num-tokens-zero", (*TL_ROW, "experiment.rows.tl16_at_12.proxy.num_tokens=0"), "num_tokens=0"),
    BadInput("num-tokens-negative", (*TL_ROW, "experiment.rows.tl16_at_12.proxy.num_tokens=-3"),
             "num_tokens=-3"),
    BadInput("num-tokens-beyond-positions", (*TL_ROW, "experiment.rows.tl16_at_12.proxy.num_tokens=100"),
             "num_tokens=100 exceeds the 64 positions"),
    BadInput("video-num-tokens-beyond-grid", (*VIDEO_TL_ROW, "experiment.scales.proxy.num_tokens=17"),
             "num_tokens=17 exceeds the 4x4 grid"),
    BadInput("tokenlearner-beyond-depth", (*TL_ROW, "experiment.rows.tl16_at_12.proxy.tokenlearner_at=8"),
             "tokenlearner_at=8"),
    BadInput("classes-differ-from-data", (*RUN, "experiment.scales.proxy.num_classes=12"),
             "data digits has 10 classes"),
    # Data the generators cannot make.
    BadInput("data-source-unknown", (*RUN, "data.source=mnist"), "unknown data source 'mnist'"),
    BadInput("data-group-unknown", (*RUN, "data=mnist"), "data/mnist"),
    BadInput("test-size-zero", (*RUN, "data.test_size=0"), "data.test_size=0"),
    BadInput("clutter-negative", (*RUN, "data.clutter=-1"), "data.clutter=-1"),
    BadInput("digit-beyond-canvas", (*RUN, "data.digit_size=40"), "digit_size=40"),
    BadInput("video-digits-zero", ("run", "experiment=table2", "row=mhsa", "scale=smoke",
                                   "data.max_digits=0"), "data.max_digits=0"),
    # Datasets on disk.
    BadInput("imagenet-root-empty", ("run", "experiment=table1", "scale=paper", "train.pretrained="),
             "data.root is empty"),
    BadInput("paper-checkpoint-folder-unset", ("run", "experiment=figure1", "row=unpool_tl8", "scale=paper"),
             "this recipe fine-tunes ViT-B_16.npz: set train.pretrained_dir"),
    BadInput("imagenet-root-missing", IMAGENET_RUN, "data.root='{root}/imagenet' is not a directory"),
    BadInput("imagenet-without-val", IMAGENET_RUN, "has no val/ folder", _imagenet_without_val),
    BadInput("imagenet-class-without-images", IMAGENET_RUN,
             "class folder {root}/imagenet/train/n04 has no images", _imagenet_empty_class),
    BadInput("imagenet-val-class-not-in-train", IMAGENET_RUN, "train/ lacks: n99",
             _imagenet_val_class_not_in_train),
    BadInput("imagenet-image-does-not-open", IMAGENET_RUN,
             "image {root}/imagenet/train/n02/n02_1.JPEG does not open", _imagenet_undecodable),
    BadInput("charades-root-missing", CHARADES_RUN, "data.root='{root}/charades' is not a directory"),
    BadInput("charades-csv-missing", CHARADES_RUN,
             "missing Charades annotations {root}/charades/Charades_v1_test.csv", _charades_without_test_csv),
    BadInput("charades-actions-malformed", CHARADES_RUN,
             "{root}/charades/Charades_v1_train.csv line 3, video BBBBB: action 'c156 0.00'",
             _charades_malformed_actions),
    BadInput("charades-action-unknown", CHARADES_RUN,
             "Charades_v1_test.csv line 2, video CCCCC: unknown Charades action 'c999'", _charades_unknown_action),
    BadInput("charades-frames-missing", CHARADES_RUN,
             "Charades video BBBBB in {root}/charades/Charades_v1_rgb/BBBBB", _charades_without_frames),
    BadInput("charades-frame-does-not-open", CHARADES_RUN,
             "image {root}/charades/Charades_v1_rgb/CCCCC/CCCCC-000003.jpg does not open",
             _charades_undecodable_frame),
    BadInput("charades-stride-zero", (*CHARADES_RUN, "data.fps_stride=0"), "data.fps_stride=0", _charades),
    # The environment.
    BadInput("tracking-uri-unknown-scheme", RUN, "tracking URI 'foo://bar'",
             env={"MLFLOW_TRACKING_URI": "foo://bar"}),
    BadInput("tracking-uri-config", (*RUN, "tracking.uri=mlflow://x"), "tracking URI 'mlflow://x'"),
    BadInput("tracking-uri-driver-on-http", (*RUN, "tracking.uri=http+x://h"), "tracking URI 'http+x://h'"),
    BadInput("tracking-server-down", RUN, "tracking server http://127.0.0.1:9 does not answer within 5 s",
             env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}),
    BadInput("reproduce-tracking-server-down", REPRODUCE, "tracking server http://127.0.0.1:9 does not answer",
             env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}),
    BadInput("tracking-database-driver-missing", (*RUN, "tracking.uri=postgresql://me:secret@127.0.0.1/runs"),
             "tracking URI postgresql://me:***@127.0.0.1/runs needs the database driver psycopg"),
    BadInput("tracking-store-cut-in-half", RUN, "tracking store {root}/results/mlflow.db is damaged "
             "(database disk image is malformed); nothing was written to it", _store_cut_in_half),
    BadInput("tracking-store-not-a-database", RUN, "tracking store {root}/results/mlflow.db is damaged "
             "(file is not a database)", _store_of_garbage),
    BadInput("tracking-store-of-another-program", RUN, "{root}/results/mlflow.db is an SQLite database but "
             "not an MLflow store", _store_of_another_program),
    BadInput("results-dir-empty", (*RUN, "tracking.results_dir="), "tracking.results_dir is empty"),
    BadInput("results-dir-under-a-file", (*RUN, "tracking.results_dir={root}/file/results"),
             "cannot make a folder in {root}/file", _a_file),
    BadInput("results-dir-read-only", RUN, "results directory {root}/results", _read_only_results,
             skip="root writes through permission bits" if ROOT_USER else ""),
    BadInput("results-dir-on-sysfs", (*RUN, "tracking.results_dir=/sys/harness-results"),
             "results directory /sys/harness-results",
             skip="" if pathlib.Path("/sys/kernel").is_dir() else "no sysfs here"),
    BadInput("reproduce-bad-data", (*REPRODUCE, "data.test_size=0"), "data.test_size=0"),
    BadInput("reproduce-tracking-uri", REPRODUCE, "tracking URI 'foo://bar'",
             env={"MLFLOW_TRACKING_URI": "foo://bar"}),
]


@dataclasses.dataclass(frozen=True)
class Outcome:
  code: int
  stderr: str
  stores: Tuple[pathlib.Path, ...]  # MLflow stores the command made or changed under the case's folder


def _set_environ(key: str, value: Optional[str]) -> None:
  if value is None:
    os.environ.pop(key, None)
  else:
    os.environ[key] = value


@contextlib.contextmanager
def _environment(values: Dict[str, Optional[str]]):
  """os.environ with `values` set (None: unset), restored afterwards."""
  saved = {key: os.environ.get(key) for key in values}
  try:
    for key, value in values.items():
      _set_environ(key, value)
    yield
  finally:
    for key, value in saved.items():
      _set_environ(key, value)


def run(case: BadInput, root: pathlib.Path) -> Outcome:
  """Writes the case's files under `root` and runs its command line in this process, with
  no tracking URI from the environment but the case's own."""
  from harness.cli import main
  root.mkdir(parents=True, exist_ok=True)
  case.setup(root)
  stores = lambda: {path: path.read_bytes() for path in root.rglob("mlflow.db")}
  before = stores()
  stderr = io.StringIO()
  with _environment({"MLFLOW_TRACKING_URI": None, **case.env}), contextlib.redirect_stderr(stderr):
    try:
      code = main(case.command(root))
    except SystemExit as exit:
      code = exit.code
  return Outcome(code, stderr.getvalue(), tuple(p for p, data in stores().items() if before.get(p) != data))
