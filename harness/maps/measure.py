"""`maps`: Supplementary Figure 2 (section A.4), where the first TokenLearner module looks,
from the finished runs' logged weights (harness/store/finished_runs.py): nothing is trained.

For each TokenLearner row of harness/conf/maps.yaml, in its framework, every seed of the
scale: the maps alpha_i(x) of the module over test examples, and the share of their mass
on the target, clutter and background (harness/maps/token_maps.py), beside fixed pooling
of the same token budget. Writes results/maps-<scale>.csv (share by row, seed, token and
layer), and tables/figure2.png, .svg and .md (harness/report/figure2.py).
"""
import dataclasses
import pathlib
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from harness import data as datasets
from harness.configs import compose, conf_schemas, registry, seed_plan
from harness.data.base import LAYER_NAMES
from harness.machine import durable
from harness.maps import token_maps
from harness.store import export as run_export, finished_runs, run_status
from harness.twins import backends
from tokenlearner_spec.pooling import pooling_regions

BATCH = 64  # test examples per forward pass
LEARNED, POOLED = "TokenLearner", "fixed pooling"


def settings() -> dict:
  """conf/maps.yaml, its rows checked against the registry (a ValueError names the first bad one)."""
  conf = conf_schemas.load(conf_schemas.CONF_DIR / "maps.yaml", conf_schemas.MapsFile)
  for entry in conf["rows"]:
    try:
      for key in (entry["row"], entry["pooled"]):
        registry.get_row(entry["experiment"], key)
    except KeyError as error:
      raise ValueError(f"maps.yaml: {error.args[0]}") from None
    if entry["experiment"] not in conf["drawn"]:
      raise ValueError(f"maps.yaml: drawn has no count for {entry['experiment']}")
  return conf


def csv_path(results_dir, scale: str) -> pathlib.Path:
  return pathlib.Path(results_dir) / f"maps-{scale}.csv"


@dataclasses.dataclass
class Panel:
  """What Figure 2 draws of one row: test images or clips [K, (T,) H, W] in [-1, 1] and the
  maps of the first tokens [K, (T,) S, g, g]."""
  experiment: str
  row: str
  label: str
  framework: str
  seed: int
  run_id: str
  images: np.ndarray
  maps: np.ndarray


def pooled_maps(kind: str, fields, tokens: int, grid: int) -> np.ndarray:
  """The pooled row's regions as maps [S, g, g], refused unless it pools `tokens` on a
  `grid` x `grid` grid, as the TokenLearner row it stands beside does."""
  model_config = backends.make_config(kind, fields)
  if kind == "vit":
    side = model_config.image_size // model_config.patch_size
    pooled = (side // model_config.pool_window) ** 2 if model_config.token_reduction == "pool" else 0
  else:
    side = model_config.grid_size
    pooled = model_config.num_tokens if model_config.tokenizer == "pool" else 0
  if (side, pooled) != (grid, tokens):
    raise ValueError(f"maps.yaml: that row pools {pooled} tokens on a {side}x{side} grid, not "
                     f"{tokens} on {grid}x{grid} as the TokenLearner row beside it")
  return token_maps.pooling_maps(pooling_regions(grid, tokens))


def _shares(maps: np.ndarray, layers: np.ndarray, silent_below: float):
  """Per token: the mean share of its mass on each layer over the examples (and frames) where
  its map is not silent [S, L] (NaN where it always is), and how often it is silent [S]."""
  silent = maps.max(axis=(-2, -1)) < silent_below  # Shape: [..., S].
  mass = token_maps.mass_on_layers(np.where(silent[..., None, None], 1.0, maps), layers)  # [..., S, L].
  silent = np.broadcast_to(silent, mass.shape[:-1])  # Fixed pooling's maps are the same for all.
  mass, silent = mass.reshape(-1, *mass.shape[-2:]), silent.reshape(-1, silent.shape[-1])
  heard = (~silent).sum(axis=0)  # Shape: [S].
  shares = np.where(heard[:, None] > 0, (mass * ~silent[..., None]).sum(axis=0) / np.maximum(heard, 1)[:, None],
                    np.nan)
  return shares, silent.mean(axis=0)


def _records(experiment, row, maps_of, seed, measured, pooled_with="") -> List[dict]:
  """Long-form records; pooled_with: the fixed-pooling row a TokenLearner row is set beside."""
  shares, silent = measured
  return [dict(experiment=experiment, row=row, maps=maps_of, pooled_with=pooled_with, seed=seed,
               token=token + 1, layer=layer, share=float(shares[token, j]), silent=float(silent[token]))
          for token in range(shares.shape[0]) for j, layer in enumerate(LAYER_NAMES)]


def _pooled_records(entry: dict, trained, tokens: int, grid: int, layers: np.ndarray,
                    silent_below: float) -> List[dict]:
  """The records of the row that pools as many tokens as `entry`'s TokenLearner row, whose
  config `trained` (a run's) holds the experiment's rows."""
  spec = OmegaConf.to_container(trained.experiment, resolve=True)
  fields = registry.merge_fields(spec, entry["pooled"], trained.scale.model_scale)
  regions = pooled_maps(registry.get_row(entry["experiment"], entry["pooled"]).kind, fields, tokens, grid)
  return _records(entry["experiment"], entry["pooled"], POOLED, -1, _shares(regions, layers, silent_below))


def measure(planned: Sequence[run_status.Planned], overrides: Sequence[str], conf: dict):
  """The records of every configured row (its runs' and its pooled row's) and the panels,
  each drawn from the row's lowest seed."""
  records, panels, pooled_done = [], [], set()
  for entry in conf["rows"]:
    experiment, key = entry["experiment"], entry["row"]
    runs = sorted((p for p in planned if (p.row.experiment, p.row.key) == (experiment, key)),
                  key=lambda p: p.seed)
    if not runs:  # The sweep left the row out (scale.framework_rows, experiment_seeds).
      continue
    for p in runs:
      run = finished_runs.find(overrides, run_id=p.run.info.run_id)
      model = finished_runs.model(run, conf["framework"])
      if p is runs[0]:  # The test set is the same for every seed.
        data = datasets.make(run.config.data, 0, model.fields["image_size"], model.fields.get("num_frames", 1))
        images = data.test_set[0][:conf["measured"]]
        layers = data.test_layers(len(images))
      maps = np.concatenate([token_maps.token_maps(model, images[i:i + BATCH])
                             for i in range(0, len(images), BATCH)])  # Shape: [B, (T,) S, g, g].
      shares = _shares(maps, layers, conf["silent_below"])
      records += _records(experiment, key, LEARNED, p.seed, shares, entry["pooled"])
      if p is runs[0]:
        shown = conf["drawn"][experiment]
        panels.append(Panel(experiment, key, p.row.label, conf["framework"], p.seed, run.run_id,
                            images[:shown, ..., 0], maps[:shown, ..., :conf["tokens_drawn"], :, :]))
    if (experiment, entry["pooled"]) not in pooled_done:
      pooled_done.add((experiment, entry["pooled"]))
      records += _pooled_records(entry, run.config, maps.shape[-3], maps.shape[-1], layers,
                                  conf["silent_below"])
  return pd.DataFrame.from_records(records), panels


def _data_configs(experiments: Sequence[str], overrides: Sequence[str]):
  """(experiment, its composed config) for each experiment, for what data it reads."""
  for experiment in experiments:
    row = registry.rows(experiment)[0].key
    yield experiment, compose.compose_config([*overrides, f"experiment={experiment}", f"row={row}"])


@dataclasses.dataclass
class Measured:
  """What `maps` measured: the mass shares per row and seed (written to results/maps-<scale>.csv),
  the panels to draw, and the export of the runs they are of."""
  frame: pd.DataFrame
  panels: List[Panel]
  runs: pd.DataFrame
  experiments: List[str]
  scale: str
  csv: pathlib.Path


def from_finished_runs(overrides: Sequence[str], conf: dict) -> Tuple[int, Optional[Measured]]:
  """Measures the maps of the finished runs the overrides plan and writes their CSV: (0, what
  was measured), or (status, None) with a line printed: 0 when the data cannot show Figure 2,
  1 when runs are missing."""
  cfg = compose.compose_config(overrides)
  framework, scale = conf["framework"], cfg.scale.name
  seeds = seed_plan.seeds_by_framework(compose.validate(cfg, data_files=False).scale, [framework], None)
  wanted = {(r["experiment"], r["row"]) for r in conf["rows"]}
  experiments = [e for e in registry.EXPERIMENTS if any(e == w[0] for w in wanted)]
  undrawn = sorted({f"{e} ({composed.data.source})" for e, composed in _data_configs(experiments, overrides)
                    if not datasets.source(composed.data.source).draws_layers})
  if undrawn:  # ImageNet and Charades do not say where their objects are.
    print(f"maps: skipped; the data of {', '.join(undrawn)} does not say what its pixels show "
          f"(Figure 2 is drawn on the proxy's and smoke scale's data)")
    return 0, None
  planned = [p for p in run_status.planned(experiments, [framework], seeds, overrides)
             if (p.row.experiment, p.row.key) in wanted]
  if not planned:
    print(f"maps: skipped; the sweep runs none of Figure 2's rows in {framework}")
    return 0, None
  left = [p for p in planned if p.status != "FINISHED"]
  if left:
    names = ", ".join(f"{p.row.id} seed {p.seed} ({p.status})" for p in left[:4])
    print(f"maps: {len(left)} of {len(planned)} runs not finished: {names}"
          f"{' ...' if len(left) > 4 else ''}; `python -m harness reproduce` trains them")
    return 1, None
  try:
    frame, panels = measure(planned, overrides, conf)
  except (finished_runs.NotFound, ValueError) as error:  # No artifacts (runs from before they were kept).
    print(f"maps: {error}")
    return 1, None
  path = csv_path(cfg.tracking.results_dir, scale)
  durable.write_file(path, lambda out: frame.to_csv(out, index=False, float_format="%.10g"), "the maps' export")
  return 0, Measured(frame, panels, run_export.export(planned), experiments, scale, path)
