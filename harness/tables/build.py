"""Builds tables/ from a run export: table1/table2 (.md, .tex), figure1 (.md, .png, .svg), claims.md.

Everything here reads the export CSV and results/flops.csv only, so that the committed
tables regenerate byte for byte offline.
"""
import pathlib
from typing import Dict, List, Sequence

import pandas as pd
from tabulate import tabulate
from tokenlearner_spec import FRAMEWORKS

from harness import registry
from harness.tables import claims, figure, provenance, render, runs as run_export, spec, summary
from harness.tables.summary import FRAMEWORK_NAMES



def _difference(c: claims.Comparison) -> str:
  d = c.difference
  if d is None:
    return "n/a"
  return f"{d.estimate:+.2f} [{d.low:+.2f}, {d.high:+.2f}]"


def _test(c: claims.Comparison, test: dict) -> str:
  if c.test == "superior":
    return "row > other"
  return f"row > other - {test['margin']:g}" + (", fewer GFLOPs" if test.get("fewer_flops") else "")


def claims_markdown(runs: pd.DataFrame, summaries: Dict[str, pd.DataFrame], frameworks: Sequence[str],
                    verdicts: List[claims.Verdict], scale: str, source: str) -> str:
  conf = spec.load()["confidence"]
  names = [FRAMEWORK_NAMES[f] for f in frameworks]
  experiments = list(summaries)
  out = [f"# The paper's claims, judged from the {scale} runs", "",
         render.GENERATOR.format(source=source), "",
         provenance.markdown(runs, experiments, scale), "",
         f"Each comparison is a {conf:.0%} t interval for the mean difference in the metric, "
         f"row minus other, paired by seed (a seed gives both rows the same training batches "
         f"and test set), in one framework. 'row > other': supported "
         f"if the interval lies above 0, contradicted if below. 'row > other - m' "
         f"(non-inferiority, margin m points): supported if it lies above -m, contradicted "
         f"if below. A claim is supported if every comparison supports it, contradicted if "
         f"one contradicts it, inconclusive otherwise. No correction for multiple "
         f"comparisons; the two frameworks are not independent evidence (same initial "
         f"weights and batches per seed).", "", "## At a glance", ""]
  glance = {}
  for v in verdicts:
    glance.setdefault(v.claim["text"], {})[v.framework] = v.verdict
  out.append(tabulate([[text, *(glance[text][f] for f in frameworks)] for text in glance],
                      headers=["Claim", *names], tablefmt="pipe"))
  for claim in spec.load()["claims"]:
    out += ["", f"## {claim['text']}", ""]
    rows = []
    for v in (v for v in verdicts if v.claim["id"] == claim["id"]):
      for c, test in zip(v.comparisons, claim["comparisons"]):
        rows.append([FRAMEWORK_NAMES[v.framework], f"{c.row} vs {c.other}", _test(c, test),
                     _difference(c), c.verdict, c.reason])
    out.append(tabulate(rows, headers=["Framework", "Row vs other", "Test", "Difference [CI]",
                                       "Verdict", "Why"], tablefmt="pipe", disable_numparse=True))
  if len(frameworks) == 2:
    out += ["", "## JAX vs PyTorch, per row", "",
            "Do the two frameworks' results differ by more than seed noise? Welch interval of "
            "JAX minus PyTorch; 'agree' when it holds 0.", ""]
    rows = []
    for experiment, frame in summaries.items():
      for record in frame.to_dict("records"):
        rows.append([experiment, record["label"], *(render.estimate(record, f) for f in frameworks),
                     summary.agreement(record)])
    out.append(tabulate(rows, headers=["Artifact", "Row", *names, "JAX - PyTorch"], tablefmt="pipe",
                        disable_numparse=True))
  return "\n".join(out) + "\n"


def verdict_lines(verdicts: List[claims.Verdict], experiment: str) -> List[str]:
  """'Claim: JAX supported, PyTorch inconclusive (claims.md)' for each claim about `experiment`."""
  by_claim: Dict[str, List[str]] = {}
  for v in verdicts:
    if v.claim["experiment"] == experiment:
      by_claim.setdefault(v.claim["text"], []).append(f"{FRAMEWORK_NAMES[v.framework]} {v.verdict}")
  return [f"{text}: {', '.join(parts)} (claims.md)" for text, parts in by_claim.items()]


def build(runs_csv, flops_csv, out_dir, frameworks: Sequence[str] = FRAMEWORKS) -> List[pathlib.Path]:
  """Writes every artifact for the scale of `runs_csv` into `out_dir`; returns the paths."""
  runs = run_export.read(runs_csv)
  scales = sorted(set(runs.scale))
  if len(scales) != 1:
    raise ValueError(f"{runs_csv}: expected runs of one scale, found {scales or 'none'}")
  scale, source = scales[0], f"`{pathlib.Path(runs_csv).name}`"
  frameworks = [f for f in frameworks if f in set(runs.framework)]
  gflops_paper = summary.paper_gflops(flops_csv)
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  written, summaries = [], {}
  verdicts = claims.judge(runs, frameworks, gflops_paper)
  for experiment in registry.EXPERIMENTS:
    if experiment not in set(runs.experiment):
      continue
    frame = summaries[experiment] = summary.build(runs, experiment, frameworks, gflops_paper)
    (out / f"{experiment}.md").write_text(render.markdown(
        frame, runs, experiment, scale, frameworks, source, verdict_lines(verdicts, experiment)))
    written.append(out / f"{experiment}.md")
    if experiment == "figure1":
      fig = figure.draw(frame, frameworks, scale, provenance.caption(runs, [experiment], scale))
      written += [pathlib.Path(p) for p in figure.save(fig, out / "figure1")]
    else:
      (out / f"{experiment}.tex").write_text(
          render.latex(frame, runs, experiment, scale, frameworks, source))
      written.append(out / f"{experiment}.tex")
  (out / "claims.md").write_text(
      claims_markdown(runs, summaries, frameworks, verdicts, scale, source))
  written.append(out / "claims.md")
  return written
