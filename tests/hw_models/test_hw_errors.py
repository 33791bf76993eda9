"""Bad input: clear errors naming the bad value."""
import pytest

from hw_models import Conv2d, CostModelError, Dense, Floorplan, load_energy_table, mlp
from hw_models.energy import TABLES_DIR
from hw_models.layers import check_network
from lowbit_rbp.core.config import ModelConfig, RunConfig, load_config
from lowbit_rbp.cost import cost_report
from lowbit_rbp.errors import ConfigError


def test_impossible_layer_sizes():
    with pytest.raises(CostModelError, match=r"n_in.*got 0"):
        Dense(0, 10)
    with pytest.raises(CostModelError, match=r"n_out.*got -3"):
        Dense(10, -3)
    with pytest.raises(CostModelError, match=r"Conv2d H.*got 0"):
        Conv2d(3, 64, 5, 0, 32)
    with pytest.raises(CostModelError, match=r"N_2.*got 0"):
        mlp([784, 100, 0, 10])
    with pytest.raises(CostModelError, match="leaves no output"):
        Conv2d(3, 8, 7, 4, 4, padding="valid")
    with pytest.raises(CostModelError, match=r"input size 50 does not match the output size 100"):
        check_network([Dense(784, 100), Dense(50, 10)])


def test_impossible_sizes_in_config():
    with pytest.raises(ConfigError, match=r"model.hidden.*0"):
        cost_report(load_config(None, ["model.hidden=[100,0]"]))
    # a RunConfig built directly (not validated) is validated by the cost model
    cfg = RunConfig(model=ModelConfig(hidden=(100, -5)))
    with pytest.raises(ConfigError, match=r"model.hidden.*-5"):
        cost_report(cfg)


def test_unknown_table_lists_known_tables():
    with pytest.raises(CostModelError) as exc:
        load_energy_table("horowitz7nm")
    msg = str(exc.value)
    assert "'horowitz7nm'" in msg and "horowitz45nm" in msg
    with pytest.raises(CostModelError, match="does not exist"):
        load_energy_table("/nonexistent/table.toml")


def _table_text():
    return (TABLES_DIR / "horowitz45nm.toml").read_text()


def test_negative_energy_in_user_table(tmp_path):
    p = tmp_path / "neg.toml"
    p.write_text(_table_text().replace("32 = 3.7", "32 = -3.7"))
    with pytest.raises(CostModelError, match=r"fp_mult\.values\.32 = -3\.7 is negative"):
        load_energy_table(str(p))
    p.write_text(_table_text().replace("pj_per_bit_mm = 0.12", "pj_per_bit_mm = -0.12"))
    with pytest.raises(CostModelError, match=r"wire\.pj_per_bit_mm = -0\.12"):
        cost_report(load_config(), energy_table=str(p))


def test_missing_fields_in_user_table(tmp_path):
    p = tmp_path / "missing.toml"
    p.write_text(_table_text().replace("exponent = 0.47\n", ""))
    with pytest.raises(CostModelError, match=r"missing field 'sram\.exponent'"):
        load_energy_table(str(p))
    text = _table_text()
    start = text.index("[lfsr]")
    end = text.index("[node_scaling]")
    p.write_text(text[:start] + text[end:])
    with pytest.raises(CostModelError, match=r"missing section \[lfsr\]"):
        load_energy_table(str(p))
    p.write_text(text.replace("values = { 16 = 0.4, 32 = 0.9 }", "values = { 16 = 0.4 }"))
    with pytest.raises(CostModelError, match=r"fp_add\.values needs a '32'"):
        load_energy_table(str(p))
    p.write_text(text.replace("value = 4.6", 'value = "cheap"'))
    with pytest.raises(CostModelError, match=r"activation_fn\.value = 'cheap' is not a finite number"):
        load_energy_table(str(p))
    p.write_text("this is = not toml [")
    with pytest.raises(CostModelError, match="not valid TOML"):
        load_energy_table(str(p))


def test_other_bad_options():
    cfg = load_config(None, ["channel.algorithm=rbp"])
    with pytest.raises(CostModelError, match=r"feedback_matrices\[0\]: shape \(3, 3\).*expected \(100, 100\)"):
        import numpy as np
        cost_report(cfg, feedback_matrices={0: np.ones((3, 3))})
    with pytest.raises(CostModelError, match=r"feedback_matrices key.*7"):
        cost_report(cfg, feedback_matrices={7: [[1.0]]})
    with pytest.raises(CostModelError, match=r"pitch_mm.*got 0"):
        Floorplan(pitch_mm=0)
    with pytest.raises(CostModelError, match=r"layout.*'diagonal'"):
        Floorplan(layout="diagonal")
    with pytest.raises(CostModelError, match=r"feedback_storage.*'rom'"):
        cost_report(cfg, feedback_storage="rom")
    with pytest.raises(CostModelError, match=r"technology node.*3"):
        cost_report(cfg, node_nm=3)
    with pytest.raises(ConfigError, match=r"lowrank r.*200"):
        cost_report(load_config(None, ["channel.algorithm=srbp", "channel.feedback=lowrank:r=200"]))
    with pytest.raises(ConfigError, match="sbp is defined for MLP models only"):
        cost_report(load_config(None, ["channel.algorithm=sbp", "model.dataset=cifar10", "model.conv=[8]"]))
