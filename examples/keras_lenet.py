"""dlbench's LeNet as a Keras 3 model: the example of ``--workload keras:lenet=examples.keras_lenet:build_model``.

The same network as ``docs/workloads.md`` describes and every native implementation computes: two 5x5 valid
convolutions with tanh, each followed by a 2x2 max pool, flattened in H, W, C order (Keras' channels_last),
a 500-unit ReLU layer and 10 logits. The layers are named after the canonical parameters (``conv1`` holds
``conv1.kernel`` and ``conv1.bias``), which is how dlbench loads the canonical weights into it on every backend.
The model returns logits (no softmax): dlbench adds the workload's loss.

Run it from the repository root (so that ``examples`` is importable), on the three Keras backends beside the
native LeNet of each framework::

    dlbench run --workload keras:lenet=examples.keras_lenet:build_model \\
        --framework torch,tensorflow,jax,keras-jax,keras-tensorflow,keras-torch --threads 1 -b 64
    dlbench verify --workload keras:lenet=examples.keras_lenet:build_model
"""

from __future__ import annotations

import keras


def build_model() -> keras.Model:
    """An uncompiled Keras 3 LeNet (whatever backend ``KERAS_BACKEND`` selected)."""
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = keras.layers.Conv2D(20, 5, activation="tanh", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(50, 5, activation="tanh", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(500, activation="relu", name="fc1")(x)
    logits = keras.layers.Dense(10, name="fc2")(x)
    return keras.Model(inputs, logits, name="lenet")
