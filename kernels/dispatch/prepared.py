"""Kernel arguments prepared once and reused: a format's packed parameters, loop variant and
level table (``_prep``), RNG keys per seed (``_seed_key``), counters as uint64 (``_u64``), and
checked operands per object identity (``_validated``: index lists, signs, f' tables)."""
from __future__ import annotations

import functools

import numpy as np

from .. import reference
from .backends import _cpu

_MOD64 = 1 << 64


@functools.lru_cache(maxsize=256)
def _prepared(fmt):
    """``(P, mode, table)`` of a format (hashable, immutable): packed once, then reused."""
    cpu = _cpu()
    P = cpu.format_params(fmt)
    mode, table = cpu.kernel_mode(fmt, P)
    return P, mode, table


def _by_identity(cache: dict, compute, fmt):
    """``compute(fmt)`` (an lru_cache'd function), looked up by object identity first (the entry
    keeps ``fmt`` alive): no hashing of the format per call."""
    hit = cache.get(id(fmt))
    if hit is not None and hit[0] is fmt:
        return hit[1]
    try:
        value = compute(fmt)
    except TypeError:                              # an unhashable format-like object
        return compute.__wrapped__(fmt)
    if len(cache) >= 256:
        cache.clear()
    cache[id(fmt)] = (fmt, value)
    return value


_BY_ID: dict = {}                                  # id(fmt) -> (fmt, prepared)


def _prep(fmt):
    """``_prepared(fmt)``: the format's packed parameters, loop variant and level table."""
    return _by_identity(_BY_ID, _prepared, fmt)


def _params(fmt):
    return _prep(fmt)[0]


_SEED_KEYS: dict = {}


def _seed_key(seed):
    """``splitmix64(seed)`` as np.uint64, computed once per seed."""
    try:
        key = _SEED_KEYS.get(seed)
    except TypeError:                              # unhashable (e.g. a 0-d array)
        return _cpu().seed_key(int(seed) % _MOD64)
    if key is None:
        key = _cpu().seed_key(int(seed) % _MOD64)
        if len(_SEED_KEYS) >= 256:
            _SEED_KEYS.clear()
        _SEED_KEYS[seed] = key
    return key


def _u64(counter) -> np.uint64:
    if type(counter) is int and 0 <= counter < _MOD64:
        return np.uint64(counter)
    return np.uint64(int(counter) % _MOD64)


def _keys(seed, counter):
    return _seed_key(seed), _u64(counter)


_VALIDATED: dict = {}


def _validated(a, b, extra, make):
    """``make()``, computed once per identity of the objects ``a`` and ``b`` (and hashable ``extra``).

    For index lists, signs and tables, which the channel builds once and passes every minibatch;
    an entry keeps its objects alive, so an id cannot be reused while it is cached. Arrays inside
    them must not be changed in place after their first use (build new ones instead)."""
    key = (id(a), id(b), extra)
    hit = _VALIDATED.get(key)
    if hit is not None and hit[0] is a and hit[1] is b:
        return hit[2]
    value = make()
    if len(_VALIDATED) >= 256:
        _VALIDATED.clear()
    _VALIDATED[key] = (a, b, value)
    return value


def _acc_params(acc, what: str):
    """The packed parameters of a fixed-point accumulator (checked: FixedPoint, frac <= word <= 32)."""
    P = _params(acc)
    if P[0] != 2.0 or P[7] > P[11] or P[11] > 4294967296.0:
        reference.require_accumulator(acc, what)
    return P
