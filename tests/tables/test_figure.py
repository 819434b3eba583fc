"""Supplementary Figure 1's layout, drawn from the made-up runs of fixtures.py: the paper's
points and ours in two panels, the three fusers as series on each, a fuser one colour in both."""
import math
import pathlib
import warnings

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.container import ErrorbarContainer

from harness.configs import tables_conf
from harness.report import figure1, summary
from harness.report.summary import FRAMEWORK_NAMES
from tests.tables import fixtures

FLOPS_CSV = pathlib.Path(__file__).parents[2] / "results" / "flops.csv"
FRAMEWORKS = ["jax", "torch"]
CAPTION = "Scale: proxy; Runs: 36 of 36 planned finished"


@pytest.fixture(scope="module")
def frame():
  """figure1's summary of the fixture runs, with PyTorch moved off JAX (in the fixture the two
  match per seed for these rows), so that a framework's bars drawn from the other's columns fail."""
  out = summary.build(fixtures.export(), "figure1", FRAMEWORKS, summary.paper_gflops(FLOPS_CSV))
  out["torch_mean"] = out.jax_mean + 2.0 + 0.5 * np.arange(len(out))
  out["torch_ci"] = out.jax_ci * 0.5
  return out


@pytest.fixture
def fig(frame):
  drawn = figure1.draw(frame, FRAMEWORKS, "proxy", caption=CAPTION)
  yield drawn
  figure1.plt.close(drawn)


def _rows(frame, series):
  return frame[frame.series == series].sort_values("gflops_paper_scale")


def _container(ax, series, fw) -> ErrorbarContainer:
  found = [c for c in ax.containers if c.get_label() == f"{series}, {FRAMEWORK_NAMES[fw]}"]
  assert len(found) == 1, [c.get_label() for c in ax.containers]
  return found[0]


def _bars(container: ErrorbarContainer):
  """(x, bottom, top) of each vertical error bar."""
  segments = container.lines[2][0].get_segments()
  return [(s[0][0], min(s[0][1], s[1][1]), max(s[0][1], s[1][1])) for s in segments]


def _data(line):
  """A line's (x, y) as float arrays."""
  return tuple(np.asarray(values, dtype=float) for values in line.get_data())


def _legend_texts(fig):
  return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_two_panels_one_for_the_paper_one_for_ours_with_labelled_axes(fig):
  assert len(fig.axes) == 2
  paper, ours = fig.axes
  assert "paper" in paper.get_title().lower() and "ours" not in paper.get_title().lower()
  assert ours.get_title() == "Ours (proxy)"
  conf = tables_conf.experiment("figure1")
  assert conf["published_dataset"] in paper.get_ylabel() and conf["metric_name"] in paper.get_ylabel()
  assert conf["metric_name"] in ours.get_ylabel() and "proxy" in ours.get_ylabel()
  assert all("GFLOPs" in ax.get_xlabel() for ax in (paper, ours))
  assert "Supplementary Figure 1" in fig.get_suptitle()


def test_the_paper_panel_has_one_line_per_fuser_through_its_published_points(fig, frame):
  paper = fig.axes[0]
  lines = paper.get_lines()
  assert [line.get_label() for line in lines] == list(figure1.SERIES)
  assert not paper.containers
  for line, series in zip(lines, figure1.SERIES):
    rows = _rows(frame, series)
    assert len(rows) == 2
    x, y = _data(line)
    np.testing.assert_array_equal(x, rows.published_gflops)
    np.testing.assert_array_equal(y, rows.published)
  labels = sorted((t.get_text(), t.xy) for t in paper.texts)
  expected = sorted((label.split(", ")[1].split(" ")[0], (x, y)) for label, x, y in
                    zip(frame.label, frame.published_gflops, frame.published))
  assert labels == expected and {text for text, _ in labels} == {"8-TL", "16-TL"}


def test_ours_has_an_errorbar_per_fuser_and_framework_with_the_means_and_intervals(fig, frame):
  ours = fig.axes[1]
  assert len(ours.containers) == len(figure1.SERIES) * len(FRAMEWORKS)
  assert all(isinstance(c, ErrorbarContainer) for c in ours.containers)
  for series in figure1.SERIES:
    rows = _rows(frame, series)
    xs = {}
    for fw in FRAMEWORKS:
      container = _container(ours, series, fw)
      xs[fw], y = _data(container.lines[0])
      np.testing.assert_allclose(y, rows[f"{fw}_mean"])
      bars = _bars(container)
      np.testing.assert_allclose([(top - bottom) / 2 for _, bottom, top in bars], rows[f"{fw}_ci"])
      np.testing.assert_allclose([(top + bottom) / 2 for _, bottom, top in bars], rows[f"{fw}_mean"])
    # Jittered apart, centred on our GFLOPs at paper scale.
    np.testing.assert_allclose(xs["torch"] - xs["jax"], figure1.JITTER)
    np.testing.assert_allclose((xs["jax"] + xs["torch"]) / 2, rows.gflops_paper_scale)


def test_a_fuser_has_one_colour_in_both_panels_and_the_fusers_differ(fig):
  paper, ours = fig.axes
  colours = {}
  for line, series in zip(paper.get_lines(), figure1.SERIES):
    colours[series] = to_rgba(line.get_color())
    for fw in FRAMEWORKS:
      container = _container(ours, series, fw)
      assert to_rgba(container.lines[0].get_color()) == colours[series], (series, fw)
      assert tuple(container.lines[2][0].get_colors()[0]) == colours[series], (series, fw)
  assert len(set(colours.values())) == len(figure1.SERIES)


def test_the_frameworks_differ_in_marker_and_line_style(fig):
  ours = fig.axes[1]
  for series in figure1.SERIES:
    jax, torch = (_container(ours, series, fw).lines[0] for fw in FRAMEWORKS)
    assert (jax.get_marker(), jax.get_linestyle()) == ("o", "-")
    assert (torch.get_marker(), torch.get_linestyle()) == ("s", "--")


def test_the_legend_explains_colour_by_fuser_and_marker_by_source(fig):
  texts = _legend_texts(fig)
  for series in figure1.SERIES:
    assert series in texts
  assert "JAX, proxy (ours)" in texts and "PyTorch, proxy (ours)" in texts
  assert any(t.startswith("paper") for t in texts)
  handles = {t.get_text(): h for legend in fig.legends
             for t, h in zip(legend.get_texts(), legend.legend_handles)}
  for line, series in zip(fig.axes[0].get_lines(), figure1.SERIES):
    assert to_rgba(handles[series].get_color()) == to_rgba(line.get_color())
  assert handles["JAX, proxy (ours)"].get_marker() == "o"
  assert handles["PyTorch, proxy (ours)"].get_marker() == "s"
  assert handles[next(t for t in texts if t.startswith("paper"))].get_marker() == \
      fig.axes[0].get_lines()[0].get_marker()


def test_the_caption_is_printed_under_the_panels(frame):
  long = "; ".join(f"Field {i}: a value long enough to need wrapping" for i in range(12))
  fig = figure1.draw(frame, FRAMEWORKS, "proxy", caption=long)
  try:
    assert fig.get_supxlabel().replace("\n", " ") == long
  finally:
    figure1.plt.close(fig)


def test_a_framework_without_runs_draws_and_saves(frame, tmp_path):
  empty = frame.copy()
  for column in ("torch_mean", "torch_ci", "torch_std"):
    empty[column] = math.nan
  empty["torch_n"] = 0
  empty.loc[0, "published"] = math.nan  # A row the paper has no point for, too.
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    fig = figure1.draw(empty, FRAMEWORKS, "proxy", caption=CAPTION)
    ours = fig.axes[1]
    assert len(ours.containers) == len(figure1.SERIES) * len(FRAMEWORKS)
    for series in figure1.SERIES:
      assert np.isnan(_data(_container(ours, series, "torch").lines[0])[1]).all()
      np.testing.assert_allclose(_data(_container(ours, series, "jax").lines[0])[1],
                                 _rows(frame, series).jax_mean)
    assert "PyTorch, proxy (ours): no runs" in _legend_texts(fig)
    assert "JAX, proxy (ours)" in _legend_texts(fig)
    assert np.isfinite(ours.get_ylim()).all()
    written = figure1.save(fig, tmp_path / "figure1")
    for column in ("jax_mean", "jax_ci", "jax_std"):  # No framework has runs: nothing to draw.
      empty[column] = math.nan
    fig = figure1.draw(empty, FRAMEWORKS, "proxy", caption=CAPTION)
    assert not fig.axes[1].texts and "JAX, proxy (ours): no runs" in _legend_texts(fig)
    written += figure1.save(fig, tmp_path / "nothing")
  assert all(pathlib.Path(p).stat().st_size > 0 for p in written)


def test_saving_twice_gives_the_same_bytes(frame, tmp_path):
  out = []
  for name in ("a", "b"):
    written = figure1.save(figure1.draw(frame, FRAMEWORKS, "proxy", caption=CAPTION), tmp_path / name)
    out.append([pathlib.Path(p).read_bytes() for p in written])
  assert out[0] == out[1]
  assert b"<dc:date>" not in out[0][1]
