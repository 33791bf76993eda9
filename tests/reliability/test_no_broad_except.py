"""No broad ``except`` in the package but where a run's failure is recorded (and handlers that re-raise)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lowbit_rbp", "hw_models", "kernels")
BROAD = {"Exception", "BaseException"}
# (file, function): where a run's failure is caught to be recorded ("failed") in the store: a local
# worker's run (run_one), a Dask worker's run reported back to the client (stream_run), and the
# client settling a task that was itself lost (a KilledWorker, or whatever the worker raised).
ALLOWED = {("lowbit_rbp/results/sweep.py", "run_one"), ("lowbit_rbp/results/remote.py", "stream_run"),
           ("lowbit_rbp/results/remote.py", "_settle")}


def _names(node) -> set[str]:
    if node is None:
        return {"<bare>"}
    if isinstance(node, ast.Tuple):
        return set().union(*(_names(e) for e in node.elts))
    return {node.id} if isinstance(node, ast.Name) else {ast.unparse(node)}


def _reraises(handler: ast.ExceptHandler) -> bool:
    last = handler.body[-1]
    return isinstance(last, ast.Raise) and last.exc is None


def broad_handlers(source: str) -> list[tuple[str, int]]:
    """(enclosing function, line) of every broad handler that does not end by re-raising."""
    found = []

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.ExceptHandler) and _names(child.type) & (BROAD | {"<bare>"}) \
                    and not _reraises(child):
                found.append((func, child.lineno))
            visit(child, name)

    visit(ast.parse(source), "<module>")
    return found


def test_the_check_finds_what_it_looks_for():
    src = ("def f():\n    try:\n        pass\n    except (ValueError, Exception):\n        pass\n"
           "def g():\n    try:\n        pass\n    except BaseException:\n        raise\n"
           "try:\n    pass\nexcept:\n    x = 1\n")
    assert broad_handlers(src) == [("f", 4), ("<module>", 13)]


@pytest.mark.fault("broad_except")
def test_no_broad_except_outside_run_one():
    offenders = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            offenders += [f"{rel}:{line} in {func}" for func, line in broad_handlers(path.read_text())
                          if (rel, func) not in ALLOWED]
    assert offenders == []


@pytest.mark.fault("broad_except")
def test_run_one_lets_ctrl_c_and_exit_through(tmp_path, monkeypatch):
    """The recorded failure is an ``Exception``: KeyboardInterrupt and SystemExit leave ``run_one``."""
    import sys
    sys.path.insert(0, str(ROOT / "tests" / "sweep"))
    import helper
    from lowbit_rbp.core.runtime import Runtime
    from lowbit_rbp.learning.trainer import Trainer
    from lowbit_rbp.results.store import Store
    from lowbit_rbp.results.sweep import run_one
    (run,) = helper.sweep(grid={}, seeds=[0]).runs
    for exc in (KeyboardInterrupt, SystemExit, ValueError):
        def boom(self, progress=None, exc=exc):
            raise exc("stop")
        monkeypatch.setattr(Trainer, "train_epoch", boom)
        db = tmp_path / f"{exc.__name__}.db"
        if exc is ValueError:
            assert run_one(str(db), run.config.to_dict(), data=helper.DATA_SPEC, runtime=Runtime(threads=1))[1] \
                == "failed"
            with Store(db) as st:
                assert st.runs()[0].error.startswith("ValueError: stop")
        else:
            with pytest.raises(exc):
                run_one(str(db), run.config.to_dict(), data=helper.DATA_SPEC, runtime=Runtime(threads=1))
