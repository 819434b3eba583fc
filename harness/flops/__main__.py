"""python -m harness.flops: count every model, write results/flops.csv and tables/flops.md."""
import argparse
import time

from harness.flops import report
from harness.machine import durable


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog="python -m harness.flops", description=__doc__)
  parser.add_argument("--csv", default="results/flops.csv")
  parser.add_argument("--md", default="tables/flops.md")
  args = parser.parse_args(argv)
  start = time.time()
  seen = []

  def progress(name: str) -> None:
    seen.append(name)
    print(f"[{len(seen):3d}] {time.time() - start:6.1f}s  counting {name}", flush=True)

  frame = report.build(progress)
  try:
    report.write_csv(frame, args.csv)
    durable.write_text(args.md, report.markdown(frame), "the FLOP table")
  except durable.StorageError as error:
    parser.exit(1, f"error: StorageError: {error}\n")
  worst = report.agreement(frame)
  print(f"{len(frame)} models counted in {time.time() - start:.0f}s; largest distance from the "
        f"analytic count: XLA {100 * worst['xla_gflops']:.4f}%, torch {100 * worst['torch_gflops']:.4f}%")
  print(f"wrote {args.csv} and {args.md}")


if __name__ == "__main__":
  main()
