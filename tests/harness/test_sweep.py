"""How `reproduce` splits a per-row seed plan into multiruns, each a product of its axes."""
from harness.configs import compose, registry, seed_plan
from harness.run import sweep


def test_reproduce_runs_each_planned_run_once_in_products(monkeypatch):
  calls = []
  monkeypatch.setattr(sweep, "multirun", lambda experiment, axes, *_, **__: calls.append((experiment, axes)))
  seeds = seed_plan.seeds_by_framework(compose.compose_config(["scale=proxy"]).scale, ["jax", "torch"])
  sweep.reproduce(list(registry.EXPERIMENTS), seeds, 2, ["scale=proxy"])
  swept = [(e, row, fw, seed) for e, axes in calls
           for row in axes["row"] for fw in axes["framework"] for seed in axes["seed"]]
  planned = [(e, row, fw, seed) for fw, per_experiment in seeds.items()
             for e, per_row in per_experiment.items() for row, its in per_row.items() for seed in its]
  assert sorted(swept) == sorted(planned) and len(set(swept)) == len(swept)
  # Rows with the same seeds share a multirun. No two frameworks run the same rows and seeds
  # here (JAX runs seed 0 of two rows), so it is one per experiment, framework and seed list.
  groups = {(e, fw, tuple(its)) for fw, per_experiment in seeds.items()
            for e, per_row in per_experiment.items() for its in per_row.values() if its}
  assert len(calls) == len(groups) < len(planned)
