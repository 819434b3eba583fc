"""The twins mirror each other: the same module files, and in each pair of twin modules the same
public names (module-level functions, classes and assignments not starting with '_'; imported
names do not count), defined in the same order, and, for a function both define, the same
parameters, except the differences listed below with their reasons. Classes are compared by
name only: a Flax module's fields leave out the widths it infers from its input, which a torch
module's constructor takes. Read from the sources' syntax trees, importing no framework."""
import ast
import importlib.util
import pathlib
from typing import Dict

import pytest


def _package_dir(package: str) -> pathlib.Path:
  return pathlib.Path(importlib.util.find_spec(package).origin).parent  # Finds, imports nothing.


JAX, TORCH = _package_dir("tokenlearner_jax"), _package_dir("tokenlearner_torch")

_CPU_REWRITE = ("a JAX-only rewrite for XLA's CPU backend; tokenlearner_torch.cpu_rewrites says "
                "why PyTorch needs none")
_FLAX_INIT = ("a Flax initializer, passed to each Dense; the torch twin's dense applies "
              "xavier-uniform and normal(1e-6) itself (kernel_init, bias_std)")

# module -> {name defined on one side only: why}.
NAME_EXCEPTIONS: Dict[str, Dict[str, str]] = {
    "cpu_rewrites": {name: _CPU_REWRITE for name in (
        "CONV_IMPLS", "Padding", "rows_matmul", "rows_dot_general", "convolve",
        "convolve_depthwise", "conv_taps", "depthwise_taps", "kernel_taps", "attend_late_normalised")},
    "layers": {
        "xavier": _FLAX_INIT,
        "tiny_normal": _FLAX_INIT,
        "Conv": ("a Flax module, its rank and input width taken from its first input, that runs "
                 "as cpu_rewrites.CONV_IMPLS says; torch's conv modules fix both at construction, "
                 "so the twin builds nn.Conv2d / nn.Conv3d with `conv`"),
        "DepthwiseConv": ("depthwise convs run as their own rewrite (cpu_rewrites.convolve_depthwise), "
                          "so Flax has a module for them; the torch twin's are conv(..., groups=C)"),
        "conv": "builds torch's nn.Conv2d / nn.Conv3d with Flax's init; the Flax twin's is the Conv class",
        "channels_last": ("torch's convs take channels first; Flax's, and both twins' activations, "
                          "are channels last"),
        "lecun_normal_": "Flax's default kernel init, which torch lacks",
        "LayerNorm": ("nn.LayerNorm computed in float32: a torch module holds its parameters, so "
                      "the float32 op is a subclass; Flax's layer_norm wraps the module's call"),
        "ATTEND_IMPLS": ("how JAX's attend runs, by backend (attend's impl); torch's fused kernel "
                         "serves every device"),
    },
}

# module -> {function both define with other parameters: why}.
SIGNATURE_EXCEPTIONS: Dict[str, Dict[str, str]] = {
    "layers": {
        "layer_norm": ("layer_norm(name): a Flax module infers its width from its input and is "
                       "named where made; layer_norm(dim): a torch module takes its width, and is "
                       "named by the attribute that holds it"),
        "dense": ("dense(features, **nn.Dense keywords): Flax infers the input width; "
                  "dense(in_dim, out_dim, ...): torch's Linear takes both widths and is "
                  "initialised after it is made"),
        "attend": ("attend(q, k, v, impl): JAX picks XLA's CPU-friendly form on a CPU and "
                   "jax.nn.dot_product_attention elsewhere (impl='auto'); torch's fused kernel "
                   "serves every device"),
    },
    "train_step": {
        "make_optimizer": ("make_optimizer(cfg): an optax optimizer is a pure transformation of "
                           "gradients, given no parameters; make_optimizer(cfg, params): a torch "
                           "optimizer holds the parameters it updates"),
        "in_precision": ("in_precision(tree, precision): JAX casts a tree of arrays, which the "
                         "caller applies the model to; in_precision(model, inputs, precision): a "
                         "torch module holds its parameters, so the copies are swapped into the "
                         "call (functional_call)"),
        "loss_and_grads_fn": ("input_grads only in JAX, which differentiates with respect to the "
                              "arguments it is told; torch's backward reaches every tensor that "
                              "requires a gradient, inputs included"),
    },
}


def _bound_names(target: ast.AST):
  if isinstance(target, ast.Name):
    yield target.id
  elif isinstance(target, (ast.Tuple, ast.List)):
    for element in target.elts:
      yield from _bound_names(element)
  elif isinstance(target, ast.Starred):
    yield from _bound_names(target.value)


def _definitions(body):
  """(name, node) of each function, class and assignment at module level, inside `if`, `try`
  and `with` blocks too."""
  for node in body:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
      yield node.name, node
    elif isinstance(node, ast.Assign):
      for target in node.targets:
        yield from ((name, node) for name in _bound_names(target))
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
      yield from ((name, node) for name in _bound_names(node.target))
    elif isinstance(node, (ast.If, ast.Try, ast.With)):
      for block in ("body", "orelse", "finalbody"):
        yield from _definitions(getattr(node, block, []))
      for handler in getattr(node, "handlers", []):
        yield from _definitions(handler.body)


def public_definitions(path: pathlib.Path) -> Dict[str, ast.AST]:
  tree = ast.parse(path.read_text(), filename=str(path))
  return {name: node for name, node in _definitions(tree.body) if not name.startswith("_")}


def parameters(function: ast.FunctionDef):
  args = function.args
  names = [a.arg for a in args.posonlyargs + args.args]
  names += [f"*{args.vararg.arg}"] if args.vararg else ["*"] if args.kwonlyargs else []
  names += [a.arg for a in args.kwonlyargs]
  names += [f"**{args.kwarg.arg}"] if args.kwarg else []
  return names


def _modules(package_dir: pathlib.Path):
  return {path.stem for path in package_dir.glob("*.py")}


MODULES = sorted(_modules(JAX) & _modules(TORCH))


def test_the_twins_have_the_same_modules():
  assert _modules(JAX) == _modules(TORCH), (
      f"only in tokenlearner_jax: {sorted(_modules(JAX) - _modules(TORCH))}; "
      f"only in tokenlearner_torch: {sorted(_modules(TORCH) - _modules(JAX))}")


@pytest.mark.parametrize("module", MODULES)
def test_twin_modules_define_the_same_public_names(module):
  jax_names, torch_names = (set(public_definitions(d / f"{module}.py")) for d in (JAX, TORCH))
  excused = NAME_EXCEPTIONS.get(module, {})
  only_jax, only_torch = jax_names - torch_names - set(excused), torch_names - jax_names - set(excused)
  assert not (only_jax or only_torch), (
      f"{module}: public names in one twin only (define them in both, or list them with a reason "
      f"in NAME_EXCEPTIONS): tokenlearner_jax {sorted(only_jax)}, tokenlearner_torch {sorted(only_torch)}")
  stale = sorted(set(excused) - (jax_names ^ torch_names))
  assert not stale, f"{module}: NAME_EXCEPTIONS lists names not in exactly one twin: {stale}"


@pytest.mark.parametrize("module", MODULES)
def test_twin_functions_take_the_same_parameters(module):
  jax_defs, torch_defs = (public_definitions(d / f"{module}.py") for d in (JAX, TORCH))
  functions = lambda defs: {n: d for n, d in defs.items() if isinstance(d, ast.FunctionDef)}
  jax_fns, torch_fns = functions(jax_defs), functions(torch_defs)
  differ = {name: (parameters(jax_fns[name]), parameters(torch_fns[name]))
            for name in jax_fns.keys() & torch_fns.keys()
            if parameters(jax_fns[name]) != parameters(torch_fns[name])}
  excused = SIGNATURE_EXCEPTIONS.get(module, {})
  unexplained = {name: p for name, p in differ.items() if name not in excused}
  assert not unexplained, (
      f"{module}: twin functions with other parameters (jax, torch), not in SIGNATURE_EXCEPTIONS: "
      f"{unexplained}")
  stale = sorted(set(excused) - set(differ))
  assert not stale, f"{module}: SIGNATURE_EXCEPTIONS lists functions whose parameters agree: {stale}"


@pytest.mark.parametrize("module", MODULES)
def test_twin_modules_define_their_shared_names_in_the_same_order(module):
  jax_order, torch_order = (list(public_definitions(d / f"{module}.py")) for d in (JAX, TORCH))
  shared = set(jax_order) & set(torch_order)
  jax_order, torch_order = ([n for n in order if n in shared] for order in (jax_order, torch_order))
  assert jax_order == torch_order, f"{module}: tokenlearner_jax {jax_order}, tokenlearner_torch {torch_order}"


def test_a_public_name_in_one_twin_only_is_caught(tmp_path):
  (tmp_path / "a.py").write_text("import os\nfrom x import y\n\nA = 1\n_b = 2\n\n\ndef f(x):\n  pass\n")
  (tmp_path / "b.py").write_text("A = 1\n\n\ndef f(x):\n  pass\n\n\ndef g():\n  pass\n\n\nclass C:\n  z = 1\n")
  assert set(public_definitions(tmp_path / "a.py")) == {"A", "f"}
  assert set(public_definitions(tmp_path / "b.py")) - set(public_definitions(tmp_path / "a.py")) == {"g", "C"}
