"""Test set-up shared by every module.

The suite runs on the Keras backend `KERAS_BACKEND` names (TensorFlow by
default). On TensorFlow, two logical CPU devices are configured before
TensorFlow initializes, so that `tf.distribute.MirroredStrategy` can run over
two replicas on one CPU; every other test runs on the first device, as usual.
On the other backends the modules that test TensorFlow-only things (the
notebooks, the paper's models, the benchmarks' TensorFlow scripts) are not
collected.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    _cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        _cpus[0],
        [tf.config.LogicalDeviceConfiguration(),
         tf.config.LogicalDeviceConfiguration()],
    )
    collect_ignore = []
else:
    # TensorFlow-only: the notebooks stay TensorFlow (their quick runs),
    # and so do the paper's models and the benchmark scripts they test.
    collect_ignore = ["test_notebooks.py", "test_paper.py",
                      "test_benchmarks.py"]


@pytest.fixture(autouse=True)
def _reset_dtype_policy():
    """Each test starts and ends with the float32 policy."""
    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.mixed_precision.set_dtype_policy("float32")
