"""Independent plain implementations of the transformer workload, timed side by side with dlbench's adapters.

One plain implementation per framework, written from docs/workloads.md with nothing from dlbench's adapters:
weights as plain float32 tensors/arrays, every layer a basic op of that framework (PyTorch ``addmm``,
``layer_norm``, ``softmax``, ``gelu``; TensorFlow ``tf.matmul``, ``tf.nn.moments``, ``tf.nn.softmax``,
``tf.nn.gelu`` under one ``tf.function``; JAX ``jnp`` ops under ``jax.jit``), no Keras or Flax layer classes,
attention as matmul, masked softmax, matmul, the gradient of every weight by the framework's autodiff.

For each framework and thread count a child process (pinned to that many cores before the framework is
imported, with the adapter's own worker environment and thread settings) builds the plain implementation and
every transformer variant of the adapter at the same batch size, warms each up, then times them in
interleaved rounds: round r calls every implementation once per pass, so that a change in the machine's
load hits all of them alike. It prints the medians and the ratio adapter / plain of the same framework.

    python benchmarks/transformer_plain.py [--batch-size 8] [--threads 1,2] [--repeats 7]
                                           [--frameworks torch,tensorflow,jax]

The goal (issue 15) is every adapter variant within 10% of its framework's plain implementation. On a shared
machine every wall time stretches; the interleaving makes the ratios fairer than the absolute times, which
are lower bounds of the speed (quote the load, ``uptime``, with them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

VOCAB, WIDTH, HEADS, FF, LAYERS, SEQ, CLASSES = 10_000, 256, 4, 1024, 4, 128, 2
EPS, MASK = 1e-5, -1e9
PASSES = ("forward", "gradient")
Timed = Callable[[], Any]  # one call of a pass, including the wait for its result


def plain_data(batch_size: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Seeded weights (Glorot-uniform matrices, zero biases, unit gammas), token ids with IMDB-like right
    padding, the float mask of valid tokens and the labels, as NumPy arrays every framework starts from."""
    rng = np.random.default_rng(0)

    def glorot(fan_in: int, fan_out: int) -> np.ndarray:
        limit = (6.0 / (fan_in + fan_out)) ** 0.5
        return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)

    weights = {"table": glorot(VOCAB, WIDTH), "positions": glorot(SEQ, WIDTH)}
    for i in range(LAYERS):
        for name, (rows, cols) in {"wq": (WIDTH, WIDTH), "wk": (WIDTH, WIDTH), "wv": (WIDTH, WIDTH),
                                   "wo": (WIDTH, WIDTH), "w1": (WIDTH, FF), "w2": (FF, WIDTH)}.items():
            weights[f"{i}.{name}"] = glorot(rows, cols)
        for name, size in {"bq": WIDTH, "bk": WIDTH, "bv": WIDTH, "bo": WIDTH, "c1": FF, "c2": WIDTH,
                           "b1": WIDTH, "b2": WIDTH}.items():
            weights[f"{i}.{name}"] = np.zeros(size, np.float32)
        weights[f"{i}.g1"] = np.ones(WIDTH, np.float32)
        weights[f"{i}.g2"] = np.ones(WIDTH, np.float32)
    weights.update(gf=np.ones(WIDTH, np.float32), bf=np.zeros(WIDTH, np.float32), wc=glorot(WIDTH, CLASSES),
                   bc=np.zeros(CLASSES, np.float32))
    lengths = np.clip(np.round(np.exp(rng.normal(np.log(174), 0.75, batch_size))), 5, SEQ).astype(np.int64)
    mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype(np.float32)
    tokens = (rng.integers(1, VOCAB, (batch_size, SEQ)) * mask).astype(np.int32)
    labels = rng.integers(0, CLASSES, batch_size).astype(np.int32)
    return weights, tokens, mask, labels


# ----------------------------------------------------------------------------------------------------------
# The three plain implementations: each returns {pass: timed call}
# ----------------------------------------------------------------------------------------------------------
def plain_torch(batch_size: int) -> dict[str, Timed]:
    import torch
    import torch.nn.functional as F

    arrays, tokens_np, mask_np, labels_np = plain_data(batch_size)
    w = {k: torch.from_numpy(v).requires_grad_() for k, v in arrays.items()}
    weights = list(w.values())
    tokens, labels = torch.from_numpy(tokens_np).long(), torch.from_numpy(labels_np).long()
    mask = torch.from_numpy(mask_np)
    key_bias = (1.0 - mask)[:, None, None, :] * MASK
    n = batch_size

    def logits() -> torch.Tensor:
        h = (w["table"][tokens] + w["positions"]).reshape(n * SEQ, WIDTH)
        for i in range(LAYERS):
            p = {k: w[f"{i}.{k}"] for k in ("g1", "b1", "wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo", "g2", "b2",
                                             "w1", "c1", "w2", "c2")}
            a = F.layer_norm(h, (WIDTH,), p["g1"], p["b1"], EPS)

            def heads(wt: torch.Tensor, b: torch.Tensor, a: torch.Tensor = a) -> torch.Tensor:
                return torch.addmm(b, a, wt).view(n, SEQ, HEADS, -1).transpose(1, 2)

            q, k, v = heads(p["wq"], p["bq"]), heads(p["wk"], p["bk"]), heads(p["wv"], p["bv"])
            probs = torch.softmax(q @ k.transpose(-2, -1) * (WIDTH // HEADS) ** -0.5 + key_bias, dim=-1)
            context = (probs @ v).transpose(1, 2).reshape(n * SEQ, WIDTH)
            h = h + torch.addmm(p["bo"], context, p["wo"])
            f = F.gelu(torch.addmm(p["c1"], F.layer_norm(h, (WIDTH,), p["g2"], p["b2"], EPS), p["w1"]))
            h = h + torch.addmm(p["c2"], f, p["w2"])
        final = F.layer_norm(h, (WIDTH,), w["gf"], w["bf"], EPS).view(n, SEQ, WIDTH)
        pooled = (final * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
        return torch.addmm(w["bc"], pooled, w["wc"])

    def forward() -> Any:
        with torch.inference_mode():
            return logits()

    def gradient() -> Any:
        return torch.autograd.grad(F.cross_entropy(logits(), labels), weights)

    return {"forward": forward, "gradient": gradient}


def plain_tensorflow(batch_size: int) -> dict[str, Timed]:
    import tensorflow as tf

    arrays, tokens_np, mask_np, labels_np = plain_data(batch_size)
    w = {k: tf.Variable(v) for k, v in arrays.items()}
    variables = list(w.values())
    tokens, mask, labels = tf.constant(tokens_np), tf.constant(mask_np), tf.constant(labels_np)
    n = batch_size

    def layer_norm(x: tf.Tensor, gamma: tf.Variable, beta: tf.Variable) -> tf.Tensor:
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + EPS) * gamma + beta

    def logits() -> tf.Tensor:
        h = tf.reshape(tf.gather(w["table"], tokens) + w["positions"], [n * SEQ, WIDTH])
        key_bias = ((1.0 - mask) * MASK)[:, None, None, :]
        for i in range(LAYERS):
            p = {k: w[f"{i}.{k}"] for k in ("g1", "b1", "wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo", "g2", "b2",
                                             "w1", "c1", "w2", "c2")}
            a = layer_norm(h, p["g1"], p["b1"])

            def heads(wt: tf.Variable, b: tf.Variable, a: tf.Tensor = a) -> tf.Tensor:
                return tf.transpose(tf.reshape(tf.matmul(a, wt) + b, [n, SEQ, HEADS, -1]), [0, 2, 1, 3])

            q, k, v = heads(p["wq"], p["bq"]), heads(p["wk"], p["bk"]), heads(p["wv"], p["bv"])
            scores = tf.matmul(q, k, transpose_b=True) * (WIDTH // HEADS) ** -0.5 + key_bias
            context = tf.reshape(tf.transpose(tf.matmul(tf.nn.softmax(scores), v), [0, 2, 1, 3]), [n * SEQ, WIDTH])
            h = h + tf.matmul(context, p["wo"]) + p["bo"]
            f = tf.nn.gelu(tf.matmul(layer_norm(h, p["g2"], p["b2"]), p["w1"]) + p["c1"], approximate=False)
            h = h + tf.matmul(f, p["w2"]) + p["c2"]
        final = tf.reshape(layer_norm(h, w["gf"], w["bf"]), [n, SEQ, WIDTH])
        pooled = tf.reduce_sum(final * mask[:, :, None], axis=1) / tf.reduce_sum(mask, axis=1, keepdims=True)
        return tf.matmul(pooled, w["wc"]) + w["bc"]

    @tf.function
    def forward() -> tf.Tensor:
        return logits()

    @tf.function
    def gradient() -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits()))
        return tape.gradient(loss, variables)

    return {"forward": forward, "gradient": gradient}


def plain_jax(batch_size: int) -> dict[str, Timed]:
    import jax
    import jax.numpy as jnp

    arrays, tokens_np, mask_np, labels_np = plain_data(batch_size)
    params = jax.device_put(arrays)
    tokens, mask, labels = jnp.asarray(tokens_np), jnp.asarray(mask_np), jnp.asarray(labels_np)
    n = batch_size

    def layer_norm(x: jax.Array, gamma: jax.Array, beta: jax.Array) -> jax.Array:
        mean = x.mean(-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(variance + EPS) * gamma + beta

    def logits(w: dict[str, jax.Array], tokens: jax.Array, mask: jax.Array) -> jax.Array:
        h = (w["table"][tokens] + w["positions"]).reshape(n * SEQ, WIDTH)
        key_bias = ((1.0 - mask) * MASK)[:, None, None, :]
        for i in range(LAYERS):
            p = {k: w[f"{i}.{k}"] for k in ("g1", "b1", "wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo", "g2", "b2",
                                             "w1", "c1", "w2", "c2")}
            a = layer_norm(h, p["g1"], p["b1"])
            q, k, v = ((a @ p[f"w{x}"] + p[f"b{x}"]).reshape(n, SEQ, HEADS, -1) for x in "qkv")
            scores = jnp.einsum("nqhd,nkhd->nhqk", q, k) * (WIDTH // HEADS) ** -0.5 + key_bias
            context = jnp.einsum("nhqk,nkhd->nqhd", jax.nn.softmax(scores, axis=-1), v).reshape(n * SEQ, WIDTH)
            h = h + context @ p["wo"] + p["bo"]
            f = jax.nn.gelu(layer_norm(h, p["g2"], p["b2"]) @ p["w1"] + p["c1"], approximate=False)
            h = h + f @ p["w2"] + p["c2"]
        final = layer_norm(h, w["gf"], w["bf"]).reshape(n, SEQ, WIDTH)
        pooled = (final * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled @ w["wc"] + w["bc"]

    def loss(w: dict[str, jax.Array], tokens: jax.Array, mask: jax.Array, labels: jax.Array) -> jax.Array:
        log_probs = jax.nn.log_softmax(logits(w, tokens, mask))
        return -jnp.take_along_axis(log_probs, labels[:, None], axis=1).mean()

    forward_fn, gradient_fn = jax.jit(logits), jax.jit(jax.grad(loss))
    return {"forward": lambda: jax.block_until_ready(forward_fn(params, tokens, mask)),
            "gradient": lambda: jax.block_until_ready(gradient_fn(params, tokens, mask, labels))}


PLAIN: dict[str, Callable[[int], dict[str, Timed]]] = {
    "torch": plain_torch, "tensorflow": plain_tensorflow, "jax": plain_jax,
}


# ----------------------------------------------------------------------------------------------------------
# The adapter's cases, and the interleaved timing (in the child)
# ----------------------------------------------------------------------------------------------------------
def adapter_cases(framework: str, batch_size: int, threads: int) -> dict[str, dict[str, Timed]]:
    """Every transformer variant of dlbench's adapter, as the runner builds and calls it."""
    from dlbench.frameworks.base import BuildRequest, CaseUnavailable
    from dlbench.frameworks.registry import get_adapter
    from dlbench.workloads import get_workload, make_batch
    from dlbench.workloads.weights import initial_weights

    adapter = get_adapter(framework)
    adapter.initialize("cpu", threads)
    cases: dict[str, dict[str, Timed]] = {}
    for variant in adapter.variants:
        if not adapter.applies(variant, "transformer"):
            continue
        request = BuildRequest(get_workload("transformer"), "", make_batch("transformer", batch_size, 0),
                               initial_weights("transformer", 0), variant, "cpu")
        try:
            built = adapter.build(request)
        except CaseUnavailable:  # a GPU-only variant, or one that needs a worker of its own
            continue

        def timed(pass_: str, built: Any = built) -> Timed:
            run = built.prepare(pass_)
            return lambda: built.sync(run())

        cases[variant] = {pass_: timed(pass_) for pass_ in PASSES}
    return cases


def child(framework: str, batch_size: int, threads: int, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Median wall ms and median process CPU ms of every (implementation, pass), timed in interleaved rounds
    after two warm-up calls."""
    implementations = {**adapter_cases(framework, batch_size, threads), "plain": PLAIN[framework](batch_size)}
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for name, passes in implementations.items():
        for pass_, call in passes.items():
            call()  # compilation, tracing, first-call allocations
            call()
            samples[(name, pass_)] = []
    for _ in range(repeats):
        for (name, pass_), times in samples.items():
            start, cpu = time.perf_counter(), time.process_time()
            implementations[name][pass_]()
            times.append(((time.perf_counter() - start) * 1e3, (time.process_time() - cpu) * 1e3))
    medians: dict[str, dict[str, list[float]]] = {}
    for (name, pass_), times in samples.items():
        medians.setdefault(name, {})[pass_] = [statistics.median(t[0] for t in times),
                                               statistics.median(t[1] for t in times)]
    return medians


def run_child(framework: str, batch_size: int, threads: int, repeats: int) -> dict[str, dict[str, list[float]]]:
    """One child process per (framework, threads): pinned to ``threads`` cores before any framework loads,
    with the adapter's worker environment (thread variables, TF logging, JAX platform)."""
    from dlbench.frameworks.registry import get_adapter

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), **get_adapter(framework).worker_env("cpu", threads)}
    command = [sys.executable, __file__, "--child", framework, "--batch-size", str(batch_size),
               "--threads", str(threads), "--repeats", str(repeats)]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


Row = tuple[str, int, str, dict[str, list[float]], dict[str, list[float]]]


def print_table(rows: list[Row], batch_size: int) -> None:
    """Wall medians and their ratio adapter / plain; the ratio of the CPU-time medians beside it (on a loaded
    machine a one-thread process's CPU time per call is closer to its quiet-machine wall time)."""
    print(f"\ntransformer b{batch_size}: median wall ms; ratio = adapter / plain implementation of the same "
          "framework (wall, and CPU time in brackets)")
    print(f"{'framework':10s} {'threads':>7s} {'variant':16s} {'fwd':>8s} {'plain':>8s} {'ratio':>13s}   "
          f"{'grad':>8s} {'plain':>8s} {'ratio':>13s}")
    for framework, threads, variant, mine, plain in rows:
        cells = "   ".join(f"{mine[p][0]:8.1f} {plain[p][0]:8.1f} {mine[p][0] / plain[p][0]:5.2f} "
                           f"({mine[p][1] / plain[p][1]:5.2f})" for p in PASSES)
        print(f"{framework:10s} {threads:7d} {variant:16s} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--frameworks", default="torch,tensorflow,jax")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        threads = int(args.threads)
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:threads]))
        print(json.dumps(child(args.child, args.batch_size, threads, args.repeats)), flush=True)
        return
    print(f"load before: {os.getloadavg()}", flush=True)
    rows = []
    for framework in args.frameworks.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            medians = run_child(framework, args.batch_size, threads, args.repeats)
            plain = medians.pop("plain")
            for variant, mine in medians.items():
                rows.append((framework, threads, variant, mine, plain))
            print(f"{framework} t{threads}: plain {plain} adapter {medians}", flush=True)
    print_table(rows, args.batch_size)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
