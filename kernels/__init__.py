"""Learning-channel kernels (quantizers, per-example updates, low-bit and sparse products, the
bit-true channel's fixed-point accumulator products, f' lookup table and scale-and-round) and the
forward tanh with its f' product: ``reference`` (NumPy, the definition of every result), ``cpu``
(Numba njit) and ``cuda`` (Numba CUDA, quantizers and products). Nothing here compiles at import
time."""
