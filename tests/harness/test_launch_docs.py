"""Every launch command in docs/paper-scale.md, read from the page itself, is one the harness
takes: its arguments parse, each run it starts composes and validates at paper scale (without
the data), PyTorch lines start a process per GPU, and a SLURM line gives each framework its task
layout. (The commands' paths are a user's; the runs themselves are tested at smoke scale in
test_launchers.py and test_data_parallel.py.)"""
import re
import shlex

import pytest
from hydra import compose as hydra_compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from tokenlearner_spec import FRAMEWORKS

from harness import cli
from harness.configs import compose, registry
from tests.processes import ROOT


def documented_commands():
  """The harness commands of the page's bash blocks, continuation lines joined."""
  text = (ROOT / "docs" / "paper-scale.md").read_text()
  for block in re.findall(r"```bash\n(.*?)```", text, re.S):
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
      words = shlex.split(line.split("#", 1)[0])
      if words and "harness" in words and words[0] in ("torchrun", "python"):
        yield words


COMMANDS = list(documented_commands())


def _split(words):
  """(torchrun processes per node or None, the harness's argv)."""
  at = len(words) - 1 - words[::-1].index("harness")
  launcher = words[:at + 1]
  procs = None
  if launcher[0] == "torchrun":
    procs = int(launcher[launcher.index("--nproc-per-node") + 1])
  return procs, words[at + 1:]


def _launcher_config(overrides):
  """The Hydra launcher config the overrides choose, resolved."""
  GlobalHydra.instance().clear()
  with initialize_config_dir(config_dir=str(compose.CONF_DIR), version_base=None):
    cfg = hydra_compose("config", overrides=list(overrides), return_hydra_config=True)
  return cfg.hydra.launcher


def test_the_page_has_its_launch_commands():
  verbs = [_split(words)[1][0] for words in COMMANDS]
  assert verbs.count("run") >= 2 and verbs.count("reproduce") >= 3


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(w[:6]) for w in COMMANDS])
def test_a_documented_launch_command_is_one_the_harness_takes(words, monkeypatch):
  procs, argv = _split(words)
  checked = []

  def check(args, overrides):
    experiments = getattr(args, "experiments", None) or [
        o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")]
    frameworks = getattr(args, "frameworks", None) or list(FRAMEWORKS)
    if argv[0] == "run":
      frameworks = [o.split("=", 1)[1] for o in overrides if o.startswith("framework=")]
    run_overrides = [o for o in overrides if not o.startswith("hydra")]
    compose.validate(compose.compose_config(run_overrides), data_files=False)  # As the verb plans.
    for experiment in experiments:
      rows = [None] if argv[0] == "run" else [f"row={r.key}" for r in registry.rows(experiment)]
      for framework in frameworks:
        for row in rows:
          cfg = compose.validate(compose.compose_config(
              [*run_overrides, f"experiment={experiment}", f"framework={framework}", *filter(None, [row])]),
              data_files=False)
        assert cfg.scale.name == "paper"
        if experiment != "table2":
          assert cfg.train.pretrained.endswith(".npz")
        if any(o == "hydra/launcher=slurm" for o in overrides):
          launcher = _launcher_config([*overrides, f"experiment={experiment}", f"framework={framework}"])
          gpus = launcher.gpus_per_node
          assert launcher.tasks_per_node == (gpus if framework == "torch" else 1)
          assert launcher.cpus_per_task == 4 + cfg.runtime.data_workers
        checked.append((experiment, framework))
    return 0

  monkeypatch.setitem(cli.VERBS, argv[0], cli.VERBS[argv[0]].__class__(
      **{**cli.VERBS[argv[0]].__dict__, "handler": check}))
  assert cli.main(argv) == 0
  assert checked
  if procs is not None:  # torchrun: PyTorch's runs, a process per GPU.
    assert {f for _, f in checked} == {"torch"} and procs == 8
