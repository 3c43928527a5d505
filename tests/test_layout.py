"""The layout is the design: the core (the modules directly in refvae/) knows no model, and no module imports
another that (directly or not) imports it back.

Models: the Gaussian VAE (refvae/vae/), rbm/ and wakesleep/. refvae/__init__.py (the public API, re-exporting
the VAE), refvae/app.py (the program, which lists the models) and refvae/__main__.py put core and models
together and are not core.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("refvae", "rbm", "wakesleep")
MODEL_PACKAGES = ("refvae.vae", "rbm", "wakesleep")
COMPOSITION = ("refvae", "refvae.app", "refvae.__main__")


def _modules():
    """{dotted module name: path} of every module of the three packages (a package as its __init__)."""
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(name, path, modules):
    """The modules of the three packages that ``name`` imports anywhere in its file (functions included)."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:          # "refvae.plots.save_figure" -> "refvae.plots"
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _is_model(name):
    return any(name == pkg or name.startswith(pkg + ".") for pkg in MODEL_PACKAGES)


def test_the_core_imports_no_model():
    graph = _graph()
    core = [name for name in graph if name.startswith("refvae") and not _is_model(name) and name not in COMPOSITION]
    assert "refvae.train" in core and "refvae.cli" in core and "refvae.plots" in core
    offending = {name: sorted(t for t in graph[name] if _is_model(t) or t in COMPOSITION) for name in core}
    assert not {k: v for k, v in offending.items() if v}, offending


def test_no_import_cycles():
    graph = _graph()
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def test_the_checker_sees_imports_inside_functions(tmp_path):
    src = tmp_path / "refvae" / "x.py"
    src.parent.mkdir()
    src.write_text("def f():\n    from .vae import model\n    import rbm.cli\n")
    modules = {"refvae.x": src, "refvae.vae": None, "refvae.vae.model": None, "rbm": None, "rbm.cli": None}
    assert _imports("refvae.x", src, modules) == {"refvae.vae.model", "rbm.cli"}


def test_the_licence_and_citation_files_exist():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    citation = (ROOT / "CITATION.cff").read_text()
    assert "cff-version" in citation and "title:" in citation


# ------------------------------------------------------------------------------------------------
# No import-time side effects: the program's one table (refvae.app.MODELS) fills the core's registries
# ------------------------------------------------------------------------------------------------
def _fresh_python(code):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_core_modules_load_no_model_and_no_matplotlib():
    code = "import refvae.optim, sys; print('matplotlib' in sys.modules, 'refvae.vae' in sys.modules)"
    assert _fresh_python(code) == "False False"
    code = "import refvae, refvae.train, refvae.gradcheck, sys; print(sorted(m for m in sys.modules " \
           "if m == 'matplotlib' or m.startswith(('refvae.vae', 'rbm', 'wakesleep'))))"
    assert _fresh_python(code) == "[]"


def test_importing_every_module_registers_nothing():
    code = """
import importlib, pathlib
for pkg in ("refvae", "rbm", "wakesleep"):
    for path in sorted(pathlib.Path(pkg).rglob("*.py")):
        name = ".".join(path.with_suffix("").parts).removesuffix(".__init__")
        if name not in ("refvae.__main__",):
            importlib.import_module(name)
from refvae import checkpoint, cli
from refvae.gradcheck import CHECKS
from refvae.plots import curves
print(len(CHECKS), len(curves._PANELS), len(curves._KNOWN_SERIES), len(cli._TRAIN_COMMANDS), len(cli._COMMANDS),
      len(cli._EVALUATORS), len(cli._SAMPLERS), len(cli._MODEL_TERMS), len(checkpoint._MODELS))
import refvae.app
refvae.app.install()
print(len(CHECKS) > 10, len(curves._PANELS), len(cli._TRAIN_COMMANDS), sorted(cli._EVALUATORS), len(cli._MODEL_TERMS) > 0)
"""
    before, after = _fresh_python(code).splitlines()
    assert before.split() == ["0"] * 9, before
    assert after == "True 6 3 ['BernoulliRBM', 'GaussianVAE', 'HelmholtzMachine'] True", after


def test_the_table_names_objects_that_exist():
    from refvae import app

    for entry in app.MODELS:
        for field in ("model_class", "train_command", "evaluate", "sample", "checks", "curves"):
            assert app.resolve(getattr(entry, field)) is not None
        assert app.resolve(entry.model_class).__name__ == entry.kind
        for command in entry.commands:
            assert callable(app.resolve(command))


def test_no_library_function_is_over_60_lines():
    """Every function of refvae/, rbm/ and wakesleep/ (methods and nested functions included) has at most 60 lines
    from the first statement after its docstring to its end."""
    long = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                body = node.body
                if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                        and isinstance(body[0].value.value, str):
                    body = body[1:]
                if body and node.end_lineno - body[0].lineno + 1 > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
                                f"({node.end_lineno - body[0].lineno + 1} lines)")
    assert not long, long


def test_ci_runs_the_readmes_two_commands_test_line_verbatim():
    """README.md starts with the two one-line commands; .ci/run runs the second, the test command, verbatim."""
    readme = (ROOT / "README.md").read_text().splitlines()
    assert readme[2] == "```bash" and readme[5] == "```"
    install_and_run, install_and_test = readme[3], readme[4]
    assert install_and_run.startswith("pip install . && refvae train vae")
    assert install_and_test.startswith('pip install -e ".[test]" && python -m pytest')
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci
