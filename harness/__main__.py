"""python -m harness list: the experiment matrix, with both frameworks' parameter counts."""
import argparse

from tabulate import tabulate

from harness import backends, registry


def list_rows(scales) -> None:
  table = []
  for row in registry.rows():
    entry = [row.experiment, row.key, row.label]
    for scale in scales:
      counts = backends.param_counts(row.kind, registry.model_fields(row.experiment, row.key, scale))
      same = "" if counts["jax"] == counts["torch"] else f" (torch {counts['torch']:,})"
      entry.append(f"{counts['jax']:,}{same}")
    table.append(entry)
  headers = ["experiment", "row", "label"] + [f"params @ {s}" for s in scales]
  print(tabulate(table, headers=headers))


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
  verbs = parser.add_subparsers(dest="verb", required=True)
  listing = verbs.add_parser("list", help="list every registered row")
  listing.add_argument("--scales", nargs="+", default=["proxy", "paper"])
  args = parser.parse_args(argv)
  if args.verb == "list":
    list_rows(args.scales)


if __name__ == "__main__":
  main()
