"""Learning-channel kernels: ``reference`` (NumPy, the definition of every result), ``cpu``
(Numba njit) and ``cuda`` (Numba CUDA). Nothing here compiles at import time."""
