"""Data providers of sweeps and searches: where a worker gets the data set of a run.

A provider is ``None`` (``lowbit_rbp.data.load_dataset(cfg.model.dataset)``: the worker's own data
folder, ``$LOWBIT_RBP_DATA``, every file checked against its checksum by the loader), a callable
``f(cfg)``, or a string naming one: ``"package.module:function"`` or ``"/path/file.py:function"``.
A string travels to other processes and machines; a callable only to threads of this process.
Each process loads a data set once and keeps it for the runs that follow.
"""
from __future__ import annotations

from ..core.config import RunConfig
from ..errors import bad_value

_DATA_CACHE: dict = {}


def load_data(spec, cfg: RunConfig):
    """The data set of ``cfg`` from the provider ``spec`` (cached per process)."""
    key = (spec if isinstance(spec, str) or spec is None else id(spec), cfg.model.dataset)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    if spec is None:
        from ..data import load_dataset
        data = load_dataset(cfg.model.dataset)
    else:
        fn = resolve(spec) if isinstance(spec, str) else spec
        data = fn(cfg)
    _DATA_CACHE[key] = data
    return data


def resolve(spec: str):
    """The function a ``"module:function"`` or ``"/path/file.py:function"`` string names."""
    mod, sep, attr = spec.rpartition(":")
    if not sep or not mod or not attr:
        raise bad_value("data provider", spec, "'package.module:function' or '/path/file.py:function'")
    if mod.endswith(".py"):
        import importlib.util
        s = importlib.util.spec_from_file_location(f"_lowbit_sweep_data_{abs(hash(mod))}", mod)
        module = importlib.util.module_from_spec(s)
        s.loader.exec_module(module)
    else:
        import importlib
        module = importlib.import_module(mod)
    return getattr(module, attr)
