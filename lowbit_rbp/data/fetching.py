"""Fetch the datasets: from the official sources, a mirror (base URL) or a local folder.

Every file is written to a temporary file next to its destination, verified against its
official checksum and only then renamed into place (atomic), so an interrupted, truncated or
corrupt transfer leaves nothing behind. Network access uses urllib only.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterable

from tqdm.auto import tqdm

from ..errors import DataError
from . import specs
from .loading import (check_name, decode_batch, file_digest, find_mnist_file, locate, mnist_candidates,
                      parse_sha256sums, read_checked, read_mnist_file, unpickle_batch)

_CHUNK = 1 << 20
_TIMEOUT_S = 60
_USER_AGENT = "lowbit-rbp-data-fetch/0.1 (python urllib)"
_DISCARDED = "The transfer was discarded: nothing was saved"


# ----------------------------------------------------------------------------- plumbing


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def _join_url(base: str, fname: str) -> str:
    return base.rstrip("/") + "/" + fname


def _bar(total: int | None, desc: str, progress: bool):
    isatty = getattr(sys.stderr, "isatty", None)
    disable = not progress or not (isatty and isatty())
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=disable, leave=False, file=sys.stderr)


def _pump(src: BinaryIO, dst: BinaryIO, total: int | None, desc: str, progress: bool) -> int:
    n = 0
    with _bar(total, desc, progress) as bar:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            dst.write(chunk)
            n += len(chunk)
            bar.update(len(chunk))
    return n


@contextlib.contextmanager
def _staging(dest_dir: Path, fname: str):
    """A temporary file path in `dest_dir` that is removed on exit (unless renamed away)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{fname}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _install(dest: Path, produce: Callable[[BinaryIO], None], check: Callable[[Path], None]) -> None:
    """Write `dest` atomically: `produce` fills a temporary file, `check` (raises DataError)
    verifies it, then it is renamed to `dest`. On any failure nothing is left behind."""
    with _staging(dest.parent, dest.name) as tmp:
        with open(tmp, "wb") as f:
            produce(f)
        check(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)


def _download(url: str, out: BinaryIO, desc: str, progress: bool) -> None:
    """Stream `url` into `out`; DataError on HTTP/network errors and on a short body."""
    opener = urllib.request.build_opener()  # built per call: honours the current proxy settings
    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        resp = opener.open(req, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as e:
        raise DataError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DataError(f"{url}: cannot connect ({e.reason})") from None
    except (OSError, ValueError, http.client.HTTPException) as e:
        raise DataError(f"{url}: cannot open ({type(e).__name__}: {e})") from None
    with resp:
        length = resp.headers.get("Content-Length")
        try:
            total = int(length) if length is not None else None
        except ValueError:
            total = None
        try:
            n = _pump(resp, out, total, desc, progress)
        except http.client.IncompleteRead as e:
            raise DataError(f"{url}: truncated download: the connection closed after "
                            f"{len(e.partial):,} bytes of a read (expected {total or '?'} bytes in all); "
                            f"nothing was saved, try again") from None
        except (OSError, http.client.HTTPException) as e:
            raise DataError(f"{url}: download interrupted ({type(e).__name__}: {e}); nothing was saved, "
                            f"try again") from None
    if total is not None and n != total:
        raise DataError(f"{url}: truncated download: received {n:,} of {total:,} bytes (Content-Length); "
                        f"the connection closed early. Nothing was saved; try again")


def _from_url(url: str, desc: str, progress: bool) -> Callable[[BinaryIO], None]:
    return lambda out: _download(url, out, desc, progress)


def _from_file(path: Path, desc: str, progress: bool) -> Callable[[BinaryIO], None]:
    def produce(out: BinaryIO) -> None:
        try:
            with open(path, "rb") as src:
                _pump(src, out, path.stat().st_size, desc, progress)
        except OSError as e:
            raise DataError(f"cannot copy {path}: {e.strerror or e}") from None

    return produce


def _first_success(attempts: list[tuple[str, Callable[[], None]]], what: str, hint: str) -> None:
    """Run the attempts in order until one succeeds; else one DataError listing every failure."""
    errors = []
    for where, attempt in attempts:
        try:
            attempt()
            return
        except DataError as e:
            errors.append((where, str(e)))
    if len(errors) == 1:
        raise DataError(f"could not fetch {what}: {errors[0][1]}. {hint}")
    lines = "; ".join(f"[{i}] {msg}" for i, (_, msg) in enumerate(errors, 1))
    raise DataError(f"could not fetch {what} from any of {len(errors)} sources: {lines}. {hint}")


def _source_dirs(source: Path, name: str) -> list[Path]:
    return [source, source / name]


def _resolve_source(source: str | os.PathLike | None, name: str) -> tuple[str, str | Path | None]:
    """('default', None) | ('url', base) | ('dir', Path)."""
    if source is None or str(source) == "":
        return "default", None
    s = os.fspath(source)
    if _is_url(s):
        return "url", s
    p = Path(s).expanduser()
    if p.is_dir():
        return "dir", p.absolute()
    if p.is_file() and name == "cifar10" and p.name.endswith(".tar.gz"):
        return "dir", p.absolute()  # a local copy of the archive itself
    raise DataError(f"fetch {name}: source {s!r} is neither an existing folder nor an http(s):// URL")


def _wanted(name: str, files: Iterable[str] | None, allowed: Iterable[str]) -> list[str]:
    allowed = list(allowed)
    if files is None:
        return allowed
    out = []
    for f in [files] if isinstance(files, str) else files:
        key = f[:-3] if name == "mnist" and f.endswith(".gz") else f
        if key not in allowed:
            raise DataError(f"fetch {name}: unknown file {f!r}; allowed: {', '.join(allowed)}")
        if key not in out:
            out.append(key)
    return out


# ----------------------------------------------------------------------------- MNIST


def _mnist_valid(path: Path, gz: bool, spec) -> bool:
    try:
        read_mnist_file(path, gz, spec)
        return True
    except DataError:
        return False


def _fetch_mnist(dest: Path, kind: str, src, wanted: list[str], progress: bool) -> None:
    hint = ("Download the files by hand and run `lowbit-rbp data fetch mnist --from DIR`, or set "
            f"{specs.ENV_VAR} to a folder holding mnist/")
    for canonical in wanted:
        spec = specs.MNIST_FILES[canonical]
        present = find_mnist_file(dest, canonical)
        if present is not None and _mnist_valid(*present, spec):
            continue  # already there and verified
        attempts = []
        if kind == "dir":
            hits = [h for d in _source_dirs(src, "mnist") if (h := find_mnist_file(d, canonical))]
            if not hits:
                raise DataError(f"could not fetch MNIST file {canonical}: neither {spec.gz_name} nor "
                                f"{canonical} is in {src} (or {src / 'mnist'}). {hint}")
            path, gz = hits[0]
            target = dest / path.name
            attempts.append((str(path), lambda path=path, gz=gz, target=target: _install(
                target, _from_file(path, path.name, progress),
                lambda tmp: read_mnist_file(tmp, gz, spec, label=f"{target} (copied from {path})",
                                            hint=_DISCARDED))))
        else:
            bases = specs.MNIST_MIRRORS if kind == "default" else (src,)
            target = dest / spec.gz_name
            for base in bases:
                url = _join_url(base, spec.gz_name)
                attempts.append((url, lambda url=url: _install(
                    target, _from_url(url, spec.gz_name, progress),
                    lambda tmp: read_mnist_file(tmp, True, spec, label=f"{target} (downloaded from {url})",
                                              hint=_DISCARDED))))
        _first_success(attempts, f"MNIST file {spec.gz_name}", hint)
        # drop other variants of the same file (e.g. a stale raw copy) so the loader finds the good one
        for fname, _ in mnist_candidates(canonical):
            other = dest / fname
            if other != target and other.is_file():
                other.unlink()


# ----------------------------------------------------------------------------- CIFAR-10


def _check_cifar_file(tmp: Path, fname: str, algo: str, expected: str, name: str, label: str) -> None:
    raw = read_checked(tmp, algo, expected, name, label=label, hint=_DISCARDED)
    if fname != specs.CIFAR_META:  # also decode: checksum lists of a local subset are not official
        expect_n = specs.CIFAR10_IMAGES_PER_BATCH if name == "cifar10" else None
        decode_batch(unpickle_batch(raw, label, name), label, name, expect_n)


def _cifar_present(bdir: Path, fname: str, algo: str, expected: str) -> bool:
    p = bdir / fname
    return p.is_file() and file_digest(p, algo) == expected


def extract_cifar_archive(archive: Path, bdir: Path, wanted: list[str], label: str, progress: bool) -> None:
    """Extract the wanted `cifar-10-batches-py/<file>` members of the official archive into `bdir`,
    each verified (official md5) and renamed into place. Members are matched by exact name and must
    be regular files; nothing else in the archive is written."""
    done = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if len(parts) != 2 or parts[0] != specs.CIFAR_BATCH_DIR or parts[1] not in wanted:
                    continue
                if not member.isfile():
                    raise DataError(f"{label}: member {member.name} is not a regular file; refusing to extract")
                fname = parts[1]
                src = tar.extractfile(member)
                target = bdir / fname
                _install(target, lambda out, src=src, fname=fname: _pump(src, out, member.size, fname, progress),
                         lambda tmp, fname=fname, target=target: _check_cifar_file(
                             tmp, fname, "md5", specs.CIFAR10_MD5[fname], "cifar10",
                             f"{target} (extracted from {label})"))
                done.add(fname)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"cannot extract {label}: {type(e).__name__}: {e}") from None
    missing = [f for f in wanted if f not in done]
    if missing:
        raise DataError(f"{label} has no {', '.join(f'{specs.CIFAR_BATCH_DIR}/{f}' for f in missing)}")


def _fetch_cifar10(dest: Path, kind: str, src, wanted: list[str], progress: bool) -> None:
    bdir = dest / specs.CIFAR_BATCH_DIR
    wanted = [f for f in wanted if not _cifar_present(bdir, f, "md5", specs.CIFAR10_MD5[f])]
    if not wanted:
        return
    hint = (f"Download {specs.CIFAR10_URL} by hand and run `lowbit-rbp data fetch cifar10 --from DIR`, or "
            f"set {specs.ENV_VAR} to a folder holding cifar10/{specs.CIFAR_BATCH_DIR}/")
    arch_md5 = specs.CIFAR10_ARCHIVE_MD5

    def check_archive(path: Path, label: str) -> None:
        got = file_digest(path, "md5")
        if got != arch_md5:
            raise DataError(f"{label} is corrupt or truncated: md5 {got} ({path.stat().st_size:,} bytes), "
                            f"expected md5 {arch_md5}")

    if kind == "dir":
        if src.is_file():
            archives = [src]
            batch_dirs = []
        else:
            archives = [d / specs.CIFAR10_ARCHIVE for d in _source_dirs(src, "cifar10")]
            batch_dirs = [d / specs.CIFAR_BATCH_DIR for d in _source_dirs(src, "cifar10")] + [src]
        for d in batch_dirs:  # an extracted copy: copy each file, verify its official md5
            if all((d / f).is_file() for f in wanted):
                for f in wanted:
                    target = bdir / f
                    _first_success([(str(d / f), lambda f=f, target=target: _install(
                        target, _from_file(d / f, f, progress),
                        lambda tmp: _check_cifar_file(tmp, f, "md5", specs.CIFAR10_MD5[f], "cifar10",
                                                      f"{target} (copied from {d / f})")))],
                        f"CIFAR-10 file {f}", hint)
                return
        for a in archives:  # a local copy of the official archive: verify it, then extract
            if a.is_file():
                check_archive(a, str(a))
                extract_cifar_archive(a, bdir, wanted, str(a), progress)
                return
        raise DataError(f"could not fetch CIFAR-10: {src} holds neither {specs.CIFAR10_ARCHIVE} nor "
                        f"{specs.CIFAR_BATCH_DIR}/ with {', '.join(wanted)}. {hint}")

    if kind == "default":
        url = specs.CIFAR10_URL
    else:
        url = src if src.lower().split("?")[0].endswith(".tar.gz") else _join_url(src, specs.CIFAR10_ARCHIVE)

    with _staging(dest, specs.CIFAR10_ARCHIVE) as tmp:  # the archive is not kept
        def attempt() -> None:
            with open(tmp, "wb") as out:
                _download(url, out, specs.CIFAR10_ARCHIVE, progress)
            check_archive(tmp, f"{specs.CIFAR10_ARCHIVE} downloaded from {url}")

        _first_success([(url, attempt)], "CIFAR-10", hint)
        extract_cifar_archive(tmp, bdir, wanted, f"{specs.CIFAR10_ARCHIVE} from {url}", progress)


def _fetch_subset(dest: Path, kind: str, src, wanted: list[str], progress: bool) -> None:
    if kind != "dir":
        raise DataError(
            "cifar10-subset is a local subset of CIFAR-10 (the first 1,017 images of each official batch), "
            "not something that can be downloaded: copy it from a folder with "
            "`lowbit-rbp data fetch cifar10-subset --from DIR` (DIR holds SHA256SUMS and "
            f"{specs.CIFAR_BATCH_DIR}/, or a cifar10-subset/ folder with them), point {specs.ENV_VAR} at such "
            "a folder's parent, or fetch the full set with `lowbit-rbp data fetch cifar10`")
    dirs = [d for d in _source_dirs(src, "cifar10-subset") if (d / specs.SUBSET_SUMS).is_file()]
    if not dirs:
        raise DataError(f"could not fetch cifar10-subset: no {specs.SUBSET_SUMS} in {src} or "
                        f"{src / 'cifar10-subset'} (the subset folder holds {specs.SUBSET_SUMS} and "
                        f"{specs.CIFAR_BATCH_DIR}/)")
    sdir = dirs[0]
    sums = parse_sha256sums(sdir / specs.SUBSET_SUMS)
    bdir = dest / specs.CIFAR_BATCH_DIR
    for f in wanted:
        if _cifar_present(bdir, f, "sha256", sums[f]):
            continue
        source_file = sdir / specs.CIFAR_BATCH_DIR / f
        if not source_file.is_file():
            raise DataError(f"could not fetch cifar10-subset: missing {source_file}")
        target = bdir / f
        _install(target, _from_file(source_file, f, progress),
                 lambda tmp, f=f, target=target, source_file=source_file: _check_cifar_file(
                     tmp, f, "sha256", sums[f], "cifar10-subset", f"{target} (copied from {source_file})"))
    sums_src = sdir / specs.SUBSET_SUMS
    _install(dest / specs.SUBSET_SUMS, _from_file(sums_src, specs.SUBSET_SUMS, False),
             lambda tmp: parse_sha256sums(tmp))


# ----------------------------------------------------------------------------- public


def fetch(name: str, source: str | os.PathLike | None = None, root: str | os.PathLike | None = None,
          progress: bool = True, files: Iterable[str] | None = None) -> Path:
    """Fetch dataset `name` into <root>/<name> (see `locate`) and return that folder.

    source: None = the official sources (MNIST: the ossci S3 mirror, then yann.lecun.com;
    CIFAR-10: the official archive, md5-checked and safely extracted); an http(s) base URL (a
    mirror laid out like the official one); or a local folder to copy from (it may hold the
    files or a <name>/ subfolder; for cifar10 also the archive). cifar10-subset needs a folder.
    files: fetch only these files (MNIST idx names with or without .gz; CIFAR batch names).
    Files already present and valid are kept. Each file is verified before it is renamed into
    place; on any failure no partial file is left and DataError is raised.
    progress: tqdm progress bars on stderr (only when stderr is a terminal)."""
    key = check_name(name)
    kind, src = _resolve_source(source, key)
    dest = locate(key, root)
    if key == "mnist":
        _fetch_mnist(dest, kind, src, _wanted(key, files, specs.MNIST_FILES), progress)
    elif key == "cifar10":
        _fetch_cifar10(dest, kind, src, _wanted(key, files, specs.CIFAR_FILES), progress)
    else:
        _fetch_subset(dest, kind, src, _wanted(key, files, specs.CIFAR_FILES), progress)
    return dest
