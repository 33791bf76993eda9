"""lowbit_rbp.data: loading, verification, error messages, fetch (folder + local HTTP), CLI.

Real-data tests need $LOWBIT_RBP_DATA (CI points it at shared/data) and skip without it.
Nothing here touches the internet: HTTP tests use a server bound to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import shutil
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lowbit_rbp.data import DATASETS, Dataset, data_root, fetch, load_dataset, locate
from lowbit_rbp.data import specs
from lowbit_rbp.data.cli import register
from lowbit_rbp.data.fetching import extract_cifar_archive
from lowbit_rbp.errors import ConfigError, DataError

# SOURCES.md
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_GZ = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
LABELS_GZ = "train-labels-idx1-ubyte.gz"
LABELS_MD5 = "a25bea736e30d166cdddb491f175f624"  # decompressed train-labels-idx1-ubyte
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def shared_root() -> Path:
    env = os.environ.get("LOWBIT_RBP_DATA")
    if not env:
        pytest.skip("LOWBIT_RBP_DATA is not set; point it at the shared data folder "
                    "(e.g. LOWBIT_RBP_DATA=../shared/data, as .ci/run does) to run the real-data tests")
    return Path(env).absolute()


@pytest.fixture(scope="session")
def mnist(shared_root) -> Dataset:
    return load_dataset("mnist", root=shared_root)


@pytest.fixture(scope="session")
def subset(shared_root) -> Dataset:
    return load_dataset("cifar10-subset", root=shared_root)


def mnist_copy(shared_root: Path, dest_root: Path, copy=()) -> Path:
    """dest_root/mnist with symlinks to the shared files, real copies for the names in `copy`."""
    d = dest_root / "mnist"
    d.mkdir(parents=True)
    for f in MNIST_GZ:
        if f in copy:
            shutil.copyfile(shared_root / "mnist" / f, d / f)
        else:
            (d / f).symlink_to(shared_root / "mnist" / f)
    return d


def flip_byte(path: Path, pos: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    pos = len(data) // 2 if pos is None else pos
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


# ----------------------------------------------------------------------------- real data


def test_mnist_real(mnist):
    assert mnist.name == "mnist" and mnist.n_classes == 10 and mnist.input_shape == (1, 28, 28)
    assert mnist.source_note == "MNIST (60,000 train / 10,000 test)"
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert mnist.x_train.dtype == np.uint8 and mnist.x_test.dtype == np.uint8
    assert mnist.y_train.dtype == np.int64 and mnist.y_test.dtype == np.int64
    assert np.bincount(mnist.y_train, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(mnist.y_test, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert mnist.x_train.min() == 0 and mnist.x_train.max() == 255
    assert mnist.x_train.flags.writeable  # usable with torch.from_numpy without warnings
    flat = mnist.flat_float32("test")
    assert flat.shape == (10000, 784) and flat.dtype == np.float32
    assert 0.0 <= flat.min() and flat.max() == 1.0
    np.testing.assert_array_equal(flat[:5], mnist.x_test[:5].reshape(5, -1) / np.float32(255))
    img = mnist.images_float32("train")
    assert img.shape == (60000, 1, 28, 28) and img.dtype == np.float32
    np.testing.assert_array_equal(img[7, 0], mnist.x_train[7] / np.float32(255))
    with pytest.raises(ConfigError, match="split"):
        mnist.flat_float32("val")


def test_mnist_loads_fast(shared_root):
    t0 = time.perf_counter()
    load_dataset("mnist", root=shared_root)
    assert time.perf_counter() - t0 < 10.0  # ~0.5 s normally; generous for a busy 2-core box


def test_env_var_is_the_default_root(shared_root, monkeypatch):
    monkeypatch.setenv("LOWBIT_RBP_DATA", str(shared_root))
    assert locate("mnist") == shared_root / "mnist"
    assert load_dataset("mnist").x_test.shape == (10000, 28, 28)


def test_cifar10_subset(subset):
    assert subset.source_note == "CIFAR-10 subset (5,085 train / 1,017 test)"
    assert subset.x_train.shape == (5085, 3, 32, 32) and subset.x_test.shape == (1017, 3, 32, 32)
    assert subset.x_train.dtype == np.uint8 and subset.y_train.dtype == np.int64
    for y in (subset.y_train, subset.y_test):
        assert y.min() == 0 and y.max() == 9 and len(np.unique(y)) == 10
    assert subset.input_shape == (3, 32, 32) and subset.class_names[0] == "airplane"
    assert subset.flat_float32("train").shape == (5085, 3072)
    assert subset.images_float32("test").shape == (1017, 3, 32, 32)


# ----------------------------------------------------------------------------- other formats


def test_recompressed_gz_still_verifies(shared_root, tmp_path, mnist):
    d = mnist_copy(shared_root, tmp_path, copy=())
    for f, level in (("train-images-idx3-ubyte.gz", 1), (LABELS_GZ, 9)):
        (d / f).unlink()
        content = gzip.decompress((shared_root / "mnist" / f).read_bytes())
        (d / f).write_bytes(gzip.compress(content, compresslevel=level, mtime=0))
        assert (d / f).read_bytes() != (shared_root / "mnist" / f).read_bytes()
    ds = load_dataset("mnist", root=tmp_path)
    np.testing.assert_array_equal(ds.x_train, mnist.x_train)
    np.testing.assert_array_equal(ds.y_train, mnist.y_train)


def test_raw_idx_files(shared_root, tmp_path, mnist):
    d = tmp_path / "mnist"
    d.mkdir()
    for f in MNIST_GZ:
        (d / f[:-3]).write_bytes(gzip.decompress((shared_root / "mnist" / f).read_bytes()))
    ds = load_dataset("mnist", root=tmp_path)
    np.testing.assert_array_equal(ds.x_test, mnist.x_test)
    np.testing.assert_array_equal(ds.y_train, mnist.y_train)
    # a raw file with a flipped byte fails its md5, named with both checksums
    flip_byte(d / "t10k-labels-idx1-ubyte", pos=100)
    with pytest.raises(DataError) as e:
        load_dataset("mnist", root=tmp_path)
    msg = str(e.value)
    assert str(d / "t10k-labels-idx1-ubyte") in msg and "27ae3e4e09519cfbb04c329615203637" in msg
    assert "corrupt" in msg and "lowbit-rbp data fetch mnist" in msg


# ----------------------------------------------------------------------------- errors


def test_corrupt_gz_flipped_byte(shared_root, tmp_path):
    d = mnist_copy(shared_root, tmp_path, copy=(LABELS_GZ,))
    flip_byte(d / LABELS_GZ)
    with pytest.raises(DataError) as e:
        load_dataset("mnist", root=tmp_path)
    msg = str(e.value)
    assert str(d / LABELS_GZ) in msg and LABELS_MD5 in msg and "LOWBIT_RBP_DATA" in msg
    assert "Traceback" not in msg


def test_corrupt_content_recompressed(shared_root, tmp_path):
    """A valid gzip whose content has one byte changed: md5 mismatch with both checksums."""
    d = mnist_copy(shared_root, tmp_path)
    content = bytearray(gzip.decompress((shared_root / "mnist" / LABELS_GZ).read_bytes()))
    content[5000] = (content[5000] + 1) % 10
    (d / LABELS_GZ).unlink()
    (d / LABELS_GZ).write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match="corrupt") as e:
        load_dataset("mnist", root=tmp_path)
    assert LABELS_MD5 in str(e.value) and hashlib.md5(bytes(content)).hexdigest() in str(e.value)
    # verify=False skips checksums but still decodes (labels still in range)
    assert load_dataset("mnist", root=tmp_path, verify=False).y_train[5000 - 8] == content[5000]


def test_truncated_file(shared_root, tmp_path):
    d = mnist_copy(shared_root, tmp_path, copy=(LABELS_GZ,))
    data = (d / LABELS_GZ).read_bytes()
    (d / LABELS_GZ).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated") as e:
        load_dataset("mnist", root=tmp_path, verify=False)  # even without checksums
    assert str(d / LABELS_GZ) in str(e.value) and "60,008 bytes" in str(e.value)


def test_truncated_raw_file(shared_root, tmp_path):
    d = mnist_copy(shared_root, tmp_path)
    (d / LABELS_GZ).unlink()
    raw = gzip.decompress((shared_root / "mnist" / LABELS_GZ).read_bytes())
    (d / LABELS_GZ[:-3]).write_bytes(raw[:-100])
    with pytest.raises(DataError, match="truncated") as e:
        load_dataset("mnist", root=tmp_path)
    assert str(d / LABELS_GZ[:-3]) in str(e.value) and "60,008" in str(e.value)
    with pytest.raises(DataError, match="truncated or padded"):
        load_dataset("mnist", root=tmp_path, verify=False)


def test_missing_file(shared_root, tmp_path):
    d = mnist_copy(shared_root, tmp_path)
    (d / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError) as e:
        load_dataset("mnist", root=tmp_path)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and str(d) in msg
    assert "lowbit-rbp data fetch mnist" in msg and "LOWBIT_RBP_DATA" in msg


def test_missing_dataset_without_real_data(tmp_path):
    with pytest.raises(DataError, match="missing") as e:
        load_dataset("cifar10", root=tmp_path)
    assert "data_batch_1" in str(e.value) and "lowbit-rbp data fetch cifar10" in str(e.value)
    with pytest.raises(DataError, match="--from DIR"):
        load_dataset("cifar10-subset", root=tmp_path)


def test_unknown_name(tmp_path):
    for call in (lambda: load_dataset("mnits", root=tmp_path), lambda: locate("imagenet"),
                 lambda: fetch("cifar100", source=tmp_path, root=tmp_path)):
        with pytest.raises(DataError) as e:
            call()
        assert all(n in str(e.value) for n in DATASETS)
    assert DATASETS == ("mnist", "cifar10", "cifar10-subset")


def test_subset_corrupt_and_missing_sums(shared_root, tmp_path):
    src = shared_root / "cifar10-subset"
    d = tmp_path / "cifar10-subset"
    (d / "cifar-10-batches-py").mkdir(parents=True)
    shutil.copyfile(src / "SHA256SUMS", d / "SHA256SUMS")
    for f in specs.CIFAR_FILES:
        (d / "cifar-10-batches-py" / f).symlink_to(src / "cifar-10-batches-py" / f)
    bad = d / "cifar-10-batches-py" / "test_batch"
    bad.unlink()
    shutil.copyfile(src / "cifar-10-batches-py" / "test_batch", bad)
    flip_byte(bad)
    with pytest.raises(DataError) as e:
        load_dataset("cifar10-subset", root=tmp_path)
    assert str(bad) in str(e.value) and "300763be7099a81bb814ee41d99076981639e3a77aecdd64530a55b8308aebc0" in str(e.value)
    (d / "SHA256SUMS").unlink()
    with pytest.raises(DataError, match="SHA256SUMS"):
        load_dataset("cifar10-subset", root=tmp_path)


def test_root_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("LOWBIT_RBP_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert locate("mnist", root=tmp_path / "arg") == tmp_path / "arg" / "mnist"
    assert locate("cifar10") == tmp_path / "env" / "cifar10"
    monkeypatch.delenv("LOWBIT_RBP_DATA")
    assert data_root()[0] == tmp_path / "xdg" / "lowbit-rbp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert locate("cifar10-subset") == tmp_path / "home" / ".cache" / "lowbit-rbp" / "cifar10-subset"


# ----------------------------------------------------------------------------- fetch: folder


def test_fetch_from_folder(shared_root, tmp_path, mnist):
    root = tmp_path / "root"
    dest = fetch("mnist", source=shared_root, root=root, progress=False)  # finds shared_root/mnist/
    assert dest == root / "mnist" and files_in(dest) == sorted(MNIST_GZ)
    np.testing.assert_array_equal(load_dataset("mnist", root=root).y_test, mnist.y_test)
    mtime = (dest / MNIST_GZ[0]).stat().st_mtime_ns
    fetch("mnist", source=shared_root / "mnist", root=root, progress=False)  # valid files are kept
    assert (dest / MNIST_GZ[0]).stat().st_mtime_ns == mtime

    fetch("cifar10-subset", source=shared_root, root=root, progress=False)
    assert load_dataset("cifar10-subset", root=root).x_train.shape == (5085, 3, 32, 32)
    with pytest.raises(DataError, match="local subset"):
        fetch("cifar10-subset", root=root)  # no source: explains, never downloads
    with pytest.raises(DataError, match="neither an existing folder"):
        fetch("mnist", source=tmp_path / "nowhere", root=root)


def test_fetch_from_folder_rejects_corrupt_source(shared_root, tmp_path):
    src = mnist_copy(shared_root, tmp_path / "src", copy=(LABELS_GZ,))
    flip_byte(src / LABELS_GZ)
    root = tmp_path / "root"
    with pytest.raises(DataError) as e:
        fetch("mnist", source=src, root=root, progress=False, files=[LABELS_GZ])
    assert LABELS_GZ in str(e.value) and LABELS_MD5 in str(e.value)
    assert files_in(root / "mnist") == []


# ----------------------------------------------------------------------------- fetch: HTTP


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves its folder; /short/<file> announces the full Content-Length but sends half."""

    def do_GET(self):
        if self.path.startswith("/short/"):
            body = (Path(self.directory) / self.path[len("/short/"):]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format, *args):  # keep test output clean
        pass


@pytest.fixture
def http_server(tmp_path, monkeypatch, request):
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    request.addfinalizer(stop)
    return served, f"http://127.0.0.1:{server.server_address[1]}/"


def test_fetch_http(shared_root, tmp_path, http_server, mnist):
    served, url = http_server
    for f in MNIST_GZ:
        shutil.copyfile(shared_root / "mnist" / f, served / f)
    root = tmp_path / "root"
    assert fetch("mnist", source=url, root=root, progress=False) == root / "mnist"
    assert files_in(root / "mnist") == sorted(MNIST_GZ)
    ds = load_dataset("mnist", root=root)
    np.testing.assert_array_equal(ds.y_train, mnist.y_train)


@pytest.mark.parametrize("fault", ["short_body", "truncated_file", "flipped_byte", "wrong_content", "not_found"])
def test_fetch_http_bad_file_leaves_nothing(shared_root, tmp_path, http_server, fault):
    served, url = http_server
    good = (shared_root / "mnist" / LABELS_GZ).read_bytes()
    if fault == "short_body":
        (served / LABELS_GZ).write_bytes(good)
        url += "short/"
    elif fault == "truncated_file":
        (served / LABELS_GZ).write_bytes(good[: len(good) // 2])
    elif fault == "flipped_byte":
        (served / LABELS_GZ).write_bytes(good)
        flip_byte(served / LABELS_GZ)
    elif fault == "wrong_content":
        content = bytearray(gzip.decompress(good))
        content[-1] = (content[-1] + 1) % 10
        (served / LABELS_GZ).write_bytes(gzip.compress(bytes(content)))
    root = tmp_path / "root"
    with pytest.raises(DataError) as e:
        fetch("mnist", source=url, root=root, progress=False, files=["train-labels-idx1-ubyte"])
    msg = str(e.value)
    assert LABELS_GZ in msg
    expect = {"short_body": "truncated download", "truncated_file": "truncated",
              "flipped_byte": LABELS_MD5, "wrong_content": LABELS_MD5, "not_found": "HTTP 404"}[fault]
    assert expect in msg
    if fault == "wrong_content":
        assert hashlib.md5(bytes(content)).hexdigest() in msg  # the actual checksum too
    assert files_in(root / "mnist") == []  # no partial or temporary file left behind


# ----------------------------------------------------------------------------- CIFAR-10 archive


def _fake_cifar10(subset: Dataset, folder: Path, n: int = 20) -> tuple[Path, dict[str, str]]:
    """A small archive laid out like cifar-10-python.tar.gz, and the md5 of each member."""
    members, md5 = {}, {}
    for i, f in enumerate(specs.CIFAR_TRAIN_BATCHES + (specs.CIFAR_TEST_BATCH,)):
        x, y = (subset.x_test, subset.y_test) if f == "test_batch" else (subset.x_train, subset.y_train)
        sl = slice(i * n, (i + 1) * n)
        d = {b"batch_label": f.encode(), b"labels": y[sl].tolist(), b"data": x[sl].reshape(n, -1)}
        members[f] = pickle.dumps(d, protocol=2)
    members["batches.meta"] = pickle.dumps({b"label_names": [c.encode() for c in subset.class_names]},
                                           protocol=2)
    archive = folder / specs.CIFAR10_ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        readme = tarfile.TarInfo("cifar-10-batches-py/readme.html")
        readme.size = 2
        tar.addfile(readme, io.BytesIO(b"hi"))
        for f, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{f}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            md5[f] = hashlib.md5(data).hexdigest()
    return archive, md5


@pytest.fixture
def fake_cifar10(subset, tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    archive, md5 = _fake_cifar10(subset, src)
    monkeypatch.setattr(specs, "CIFAR10_MD5", md5)
    monkeypatch.setattr(specs, "CIFAR10_ARCHIVE_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    monkeypatch.setattr(specs, "CIFAR10_IMAGES_PER_BATCH", 20)
    return archive


def test_fetch_cifar10_archive_folder_and_http(fake_cifar10, subset, tmp_path, http_server):
    root = tmp_path / "root"
    fetch("cifar10", source=fake_cifar10.parent, root=root, progress=False)
    ds = load_dataset("cifar10", root=root)
    assert ds.source_note == "CIFAR-10 (100 train / 20 test)" and ds.x_train.shape == (100, 3, 32, 32)
    np.testing.assert_array_equal(ds.x_test, subset.x_test[100:120])
    assert files_in(root / "cifar10") == sorted(["cifar-10-batches-py", *specs.CIFAR_FILES])

    served, url = http_server
    shutil.copyfile(fake_cifar10, served / specs.CIFAR10_ARCHIVE)
    root2 = tmp_path / "root2"
    fetch("cifar10", source=url, root=root2, progress=False)
    np.testing.assert_array_equal(load_dataset("cifar10", root=root2).y_train, ds.y_train)
    assert not list((root2 / "cifar10").glob("*.tar.gz*"))  # the archive is not kept

    flip_byte(served / specs.CIFAR10_ARCHIVE)
    root3 = tmp_path / "root3"
    with pytest.raises(DataError, match=specs.CIFAR10_ARCHIVE_MD5):
        fetch("cifar10", source=url, root=root3, progress=False)
    assert files_in(root3 / "cifar10") == []


def test_cifar10_extract_refuses_links(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
        escape = tarfile.TarInfo("cifar-10-batches-py/../../escape")
        escape.size = 1
        tar.addfile(escape, io.BytesIO(b"x"))
    with pytest.raises(DataError, match="not a regular file"):
        extract_cifar_archive(archive, tmp_path / "out", ["data_batch_1"], str(archive), False)
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escape").exists()


# ----------------------------------------------------------------------------- CLI


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="lowbit-rbp")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_verify_and_info(shared_root, capsys):
    code, out, err = run_cli(["data", "verify", "mnist", "--root", str(shared_root)], capsys)
    assert code == 0 and "OK" in out and err == ""
    code, out, _ = run_cli(["data", "info", "mnist", "--root", str(shared_root)], capsys)
    assert code == 0 and "0=5923" in out and "MNIST (60,000 train / 10,000 test)" in out
    assert str(shared_root / "mnist") in out and "9,912,422 bytes" in out


def test_cli_errors_exit_2(shared_root, tmp_path, capsys):
    d = mnist_copy(shared_root, tmp_path, copy=(LABELS_GZ,))
    flip_byte(d / LABELS_GZ)
    code, out, err = run_cli(["data", "verify", "mnist", "--root", str(tmp_path)], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and str(d / LABELS_GZ) in err and "Traceback" not in err
    code, _, err = run_cli(["data", "info", "cifar-100", "--root", str(tmp_path)], capsys)
    assert code == 2 and "allowed: mnist, cifar10, cifar10-subset" in err
    code, _, err = run_cli(["data", "fetch", "cifar10-subset", "--root", str(tmp_path), "--no-progress"], capsys)
    assert code == 2 and "local subset" in err


def test_cli_fetch_from_folder(shared_root, tmp_path, capsys):
    code, out, err = run_cli(["data", "fetch", "cifar10-subset", "--from", str(shared_root / "cifar10-subset"),
                              "--root", str(tmp_path)], capsys)
    assert code == 0 and "5,085 train" in out, err
