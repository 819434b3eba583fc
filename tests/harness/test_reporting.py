"""Reporting reads results, not the trainer: no framework imported, no store created."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).parents[2]
FRAMEWORK_MODULES = ("jax", "flax", "optax", "torch")


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)


def test_offline_tables_import_no_framework(tmp_path):
  done = run_python(
      "import sys; from harness.__main__ import main; code = main(['tables', '--offline', '--out', "
      f"sys.argv[1]]); print('imported:', *[m for m in {FRAMEWORK_MODULES + ('mlflow',)!r} "
      "if m in sys.modules]); sys.exit(code)", str(tmp_path))
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip().splitlines()[-1] == "imported:"


def test_list_on_a_fresh_clone_creates_no_store_and_shows_absent_values_as_a_dash(tmp_path):
  results = tmp_path / "results"
  done = run_python("import sys; from harness.__main__ import main; sys.exit(main(sys.argv[1:]))",
                    "list", "--no-matrix", "--experiments", "table1", f"tracking.results_dir={results}")
  assert done.returncode == 0, done.stderr
  assert not results.exists()
  assert "INFO" not in done.stdout + done.stderr
  lines = done.stdout.splitlines()
  assert "nan" not in done.stdout
  assert any(line.split()[:2] == ["table1", "base"] and "–" in line for line in lines)
  # Each row's proxy seeds in each framework (scale.seeds, framework_seeds, framework_rows, ...).
  from harness import config
  seeds = config.seeds_by_framework(config.compose_config(["scale=proxy"]).scale, ["jax", "torch"])
  planned = sum(len(s) for per_experiment in seeds.values() for s in per_experiment["table1"].values())
  assert lines[-1] == f"0 of {planned} runs finished; not finished: not run"
