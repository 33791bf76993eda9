"""Learning diagnostics: alignment angles against a NumPy computation, BP's zero angle, RBP with the
forward weights as feedback, quantizer statistics by hand, and training that does not change when
they are on (bit-identical epochs and weights)."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.core.formats import parse_format
from lowbit_rbp.core.runtime import Runtime
from lowbit_rbp.errors import ConfigError
from lowbit_rbp.learning.diagnostics import (LayerDiagnostics, angle_degrees, quantization_stats,
                                             sampled_steps)
from lowbit_rbp.learning.trainer import Trainer
from lowbit_rbp.results.runs import read_diagnostics, run_training
from lowbit_rbp.results.store import Store
from tinydata import TinyData, TinyImages

BASE = ["model.hidden=[10,8,6]", "train.epochs=3", "train.batch_size=10"]


def cfg_of(*extra):
    return apply_overrides(RunConfig(), [*BASE, *extra])


def first_minibatch(tr: Trainer, probe: bool = True):
    """Diagnose the trainer's first minibatch by hand, as ``train_epoch`` does, without updating."""
    net, ch, diag = tr.net, tr.channel, tr.diagnostics
    x, t = tr.x_train[:tr.batch], tr.targets_train[:tr.batch]
    acts = net.forward(x, net.new_activations(tr.batch))
    ch.probe = diag if probe else None
    ch.signals(net, acts, t)
    ch.probe = None
    fused = [ch.plain_update(k) for k in range(net.n_layers)]
    diag.observe(net, ch, acts, t, fused)
    for k in range(net.n_layers):
        if not fused[k]:
            diag.observe_update(k, ch.weight_gradient(k, net, acts, torch.empty_like(net.W[k])))
    return {d.layer: d.values for d in diag.end_epoch(1)}, acts


# --- the angle itself ---------------------------------------------------------------------------
def test_angle_of_known_pairs():
    a = torch.tensor([1.0, 0.0, 0.0])
    assert angle_degrees(a, a) == 0.0
    assert angle_degrees(a, torch.tensor([0.0, 2.0, 0.0])) == pytest.approx(90.0, abs=1e-12)
    assert angle_degrees(a, -3 * a) == pytest.approx(180.0, abs=1e-12)
    assert angle_degrees(a, torch.tensor([1.0, 1.0, 0.0])) == pytest.approx(45.0, abs=1e-12)
    # near 0 the half-angle formula keeps precision that arccos of the cosine loses
    b = torch.tensor([1.0, 1e-6, 0.0], dtype=torch.float64)
    assert angle_degrees(a, b) == pytest.approx(math.degrees(1e-6), rel=1e-6)
    assert math.isnan(angle_degrees(a, torch.zeros(3)))


def test_sampled_steps_are_evenly_spaced_and_drawn_from_no_stream():
    assert sampled_steps(600, 4) == {75, 225, 375, 525}
    assert sampled_steps(3, 5) == {0, 1, 2}
    assert sampled_steps(10, 1) == {5}


# --- BP: zero; RBP with B = W: zero; RBP and SRBP: a NumPy computation ---------------------------
def test_bp_angles_are_zero_over_training(tiny_data):
    tr = Trainer(cfg_of("channel.algorithm=bp"), tiny_data, Runtime(diagnostics=3))
    for rec in tr.run():
        for row in tr.diagnostics.last:
            assert abs(row.values["update_angle"]) <= 1e-5, (rec.epoch, row)
            if row.layer < 3:
                assert abs(row.values["feedback_angle"]) <= 1e-5
            assert row.values["signal_rms"] == row.values["bp_signal_rms"]
            if row.layer == 2:
                assert row.values["error_mean_share"] < 1e-5          # a float softmax error sums to zero


def test_rbp_with_the_forward_weights_as_feedback_has_zero_angle(tiny_data):
    tr = Trainer(cfg_of("channel.algorithm=rbp"), tiny_data, Runtime(diagnostics=1))
    for k in tr.channel.hidden_layers():
        tr.channel.B[k] = tr.net.W[k + 1].clone()
    rows, _ = first_minibatch(tr)
    for k in range(4):
        assert abs(rows[k]["update_angle"]) <= 1e-5
    for k in range(3):
        assert abs(rows[k]["feedback_angle"]) <= 1e-5


def _numpy_angles(W, B, x, t, skipped):
    """Update and feedback angles of RBP (B[k] stands where W[k+1] is) or SRBP (B[k]: output to
    layer k) against BP, from scratch in float64 NumPy (np.tanh, softmax, arccos of the cosine)."""
    O = [x]
    for k, w in enumerate(W):
        s = O[-1] @ w.T
        O.append(np.tanh(s) if k < len(W) - 1 else np.exp(s - s.max(1, keepdims=True)))
    O[-1] = O[-1] / O[-1].sum(1, keepdims=True)
    L = len(W)

    def deltas(matrix_of, sender_of):
        d = {L - 1: t - O[-1]}
        for k in reversed(range(L - 1)):
            d[k] = (d[sender_of(k)] @ matrix_of(k)) * (1 - O[k + 1] ** 2)
        return d

    def ang(a, b):
        a, b = a.ravel(), b.ravel()
        return np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))

    bp = deltas(lambda k: W[k + 1], lambda k: k + 1)
    ch = deltas(lambda k: B[k], (lambda k: L - 1) if skipped else (lambda k: k + 1))
    update = [ang(ch[k].T @ O[k], bp[k].T @ O[k]) for k in range(L)]

    def product(k):
        p = W[L - 1]
        for j in reversed(range(k + 1, L - 1)):
            p = p @ W[j]
        return p
    feedback = [ang(B[k], product(k) if skipped else W[k + 1]) for k in range(L - 1)]
    return update, feedback


@pytest.mark.parametrize("algorithm", ["rbp", "srbp"])
def test_angles_match_a_numpy_computation(tiny_data, algorithm):
    tr = Trainer(cfg_of(f"channel.algorithm={algorithm}"), tiny_data, Runtime(diagnostics=1))
    rows, _ = first_minibatch(tr)
    W = [w.double().numpy() for w in tr.net.W]
    B = [tr.channel.B[k].double().numpy() for k in range(len(W) - 1)]
    x = tr.x_train[:tr.batch].double().numpy()
    t = tr.targets_train[:tr.batch].double().numpy()
    update, feedback = _numpy_angles(W, B, x, t, skipped=algorithm == "srbp")
    assert 1.0 < min(update[:-1])                     # a real case: the hidden updates are not aligned
    for k in range(len(W)):
        assert rows[k]["update_angle"] == pytest.approx(update[k], abs=1e-3)
    for k in range(len(W) - 1):
        assert rows[k]["feedback_angle"] == pytest.approx(feedback[k], abs=1e-3)
    assert rows[len(W) - 1]["update_angle"] == pytest.approx(0.0, abs=1e-5)   # float top layer: BP's


# --- quantizer statistics, by hand ----------------------------------------------------------------
def test_log_quantizer_stats_by_hand():
    fmt = parse_format("log:alpha=2,bits=3,underflow=flush")     # levels 0.5, 1, 2; underflow below 0.5/sqrt2
    x = np.array([0, 0.1, -0.3, 0.4, 0.9, 2.5, -3, 1.2], np.float32)
    q = fmt.quantize(x)
    assert q.tolist() == [0, 0, 0, 0.5, 1, 2, -2, 1]
    s = quantization_stats(torch.from_numpy(x), torch.from_numpy(q), fmt)
    assert s == {"zero": 3 / 8, "smallest": 1 / 8, "clipped": 2 / 8, "underflow": 2 / 8}


def test_fixed_point_stats_by_hand():
    fmt = parse_format("fixed:w=4,f=2")                          # steps of 0.25, -2 .. 1.75
    x = np.array([0, 0.1, 0.2, 2.0, -2.5, 0.25], np.float32)
    q = fmt.quantize(x)
    assert q.tolist() == [0, 0, 0.25, 1.75, -2, 0.25]
    s = quantization_stats(torch.from_numpy(x), torch.from_numpy(q), fmt)
    assert s == {"zero": 2 / 6, "smallest": 2 / 6, "clipped": 2 / 6, "underflow": 1 / 6}


def test_one_bit_error_is_all_at_alpha_and_its_mean_is_not_zero(tiny_data):
    """At 1 bit every output error is +-alpha: one +alpha and n_classes-1 times -alpha per example."""
    tr = Trainer(cfg_of("channel.algorithm=rbp", "formats.error='log:alpha=2,bits=1'",
                        "formats.signal='log:alpha=2,bits=1'"), tiny_data, Runtime(diagnostics=1))
    rows, _ = first_minibatch(tr)
    top = rows[3]
    assert top["error_zero"] == 0.0 and top["error_smallest"] == 1.0
    assert top["signal_mean"] == pytest.approx(2 * (1 - 3) / 4)          # 4 classes
    assert top["signal_rms"] == pytest.approx(2.0)
    assert rows[0]["signal_smallest"] == 1.0 and "signal_zero" in rows[0]
    # the top hidden layer's signal e B: its part from the error's mean, by hand
    e = tr.channel.R[3].double()
    B = tr.channel.B[2].double()
    want = float((e.mean(1, keepdim=True) * B.sum(0)).norm() / (e @ B).norm())
    assert rows[2]["error_mean_share"] == pytest.approx(want, rel=1e-12)
    assert 0.1 < want < 1.0 and "error_mean_share" not in rows[1]          # RBP: only the top hidden layer


# --- training does not change -------------------------------------------------------------------
QUANTIZED = ["formats.error='log:alpha=2,bits=3'", "formats.signal='log:alpha=2,bits=3'", "channel.dropout=0.2"]


@pytest.mark.parametrize("extra", [
    ["channel.algorithm=bp"],
    ["channel.algorithm=rbp", *QUANTIZED],
    ["channel.algorithm=srbp", "formats.update='log:alpha=0.5,bits=3'", "train.momentum=0.5"],
    ["channel.algorithm=asrbp", "channel.update=sign"],
    ["channel.algorithm=srbp", "channel.per_weight=true", "channel.feedback='sparse:n=2'"],
    ["channel.algorithm=sbp", "formats.weights='fixed:w=12,f=9,round=stochastic'", "formats.weight_shadow=true"],
], ids=["bp", "rbp-quantized-dropout", "srbp-qupdate-momentum", "asrbp-sign", "srbp-per-weight", "sbp-shadow"])
def test_diagnostics_leave_training_bit_identical(tiny_data, extra):
    cfg = cfg_of(*extra)
    runs = {}
    for n in (0, 4):
        tr = Trainer(cfg, tiny_data, Runtime(diagnostics=n))
        recs = [replace(r, seconds=0.0) for r in tr.run()]
        runs[n] = (recs, tr.net.W + tr.net.b, tr.channel.state())
        if n:
            assert tr.diagnostics.last and all(math.isfinite(v) for d in tr.diagnostics.last
                                               for k, v in d.values.items() if k == "update_angle")
    assert runs[0][0] == runs[4][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[4][1]))
    assert runs[0][2]["counters"] == runs[4][2]["counters"]


def test_per_weight_and_conv_report_what_they_can():
    """Per-weight feedback has no matrix to compare; a conv net's layers get update angles."""
    tr = Trainer(cfg_of("channel.algorithm=srbp", "channel.per_weight=true"), TinyData(), Runtime(diagnostics=1))
    rows, _ = first_minibatch(tr, probe=True)
    assert "feedback_angle" not in rows[0] and math.isfinite(rows[0]["update_angle"])
    conv = apply_overrides(RunConfig(), ["model.dataset=cifar10-subset", "model.conv=[4,5]", "model.hidden=[7]",
                                         "train.batch_size=8", "train.epochs=1", "channel.algorithm=rbp"])
    tr = Trainer(conv, TinyImages(), Runtime(diagnostics=2))
    list(tr.run())
    rows = {d.layer: d.values for d in tr.diagnostics.last}
    assert set(rows) == {0, 1, 2, 3}
    assert all(math.isfinite(rows[k]["update_angle"]) for k in rows)
    assert all(math.isfinite(rows[k]["feedback_angle"]) for k in (0, 1, 2))


# --- where they are recorded --------------------------------------------------------------------
def test_run_file_holds_diagnostics_and_resume_keeps_them(tiny_data, tmp_path, monkeypatch):
    cfg = cfg_of("channel.algorithm=srbp", "train.epochs=3")
    full = tmp_path / "full.jsonl"
    run_training(cfg, full, tiny_data, runtime=Runtime(diagnostics=2), progress=False)
    rows = read_diagnostics(full)
    assert [(d.epoch, d.layer) for d in rows] == [(e, k) for e in (1, 2, 3) for k in range(4)]
    real = Trainer.train_epoch
    calls = {"n": 0}

    def dying(self, progress=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, progress)

    monkeypatch.setattr(Trainer, "train_epoch", dying)
    part = tmp_path / "part.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, part, tiny_data, runtime=Runtime(diagnostics=2), progress=False)
    monkeypatch.setattr(Trainer, "train_epoch", real)
    resumed = run_training(cfg, part, tiny_data, runtime=Runtime(diagnostics=2), progress=False)
    assert len(resumed.epochs) == 3
    assert read_diagnostics(part) == rows
    types = [json.loads(x)["type"] for x in part.read_text().splitlines()]
    assert types == ["header"] + ["epoch", "diagnostics", "diagnostics", "diagnostics", "diagnostics"] * 3


def test_store_table_is_created_when_needed_and_old_stores_read(tiny_data, tmp_path):
    from lowbit_rbp.results.sweep import run_one
    path = tmp_path / "s.db"
    cfg = cfg_of("channel.algorithm=rbp", "train.epochs=2")
    with Store(path) as st:
        assert not st.has_diagnostics() and st.diagnostics() == {}
    run_one(str(path), cfg.to_dict(), {"row": "x"}, data=lambda c: tiny_data, runtime=Runtime(diagnostics=2))
    ro = Store.read_only(path)
    try:
        got = ro.diagnostics()[cfg.config_hash()]
        assert [(d.epoch, d.layer) for d in got] == [(e, k) for e in (1, 2) for k in range(4)]
        assert ro.run(cfg.config_hash()).status == "finished"
    finally:
        ro.close()
    # a run restarted from scratch without diagnostics leaves none of its old epochs behind
    with Store(path) as st:
        st.conn.execute("UPDATE runs SET status='failed' WHERE config_hash=?", (cfg.config_hash(),))
    run_one(str(path), cfg.to_dict(), {"row": "x"}, data=lambda c: tiny_data, runtime=Runtime(diagnostics=1))
    with Store(path) as st:
        again = st.diagnostics(cfg.config_hash())[cfg.config_hash()]
    assert len(again) == 8 and again != got      # rewritten from one sampled minibatch per epoch


def test_layer_diagnostics_round_trip_and_bad_runtime():
    d = LayerDiagnostics(3, 1, {"update_angle": 12.5})
    assert LayerDiagnostics.from_dict(json.loads(json.dumps(d.to_dict()))) == d
    with pytest.raises(ConfigError, match="diagnostics"):
        Runtime(diagnostics=-1)
