"""conf/tables.yaml: what each artifact reports, its deviations from the paper, the claims."""
import functools
import pathlib

from omegaconf import OmegaConf

PATH = pathlib.Path(__file__).parents[1] / "conf" / "tables.yaml"
TESTS = ("superior", "noninferior")


@functools.lru_cache(maxsize=None)
def load() -> dict:
  spec = OmegaConf.to_container(OmegaConf.load(PATH), resolve=True)
  for claim in spec["claims"]:
    for c in claim["comparisons"]:
      if c["test"] not in TESTS:
        raise ValueError(f"{PATH.name}: claim {claim['id']}: test {c['test']!r} is not one of {TESTS}")
      if c["test"] == "noninferior" and "margin" not in c:
        raise ValueError(f"{PATH.name}: claim {claim['id']}: a noninferior test needs a margin")
  return spec


def experiment(name: str) -> dict:
  return load()["experiments"][name]
