"""The definition of a Keras model of its own (``keras:pkg.mod:fn``), read from the model in a child process.

A Keras model that implements no dlbench workload brings no definition, so dlbench derives one from the model
itself: its input shape (float32 inputs), its number of classes (the last axis of its 2-D logits), its trainable
weights in order (their paths as canonical names, their shapes, a seeded initialisation by kind: Glorot for
kernels, zeros for biases and betas, ones for gammas, uniform +-0.1 for any other vector) and its MACs per
sample (the kernels of its ``Dense`` and ``Conv`` layers times the positions they are applied at; other layers
count nothing). Building the model means importing Keras and a backend, which the parent never does: the
model is built in a child of the process kit (:func:`describe`), on the first installed backend, and the child
sends back a :class:`Described` (or :class:`DescribeFailed`, one line: the function is missing, raises, returns
no ``keras.Model``, has inputs or outputs dlbench cannot feed or judge).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from math import prod
from typing import Any

from dlbench.errors import SuiteError
from dlbench.formatting import one_line
from dlbench.process.child import ChildSpec, ask
from dlbench.process.messages import Channel, Codec, Message
from dlbench.process.placement import place
from dlbench.workloads.definitions import ParamSpec, Phase, Workload

BACKENDS = ("jax", "tensorflow", "torch")  # the first installed one builds the model to describe it
ENVIRONMENT = {"JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_TORCH_DEVICE": "cpu",
               "CUDA_VISIBLE_DEVICES": ""}
TIMEOUT_S = 300.0
PAPER_BATCH = 32  # the batch size of a derived workload when none is given


@dataclass(frozen=True)
class Described(Message):
    kind = "keras_described"
    input_shape: list[int]
    num_classes: int
    weights: list[list[Any]]  # [path, shape] of every trainable weight, in the model's order
    macs: int
    description: str


@dataclass(frozen=True)
class DescribeFailed(Message):
    kind = "keras_describe_failed"
    error: str


CODEC = Codec(Described, DescribeFailed)


def init_of(name: str, shape: tuple[int, ...]) -> str:
    last = name.rsplit(".", 1)[-1]
    if last in ("bias", "beta"):
        return "zeros"
    if last == "gamma":
        return "ones"
    return "glorot_uniform" if len(shape) >= 2 else "small"


def param_names(paths: list[str]) -> list[str]:
    """``conv1/kernel`` as ``conv1.kernel`` (the Keras adapters bind by these names); the whole path where the
    last two parts of two paths are the same."""
    short = [".".join(p.split("/")[-2:]) for p in paths]
    return short if len(set(short)) == len(short) else [p.replace("/", ".") for p in paths]


def workload_of(name: str, described: Described) -> Workload:
    """The derived definition: one phase named ``""`` that trains every weight and outputs logits."""
    names = param_names([str(path) for path, _ in described.weights])
    params = tuple(ParamSpec(n, tuple(int(d) for d in shape), init_of(n, tuple(shape)))
                   for n, (_, shape) in zip(names, described.weights, strict=True))
    phase = Phase("", tuple(p.name for p in params), max(1, int(described.macs)), "logits")
    return Workload(name=name, description=described.description, input_shape=tuple(described.input_shape),
                    num_classes=int(described.num_classes), params=params, phases=(phase,),
                    paper_batch_size=PAPER_BATCH)


def describe(entry: str, target: str) -> Described:
    """Build the model of ``target`` in a child and describe it; SuiteError, one line, when it cannot be."""
    backend = next((b for b in BACKENDS if importlib.util.find_spec(b) is not None), None)
    if importlib.util.find_spec("keras") is None or backend is None:
        raise SuiteError(f"{entry!r}: Keras 3 and a backend (jax, tensorflow or torch) are not installed here")
    spec = ChildSpec(module=__name__, placement=place(1), codec=CODEC,
                     env={**ENVIRONMENT, "KERAS_BACKEND": backend})
    answer = ask(spec, {"target": target, "entry": entry}, TIMEOUT_S)
    if isinstance(answer, Described):
        return answer
    if isinstance(answer, DescribeFailed):
        raise SuiteError(f"{entry!r}: {answer.error}")
    raise SuiteError(f"{entry!r}: the child that builds the model to describe it ended without an answer "
                     f"({one_line(str(answer))})")


def _macs(keras: Any, layer: Any) -> int:
    """A Dense or Conv layer's kernel size times the positions it is applied at, per sample."""
    kernel = getattr(layer, "kernel", None)
    if kernel is None or not isinstance(layer, keras.layers.Dense | keras.layers.Conv1D | keras.layers.Conv2D
                                        | keras.layers.Conv3D):
        return 0
    out = [int(d) for d in layer.output.shape[1:]]
    channels = int(kernel.shape[-1])
    return prod(out) // channels * prod(int(d) for d in kernel.shape)


def _layers(model: Any) -> list[Any]:
    """Every layer inside ``model``, nested models' included."""
    found = []
    for layer in getattr(model, "layers", ()):
        found.append(layer)
        found += _layers(layer)
    return found


def _description(keras: Any, model: Any) -> Described:
    inputs = list(getattr(model, "inputs", None) or ())
    if len(inputs) != 1:
        raise ValueError(f"the model has {len(inputs)} inputs; a Keras model of its own has one (build it "
                         f"with keras.Input, or write a workload plugin)")
    if str(inputs[0].dtype) != "float32":
        raise ValueError(f"the model's input is {inputs[0].dtype}; a Keras model of its own takes float32")
    shape = [int(d) for d in inputs[0].shape[1:]]
    outputs = list(getattr(model, "outputs", None) or ())
    if len(outputs) != 1 or len(outputs[0].shape) != 2:
        raise ValueError("the model's output is not one batch of logits [batch, classes]: the loss is "
                         "softmax cross-entropy")
    classes = int(outputs[0].shape[-1])
    weights = [[str(w.path), [int(d) for d in w.shape]] for w in model.trainable_weights]
    macs = sum(_macs(keras, layer) for layer in _layers(model))
    text = f"Keras model {model.name}: input {'x'.join(map(str, shape))}, {classes} classes"
    return Described(shape, classes, weights, macs, text)


def child_main(data: dict[str, Any], channel: Channel) -> None:
    """In the child: import the module, build the model, describe it (every failure one line)."""
    import keras  # noqa: PLC0415 - the backend was chosen by KERAS_BACKEND before this import

    from dlbench.workloads.keras_models import working_directory_importable

    target = str(data["target"])
    try:
        with working_directory_importable():
            builder = importlib.metadata.EntryPoint("keras", target, "dlbench.workloads").load()
    except Exception as exc:  # noqa: BLE001 - the user's module: its error, in one line
        channel.send(DescribeFailed(f"{target} failed to import: {one_line(exc)}"))
        return
    try:
        model = builder()
    except Exception as exc:  # noqa: BLE001
        channel.send(DescribeFailed(f"{target} raised {one_line(exc)}"))
        return
    if not isinstance(model, keras.Model):
        channel.send(DescribeFailed(f"{target} returned {type(model).__name__}, not a Keras 3 keras.Model"))
        return
    try:
        channel.send(_description(keras, model))
    except Exception as exc:  # noqa: BLE001
        channel.send(DescribeFailed(one_line(exc)))
