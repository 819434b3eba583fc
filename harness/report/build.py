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
from harness.report import claims, figure1, learning_curves, provenance, render, stats, summary
from harness.report.summary import FRAMEWORK_NAMES
from harness.store import export as run_export



def _number(value: float, digits: int = 2, sign: str = "") -> str:
  return "n/a" if value is None or math.isnan(value) else f"{value:{sign}.{digits}f}"


def _difference(c: claims.Comparison) -> str:
  d = c.difference
  if d is None:
    return "n/a"
  return f"{d.estimate:+.2f} [{d.low:+.2f}, {d.high:+.2f}]"


def _test(c: claims.Comparison, test: dict) -> str:
  if c.test == "superior":
    return "row > other"
  return f"row > other - {test['margin']:g}" + (", fewer GFLOPs" if test.get("fewer_flops") else "")


def _claims_preamble(verdicts: List[claims.Verdict], settings: dict) -> str:
  m = claims.family_size(verdicts)
  judged = ", ".join(FRAMEWORK_NAMES[f] for f in dict.fromkeys(v.framework for v in verdicts))
  if m == 0:
    return "No framework judges the claims: `judge_frameworks` names none of the runs' frameworks."
  alpha, bound, power = 1 - settings["confidence"], settings["bound"], settings["power"]
  level = stats.simultaneous_confidence(settings["confidence"], m)
  return (
      f"Each comparison is a two-sided paired t test of the mean difference in the metric, row "
      f"minus other, in one framework, paired by seed (a seed gives both rows the same training "
      f"batches and test set), against a threshold: 0 for 'row > other', -k for 'row > other - k' "
      f"(non-inferiority, margin k points). The family is every comparison of every claim in every "
      f"judging framework ({judged}): m = {m} (a comparison with fewer than 2 seeds counts, with "
      f"p = 1). Holm's step-down correction over the family holds the family-wise error rate at "
      f"{alpha:g} under any dependence; the two frameworks are not independent evidence (a seed "
      f"gives both the same initial weights and batches). A comparison is **supported** when its "
      f"Holm-adjusted p is below {alpha:g} and the estimate lies above the threshold, "
      f"**contradicted** when it lies below (and whenever a 'fewer GFLOPs' row does not cost fewer "
      f"GFLOPs, measured); one not rejected is **bounded** when its interval has half-width at most "
      f"{bound:g} points, **inconclusive** otherwise.\n\n"
      f"The interval shown is the Bonferroni-simultaneous one, each at 1 - {alpha:g}/{m} = "
      f"{level:.2%}, so that all {m} hold together with probability at least {1 - alpha:.0%}. Holm "
      f"rejects everything Bonferroni rejects and sometimes more, so a decided comparison's "
      f"interval can occasionally touch or cross the threshold. A bounded comparison's design "
      f"rules out every true difference outside its interval, which lies within {2 * bound:g} "
      f"points (twice the bound) of the threshold. MDD, the minimum detectable difference: the "
      f"smallest true difference from the threshold that the paired t test at the Bonferroni level "
      f"{alpha:g}/{m} detects with probability {power:.0%}, given the comparison's n and sd of "
      f"paired differences; Holm tests only the smallest p at that level and the rest at more "
      f"lenient ones, so for Holm the MDD is conservative (too large). Seeds for ±{bound:g}: how "
      f"many seeds would make the comparison's simultaneous interval at most {bound:g} points wide "
      f"at its measured sd (a planning figure: that sd is itself estimated from n seeds).\n\n"
      f"A claim is **supported** if every comparison supports it, **contradicted** if one "
      f"contradicts it, **not shown** if every comparison is supported or bounded (no large "
      f"effect either way, but the claimed win not shown), **inconclusive** otherwise.")


def _resolved(verdicts: List[claims.Verdict]) -> str:
  count = collections.Counter(c.verdict for v in verdicts for c in v.comparisons)
  decided = count[claims.SUPPORTED] + count[claims.CONTRADICTED]
  return (f"**Resolved:** {decided} of {claims.family_size(verdicts)} comparisons decided "
          f"({count[claims.SUPPORTED]} supported, {count[claims.CONTRADICTED]} contradicted), "
          f"{count[claims.BOUNDED]} bounded, {count[claims.INCONCLUSIVE]} inconclusive.")


def _comparison_row(c: claims.Comparison, test: dict) -> List[str]:
  d = c.difference
  return [FRAMEWORK_NAMES[c.framework], f"{c.row} vs {c.other}", _test(c, test),
          str(d.n) if d else "<2", _difference(c), _number(d.sd if d else math.nan),
          claims.format_p(d.p) if d else "n/a", claims.format_p(c.p_holm), _number(c.mdd),
          _number(c.seeds_for_bound, 0), c.verdict, c.reason]


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


def claims_markdown(runs: pd.DataFrame, summaries: Dict[str, pd.DataFrame], frameworks: Sequence[str],
                    verdicts: List[claims.Verdict], scale: str, source: str) -> str:
  settings = tables_conf.load()
  judged = list(dict.fromkeys(v.framework for v in verdicts))
  out = [f"# The paper's claims, judged from the {scale} runs", "",
         render.GENERATOR.format(source=source), "",
         provenance.markdown(runs, list(summaries), scale), "",
         _claims_preamble(verdicts, settings), "", "## At a glance", ""]
  glance = {}
  for v in verdicts:
    glance.setdefault(v.claim["text"], {})[v.framework] = v.verdict
  out.append(tabulate([[text, *(glance[text][f] for f in judged)] for text in glance],
                      headers=["Claim", *(FRAMEWORK_NAMES[f] for f in judged)], tablefmt="pipe"))
  out += ["", _resolved(verdicts)]
  for claim in settings["claims"]:
    rows = [_comparison_row(c, test) for v in verdicts if v.claim["id"] == claim["id"]
            for c, test in zip(v.comparisons, claim["comparisons"])]
    if rows:
      out += ["", f"## {claim['text']}", "",
              tabulate(rows, headers=["Framework", "Row vs other", "Test", "n",
                                      "Difference [simultaneous CI]", "sd", "p", "Holm p", "MDD",
                                      f"Seeds for ±{settings['bound']:g}", "Verdict", "Why"],
                       tablefmt="pipe", disable_numparse=True)]
  if len(frameworks) == 2:
    out += _agreement(runs, summaries, frameworks, settings["confidence"])
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
      fig = figure1.draw(frame, frameworks, scale, provenance.caption(runs, [experiment], scale))
      written += [pathlib.Path(p) for p in figure1.save(fig, out / "figure1")]
    else:
      (out / f"{experiment}.tex").write_text(
          render.latex(frame, runs, experiment, scale, frameworks, source))
      written.append(out / f"{experiment}.tex")
  (out / "claims.md").write_text(
      claims_markdown(runs, summaries, frameworks, verdicts, scale, source))
  written.append(out / "claims.md")
  return written + learning_curves.build(pathlib.Path(runs_csv).parent, scale, out)
