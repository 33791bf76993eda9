"""One-off store migration (2026-11-23): LogQuant's default underflow changed from clip to stochastic.

Runs stored before the change spelled the clip format without naming it (``log:alpha=2,bits=3``).
This rewrites every such spec to name ``underflow=clip`` (what those runs actually used),
canonicalizes every format field, and re-keys each run and its epochs by the new config hash.
Runs tagged in ``--drop-rows`` are deleted instead (rows to be rerun under the new default).

    python tools/migrate_log_underflow.py reports/sweeps/quant.db
    python tools/migrate_log_underflow.py reports/sweeps/mnist.db --drop-sweep mnist_qerror
"""
from __future__ import annotations

import argparse
import json
import sqlite3

from lowbit_rbp.core.config import FORMAT_FIELDS, from_dict


def old_spec_to_explicit(spec: str) -> str:
    if spec.startswith("log:") and "underflow=" not in spec:
        return spec + ",underflow=clip"
    return spec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--drop-sweep", action="append", default=[])
    a = ap.parse_args()
    con = sqlite3.connect(a.store)
    with con:
        rows = con.execute("SELECT config_hash, config_json, tags_json FROM runs").fetchall()
        for old_hash, cfg_json, tags_json in rows:
            if json.loads(tags_json).get("sweep") in a.drop_sweep:
                con.execute("DELETE FROM epochs WHERE config_hash=?", (old_hash,))
                con.execute("DELETE FROM runs WHERE config_hash=?", (old_hash,))
                continue
            d = json.loads(cfg_json)
            for name in FORMAT_FIELDS:
                d["formats"][name] = old_spec_to_explicit(d["formats"][name])
            d["model"]["hidden"] = list(d["model"]["hidden"])
            cfg = from_dict(d)
            new_hash = cfg.config_hash()
            con.execute("UPDATE runs SET config_hash=?, config_json=?, label=? WHERE config_hash=?",
                        (new_hash, json.dumps(cfg.to_dict(), sort_keys=True), cfg.label(), old_hash))
            con.execute("UPDATE epochs SET config_hash=? WHERE config_hash=?", (new_hash, old_hash))
    print(a.store, "migrated:", con.execute("SELECT count(*) FROM runs").fetchone()[0], "runs")


if __name__ == "__main__":
    main()
