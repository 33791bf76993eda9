"""The `data` sub-command: `data fetch|verify|info NAME`.

The main CLI does `register(subparsers)` and then `return args.func(args)`; each command returns
an exit code (0 ok, 2 data error, printed as `error: <message>` on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import DataError
from .fetching import fetch
from .loading import data_root, load_dataset, locate
from .specs import DATASETS


def _guard(fn):
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except DataError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


def _root_line(name: str, root) -> str:
    path, how = data_root(root)
    return f"{locate(name, root)} (data root {path}, {how})"


@_guard
def cmd_fetch(args: argparse.Namespace) -> int:
    dest = fetch(args.name, source=args.source, root=args.root, progress=not args.no_progress)
    ds = load_dataset(args.name, root=args.root, verify=True)
    print(f"{ds.name}: fetched and verified {len(ds.files)} files in {dest}: {ds.source_note}")
    return 0


@_guard
def cmd_verify(args: argparse.Namespace) -> int:
    ds = load_dataset(args.name, root=args.root, verify=True)
    what = ("md5 of the decompressed idx content" if ds.name == "mnist" else
            "official md5" if ds.name == "cifar10" else "sha256 from SHA256SUMS")
    print(f"{ds.name}: OK, {len(ds.files)} files in {locate(ds.name, args.root)} match their checksums "
          f"({what}); {ds.source_note}")
    return 0


@_guard
def cmd_info(args: argparse.Namespace) -> int:
    ds = load_dataset(args.name, root=args.root, verify=not args.no_verify)
    out = [f"{ds.name}: {ds.source_note}",
           f"location: {_root_line(ds.name, args.root)}",
           f"verified: {'yes' if not args.no_verify else 'no (--no-verify)'}",
           "files:"]
    width = max(len(str(p)) for p in ds.files)
    out += [f"  {str(p):<{width}}  {p.stat().st_size:>12,} bytes" for p in ds.files]
    out.append(f"images: train {ds.x_train.shape} / test {ds.x_test.shape} {ds.x_train.dtype}, "
               f"input shape (C, H, W) {ds.input_shape}, {ds.n_classes} classes")
    for split in ("train", "test"):
        counts = ds.class_counts(split)
        names = ds.class_names or tuple(str(i) for i in range(ds.n_classes))
        out.append(f"{split} class counts: " + " ".join(f"{n}={c}" for n, c in zip(names, counts)))
    print("\n".join(out))
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the `data` sub-command (fetch / verify / info) to an argparse subparsers object."""
    names = ", ".join(DATASETS)
    p = subparsers.add_parser("data", help="fetch, verify and describe the datasets",
                              description=f"Datasets: {names}. Location: --root, else $LOWBIT_RBP_DATA, "
                                          "else ~/.cache/lowbit-rbp (honours $XDG_CACHE_HOME).")
    sub = p.add_subparsers(dest="data_command", metavar="{fetch,verify,info}")
    sub.required = True

    f = sub.add_parser("fetch", help="download (or copy) a dataset and verify it")
    f.add_argument("name", help=f"dataset: {names}")
    f.add_argument("--from", dest="source", metavar="DIR_OR_URL", default=None,
                   help="copy from a local folder or download from this base URL instead of the official source")
    f.add_argument("--root", default=None, help="data root folder (default: $LOWBIT_RBP_DATA or the cache)")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_fetch)

    v = sub.add_parser("verify", help="check every file of a dataset against its checksum")
    v.add_argument("name", help=f"dataset: {names}")
    v.add_argument("--root", default=None, help="data root folder (default: $LOWBIT_RBP_DATA or the cache)")
    v.set_defaults(func=cmd_verify)

    i = sub.add_parser("info", help="location, file sizes, class counts, source note")
    i.add_argument("name", help=f"dataset: {names}")
    i.add_argument("--root", default=None, help="data root folder (default: $LOWBIT_RBP_DATA or the cache)")
    i.add_argument("--no-verify", action="store_true", help="skip the checksums")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry: `python -m lowbit_rbp.data.cli data verify mnist`."""
    parser = argparse.ArgumentParser(prog="lowbit-rbp")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
