"""conf/tables.yaml: what each artifact reports, its deviations from the paper, the claims."""
from scipy import special

from harness.configs import conf_schemas, published

PATH = conf_schemas.CONF_DIR / "tables.yaml"


def load() -> dict:
  """The file, with each `margin_as` resolved to its margin: the paper's log-odds gap between
  the two rows it names."""
  spec = conf_schemas.load(PATH, conf_schemas.TablesFile)
  for claim in spec["claims"]:
    metric = spec["experiments"][claim["experiment"]]["published_metric"]
    for c in claim["comparisons"]:
      if c["test"] != "noninferior":
        continue
      if (c["margin"] is None) == (c["margin_as"] is None):
        raise conf_schemas.SchemaError(f"{PATH.name}: claim {claim['id']}: a noninferior test needs "
                                       "a margin or a margin_as, not both")
      if c["margin_as"] is not None:
        if len(c["margin_as"]) != 2:
          raise conf_schemas.SchemaError(f"{PATH.name}: claim {claim['id']}: margin_as names two rows, "
                                         f"not {c['margin_as']}")
        c["margin"] = paper_gap(claim["experiment"], *c["margin_as"], metric)
      if not c["margin"] > 0:
        raise conf_schemas.SchemaError(f"{PATH.name}: claim {claim['id']}: the margin must be positive, "
                                       f"not {c['margin']:g}")
  return spec


def paper_gap(experiment: str, row: str, other: str, metric: str) -> float:
  """logit(row) - logit(other) of the two rows' published `metric` (a percentage)."""
  values = []
  for key in (row, other):
    entry = published.row(experiment, key, metric)
    if entry is None:
      raise conf_schemas.SchemaError(f"{PATH.name}: no published {metric} for {experiment}/{key}")
    values.append(entry.value / 100)
  return float(special.logit(values[0]) - special.logit(values[1]))


def experiment(name: str) -> dict:
  return load()["experiments"][name]
