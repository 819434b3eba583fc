"""python -m harness.tables: same as `python -m harness tables`."""
import sys

from harness.__main__ import main

if __name__ == "__main__":
  sys.exit(main(["tables", *sys.argv[1:]]))
