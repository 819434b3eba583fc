"""Train batches put on the device ahead of the step that takes them: the runner's put starts a
copy and returns, so batch n+1 travels while step n computes (on a GPU from pinned memory, on
a copy stream of its own in PyTorch; jax.device_put is asynchronous), and the training loop
waits for the device only where it reads the losses."""
import collections
from typing import Callable, Iterator, Tuple

import numpy as np

STEPS_AHEAD = 2  # Batches on the device beyond the step's own: one in flight, one spare.


def ahead(put: Callable[[np.ndarray, np.ndarray], object], batches: Iterator[Tuple[np.ndarray, np.ndarray]],
          steps_ahead: int = STEPS_AHEAD) -> Iterator[object]:
  """put(x, y) of each batch, in order, each put `steps_ahead` batches before it is yielded."""
  queued = collections.deque()
  for x, y in batches:
    queued.append(put(x, y))
    if len(queued) > steps_ahead:
      yield queued.popleft()
  while queued:
    yield queued.popleft()
