"""The five built-in networks as workload plugins: what ``pyproject.toml`` registers under ``dlbench.workloads``.

They go through the same door as any third-party workload (:mod:`dlbench.workloads.registry`): the
definition from :mod:`dlbench.workloads.definitions`, dlbench's own batch generator, each built-in adapter's
builder and the float64 reference of :mod:`dlbench.verify.reference`, all named by ``module:attribute`` so
that nothing heavy is imported to list them.
"""

from __future__ import annotations

from dlbench.workloads.definitions import WORKLOADS
from dlbench.workloads.plugin import WorkloadPlugin

_TORCH = "dlbench.frameworks.torch"
_TF = "dlbench.frameworks.tensorflow"
_JAX = "dlbench.frameworks.jax.networks"
_REFERENCE = "dlbench.verify.reference"


def _builtin(name: str, torch: str, tensorflow: str, jax: str, reference: str,
             input_dtype: str = "float32") -> WorkloadPlugin:
    workload = WORKLOADS[name]
    return WorkloadPlugin(
        workload=workload,
        builders={"torch": torch, "tensorflow": tensorflow, "jax": f"{_JAX}:{jax}"},
        reference=f"{_REFERENCE}:{reference}",
        declared_params=workload.total_params(),
        input_dtype=input_dtype,
    )


LENET = _builtin("lenet", f"{_TORCH}.networks:_lenet", f"{_TF}.networks:_LeNet", "lenet_network", "_lenet")
ALEXNET = _builtin("alexnet", f"{_TORCH}.networks:_alexnet", f"{_TF}.networks:_AlexNet", "alexnet_network",
                   "_alexnet")
AUTOENCODER = _builtin("autoencoder", f"{_TORCH}.networks:_autoencoder", f"{_TF}.networks:_Autoencoder",
                       "autoencoder_network", "_autoencoder")
LSTM = _builtin("lstm", f"{_TORCH}.networks:_lstm", f"{_TF}.networks:_Lstm", "lstm_network", "_lstm",
                input_dtype="int32")
TRANSFORMER = _builtin("transformer", f"{_TORCH}.transformer:_transformer", f"{_TF}.transformer:_Transformer",
                       "transformer_network", "_transformer", input_dtype="int32")

# The order in which listings, default suites and reports show the built-ins (plugins follow, by name).
BUILTIN_ORDER: tuple[str, ...] = tuple(WORKLOADS)
