"""Test set-up shared by every module.

Two logical CPU devices are configured before TensorFlow initializes, so that
`tf.distribute.MirroredStrategy` can run over two replicas on one CPU. Every
other test runs on the first device, as usual.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0],
    [tf.config.LogicalDeviceConfiguration(),
     tf.config.LogicalDeviceConfiguration()],
)


@pytest.fixture(autouse=True)
def _reset_dtype_policy():
    """Each test starts and ends with the float32 policy."""
    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.mixed_precision.set_dtype_policy("float32")
