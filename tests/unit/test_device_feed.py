"""Batches go to the device ahead of their step, and the loop waits for the device only where it
reads the losses."""
from types import SimpleNamespace

from harness.run import device_feed, train


def test_each_batch_is_put_steps_ahead_of_the_step_that_takes_it():
  events = []
  def put(x, y):
    events.append(f"put {x}")
    return x
  for got in device_feed.ahead(put, ((n, n) for n in range(5)), steps_ahead=2):
    events.append(f"step {got}")
  assert events == ["put 0", "put 1", "put 2", "step 0", "put 3", "step 1", "put 4", "step 2",
                    "step 3", "step 4"]


def test_the_losses_are_read_where_they_are_logged_checkpointed_or_the_run_ends():
  runtime = SimpleNamespace(log_every=4, checkpoint_every=6)
  reads = [step for step in range(13) if train.reads_losses_after(step, runtime, steps=13)]
  assert reads == [3, 5, 7, 11, 12]  # Steps 4, 8 logged; 6, 12 checkpointed; 13 the last.
  assert [s for s in range(5) if train.reads_losses_after(s, SimpleNamespace(log_every=10, checkpoint_every=0), 5)] == [4]
