"""Locate, verify and decode the datasets from local files (never touches the network).

Every check failure is a `DataError` with one message that names the file, says what was
expected (checksum, size) and what to do about it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, bad_value
from . import specs

# ----------------------------------------------------------------------------- the dataset


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset. Images are uint8 (MNIST (N, 28, 28), CIFAR-10 (N, 3, 32, 32)),
    labels int64 in [0, n_classes)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    source_note: str  # e.g. "MNIST (60,000 train / 10,000 test)"
    class_names: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()  # the files it was read from

    def _x(self, split: str) -> np.ndarray:
        if split == "train":
            return self.x_train
        if split == "test":
            return self.x_test
        raise bad_value("split", split, "'train', 'test'")

    def labels(self, split: str) -> np.ndarray:
        self._x(split)
        return self.y_train if split == "train" else self.y_test

    def flat_float32(self, split: str) -> np.ndarray:
        """(N, D) float32 in [0, 1]: x / 255, each image flattened in (C, H, W) order."""
        x = self._x(split)
        out = x.reshape(len(x), -1).astype(np.float32)
        np.divide(out, np.float32(255.0), out=out)
        return out

    def images_float32(self, split: str) -> np.ndarray:
        """(N, C, H, W) float32 in [0, 1]: x / 255."""
        x = self._x(split)
        out = x.reshape((len(x),) + tuple(self.input_shape)).astype(np.float32)
        np.divide(out, np.float32(255.0), out=out)
        return out

    def class_counts(self, split: str) -> np.ndarray:
        return np.bincount(self.labels(split), minlength=self.n_classes)


# ----------------------------------------------------------------------------- where


def check_name(name: object) -> str:
    """The canonical dataset name, or DataError naming the allowed ones."""
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in specs.DATASETS:
        raise DataError(f"unknown dataset {name!r}; allowed: {', '.join(specs.DATASETS)}")
    return key


def data_root(root: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The data root folder and how it was chosen: `root`, else $LOWBIT_RBP_DATA, else the
    cache folder ($XDG_CACHE_HOME or ~/.cache)/lowbit-rbp."""
    if root is not None and str(root) != "":
        return Path(root).expanduser().absolute(), "given root"
    env = os.environ.get(specs.ENV_VAR, "")
    if env:
        return Path(env).expanduser().absolute(), f"from ${specs.ENV_VAR}"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg).expanduser() if xdg and os.path.isabs(os.path.expanduser(xdg)) else Path.home() / ".cache"
    return (base / specs.CACHE_DIRNAME).absolute(), f"default cache folder; set ${specs.ENV_VAR} or --root to change"


def locate(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will hold, after `fetch`) dataset `name`: <root>/<name>.
    Does not check that it exists."""
    return data_root(root)[0] / check_name(name)


def _where(name: str, root) -> str:
    path, how = data_root(root)
    return f"data root {path}, {how}"


def fetch_hint(name: str) -> str:
    if name == "cifar10-subset":
        return (f"copy it with `lowbit-rbp data fetch cifar10-subset --from DIR` (a local subset: it "
                f"cannot be downloaded), or set {specs.ENV_VAR} to a folder holding cifar10-subset/")
    return (f"run `lowbit-rbp data fetch {name}` (add `--from DIR_OR_URL` to copy from a local folder "
            f"or mirror), or set {specs.ENV_VAR} to a folder holding {name}/")


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _corrupt_hint(name: str) -> str:
    return f"Delete it and {fetch_hint(name)}."


# ----------------------------------------------------------------------------- checksums


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_bytes(path: Path, label: str, name: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"missing file {label}. {_cap(fetch_hint(name))}.") from None
    except OSError as e:
        raise DataError(f"cannot read {label}: {e.strerror or e}") from None


# ----------------------------------------------------------------------------- MNIST


def mnist_candidates(canonical: str) -> list[tuple[str, bool]]:
    """File names accepted for one MNIST file, in order of preference: (name, is_gzip)."""
    dotted = canonical.replace("-idx", ".idx")  # the name inside the official gzip headers
    return [(canonical + ".gz", True), (canonical, False), (dotted + ".gz", True), (dotted, False)]


def find_mnist_file(folder: Path, canonical: str) -> tuple[Path, bool] | None:
    for fname, gz in mnist_candidates(canonical):
        p = folder / fname
        if p.is_file():
            return p, gz
    return None


def read_mnist_file(path: Path, gz: bool, spec: specs.MnistFile, verify: bool = True,
                    label: str | None = None, name: str = "mnist", hint: str | None = None) -> bytes:
    """The uncompressed idx content of `path` (.gz or raw). With `verify`, its size and md5 must
    be the official ones (for a .gz: of the decompressed content, so a re-compressed file passes)."""
    label = label or str(path)
    hint = hint or _corrupt_hint(name)
    raw = _read_bytes(path, label, name)
    expected = (f"expected {'a gzip file whose decompressed content is' if gz else 'the raw idx file,'} "
                f"{spec.size:,} bytes with md5 {spec.md5}"
                + (f" (the official .gz is {spec.gz_size:,} bytes, md5 {spec.gz_md5})" if gz else ""))
    if gz:
        problem = None
        try:
            content = gzip.decompress(raw)
        except EOFError:
            problem = "its gzip stream ends early (truncated file)"
        except (OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            problem = f"it is not a valid gzip file ({e})"
        if problem is not None:
            raise DataError(f"MNIST file {label} is truncated or corrupt: {problem}; {expected}; this file "
                            f"is {len(raw):,} bytes with md5 {md5_hex(raw)}. {hint}")
    else:
        content = raw
    if verify:
        what = "its decompressed content" if gz else "it"
        if len(content) != spec.size:
            kind = "truncated" if len(content) < spec.size else "too long"
            raise DataError(f"MNIST file {label} is {kind}: {what} is {len(content):,} bytes "
                            f"(md5 {md5_hex(content)}); {expected}. {hint}")
        got = md5_hex(content)
        if got != spec.md5:
            raise DataError(f"MNIST file {label} is corrupt: md5 of {'its decompressed content' if gz else 'the file'} is {got}; {expected}. {hint}")
    return content


def parse_idx(content: bytes, ndim: int, label: str) -> np.ndarray:
    """Decode an unsigned-byte idx file (magic 2049 for 1-D labels, 2051 for 3-D images)."""
    magic_expected = 0x0800 | ndim
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"MNIST file {label} is truncated: {len(content)} bytes, too short for an idx header")
    (magic,) = struct.unpack_from(">I", content, 0)
    if magic != magic_expected:
        raise DataError(f"MNIST file {label} is not an idx{ndim}-ubyte file: magic number {magic}, "
                        f"expected {magic_expected}")
    dims = struct.unpack_from(f">{ndim}I", content, 4)
    count = int(np.prod(dims, dtype=np.int64))
    if len(content) != header + count:
        raise DataError(f"MNIST file {label}: its header gives shape {dims} = {header + count:,} bytes "
                        f"but it holds {len(content):,} bytes (truncated or padded)")
    return np.frombuffer(content, dtype=np.uint8, count=count, offset=header).reshape(dims)


def _load_mnist(folder: Path, verify: bool, root) -> tuple:
    found = {c: find_mnist_file(folder, c) for c in specs.MNIST_FILES}
    missing = [c for c, hit in found.items() if hit is None]
    if missing:
        names = ", ".join(f"{c}.gz (or uncompressed {c})" for c in missing)
        raise DataError(f"MNIST: missing file(s) in {folder}: {names} ({_where('mnist', root)}). "
                        f"{_cap(fetch_hint('mnist'))}.")
    arrays = {}
    for c, (path, gz) in found.items():
        spec = specs.MNIST_FILES[c]
        content = read_mnist_file(path, gz, spec, verify=verify)
        arrays[c] = parse_idx(content, spec.ndim, str(path))
    out = []
    for split, (img_name, lab_name) in specs.MNIST_SPLITS.items():
        x, y = arrays[img_name], arrays[lab_name]
        img_path, lab_path = found[img_name][0], found[lab_name][0]
        if x.shape[1:] != (28, 28):
            raise DataError(f"MNIST file {img_path}: images are {x.shape[1:]}, expected (28, 28)")
        if len(x) != len(y):
            raise DataError(f"MNIST {split} split: {img_path} holds {len(x):,} images but {lab_path} "
                            f"holds {len(y):,} labels")
        if len(y) and int(y.max()) >= specs.N_CLASSES:
            raise DataError(f"MNIST file {lab_path}: label {int(y.max())} out of range 0-{specs.N_CLASSES - 1}")
        out += [x.copy(), y.astype(np.int64)]  # copy: frombuffer views of bytes are read-only
    files = tuple(p for p, _ in found.values())
    return (*out, specs.MNIST_CLASS_NAMES, files)


# ----------------------------------------------------------------------------- CIFAR-10


_SUMS_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


def parse_sha256sums(path: Path, name: str = "cifar10-subset") -> dict[str, str]:
    """{file name (relative to cifar-10-batches-py/): sha256} from a `sha256sum` output file."""
    if not path.is_file():
        raise DataError(f"cannot verify {name}: its checksum list {path} is missing (it lists the sha256 "
                        f"of each file in {specs.CIFAR_BATCH_DIR}/). {_cap(fetch_hint(name))}.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read checksum list {path}: {e}") from None
    sums = {}
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SUMS_LINE.match(line)
        if not m:
            raise DataError(f"checksum list {path}, line {i}: expected '<64 hex digits>  <file name>', "
                            f"got {line[:80]!r}. {_corrupt_hint(name)}")
        fname = m.group(2).strip()
        if fname.startswith(specs.CIFAR_BATCH_DIR + "/"):
            fname = fname[len(specs.CIFAR_BATCH_DIR) + 1:]
        sums[fname] = m.group(1).lower()
    absent = [f for f in specs.CIFAR_FILES if f not in sums]
    if absent:
        raise DataError(f"checksum list {path} has no entry for {', '.join(absent)}. {_corrupt_hint(name)}")
    return sums


def read_checked(path: Path, algo: str, expected: str | None, name: str, label: str | None = None,
                 hint: str | None = None) -> bytes:
    """The bytes of `path`; with `expected`, its `algo` digest must match."""
    label = label or str(path)
    raw = _read_bytes(path, label, name)
    if expected is not None:
        got = hashlib.new(algo, raw, usedforsecurity=False).hexdigest()
        if got != expected:
            raise DataError(f"{specs.TITLES[name]} file {label} is corrupt or truncated: {algo} {got} "
                            f"({len(raw):,} bytes), expected {algo} {expected}. {hint or _corrupt_hint(name)}")
    return raw


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR python batches only: refuses every global but numpy arrays and bytes."""

    _ALLOWED = {
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if name == "_reconstruct":  # numpy.core vs numpy._core: whichever this numpy has
            return np.zeros(0).__reduce__()[0]
        if name == "scalar":
            return np.float64(0).__reduce__()[0]
        return super().find_class(module, name)


def unpickle_batch(raw: bytes, label: str, name: str) -> dict:
    try:
        obj = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, struct.error, MemoryError) as e:
        raise DataError(f"{specs.TITLES[name]} file {label} is not a valid CIFAR python batch "
                        f"({type(e).__name__}: {e}). {_corrupt_hint(name)}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{specs.TITLES[name]} file {label}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def decode_batch(d: dict, label: str, name: str, expect_n: int | None) -> tuple[np.ndarray, np.ndarray]:
    title = specs.TITLES[name]
    if "data" not in d or "labels" not in d:
        raise DataError(f"{title} file {label}: batch has keys {sorted(d)}, expected 'data' and 'labels'")
    x = np.asarray(d["data"])
    y = np.asarray(d["labels"])
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        raise DataError(f"{title} file {label}: data is {x.dtype} {x.shape}, expected uint8 (n, 3072)")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{title} file {label}: {len(x):,} images but labels of shape {y.shape}")
    if expect_n is not None and len(x) != expect_n:
        raise DataError(f"{title} file {label}: {len(x):,} images, expected {expect_n:,}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= specs.N_CLASSES):
        raise DataError(f"{title} file {label}: labels span {int(y.min())}..{int(y.max())}, "
                        f"expected 0-{specs.N_CLASSES - 1}")
    return x.reshape(len(x), 3, 32, 32), y.astype(np.int64)


def cifar_expected(name: str, folder: Path, verify: bool) -> tuple[str, dict[str, str] | None]:
    """(hash algorithm, {file: digest}) that the files of `name` in `folder` must match."""
    if not verify:
        return "md5", None
    if name == "cifar10":
        return "md5", dict(specs.CIFAR10_MD5)
    return "sha256", parse_sha256sums(folder / specs.SUBSET_SUMS, name)


def _load_cifar(name: str, folder: Path, verify: bool, root) -> tuple:
    bdir = folder / specs.CIFAR_BATCH_DIR
    paths = {f: bdir / f for f in specs.CIFAR_FILES}
    missing = [f for f, p in paths.items() if not p.is_file()]
    if missing:
        raise DataError(f"{specs.TITLES[name]}: missing file(s) in {bdir}: {', '.join(missing)} "
                        f"({_where(name, root)}). {_cap(fetch_hint(name))}.")
    algo, sums = cifar_expected(name, folder, verify)
    expect_n = specs.CIFAR10_IMAGES_PER_BATCH if name == "cifar10" else None
    xs, ys = [], []
    test = None
    for f in specs.CIFAR_TRAIN_BATCHES + (specs.CIFAR_TEST_BATCH,):
        raw = read_checked(paths[f], algo, sums and sums[f], name)
        x, y = decode_batch(unpickle_batch(raw, str(paths[f]), name), str(paths[f]), name, expect_n)
        if f == specs.CIFAR_TEST_BATCH:
            test = (x, y)
        else:
            xs.append(x)
            ys.append(y)
    meta = unpickle_batch(read_checked(paths[specs.CIFAR_META], algo, sums and sums[specs.CIFAR_META], name),
                          str(paths[specs.CIFAR_META]), name)
    names = meta.get("label_names")
    if not isinstance(names, list) or len(names) != specs.N_CLASSES:
        raise DataError(f"{specs.TITLES[name]} file {paths[specs.CIFAR_META]}: expected "
                        f"{specs.N_CLASSES} label_names, got {names!r:.200}")
    class_names = tuple(n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names)
    return (np.concatenate(xs), np.concatenate(ys), test[0], test[1], class_names,
            tuple(paths.values()) + ((folder / specs.SUBSET_SUMS,) if name == "cifar10-subset" else ()))


# ----------------------------------------------------------------------------- load


def load_dataset(name: str, root: str | os.PathLike | None = None, verify: bool = True) -> Dataset:
    """Load dataset `name` (one of DATASETS) from <root>/<name> (see `data_root`).

    With `verify` (default) every file must match its official checksum (cifar10-subset: the
    SHA256SUMS file in its folder). Always checks formats, shapes and label ranges.
    Raises DataError (missing, truncated or corrupt file; unknown name)."""
    key = check_name(name)
    folder = locate(key, root)
    if key == "mnist":
        x_tr, y_tr, x_te, y_te, class_names, files = _load_mnist(folder, verify, root)
    else:
        x_tr, y_tr, x_te, y_te, class_names, files = _load_cifar(key, folder, verify, root)
    note = f"{specs.TITLES[key]} ({len(x_tr):,} train / {len(x_te):,} test)"
    return Dataset(name=key, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
                   n_classes=specs.N_CLASSES, input_shape=specs.INPUT_SHAPES[key], source_note=note,
                   class_names=class_names, files=files)
