"""Figure 2: the first TokenLearner module's maps (the same in both twins), the share of their
mass on what the pixels show, and `maps` building the figure and its table from logged weights."""
import hashlib

import numpy as np
import pytest
import torch
from tokenlearner_spec.pooling import pooling_regions

from harness import data as datasets
from harness.cli import verbs
from harness.configs import compose, run_spec
from harness.data.base import BACKGROUND, CLUTTER, TARGET
from harness.data.digits import INK
from harness.maps import measure, token_maps
from harness.report import figure2
from harness.run import initial_weights, train
from harness.store import finished_runs
from harness.testing.parity_log import FORWARD_ATOL
from harness.twins import backends, convert
from tests.harness.smoke import overrides

TOKENLEARNER_ROWS = [("table1", "tl16_at_12"), ("table2", "tl_vectt_tokenfuser"), ("table2", "tl_mhsa_tokenfuser")]


def test_mass_shares_on_a_fixture_known_by_construction():
  layers = np.full((8, 8), BACKGROUND, np.int8)  # A 2x2 grid of 4x4-pixel cells.
  layers[:4, :4] = TARGET  # Top-left cell: all target.
  layers[4:, 4:6] = CLUTTER  # Bottom-right cell: half clutter.
  maps = np.zeros((4, 2, 2))
  maps[0, 0, 0] = 3.0  # All on the target's cell (unnormalised weights are normalised).
  maps[1] = 1.0  # Uniform: each layer's share of the image.
  maps[2, 0, 0] = maps[2, 1, 1] = 0.5  # Half on the target, half on the half-clutter cell.
  maps[3, 0, 1] = 1.0  # All on background.
  shares = token_maps.mass_on_layers(maps, layers)  # [S, L]: background, clutter, target.
  assert shares == pytest.approx(np.array([[0, 0, 1], [0.625, 0.125, 0.25], [0.25, 0.25, 0.5], [1, 0, 0]]))
  pooled = token_maps.pooling_maps(pooling_regions(2, 2))  # Two regions: the grid's two halves.
  assert token_maps.mass_on_layers(pooled, layers).mean(axis=0) == pytest.approx([0.625, 0.125, 0.25])


@pytest.mark.parametrize("experiment,row", [("table1", "base"), ("table2", "mhsa")])
def test_test_layers_mark_what_the_test_pixels_show(experiment, row):
  """On the digits (the smoke scale's data, the one with clutter)."""
  cfg = compose.load(["scale=smoke", f"experiment={experiment}", f"row={row}"])
  frames = 6 if experiment == "table2" else 1
  data = datasets.make(cfg.data, 0, 32, frames)
  x, _ = data.test_set
  layers = data.test_layers(50)
  assert layers.shape == x[:50, ..., 0].shape
  ink = (x[:50, ..., 0] + 1) / 2
  assert (ink[layers != BACKGROUND] > INK).all() and (ink[layers == BACKGROUND] <= INK).all()
  assert (layers == TARGET).any()
  assert (layers == CLUTTER).any() == (experiment == "table1")  # The clips have no clutter.


def _twins(experiment, row):
  """Both twins of a TokenLearner row at proxy scale with the same (start) weights."""
  kind = {"table1": "vit", "table2": "video"}[experiment]
  cfg = compose.load(["scale=proxy", f"experiment={experiment}", f"row={row}"])
  fields = compose.model_fields(cfg)
  weights = initial_weights.torch_initial_weights(kind, fields, seed=0)
  torch_model = backends.build("torch", kind, fields)
  torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
  variables = convert.torch_to_jax(weights, backends.flax_shapes(kind, fields))
  return (finished_runs.Model("torch", kind, fields, torch_model.eval()),
          finished_runs.Model("jax", kind, fields, backends.build("jax", kind, fields), variables), cfg)


@pytest.mark.parametrize("experiment,row", TOKENLEARNER_ROWS[:2])
def test_both_twins_give_the_same_maps(experiment, row):
  torch_model, jax_model, cfg = _twins(experiment, row)
  frames = jax_model.fields.get("num_frames", 1)
  x, _ = datasets.make(cfg.data, 0, 32, frames).test_set
  ours = {m.framework: token_maps.token_maps(m, x[:8]) for m in (torch_model, jax_model)}
  grid = 8 if experiment == "table1" else 4
  assert ours["torch"].shape == x[:8].shape[:-3] + (4, grid, grid)
  assert np.abs(ours["torch"] - ours["jax"]).max() <= FORWARD_ATOL


def _panel(kind):
  """A panel as `maps` makes one: an image row's four test images, or a clip row's one clip."""
  experiment, row = ("table2", "tl_vectt_tokenfuser") if kind == "video" else ("table1", "tl16_at_12")
  images = np.zeros((1, 6, 32, 32)) if kind == "video" else np.zeros((4, 32, 32))
  token_maps = np.random.default_rng(0).random(images.shape[:-2] + (4, 4, 4))
  return measure.Panel(experiment, row, f"label of {row}", "torch", 0, "12345678abcdef", images, token_maps)


def test_the_figure_has_its_labelled_panels_and_caption():
  fig = figure2.draw([_panel("vit"), _panel("video")], measure.settings()["silent_below"], caption="the provenance caption")
  titles = [sub._suptitle.get_text() for sub in fig.subfigs]
  assert titles == ["table1: label of tl16_at_12 (PyTorch seed 0, MLflow run 12345678)",
                    "table2: label of tl_vectt_tokenfuser (PyTorch seed 0, MLflow run 12345678)"]
  image_axes, clip_axes = (sub.axes for sub in fig.subfigs)
  assert [ax.get_title() for ax in image_axes if ax.get_title()] == [f"test image {i}" for i in range(1, 5)]
  assert [ax.get_title() for ax in clip_axes if ax.get_title()] == [f"frame {t}" for t in range(1, 7)]
  assert [ax.get_ylabel() for ax in clip_axes if ax.get_ylabel()] == ["input", *(f"token {s}" for s in range(1, 5))]
  assert sum(ax.get_visible() for ax in image_axes) == 5 * 4  # The clip's 6 columns, 4 of them used.
  assert fig._supxlabel.get_text() == "the provenance caption" and fig._suptitle.get_text() == figure2.TITLE


def test_maps_builds_figure2_from_logged_weights_and_rebuilds_it_byte_for_byte(tmp_path, capsys):
  results = tmp_path / "results"
  common = overrides(results, "framework=torch")
  assert verbs.maps(common, str(tmp_path / "tables")) == 1  # Nothing trained yet.
  assert "maps: 3 of 3 runs not finished: table1/tl16_at_12 seed 0 (not run)" in capsys.readouterr().out
  for experiment, row in TOKENLEARNER_ROWS:
    assert train.run(run_spec.load([*common, f"experiment={experiment}", f"row={row}"])).status == "finished"
  assert verbs.maps(common, str(tmp_path / "tables")) == 0
  out = tmp_path / "tables" / "smoke"
  written = [out / "figure2.png", out / "figure2.svg", out / "figure2.md", results / "maps-smoke.csv"]
  first = [hashlib.sha256(p.read_bytes()).hexdigest() for p in written]
  table = " ".join((out / "figure2.md").read_text().split())  # Without tabulate's padding.
  for row in ("tl16_at_12", "tl_vectt_tokenfuser", "tl_mhsa_tokenfuser"):
    assert f"| TokenLearner ({row}), 4 tokens pooled | 1 " in table
  assert "| fixed pooling (pool_4x4_at_12), 4 regions | – " in table
  assert "| fixed pooling (vectt_tokenfuser), 4 regions | – " in table
  assert table.count("On the target, TokenLearner minus fixed pooling: ") == 3
  assert verbs.maps(common, str(tmp_path / "tables")) == 0
  assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in written] == first


def test_maps_skips_data_that_does_not_say_what_its_pixels_show(tmp_path, capsys):
  assert verbs.maps(["scale=paper", "train.pretrained_dir=/data/vit", f"tracking.results_dir={tmp_path}"],
                    str(tmp_path / "tables")) == 0
  assert capsys.readouterr().out.startswith("maps: skipped; the data of table1 (imagenet), table2 (charades)")
  assert not any(tmp_path.iterdir())  # No store opened, nothing written.


def test_a_silent_map_is_counted_and_left_out_of_the_shares():
  silent_below = measure.settings()["silent_below"]
  layers = np.full((2, 8, 8), BACKGROUND, np.int8)
  layers[:, :4, :4] = TARGET
  maps = np.zeros((2, 2, 2, 2))  # [examples, tokens, g, g]
  maps[0, 0, 0, 0] = 0.9  # Token 1 on the target in example 1, off in example 2.
  maps[:, 1] = silent_below / 2  # Token 2 off everywhere (weights near 0, not 0).
  shares, silent = measure._shares(maps, layers, silent_below)
  assert shares[0] == pytest.approx([0, 0, 1]) and np.isnan(shares[1]).all()
  assert silent == pytest.approx([0.5, 1.0])


@pytest.mark.parametrize("change,message", [
    (dict(pooled="pool_3x3"), "maps: maps.yaml: unknown row 'pool_3x3' of table1"),
    (dict(experiment="figure1"), "maps: maps.yaml: unknown row 'tl16_at_12' of figure1")])
def test_a_maps_config_naming_an_unknown_row_is_refused_in_one_line(monkeypatch, capsys, change, message):
  conf = measure.settings()
  bad = {**conf, "rows": [{**conf["rows"][0], **change}]}
  real = measure.conf_schemas.load
  monkeypatch.setattr(measure.conf_schemas, "load", lambda path, schema: bad if schema is measure.conf_schemas.MapsFile
                      else real(path, schema))
  assert verbs.maps(["scale=smoke"], "unused") == 2
  output = capsys.readouterr().out
  assert output.startswith(message) and output.count("\n") == 1
