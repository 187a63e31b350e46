#!/usr/bin/python3
"""A float64 PyTorch reference of `analyze` (study/analysis.ts, eval/block-analysis.ts): recomputes a run folder's
per-block analysis from its files and compares it with the folder's analysis.json, measure by measure.

Run from the repository root:  /usr/bin/python3 scripts/analysis-torch-reference.py RUN_DIR [--images N]
[--bank-per-class N] [--backbone FILE] [--source-knn] [--threads T] [--verbose]   (Debian's python3 with its torch
1.13 and numpy; no GPU, no TypeScript.)

What it reads, itself: RUN_DIR/config.json; the original backbone (the path RUN_DIR/backbone.json names, or
--backbone FILE as analyze's --backbone; its SHA-256 checked against backbone.json and each cell's manifest); each
finished cell's cells/<id>/best.safetensors with the manifest in its metadata (strategy, LoRA rank/alpha/targets,
Block Expansion positions); the source-domain images from the dataset files. The images are chosen as analyze
chooses them (data/spec.ts openData, data/subset.ts subset and evenlySpaced): the config's knn.queries (its classes
renumbered 0..k-1 in the order given, the first perClass of each class, in file order), then `images` of them evenly
spaced (index floor(j * n / images)); the bank is knn.bank with perClass replaced by --bank-per-class (default: the
config's analysis.bankPerClass). Each choice's identity hash (data/dataset.ts hashFiles, hashLines) must equal the
one analysis.json records, or the script refuses: it then compares other images. The eval transform at the
dataset's own size is ToTensor + Normalize (data/transforms.ts, float32 in torchvision's order), the grey image
repeated to 3 channels. Supported: the IDX datasets (fashion-mnist, mnist) with transform "eval" at their native
28 px, and a backbone in the engine's canonical (timm) safetensors layout at its native size: the default study.
Anything else (a resize, the knn or train transform, a seeded `fraction` subset, another dataset or layout) is
refused with a message naming it, since its images or weights would not be reproduced exactly here.

What it computes, in float64 from the float32 files, independently of the engine: the ViT forward (patch conv, CLS
and position embeddings, pre-norm blocks with LayerNorm eps 1e-6, softmax attention, exact GELU, final norm); the
fine-tuned model built by hand (saved tensors over the base, LoRA merged as W + alpha/r * B A in float64, Block
Expansion's zeroed copies inserted after their positions, eval/block-map.ts's own/output rule); then per cell and
original block:
  cka.cls, cka.pooled   linear CKA from the n x n centred Gram matrices (Kornblith et al. 2019, HSIC form; the
                        engine uses the feature-space second moments)
  knn                   DINO's weighted k-NN top-1 (k = knn.reportK, T = knn.temperature) of each block's CLS after
                        the model's own final norm, ties: lower bank index, then lower class first (eval/knn.ts)
  attention             Jensen-Shannon divergence (bits) of the CLS attention rows, per head, mean over images
  weights               relative change ||W' - W|| / ||W|| of each block, each layer, the embeddings, the final norm
  output change         each part run on the original's input to it against the original part there: the embeddings'
                        ||E'(x) - E(x)|| / ||E(x)||, each block's ||B'(h) - B(h)|| / ||B(h) - h|| over every token;
                        on the source images and on as many of transfer.test, evenly spaced (the target domain's)
  patch change          the patch projection's output change along the first eigenvector of its patches' uncentred
                        second moment (torch.linalg.eigh) and along the rest, on either image set
  patch descent         where the patch projection moved: minus the training loss's gradient on it (the mean
                        cross-entropy of the cell's head over as many of transfer.train, evenly spaced, in batches of
                        training.batchSize; torch.autograd), split the same way, its size, its cosine with the
                        change so far and its full batches' spread about their own mean (over batches - 1)
  weight descent        of the tensors the cell trained directly, minus the training loss's gradient (the same
                        loss, torch.autograd) part by part (the embeddings, each original block, the final norm):
                        its size relative to the part's original weights, its cosine with the part's change and
                        its full batches' spread, as the patch projection's
  patch memory          at each kept step whose file holds the optimiser's state (cells/<id>/step-<n>.safetensors):
                        the step that state alone would make next on the patch projection (a zero gradient, rate 1,
                        no weight decay: SGD's -momentum * buffer, AdamW's), split the same way, its size and its
                        cosine with the change up to that step; and part by part in weight space (weight memory)
  noise walk            at the kept steps, what SGD's steps at the study's schedule, the cell's rate (each part's
                        layer-wise factor with -lrdD) and momentum make of independent noise of the measured spread
                        (linear between kept steps): its change, its memory's size and their cosine, part by part
  maps                  the attention grid: last block's CLS attention over the patches, mean over heads
the original's layer-wise k-NN and maps, and each strategy's mean and std over seeds (analysis.json `strategies`).
With --source-knn also the study's source k-NN (all of knn.queries against all of knn.bank, every k of knn.ks, top-1
and top-5) of the original and of each cell's best checkpoint, against baseline.json and cells/<id>/result.json.

Tolerances (largest |reference - analyze| allowed), for the engine's float32 device arithmetic; measured: the
default study's run folder, docs/ANALYSIS.md:
  cka, attention, maps  1e-5: the engine's forward is float32 (relative error ~1e-7 per op, a few ulps through the
                        blocks) and CKA's moments are float32 sums over the n images (rounding ~sqrt(n) * 6e-8
                        typical, n * 6e-8 at worst, 3e-5 at n = 500); a defect moves these numbers by far more
                        (the tables give two digits). Measured: 5e-8 (maps, float32 in analysis.json: 3.1e-7).
  weights               1e-7: both sides sum the same float32 weights in float64 (agreement ~1e-15), except LoRA,
                        merged in float32 on the device: each merged weight within half an ulp (6e-8 relative), so
                        a relative change can move by at most ~6e-8. Measured: 8e-15, LoRA 1.9e-9.
  output change         1e-4: a difference of two float32 forwards over a norm; where a part changed little, its
                        rounding (~1e-7 of each token) is a larger share of that difference. The tables give two or
                        three digits.
  descent               1e-4 (the patch projection's and the parts' in weight space): a float32 forward and
                        backward against float64; the cosines and sizes are given to two or three digits.
  weight memory         1e-7, as weights: both sides in float64 from the same float32 weights and state.
  memory                1e-4, its sizes relative to themselves (a step of rate 1 is tens of times the original
                        output) and its cosines: both sides compute it in float64 from the same float32 weights and
                        state; the patches' second moment and its first direction differ (float32 products on the
                        device, power iteration against eigh), as for the patch change.
  noise walk            1e-9: both sides in float64 from analysis.json's spreads (checked above as weight descent), the
                        engine by its recurrences, the script by the walk's closed form (sums over every earlier step)
  knn, source knn       one query (100 / queries percent): float32 features move cosines by ~1e-7, enough to swap
                        two neighbours at a near tie and so one vote; a systematic defect moves many. Measured: 0.
  exact                 0 (a count of values off): where a block's weights, or its output and attention, are
                        bitwise the original's in the reference (every weight up to that block unchanged),
                        analyze's two forward passes are the same float32 computation and must read exactly weight
                        change 0, output change 0 (where the reference finds the part's output unchanged),
                        divergence 0, CKA 1 (as on the CPU driver, where the moments of identical features come out
                        bitwise equal) and, where the final norm is the original's too, the original's layer-wise
                        k-NN.
Exit status: 0 when every measure is within its tolerance, 1 when one is not (the table says which), 2 when the
inputs cannot be compared (missing files, another image choice, an unsupported dataset or layout).
"""
import argparse
import gzip
import hashlib
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

TOLERANCE = {"cka": 1e-5, "attention": 1e-5, "maps": 1e-5, "weights": 1e-7, "output": 1e-4, "descent": 1e-4, "memory": 1e-4, "walk": 1e-9}
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# data/registry.ts's default roots (Debian's dataset-fashion-mnist and dataset-mnist packages) and class counts.
IDX_DATASETS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist", 10), "mnist": ("/usr/share/datasets/mnist", 10)}
BLOCK_LAYERS = ["norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"]  # eval/weight-change.ts
EMBEDDING = ["patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed"]
EPS = 1e-6  # timm / DINO LayerNorm (vit/load.ts for a timm-layout checkpoint)


class Refused(Exception):
    """The inputs cannot be compared: exit 2 with the message."""


def read_json(path, what):
    if not os.path.exists(path):
        raise Refused(f"expected {what} {path}, found none")
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise Refused(f"{path}: expected JSON, got: {e}")


# ---- files ------------------------------------------------------------------------------------------------------

SAFETENSORS_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read_safetensors(path):
    """({name: float64 array}, metadata) of a safetensors file."""
    if not os.path.exists(path):
        raise Refused(f"expected {path}, found none")
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else -1
    if n < 0 or 8 + n > len(data):
        raise Refused(f"{path}: expected a safetensors file (an 8-byte header length and a JSON header), got {len(data)} bytes")
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        dtype = SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise Refused(f"{path}: tensor {name} has dtype {info['dtype']}; expected one of {', '.join(SAFETENSORS_DTYPES)}")
        a, b = info["data_offsets"]
        count = (b - a) // np.dtype(dtype).itemsize
        tensors[name] = np.frombuffer(data, dtype, count, 8 + n + a).reshape(info["shape"]).astype(np.float64)
    return tensors, metadata


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_lines(lines):
    """data/dataset.ts hashLines."""
    return hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()[:16]


def read_idx(path):
    """data/idx.ts readIdx: an IDX array of unsigned bytes, gzipped or raw."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or not 1 <= data[3] <= 4:
        raise Refused(f"{path}: expected an IDX file of unsigned bytes (magic 00 00 08 0N), got {data[:4].hex(' ')}")
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * d:8 + 4 * d], "big") for d in range(ndim)]
    values = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if values.size != math.prod(shape):
        raise Refused(f"{path}: expected {math.prod(shape)} values for shape {shape}, got {values.size}")
    return values.reshape(shape)


# ---- images: data/spec.ts openData, data/subset.ts, data/transforms.ts --------------------------------------------

class Images:
    """A chosen set of images as analyze's Dataset: pixels (N, H, W) bytes, labels, class count, identity."""

    def __init__(self, pixels, labels, classes, hash, subset, spec):
        self.pixels, self.labels, self.classes, self.hash, self.subset, self.spec = pixels, labels, classes, hash, subset, spec


_opened = {}


def open_whole(spec, what):
    name = spec["dataset"]
    if name not in IDX_DATASETS:
        raise Refused(f"{what}: dataset {name} is not reproduced here (only the IDX datasets {', '.join(IDX_DATASETS)}, "
                      "whose pixels need no decoder)")
    split = spec["split"]
    if split not in ("train", "test"):
        raise Refused(f"{what}: expected split train or test for {name}, got {split!r}")
    root = os.path.abspath(spec.get("root") or IDX_DATASETS[name][0])
    key = (name, root, split)
    if key not in _opened:
        prefix = "train" if split == "train" else "t10k"
        paths = []
        for base in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
            found = [os.path.join(root, f) for f in (base, base + ".gz") if os.path.exists(os.path.join(root, f))]
            if not found:
                raise Refused(f"{what}: expected {base} or {base}.gz in {root}, found neither")
            paths.append(found[0])
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if images.ndim != 3 or labels.shape != (images.shape[0],):
            raise Refused(f"{what}: expected images (N, H, W) and labels (N) in {paths}, got {images.shape} and {labels.shape}")
        identity = hash_lines([f"{os.path.basename(p)}\t{os.path.getsize(p)}" for p in paths])  # hashFiles
        _opened[key] = (images, labels.astype(np.int64), identity)
    return _opened[key]


def class_list(value, what):
    """data/subset.ts parseClassList for a string; a list as it is."""
    if value is None or isinstance(value, list):
        return value
    out = []
    for part in str(value).split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if not m:
            raise Refused(f"{what}.classes: expected classes like \"0-4\" or \"0,2,7-9\", got {value!r}")
        lo, hi = int(m[1]), int(m[2] if m[2] is not None else m[1])
        out.extend(range(lo, hi + 1))
    return out


def open_data(spec, what):
    """data/spec.ts openData: the class selection and the first perClass of each class, in file order."""
    images, labels, identity = open_whole(spec, what)
    k = IDX_DATASETS[spec["dataset"]][1]
    classes, per_class = class_list(spec.get("classes"), what), spec.get("perClass")
    if spec.get("fraction") is not None:
        raise Refused(f"{what}.fraction: a seeded fraction of each class (util/random.ts's generator) is not reproduced here")
    if classes is None and per_class is None:
        return Images(images, labels, k, identity, None, spec)
    keep = classes if classes is not None else list(range(k))
    chosen = []
    for c in keep:
        members = np.flatnonzero(labels == c)
        chosen.extend(members[:per_class] if per_class is not None else members)
    chosen = np.sort(np.array(chosen, np.int64))
    new_label = np.full(k, -1, np.int64)
    for j, c in enumerate(keep):
        new_label[c] = j if classes is not None else c
    parts = []
    if classes is not None:
        parts.append(f"classes {','.join(map(str, classes))} -> 0..{len(classes) - 1}")
    if per_class is not None:
        parts.append(f"first {per_class} per class")
    described = "; ".join(parts)
    return Images(images[chosen], new_label[labels[chosen]], len(keep) if classes is not None else k,
                  hash_lines([identity, described, *map(str, chosen.tolist())]), described, spec)


def evenly_spaced(ds, n):
    """data/subset.ts evenlySpaced: index floor(j * length / n), j < n."""
    length = len(ds.labels)
    if n >= length:
        return ds
    idx = np.array([j * length // n for j in range(n)], np.int64)
    described = f"{n} evenly spaced of {length}"
    return Images(ds.pixels[idx], ds.labels[idx], ds.classes, hash_lines([ds.hash, described]),
                  f"{ds.subset}; then {described}" if ds.subset else described, ds.spec)


def check_identity(ds, recorded, what):
    if recorded is None:
        return
    mine = {"count": len(ds.labels), "hash": ds.hash, "subset": ds.subset}
    theirs = {k: recorded.get(k) for k in mine}
    if mine != theirs:
        raise Refused(f"{what}: the images chosen here ({mine}) are not the ones analysis.json records ({theirs}); "
                      "give the --images / --bank-per-class that analyze was run with")


def transformed(ds, size, what):
    """data/transforms.ts Transform, kind eval at the image's own size: ToTensor + Normalize in float32, grey -> RGB."""
    spec = ds.spec
    if spec.get("transform") != "eval":
        raise Refused(f"{what}.transform: only \"eval\" is reproduced here, got {spec.get('transform')!r} (its resize is libvips' or Pillow's)")
    h, w = ds.pixels.shape[1:]
    if (h, w) != (size, size):
        raise Refused(f"{what}: the eval transform resizes {w}x{h} images to {size}x{size} here, which is not reproduced (only the identity)")
    mean, std = spec.get("mean") or IMAGENET_MEAN, spec.get("std") or IMAGENET_STD
    x = (np.arange(256) / 255).astype(np.float32)
    lut = np.stack([(x - np.float32(m)) / np.float32(s) for m, s in zip(mean, std)]).astype(np.float32)  # (3, 256)
    out = lut[:, ds.pixels]  # (3, N, H, W)
    return torch.from_numpy(out.transpose(1, 0, 2, 3).astype(np.float64)), torch.from_numpy(ds.labels)


# ---- models -----------------------------------------------------------------------------------------------------

class Vit:
    """Canonical (timm-layout) float64 weights and their architecture."""

    def __init__(self, weights, heads, depth):
        self.w, self.heads, self.depth = weights, heads, depth
        self.width = weights["cls_token"].shape[-1]
        self.patch = weights["patch_embed.proj.weight"].shape[-1]


def load_backbone(path, heads):
    tensors, metadata = read_safetensors(path)
    need = ["cls_token", "pos_embed", "patch_embed.proj.weight", "norm.weight", "norm.bias", "blocks.0.attn.qkv.weight"]
    missing = [k for k in need if k not in tensors]
    if missing or tensors["patch_embed.proj.weight"].ndim != 4:
        raise Refused(f"{path}: expected a ViT in the engine's canonical (timm) layout ({', '.join(need)}, "
                      f"patch_embed.proj.weight (C, 3, P, P)); missing {', '.join(missing) or 'none'} (other layouts are not read here)")
    depth = 1 + max(int(m[1]) for k in tensors if (m := re.match(r"blocks\.(\d+)\.", k)))
    heads = heads or (int(metadata["heads"]) if "heads" in metadata else None)
    width = tensors["cls_token"].shape[-1]
    heads = heads or width // 64
    if width % heads:
        raise Refused(f"{path}: width {width} is not a multiple of {heads} heads")
    return Vit({k: torch.from_numpy(v) for k, v in tensors.items()}, heads, depth), metadata


def round_half_up(x):
    """JavaScript's Math.round for the positive numbers of peft/block-expansion.ts defaultPositions."""
    return math.floor(x + 0.5)


def block_map(strategy, depth):
    """eval/block-map.ts blockMap: (own, output, positions) of each original block."""
    after = set()
    if strategy["kind"] == "block":
        positions = strategy.get("positions") or [round_half_up((i + 1) * depth / strategy["p"]) for i in range(strategy["p"])]
        after = {k - 1 for k in positions}
    own, output, m = [], [], 0
    for i in range(depth):
        own.append(m)
        m += 1
        if i in after:
            m += 1
        output.append(m - 1)
    return own, output, sorted(after)


LORA_KEY = re.compile(r"^(.*)\.lora(?:_([qkv]))?\.([AB])$")  # peft/lora.ts loraName


def finetuned(base, path, manifest, tensors):
    """The fine-tuned model of a cell: the base with its strategy applied and its saved tensors filled in."""
    strategy = manifest["strategyOptions"]
    kind = strategy.get("kind")
    if kind not in ("full", "linear", "top-k", "lora", "block"):
        raise Refused(f"{path}: strategy kind {kind!r} is not reproduced here")
    own, output, after = block_map(strategy, base.depth)
    w = {k: v for k, v in base.w.items() if not k.startswith("blocks.") and not k.startswith("head.")}
    for i in range(base.depth):
        prefix = f"blocks.{i}."
        block = {k[len(prefix):]: v for k, v in base.w.items() if k.startswith(prefix)}
        for name, v in block.items():
            w[f"blocks.{own[i]}.{name}"] = v
        if i in after:  # peft/block-expansion.ts zeroedCopy: proj and fc2 zero, the rest copied
            for name, v in block.items():
                zero = name.startswith("attn.proj.") or name.startswith("mlp.fc2.")
                w[f"blocks.{own[i] + 1}.{name}"] = torch.zeros_like(v) if zero else v
    lora = {}
    listed = manifest.get("tensors", [])
    for name in listed:
        if name not in tensors:
            raise Refused(f"{path}: the manifest lists {name} but the file lacks it")
        if name.startswith("head."):
            continue
        v = torch.from_numpy(tensors[name])
        if LORA_KEY.match(name):
            lora[name] = v
            continue
        if name not in w:
            raise Refused(f"{path}: {name} is not a parameter of the {manifest['strategy']} model")
        if v.numel() != w[name].numel():
            raise Refused(f"{path}: expected {name} of {w[name].numel()} values, got {tuple(v.shape)}")
        w[name] = v.reshape(w[name].shape)
    if kind == "lora":
        rank = strategy["rank"]
        scale = strategy.get("alpha", rank) / rank
        for name in [n for n in lora if n.endswith(".A")]:
            layer, part, _ = LORA_KEY.match(name).groups()
            b = lora.get(name[:-1] + "B")
            if b is None:
                raise Refused(f"{path}: expected {name[:-1] + 'B'} beside {name}, found none")
            weight = w[layer + ".weight"].clone()
            rows = slice(None) if part is None else slice("qkv".index(part) * base.width, ("qkv".index(part) + 1) * base.width)
            weight[rows] += scale * (b @ lora[name])
            w[layer + ".weight"] = weight
    elif lora:
        raise Refused(f"{path}: LoRA tensors in a {kind} checkpoint")
    return Vit(w, base.heads, base.depth + len(after)), own, output


def embed(model, x):
    """The tokens before the blocks (B, T, C): patch conv, CLS token, position embeddings."""
    w = model.w
    x = F.conv2d(x, w["patch_embed.proj.weight"], w.get("patch_embed.proj.bias"), stride=model.patch).flatten(2).transpose(1, 2)
    return torch.cat([w["cls_token"].expand(x.shape[0], -1, -1), x], 1) + w["pos_embed"]


def block(model, i, x):
    """Block i on the residual stream x (B, T, C): its output and its attention probabilities (B, H, T, T)."""
    w, heads, c = model.w, model.heads, model.width
    p = f"blocks.{i}."
    h = F.layer_norm(x, (c,), w[p + "norm1.weight"], w[p + "norm1.bias"], EPS)
    qkv = F.linear(h, w[p + "attn.qkv.weight"], w.get(p + "attn.qkv.bias"))
    b, t, _ = qkv.shape
    q, k, v = qkv.reshape(b, t, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // heads), -1)
    x = x + F.linear((a @ v).transpose(1, 2).reshape(b, t, c), w[p + "attn.proj.weight"], w.get(p + "attn.proj.bias"))
    h = F.layer_norm(x, (c,), w[p + "norm2.weight"], w[p + "norm2.bias"], EPS)
    h = F.gelu(F.linear(h, w[p + "mlp.fc1.weight"], w.get(p + "mlp.fc1.bias")))
    return x + F.linear(h, w[p + "mlp.fc2.weight"], w.get(p + "mlp.fc2.bias")), a


def forward(model, x, attention=True):
    """Per block: the residual stream (B, T, C) and, with `attention`, the CLS rows of the attention (B, H, T)."""
    x = embed(model, x)
    outs, rows = [], []
    for i in range(model.depth):
        x, a = block(model, i, x)
        outs.append(x)
        if attention:
            rows.append(a[:, :, 0, :])
    return outs, rows


def output_change(original, tuned, own, output, x, outs):
    """eval/output-change.ts: the embeddings' ||E'(x) - E(x)|| / ||E(x)||, then per original block i the fine-tuned
    block(s) own[i]..output[i] on the original's input h to block i, ||B'(h) - B(h)|| / ||B(h) - h|| (outs: the
    original's block outputs on x)."""
    e0 = embed(original, x)
    change = [float((embed(tuned, x) - e0).norm() / e0.norm())]
    for i in range(original.depth):
        h = e0 if i == 0 else outs[i - 1]
        y = h
        for j in range(own[i], output[i] + 1):
            y = block(tuned, j, y)[0]
        change.append(float((y - outs[i]).norm() / (outs[i] - h).norm()))
    return change


def patch_moment(model, x):
    """eval/patch-directions.ts patchMoments: the mean of [p; 1] [p; 1]^T over every patch of x, its first eigenvector
    (largest entry positive) and eigenvalue (torch.linalg.eigh, not the engine's power iteration)."""
    p = F.unfold(x, model.patch, stride=model.patch).transpose(1, 2).reshape(-1, 3 * model.patch ** 2)
    p = torch.cat([p, torch.ones(p.shape[0], 1, dtype=p.dtype)], 1)
    m = p.T @ p / p.shape[0]
    values, vectors = torch.linalg.eigh(m)
    u = vectors[:, -1]
    return m, (u if u[u.abs().argmax()] > 0 else -u), float(values[-1])


def patch_change(original, tuned, moment):
    """eval/patch-directions.ts patchChange: the patch projection's output change along the first direction and the
    rest, relative to the original's output on the same patches."""
    m, u, value = moment
    w0 = projection(original)
    d = projection(tuned) - w0
    whole, along = float((d @ m * d).sum()), value * float((d @ u).pow(2).sum())
    reference = float((w0 @ m * w0).sum())
    return [math.sqrt(along / reference), math.sqrt(max(0.0, whole - along) / reference)]


def patch_gradients(tuned, head, x, labels, batch_size):
    """eval/patch-gradient.ts patchGradient: the mean cross-entropy's gradient on the tuned patch projection [W | b]
    (torch.autograd, every other weight held), each batch's of `batch_size` images in order, and their mean by
    images: (the mean, the full batches')."""
    weight, bias = (tuned.w[n].clone().requires_grad_(True) for n in ("patch_embed.proj.weight", "patch_embed.proj.bias"))
    model = Vit({**tuned.w, "patch_embed.proj.weight": weight, "patch_embed.proj.bias": bias}, tuned.heads, tuned.depth)
    batches, gradient = [], 0
    for i in range(0, len(labels), batch_size):
        with torch.enable_grad():
            logits = F.linear(final_norm(model, forward(model, x[i:i + batch_size], False)[0][-1][:, 0]), *head)
            gw, gb = torch.autograd.grad(F.cross_entropy(logits, labels[i:i + batch_size]), [weight, bias])
        g = torch.cat([gw.reshape(tuned.width, -1), gb[:, None]], 1)
        gradient = gradient + g * (len(logits) / len(labels))
        if len(logits) == batch_size:
            batches.append(g)
    return gradient, batches


def patch_descent(original, tuned, gradients, moment):
    """eval/patch-directions.ts patchDescent: minus the gradient split along the first direction and the rest, its
    output change (a step of rate 1, relative to the original's output), its cosine with the change so far and the
    full batches' spread about their own mean (over batches - 1), [along change, along turn, along spread, rest
    change, rest turn, rest spread]."""
    m, u, value = moment
    gradient, batches = gradients
    w0 = projection(original)
    d = projection(tuned) - w0
    def split(a, b):
        whole, along = float((a @ m * b).sum()), value * float((a @ u) @ (b @ u))
        return along, whole - along
    reference = float((w0 @ m * w0).sum())
    mean = sum(batches) / len(batches) if batches else None
    offs = [split(b - mean, b - mean) for b in batches]
    spread = [sum(o[k] for o in offs) / (len(offs) - 1) for k in (0, 1)] if len(offs) > 1 else [float("nan")] * 2
    out = []
    for s, e, se, sp in zip(split(-gradient, -gradient), split(d, d), split(-gradient, d), spread):
        out += [math.sqrt(max(0.0, s) / reference), se / math.sqrt(s * e), math.sqrt(max(0.0, sp) / reference)]
    return out


def part_names(original, own):
    """eval/part-moves.ts partTensors: {part: [(tuned name, original name)]}, the parts "embedding", 0..depth-1 (the
    fine-tuned model's own copy of each original block) and "norm"."""
    parts = {}
    for name in original.w:
        if name.startswith("head."):
            continue
        block = re.match(r"^blocks\.(\d+)\.(.*)$", name)
        part, tuned_name = (int(block[1]), f"blocks.{own[int(block[1])]}.{block[2]}") if block else ("norm" if name.startswith("norm.") else "embedding", name)
        parts.setdefault(part, []).append((tuned_name, name))
    return parts


def weight_gradients(tuned, head, x, labels, batch_size, names):
    """eval/training-gradient.ts trainingGradient: the mean cross-entropy's gradient on the named tuned tensors
    (torch.autograd, every other weight held), over the images in batches of `batch_size`, and each tensor's full
    batches' spread, the sum over its values of their variance about their own mean (over batches - 1; NaN with
    fewer than two): ({name: gradient}, {name: spread})."""
    leaves = {n: tuned.w[n].clone().requires_grad_(True) for n in names}
    model = Vit({**tuned.w, **leaves}, tuned.heads, tuned.depth)
    total, full = {n: 0 for n in names}, {n: [] for n in names}
    for i in range(0, len(labels), batch_size):
        with torch.enable_grad():
            logits = F.linear(final_norm(model, forward(model, x[i:i + batch_size], False)[0][-1][:, 0]), *head)
            grads = torch.autograd.grad(F.cross_entropy(logits, labels[i:i + batch_size]), list(leaves.values()))
        for n, g in zip(names, grads):
            total[n] = total[n] + g * (len(logits) / len(labels))
            if len(logits) == batch_size:
                full[n].append(g.double())
    def spread(batches):
        if len(batches) < 2:
            return float("nan")
        mean = sum(batches) / len(batches)
        return sum(float(((b - mean) ** 2).sum()) for b in batches) / (len(batches) - 1)
    return total, {n: spread(b) for n, b in full.items()}


def part_moves(original, tuned_w, parts, moves, depth, spreads=None):
    """eval/part-moves.ts partMoves: each part's move (of the tensors `moves` holds) relative to its original weights,
    and its cosine with the part's change so far, [embedding change, turn, block 0 change, turn, ..., norm change,
    turn]; a part without a move 0 and NaN. With `spreads` ({name: spread}), each part's after its turn:
    sqrt(sum of its tensors' spreads) relative the same way."""
    out = []
    for part in ["embedding", *range(depth), "norm"]:
        base = change = move = along = spread = 0.0
        for tuned_name, name in parts[part]:
            w0, d = original.w[name], tuned_w[tuned_name] - original.w[name]
            base += float((w0 * w0).sum())
            change += float((d * d).sum())
            if tuned_name in moves:
                m = torch.as_tensor(moves[tuned_name]).reshape(d.shape)
                move += float((m * m).sum())
                along += float((m * d).sum())
                spread += spreads[tuned_name] if spreads else 0.0
        out += [math.sqrt(move / base), along / math.sqrt(move * change) if move * change > 0 else float("nan")]
        out += [math.sqrt(spread / base)] if spreads else []
    return out


def noise_walks(cell, training, depth):
    """study/noise-walks.ts: each kept step's walk of every part, by the walk's closed form: with c_k = sum over s from
    k to T - 1 of lr_s mu^(s - k) and a_k = mu^(T - 1 - k), E||D||^2 = sum c_k^2 sigma_k^2, E||b||^2 = sum a_k^2
    sigma_k^2, E[D . -b] = sum a_k c_k sigma_k^2; [step 1: embedding change, memory, turn, block 0 ..., norm ...,
    step 2: ...]."""
    kept = cell["atSteps"]
    mu, warm, total = training.get("momentum", 0.9), training.get("warmupSteps", 0), training["steps"]
    decay = re.search(r"-lrd([\d.e-]+)$", cell["strategy"])
    def lr(s, base):
        if s < warm:
            return base * (s + 1) / warm
        return base if training.get("schedule") == "constant" else base * 0.5 * (1 + math.cos(math.pi * min((s - warm) / (total - warm), 1)))
    parts = [("embedding", 0), *((i, i + 1) for i in range(depth)), ("norm", depth + 1)]
    def spread_of(t, part):
        d = t["weightDescent"]
        spread = (d["embedding"] if part == "embedding" else d["norm"] if part == "norm" else d["blocks"][part])["spread"]
        return float("nan") if spread is None else spread
    out = []
    for t in kept:
        for part, layer in parts:
            base = cell["lr"] * (float(decay[1]) ** (depth + 1 - layer) if decay else 1.0)
            points = [(k["step"], spread_of(k, part)) for k in kept]
            sigma2 = [float(np.interp(s, [p[0] for p in points], [p[1] for p in points])) ** 2 for s in range(t["step"])]
            rates = [lr(s, base) for s in range(t["step"])]
            change = memory = dot = 0.0
            for k, v in enumerate(sigma2):
                c = sum(rates[s] * mu ** (s - k) for s in range(k, t["step"]))
                a = mu ** (t["step"] - 1 - k)
                change, memory, dot = change + c * c * v, memory + a * a * v, dot + a * c * v
            out += [math.sqrt(change), mu * math.sqrt(memory), dot / math.sqrt(change * memory) if mu > 0 and memory > 0 else float("nan")]
    return out


def state_step(hyper, slots, steps):
    """autograd/optim.ts stateStep: the update the optimiser's state alone makes next (a zero gradient, rate 1, no
    weight decay): SGD's -momentum * buffer, AdamW's -m' / (1 - beta1^t) / (sqrt(v') / sqrt(1 - beta2^t) + eps) at
    t = steps + 1 with m' = beta1 m, v' = beta2 v (the trainer's AdamW: PyTorch's betas and eps)."""
    if hyper["optimizer"] == "sgd":
        return -hyper["momentum"] * slots["momentum"]
    beta1, beta2, eps, t = 0.9, 0.999, 1e-8, steps + 1
    return -(beta1 * slots["exp_avg"] / (1 - beta1 ** t)) / (np.sqrt(beta2 * slots["exp_avg_sq"]) / math.sqrt(1 - beta2 ** t) + eps)


def optimizer_memory(tensors, hyper, steps):
    """eval/optimizer-memory.ts optimizerMemory: {tensor name: the step the state alone would make next} of each
    tensor a kept step's file holds state for; AdamW's count from `optimizer.step` where the file has one."""
    names = {k[len("optimizer."):k.rindex(".")] for k in tensors if k.startswith("optimizer.") and k != "optimizer.step"}
    count = tensors.get("optimizer.step")
    steps = int(count[0]) if count is not None else steps
    if hyper["optimizer"] == "sgd" and hyper["momentum"] == 0:
        return {}
    return {n: state_step(hyper, {k[len(f"optimizer.{n}."):]: v for k, v in tensors.items() if k.startswith(f"optimizer.{n}.")}, steps) for n in names}


def patch_move(w0, w, move, moment):
    """eval/patch-directions.ts patchMove: a move of [W | b] split along the first direction and the rest, its output
    change (relative to the original's output) and its cosine with the change so far, [along change, along turn, rest
    change, rest turn]."""
    m, u, value = moment
    d = w - w0
    def split(a, b):
        whole, along = float((a @ m * b).sum()), value * float((a @ u) @ (b @ u))
        return along, whole - along
    reference = float((w0 @ m * w0).sum())
    out = []
    for s, e, se in zip(split(move, move), split(d, d), split(move, d)):
        out += [math.sqrt(max(0.0, s) / reference), se / math.sqrt(s * e)]
    return out


def projection(model):
    """eval/patch-directions.ts patchProjection: [W | b] (C x (K + 1))."""
    w = model.w
    return torch.cat([w["patch_embed.proj.weight"].reshape(model.width, -1), w["patch_embed.proj.bias"][:, None]], 1)


def final_norm(model, x):
    return F.layer_norm(x, (model.width,), model.w["norm.weight"], model.w["norm.bias"], EPS)


# ---- measures ---------------------------------------------------------------------------------------------------

def cka(x, y):
    """Linear CKA by its HSIC definition: centred n x n Gram matrices K = H X Xᵀ H, L = H Y Yᵀ H."""
    n = x.shape[0]
    h = torch.eye(n) - 1.0 / n
    k, l = h @ (x @ x.T) @ h, h @ (y @ y.T) @ h
    return float((k * l).sum() / torch.sqrt((k * k).sum() * (l * l).sum()))


def knn(bank, bank_labels, queries, query_labels, ks, temperature, classes):
    """DINO's weighted k-NN: {k: (top1, top5)} in percent."""
    sim = F.normalize(queries, dim=1) @ F.normalize(bank, dim=1).T
    order = torch.sort(sim, dim=1, descending=True, stable=True)  # equal similarities: the lower bank index first
    out = {}
    for k in ks:
        k_used = min(k, bank.shape[0])
        votes = torch.zeros(queries.shape[0], classes).scatter_add_(1, bank_labels[order.indices[:, :k_used]],
                                                                   torch.exp(order.values[:, :k_used] / temperature))
        mine = votes.gather(1, query_labels[:, None])
        index = torch.arange(classes)[None, :]
        above = ((votes > mine) | ((votes == mine) & (index < query_labels[:, None]))).sum(1)  # equal votes: lower class first
        q = queries.shape[0]
        out[k] = (100 * int((above == 0).sum()) / q, 100 * int((above < min(5, k)).sum()) / q)
    return out


def jensen_shannon(p, q):
    """(..., T) rows -> (...) divergences in bits."""
    m = (p + q) / 2
    term = lambda a: torch.where(a > 0, a * torch.log2(a / m), torch.zeros_like(a)).sum(-1)
    return torch.clamp((term(p) + term(q)) / 2, min=0)


def relative(pairs):
    diff = sum(float(((b.reshape(a.shape) - a) ** 2).sum()) for a, b in pairs)
    base = sum(float((a ** 2).sum()) for a, _ in pairs)
    return math.sqrt(diff) / math.sqrt(base)


def weight_change(original, tuned, own):
    """eval/weight-change.ts: per block, per layer, embeddings, final norm."""
    blocks, layers, same = [], [], []
    for i in range(original.depth):
        per = {}
        all_pairs = []
        for layer in BLOCK_LAYERS:
            pairs = [(original.w[f"blocks.{i}.{layer}.{part}"], tuned.w[f"blocks.{own[i]}.{layer}.{part}"])
                     for part in ("weight", "bias") if f"blocks.{i}.{layer}.{part}" in original.w]
            per[layer] = relative(pairs)
            all_pairs += pairs
        blocks.append(relative(all_pairs))
        layers.append(per)
        same.append(all(torch.equal(a, b.reshape(a.shape)) for a, b in all_pairs))
    emb = [(original.w[k], tuned.w[k]) for k in EMBEDDING if k in original.w]
    norm = [(original.w[k], tuned.w[k]) for k in ("norm.weight", "norm.bias")]
    return {"blocks": blocks, "layers": layers, "embedding": relative(emb), "norm": relative(norm)}, same


class Features:
    """What analyze reads of one model on the queries and the bank, per original block."""

    def __init__(self, model, output, own, queries, bank, grid_images, attention=True):
        outs, rows = forward(model, queries, attention)
        bank_outs, _ = forward(model, bank, False)
        self.out = [outs[j] for j in output]
        self.cls = [o[:, 0] for o in self.out]
        self.pooled = [o.mean(1) for o in self.out]
        self.normed = [final_norm(model, o[:, 0]) for o in self.out]
        self.bank = [final_norm(model, bank_outs[j][:, 0]) for j in output]
        self.rows = [rows[j] for j in own] if attention else None
        self.maps = rows[own[-1]][:grid_images, :, 1:].mean(1).flatten() if attention else None


# ---- comparison -------------------------------------------------------------------------------------------------

class Comparison:
    def __init__(self, verbose):
        self.worst = {}  # measure -> (|diff|, where, tolerance)
        self.verbose = verbose

    def add(self, measure, tolerance, where, mine, theirs):
        """mine, theirs: numbers or nested lists of the same shape; None in analysis.json is NaN."""
        a = np.array(mine, dtype=float).ravel()
        b = np.array([np.nan if v is None else v for v in np.array(theirs, dtype=object).ravel()], dtype=float)
        if a.shape != b.shape:
            raise Refused(f"{where}: expected {a.size} values of {measure} in analysis.json, got {b.size}")
        both_nan = np.isnan(a) & np.isnan(b)
        diff = np.where(both_nan, 0.0, np.abs(a - b))
        diff = np.where(np.isnan(diff), np.inf, diff)
        d = float(diff.max()) if diff.size else 0.0
        if self.verbose:
            print(f"  {where:28s} {measure:10s} |diff| {d:.2e}")
        if measure not in self.worst or d > self.worst[measure][0]:
            self.worst[measure] = (d, where, tolerance)

    def report(self):
        print(f"{'measure':12s} {'largest |diff|':>15s} {'tolerance':>10s}  where")
        bad = []
        for measure, (d, where, tol) in self.worst.items():
            ok = d <= tol * (1 + 1e-9)  # a tolerance of one query reads 0.2000000001 from two percentages
            print(f"{measure:12s} {d:15.3g} {tol:10.3g}  {where}{'' if ok else '   EXCEEDS'}")
            if not ok:
                bad.append(measure)
        return bad


def mean_std(xs):
    """study/results.ts meanStd: the sample standard deviation (0 for one value)."""
    xs = np.array(xs, dtype=float)
    return float(xs.mean()), float(xs.std(ddof=1)) if len(xs) > 1 else 0.0


def finished_cells(run, config):
    """Cells of the config (its strategies by name, rates and seeds) with a result.json that did not diverge
    (study/analysis.ts cellOutcomes)."""
    root = os.path.join(run, "cells")
    rates = config["learningRates"]
    ids = []
    for cid in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        path = os.path.join(root, cid, "result.json")
        if not os.path.exists(path):
            continue
        r = read_json(path, "a cell's result")
        ours = r.get("strategy") in config["strategies"] and r.get("seed") in config["seeds"] and \
            r.get("lr") in (rates if isinstance(rates, list) else rates.get(r.get("strategy"), []))
        if ours and "diverged" not in r:
            ids.append(cid)
    return ids


def main():
    cli = argparse.ArgumentParser(description="float64 PyTorch reference of `analyze` on a run folder (see the header)")
    cli.add_argument("run", metavar="RUN_DIR")
    cli.add_argument("--images", type=int, help="source images analysed (default: the config's analysis.images, else 1000, as analyze)")
    cli.add_argument("--bank-per-class", type=int, help="the layer-wise k-NN's bank per class (default: the config's analysis.bankPerClass, else knn.bank's perClass)")
    cli.add_argument("--backbone", metavar="FILE", help="the original backbone, where backbone.json's path no longer holds it")
    cli.add_argument("--source-knn", action="store_true", help="also the source k-NN of the original and each cell against baseline.json and result.json")
    cli.add_argument("--threads", type=int, default=2)
    cli.add_argument("--verbose", action="store_true", help="every cell's differences, not only the largest per measure")
    args = cli.parse_args()
    torch.set_num_threads(args.threads)
    try:
        bad = run(args)
    except Refused as e:
        print(f"analysis-torch-reference: {e}", file=sys.stderr)
        sys.exit(2)
    if bad:
        print(f"analysis-torch-reference: {os.path.join(args.run, 'analysis.json')} is off beyond the tolerance in: {', '.join(bad)}", file=sys.stderr)
        sys.exit(1)
    print("analysis-torch-reference: every measure agrees within its tolerance")


def run(args):
    run_dir = os.path.abspath(args.run)
    config = read_json(os.path.join(run_dir, "config.json"), "the run's config")
    analysis = read_json(os.path.join(run_dir, "analysis.json"), "the analysis (node dist/run.js analyze RUN_DIR writes it)")
    spec = config.get("analysis") or {}
    images = args.images or spec.get("images") or 1000
    bank_per_class = args.bank_per_class or spec.get("bankPerClass")
    grid_images = min(spec.get("gridImages") or 4, images)
    key = analysis.get("key", {})
    if (key.get("images"), key.get("bankPerClass"), key.get("gridImages")) != (images, bank_per_class, grid_images):
        raise Refused(f"analysis.json was made with images {key.get('images')}, bankPerClass {key.get('bankPerClass')}, gridImages "
                      f"{key.get('gridImages')}, not {images}, {bank_per_class}, {grid_images}: give --images / --bank-per-class as analyze had them")

    record = read_json(os.path.join(run_dir, "backbone.json"), "the backbone record")
    backbone_path = os.path.abspath(args.backbone or record["path"])
    if not os.path.exists(backbone_path):
        raise Refused(f"the original backbone {backbone_path} does not exist; --backbone FILE names where it is now")
    digest = sha256(backbone_path)
    if record.get("sha256") and record["sha256"] != digest:
        raise Refused(f"{backbone_path} (sha256 {digest[:12]}…) is not the run's backbone (backbone.json: {record['sha256'][:12]}…)")
    b = config.get("backbone", {})
    heads = (b.get("pretrain") or {}).get("model", {}).get("heads") or b.get("heads")
    original, _ = load_backbone(backbone_path, heads)
    if (analysis.get("depth"), analysis.get("heads")) != (original.depth, original.heads):
        raise Refused(f"analysis.json describes {analysis.get('depth')} blocks of {analysis.get('heads')} heads; {backbone_path} here: {original.depth} of {original.heads}")
    native = original.patch * round(math.sqrt(original.w["pos_embed"].shape[1] - 1))
    size = config.get("imageSize") or native
    if size != native:
        raise Refused(f"imageSize {size}: the position embeddings of {backbone_path} ({native} px) would be interpolated, which is not reproduced here")

    knn_spec = config["knn"]
    query_set = evenly_spaced(open_data(knn_spec["queries"], "knn.queries"), images)
    bank_spec = dict(knn_spec["bank"], **({"perClass": bank_per_class} if bank_per_class is not None else {}))
    bank_set = open_data(bank_spec, "knn.bank")
    check_identity(query_set, analysis.get("images"), "knn.queries")
    check_identity(bank_set, analysis.get("bank"), "knn.bank")
    # The target-domain images each part's output change is measured on too: as many of transfer.test, evenly spaced.
    target_set = evenly_spaced(open_data(config["transfer"]["test"], "transfer.test"), images)
    if analysis.get("targetImages") is None:
        raise Refused("analysis.json records no target-domain images (a build before them): analyze the run folder again")
    check_identity(target_set, analysis["targetImages"], "transfer.test")
    targets, _ = transformed(target_set, size, "transfer.test")
    # The training images gradient descent's next move on the patch projection is taken on: as many of transfer.train.
    train_set = evenly_spaced(open_data(config["transfer"]["train"], "transfer.train"), images)
    if analysis.get("trainImages") is None:
        raise Refused("analysis.json records no training images (a build before gradient descent's next move): analyze the run folder again")
    check_identity(train_set, analysis["trainImages"], "transfer.train")
    train, train_labels = transformed(train_set, size, "transfer.train")
    queries, query_labels = transformed(query_set, size, "knn.queries")
    bank, bank_labels = transformed(bank_set, size, "knn.bank")
    classes = max(query_set.classes, bank_set.classes)
    k, temperature = knn_spec["reportK"], knn_spec["temperature"]
    if (analysis.get("k"), analysis.get("temperature")) != (k, temperature):
        raise Refused(f"analysis.json's k-NN is k {analysis.get('k')}, T {analysis.get('temperature')}; the config's: k {k}, T {temperature}")
    one_query = 100 / len(query_labels)
    print(f"{run_dir}: {len(query_labels)} source images, a bank of {len(bank_labels)}, backbone {backbone_path}")

    ids = finished_cells(run_dir, config)
    listed = [c["id"] for c in analysis.get("cells", [])]
    if sorted(ids) != sorted(listed):
        raise Refused(f"analysis.json holds cells {listed}; the run folder's finished cells are {ids}")

    compare = Comparison(args.verbose)
    depth = original.depth
    same = list(range(depth))
    with torch.no_grad():
        was = Features(original, same, same, queries, bank, grid_images)
        target_outs = forward(original, targets, False)[0]
        moments = {"source": patch_moment(original, queries), "target": patch_moment(original, targets)}
        original_knn = [knn(was.bank[i], bank_labels, was.normed[i], query_labels, [k], temperature, classes)[k][0] for i in range(depth)]
        compare.add("knn", one_query, "original", original_knn, analysis["original"]["knn"])
        compare.add("maps", TOLERANCE["maps"], "original", was.maps.tolist(), analysis["original"]["grid"])
        exact = []  # (where, mine, theirs) that must be equal
        per_cell = {}
        for cell in analysis["cells"]:
            cid = cell["id"]
            path = os.path.join(run_dir, "cells", cid, "best.safetensors")
            tensors, metadata = read_safetensors(path)
            if "manifest" not in metadata:
                raise Refused(f"{path}: expected a manifest in the file's metadata, found none")
            manifest = json.loads(metadata["manifest"])
            if manifest["base"]["sha256"] != digest:
                raise Refused(f"{path} was trained from {manifest['base']['file']} (sha256 {manifest['base']['sha256'][:12]}…), not {backbone_path}")
            if (manifest["strategy"], manifest["hyperParameters"].get("lr"), manifest["seed"]) != (cell["strategy"], cell["lr"], cell["seed"]):
                raise Refused(f"{path} was trained as {manifest['strategy']}, lr {manifest['hyperParameters'].get('lr')}, seed {manifest['seed']}, not as cell {cid}")
            tuned, own, output = finetuned(original, path, manifest, tensors)
            is_ = Features(tuned, output, own, queries, bank, grid_images)
            mine = {
                "cls": [cka(was.cls[i], is_.cls[i]) for i in range(depth)],
                "pooled": [cka(was.pooled[i], is_.pooled[i]) for i in range(depth)],
                "knn": [knn(is_.bank[i], bank_labels, is_.normed[i], query_labels, [k], temperature, classes)[k][0] for i in range(depth)],
                "attention": [jensen_shannon(was.rows[i], is_.rows[i]).mean(0).tolist() for i in range(depth)],
            }
            weights, unchanged = weight_change(original, tuned, own)
            compare.add("cka.cls", TOLERANCE["cka"], cid, mine["cls"], cell["cka"]["cls"])
            compare.add("cka.pooled", TOLERANCE["cka"], cid, mine["pooled"], cell["cka"]["pooled"])
            compare.add("knn", one_query, cid, mine["knn"], cell["knn"])
            compare.add("attention", TOLERANCE["attention"], cid, mine["attention"], cell["attention"])
            theirs = cell["weights"]
            compare.add("weights", TOLERANCE["weights"], cid,
                        [*weights["blocks"], *[l[n] for l in weights["layers"] for n in BLOCK_LAYERS], weights["embedding"], weights["norm"]],
                        [*theirs["blocks"], *[l[n] for l in theirs["layers"] for n in BLOCK_LAYERS], theirs["embedding"], theirs["norm"]])
            compare.add("maps", TOLERANCE["maps"], cid, is_.maps.tolist(), cell["grid"])
            for field, x, outs in (("outputChange", queries, was.out), ("targetOutputChange", targets, target_outs)):
                mine_output = output_change(original, tuned, own, output, x, outs)
                theirs_output = [cell[field]["embedding"], *cell[field]["blocks"]]
                compare.add("output change", TOLERANCE["output"], f"{cid} {field}", mine_output, theirs_output)
                # A part left alone, every weight it reads the original's: 0 to the bit, as analyze runs both the same way.
                exact += [(f"{cid} {field}[{j}]", 0.0, t) for j, (m, t) in enumerate(zip(mine_output, theirs_output)) if m == 0.0]
            moved = not torch.equal(projection(original), projection(tuned))
            head = (torch.from_numpy(tensors["head.weight"]), torch.from_numpy(tensors["head.bias"]))
            gradients = moved and "patchDescent" in cell and patch_gradients(tuned, head, train, train_labels, config["training"]["batchSize"])
            for images, moment in moments.items():
                theirs_patch = cell["patchChange"][images]
                compare.add("patch change", TOLERANCE["output"], f"{cid} patchChange.{images}", patch_change(original, tuned, moment), [theirs_patch["along"], theirs_patch["rest"]])
                if moved:
                    if "patchDescent" not in cell:
                        exact.append((f"{cid} patchDescent", "measured", "absent"))
                        continue
                    t = cell["patchDescent"][images]
                    compare.add("patch descent", TOLERANCE["descent"], f"{cid} patchDescent.{images}", patch_descent(original, tuned, gradients, moment),
                                [t[part][key] for part in ("along", "rest") for key in ("change", "turn", "spread")])
            # Gradient descent's next move on the weights the cell trained directly, part by part (weight space).
            parts = part_names(original, own)
            trained = [t for part in parts.values() for t, _ in part if t in manifest.get("tensors", [])]
            if trained and "weightDescent" not in cell:
                exact.append((f"{cid} weightDescent", "measured", "absent"))
            elif trained:
                gradient, spreads = weight_gradients(tuned, head, train, train_labels, config["training"]["batchSize"], trained)
                t = cell["weightDescent"]
                compare.add("weight descent", TOLERANCE["descent"], f"{cid} weightDescent", part_moves(original, tuned.w, parts, {n: -g for n, g in gradient.items()}, depth, spreads),
                            [v for p in [t["embedding"], *t["blocks"], t["norm"]] for v in (p["change"], p["turn"], p["spread"])])
            # The kept steps' optimiser memory, from each step's file (its state and weights): on the patch projection
            # split along its patches' first direction and the rest, and on each part in weight space.
            for kept in cell.get("atSteps", []):
                if "patchMemory" not in kept and "weightMemory" not in kept:
                    continue
                step_path = os.path.join(run_dir, "cells", cid, f"step-{kept['step']}.safetensors")
                step_tensors, _ = read_safetensors(step_path)
                at_model = finetuned(original, step_path, manifest, step_tensors)[0]
                memory = {n: torch.from_numpy(v) for n, v in optimizer_memory(step_tensors, manifest["hyperParameters"], kept["step"]).items()}
                where = f"{cid} step {kept['step']}"
                if "weightMemory" in kept:
                    t = kept["weightMemory"]
                    compare.add("weight memory", TOLERANCE["weights"], f"{where} weightMemory", part_moves(original, at_model.w, parts, {n: memory[n] for n in trained if n in memory}, depth),
                                [v for p in [t["embedding"], *t["blocks"], t["norm"]] for v in (p["change"], p["turn"])])
                move = torch.cat([memory["patch_embed.proj.weight"].reshape(original.width, -1), memory["patch_embed.proj.bias"][:, None]], 1) if "patchMemory" in kept else None
                for images, moment in moments.items() if move is not None else []:
                    t = kept["patchMemory"][images]
                    along, along_turn, rest, rest_turn = patch_move(projection(original), projection(at_model), move, moment)
                    # A step of rate 1 is tens of times the original output: its sizes relative to themselves.
                    compare.add("patch memory", TOLERANCE["memory"], f"{where} patchMemory.{images}",
                                [along / t["along"]["change"] - 1, along_turn, rest / t["rest"]["change"] - 1, rest_turn],
                                [0.0, t["along"]["turn"], 0.0, t["rest"]["turn"]])
            # The noise walk, derived from the kept steps' spreads (with SGD).
            if any("noiseWalk" in k for k in cell.get("atSteps", [])):
                if config["training"].get("optimizer", "sgd") != "sgd":
                    exact.append((f"{cid} noiseWalk", "none with AdamW", "present"))
                else:
                    walks = [k["noiseWalk"] for k in cell["atSteps"]]
                    compare.add("noise walk", TOLERANCE["walk"], f"{cid} noiseWalk", noise_walks(cell, config["training"], depth),
                                [v for w in walks for p in [w["embedding"], *w["blocks"], w["norm"]] for v in (p["change"], p["memory"], p["turn"])])
            added = sorted(block_map(manifest["strategyOptions"], depth)[2])
            if theirs.get("added") != added:
                exact.append((f"{cid} weights.added", added, theirs.get("added")))
            same_norm = all(torch.equal(original.w[n], tuned.w[n]) for n in ("norm.weight", "norm.bias"))
            for i in range(depth):
                if torch.equal(was.out[i], is_.out[i]):
                    exact += [(f"{cid} cka.cls[{i}]", 1.0, cell["cka"]["cls"][i]), (f"{cid} cka.pooled[{i}]", 1.0, cell["cka"]["pooled"][i])]
                    if same_norm:  # the k-NN reads the block's CLS through the model's own final norm
                        exact.append((f"{cid} knn[{i}]", original_knn[i], cell["knn"][i]))
                if torch.equal(was.rows[i], is_.rows[i]):
                    exact.append((f"{cid} attention[{i}]", [0.0] * original.heads, cell["attention"][i]))
                if unchanged[i]:
                    exact.append((f"{cid} weights.blocks[{i}]", 0.0, theirs["blocks"][i]))
            per_cell[cid] = dict(mine, weights=weights)
            if args.source_knn:
                features = (final_norm(tuned, forward(tuned, x, False)[0][-1][:, 0]) for x in source_images(config, size))
                source_knn(compare, config, cid, *features, read_json(os.path.join(run_dir, "cells", cid, "result.json"), "a cell's result")["knn"])
        if args.source_knn:
            features = (final_norm(original, forward(original, x, False)[0][-1][:, 0]) for x in source_images(config, size))
            source_knn(compare, config, "original", *features, read_json(os.path.join(run_dir, "baseline.json"), "the baseline")["knn"])

    strategies(compare, analysis, per_cell, one_query)
    wrong = [e for e in exact if e[1] != e[2]]
    compare.worst["exact"] = (float(len(wrong)), f"{len(exact)} values that must be exact" + "".join(f"; {w}: {t} (not {m})" for w, m, t in wrong[:3]), 0.0)
    return compare.report()


_source = {}


def source_images(config, size):
    """The study's source bank and queries whole (study/runner.ts knnScores), as (bank, queries) float64 images."""
    if not _source:
        for name in ("bank", "queries"):
            ds = open_data(config["knn"][name], f"knn.{name}")
            _source[name] = (ds, *transformed(ds, size, f"knn.{name}"))
    return _source["bank"][1], _source["queries"][1]


def source_knn(compare, config, where, bank, queries, recorded):
    """Source k-NN of one model against its record ({k: {top1, top5}}): baseline.json or a cell's result.json."""
    (bank_set, _, bank_labels), (query_set, _, query_labels) = _source["bank"], _source["queries"]
    ks = config["knn"]["ks"]
    scores = knn(bank, bank_labels, queries, query_labels, ks, config["knn"]["temperature"], max(bank_set.classes, query_set.classes))
    mine = [v for k in ks for v in scores[k]]
    theirs = [recorded[str(k)][m] for k in ks for m in ("top1", "top5")]
    compare.add("source knn", 100 / len(query_labels), where, mine, theirs)


def strategies(compare, analysis, per_cell, one_query):
    """analysis.json `strategies`: each measure's mean and std over the seeds of a strategy at its rate."""
    for s in analysis.get("strategies", []):
        group = [c["id"] for c in analysis["cells"] if c["strategy"] == s["strategy"] and c["lr"] == s["lr"]]
        where = f"strategy {s['strategy']} lr {s['lr']}"
        depth = len(s["knn"])
        for field, measure, tol, value in [
            ("ckaCls", "cka.cls", TOLERANCE["cka"], lambda c, i: per_cell[c]["cls"][i]),
            ("ckaPooled", "cka.pooled", TOLERANCE["cka"], lambda c, i: per_cell[c]["pooled"][i]),
            ("knn", "knn", one_query, lambda c, i: per_cell[c]["knn"][i]),
            ("weights", "weights", TOLERANCE["weights"], lambda c, i: per_cell[c]["weights"]["blocks"][i]),
            ("attention", "attention", TOLERANCE["attention"], lambda c, i: float(np.mean(per_cell[c]["attention"][i]))),
        ]:
            mine = [mean_std([value(c, i) for c in group]) for i in range(depth)]
            compare.add(measure, tol, f"{where} {field}", mine, [[x["mean"], x["std"]] for x in s[field]])
        for field in ("embedding", "norm"):
            mine = mean_std([per_cell[c]["weights"][field] for c in group])
            compare.add("weights", TOLERANCE["weights"], f"{where} {field}", mine, [s[field]["mean"], s[field]["std"]])


if __name__ == "__main__":
    main()
