"""Builds tables/ from a run export: table1/table2 (.md, .tex), figure1 (.md, .png, .svg), claims.md.

Everything here reads the export CSV and results/flops.csv only, so that the committed
tables regenerate byte for byte offline.
"""
import collections
import math
import pathlib
from typing import Dict, List, Sequence

import pandas as pd
from tabulate import tabulate
from tokenlearner_spec import FRAMEWORKS

from harness.configs import registry, tables_conf
from harness.machine import durable
from harness.report import claims, figure1, learning_curves, provenance, render, stats, summary
from harness.report.summary import FRAMEWORK_NAMES
from harness.store import export as run_export



def _number(value: float, digits: int = 2, sign: str = "") -> str:
  return "n/a" if value is None or math.isnan(value) else f"{value:{sign}.{digits}f}"


def _interval(estimate: float, low: float, high: float, digits: int = 3) -> str:
  if math.isnan(low):
    return _number(estimate, digits, "+")
  return f"{estimate:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def _test(test: dict) -> str:
  if test["test"] == "superior":
    return "gap > 0"
  return f"gap > -{test['margin']:.3f}" + (", fewer GFLOPs" if test.get("fewer_flops") else "")


def _seeds_needed(c: claims.Comparison) -> str:
  if c.verdict in (claims.SUPPORTED, claims.CONTRADICTED) or math.isnan(c.seeds_needed):
    return ""
  if math.isinf(c.seeds_needed):
    return "out of reach: the test items alone are too few"
  if c.seeds_needed > claims.MAX_SEEDS:
    return f"more than {claims.MAX_SEEDS}"
  return f"{c.seeds_needed:.0f}"


def _claims_preamble(settings: dict, judged: Sequence[str], m: int) -> str:
  alpha, power = 1 - settings["confidence"], settings["power"]
  names = " and ".join(FRAMEWORK_NAMES[f] for f in judged) or "no framework"
  level = stats.simultaneous_confidence(settings["confidence"], m)
  return (
      f"Each comparison is measured on the log-odds scale: the gap logit(row) - logit(other) "
      f"between the two rows' mean metric over every run both finished in {names}, the scale on "
      f"which the paper's effects keep their size when the error rate changes. The paper's effect "
      f"is the same gap between the two rows' published numbers; 'at proxy level' gives it in "
      f"points at the proxy's level of the other row. A seed's runs in the two frameworks start "
      f"from the same weights and batches, so they are one unit of evidence: the frameworks are a "
      f"block, and each framework's own estimate is shown beside the pooled one.\n\n"
      f"Every interval holds two sources of uncertainty, which seeds were run (training noise) "
      f"and which test items were drawn (the test set is a sample): a paired bootstrap resamples "
      f"the seeds, each with all its runs, and the test items, the same items for both rows, "
      f"together, and the items alone at the seeds run give the items' part; the seeds' part is "
      f"scaled by n/(n-1) for the n seeds, and the test is a t test with the Welch-Satterthwaite "
      f"degrees of freedom (n - 1 for the seeds' part, the items' taken as known) against the "
      f"threshold (0, or "
      f"-margin for a match, the margin in log-odds). The family is every comparison of every "
      f"claim: m = {m}. Holm's correction over it holds the family-wise error rate at {alpha:g}; "
      f"the intervals are Bonferroni-simultaneous, each at 1 - {alpha:g}/{m} = {level:.2%}.\n\n"
      f"A comparison is **supported** when Holm rejects the threshold and the estimate lies on "
      f"the claimed side, **contradicted** when it lies on the other side (or a 'fewer GFLOPs' "
      f"row does not cost fewer GFLOPs, measured). One not rejected is **{claims.SMALLER}** when "
      f"its interval ends short of the paper's effect (the paper's effect is ruled out), "
      f"**{claims.CONSISTENT}** when the interval holds it and its half-width is at most the "
      f"paper's distance from the threshold (an estimate at the paper's effect would have been "
      f"rejected), **inconclusive** otherwise. For those three, 'seeds needed' is how many seeds "
      f"(each in every judging framework) would give the comparison power {power:.0%} at the "
      f"paper's effect, at the Bonferroni level, given its measured seed noise and test-item "
      f"variance; the items' share does not shrink with seeds, so it can be out of reach.\n\n"
      f"A claim is **contradicted** if one comparison is, **supported** if all are, "
      f"**{claims.SMALLER}** (or **{claims.CONSISTENT}**) if every comparison is supported or "
      f"that, **inconclusive** otherwise.")


def _resolved(verdicts: List[claims.Verdict]) -> str:
  count = collections.Counter(c.verdict for v in verdicts for c in v.comparisons)
  total = sum(count.values())
  parts = ", ".join(f"{count[v]} {v}" for v in (claims.SUPPORTED, claims.CONTRADICTED, claims.SMALLER,
                                                 claims.CONSISTENT, claims.INCONCLUSIVE))
  return f"**Comparisons:** {total}: {parts}."


def _comparison_row(c: claims.Comparison, test: dict, judged: Sequence[str]) -> List[str]:
  s = c.spread
  return [f"{c.row} vs {c.other}", _test(test), str(s.num_seeds) if s else "0",
          _interval(s.estimate, c.low, c.high) if s else "n/a",
          *(_number(c.by_framework.get(f, math.nan), 3, "+") for f in judged),
          f"{c.paper:+.3f} ({_number(c.paper_points, 2, '+')} pts)", claims.format_p(c.p),
          claims.format_p(c.p_holm), _seeds_needed(c), c.verdict, c.reason]


def _shifts(runs: pd.DataFrame, replicates: pd.DataFrame, settings: dict, frameworks: Sequence[str]) -> List[str]:
  names = [FRAMEWORK_NAMES[f] for f in frameworks]
  gap, conf = f"{names[0]} - {names[1]}", settings["confidence"]
  out = ["", f"## {gap}, per claim row", "",
         f"The twins compute the same function from the same weights and batches; what their "
         f"runs of a seed still differ by is floating-point order, amplified by training. Per row "
         f"a claim compares: the mean of {gap} in points over the seeds both ran, with its "
         f"{conf:.0%} interval from the same paired bootstrap over seeds and test items (t, n - 1 "
         f"degrees of freedom).", ""]
  rows = []
  for experiment, row in claims.claim_rows(settings):
    s = claims.shift(runs, replicates, experiment, row, frameworks, conf)
    rows.append([experiment, row, str(s.spread.num_seeds) if s else "<2",
                 _interval(s.spread.estimate, s.low, s.high, 2) if s else "n/a"])
  out.append(tabulate(rows, headers=["Artifact", "Row", "Seeds", f"{gap}, points [{conf:.0%} CI]"],
                      tablefmt="pipe", disable_numparse=True))
  return out


def _agreement(runs: pd.DataFrame, summaries: Dict[str, pd.DataFrame], frameworks: Sequence[str],
               conf: float) -> List[str]:
  names = [FRAMEWORK_NAMES[f] for f in frameworks]
  gap = f"{names[0]} - {names[1]}"
  out = ["", f"## {names[0]} vs {names[1]}", "",
         f"Both frameworks start a seed from the same weights and batches, so a row's {names[0]} "
         f"and {names[1]} runs of one seed are a pair. Per row: the mean over the seeds both "
         f"finished of {gap} with its {conf:.0%} paired t interval, 'agree' when it holds 0 (n "
         f"shared seeds; no interval for n < 2), and the largest per-seed difference.", ""]
  rows = []
  for experiment, frame in summaries.items():
    for record in frame.to_dict("records"):
      rows.append([experiment, record["label"], *(render.estimate(record, f) for f in frameworks),
                   summary.agreement(record, frameworks)])
  out.append(tabulate(rows, headers=["Artifact", "Row", *names, gap], tablefmt="pipe",
                      disable_numparse=True))
  out += ["", "### Pooled over rows", "",
          f"Every row and shared seed at once (the pairs taken as independent): the mean of {gap} "
          f"with its {conf:.0%} t interval and the sd of the differences; beside it the seed-to-seed "
          f"sd within a row, pooled over rows, of the framework with more finished runs. Were a "
          f"seed's two runs as unrelated as two seeds, the differences would have an sd of about "
          f"1.4 (sqrt 2) times the seed-to-seed sd; far below it, the frameworks differ by less than "
          f"seed noise. 'all' pools the artifacts' metrics, all in points.", ""]
  rows = []
  for label, experiments in [*((e, [e]) for e in summaries), ("all", list(summaries))]:
    pooled = summary.pooled_agreement(runs, experiments, frameworks, conf)
    interval = (f"{pooled['mean']:+.2f} [{pooled['low']:+.2f}, {pooled['high']:+.2f}]"
                if pooled["n"] >= 2 else _number(pooled["mean"], sign="+"))
    rows.append([label, str(pooled["n"]), interval, _number(pooled["sd"]),
                 f"{_number(pooled['seed_sd'])} ({FRAMEWORK_NAMES[pooled['seed_sd_framework']]})"])
  out.append(tabulate(rows, headers=["Artifact", "Pairs", f"{gap} [{conf:.0%} CI]", f"sd of {gap}",
                                     "Seed-to-seed sd within a row"], tablefmt="pipe",
                      disable_numparse=True))
  return out


def claims_markdown(runs: pd.DataFrame, replicates: pd.DataFrame, summaries: Dict[str, pd.DataFrame],
                    frameworks: Sequence[str], verdicts: List[claims.Verdict], scale: str, source: str,
                    registered: str, stale: bool = False) -> str:
  settings = tables_conf.load()
  judged = claims.judging_frameworks(settings["judge_frameworks"], frameworks, runs)
  m = sum(len(v.comparisons) for v in verdicts)
  out = [f"# The paper's claims, judged from the {scale} runs", "",
         render.GENERATOR.format(source=source), "",
         provenance.markdown(runs, list(summaries), scale, stale),
         f"- **Protocol:** {registered}", "",
         _claims_preamble(settings, judged, m), "", "## At a glance", ""]
  out.append(tabulate([[v.claim["text"], v.verdict] for v in verdicts], headers=["Claim", "Verdict"],
                      tablefmt="pipe"))
  out += ["", _resolved(verdicts)]
  for v in verdicts:
    rows = [_comparison_row(c, test, judged) for c, test in zip(v.comparisons, v.claim["comparisons"])]
    out += ["", f"## {v.claim['text']}", "",
            tabulate(rows, headers=["Row vs other", "Test", "Seeds", "Gap, log-odds [simultaneous CI]",
                                    *(FRAMEWORK_NAMES[f] for f in judged),
                                    "Paper's gap (at proxy level)", "p", "Holm p", "Seeds needed",
                                    "Verdict", "Why"],
                     tablefmt="pipe", disable_numparse=True)]
  if len(frameworks) == 2:
    out += _shifts(runs, replicates, settings, frameworks)
    out += _agreement(runs, summaries, frameworks, settings["confidence"])
  return "\n".join(out) + "\n"


def verdict_lines(verdicts: List[claims.Verdict], experiment: str) -> List[str]:
  """'Claim: supported (claims.md)' for each claim about `experiment`."""
  return [f"{v.claim['text']}: {v.verdict} (claims.md)" for v in verdicts if v.claim["experiment"] == experiment]


def build(runs_csv, flops_csv, out_dir, frameworks: Sequence[str] = FRAMEWORKS) -> List[pathlib.Path]:
  """Writes every artifact for the scale of `runs_csv` into `out_dir`; returns the paths."""
  runs = run_export.read(runs_csv)
  scales = sorted(set(runs.scale))
  if len(scales) != 1:
    raise ValueError(f"{runs_csv}: expected runs of one scale, found {scales or 'none'}")
  scale, source = scales[0], f"`{pathlib.Path(runs_csv).name}`"
  replicates = run_export.read_replicates(run_export.replicates_csv_path(pathlib.Path(runs_csv).parent, scale))
  frameworks = [f for f in frameworks if f in set(runs.framework)]
  gflops_paper = summary.paper_gflops(flops_csv)
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  written, summaries = [], {}
  verdicts = claims.judge(runs, replicates, frameworks, gflops_paper)
  stale = provenance.predates(runs, pathlib.Path(runs_csv).parent, scale)
  for experiment in registry.EXPERIMENTS:
    if experiment not in set(runs.experiment):
      continue
    frame = summaries[experiment] = summary.build(runs, experiment, frameworks, gflops_paper)
    durable.write_text(out / f"{experiment}.md", render.markdown(
        frame, runs, experiment, scale, frameworks, source, verdict_lines(verdicts, experiment), stale), "the table")
    written.append(out / f"{experiment}.md")
    if experiment == "figure1":
      fig = figure1.draw(frame, frameworks, scale, provenance.caption(runs, [experiment], scale, stale))
      written += [pathlib.Path(p) for p in figure1.save(fig, out / "figure1")]
    else:
      durable.write_text(out / f"{experiment}.tex",
                         render.latex(frame, runs, experiment, scale, frameworks, source, stale), "the table")
      written.append(out / f"{experiment}.tex")
  durable.write_text(out / "claims.md", claims_markdown(
      runs, replicates, summaries, frameworks, verdicts, scale, source,
      provenance.registered(runs, pathlib.Path(runs_csv).parent, scale), stale), "the claims' table")
  written.append(out / "claims.md")
  return written + learning_curves.build(pathlib.Path(runs_csv).parent, scale, out)
