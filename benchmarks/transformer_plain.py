"""An independent plain implementation of the transformer workload, to check the adapters' speed against.

Written from workloads.md with nothing from dlbench's adapters: weights as plain float32 tensors, every layer a
``torch`` op (``addmm``, ``layer_norm``, ``softmax``, ``gelu``), attention as matmul, masked softmax, matmul,
the gradient by ``torch.autograd.grad`` of every weight. Same shapes, seeded token ids with right padding,
batch 8, one process per thread count (pinned with ``sched_setaffinity`` and ``torch.set_num_threads``).

    python benchmarks/transformer_plain.py [--batch-size 8] [--threads 1,2] [--repeats 15]

Prints the median and the minimum of each pass in ms, and the process CPU time per iteration. Compare the
medians with ``dlbench run --suite transformer --batch-size 8 --variant all``: the goal is the adapters within
10% of this script. On a machine shared with other processes every wall time stretches (the minimum least),
while a one-thread run's CPU time per iteration stays near a quiet machine's wall time: compare it with
``median_ms x cpu_per_wall`` of a dlbench row, and say so when quoting either.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

VOCAB, WIDTH, HEADS, FF, LAYERS, SEQ, CLASSES = 10_000, 256, 4, 1024, 4, 128, 2


def measure(batch_size: int, threads: int, repeats: int) -> dict[str, tuple[float, float, float]]:
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:threads]))
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)

    def glorot(fan_in: int, fan_out: int) -> torch.Tensor:
        limit = (6.0 / (fan_in + fan_out)) ** 0.5
        return ((torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * limit).requires_grad_()

    def zeros(n: int) -> torch.Tensor:
        return torch.zeros(n).requires_grad_()

    def ones(n: int) -> torch.Tensor:
        return torch.ones(n).requires_grad_()

    table, positions = glorot(VOCAB, WIDTH), glorot(SEQ, WIDTH)
    layers = [
        {"g1": ones(WIDTH), "b1": zeros(WIDTH), "wq": glorot(WIDTH, WIDTH), "bq": zeros(WIDTH),
         "wk": glorot(WIDTH, WIDTH), "bk": zeros(WIDTH), "wv": glorot(WIDTH, WIDTH), "bv": zeros(WIDTH),
         "wo": glorot(WIDTH, WIDTH), "bo": zeros(WIDTH), "g2": ones(WIDTH), "b2": zeros(WIDTH),
         "w1": glorot(WIDTH, FF), "c1": zeros(FF), "w2": glorot(FF, WIDTH), "c2": zeros(WIDTH)}
        for _ in range(LAYERS)
    ]
    gf, bf, wc, bc = ones(WIDTH), zeros(WIDTH), glorot(WIDTH, CLASSES), zeros(CLASSES)
    weights = [table, positions, *(w for layer in layers for w in layer.values()), gf, bf, wc, bc]

    lengths = torch.clamp(torch.exp(torch.randn(batch_size, generator=gen) * 0.75 + 5.16).round(), 5, SEQ).long()
    valid = torch.arange(SEQ)[None, :] < lengths[:, None]
    tokens = torch.randint(1, VOCAB, (batch_size, SEQ), generator=gen) * valid
    labels = torch.randint(0, CLASSES, (batch_size,), generator=gen)
    mask = valid.float()
    key_bias = (~valid).float()[:, None, None, :] * -1e9
    n = batch_size

    def logits() -> torch.Tensor:
        h = (table[tokens] + positions).reshape(n * SEQ, WIDTH)
        for p in layers:
            a = F.layer_norm(h, (WIDTH,), p["g1"], p["b1"], 1e-5)

            def heads(w: torch.Tensor, b: torch.Tensor, a: torch.Tensor = a) -> torch.Tensor:
                return torch.addmm(b, a, w).view(n, SEQ, HEADS, -1).transpose(1, 2)

            q, k, v = heads(p["wq"], p["bq"]), heads(p["wk"], p["bk"]), heads(p["wv"], p["bv"])
            probs = torch.softmax(q @ k.transpose(-2, -1) * (WIDTH // HEADS) ** -0.5 + key_bias, dim=-1)
            context = (probs @ v).transpose(1, 2).reshape(n * SEQ, WIDTH)
            h = h + torch.addmm(p["bo"], context, p["wo"])
            f = F.gelu(torch.addmm(p["c1"], F.layer_norm(h, (WIDTH,), p["g2"], p["b2"], 1e-5), p["w1"]))
            h = h + torch.addmm(p["c2"], f, p["w2"])
        final = F.layer_norm(h, (WIDTH,), gf, bf, 1e-5).view(n, SEQ, WIDTH)
        pooled = (final * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
        return torch.addmm(bc, pooled, wc)

    def forward() -> None:
        with torch.inference_mode():
            logits()

    def gradient() -> None:
        torch.autograd.grad(F.cross_entropy(logits(), labels), weights)

    results = {}
    for name, fn in (("forward", forward), ("gradient", gradient)):
        fn()
        times = []
        cpu_start = time.process_time()
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
        cpu_ms = (time.process_time() - cpu_start) * 1e3 / repeats
        results[name] = (statistics.median(times), min(times), cpu_ms)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        for name, (median, best, cpu) in measure(args.batch_size, args.child, args.repeats).items():
            print(f"plain torch  b{args.batch_size}  t{args.child}  {name:8s}  median {median:8.1f} ms  "
                  f"min {best:8.1f} ms  cpu {cpu:8.1f} ms/iteration", flush=True)
        return
    for threads in (int(t) for t in args.threads.split(",")):
        subprocess.run([sys.executable, __file__, "--batch-size", str(args.batch_size), "--repeats",
                        str(args.repeats), "--child", str(threads)], check=True,
                       env={**os.environ, "OMP_NUM_THREADS": str(threads)})


if __name__ == "__main__":
    main()
