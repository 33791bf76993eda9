"""How a run is executed, as opposed to what it computes (``lowbit_rbp.core.config``).

The runtime is given on the command line (``--threads``, ``--backend``, ``--workers``) and
applied once per process (``apply``): the command line applies it before it trains, a sweep's
worker process when it starts. It is never part of a run's config or its hash.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import ConfigError, bad_value

BACKENDS = ("auto", "numpy", "numba", "cuda")


@dataclass(frozen=True)
class Runtime:
    threads: int = 0        # torch and Numba threads per process (0: the libraries' default)
    backend: str = "auto"   # learning-channel kernels: auto (Numba on CPU tensors), numpy, numba, cuda
    workers: int = 1        # worker processes of a sweep
    # Learning diagnostics (lowbit_rbp.learning.diagnostics) on this many minibatches per epoch, 0: off.
    # They never change a result, so they are how a run is observed, not part of what it computes.
    diagnostics: int = 0

    def __post_init__(self):
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise bad_value("threads", self.threads, "an integer >= 0 (0 = library default)")
        if self.backend not in BACKENDS:
            raise bad_value("backend", self.backend, ", ".join(BACKENDS))
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise bad_value("workers", self.workers, "an integer >= 1")
        if isinstance(self.diagnostics, bool) or not isinstance(self.diagnostics, int) or self.diagnostics < 0:
            raise bad_value("diagnostics", self.diagnostics, "an integer >= 0 (minibatches sampled per epoch; 0 = off)")

    @staticmethod
    def add_flags(parser, workers: bool = False) -> None:
        """The command-line flags of a runtime (``from_args`` reads them back)."""
        parser.add_argument("--threads", type=int, default=0, help="torch/Numba threads per process (0: the "
                            "library default" + ("; with --workers: cores / workers" if workers else "") + ")")
        parser.add_argument("--backend", default="auto", help="learning-channel kernels: " + ", ".join(BACKENDS))
        if workers:
            parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
        parser.add_argument("--diagnostics", type=int, default=0, metavar="N",
                            help="learning diagnostics (alignment angles per layer, signal RMS, quantizer "
                            "statistics, weight norms) on N sampled minibatches per epoch; 0: off (default)")

    @classmethod
    def from_args(cls, args) -> "Runtime":
        return cls(threads=args.threads, backend=args.backend, workers=getattr(args, "workers", 1),
                   diagnostics=getattr(args, "diagnostics", 0))

    def apply(self) -> "Runtime":
        """Set this process's thread counts and check the backend can run here (once, at start)."""
        import torch
        if self.threads:
            torch.set_num_threads(self.threads)
        match_numba_threads()
        check_backend(self.backend)
        return self

    def per_worker(self, cores: int) -> "Runtime":
        """The runtime of one of ``workers`` worker processes: its share of the cores unless
        ``threads`` says otherwise, so workers x threads stays within the machine."""
        return replace(self, threads=self.threads or max(1, cores // self.workers), workers=1)


def match_numba_threads() -> None:
    """Give the Numba kernels (activations, quantizers) the thread count torch has, and keep
    torch's. Parallel workers each run 1 thread, and a Numba pool sized to all cores in every
    worker oversubscribes the machine. Starting Numba's OpenMP pool also resets the process's
    OpenMP thread count (torch's) to all cores: two 1-thread sweep workers then ran 50x slower
    (measured: 85-97 s per MNIST epoch instead of 1.7 s), so torch's count is set back."""
    import numba
    import torch
    threads = torch.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    torch.set_num_threads(threads)


def check_backend(backend: str) -> None:
    """A clear error now, instead of a Numba traceback mid-run, when ``cuda`` cannot run here."""
    if backend != "cuda":
        return
    from numba import cuda
    if not cuda.is_available():
        raise ConfigError("backend 'cuda': no CUDA GPU is available on this machine (numba.cuda.is_available() "
                          "is False); allowed here: auto, numpy, numba")
