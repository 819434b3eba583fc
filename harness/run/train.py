"""One training run, in either framework, tracked in MLflow, resumable, skipped when done.

A run is keyed by the hash of its resolved config. If MLflow already holds a
FINISHED run with that hash, nothing is trained. Otherwise training starts, or
resumes from the run's last checkpoint (results/checkpoints/<hash>/) into the
same MLflow run, and ends with the same metrics as an uninterrupted run: a
train batch is a function of (seed, step) and the checkpoint holds the whole
optimizer state.
"""
import contextlib
import dataclasses
import math
import os
import pathlib
from typing import Dict, Tuple

import numpy as np

from harness import data as datasets
from harness.configs import compose, run_spec
from harness.data import metrics, pipeline
from harness.flops import analytic
from harness.machine import core_locks, durable, host, process_group, xla_flags
from harness.run import base_model, device_feed, initial_weights, preemption
from harness.run.phases import Phases
from harness.run.progress import Progress
from harness.run.record import checkpoints_after, flatten, Follower, logs_after, RunRecord
from harness.store import artifacts, finished_runs, leases, tracking
from harness.testing import killpoints
from harness.twins import backends, pretrained

# Failures of a run under way whose one line says all there is to say (recorded in MLflow with
# the reason, except a run taken over, which is another process's): reported without a traceback,
# as is a bad config.
RUN_FAILURES = (FloatingPointError, durable.StorageError, tracking.StoreUnavailable, leases.ClaimLost)
SELF_EXPLAINED = (compose.ConfigError, *RUN_FAILURES)


@dataclasses.dataclass
class Outcome:
  status: str  # 'skipped' (already finished), 'finished'
  run_id: str
  metrics: Dict[str, float]


def configure_runtime(runtime, framework: str) -> None:
  """Caps a run's CPU threads (one run per core when runs go in parallel), gives the process
  that many cores of its own (harness/machine/core_locks.py), and sets XLA's compile effort (the run
  config's `runtime`). JAX's backend reads the flags when it starts, so the first run in a
  process decides them."""
  flags = []
  if runtime.threads:
    core_locks.claim(runtime.threads)
    flags += xla_flags.ONE_THREAD
  if runtime.threads and framework == "torch":
    import torch
    torch.set_num_threads(runtime.threads)
  if runtime.fast_compile:
    flags += xla_flags.FAST_COMPILE
  if not xla_flags.backend_started():
    xla_flags.set_flags(flags)


def evaluate(runner, data, batch_size: int, group: process_group.Group = process_group.Group(),
             workers: int = 0) -> Tuple[Dict[str, float], np.ndarray]:
  """The run's test metrics, and its metric on each of metrics.REPLICATES resamples of the
  test items (the same resamples for every run, so that comparisons pair item by item). Each
  process of a group predicts its own share of the test inputs, decoded by `workers`
  processes, and every process gets all of the outputs."""
  indices, own = pipeline.test_share(data.test_size, group.part)
  logits, labels = [], []
  # The workers end with a preemption signal: none is noted while the run evaluates.
  with contextlib.closing(pipeline.test_batches(data, indices, batch_size, workers)) as batches:
    for x, y in batches:
      logits.append(runner.predict(x))
      labels.append(y)
  shares = group.gather((np.concatenate(logits)[:own], np.concatenate(labels)[:own]))
  logits, labels = (np.concatenate([share[i] for share in shares]) for i in (0, 1))
  logits, labels = data.merge_test(logits, labels)
  replicates = metrics.item_replicates(logits, labels, data.multilabel, metrics.REPLICATES)
  if not data.multilabel:
    return {"test_top1": 100 * metrics.top1(logits, labels),
            metrics.CHANCE: 100 * metrics.chance_top1(labels, logits.shape[-1])}, replicates
  results = {"test_map": 100 * metrics.mean_average_precision(logits, labels),
             metrics.CHANCE: 100 * metrics.chance_map(labels)}
  for label_group, of_group in data.label_groups.items():
    results[f"test_map_{label_group}"] = 100 * metrics.mean_average_precision(logits[:, of_group],
                                                                              labels[:, of_group])
    results[f"{metrics.CHANCE}_{label_group}"] = 100 * metrics.chance_map(labels[:, of_group])
  return results, replicates


def reads_losses_after(step: int, runtime, steps: int) -> bool:
  """Whether the loop waits for the device after `step` to read the losses: where the record
  logs them, or before it writes a checkpoint. Every process of a group waits at the same
  steps, and agrees there whether to stop for a preemption."""
  last = step + 1 == steps
  return logs_after(step, runtime, last) or checkpoints_after(step, runtime, last)


def base_weights(cfg) -> Dict[str, np.ndarray]:
  """The final weights of the base the run `cfg` fine-tunes (harness/run/base_model.py), which
  is trained here first unless it is finished."""
  outcome = run(dataclasses.replace(run_spec.of(compose.base_config(cfg)), role="base model"))
  return finished_runs.weights(outcome.run_id, tracking.Tracker(cfg.tracking))


def run(spec: run_spec.RunSpec) -> Outcome:
  """Trains and evaluates the run `spec` describes, or skips it if done.
  Its results include the wall time by phase: the process's age when the run began
  (start-up), setup, the first step (JAX compiles it), the other steps, data, evaluation,
  and bookkeeping (MLflow, checkpoints); after a resume, of the resumed part."""
  clock, startup = Phases(), host.process_seconds()
  cfg, artifact, name = spec.cfg, spec.cfg.experiment.name, spec.name
  with clock("setup"):
    configure_runtime(cfg.runtime, cfg.framework)
    group = process_group.join(cfg.framework)
    share = group.count * cfg.runtime.micro_batches
    if cfg.train.batch_size % share:
      raise compose.ConfigError(f"bad config: train.batch_size={cfg.train.batch_size} does not split into "
                               f"{group.count} processes x runtime.micro_batches={cfg.runtime.micro_batches}")
  progress = Progress(name, cfg.train.steps, cfg.runtime.progress_index, cfg.runtime.progress_total,
                      stream=None if group.main else open(os.devnull, "w"))  # One line per run.
  with clock("bookkeeping"):
    if group.main:
      record = RunRecord(tracking.Tracker(cfg.tracking), artifact, spec.config_hash, cfg.runtime,
                         cfg.tracking.results_dir, group)
    else:
      record = Follower(group, cfg.tracking.results_dir, spec.config_hash)

  def waiting(state) -> None:
    progress.note(f"waiting: {state.holder} trains this config (claim {state.number})")

  def skip(done) -> Outcome:
    record.release("skipped")
    progress.skip(f"already finished (MLflow run {tracking.short_id(done.run_id)})")
    return Outcome("skipped", done.run_id, done.metrics)

  with clock("bookkeeping"):
    done = record.finished_run()  # Before claiming: a rerun of finished work writes nothing.
  if done is not None:
    return skip(done)
  base = None
  if cfg.train.base.experiment:
    with clock("base"):
      base = base_weights(cfg)
  with clock("bookkeeping"):
    record.claim_run(waiting)
    done = record.finished_run()  # Finished while this process waited for the claim.
  if done is not None:
    return skip(done)

  step = None
  try:
    with clock("setup"):
      from harness.twins import runners
      kind, fields, model_config, optim = spec.kind, spec.fields, spec.model, spec.optimizer
      data = datasets.make(cfg.data, cfg.seed, model_config.image_size,
                           getattr(model_config, "num_frames", 1))
      start = (initial_weights.ensure(cfg.tracking.results_dir, kind, fields, cfg.seed)
               if cfg.train.init == "shared" else None)
      if cfg.train.pretrained:
        start = pretrained.apply(start, cfg.train.pretrained, kind, fields)
      if base is not None:
        start = base_model.lay_over(start, base, cfg.train.base.keep_own)
      runner = runners.make(cfg.framework, kind, fields, optim, data.multilabel, cfg.seed, start,
                            cache_dir=pathlib.Path(cfg.tracking.results_dir).resolve() / "jax_cache",
                            precision=cfg.train.precision, micro_batches=cfg.runtime.micro_batches,
                            compiled=cfg.runtime.compiled_step)
      lr_factor = backends.train_step_module(cfg.framework).lr_factor
    with clock("bookkeeping"):
      first = record.open(runner, name, tags={
          "row": cfg.row, "experiment": artifact, "framework": cfg.framework, "scale": cfg.scale.name,
          "seed": str(cfg.seed), "git_commit": host.git_commit(), "device": runner.device(),
          "machine": host.machine(), **{f"version.{k}": v for k, v in host.versions().items()}},
          params=flatten(spec.resolved),
          first_metrics={"gflops": sum(analytic.count(kind, model_config).values()) / 1e9,
                         "params": runner.num_params})
    if first:
      progress.note(f"resuming at step {first} (MLflow run {tracking.short_id(record.run_id)})")
    killpoints.reached("start", first, group.main)
    progress.start(first)
    # This process's part of each step's batch, decoded ahead by data_workers processes, which
    # stop with the loop however it ends, and put on the device ahead of its step. The losses
    # are read (the host waits for the device) only where they are logged, a checkpoint is
    # written or a preemption is acted on (harness/run/preemption.py).
    pending = []  # (step, its loss on the device), not yet read
    def read_losses():
      nonlocal step
      if not pending:
        return
      with clock("steps"):  # Waiting for the device is the steps' time.
        losses = runner.fetch([loss for _, loss in pending])
      for (done, _), loss in zip(pending, losses):
        loss = killpoints.loss(cfg.row, done, loss)
        if not math.isfinite(loss):
          step = done  # The run's failure_step: found steps later, where the losses are read.
          raise FloatingPointError(f"loss is {loss} at step {done}")
        lr = optim.learning_rate * float(lr_factor(done, optim.warmup_steps, optim.total_steps))
        with clock("bookkeeping"):
          record.step_done(runner, done, done + 1 == cfg.train.steps, train_loss=loss, learning_rate=lr)
        progress.update(done + 1, loss)
      pending.clear()

    batches = pipeline.train_batches(data, first, cfg.train.steps, cfg.train.batch_size, group.part,
                                     cfg.runtime.data_workers, workers_ignore=preemption.SIGNALS)
    with contextlib.closing(batches), preemption.Notice() as notice:
      device_batches = device_feed.ahead(runner.put, batches)
      for step in range(first, cfg.train.steps):
        with clock("data"):
          batch = next(device_batches)
        with clock("first_step" if step == first else "steps"):
          pending.append((step, runner.train_step(step, batch)))
          if step == first:  # Its compile and run, not only its dispatch.
            runner.fetch([pending[-1][1]])
        reads = reads_losses_after(step, cfg.runtime, cfg.train.steps)
        if reads:
          read_losses()
        killpoints.reached("step", step, group.main)
        killpoints.signal_after(step, group.main)
        signum = notice.due(group) if reads or group.count == 1 else 0
        if signum:
          read_losses()
          with clock("bookkeeping"):
            record.preempt(runner, step + 1, preemption.name(signum))
            group.broadcast()  # The others wait until process 0's checkpoint and marks are written.
          progress.note(f"preempted by {preemption.name(signum)}: checkpointed at step {step + 1}; "
                        "a rerun resumes there")
          raise preemption.Preempted(signum, step + 1)
    killpoints.reached("eval", cfg.train.steps - 1, group.main)
    step = None
    train_seconds = record.seconds() - record.prior_seconds
    with clock("eval"):
      results, replicates = evaluate(runner, data, cfg.train.eval_batch_size, group,
                                     cfg.runtime.data_workers)
    if cfg.tracking.artifacts:
      with clock("bookkeeping"):
        record.keep(lambda tracker, run_id: artifacts.log(tracker, run_id, cfg, kind, fields,
                                                          runner.weights()), cfg.train.steps - 1)
    results.update(wall_time_s=record.seconds(),
                   train_examples_per_s=(cfg.train.steps - first) * cfg.train.batch_size /
                   max(train_seconds, 1e-9), time_startup_s=startup, **clock.metrics())
    record.finish(cfg.train.steps, results, replicates)
  except leases.ClaimLost:
    raise  # The run is another process's now: nothing of it is this one's to mark.
  except preemption.Preempted as stop:  # Marked already; the launcher decides what comes next.
    notice.pass_on(stop.signum)
    raise
  except KeyboardInterrupt as error:
    record.end(tracking.KILLED, error, step)
    raise
  except BaseException as error:
    record.end(tracking.FAILED, error, step)
    raise
  progress.finish(results)
  return Outcome("finished", record.run_id, results)
