"""`python -m harness protocol`: the protocol registered before a full run, and what the tables
say of the runs they judge against it."""
import pandas as pd

from harness.cli import main
from harness.configs import compose, seed_plan, tables_conf
from harness.report import provenance
from harness.store import registration, run_status


def test_the_registration_holds_the_plan_the_seeds_and_the_verdict_rule(tmp_path):
  assert main(["protocol", f"tracking.results_dir={tmp_path}"]) == 0
  doc = registration.read(registration.path(tmp_path, "proxy"))
  seeds = seed_plan.seeds_by_framework(compose.compose_config(["scale=proxy"]).scale, ["jax", "torch"])
  planned = run_status.plan(["table1", "figure1", "table2"], ["jax", "torch"], seeds, ["scale=proxy"])
  assert set(doc["runs"]) == {p.config_hash for p in planned}
  assert doc["experiments"]["table1"]["task"]["data"]["source"] == "fashion_mnist"
  assert doc["experiments"]["table2"]["seeds"]["mhsa"] == {"jax": [0, 1, 2], "torch": [0, 1, 2]}
  assert doc["verdicts"] == registration.verdict_rule(tables_conf.load())
  assert {c["row"] for c in doc["verdicts"]["comparisons"]} >= {"tl16_at_12", "tl_vectt_tokenfuser"}


def test_the_tables_count_the_registered_runs_and_flag_a_changed_rule(tmp_path):
  target = registration.path(tmp_path, "proxy")
  rule = registration.verdict_rule(tables_conf.load())
  registration.write(dict(scale="proxy", verdicts=rule, runs={"h1": "table1/base torch seed 0"}), target)
  runs = pd.DataFrame(dict(status=["FINISHED", "FINISHED"], config_hash=["h1", "h2"]))
  line = provenance.registered(runs, tmp_path, "proxy")
  assert "registered 1 of the 2 finished runs" in line and "verdict rule is conf/tables.yaml's" in line
  assert "not committed" in line  # Outside git: no commit to name.
  assert not provenance.predates(runs, tmp_path, "proxy")
  assert provenance.predates(runs.assign(config_hash=["h3", "h4"]), tmp_path, "proxy")
  registration.write(dict(scale="proxy", verdicts={**rule, "confidence": 0.9}, runs={}), target)
  assert "differs" in provenance.registered(runs, tmp_path, "proxy")
  assert not provenance.predates(runs, tmp_path / "elsewhere", "proxy")  # None registered.
