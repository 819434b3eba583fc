"""Reporting reads results, not the trainer: no framework imported, no store created."""
from tests.processes import python

FRAMEWORK_MODULES = ("jax", "flax", "optax", "torch")


def run_python(code: str, *args: str):
  return python("-c", code, *args, timeout=300)


def test_offline_tables_import_no_framework(tmp_path):
  done = run_python(
      "import sys; from harness.cli import main; code = main(['tables', '--offline', '--out', "
      f"sys.argv[1]]); print('imported:', *[m for m in {FRAMEWORK_MODULES + ('mlflow',)!r} "
      "if m in sys.modules]); sys.exit(code)", str(tmp_path))
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip().splitlines()[-1] == "imported:"


def test_list_on_a_fresh_clone_creates_no_store_and_shows_absent_values_as_a_dash(tmp_path):
  results = tmp_path / "results"
  done = run_python("import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))",
                    "list", "--no-matrix", "--experiments", "table1", f"tracking.results_dir={results}")
  assert done.returncode == 0, done.stderr
  assert not results.exists()
  assert "INFO" not in done.stdout + done.stderr
  lines = done.stdout.splitlines()
  assert "nan" not in done.stdout
  assert any(line.split()[:2] == ["table1", "base"] and "–" in line for line in lines)
  # Each row's proxy seeds in each framework (scale.seeds, framework_seeds, framework_rows, ...).
  from harness.configs import compose, seed_plan
  seeds = seed_plan.seeds_by_framework(compose.compose_config(["scale=proxy"]).scale, ["jax", "torch"])
  planned = sum(len(s) for per_experiment in seeds.values() for s in per_experiment["table1"].values())
  assert lines[-1] == f"0 of {planned} runs finished; not finished: not run"


def test_reporting_verbs_check_no_dataset_and_no_checkpoint(tmp_path):
  """`tables` and `list` read results and configs: a dataset root or a checkpoint that is not
  there concerns the training verbs (their preflight), not these."""
  from harness.cli import main
  nowhere = tmp_path / "nowhere"
  assert main(["tables", "--offline", "--out", str(tmp_path / "tables"),
               f"train.pretrained={nowhere}/vit.npz"]) == 0
  assert main(["list", "--no-matrix", "scale=paper", f"data.root={nowhere}",
               f"train.pretrained={nowhere}/vit.npz", f"tracking.results_dir={tmp_path}/results"]) == 0
