"""The paper's experiments, as code the notebooks and benchmarks share.

- `report`: quick/full switch, timing, and the results tables the notebooks
  write (`notebooks/results/*.json`, gathered into `notebooks/results.md`).
- `structured`: structured output prediction (lower half of a digit from the
  upper half) with stochastic binary / categorical layers.
- `vae`: the categorical and Bernoulli VAEs.
- `semisupervised`: the M2 model with one Gumbel-Softmax sample of the class
  or the exact sum over classes.

These modules are imported explicitly (`from keras_gumbel.experiments import
vae`); `import keras_gumbel` does not load them.
"""
