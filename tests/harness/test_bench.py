"""The bench report from given measurements (no timing is measured or asserted here)."""
import pandas as pd
import pytest

from harness.bench import report

ROOFS = pd.DataFrame({"framework": ["jax", "jax", "torch", "torch"], "threads": [1, 2, 1, 2],
                      "gflops_per_s": [100.0, 190.0, 80.0, 150.0]})
ROWS = pd.DataFrame({
    "experiment": ["table1", "table1"], "row": ["base", "tl16_at_12"], "label": ["Base", "16-TL"],
    "gmacs_per_example": [0.02, 0.008], "batch_size": [64, 64],
    "jax_examples_per_s": [200.0, 300.0], "torch_examples_per_s": [400.0, 600.0],
    "jax_gflops_per_s": [24.0, 18.0], "torch_gflops_per_s": [48.0, 36.0],
    "jax_roof_fraction": [0.24, 0.18], "torch_roof_fraction": [0.6, 0.45],
    "jax_over_torch": [0.5, 0.5], "flop_ratio_vs_base": [1.0, 2.5],
    "jax_speedup_vs_base": [1.0, 1.875], "torch_speedup_vs_base": [1.0, 1.875]})
PEERS = pd.DataFrame({"framework": ["jax", "torch"], "model": ["table1/base"] * 2,
                      "peer_examples_per_s": [250.5, 400.5]})
VECTT = pd.DataFrame({"framework": ["jax", "jax", "torch", "torch"], "chunk_size": [0, 64, 0, 64],
                      "seconds": [8.0, 4.0, 7.0, 7.0], "peak_bytes": [4096 * 2**20, 512 * 2**20,
                                                                    2048 * 2**20, 512 * 2**20]})
SPLIT = pd.DataFrame({"framework": ["jax", "torch"], "run": ["table1/tl16_at_12"] * 2,
                      "wall_time_s": [60.0, 40.0], "startup": [2.0, 1.5], "first_step": [9.5, 0.3],
                      "steps": [40.0, 30.0]})
LATENCY = pd.DataFrame({"framework": ["jax", "torch"], "model": ["table1/base"] * 2,
                        "seconds": [4.25, 6.5]})
META = {"date": "2026-01-01 00:00 UTC", "commit": "abc", "machine": "a machine", "versions": "x 1",
        "steps": 10, "repeats": 5}


def test_the_report_keeps_every_row_and_renders_ratios(tmp_path):
  report.write(ROWS, {"roof": ROOFS, "peers": PEERS, "vectt": VECTT, "split": SPLIT,
                      "latency": LATENCY}, META, tmp_path / "bench.csv", tmp_path / "bench.md")
  written = pd.read_csv(tmp_path / "bench.csv")
  assert list(written.row) == ["base", "tl16_at_12"] and "jax_over_torch" in written
  assert len(pd.read_csv(tmp_path / "bench-roof.csv")) == 4
  text = (tmp_path / "bench.md").read_text()
  assert "commit abc" in text and "a machine" in text
  assert "table1/tl16_at_12" in text and "24.0 (24%)" in text
  tl_line = next(line for line in text.splitlines() if line.startswith("table1/tl16_at_12")
                 and "2.50" in line)
  assert "0.75" in tl_line  # Speed-up 1.875 of a FLOP ratio 2.5.
  assert len(pd.read_csv(tmp_path / "bench-peers.csv")) == 2
  jax_peer = next(line for line in text.splitlines() if line.startswith("jax ") and "250.50" in line)
  assert "0.80" in jax_peer  # Twin 200 examples/s against the peer's 250.5.
  torch_vectt = next(line for line in text.splitlines() if line.startswith("torch ") and "2048.00" in line)
  assert "0.25" in torch_vectt and "1.00" in torch_vectt  # Memory 512 / 2048 at equal time.
  assert any(line.startswith("jax") and "9.5" in line for line in text.splitlines())
  assert any(line.startswith("table1/base") and "4.25" in line and "6.50" in line
             for line in text.splitlines())


def test_goals_take_each_frameworks_worst_case():
  goals = report.goals(ROWS, {"roof": ROOFS, "peers": PEERS, "vectt": VECTT}).set_index("goal")
  assert goals.loc["JAX / PyTorch throughput, every proxy row", "measured"] == "0.50"
  assert goals.loc["JAX / PyTorch throughput, every proxy row", "met"] == "no"
  speedup = goals.loc["PyTorch speed-up over the base row / FLOP ratio"]
  assert speedup.measured == "0.75" and speedup.met == "no"  # The base row itself is left out.
  assert goals.loc["JAX chunked / naive VectT at paper size: memory", "measured"] == "0.12"
  assert goals.loc["JAX chunked / naive VectT at paper size: memory", "met"] == "yes"
  assert goals.loc["PyTorch chunked / naive VectT at paper size: time", "met"] == "yes"


def test_the_doc_block_is_rendered_from_the_committed_bench_csvs(tmp_path):
  """docs/performance.md's measured speeds are the committed bench run's, not typed."""
  root = report.pathlib.Path(__file__).parents[2]
  rows, parts, meta = report.read(root / "results" / "bench.csv")
  assert report.doc_block(root / "docs" / "performance.md") == report.doc_section(rows, parts, meta)
  doc = tmp_path / "performance.md"
  doc.write_text("intro\n" + report.DOC_BEGIN + "\nstale\n" + report.DOC_END + "\nrest\n")
  report.update_doc(doc, report.doc_section(rows, parts, meta))
  text = doc.read_text()
  assert text.startswith("intro\n") and text.endswith("\nrest\n") and "stale" not in text


def test_the_report_renders_what_the_csvs_keep(tmp_path):
  """A speed whose last digits the CSV's 6 significant digits round away renders as the CSV
  has it, so a bench run and --report-only give the same text."""
  rows = ROWS.assign(jax_examples_per_s=[200.0, 343.98499])  # In the CSV: 343.985.
  parts = {"roof": ROOFS, "peers": PEERS, "vectt": VECTT, "split": SPLIT, "latency": LATENCY}
  written = report.write(rows, parts, META, tmp_path / "bench.csv", tmp_path / "bench.md")
  assert (tmp_path / "bench.md").read_text() == report.markdown(*report.read(tmp_path / "bench.csv"))
  assert report.doc_section(*written) == report.doc_section(*report.read(tmp_path / "bench.csv"))
  assert "343.99" in (tmp_path / "bench.md").read_text()


def test_the_decode_probe_times_the_loader_beside_a_plain_loop_and_counts_bytes():
  from harness.bench import probe
  image = probe.decode_throughput("imagenet", 32, 1, 2, 1)
  clip = probe.decode_throughput("charades", 32, 4, 1, 1)
  assert image["bytes_per_example"] == 32 * 32 * 3 and clip["bytes_per_example"] == 4 * 32 * 32 * 3
  assert all(v > 0 for v in (*image.values(), *clip.values()))


def test_the_cores_a_gpu_needs_follow_from_the_rows_flops_and_the_decode_rate():
  """From the committed paper rows' GFLOPs: halving the decode rate doubles the cores."""
  from harness.bench.__main__ import paper_inputs
  flops = pd.read_csv(report.FLOPS_CSV)
  decode = pd.DataFrame([{"source": s, "image_size": n, "frames": t, "harness_examples_per_s": 10.0}
                         for s, n, t in paper_inputs()])
  cores = report.cores_per_gpu(decode, flops)
  slower = report.cores_per_gpu(decode.assign(harness_examples_per_s=5.0), flops)
  assert len(cores) == len(flops[(flops.entry == "row") & (flops.scale == "paper")])
  assert (slower.cores / cores.cores).round(9).eq(2).all()
  base = cores.set_index("row").loc["base"]
  assert base.needed * 361.58e9 * 6 == pytest.approx(0.4 * 989e12, rel=1e-3)  # L/16 at 512, H100.


def test_the_accelerator_check_names_each_device_s_peak_and_runs_on_a_cpu(tmp_path, capsys):
  """On a CPU (no peak, no MFU) at smoke scale: a row per framework with its step time, memory
  and the share of the time spent waiting for data."""
  from harness.bench import accelerator
  assert accelerator.peak_tflops("torch:cuda:NVIDIA H100 80GB HBM3 x8") == 989
  assert accelerator.peak_tflops("jax:gpu:NVIDIA A100-SXM4-80GB") == 312
  assert accelerator.peak_tflops("jax:tpu:TPU v3") == 61.5
  assert accelerator.peak_tflops("torch:cpu") is None
  out = tmp_path / "accelerator.csv"
  assert accelerator.main(["--experiments", "table2", "--frameworks", "torch", "--steps", "2", "--out",
                           str(out), "scale=smoke", "train.batch_size=2"]) == 0
  table = pd.read_csv(out)
  assert list(table.framework) == ["torch"] and table.mfu.isna().all()
  assert (table.step_s > 0).all() and table.data_wait_share.between(0, 1).all()
  assert set(table.precision) == {"bfloat16"}
