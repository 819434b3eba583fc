"""Typed schema of a run's Hydra config: what each group under harness/conf may hold.

The YAML under harness/conf fills this schema: `experiment` (a paper artifact and its rows),
`scale` (smoke, proxy, paper), `recipe` (picked as <experiment>_<scale>: the data and
optimizer groups and the training length), `framework`, `tracking`, and `runtime` (how a run
executes, outside its hash). Each data source has its own schema, so a key the source does not
read is refused; a value of the wrong type or a key the schema does not have fails when the
config is composed.
"""
import dataclasses
from typing import Any, List

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING
from tokenlearner_spec import OptimizerConfig

from harness.configs import conf_schemas

INITS = ("shared", "native")  # train.init: see harness/run/initial_weights.py


@dataclasses.dataclass
class DigitsData:
  """Cluttered handwritten digits (harness/data/digits.py); the canvas is the model's image_size."""
  source: str = "digits"
  digit_size: int = 16  # side a source digit is scaled to
  clutter: int = 6  # clutter fragments per canvas
  clutter_size: int = 5  # side of a clutter fragment
  test_size: int = 1000


@dataclasses.dataclass
class MovingDigitsData:
  """Clips of moving digits (harness/data/moving_digits.py); frames and size are the model's."""
  source: str = "moving_digits"
  digit_size: int = 12
  max_digits: int = 3  # 1..max_digits digits per clip
  test_size: int = 512


@dataclasses.dataclass
class FashionMNISTData:
  """Fashion-MNIST images (harness/data/fashion_mnist.py), centred on the model's canvas."""
  source: str = "fashion_mnist"
  root: str = ""  # the four IDX files; '': Debian's copy, else the user cache (downloaded once)
  validation_size: int = 10000  # train images held out, the same for every run
  eval_split: str = "test"  # what a run is scored on: validation (protocol choices) or test
  test_size: int = 0  # score on the first n images of eval_split; 0: all of them


@dataclasses.dataclass
class MovingFashionData:
  """Clips of moving Fashion-MNIST items (harness/data/moving_fashion.py); frames and size are
  the model's."""
  source: str = "moving_fashion"
  root: str = ""  # as FashionMNISTData's
  validation_size: int = 10000  # as FashionMNISTData's: the validation clips' items
  eval_split: str = "test"  # validation (protocol choices) or test
  item_size: int = 14  # side an item is scaled to
  num_items: int = 2  # per clip
  test_size: int = 2048  # evaluation clips


@dataclasses.dataclass
class ImageNetData:
  source: str = "imagenet"
  root: str = MISSING  # <root>/train/<class>/*, <root>/val/<class>/*
  # inception: a random 5-100% of the area at aspect 3/4-4/3, resized (ViT fine-tuning's);
  # resize_crop: the shorter side resized to 8/7 of the size, then a random crop
  train_crop: str = "inception"
  # resize: the whole image resized to the size, no crop (ViT fine-tuning's); center_crop: the
  # shorter side resized to the size, then the centre
  eval_crop: str = "resize"


@dataclasses.dataclass
class CharadesData:
  source: str = "charades"
  root: str = MISSING  # annotations and frames extracted at 24 fps
  fps_stride: int = 4  # keep every n-th extracted frame (24 fps / 4 = 6 fps)
  # segments: the clips that cover each test video end to end, their outputs merged (max per
  # label: an action the video holds anywhere); centre: the video's centre clip
  eval_clips: str = "segments"
  # '': decode the JPEGs; else the folder of the decoded, resized frames (the same pixels,
  # without decoding: python -m harness.data.charades cache builds it)
  frame_cache: str = ""


# The options of the `data` group: conf/data/<source>.yaml extends <source>_schema, so a key
# that its source does not read is refused when the config is composed.
DATA_SOURCES = {"digits": DigitsData, "moving_digits": MovingDigitsData,
                "fashion_mnist": FashionMNISTData, "moving_fashion": MovingFashionData,
                "imagenet": ImageNetData,
                "charades": CharadesData}


# The `optim` group: tokenlearner_spec.OptimizerConfig's fields and defaults, but total_steps,
# which the harness sets to train.steps. Derived, so that the fields are written down once.
OptimSpec = dataclasses.make_dataclass("OptimSpec", [
    (f.name, f.type, dataclasses.field(default=f.default))
    for f in dataclasses.fields(OptimizerConfig) if f.name != "total_steps"])


@dataclasses.dataclass
class BaseSpec:
  """The base model a run fine-tunes, as the paper fine-tunes a pre-trained ViT with the
  module inserted (harness/run/base_model.py): `row` of `experiment` trained `steps` steps at
  `learning_rate` (the run's other optimizer and data settings), once per seed, by
  `framework`, for every row and both twins. A row takes the base's weights where it has the
  same ones, except those under `keep_own` (its module), and fine-tunes from there."""
  experiment: str = ""  # '': no base; the run trains from its initial weights
  row: str = ""
  steps: int = 0
  learning_rate: float = 0.0
  warmup_steps: int = 0
  framework: str = "torch"
  keep_own: List[str] = dataclasses.field(default_factory=list)  # weight-name prefixes


@dataclasses.dataclass
class TrainSpec:
  steps: int = MISSING
  batch_size: int = MISSING
  eval_batch_size: int = 256
  # shared: both frameworks start from one file per seed (harness/run/initial_weights.py); native
  init: str = "shared"
  precision: str = "float32"  # compute dtype (float32, bfloat16); parameters and optimizer state stay float32
  # a ViT / AugReg .npz laid over the shared start (harness/twins/pretrained.py); '': none
  pretrained: str = ""
  # the folder of the public ViT checkpoints, set once: a paper recipe names its file in it
  pretrained_dir: str = ""
  base: BaseSpec = dataclasses.field(default_factory=BaseSpec)


@dataclasses.dataclass
class RuntimeSpec:
  """How a run executes, not what it computes: outside the config hash, so changing any of
  these never retrains a finished run."""
  log_every: int = 10  # steps between the reads of the losses, which are then logged; at least 1
  checkpoint_every: int = 100  # steps between checkpoints; 0: never
  threads: int = 0  # CPU threads per run; 0: the framework's default
  fast_compile: bool = False  # XLA backend optimisations off: for runs so short that compiling dominates
  micro_batches: int = 1  # gradient accumulation: a step's batch in this many parts, for memory
  # the step compiled whole, the same computation faster on an accelerator (minutes to compile
  # on a CPU): PyTorch's model under torch.compile; JAX's gradient and update in one jitted
  # program that donates the old state's buffers
  compiled_step: bool = False
  data_workers: int = 0  # processes decoding train and test batches ahead of the model (harness/data/pipeline.py); 0: in the run's
  # `reproduce` on one machine: each run in processes of its own on this many GPUs (PyTorch: a
  # torchrun process per GPU; JAX: one process), one run at a time; 0: runs in the sweep's workers
  gpus_per_run: int = 0
  progress_index: int = 0  # where this run stands in a `reproduce` sweep, for the progress line
  progress_total: int = 0


@dataclasses.dataclass
class TrackingSpec:
  uri: str = ""  # '' -> $MLFLOW_TRACKING_URI, else sqlite:///<results_dir>/mlflow.db
  results_dir: str = "results"
  experiment_prefix: str = ""  # MLflow experiment = prefix + artifact name
  artifacts: bool = True  # a finished run's weights (both frameworks), config and curves in MLflow


@dataclasses.dataclass
class RunConfig:
  """A whole run config: the groups composed, plus the row, framework and seed it runs."""
  experiment: conf_schemas.Experiment = MISSING
  scale: conf_schemas.Scale = MISSING
  data: Any = MISSING  # one of DATA_SOURCES
  optim: OptimSpec = MISSING
  train: TrainSpec = MISSING
  runtime: RuntimeSpec = dataclasses.field(default_factory=RuntimeSpec)
  tracking: TrackingSpec = dataclasses.field(default_factory=TrackingSpec)
  framework: str = "jax"
  row: str = MISSING
  seed: int = 0


ConfigStore.instance().store(name="schema", node=RunConfig)
for _source, _schema in DATA_SOURCES.items():
  ConfigStore.instance().store(group="data", name=f"{_source}_schema", node=_schema)
