"""The built PyTorch case: one network with its batch on the device, and the timed passes over it, run under
the process-wide flags of its variant (:mod:`.switches`)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dlbench.frameworks.base import BuiltCase, DeviceTimer, Evaluation
from dlbench.frameworks.layouts import Binding
from dlbench.frameworks.torch.networks import ForwardFn, LossFn, _Inputs, _Net
from dlbench.frameworks.torch.switches import Switches, apply_switches
from dlbench.frameworks.torch.timer import CudaEventTimer
from dlbench.workloads import check_pass

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class _State:
    """Everything a built case holds on to; dropped as a whole by ``close``."""

    net: _Net
    inputs: _Inputs
    trainable: tuple[Binding, ...]
    params: tuple[torch.nn.Parameter, ...]  # in the order of ``trainable``
    forward: ForwardFn  # the variant's functions (compiled or not)
    output_and_loss: LossFn
    switches: Switches = Switches()  # the process-wide flags of the variant, in effect whenever the case runs
    restore: Switches | None = None  # the flags found before the build, put back by close()

    @property
    def targets(self) -> tuple[torch.Tensor, ...]:
        """What the gradient pass differentiates with respect to: the trainable parameters, and for a layer
        benchmark the input last (a convolution's backward computes both)."""
        return (*self.params, self.inputs.x) if self.net.layer else self.params


class TorchCase(BuiltCase):
    """One built PyTorch model with its batch on the device."""

    def __init__(self, state: _State, device: torch.device, compiled: bool, trainable_params: int,
                 loss_scale: float = 1.0, dtypes: dict[str, str] | None = None,
                 traits: dict[str, str] | None = None) -> None:
        import torch

        self._torch = torch
        self._traits = dict(traits or {})
        self._loss_scale = loss_scale
        self._dtypes = dict(dtypes or {})
        self._state: _State | None = state
        self._device = device
        self._cuda = device.type == "cuda"
        self._compiled = compiled
        self._trainable_params = trainable_params

    def _live(self) -> _State:
        if self._state is None:
            raise RuntimeError("this PyTorch case was closed")
        return self._state

    @property
    def trainable_params(self) -> int:
        return self._trainable_params

    def prepare(self, pass_: str) -> Callable[[], Any]:
        check_pass(pass_)
        state = self._live()
        apply_switches(self._torch, state.switches)  # in effect for the timed calls that follow
        return self._pass(pass_, state.forward, state.output_and_loss)

    def _pass(self, pass_: str, forward: ForwardFn, output_and_loss: LossFn) -> Callable[[], Any]:
        """The timed callable: everything it needs is bound here, so a call does no lookups."""
        state = self._live()
        inputs, params = state.inputs, state.targets
        inference_mode, grad = self._torch.inference_mode, self._torch.autograd.grad
        if pass_ == "forward":

            def forward_pass() -> torch.Tensor:
                with inference_mode():
                    return forward(inputs, False)

            return forward_pass
        if pass_ == "gradient" and self._loss_scale != 1.0:
            scale, unscale, foreach_mul = self._loss_scale, 1.0 / self._loss_scale, self._torch._foreach_mul_

            def scaled_gradient_pass() -> tuple[torch.Tensor, ...]:
                # fp16: static loss scale, then unscale the float32 gradients in one fused foreach op
                # (what torch.amp.GradScaler does, minus its inf/nan check and scale update).
                _, loss = output_and_loss(inputs, True)
                grads = grad(loss * scale, params)
                foreach_mul(grads, unscale)
                return grads

            return scaled_gradient_pass
        if pass_ == "gradient":

            def gradient_pass() -> tuple[torch.Tensor, ...]:
                _, loss = output_and_loss(inputs, True)
                return grad(loss, params)

            return gradient_pass
        raise AssertionError(pass_)  # unreachable: prepare checked the name

    def sync(self, handle: Any) -> None:
        if self._cuda:
            self._torch.cuda.synchronize(self._device)

    def evaluate(self) -> Evaluation:
        """Dropout is off here whatever the request said (``training=False``), so that every framework
        computes the same function; the variant's own (possibly compiled) functions are used. The output is
        the forward pass's and the loss and gradients the gradient pass's, as in every adapter: for a network
        whose two passes differ beyond dropout (batch norm: running statistics in inference, the batch's in
        training) verify then checks both."""
        torch = self._torch
        state = self._live()
        apply_switches(torch, state.switches)
        with torch.no_grad():
            out = state.forward(state.inputs, False)
        with torch.enable_grad():
            _, loss = state.output_and_loss(state.inputs, False)
            grads = torch.autograd.grad(loss * self._loss_scale, state.params)
            if self._loss_scale != 1.0:
                grads = tuple(g / self._loss_scale for g in grads)
        gradients = {
            b.canonical: np.ascontiguousarray(b.to_canonical(g.detach().cpu().numpy()))
            for b, g in zip(state.trainable, grads, strict=True)
        }
        if state.net.layer:
            out = out.permute(0, 2, 3, 1)  # the convolution's output in the canonical NHWC
        output = np.ascontiguousarray(out.detach().float().cpu().numpy())  # NumPy has no bfloat16
        return Evaluation(output=output, loss=float(loss.item()), gradients=gradients)

    def dtypes(self) -> dict[str, str]:
        return dict(self._dtypes)

    def traits(self) -> dict[str, str]:
        return dict(self._traits)

    def device_timer(self) -> DeviceTimer | None:
        return CudaEventTimer(self._torch) if self._cuda else None

    def reset_peak_memory(self) -> None:
        if self._cuda:
            self._torch.cuda.reset_peak_memory_stats(self._device)

    def peak_memory_bytes(self, pass_: str) -> int | None:
        if self._cuda:
            return int(self._torch.cuda.max_memory_allocated(self._device))
        return None

    def framework_flops(self, pass_: str) -> float | None:
        """One call counted by ``FlopCounterMode`` (2 per multiply-accumulate of matmuls and convolutions,
        backward included for the gradient pass). The uncompiled functions are counted: the dispatcher
        does not see inside compiled kernels, and the arithmetic is the same."""
        state = self._live()
        if not state.net.flops_visible:
            return None
        try:
            from torch.utils.flop_counter import FlopCounterMode

            apply_switches(self._torch, state.switches)
            run = self._pass(pass_, state.net.forward, state.net.output_and_loss)
            with FlopCounterMode(display=False) as counter:
                self.sync(run())
            return float(counter.get_total_flops())
        except Exception:  # optional information: never let it fail a case
            return None

    def close(self) -> None:
        state, self._state = self._state, None
        if state is not None and state.restore is not None:
            apply_switches(self._torch, state.restore)  # the next case in this worker starts from them
        if self._compiled:
            # Dynamo caches compiled code per code object; the next case must not hit stale entries or
            # the recompile limit (after which it would silently run eagerly).
            self._torch._dynamo.reset()
        gc.collect()
        if self._cuda:
            self._torch.cuda.empty_cache()
