"""One training step of each paper-scale architecture on CPU, in both frameworks, so that the
paper configs cannot rot: Table 1's ViT L/16 at 512 with TokenLearner, Figure 1's B/16 at 384
with TokenFuser, Table 2's 64-frame video model. Slow (minutes, several GB): --runslow."""
import math

import numpy as np
import pytest

from harness.configs import registry
from harness.twins import backends, runners
from harness.twins.runners.protocol import step_on
from tokenlearner_spec import FRAMEWORKS, OptimizerConfig

PAPER_ROWS = [("table1", "tl16_at_12"), ("figure1", "tokenfuser_tl16"), ("table2", "tl_vectt_tokenfuser")]
BATCH = 2  # In two micro-batches of one example: accumulation is on the paper path too.


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("experiment,row", PAPER_ROWS)
def test_one_paper_scale_training_step(experiment, row, framework):
  kind = registry.get_row(experiment, row).kind
  fields = registry.model_fields(experiment, row, "paper")
  config = backends.make_config(kind, fields)
  multilabel = kind == "video"
  rng = np.random.default_rng(0)
  x = rng.normal(size=backends.input_shape(kind, config, BATCH)).astype(np.float32)
  y = (rng.random((BATCH, config.num_classes)) < 0.05).astype(np.float32) if multilabel else \
      rng.integers(0, config.num_classes, BATCH).astype(np.int32)
  runner = runners.make(framework, kind, fields, OptimizerConfig(name="sgd", learning_rate=0.01),
                        multilabel, seed=0, micro_batches=2)
  loss = step_on(runner, 0, x, y)
  assert math.isfinite(loss) and loss > 0
  assert runner.predict(x[:1]).shape == (1, config.num_classes)
