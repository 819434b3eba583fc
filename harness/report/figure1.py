"""Supplementary Figure 1: accuracy against GFLOPs for TokenFuser, Unpool and Re-projection.

The paper draws one axes, ImageNet top-1 against GFLOPs, with the three fusers as three
series on it, so that their ranking is read directly. So does this figure, twice, side by
side: on the left the paper's points (its published accuracy against its published
GFLOPs, read off its plot), on the right ours (mean and t interval over seeds per framework,
against our analytic GFLOPs of the same model at paper scale). A fuser has the same colour
in both panels; the marker and line style tell the paper and the frameworks apart. The two
panels have their own y axes because the proxy task is not ImageNet: the numbers do not
compare across panels, only the ranking and the spacing of the fusers do.
"""
import math
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from harness.configs import tables_conf  # noqa: E402
from harness.machine import durable  # noqa: E402
from harness.report.summary import FRAMEWORK_NAMES  # noqa: E402

SERIES = ("TokenFuser", "Unpool", "Re-projection")
COLOR = {"TokenFuser": "tab:blue", "Unpool": "tab:orange", "Re-projection": "tab:green"}
PAPER = dict(marker="D", linestyle=":", markersize=6)
STYLE = {"jax": dict(marker="o", linestyle="-"), "torch": dict(marker="s", linestyle="--",
                                                                markerfacecolor="white")}
PAPER_TITLE = "Paper (read off its plot)"
JITTER = 0.08  # GFLOPs: the frameworks' points side by side rather than on top of each other.


def _tokens(label: str) -> str:
  """'TokenFuser, 8-TL at 6' -> '8-TL'."""
  return label.split(", ")[1].split(" ")[0]


def _finite(*values) -> bool:
  return all(not math.isnan(float(v)) for v in values)


def draw(frame: pd.DataFrame, frameworks, scale: str, caption: str = "") -> plt.Figure:
  """`frame`: summary.build(...) of figure1; `caption`: provenance, printed under the legend."""
  conf = tables_conf.experiment("figure1")
  metric, dataset = conf["metric_name"], conf["published_dataset"]
  fig, (paper, ours) = plt.subplots(1, 2, figsize=(11, 6), sharex=True)
  fig.subplots_adjust(left=0.07, right=0.98, top=0.86, bottom=0.38, wspace=0.22)
  for series in SERIES:
    rows = frame[frame.series == series].sort_values("gflops_paper_scale")
    color = COLOR[series]
    paper.plot(rows.published_gflops.to_numpy(float), rows.published.to_numpy(float), color=color,
               label=series, **PAPER)
    for x, y, label in zip(rows.published_gflops, rows.published, rows.label):
      if _finite(x, y):  # Below right of the point: the line leaves each point up or left.
        paper.annotate(_tokens(label), (x, y), textcoords="offset points", xytext=(6, -4),
                       va="top", fontsize=8, color=color)
    for i, fw in enumerate(frameworks):
      offset = (i - (len(frameworks) - 1) / 2) * JITTER
      ours.errorbar(rows.gflops_paper_scale.to_numpy(float) + offset, rows[f"{fw}_mean"].to_numpy(float),
                    yerr=rows[f"{fw}_ci"].to_numpy(float), color=color, capsize=3,
                    label=f"{series}, {FRAMEWORK_NAMES[fw]}", **STYLE[fw])
    for record in rows.to_dict("records"):  # Over the highest bar, clear of the points.
      tops = [record[f"{fw}_mean"] + (record[f"{fw}_ci"] if _finite(record[f"{fw}_ci"]) else 0)
              for fw in frameworks]
      top = max((t for t in tops if _finite(t)), default=math.nan)
      if _finite(record["gflops_paper_scale"], top):
        ours.annotate(_tokens(record["label"]), (record["gflops_paper_scale"], top), ha="center",
                      textcoords="offset points", xytext=(0, 4), fontsize=8, color=color)
  paper.set_title(PAPER_TITLE)
  paper.set_xlabel("GFLOPs (published)")
  paper.set_ylabel(f"{dataset} {metric}")
  ours.set_title(f"Ours ({scale})")
  ours.set_xlabel("GFLOPs at paper scale (our count)")
  ours.set_ylabel(f"{metric} on the {scale} task" + ("" if scale == "paper" else f" (not {dataset})"))
  for ax in (paper, ours):
    ax.grid(alpha=0.3)
    ax.margins(x=0.08, y=0.15)
  fusers = [Line2D([], [], color=COLOR[s], linewidth=3, label=s) for s in SERIES]
  sources = [Line2D([], [], color="dimgray", label="paper (read off its plot)", **PAPER)]
  for fw in frameworks:
    missing = frame[f"{fw}_mean"].isna().all()
    sources.append(Line2D([], [], color="dimgray", label=f"{FRAMEWORK_NAMES[fw]}, {scale} (ours)"
                          + (": no runs" if missing else ""), **STYLE[fw]))
  fig.legend(handles=fusers, title="Colour: fuser", loc="upper center", bbox_to_anchor=(0.5, 0.285),
             ncol=len(fusers), frameon=False)
  confidence = tables_conf.load()["confidence"]
  fig.legend(handles=sources, loc="upper center", bbox_to_anchor=(0.5, 0.19), ncol=len(sources),
             title=f"Marker and line: source (bars: {confidence:.0%} t interval over seeds)",
             frameon=False)
  if caption:
    fig.supxlabel(textwrap.fill(caption, 165), fontsize=7, y=0.02, va="bottom")
  fig.suptitle("Supplementary Figure 1: TokenFuser alternatives")
  return fig


def save(fig: plt.Figure, stem) -> list:
  """PNG and SVG, with no timestamps in them."""
  png, svg = f"{stem}.png", f"{stem}.svg"
  try:
    durable.write_file(png, lambda path: fig.savefig(path, format="png", dpi=150, metadata={"Software": None},
                                                     bbox_inches="tight"), "the figure")
    with plt.rc_context({"svg.hashsalt": "tokenlearner"}):
      durable.write_file(svg, lambda path: fig.savefig(path, format="svg", metadata={"Date": None, "Creator": None},
                                                       bbox_inches="tight"), "the figure")
  finally:
    plt.close(fig)
  return [png, svg]
