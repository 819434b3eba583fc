"""One measurement in a fresh process, printed as one JSON line:

  python -m harness.bench.probe roof <framework> <threads>
  python -m harness.bench.probe train <framework> <experiment> <row> <steps> <repeats>
  python -m harness.bench.probe peer <framework> <steps> <repeats>
  python -m harness.bench.probe vectt <framework> <chunk_size> <repeats>
  python -m harness.bench.probe latency <framework> <experiment> <row> <repeats>
  python -m harness.bench.probe data <source> <image_size> <frames> <workers> <steps> <batch>
  python -m harness.bench.probe decode <source> <image_size> <frames> <batch> <repeats>

`roof`: float32 matmul GFLOP/s (1024 x 1024 operands), the median of several timed
batches of calls after a warm-up. `train`: examples per second of the row's proxy
training step on one thread (as `reproduce` runs them), the median over repeats of
`steps` steps on batches made beforehand, after two warm-up steps (compilation).
`peer`: the same for the Table 1 proxy base model built from the framework's stock
blocks (harness/bench/peer_*.py), trained by the twin's own train step.
`vectt`: the vector attention at the paper's Table 2 size (8 tokens x 64 frames = 512
tokens, 492 channels, batch 1), forward and backward: the median time and the peak
resident memory above what the process held before (0: naive [M, M, C] evaluation).
`latency`: the forward pass of a row's paper-scale model on one example, every core,
weights drawn at random (their values do not change the cost), median after a warm-up.
`data`: train examples (images or clips) decoded and augmented per second by a file source
(imagenet, charades) at a model's input size, in this process (0 workers) or in worker
processes, over `steps` batches after the first (the workers' start-up), on a fixture of
JPEGs the size of the dataset's (FIXTURE_IMAGE) that it writes.
`decode`: on one core, the same source's train batches beside a plain PIL loop's that decodes
the same files and makes the same crops in uint8 (PEERS), timed in turn, the median of
`repeats`; and the bytes an example ships.
"""
import json
import os
import pathlib
import resource
import statistics
import sys
import tempfile
import time

import numpy as np
from omegaconf import OmegaConf

MATMUL_SIZE = 1024
MATMUL_CALLS, MATMUL_REPEATS = 5, 7


def set_threads(framework: str, threads: int) -> None:
  """One thread: what `reproduce` gives each run, on a core of its own (harness/machine/core_locks.py).
  All cores: the framework's default."""
  from harness.machine import core_locks
  from harness.run import train
  limit = threads if threads < (os.cpu_count() or 1) else 0
  train.configure_runtime(OmegaConf.create({"threads": limit, "fast_compile": False}), framework)
  if limit and not core_locks.claim(limit):
    raise RuntimeError(f"no {limit} free core(s) to pin a {limit}-thread measurement to: other "
                       f"runs hold them ({core_locks.lock_dir()}); the bench wants an idle machine")


def _median_seconds(call, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    began = time.perf_counter()
    call()
    times.append(time.perf_counter() - began)
  return statistics.median(times)


def roof(framework: str, threads: int) -> dict:
  n = MATMUL_SIZE
  a, b = (np.random.default_rng(i).standard_normal((n, n), np.float32) for i in range(2))
  if framework == "jax":
    import jax
    matmul = jax.jit(lambda x, y: x @ y)
    a, b = jax.device_put(a), jax.device_put(b)
    run = lambda: [matmul(a, b).block_until_ready() for _ in range(MATMUL_CALLS)]
  else:
    import torch
    a, b = torch.from_numpy(a), torch.from_numpy(b)
    run = lambda: [torch.mm(a, b) for _ in range(MATMUL_CALLS)]
  run()  # Warm-up (and compilation).
  seconds = _median_seconds(run, MATMUL_REPEATS)
  return {"gflops_per_s": 2 * n ** 3 * MATMUL_CALLS / seconds / 1e9}


def _row(framework: str, experiment: str, row: str):
  """(run config, model config, data) of a row's proxy run."""
  from harness import data as datasets
  from harness.configs import compose
  from harness.twins import backends
  cfg = compose.load([f"experiment={experiment}", f"row={row}", "scale=proxy", f"framework={framework}",
                     "train.init=native"])
  model = backends.make_config(cfg.experiment.model, compose.model_fields(cfg))
  return cfg, model, datasets.make(cfg.data, 0, model.image_size, getattr(model, "num_frames", 1))


class _PeerRunner:
  """A stock-block model behind the Runner protocol, trained by the twin's train step."""

  def __init__(self, framework: str, model_config, optim):
    if framework == "jax":
      import jax
      import jax.numpy as jnp
      from harness.bench.peer_jax import StockViT
      from tokenlearner_jax import train_step
      model = StockViT(model_config)
      example = jnp.zeros((1, model_config.image_size, model_config.image_size, model_config.in_channels))
      self.params = jax.jit(model.init)(jax.random.PRNGKey(0), example)
      tx, self._step = train_step.make_train_step(model, optim)
      self.opt_state, self._key = tx.init(self.params), jax.random.PRNGKey(0)
    else:
      import torch
      from harness.bench.peer_torch import StockViT
      from tokenlearner_torch import train_step
      self.model = StockViT(model_config)
      _, self._step = train_step.make_train_step(self.model, optim)
    self.framework = framework

  def put(self, x, y):
    if self.framework == "jax":
      return x, y
    import torch
    return torch.from_numpy(x), torch.from_numpy(y).long()

  def train_step(self, step: int, batch):
    if self.framework == "jax":
      self.params, self.opt_state, loss = self._step(self.params, self.opt_state, *batch, self._key)
      return loss
    return self._step(*batch).detach()

  def fetch(self, losses):
    return [float(loss) for loss in losses]


def _throughput(runner, data, batch: int, steps: int, repeats: int) -> dict:
  """Steps as the training loop runs them: batches put ahead, the losses read at the end."""
  batches = [data.train_batch(step, batch) for step in range(steps)]
  for step in range(2):  # Warm-up: compilation, first-touch allocations.
    runner.fetch([runner.train_step(step, runner.put(*batches[step % steps]))])
  def run():
    on_device = [runner.put(x, y) for x, y in batches]
    runner.fetch([runner.train_step(step, b) for step, b in enumerate(on_device)])
  seconds = _median_seconds(run, repeats)
  return {"batch_size": batch, "examples_per_s": steps * batch / seconds}


def train_throughput(framework: str, experiment: str, row: str, steps: int, repeats: int) -> dict:
  from harness.configs import compose
  from harness.twins import runners
  cfg, model, data = _row(framework, experiment, row)
  runner = runners.make(framework, cfg.experiment.model, compose.model_fields(cfg),
                        compose.make_optimizer_config(cfg), data.multilabel, 0)
  return _throughput(runner, data, cfg.train.batch_size, steps, repeats)


def peer_throughput(framework: str, steps: int, repeats: int) -> dict:
  from harness.configs import compose
  cfg, model, data = _row(framework, "table1", "base")
  runner = _PeerRunner(framework, model, compose.make_optimizer_config(cfg))
  return _throughput(runner, data, cfg.train.batch_size, steps, repeats)


VECTT_TOKENS, VECTT_WIDTH = 8 * 64, 492  # The paper's Table 2 module: 8 tokens per frame, 64 frames.


def _resident_bytes() -> int:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def vectt_cost(framework: str, chunk_size: int, repeats: int) -> dict:
  x = np.random.default_rng(0).standard_normal((1, VECTT_TOKENS, VECTT_WIDTH), np.float32)
  if framework == "jax":
    import jax
    from tokenlearner_jax.mixers import VectorAttention
    module = VectorAttention(chunk_size=chunk_size)
    params = module.init(jax.random.PRNGKey(0), x[:, :8])
    grad = jax.jit(jax.grad(lambda p, x: module.apply(p, x).sum(), argnums=(0, 1)))
    run = lambda: jax.block_until_ready(grad(params, x))
  else:
    import torch
    from tokenlearner_torch.mixers import VectorAttention
    module, inputs = VectorAttention(VECTT_WIDTH, chunk_size=chunk_size), torch.from_numpy(x)

    def run():
      inputs.grad = None
      module.zero_grad(set_to_none=True)
      module(inputs.requires_grad_()).sum().backward()
  baseline = _resident_bytes()
  run()  # Warm-up (compilation); its peak counts, as a training step's would.
  seconds = _median_seconds(run, repeats)
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB.
  return {"seconds": seconds, "peak_bytes": max(peak - baseline, 0)}


def forward_latency(framework: str, experiment: str, row: str, repeats: int) -> dict:
  from harness.configs import registry
  from harness.twins import backends
  kind = registry.get_row(experiment, row).kind
  fields = registry.model_fields(experiment, row, "paper")
  model = backends.build(framework, kind, fields)
  shape = backends.input_shape(kind, model.config, batch=1)
  x = np.random.default_rng(0).standard_normal(shape, np.float32)
  rng = np.random.default_rng(1)
  if framework == "jax":
    import jax
    template = jax.eval_shape(model.init, jax.random.PRNGKey(0), jax.ShapeDtypeStruct(shape, np.float32))
    params = jax.tree.map(lambda s: 0.02 * rng.standard_normal(s.shape, np.float32), template)
    forward = jax.jit(lambda p, x: model.apply(p, x)[0])
    run = lambda: forward(params, x).block_until_ready()
  else:
    import torch
    model.eval()
    inputs = torch.from_numpy(x)

    @torch.no_grad()
    def run():
      return model(inputs)[0]
  run()  # Warm-up (compilation).
  return {"seconds": _median_seconds(run, repeats)}


# (width, height) of the fixture's JPEGs: ImageNet's typical image, Charades' 480p frames.
FIXTURE_IMAGE = {"imagenet": (500, 375), "charades": (480, 270)}
JPEG_QUALITY = 90
CHARADES_FRAMES = 256  # Room for a 64-frame clip of every 4th frame (253 frames).


def _data_fixture(source: str, root: pathlib.Path) -> pathlib.Path:
  """The source's layout (harness/testing/tiny_datasets.py) with smooth random pictures, which
  compress as photographs do (noise would not), as JPEGs of FIXTURE_IMAGE's size: 18 train
  images for imagenet, 2 train videos of CHARADES_FRAMES frames for charades."""
  from PIL import Image
  from harness.testing import tiny_datasets
  if source == "imagenet":
    root = tiny_datasets.imagenet(root, classes=[f"n{k:02d}" for k in range(6)])
  else:
    root = tiny_datasets.charades(root, frames=CHARADES_FRAMES)
  rng, (w, h) = np.random.default_rng(0), FIXTURE_IMAGE[source]
  for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png")):
    coarse = Image.fromarray(rng.integers(0, 256, (h // 8, w // 8, 3), np.uint8))
    coarse.resize((w, h), Image.BICUBIC).save(path, format="JPEG", quality=JPEG_QUALITY)
  return root


def _peer_image(path, size: int, rng) -> np.ndarray:
  """ViT's inception crop as a plain PIL loop makes it: decode, a random box, resized, flipped."""
  from PIL import Image
  with Image.open(path) as image:
    image = image.convert("RGB")
    width, height = image.size
    area = rng.uniform(0.05, 1.0) * width * height
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    w = min(width, round(np.sqrt(area * aspect)))
    h = min(height, round(np.sqrt(area / aspect)))
    left, top = rng.integers(0, width - w + 1), rng.integers(0, height - h + 1)
    pixels = np.asarray(image.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h)))
  return pixels[:, ::-1] if rng.random() < 0.5 else pixels


def _peer_clip(frames, size: int, rng) -> np.ndarray:
  """A clip as a plain PIL loop makes it: each frame decoded, its shorter side resized to 8/7 of
  the size, one random crop and flip for the whole clip."""
  from PIL import Image
  clip, top, left, flip = [], None, None, rng.random() < 0.5
  for path in frames:
    with Image.open(path) as image:
      image = image.convert("RGB")
      scale = size * 8 // 7 / min(image.size)
      image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
      pixels = np.asarray(image)
    if top is None:
      top = rng.integers(0, pixels.shape[0] - size + 1)
      left = rng.integers(0, pixels.shape[1] - size + 1)
    pixels = pixels[top:top + size, left:left + size]
    clip.append(pixels[:, ::-1] if flip else pixels)
  return np.stack(clip)


def decode_throughput(source: str, image_size: int, frames: int, batch: int, repeats: int) -> dict:
  """Examples per second on this core: the source's train batches and the plain loop's (the
  same files, in the same order), and for Charades the train batches read from its frame
  cache (built untimed), timed in turn; the bytes of one example as shipped."""
  from harness import data as datasets
  from harness.configs import schema
  from harness.data import charades, files, frame_cache
  with tempfile.TemporaryDirectory() as tmp:
    root = _data_fixture(source, pathlib.Path(tmp))
    spec = OmegaConf.structured(schema.DATA_SOURCES[source](root=str(root)))
    data = datasets.make(spec, 0, image_size, frames)
    rng = np.random.default_rng(0)
    makers = {"harness": lambda step: data.train_batch(step, batch)[0]}
    if source == "charades":
      cache = pathlib.Path(tmp) / "frame_cache"
      videos = [video for split in charades.SPLITS for video in charades.read_split(root, split)]
      frame_cache.build(cache, image_size, videos, progress=lambda line: None)  # stdout: the result.
      cached = datasets.make(OmegaConf.merge(spec, {"frame_cache": str(cache)}), 0, image_size, frames)
      makers["cached"] = lambda step: cached.train_batch(step, batch)[0]

    def peer(step):
      if source == "imagenet":
        picks = [data.train[files.epoch_index(0, step * batch + i, len(data.train))][0] for i in range(batch)]
        return np.stack([_peer_image(path, image_size, rng) for path in picks])
      span = spec.fps_stride
      videos = [data.train[files.epoch_index(0, step * batch + i, len(data.train))] for i in range(batch)]
      return np.stack([_peer_clip([v.frame(span * t) for t in range(frames)], image_size, rng)
                       for v in videos])

    makers["peer"] = peer
    timings = {name: [] for name in makers}
    shipped = makers["harness"](0).nbytes // batch  # Also the warm-up: imports, first reads.
    for name in makers:
      if name != "harness":
        makers[name](0)
    for repeat in range(1, repeats + 1):
      for name, make in makers.items():
        began = time.perf_counter()
        make(repeat)
        timings[name].append(time.perf_counter() - began)
  return {f"{name}_examples_per_s": batch / statistics.median(seconds) for name, seconds in timings.items()} | {
      "bytes_per_example": int(shipped)}


def data_throughput(source: str, image_size: int, frames: int, workers: int, steps: int,
                    batch: int) -> dict:
  from harness import data as datasets
  from harness.configs import schema
  from harness.data import pipeline
  with tempfile.TemporaryDirectory() as tmp:
    root = _data_fixture(source, pathlib.Path(tmp))
    spec = OmegaConf.structured(schema.DATA_SOURCES[source](root=str(root)))
    batches = pipeline.train_batches(datasets.make(spec, 0, image_size, frames), 0, steps + 1, batch,
                                      workers=workers)
    began = time.perf_counter()
    next(batches)  # Start-up: worker processes, imports, first reads.
    first = time.perf_counter()
    for _ in range(steps):
      next(batches)
    seconds = time.perf_counter() - first
    batches.close()  # Untimed: stopping the workers waits for their idle poll (0.5 s).
  speed = steps * batch / seconds
  return {"examples_per_s": speed, "examples_per_s_per_worker": speed / max(workers, 1),
          "first_batch_s": first - began}


def main(argv) -> None:
  if argv[0] in ("data", "decode"):  # No framework: the loaders are numpy.
    source, *sizes = argv[1:]
    measure = data_throughput if argv[0] == "data" else decode_throughput
    print(json.dumps(measure(source, *map(int, sizes))))
    return
  what, framework, *rest = argv
  if what == "roof":
    set_threads(framework, int(rest[0]))
    result = roof(framework, int(rest[0]))
  elif what == "train":
    set_threads(framework, 1)
    experiment, row, steps, repeats = rest
    result = train_throughput(framework, experiment, row, int(steps), int(repeats))
  elif what == "peer":
    set_threads(framework, 1)
    result = peer_throughput(framework, int(rest[0]), int(rest[1]))
  elif what == "vectt":
    set_threads(framework, 1)
    result = vectt_cost(framework, int(rest[0]), int(rest[1]))
  elif what == "latency":
    experiment, row, repeats = rest
    result = forward_latency(framework, experiment, row, int(repeats))
  else:
    raise SystemExit(f"unknown measurement {what!r}; expected roof, train, peer, vectt, latency or data")
  print(json.dumps(result))


if __name__ == "__main__":
  main(sys.argv[1:])
