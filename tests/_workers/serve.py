"""Serves an exported model in a process that never imports keras_gumbel.

Usage: `serve.py INPUTS.npy CALLS EXPORT_DIR OUT.npz [EXPORT_DIR OUT.npz
...]`. Importing keras_gumbel is made to fail, so the SavedModel must stand
on TensorFlow alone. Loads each `EXPORT_DIR` with `tf.saved_model.load`,
calls `.serve(x)` `CALLS` times on the inputs, and saves the outputs to its
`OUT.npz`: `call{i}_{k}` is output `k` (its index, or its name when the
model returns a dict) of call `i`.
"""

import importlib.abc
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _NoKerasGumbel(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "keras_gumbel" or name.startswith("keras_gumbel."):
            raise ImportError(f"{name} may not be imported in this process")
        return None


sys.meta_path.insert(0, _NoKerasGumbel())

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def serve(export_dir, x, out_path, calls):
    served = tf.saved_model.load(export_dir)
    outputs = {}
    for i in range(calls):
        result = served.serve(x)
        if not isinstance(result, dict):
            if not isinstance(result, (list, tuple)):
                result = [result]
            result = dict(enumerate(result))
        for key, value in result.items():
            outputs[f"call{i}_{key}"] = value.numpy()
    np.savez(out_path, **outputs)


def main(inputs_path, calls, *pairs):
    x = tf.constant(np.load(inputs_path))
    for export_dir, out_path in zip(pairs[::2], pairs[1::2]):
        serve(export_dir, x, out_path, int(calls))
    assert "keras_gumbel" not in sys.modules
    print("served without keras_gumbel")


if __name__ == "__main__":
    main(*sys.argv[1:])
