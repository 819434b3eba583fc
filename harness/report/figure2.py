"""Supplementary Figure 2: the first TokenLearner module's maps, and where their mass falls.

The paper shows, for a Charades clip, the spatial attention maps of four of the eight
tokens over the frames. The figure here shows the same for the proxy's TokenLearner rows,
the test image or clip on top and one token's map per row below it, each map on its own
colour scale, from its smallest weight (dark) to its largest (bright), except a silent map
(conf/maps.yaml's silent_below: the token is off), drawn dark. tables/figure2.md says in numbers what the
picture suggests: the share of each map's mass on the target, on clutter and on
background, per token and averaged, beside fixed pooling of the same token budget.
"""
import textwrap
from typing import List, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from tabulate import tabulate  # noqa: E402

from harness.configs import tables_conf  # noqa: E402
from harness.machine import durable  # noqa: E402
from harness.report import provenance, stats  # noqa: E402
from harness.report.figure1 import save  # noqa: E402
from harness.report.summary import FRAMEWORK_NAMES  # noqa: E402
from harness.store.tracking import short_id  # noqa: E402

TITLE = "Supplementary Figure 2: where the first TokenLearner module looks"
LAYER_TITLES = {"target": "Target", "clutter": "Clutter", "background": "Background"}  # Columns.


def _upsampled(maps: np.ndarray, size: int) -> np.ndarray:
  """Maps [..., g, g] spread over the image's pixels [..., size, size] (a cell's weight on each
  of its pixels), so that a map lines up with the frame above it."""
  cell = size // maps.shape[-1]
  return np.repeat(np.repeat(maps, cell, axis=-2), cell, axis=-1)


def _frames(panel) -> List[tuple]:
  """(column title, image [H, W], maps [S, g, g]) per column: a clip's frames, or the images."""
  if panel.images.ndim == 4:  # One clip: its frames.
    return [(f"frame {t + 1}", panel.images[0, t], panel.maps[0, t]) for t in range(panel.images.shape[1])]
  return [(f"test image {i + 1}", panel.images[i], panel.maps[i]) for i in range(len(panel.images))]


def draw(panels: Sequence, silent_below: float, caption: str = "") -> plt.Figure:
  """A silent map (largest weight below `silent_below`) is drawn dark, not stretched."""
  columns = max(len(_frames(p)) for p in panels)
  heights = [1 + p.maps.shape[-3] for p in panels]
  fig = plt.figure(figsize=(1.25 * columns + 1.2, 1.3 * sum(heights) + 1.6))
  subfigures = fig.subfigures(len(panels), 1, height_ratios=heights)
  for sub, panel in zip(np.atleast_1d(subfigures), panels):
    frames = _frames(panel)
    axes = sub.subplots(1 + panel.maps.shape[-3], columns, squeeze=False)
    for c, (title, image, maps) in enumerate(frames):
      axes[0, c].imshow(image, cmap="gray", vmin=-1, vmax=1)
      axes[0, c].set_title(title, fontsize=8)
      for s, token_map in enumerate(_upsampled(maps, image.shape[-1])):
        low, high = (token_map.min(), token_map.max()) if token_map.max() >= silent_below else (0.0, 1.0)
        axes[1 + s, c].imshow(token_map, cmap="magma", vmin=float(low), vmax=float(high))
    for s in range(panel.maps.shape[-3]):
      axes[1 + s, 0].set_ylabel(f"token {s + 1}", fontsize=8)
    axes[0, 0].set_ylabel("input", fontsize=8)
    for ax in axes.flat:
      ax.set_xticks([])
      ax.set_yticks([])
    for ax in axes[:, len(frames):].flat:
      ax.set_visible(False)
    sub.suptitle(f"{panel.experiment}: {panel.label} ({FRAMEWORK_NAMES[panel.framework]} seed {panel.seed}, "
                 f"MLflow run {short_id(panel.run_id)})", fontsize=10)
  fig.suptitle(TITLE, y=1.0)
  if caption:
    fig.supxlabel(textwrap.fill(caption, 140), fontsize=6, va="top", y=0.0)
  return fig


def _cell(values: pd.Series, confidence: float, sign: str = "") -> str:
  """Mean ± t half-width over the seeds, in percent, of the seeds where the value is defined."""
  e = stats.estimate(100 * values.dropna().to_numpy(float), confidence)
  if e.n == 0:
    return "–"
  if e.n == 1 or np.isnan(e.half_width):
    return f"{e.mean:{sign}.1f}"
  return f"{e.mean:{sign}.1f} ± {e.half_width:.1f}"


def _silent(per_seed: pd.Series) -> str:
  """How often maps are silent, in percent: the mean over seeds and (with several) their range."""
  values = 100 * per_seed.to_numpy(float)
  spread = f" ({values.min():.0f}-{values.max():.0f})" if len(values) > 1 else ""
  return f"{values.mean():.1f}{spread}"


def _pooled_over_tokens(rows: pd.DataFrame) -> pd.DataFrame:
  """Per seed and layer, the share over every map that is not silent: each token's share
  weighed by how often its map is on. [seed x layer]."""
  on = 1 - rows.silent
  weighted = (rows.share.fillna(0) * on).groupby([rows.seed, rows.layer]).sum()
  return (weighted / on.groupby([rows.seed, rows.layer]).sum()).unstack()


def markdown(frame: pd.DataFrame, framework: str, measured: int, provenance_lines: str) -> str:
  """Per configured row: the mass shares of its tokens (mean over seeds ± t interval) and of
  the fixed pooling beside it, and the difference on the target. A layer no pixel of
  the data shows (the clips have no clutter) has no column."""
  confidence = tables_conf.load()["confidence"]
  text = [f"# {TITLE}", "",
          "Generated by `python -m harness maps` from the runs' logged weights; do not edit by hand.",
          "", f"- **Maps of:** {FRAMEWORK_NAMES.get(framework, framework)} runs, the first {measured} "
          "test images or clips", provenance_lines, "",
          "Each cell is the share of a map's mass, in percent, on the pixels that show the target "
          "(the clothing item; a digit at smoke scale), clutter (fragments of other digits, in the "
          "smoke scale's images) or background, with a map's weight on a grid "
          "cell spread evenly over the cell's pixels; averaged over those test examples (and a clip's "
          "frames), then over seeds: mean ± the half-width of the "
          f"{confidence:.0%} t interval over seeds. Fixed pooling weighs each region's cells "
          "equally, so, averaged over its tokens, it puts on each layer that layer's share of the "
          "image: a learned map above it on the target looks at the target. A map whose largest "
          "weight is below 0.001 is silent (its token is off for that example) and left out of the "
          "shares: the averaged row pools, per seed, every map that is not silent, whatever its token; "
          "a token's row has the seeds where it is ever on (a dash: none). **Silent** is how often a "
          "map is silent, the mean over seeds (their range in brackets).", ""]
  for (experiment, row), rows in frame[frame.maps == "TokenLearner"].groupby(["experiment", "row"], sort=False):
    pooled = frame[(frame.experiment == experiment) & (frame.row == rows.pooled_with.iloc[0])]
    pooled_shares = pooled.groupby("layer").share.mean()
    layers = [layer for layer in LAYER_TITLES if pooled_shares[layer] > 0]
    seeds = sorted(rows.seed.unique())
    averaged = _pooled_over_tokens(rows)
    table = [[f"TokenLearner ({row}), {rows.token.nunique()} tokens pooled", len(seeds),
              *(_cell(averaged[layer], confidence) for layer in layers),
              _silent(rows.groupby("seed").silent.mean())]]
    for token, of_token in rows.groupby("token"):
      by_layer = of_token.set_index(["seed", "layer"]).share.unstack()
      table.append([f"token {token}", int(by_layer[layers[0]].notna().sum()),
                    *(_cell(by_layer[layer], confidence) for layer in layers),
                    _silent(of_token.groupby("seed").silent.first())])
    table.append([f"fixed pooling ({pooled.row.iloc[0]}), {pooled.token.nunique()} regions", "–",
                  *(f"{100 * pooled_shares[layer]:.1f}" for layer in layers), "0.0"])
    gain = averaged["target"] - pooled_shares["target"]
    text += [f"## {experiment}: {row}", "",
             tabulate(table, headers=["Maps", "Seeds", *(LAYER_TITLES[l] for l in layers), "Silent"],
                      tablefmt="pipe", disable_numparse=True), "",
             f"On the target, TokenLearner minus fixed pooling: {_cell(gain, confidence, '+')} "
             f"points (seeds {', '.join(map(str, seeds))}).", ""]
  return "\n".join(text)


def build(frame: pd.DataFrame, panels: Sequence, framework: str, measured: int, runs: pd.DataFrame,
          experiments: Sequence[str], scale: str, out, silent_below: float) -> list:
  """tables/figure2.png, .svg and .md; `runs`: the export of the runs the maps are of."""
  written = save(draw(panels, silent_below, provenance.caption(runs, experiments, scale)), out / "figure2")
  path = out / "figure2.md"
  durable.write_text(path, markdown(frame, framework, measured, provenance.markdown(runs, experiments, scale)) + "\n",
                     "the Figure 2 table")
  return [*written, str(path)]
