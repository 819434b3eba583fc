"""The README's claims at a glance are the committed tables/claims.md's, not typed apart from it."""
import pathlib
import re

ROOT = pathlib.Path(__file__).parents[2]


def _rows(text: str, after: str):
  """(first cell, last cell) of each row of the first Markdown table after the line `after`."""
  lines = text[text.index(after):].splitlines()[1:]
  start = next(i for i, line in enumerate(lines) if line.startswith("|"))
  rows = []
  for line in lines[start + 2:]:  # After the header and its rule.
    if not line.startswith("|"):
      break
    cells = [c.strip() for c in line.strip("|").split("|")]
    rows.append((cells[0], cells[-1]))
  return rows


def test_readme_verdicts_are_the_committed_claims_table():
  glance = _rows((ROOT / "tables" / "claims.md").read_text(), "## At a glance")
  readme = _rows((ROOT / "README.md").read_text(), "## What you get")
  assert glance and readme == glance
  assert re.search(r"^\| claim \| verdict \|$", (ROOT / "README.md").read_text(), re.M)
