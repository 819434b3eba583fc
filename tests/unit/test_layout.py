"""The harness's layout holds: imports run one way, from the command line down to data and the
machine, with no cycle; few modules at the top; no two modules of one name in different roles."""
import ast
import collections
import pathlib

HARNESS = pathlib.Path(__file__).parents[2] / "harness"
# Each package may import from the layers below its own only (not from a sibling in its layer).
LAYERS = [
    ("__main__",),
    ("cli",),
    ("bench",),
    ("run", "report", "maps"),
    ("store", "flops"),
    ("configs",),
    ("twins",),
    ("testing",),  # Fixtures in the real formats are written with data's own writers.
    ("data", "machine"),
]
# Module names that several packages share because they play the same role in each.
SAME_ROLE = {"__init__.py", "__main__.py", "report.py"}


def _modules():
  out = {}
  for path in HARNESS.rglob("*.py"):
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
  return out


def _imports(modules):
  """module -> the harness modules it imports (anywhere in it, function bodies included)."""
  def resolve(name):
    while name not in modules:
      name = name.rpartition(".")[0]
    return name
  edges = collections.defaultdict(set)
  for module, path in modules.items():
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "harness":
        edges[module] |= {resolve(f"{node.module}.{alias.name}") for alias in node.names}
      elif isinstance(node, ast.Import):
        edges[module] |= {resolve(a.name) for a in node.names if a.name.split(".")[0] == "harness"}
    edges[module].discard(module)
  return edges


def _package(module: str) -> str:
  return module.split(".")[1] if "." in module else "(top)"


def test_imports_run_down_the_layers():
  rank = {package: i for i, layer in enumerate(LAYERS) for package in layer}
  packages = {_package(m) for m in _modules()} - {"(top)"}
  assert packages == set(rank), "a package is missing from LAYERS, or LAYERS names one that is gone"
  upward = sorted(f"{m} -> {t}" for m, targets in _imports(_modules()).items() for t in targets
                  if _package(t) != "(top)" and _package(m) != _package(t)
                  and rank[_package(t)] <= rank[_package(m)])
  assert not upward, upward


def test_no_module_import_cycle():
  edges = _imports(_modules())
  state = {}

  def visit(module, path):
    state[module] = "open"
    for target in sorted(edges.get(module, ())):
      if state.get(target) == "open":
        raise AssertionError(" -> ".join(path[path.index(target):] + [target]))
      if target not in state:
        visit(target, path + [target])
    state[module] = "done"

  for module in sorted(edges):
    if module not in state:
      visit(module, [module])


def test_few_modules_at_the_top_and_names_used_once():
  assert len(list(HARNESS.glob("*.py"))) <= 6
  names = collections.Counter(p.name for p in HARNESS.rglob("*.py"))
  assert not {n for n, count in names.items() if count > 1} - SAME_ROLE
