#!/usr/bin/python3
"""The PyTorch yardstick for `bench vit --model default`: the same ViT (28 px, patch 7, width 64, depth 4, 2 heads,
MLP 256, pre-norm blocks with qkv bias, exact GELU, LayerNorm eps 1e-6, a 10-class head) and the same steps as
bench/vit.ts, on the CPU: inference (the CLS feature, no head, no graph), a full fine-tuning step and a linear-probe
step (zero_grad, cross-entropy, backward, SGD with momentum 0.9). Prints images/s per case, the median of the timed
runs; the cases take their timed runs in turns, as bench vit does.

Run with Debian's python3 and python3-torch (1.13): /usr/bin/python3 scripts/torch-vit-bench.py [--batch 32]
[--reps 30] [--threads 2] [--json]. Not part of npm test.
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, width, heads, hidden):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.act = nn.GELU()

    def forward(self, x):
        B, N, C = x.shape
        H = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(B, N, 3, H, C // H).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        p = ((q @ k.transpose(-2, -1)) * (C // H) ** -0.5).softmax(dim=-1)
        x = x + self.proj((p @ v).transpose(1, 2).reshape(B, N, C))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class Vit(nn.Module):
    def __init__(self, size=28, patch=7, width=64, depth=4, heads=2, hidden=256, classes=10):
        super().__init__()
        tokens = (size // patch) ** 2
        self.patch_embed = nn.Conv2d(3, width, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + tokens, width))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*[Block(width, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, classes)

    def features(self, images):
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.norm(self.blocks(x)[:, 0])

    def forward(self, images):
        return self.head(self.features(images))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    images = torch.randn(args.batch, 3, 28, 28)
    labels = torch.arange(args.batch) % 10

    def inference_case():
        model = Vit().eval()

        def run():
            with torch.no_grad():
                model.features(images)

        return run

    def train_case(linear):
        model = Vit()
        if linear:
            for p in model.parameters():
                p.requires_grad_(False)
            model.head.requires_grad_(True)
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)

        def run():
            opt.zero_grad()
            nn.functional.cross_entropy(model(images), labels).backward()
            opt.step()

        return run

    cases = {"inference": inference_case(), "train full": train_case(False), "train linear": train_case(True)}
    times = {name: [] for name in cases}
    for run in cases.values():
        run()  # warm-up
    for _ in range(args.reps):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    rows = [{"case": name, "imagesPerSecond": args.batch / statistics.median(t)} for name, t in times.items()]
    if args.json:
        print(json.dumps({"torch": torch.__version__, "threads": args.threads, "batch": args.batch, "rows": rows}))
    else:
        print(f"PyTorch {torch.__version__}, {args.threads} threads, batch {args.batch}")
        for row in rows:
            print(f"{row['case']:<14}{row['imagesPerSecond']:9.1f} img/s")


if __name__ == "__main__":
    main()
