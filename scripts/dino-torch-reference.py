#!/usr/bin/python3
"""PyTorch reference of configs/dino-fashion-mnist.json: DINO (facebookresearch/dino main_dino.py) on Fashion-MNIST
classes 0-4 (train split) with the same ViT (28 px, patch 7, width 64, depth 4, 2 heads, MLP 256, CLS, pre-norm),
head (256 hidden, 64 bottleneck, 256 prototypes, weight-normalised last layer with g = 1), loss (student 0.1, teacher
0.04 -> 0.07 over 30 % of the steps, centre momentum 0.9), AdamW (lr 1e-3, warm-up over 10 % of the steps, cosine to 1e-6; wd 0.04 -> 0.4
cosine, none on biases and 1-D), per-parameter clipping 3.0, last layer frozen for 10 % of the steps, teacher EMA 0.99 -> 1
(cosine), 2 global 28 px crops (scale 0.4-1) and 4 local 14 px crops (scale 0.05-0.4), flip, brightness/contrast
0.4 with p 0.8, ImageNet normalisation on the grey image repeated to 3 channels. Every 100 steps (--knn-every): weighted 20-NN
(T = 0.07) of the teacher backbone's CLS after the final norm, bank 200 train images per class, queries 200 test
images per class (the first of each class).

Run from the repository root:  /usr/bin/python3 scripts/dino-torch-reference.py [steps] [--seed S] [--schedule N]
[--threads T] [--knn-every N] [--device cpu|cuda] [--data DIR] [--out FILE.json] [recipe flags]   (torch 1.13 on
the CPU; torch 2 with CUDA on a GPU, scripts/dino-gpu.sh). --device cuda runs the whole step there (crops, model,
loss, EMA, k-NN) with CUDA's random streams, so its numbers differ from the CPU's for the same seed; --data is the
folder of the IDX files (classes 0-4 of them are enough, scripts/fashion-mnist-subset.py); --out keeps the k-NN
curve as JSON, rewritten after each score so that a stopped run leaves its curve. The schedules span --schedule steps (default
600, the config's) whether or not all are run; --seed seeds the initialisation, batch order and crops. The recipe
flags (--prototypes, --lr, --momentum, --teacher-temp, --warmup-teacher-temp, --center-momentum, --local-crops,
--global-scale A,B, --local-scale A,B, --batch) change the values above, for trying recipes from their curves;
--crops pil draws the crops as torchvision does on PIL images (integer boxes, bicubic), as DINO and the engine do.
--score FILE.safetensors scores a backbone written by the engine's `pretrain` with this script's k-NN, and trains nothing.
"""
import argparse
import json
import gzip
import math
import os
import sys
import time

import random

import numpy as np
from PIL import Image
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
from generate import ViT  # noqa: E402

IMAGE, PATCH, WIDTH, DEPTH, HEADS = 28, 7, 64, 4, 2
HIDDEN, BOTTLENECK, K = 256, 64, 256
LOCAL, LOCALS, BATCH = 14, 4, 128
GLOBAL_SCALE, LOCAL_SCALE = (0.4, 1.0), (0.05, 0.4)
LR, MIN_LR, WD, WD_END, MOM = 1e-3, 1e-6, 0.04, 0.4, 0.99
T_WARM, T_END, STUDENT_T, CENTER_M, CLIP = 0.04, 0.07, 0.1, 0.9, 3.0
MEAN, STD = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def idx(root, name):
    with gzip.open(os.path.join(root, name)) as f:
        d = f.read()
    if d[2:4] == b"\x08\x03":
        n, h, w = (int.from_bytes(d[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
        return np.frombuffer(d, np.uint8, offset=16).reshape(n, h, w)
    return np.frombuffer(d, np.uint8, offset=8)


class DINOHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(WIDTH, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, BOTTLENECK))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = nn.utils.weight_norm(nn.Linear(BOTTLENECK, K, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = ViT(WIDTH, DEPTH, HEADS, PATCH, IMAGE, classes=0)
        for n, p in self.backbone.named_parameters():  # DINO's vision_transformer.py init
            if n.endswith("norm1.weight") or n.endswith("norm2.weight") or n == "norm.weight":
                nn.init.ones_(p)
            elif p.dim() == 1:
                nn.init.zeros_(p)
            else:
                nn.init.trunc_normal_(p, std=0.02)
        self.head = DINOHead()

    def forward(self, crops):
        return self.head(torch.cat([self.backbone.features(c) for c in crops]))


def cosine(base, final, steps, warmup=0):
    w = np.linspace(0, base, warmup) if warmup else np.array([])
    i = np.arange(steps - warmup)
    return np.concatenate((w, final + 0.5 * (base - final) * (1 + np.cos(np.pi * i / len(i)))))


def rrc(x, size, scale, gen):
    """RandomResizedCrop (area fraction scale, ratio 3/4-4/3) + horizontal flip, bilinear, via affine_grid."""
    n, dev = x.shape[0], x.device
    area = torch.empty(n, device=dev).uniform_(*scale, generator=gen)
    logr = torch.empty(n, device=dev).uniform_(math.log(3 / 4), math.log(4 / 3), generator=gen)
    r = torch.exp(logr)
    w = torch.sqrt(area * r).clamp(max=1.0)
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (torch.rand(n, generator=gen, device=dev) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, generator=gen, device=dev) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n, generator=gen, device=dev) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * flip, cx, h, cy
    grid = F.affine_grid(theta, (n, 1, size, size), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def rrc_pil(x8, size, scale, rng):
    """torchvision's RandomResizedCrop on PIL images (integer boxes, 10 tries then a centre crop, bicubic) and
    RandomHorizontalFlip, as DINO's DataAugmentationDINO and the engine's data/transforms.ts draw them."""
    out = np.empty((len(x8), 1, size, size), np.float32)
    H, W = x8.shape[1:]
    ratio = (3 / 4, 4 / 3)
    for n, img in enumerate(x8):
        for _ in range(10):
            area = H * W * rng.uniform(*scale)
            aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
            w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if 0 < w <= W and 0 < h <= H:
                i, j = rng.randint(0, H - h), rng.randint(0, W - w)
                break
        else:
            w, h = W, H
            i, j = (H - h) // 2, (W - w) // 2
        crop = Image.fromarray(img).crop((j, i, j + w, i + h)).resize((size, size), Image.BICUBIC)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        out[n, 0] = np.asarray(crop, np.float32) / 255
    return torch.from_numpy(out)


def photometric(x, gen):
    """brightness and contrast 0.4 with p = 0.8, each in random order as ColorJitter; clamp to [0, 1]; normalise."""
    n, dev = x.shape[0], x.device
    on = (torch.rand(n, 1, 1, 1, generator=gen, device=dev) < 0.8).float()
    b = 1 + on * (torch.rand(n, 1, 1, 1, generator=gen, device=dev) * 0.8 - 0.4)
    c = 1 + on * (torch.rand(n, 1, 1, 1, generator=gen, device=dev) * 0.8 - 0.4)
    first_b = torch.rand(n, 1, 1, 1, generator=gen, device=dev) < 0.5
    def bri(y):
        return (y * b).clamp(0, 1)
    def con(y):
        m = y.mean(dim=(1, 2, 3), keepdim=True)
        return (c * y + (1 - c) * m).clamp(0, 1)
    x = torch.where(first_b, con(bri(x)), bri(con(x)))
    return (x.repeat(1, 3, 1, 1) - MEAN) / STD


def knn(teacher, bank, bank_y, queries, query_y, k=20, T=0.07, classes=5):
    with torch.no_grad():
        f = lambda x: F.normalize(torch.cat([teacher.backbone.features(x[i:i + 128]) for i in range(0, len(x), 128)]), dim=1)
        fb, fq = f(bank), f(queries)
        sim, ind = (fq @ fb.T).topk(k, dim=1)
        votes = torch.zeros(len(fq), classes, device=fq.device).scatter_add_(1, bank_y[ind], (sim / T).exp())
        return (votes.argmax(1) == query_y).float().mean().item() * 100


def load_safetensors(path):
    """The tensors of a safetensors file (F32 only), by name."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {t['dtype']}, expected F32")
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], np.float32).copy().reshape(t["shape"]))
    return out


def first_per_class(x, y, per):
    keep = np.concatenate([np.where(y == c)[0][:per] for c in range(5)])
    return x[keep], y[keep]


def write_json(path, value):
    """Atomically: a run stopped while writing leaves the previous curve."""
    with open(path + ".part", "w") as f:
        json.dump(value, f, indent=1)
    os.replace(path + ".part", path)


def main(args):
    global MEAN, STD
    dev = torch.device(args.device)
    MEAN, STD = MEAN.to(dev), STD.to(dev)
    steps_run = args.steps
    STEPS = args.schedule  # the schedules are those of the whole run even when fewer steps are run
    # as the config: lr warm-up and frozen last layer over 10 % of the steps, teacher temperature warm-up over 30 %
    WARMUP, FREEZE, T_STEPS = STEPS // 10, STEPS // 10, STEPS * 3 // 10
    torch.manual_seed(args.seed)
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    tx, ty = idx(args.data, "train-images-idx3-ubyte.gz"), idx(args.data, "train-labels-idx1-ubyte.gz")
    vx, vy = idx(args.data, "t10k-images-idx3-ubyte.gz"), idx(args.data, "t10k-labels-idx1-ubyte.gz")
    src = ty < 5
    train = torch.from_numpy(tx[src].astype(np.float32) / 255).unsqueeze(1).to(dev)
    train8 = tx[src]
    pyrng = random.Random(args.seed)
    if args.crops == "pil":
        crop = lambda rows, size, scale: rrc_pil(train8[rows.numpy()], size, scale, pyrng)
    else:
        crop = lambda rows, size, scale: rrc(train[rows], size, scale, gen)
    evalt = lambda a: (torch.from_numpy(a.astype(np.float32) / 255).unsqueeze(1).to(dev).repeat(1, 3, 1, 1) - MEAN) / STD
    labels = lambda a: torch.from_numpy(a.astype(np.int64)).to(dev)
    bx, by = first_per_class(tx, ty, 200)
    qx, qy = first_per_class(vx, vy, 200)
    bank, bank_y, queries, query_y = evalt(bx), labels(by), evalt(qx), labels(qy)

    if args.score:
        net = Net()
        net.backbone.load_state_dict(load_safetensors(args.score))
        net.to(dev)
        print(f"score,{args.score},{knn(net, bank, bank_y, queries, query_y):.1f}", flush=True)
        return
    student = Net().to(dev)
    teacher = Net().to(dev)
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    reg, noreg = [], []
    for n, p in student.named_parameters():
        if p.requires_grad:
            (noreg if n.endswith(".bias") or p.dim() == 1 else reg).append(p)
    opt = torch.optim.AdamW([{"params": reg}, {"params": noreg, "weight_decay": 0.0}], lr=0.0)
    lr_s, wd_s, mom_s = cosine(LR, MIN_LR, STEPS, WARMUP), cosine(WD, WD_END, STEPS), cosine(MOM, 1.0, STEPS)
    temp_s = np.concatenate((np.linspace(T_WARM, T_END, T_STEPS), np.ones(STEPS - T_STEPS) * T_END))
    center = torch.zeros(1, K, device=dev)
    params_s, params_t = list(student.parameters()), list(teacher.parameters())
    perm, at = torch.randperm(len(train), generator=gen, device=dev), 0
    t0 = time.time()
    print("step,knn20,loss,teacher_entropy,entropy_over_logK,seconds", flush=True)
    ent_hist = []  # the teacher's entropy of the last 10 steps, as tensors: reading one back waits for the device
    record = {"args": vars(args), "torch": torch.__version__, "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
              "schedule": STEPS, "epochs": STEPS / (len(train) // BATCH), "knn": [], "finished": False}
    for step in range(steps_run + 1):
        if step % args.knn_every == 0 or step == steps_run:
            acc = knn(teacher, bank, bank_y, queries, query_y)
            e = np.mean([t.item() for t in ent_hist]) if ent_hist else float("nan")
            seconds = time.time() - t0
            print(f"knn,{step},{acc:.1f},entropy(last 10 steps) {e:.4f} = {e / math.log(K) * 100:.1f}% of log K,{seconds:.0f}s", flush=True)
            record["knn"].append({"step": step, "knn20": round(acc, 2), "entropy_over_logK": None if math.isnan(e) else round(e / math.log(K), 4),
                                  "seconds": round(seconds, 2)})
            if args.out:
                record["finished"] = step == steps_run
                write_json(args.out, record)
        if step == steps_run:
            break
        if at + BATCH > len(train):
            perm, at = torch.randperm(len(train), generator=gen, device=dev), 0
        rows = perm[at:at + BATCH]
        at += BATCH
        g = torch.cat([photometric(crop(rows, IMAGE, GLOBAL_SCALE), gen) for _ in range(2)])
        loc = torch.cat([photometric(crop(rows, LOCAL, LOCAL_SCALE), gen) for _ in range(LOCALS)])
        for i, group in enumerate(opt.param_groups):
            group["lr"] = float(lr_s[step])
            if i == 0:
                group["weight_decay"] = float(wd_s[step])
        with torch.no_grad():
            t_out = teacher([g])
        s_out = student([g, loc])
        s_chunks = (s_out / STUDENT_T).chunk(2 + LOCALS)
        q_all = F.softmax((t_out - center) / temp_s[step], dim=-1)
        loss, terms = 0, 0
        for iq, q in enumerate(q_all.chunk(2)):
            for v in range(len(s_chunks)):
                if v != iq:
                    loss = loss + torch.sum(-q * F.log_softmax(s_chunks[v], dim=-1), dim=-1).mean()
                    terms += 1
        loss = loss / terms
        ent = -(q_all * torch.log(q_all.clamp_min(1e-30))).sum(-1).mean()
        ent_hist = ent_hist[-9:] + [ent]
        opt.zero_grad()
        loss.backward()
        # DINO's clip_gradients, per parameter: all norms at once and no read-back (a factor 1 leaves a gradient as is)
        grads = [p.grad for p in params_s if p.grad is not None]
        for grad, factor in zip(grads, (CLIP / (torch.stack(torch._foreach_norm(grads)) + 1e-6)).clamp(max=1.0).unbind()):
            grad.mul_(factor)
        if step < FREEZE:
            for n, p in student.named_parameters():
                if "last_layer" in n:
                    p.grad = None
        opt.step()
        with torch.no_grad():
            m = float(mom_s[step])
            torch._foreach_mul_(params_t, m)
            torch._foreach_add_(params_t, torch._foreach_mul(params_s, 1 - m))
            center = center * CENTER_M + t_out.mean(0, keepdim=True) * (1 - CENTER_M)
        if step % 10 == 0:
            ent = ent.item()
            print(f"{step},,{loss.item():.4f},{ent:.4f},{ent / math.log(K) * 100:.1f},{time.time() - t0:.0f}", flush=True)
    print(f"wall {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    cli = argparse.ArgumentParser()
    cli.add_argument("steps", type=int, nargs="?", default=600)
    cli.add_argument("--seed", type=int, default=0)
    cli.add_argument("--schedule", type=int, default=600)
    cli.add_argument("--threads", type=int, default=2)
    cli.add_argument("--knn-every", type=int, default=100)
    cli.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    cli.add_argument("--data", default="/usr/share/datasets/fashion-mnist", metavar="DIR",
                     help="the folder of {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz")
    cli.add_argument("--out", metavar="FILE.json", help="the k-NN curve and the run's settings, rewritten after each score")
    cli.add_argument("--score", metavar="FILE.safetensors",
                     help="no training: the 20-NN of this backbone (e.g. the engine's backbone.safetensors) as above")
    cli.add_argument("--crops", choices=["grid", "pil"], default="grid",
                     help="grid: continuous boxes, bilinear, by grid_sample; pil: torchvision's RandomResizedCrop on PIL images, bicubic")
    pair = lambda v: tuple(float(x) for x in v.split(","))
    recipe = {"prototypes": ("K", int), "lr": ("LR", float), "momentum": ("MOM", float), "teacher_temp": ("T_END", float),
              "warmup_teacher_temp": ("T_WARM", float), "center_momentum": ("CENTER_M", float),
              "local_crops": ("LOCALS", int), "global_scale": ("GLOBAL_SCALE", pair), "local_scale": ("LOCAL_SCALE", pair),
              "batch": ("BATCH", int)}
    for flag, (_, kind) in recipe.items():
        cli.add_argument("--" + flag.replace("_", "-"), type=kind)
    args = cli.parse_args()
    for flag, (name, _) in recipe.items():
        if getattr(args, flag) is not None:
            globals()[name] = getattr(args, flag)
    if args.device == "cuda" and args.crops == "pil":
        cli.error("--crops pil cuts crops on the CPU with PIL; use --crops grid with --device cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        cli.error(f"--device cuda: this torch ({torch.__version__}) sees no CUDA device")
    if not os.path.isdir(args.data):
        cli.error(f"--data {args.data}: expected the folder of the Fashion-MNIST IDX files, it does not exist")
    if args.steps > args.schedule:
        cli.error(f"steps ({args.steps}) exceed the schedule's --schedule ({args.schedule})")
    torch.set_num_threads(args.threads)
    main(args)
