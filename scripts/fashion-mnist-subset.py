#!/usr/bin/python3
"""Writes the IDX files of an MNIST-style dataset restricted to some classes, the images in their original order, so
that "classes 0-4" and "the first N images of each class" select the same images from the subset as from the full
files: {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz, gzip -9. The default study's source domain (Fashion-MNIST
classes 0-4) is half the data, 16.1 MB instead of 30.9 MB, and 14.3 MB with --test-per-class 200 (the first 200 test
images of each class, all that the k-NN of configs/dino-fashion-mnist*.json queries): small enough to travel to a
lent GPU machine beside the portable bundle (scripts/dino-gpu.sh).

The default study's images (the first 1,000 training and 200 test images of each class, all it reads) take 5.2 MB
with --classes 0-9 --train-per-class 1000 --test-per-class 200: its results from them equal those from the full
files, since it takes the first images of each class in file order.

Usage: scripts/fashion-mnist-subset.py OUT [--src DIR] [--classes 0-4] [--train-per-class N] [--test-per-class N]
(any python3, standard library only)
"""
import argparse
import gzip
import os
import sys


def read_idx(path):
    """(header bytes, shape, values) of a gzipped IDX file of unsigned bytes."""
    with gzip.open(path) as f:
        data = f.read()
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or not 1 <= data[3] <= 4:
        sys.exit(f"{path}: expected an IDX file of unsigned bytes (magic 00 00 08 0N), got {data[:4].hex(' ')}")
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * d:8 + 4 * d], "big") for d in range(ndim)]
    values = data[4 + 4 * ndim:]
    count = 1
    for n in shape:
        count *= n
    if len(values) != count:
        sys.exit(f"{path}: expected {count} values for shape {shape}, got {len(values)}")
    return shape, values


def write_idx(path, shape, values):
    """Atomically, gzip -9 with no name or time in the header, so that the same input gives the same bytes."""
    header = bytes([0, 0, 8, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)
    with open(path + ".part", "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as f:
        f.write(header + values)
    os.replace(path + ".part", path)


def class_range(text):
    try:
        lo, _, hi = text.partition("-")
        classes = set(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected classes as A-B or A, got {text!r}")
    if not classes:
        raise argparse.ArgumentTypeError(f"expected a non-empty class range, got {text!r}")
    return classes


def counts(labels):
    """For each label in turn, how many times it has occurred so far (1 at its first occurrence)."""
    seen = {}
    for y in labels:
        seen[y] = seen.get(y, 0) + 1
        yield seen[y]


def main():
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("out", help="the folder to write (created if missing)")
    cli.add_argument("--src", default="/usr/share/datasets/fashion-mnist", help="the folder of the full IDX files")
    cli.add_argument("--classes", type=class_range, default=class_range("0-4"), help="A-B, inclusive (default 0-4)")
    cli.add_argument("--train-per-class", type=int, metavar="N", help="keep only the first N training images of each class")
    cli.add_argument("--test-per-class", type=int, metavar="N", help="keep only the first N test images of each class")
    args = cli.parse_args()
    for flag, n in (("--train-per-class", args.train_per_class), ("--test-per-class", args.test_per_class)):
        if n is not None and n < 1:
            cli.error(f"{flag}: expected a positive count, got {n}")
    os.makedirs(args.out, exist_ok=True)
    for prefix in ("train", "t10k"):
        src = lambda kind: os.path.join(args.src, f"{prefix}-{kind}-ubyte.gz")
        dst = lambda kind: os.path.join(args.out, f"{prefix}-{kind}-ubyte.gz")
        if not os.path.exists(src("images-idx3")) or not os.path.exists(src("labels-idx1")):
            sys.exit(f"expected {src('images-idx3')} and {src('labels-idx1')}, found no such files")
        shape, images = read_idx(src("images-idx3"))
        (count,), labels = read_idx(src("labels-idx1"))
        if len(shape) != 3 or shape[0] != count:
            sys.exit(f"expected {count} images (N, H, W) in {src('images-idx3')} to match its labels, got shape {shape}")
        size = shape[1] * shape[2]
        keep = [i for i in range(count) if labels[i] in args.classes]
        per_class = args.train_per_class if prefix == "train" else args.test_per_class
        if per_class:
            keep = [i for i, n in zip(keep, counts(labels[i] for i in keep)) if n <= per_class]
        write_idx(dst("images-idx3"), [len(keep), shape[1], shape[2]], b"".join(images[i * size:(i + 1) * size] for i in keep))
        write_idx(dst("labels-idx1"), [len(keep)], bytes(labels[i] for i in keep))
        print(f"{prefix}: {len(keep)} of {count} images ({os.path.getsize(dst('images-idx3')) / 1e6:.1f} MB)", flush=True)


if __name__ == "__main__":
    main()
