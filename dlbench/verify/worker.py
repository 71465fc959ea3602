"""Entry point of the isolated verify worker: ``python -m dlbench.verify.worker REQUEST.json``.

One worker per framework, because frameworks in one process interfere (TensorFlow imports JAX, thread pools
are fixed per process). The request names the framework by its registry name, so only an installed entry
point is ever imported. Each result is written to the request's directory as soon as it exists; the worker
then leaves with ``os._exit`` (framework interpreter shutdown is slow and sometimes hangs).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlbench.runner.worker import die_with_parent
from dlbench.verify.biases import DEFAULT_BIASES
from dlbench.verify.collect import ERROR, ImplResult, Target, evaluate_adapter, one_line
from dlbench.verify.transfer import write_result


@dataclass(frozen=True)
class WorkerRequest:
    framework: str
    variants: tuple[str, ...]
    targets: tuple[Target, ...]
    batch_size: int
    seed: int
    device: str
    threads: int
    out_dir: str
    biases: str = DEFAULT_BIASES  # which verification weights to build (see dlbench.verify.biases)

    def to_json(self) -> str:
        data: dict[str, Any] = dict(self.__dict__)
        data["targets"] = [[t.workload, t.phase] for t in self.targets]
        data["variants"] = list(self.variants)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> WorkerRequest:
        data = json.loads(text)
        data["targets"] = tuple(Target(w, p) for w, p in data["targets"])
        data["variants"] = tuple(data["variants"])
        return cls(**data)


def run(request: WorkerRequest) -> None:
    from dlbench.frameworks.registry import get_adapter

    out = Path(request.out_dir)
    counter = iter(range(10**9))

    def save(result: ImplResult) -> None:
        write_result(out, next(counter), result)

    try:
        adapter = get_adapter(request.framework)
    except Exception as exc:  # noqa: BLE001 - the parent reports it as the framework's error line
        for variant in request.variants:
            for target in request.targets:
                message = f"cannot load adapter: {one_line(exc)}"
                save(ImplResult(request.framework, variant, target, ERROR, message, biases=request.biases))
        return
    evaluate_adapter(
        adapter,
        request.targets,
        request.variants,
        request.batch_size,
        request.seed,
        request.device,
        request.threads,
        on_result=save,
        biases=request.biases,
    )


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        print("usage: python -m dlbench.verify.worker REQUEST.json", file=sys.stderr)
        os._exit(2)
    die_with_parent()  # like the benchmark workers: no orphan outlives a killed `dlbench verify`
    run(WorkerRequest.from_json(Path(argv[0]).read_text()))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
