"""One Keras 3 model on three backends: the ``keras-jax``, ``keras-tensorflow`` and ``keras-torch`` adapters.

A Keras model of a dlbench workload (``--workload keras:lenet=examples.keras_lenet:build_model``, or a workload
plugin's ``keras`` builder), or a Keras model of its own (``keras:pkg.mod:fn``, its definition read from the
model: :mod:`dlbench.workloads.keras_describe`), see :mod:`dlbench.workloads.keras_models`, is built in a worker
per backend, with
``KERAS_BACKEND`` set before Keras is imported and the backend framework set up by its own native adapter
(threads, platforms, precision settings: the same worker environment as the native ``jax``, ``tensorflow`` and
``torch`` workers). The canonical weights are loaded into the model by name (``bindings.py``), the forward pass
is the model's inference call and the gradient pass the workload's loss and its gradients with respect to every
trainable weight, each with the backend's own autodiff (``case.py``): ``jax.grad`` over ``model.stateless_call``
(jitted ahead of time), ``tf.GradientTape`` inside a ``tf.function``, ``torch.autograd.grad``. The rows are the
workload's rows, beside the native implementations, so Keras's own overhead on each backend is visible.
"""
