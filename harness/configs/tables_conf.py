"""conf/tables.yaml: what each artifact reports, its deviations from the paper, the claims."""
from harness.configs import conf_schemas

PATH = conf_schemas.CONF_DIR / "tables.yaml"


def load() -> dict:
  spec = conf_schemas.load(PATH, conf_schemas.TablesFile)
  for claim in spec["claims"]:
    for c in claim["comparisons"]:
      if c["test"] == "noninferior" and c["margin"] is None:
        raise conf_schemas.SchemaError(f"{PATH.name}: claim {claim['id']}: a noninferior test needs a margin")
  return spec


def experiment(name: str) -> dict:
  return load()["experiments"][name]
