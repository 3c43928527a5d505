"""CuPy's own API, checked on the CPU: every call the library makes on the array namespace (``xp.<name>(...)``,
``xp.linalg.<name>(...)``), with every keyword it passes, must exist in CuPy with that signature.

The strict backend (array_api_strict) catches NumPy-only calls, but not array-API-only ones that CuPy lacks
(``xp.std(x, correction=1)``: CuPy's ``std`` has only ``ddof``). CuPy's wheel imports without a GPU, so the real
signatures can be read here: ``pip install cupy-cuda13x`` (or cupy-cuda12x); without it these tests skip.
The calls are found by reading the source (ast), so a call on a branch the tests never run is checked too.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

cupy = pytest.importorskip("cupy", reason="CuPy is not installed: pip install cupy-cuda13x (imports without a GPU)")

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("refvae", "rbm", "wakesleep")
#: (function, keyword) pairs that are never passed on CuPy, each with the reason.
NOT_ON_CUPY = {
    ("asarray", "device"): "refvae/backend.py passes device= only when Backend.device is set: the strict backend",
    ("zeros", "device"): "refvae/backend.py passes device= only when Backend.device is set: the strict backend",
    ("eye", "device"): "refvae/backend.py passes device= only when Backend.device is set: the strict backend",
}
#: Functions whose signature CuPy does not expose (Cython), each checked by hand against CuPy 14.2's documentation.
CHECKED_BY_HAND = {
    ("cuda.get_current_stream", 0, ()): "cupy.cuda.get_current_stream(device_id=-1): called without arguments",
    ("cuda.runtime.memGetInfo", 0, ()): "cupy.cuda.runtime.memGetInfo() -> (free, total): takes no arguments",
}
#: Keywords every CuPy ufunc accepts (cupy._core._kernel.ufunc.__call__).
UFUNC_KEYWORDS = {"out", "dtype", "casting"}


def _xp_path(func) -> str | None:
    """``"linalg.inv"`` for ``xp.linalg.inv`` / ``self.xp.linalg.inv`` / ``B.xp.linalg.inv``; None otherwise."""
    names = []
    node = func
    while isinstance(node, ast.Attribute):
        if node.attr == "xp":
            return ".".join(reversed(names)) or None
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "xp":
        return ".".join(reversed(names)) or None
    return None


def _namespace_calls():
    """[(path, n_positional, keywords, where)] for every call on the array namespace in the library."""
    calls = []
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(file.read_text(), filename=str(file))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    path = _xp_path(node.func)
                    if path:
                        starred = any(isinstance(a, ast.Starred) for a in node.args)
                        keywords = tuple(k.arg for k in node.keywords if k.arg is not None)
                        calls.append((path, None if starred else len(node.args), keywords,
                                      f"{file.relative_to(ROOT)}:{node.lineno}"))
    return calls


def _namespace_attributes():
    """{path: where} of every attribute read on the namespace that is not called (dtypes such as xp.float32)."""
    called = {id(node.func) for file in _library_trees() for node in ast.walk(file) if isinstance(node, ast.Call)}
    found = {}
    for tree in _library_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and id(node) not in called:
                path = _xp_path(node)
                if path and not isinstance(getattr(node, "ctx", None), ast.Store):
                    found.setdefault(path, tree.refvae_file)
    return found


_TREES = []


def _library_trees():
    if not _TREES:
        for package in PACKAGES:
            for file in sorted((ROOT / package).rglob("*.py")):
                tree = ast.parse(file.read_text(), filename=str(file))
                tree.refvae_file = str(file.relative_to(ROOT))
                _TREES.append(tree)
    return _TREES


def _cupy_object(path):
    obj = cupy
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _problem(path, n_positional, keywords) -> str | None:
    """Why CuPy cannot take this call, or None."""
    obj = _cupy_object(path)
    if obj is None:
        return f"cupy has no {path}"
    if (path, n_positional, tuple(keywords)) in CHECKED_BY_HAND:
        return None
    keywords = tuple(k for k in keywords if (path, k) not in NOT_ON_CUPY)
    if isinstance(obj, cupy.ufunc):
        extra = set(keywords) - UFUNC_KEYWORDS
        if extra:
            return f"cupy.{path} is a ufunc: it takes no keyword {sorted(extra)}"
        if n_positional is not None and n_positional > obj.nin + obj.nout:
            return f"cupy.{path} takes {obj.nin} inputs, got {n_positional} positional arguments"
        return None
    if isinstance(obj, type) or not callable(obj):
        return None if not keywords else f"cupy.{path} is not a function"
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"cupy.{path} has no readable signature: check it by hand and list it here"
    try:
        signature.bind_partial(*([None] * (n_positional or 0)), **{k: None for k in keywords})
    except TypeError as err:
        return f"cupy.{path}{signature}: {err}"
    return None


CALLS = _namespace_calls()


def test_the_library_calls_the_namespace_at_all():
    """The reader finds the calls (a broken reader would pass every check vacuously)."""
    paths = {path for path, *_ in CALLS}
    assert len(CALLS) > 200 and {"sum", "exp", "linalg.inv", "astype", "concat"} <= paths


def test_every_namespace_call_exists_in_cupy_with_its_keywords():
    problems = sorted({f"{where}: xp.{path}(... {', '.join(f'{k}=' for k in keywords)}) -> {why}"
                       for path, n, keywords, where in CALLS
                       if (why := _problem(path, n, keywords)) is not None})
    assert not problems, "calls CuPy cannot take:\n" + "\n".join(problems)


def test_every_namespace_attribute_exists_in_cupy():
    missing = sorted(f"{where}: xp.{path}" for path, where in _namespace_attributes().items()
                     if _cupy_object(path) is None)
    assert not missing, "CuPy lacks:\n" + "\n".join(missing)


def test_the_checker_catches_array_api_only_and_numpy_only_calls():
    """The check fails on the calls it exists for: an array-API keyword CuPy lacks, a NumPy-only function, a
    ufunc keyword, too many arguments."""
    assert "correction" in _problem("std", 1, ("correction",))
    assert _problem("std", 1, ("ddof", "axis")) is None
    assert "cupy has no nanquantile" == _problem("nanquantile", 1, ())
    assert "ufunc" in _problem("exp", 1, ("where_not",))
    assert _problem("maximum", 2, ()) is None and "inputs" in _problem("maximum", 4, ())
    assert "cupy has no linalg.nope" == _problem("linalg.nope", 1, ())


@pytest.mark.parametrize("prop, kind", [("_gen_device", "Generator"), ("_perm_device", "RandomState")])
def test_the_backends_generator_calls_exist_in_cupy(prop, kind):
    """refvae.backend.Generator draws on CuPy through cupy.random.default_rng (a Generator, property
    ``_gen_device``) and a RandomState (``_perm_device``): each method it calls, with its keywords."""
    tree = ast.parse((ROOT / "refvae" / "backend.py").read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == prop]
    assert calls, f"no calls on {prop} found"
    cls = getattr(cupy.random, kind)
    for node in calls:
        method = getattr(cls, node.func.attr, None)
        assert method is not None, f"cupy.random.{kind} has no {node.func.attr}"
        inspect.signature(method).bind(None, *([None] * len(node.args)),
                                       **{k.arg: None for k in node.keywords})


#: Modules of device mathematics: arrays there live on the backend's device, so a NumPy function on them would
#: copy to the host under CuPy (or fail). They may only use the namespace ``xp``.
DEVICE_MODULES = ("refvae/numerics.py", "refvae/layers.py", "refvae/optim.py", "refvae/train.py",
                  "refvae/enumeration.py", "refvae/features.py", "refvae/vae/elbo.py", "refvae/vae/model.py",
                  "refvae/vae/aggregate.py", "refvae/vae/linear.py", "refvae/vae/evaluation.py",
                  "rbm/gradients.py", "rbm/model.py", "rbm/partition.py", "wakesleep/rules.py",
                  "wakesleep/model.py", "wakesleep/likelihood.py", "refvae/fast.py")
#: NumPy calls allowed there, by (module, function), with the reason.
HOST_CALLS_ALLOWED = {
    ("refvae/fast.py", "adam_step_sums"): "the NumPy twin, taken only when the backend is numpy (B.name == 'numpy')",
    ("refvae/optim.py", "_slot_tables"): "checks host copies (B.to_numpy) of a saved state once, when it is loaded",
}


def _numpy_calls(tree):
    """[(enclosing function name, line)] of calls ``np.<...>(...)`` in a module."""
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Call):
                root = child.func
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id == "np" and isinstance(child.func, ast.Attribute):
                    found.append((function, child.lineno))
            visit(child, name)

    visit(tree, "<module>")
    return found


def test_device_mathematics_calls_no_numpy_function():
    """Where the strict backend cannot look (CuPy-only branches), the source can: the modules of device
    mathematics call NumPy only where a listed reason says the arrays are NumPy's."""
    offending = []
    for module in DEVICE_MODULES:
        tree = ast.parse((ROOT / module).read_text())
        offending += [f"{module}:{line} in {function}" for function, line in _numpy_calls(tree)
                      if (module, function) not in HOST_CALLS_ALLOWED]
    assert not offending, "NumPy functions on device arrays:\n" + "\n".join(offending)
    assert _numpy_calls(ast.parse("def f(x):\n    return np.exp(x)\n")) == [("f", 2)]     # the finder finds


def test_the_fused_adam_kernel_builds_and_matches_its_call():
    """refvae.fast's CuPy kernel is built here without a GPU (CuPy compiles on first launch): it takes the 5 inputs
    and 3 in-place outputs that adam_step_sums passes, in that order."""
    from refvae import fast

    kernel = fast._cupy_adam_kernel()
    assert isinstance(kernel, cupy.ElementwiseKernel)
    assert (kernel.nin, kernel.nout) == (5, 3)
    names = [p.name for p in kernel.params if p.name != "_ind"]
    assert names == ["g", "lr_t", "b1", "b2", "eps_t", "p", "m_sum", "v_sum"]
    call = next(node for node in ast.walk(ast.parse((ROOT / "refvae" / "fast.py").read_text()))
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Call)
                and getattr(node.func.func, "id", None) == "_cupy_adam_kernel")
    assert [a.id for a in call.args] == names
