"""A two-layer toy for hand-computed latency and area: Dense(4, 3) -> Dense(3, 2), 8-bit integer
operations, a template with round numbers. Shared by the latency, area and budget tests."""
from hw_models.architecture import load_architecture
from hw_models.floorplan import WireGroup
from hw_models.layers import Dense
from hw_models.records import Action, MemoryRecord

LAYERS = (Dense(4, 3), Dense(3, 2))
LINKS = [(0, 1)]        # the channel into weight layer 0 comes from layer 1's signal (BP = SRBP for L = 2)
BATCH = 2

# Round numbers: 100 MHz, 2 PEs per tile, 1 KiB banks of 32 bits, 1 um2 per adder bit, 1 um2 per multiplier
# bit^2, 0.5 um2 per SRAM bit, 1 nW leakage per SRAM bit, 0.5 nW/um2 logic leakage, 1 um wire pitch on 1 layer,
# DRAM 3.2 Gbit/s = 32 bits per cycle.
TOY_ARCH = {
    "clock.frequency": "100 MHz", "pe.per_layer": 2, "pe.ops_per_cycle": 1,
    "area.node_nm": 45, "area.int_add_32b": "32 um2", "area.int_mult_32x32": "1024 um2", "area.register_bit": "2 um2",
    "sram.bank_size": "1 KiB", "sram.bank_width_bits": 32, "sram.ports": 1, "sram.area_per_bit": "0.5 um2/bit",
    "sram.leakage_per_bit": "1 nW/bit", "sram.node_nm": 45, "registers.accumulators_per_pe": 4,
    "lfsr.state_bits": 16, "lfsr.taps": 2, "lfsr.bits_per_cycle": 8,
    "leakage.logic_per_area": "0.5 nW/um2", "leakage.node_nm": 45, "wires.pitch": "1 um", "wires.layers": 1,
    "dram.bandwidth": "3.2 Gbit/s", "dram.energy_per_bit": "10 pJ/bit",
}


def toy_arch(**more):
    return load_architecture("default45nm", {**TOY_ARCH, **{k.replace("__", "."): v for k, v in more.items()}})


def mult(phase, layer, n, what="mac"):
    return Action(phase, layer, what, "mult", "int", 8, 8, n)


def add(phase, layer, n, bits=16, what="acc"):
    return Action(phase, layer, what, "add", "int", bits, 0, n)


def sram(phase, layer, what, op, bits, cap_bytes):
    return Action(phase, layer, what, op, "sram", 1, 0, bits, "bit", cap_bytes)


def toy_actions():
    """One example's actions (per-minibatch work / batch, as counts.py charges it)."""
    return [
        # tile 1 forward: 12 MACs, 3 activation compares; 15 weights x 8 bits read from a 15-byte array
        mult("forward", 1, 12), add("forward", 1, 12), Action("forward", 1, "activation", "compare", "int", 8, 0, 3),
        sram("forward", 1, "weights", "sram_read", 120, 15),
        # tile 2 forward: 6 MACs; 8 weights x 8 bits from an 8-byte array
        mult("forward", 2, 6), add("forward", 2, 6), sram("forward", 2, "weights", "sram_read", 64, 8),
        # tile 2 output error: 2 subtractions; 2 x 8 bits written
        add("error_projection", 2, 2, bits=8), sram("error_projection", 2, "signals", "sram_write", 16, 2),
        # tile 1 channel: 6 feedback products, 3 adds; 6 x 8-bit feedback entries read
        mult("error_projection", 1, 6), add("error_projection", 1, 3),
        sram("error_projection", 1, "feedback_matrix", "sram_read", 48, 6),
        # weight gradients: products, accumulations, and the accumulator read-modify-written (16-bit accumulators)
        mult("weight_gradient", 1, 12), add("weight_gradient", 1, 15),
        sram("weight_gradient", 1, "gradient_accumulator", "sram_read", 240, 30),
        sram("weight_gradient", 1, "gradient_accumulator", "sram_write", 240, 30),
        mult("weight_gradient", 2, 6), add("weight_gradient", 2, 8),
        sram("weight_gradient", 2, "gradient_accumulator", "sram_read", 128, 16),
        sram("weight_gradient", 2, "gradient_accumulator", "sram_write", 128, 16),
        # weight updates, once per minibatch of 2: charged / 2 per example
        add("weight_update", 1, 15 / 2, bits=8), sram("weight_update", 1, "weights", "sram_read", 120 / 2, 15),
        add("weight_update", 2, 8 / 2, bits=8), sram("weight_update", 2, "weights", "sram_write", 64 / 2, 8),
    ]


def toy_memory():
    return [MemoryRecord(1, "weights", "dense", 120), MemoryRecord(2, "weights", "dense", 64),
            MemoryRecord(1, "gradient_accumulator", "dense", 240), MemoryRecord(2, "gradient_accumulator", "dense", 128),
            MemoryRecord(1, "feedback", "dense", 48)]


def toy_wires():
    # the 12 forward synapses of layer 1 as 1 mm point-to-point links from tile 0 (8 bits each)
    return [WireGroup("forward", 0, 1, 12, 12, 1.0, 12, 8)]
