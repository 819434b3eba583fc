"""Paper scale: identical parameter counts for every architecture, and one paper-size forward
pass of the Figure 1 TokenFuser model (ViT B/16 at 384, 16-TL at 6) in both frameworks."""
import numpy as np
import pytest

from harness.twins import backends
from harness.configs import registry
from harness.testing.parity_log import FORWARD_ATOL, compare
from tests.parity.twins import Twin, tolerance_factor

ROWS = registry.rows()


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_paper_parameter_counts_match(row, check):
  counts = backends.param_counts(row.kind, registry.model_fields(row.experiment, row.key, "paper"))
  assert counts["jax"] > 1_000_000, f"{row.id} at paper scale has only {counts['jax']} params"
  check(compare({"params": np.float64(counts["jax"])}, {"params": np.float64(counts["torch"])}, 0.0,
                model=row.id, direction="paper_scale", check="param_count", relative=False))


@pytest.mark.all_parity  # A paper-size forward: minutes on a CPU.
def test_paper_scale_forward_figure1_tokenfuser(check):
  row = registry.get_row("figure1", "tokenfuser_tl16")
  fields = registry.model_fields(row.experiment, row.key, "paper")
  flax_model, torch_model = backends.build("jax", row.kind, fields), backends.build("torch", row.kind, fields)
  shape = backends.input_shape(row.kind, flax_model.config, batch=1)
  images = np.random.RandomState(0).randn(*shape).astype(np.float32)
  twin = Twin(flax_model, torch_model, [images], "jax_to_torch")
  out_jax, out_torch = twin.forward()
  factor = tolerance_factor(row.kind, fields)  # Documented in tests/parity/twins.py.
  check(compare(out_jax, out_torch, FORWARD_ATOL * factor, model=f"{row.id}@paper",
                direction="jax_to_torch", check="forward"))
