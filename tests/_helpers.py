"""Small helpers shared by the test modules (imported as `_helpers`)."""

import keras


class CountTraces(keras.layers.Layer):
    """Identity layer counting how often its `call` runs in Python: once per
    trace in a compiled function, so a retrace shows up as a new count."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.traces = 0

    def call(self, inputs):
        self.traces += 1
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape
