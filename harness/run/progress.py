"""One progress line per run: its place in the sweep, a bar, throughput, ETA and the loss.

On a terminal the line redraws in place; in a log (CI) it is printed at most
every LOG_SECONDS and once at the end, so logs stay short.
"""
import sys
import time

BAR = 20
LOG_SECONDS = 15.0


def _clock(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
  def __init__(self, name: str, total_steps: int, index: int = 0, of: int = 0, stream=None):
    self.name, self.total = name, total_steps
    self.tag = f"[{index}/{of}] " if of else ""
    self.stream = stream or sys.stderr
    self.tty = self.stream.isatty()
    self.first, self.began, self.shown = 0, time.monotonic(), 0.0

  def _emit(self, text: str, final: bool = False) -> None:
    if self.tty:
      self.stream.write("\r\033[K" + text + ("\n" if final else ""))
    else:
      self.stream.write(text + "\n")
    self.stream.flush()

  def note(self, text: str) -> None:
    self._emit(f"{self.tag}{self.name}: {text}", final=True)

  def skip(self, reason: str) -> None:
    self.note(f"skipped, {reason}")

  def start(self, step: int) -> None:
    self.first, self.began = step, time.monotonic()

  def update(self, step: int, loss: float) -> None:
    now = time.monotonic()
    if not self.tty and now - self.shown < LOG_SECONDS and step < self.total:
      return
    self.shown = now
    rate = (step - self.first) / max(now - self.began, 1e-9)
    filled = BAR * step // self.total
    eta = (self.total - step) / rate if rate else 0.0
    self._emit(f"{self.tag}{self.name} |{'#' * filled}{'.' * (BAR - filled)}| {step}/{self.total} "
               f"{rate:.1f} step/s ETA {_clock(eta)} loss {loss:.4f}")

  def finish(self, metrics: dict) -> None:
    shown = ", ".join(f"{k} {v:.2f}" for k, v in metrics.items() if k.startswith("test_"))
    self.note(f"finished in {_clock(time.monotonic() - self.began)}: {shown}")
