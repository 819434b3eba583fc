"""The fault catalogue's table: every test that declares a fault case (the `fault` fixture)
is a row: the case, what was done, what happened, and whether the harness passed.

Rows come from test reports, so they are gathered in the process that sees every report
(pytest-xdist's controller) and written once at the end of the session.
"""
import datetime
import pathlib
import platform
import subprocess
from typing import Dict, List

DONE, HAPPENED = "fault_done", "fault_happened"
_rows: Dict[str, dict] = {}
_skipped: Dict[str, dict] = {}  # Listed where their file has cases: a case this machine cannot make.


def collect(report) -> None:
  """Takes a case's outcome from its call report, or from a setup or teardown that failed."""
  properties = dict(report.user_properties)
  if report.skipped:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    _skipped[report.nodeid] = {"case": report.nodeid.split("::", 1)[1], "file": report.fspath,
                               "reason": reason.removeprefix("Skipped: ")}
  if DONE not in properties or report.skipped or (report.passed and report.when != "call"):
    return
  row = _rows.setdefault(report.nodeid, {"case": report.nodeid.split("::", 1)[1],
                                         "file": report.fspath, "passed": True})
  row["done"] = properties[DONE]
  if report.failed:
    errors = [line[1:].strip() for line in report.longreprtext.splitlines() if line.startswith("E ")]
    row.update(passed=False, happened=errors[0] if errors else report.longreprtext.strip().splitlines()[-1])
  else:
    row.setdefault("happened", properties.get(HAPPENED, ""))


def _commit() -> str:
  try:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=pathlib.Path(__file__).parent).stdout.strip()
  except OSError:
    return "unknown"


def _cell(text: str) -> str:
  return str(text).replace("|", "\\|").replace("\n", " ")


def render(rows: List[dict]) -> str:
  passed = sum(r["passed"] for r in rows)
  lines = [
      "# Fault catalogue",
      "",
      f"- **Commit:** {_commit()}",
      f"- **Date:** {datetime.date.today().isoformat()}",
      f"- **Machine:** {platform.system()} {platform.machine()}, Python {platform.python_version()}",
      f"- **Cases:** {len(rows)}, {passed} passed, {len(rows) - passed} failed "
      "(cases this machine cannot make are listed last, skipped)",
      "",
      "| case | what was done | what happened | result |",
      "|---|---|---|---|",
  ]
  for row in sorted(rows, key=lambda r: (str(r["file"]), r["case"])):
    lines.append(f"| {_cell(row['case'])} | {_cell(row['done'])} | {_cell(row.get('happened', ''))} | "
                 f"{'pass' if row['passed'] else '**FAIL**'} |")
  files = {str(r["file"]) for r in rows}
  for row in sorted(_skipped.values(), key=lambda r: r["case"]):
    if str(row["file"]) in files:
      lines.append(f"| {_cell(row['case'])} | – | not made here: {_cell(row['reason'])} | skipped |")
  return "\n".join(lines) + "\n"


def write(path) -> None:
  if _rows:
    pathlib.Path(path).write_text(render(list(_rows.values())))
