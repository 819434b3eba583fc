"""Figure 1: accuracy against GFLOPs for TokenFuser, Unpool and Re-projection, one panel each.

Every point sits at its row's GFLOPs at paper scale (published for the paper's points,
measured for ours). Published accuracies (left axis, read off the paper's plot) and
reproduced ones (right axis, mean and t interval over seeds per framework) share the
x axis but not the y axis: the proxy task is not ImageNet.
"""
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import pandas as pd  # noqa: E402

from harness.tables import spec  # noqa: E402
from harness.tables.summary import FRAMEWORK_NAMES  # noqa: E402

SERIES = ("TokenFuser", "Unpool", "Re-projection")
STYLE = {"jax": dict(color="tab:blue", marker="o"), "torch": dict(color="tab:orange", marker="s")}
PUBLISHED = dict(color="black", marker="D", markerfacecolor="none", linestyle="--")
JITTER = 0.06  # GFLOPs: JAX and PyTorch points side by side rather than on top of each other.


def draw(frame: pd.DataFrame, frameworks, scale: str, caption: str = "") -> plt.Figure:
  """`frame`: summary.build(...) of figure1; `caption`: provenance, printed under the legend."""
  conf = spec.experiment("figure1")
  fig, axes = plt.subplots(1, len(SERIES), figsize=(4.4 * len(SERIES), 4.6), sharey=True)
  fig.subplots_adjust(left=0.06, right=0.95, top=0.86, bottom=0.3, wspace=0.42)
  ours_axes = []
  for ax, series in zip(axes, SERIES):
    rows = frame[frame.series == series].sort_values("gflops_paper_scale")
    ax.plot(rows.published_gflops, rows.published, label="paper (read off its plot)", **PUBLISHED)
    ax.set_title(series)
    ax.set_xlabel("GFLOPs at paper scale")
    ax.grid(alpha=0.3)
    ax.margins(x=0.12, y=0.15)
    ours = ax.twinx()
    ours_axes.append(ours)
    for i, fw in enumerate(frameworks):
      offset = (i - (len(frameworks) - 1) / 2) * JITTER
      ours.errorbar(rows.gflops_paper_scale + offset, rows[f"{fw}_mean"], yerr=rows[f"{fw}_ci"],
                    capsize=3, label=f"{FRAMEWORK_NAMES[fw]}, {scale} (ours)", **STYLE[fw])
    ours.set_ylabel(f"{scale} {conf['metric_name']}, ours")
    for x, y, label in zip(rows.published_gflops, rows.published, rows.label):
      ax.annotate(label.split(", ")[1].split(" ")[0], (x, y), textcoords="offset points",
                  xytext=(4, 4), fontsize=8)
  axes[0].set_ylabel(f"{conf['published_dataset']} {conf['metric_name']}, paper")
  lows = [a.get_ylim()[0] for a in ours_axes]
  highs = [a.get_ylim()[1] for a in ours_axes]
  for a in ours_axes:  # One scale for ours across panels too, so the panels compare.
    a.set_ylim(min(lows), max(highs))
  handles = axes[0].get_legend_handles_labels()[0] + ours_axes[0].get_legend_handles_labels()[0]
  labels = axes[0].get_legend_handles_labels()[1] + ours_axes[0].get_legend_handles_labels()[1]
  fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.19), ncol=len(labels),
             frameon=False)
  if caption:
    fig.supxlabel(textwrap.fill(caption, 190), fontsize=7, y=0.02, va="bottom")
  fig.suptitle("Supplementary Figure 1: TokenFuser alternatives")
  return fig


def save(fig: plt.Figure, stem) -> list:
  """PNG and SVG, with no timestamps in them."""
  png, svg = f"{stem}.png", f"{stem}.svg"
  fig.savefig(png, dpi=150, metadata={"Software": None}, bbox_inches="tight")
  with plt.rc_context({"svg.hashsalt": "tokenlearner"}):
    fig.savefig(svg, metadata={"Date": None, "Creator": None}, bbox_inches="tight")
  plt.close(fig)
  return [png, svg]
