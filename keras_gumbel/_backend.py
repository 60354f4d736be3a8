"""What truly differs between Keras backends (private).

The math of `keras_gumbel.ops` is written once, on `keras.ops`; this module
holds the few pieces that cannot be: the uniform draw from a stateless seed,
the glue around each backend's custom gradient, a shape or two that
TensorFlow only knows when a traced function runs, and the one autodiff
call of `keras_gumbel.score_function`. On TensorFlow each piece keeps the
fast path the library had before it ran anywhere else (the Philox draw by
name, `tf.custom_gradient`, `tf.raw_ops.BroadcastGradientArgs`).

The backend is read when a function runs (`keras.backend.backend()`), not
when this module is imported: importing needs no particular backend library.
"""

import keras
import numpy as np

_INT32_MAX = 2**31 - 1


def name():
    """The Keras backend: "tensorflow", "jax" or "torch" (or another)."""
    return keras.backend.backend()


def is_tensorflow():
    return name() == "tensorflow"


def _tf():
    import tensorflow as tf

    return tf


# --------------------------------------------------------------------------
# dtypes and shapes.
# --------------------------------------------------------------------------


def dtype_name(x):
    """The standardized dtype name of a tensor, e.g. "float32"."""
    return keras.backend.standardize_dtype(x.dtype)


def compute_dtype(dtype):
    """float16 and bfloat16 are computed in float32."""
    dtype = keras.backend.standardize_dtype(dtype)
    return "float32" if dtype in ("float16", "bfloat16") else dtype


def rank(x):
    """The rank of `x`, or None where it is unknown (a traced TF tensor)."""
    shape = x.shape
    if is_tensorflow() and getattr(shape, "rank", 0) is None:
        return None
    return len(shape)


def shape(x):
    """The shape to draw noise of: `tf.shape` on TensorFlow (known when the
    traced function runs), the static tuple elsewhere."""
    if is_tensorflow():
        return _tf().shape(x)
    return tuple(x.shape)


def prepend(n, dims):
    """`(n,) + dims`, for a shape from `shape`."""
    if is_tensorflow():
        tf = _tf()
        return tf.concat([[n], tf.cast(dims, tf.int32)], axis=0)
    return (n,) + tuple(dims)


def depth(x, axis):
    """The number of classes along `axis`."""
    if is_tensorflow():
        return _tf().shape(x)[axis]
    return x.shape[axis]


def argmax(x, axis):
    """The index of the largest entry along `axis`, by the backend's own
    argmax: `keras.ops.argmax` first rewrites -0.0 as a tiny negative number
    (a guard for flush-to-zero CPUs), two more passes over the tensor that
    made ST Gumbel-Softmax 13-17 % slower in `tf.function`; ties between
    -0.0 and 0.0 do not matter to a sample."""
    backend = name()
    if backend == "tensorflow":
        return _tf().argmax(x, axis=axis)
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.argmax(x, axis=axis)
    if backend == "torch":
        import torch

        return torch.argmax(x, dim=axis)
    return keras.ops.argmax(x, axis=axis)


def _tf_classes_last(x, axis):
    """On TensorFlow: `x` with the non-negative `axis` moved last, and the
    permutation that moves it back (None where it is last already). The
    rank may be unknown when traced: the permutation is then computed when
    the function runs."""
    tf = _tf()
    static_rank = rank(x)
    if static_rank is not None and axis in (-1, static_rank - 1):
        return x, None
    r = tf.rank(x)
    ax = tf.math.floormod(axis, r)
    perm = tf.concat([tf.range(ax), tf.range(ax + 1, r), [ax]], 0)
    return tf.transpose(x, perm), tf.math.invert_permutation(perm)


def _tf_classes_back(x, inverse):
    """Undoes `_tf_classes_last` on a tensor of the moved layout."""
    return x if inverse is None else _tf().transpose(x, inverse)


def top_k(x, n, axis, sorted=True):
    """The `n` largest entries of `x` along the non-negative `axis` and
    their indices, both with `n` entries along `axis` (largest first where
    `sorted`; ties broken as the backend's top_k breaks them)."""
    backend = name()
    if backend == "tensorflow":
        moved, inverse = _tf_classes_last(x, axis)
        values, index = _tf().math.top_k(moved, n, sorted=sorted)
        return (_tf_classes_back(values, inverse),
                _tf_classes_back(index, inverse))
    moved = keras.ops.moveaxis(x, axis, -1)
    if backend == "jax":
        import jax

        values, index = jax.lax.top_k(moved, n)
    elif backend == "torch":
        import torch

        values, index = torch.topk(moved, n, dim=-1, sorted=sorted)
    else:
        values, index = keras.ops.top_k(moved, n, sorted=sorted)
    return (keras.ops.moveaxis(values, -1, axis),
            keras.ops.moveaxis(index, -1, axis))


def scatter_along(index, updates, like, axis, dtype):
    """Zeros of the shape of `like` and dtype `dtype`, with `updates` (the
    shape of `index`) at the positions `index` along the non-negative
    `axis`: each row's indices distinct. Costs the indices' size beside
    the zeros, not n times the tensor's (a sum of n one-hots would)."""
    backend = name()
    if backend == "tensorflow":
        tf = _tf()
        index, inverse = _tf_classes_last(index, axis)
        updates = _tf_classes_last(updates, axis)[0]
        dims = tf.concat([tf.shape(index)[:-1], tf.shape(like)[axis:][:1]],
                         0)
        flat = tf.reshape(index, [-1, tf.shape(index)[-1]])
        rows = tf.broadcast_to(tf.range(tf.shape(flat)[0])[:, None],
                               tf.shape(flat))
        out = tf.scatter_nd(
            tf.reshape(tf.stack([rows, flat], axis=-1), [-1, 2]),
            tf.reshape(tf.cast(updates, dtype), [-1]),
            [tf.shape(flat)[0], dims[-1]])
        return _tf_classes_back(tf.reshape(out, dims), inverse)
    if backend == "jax":
        import jax

        return jax.numpy.put_along_axis(
            jax.numpy.zeros(like.shape, dtype), index,
            updates.astype(dtype), axis=axis, inplace=False)
    if backend == "torch":
        import torch

        return torch.zeros(like.shape, dtype=getattr(torch, dtype),
                           device=like.device).scatter_(
                               axis, index, updates.to(getattr(torch, dtype)))
    hot = keras.ops.one_hot(keras.ops.moveaxis(index, axis, -1),
                            like.shape[axis], dtype=dtype)
    weights = keras.ops.cast(keras.ops.moveaxis(updates, axis, -1), dtype)
    return keras.ops.moveaxis(
        keras.ops.sum(hot * weights[..., None], axis=-2), -1, axis)


def top_k_hot(x, k, axis, dtype):
    """The k-hot of the `k` largest entries of `x` along the non-negative
    `axis`: exactly k ones per row (ties broken as the backend's top_k
    breaks them), zeros elsewhere."""
    index = top_k(x, k, axis, sorted=False)[1]
    return scatter_along(index, keras.ops.ones_like(index), x, axis, dtype)


def one_hot(index, num_classes, axis, dtype):
    """`one_hot(index)` with the classes along the non-negative `axis`."""
    if is_tensorflow():
        return _tf().one_hot(index, num_classes, axis=axis, dtype=dtype)
    return keras.ops.one_hot(index, num_classes, axis=axis, dtype=dtype)


def sum_to_shape(grad, target):
    """Sums a gradient broadcast from `target`'s shape back to that shape."""
    if is_tensorflow():
        tf = _tf()
        shape_ = tf.shape(target)
        reduce_axes, _ = tf.raw_ops.BroadcastGradientArgs(
            s0=shape_, s1=tf.shape(grad))
        return tf.reshape(tf.reduce_sum(grad, axis=reduce_axes), shape_)
    target_shape = tuple(target.shape)
    lead = len(grad.shape) - len(target_shape)
    if lead:
        grad = keras.ops.sum(grad, axis=tuple(range(lead)))
    axes = tuple(i for i, d in enumerate(target_shape)
                 if d == 1 and grad.shape[i] != 1)
    if axes:
        grad = keras.ops.sum(grad, axis=axes, keepdims=True)
    return keras.ops.reshape(grad, target_shape)


def sum_except_first(x):
    """Sums over every axis but the first, `(batch, ...)` -> `(batch,)`; a
    tensor of rank <= 1 is returned as it is (the rank may be unknown on
    TensorFlow when traced)."""
    r = rank(x)
    if r is not None and r <= 1:
        return x
    if r is None:
        tf = _tf()
        return tf.reduce_sum(x, axis=tf.range(1, tf.rank(x)))
    return keras.ops.sum(x, axis=tuple(range(1, r)))


def gather_last(x, index, batch_shape):
    """`x[..., index]` along the last axis, `index` broadcast to
    `batch_shape` (the leading axes of `x`), keeping a last axis of size 1.
    On TensorFlow a gather (which XLA compiles to one read); elsewhere
    `take_along_axis`."""
    if is_tensorflow():
        tf = _tf()
        return tf.gather(x, tf.broadcast_to(index, batch_shape),
                         batch_dims=len(x.shape) - 1)[..., None]
    index = keras.ops.broadcast_to(index, tuple(batch_shape))
    return keras.ops.take_along_axis(x, index[..., None], axis=-1)


def assert_in_range(x, low, high, message):
    """On TensorFlow, `x` with a run-time check that its values are finite
    and in [low, high] (XLA drops it); elsewhere `x` (a traced JAX or
    compiled PyTorch value cannot be checked without a cost per step)."""
    if not is_tensorflow():
        return x
    tf = _tf()
    x = tf.debugging.assert_all_finite(x, message)
    with tf.control_dependencies([
            tf.debugging.assert_greater_equal(
                x, tf.constant(low, x.dtype), message=message),
            tf.debugging.assert_less_equal(
                x, tf.constant(high, x.dtype), message=message)]):
        return tf.identity(x)


def assert_broadcasts_to(t, x, message, between):
    """On TensorFlow, `t` with a run-time check that its broadcast against
    `x` has `x`'s shape (for shapes unknown when traced; elsewhere shapes
    are always known and checked statically)."""
    if not is_tensorflow():
        return t
    tf = _tf()
    t_dims, x_dims = tf.shape(t), tf.shape(x)
    rank_ok = tf.size(t_dims) <= tf.size(x_dims)

    def dims_ok():
        x_tail = x_dims[tf.size(x_dims) - tf.size(t_dims):]
        return tf.reduce_all((t_dims == 1) | (t_dims == x_tail))

    ok = tf.cond(rank_ok, dims_ok, lambda: tf.constant(False))
    check = tf.debugging.Assert(ok, [message, t_dims, between, x_dims])
    with tf.control_dependencies([check]):
        return tf.identity(t)


def softmax(x, axis):
    """`softmax` along `axis`; on TensorFlow `tf.nn.softmax`, which also
    takes tensors whose rank is unknown when traced."""
    if is_tensorflow():
        return _tf().nn.softmax(x, axis=axis)
    return keras.ops.softmax(x, axis=axis)


def log_softmax(x, axis):
    """`log_softmax` along `axis`, as `softmax` above."""
    if is_tensorflow():
        return _tf().nn.log_softmax(x, axis=axis)
    return keras.ops.log_softmax(x, axis=axis)


def multiply_no_nan(x, y):
    """`x * y`, and 0 where `y` is 0 even if `x` is infinite."""
    if is_tensorflow():
        return _tf().math.multiply_no_nan(x, y)
    return keras.ops.where(y == 0, keras.ops.zeros_like(x), x * y)


def identity(x):
    """A new tensor equal to `x` (TensorFlow's custom gradients want an op
    of their own as the output)."""
    if is_tensorflow():
        return _tf().identity(x)
    return x


# --------------------------------------------------------------------------
# Concrete or traced.
# --------------------------------------------------------------------------


def is_concrete(x):
    """Whether the values of tensor `x` can be read now (eagerly), for the
    checks that read values; False inside a traced or compiled function."""
    backend = name()
    if backend == "tensorflow":
        tf = _tf()
        return tf.executing_eagerly() and hasattr(x, "numpy")
    if backend == "jax":
        import jax

        return not isinstance(x, jax.core.Tracer)
    if backend == "torch":
        import torch

        return not torch.compiler.is_compiling()
    return True


def while_loop(cond, body, loop_vars, maximum_iterations):
    """`keras.ops.while_loop`, run as a Python loop where the values are
    concrete (eager). Eager JAX compiles a `lax.while_loop` afresh at every
    call (its body closes over new arrays each time): 0.33 s a call against
    0.011 s with the Python loop, for `gumbel_topk` on (32, 1000)."""
    if not is_concrete(loop_vars[0]):
        return keras.ops.while_loop(cond, body, loop_vars,
                                    maximum_iterations=maximum_iterations)
    loop_vars = tuple(loop_vars)
    for _ in range(maximum_iterations):
        if not bool(keras.ops.convert_to_numpy(cond(*loop_vars))):
            break
        loop_vars = tuple(body(*loop_vars))
    return loop_vars


def cond(pred, true_fn, false_fn):
    """`keras.ops.cond`, decided in Python where `pred` is concrete (eager
    JAX would compile `lax.cond` afresh at every call, as `while_loop`
    above says)."""
    if not is_concrete(pred):
        return keras.ops.cond(pred, true_fn, false_fn)
    return true_fn() if bool(keras.ops.convert_to_numpy(pred)) else false_fn()


# --------------------------------------------------------------------------
# Noise from a stateless seed.
# --------------------------------------------------------------------------


def seed_pair(seed):
    """A stateless seed (two int32) drawn with `keras.random`'s semantics.

    `seed` is None, an int or a `keras.random.SeedGenerator`: an int gives the
    same pair on every call, a generator a new pair each call, None the
    global generator (reproducible after `keras.utils.set_random_seed`).
    """
    return keras.random.randint(
        (2,), minval=0, maxval=_INT32_MAX, dtype="int32", seed=seed)


def fold_in(pair, n):
    """A seed pair derived from `pair` and the integer `n`: reproducible, and
    its stream independent of `pair`'s."""
    backend = name()
    if backend == "tensorflow":
        return _tf().random.experimental.stateless_fold_in(pair, n)
    if backend == "jax":
        import jax

        key = jax.random.fold_in(jax.numpy.asarray(pair, "uint32"), n)
        return (key % np.uint32(_INT32_MAX)).astype("int32")
    a, b = (int(v) for v in keras.ops.convert_to_numpy(pair))
    mixed = np.random.SeedSequence([a, b, n]).generate_state(2)
    return keras.ops.convert_to_tensor(
        (mixed % _INT32_MAX).astype("int32"), dtype="int32")


def uniform(shape_, dtype, pair):
    """Uniform noise on `[tiny, 1)` in `dtype`, from a stateless seed pair.

    The floor is the smallest *normal* number: anything smaller (0, or a
    subnormal flushed to 0) would make `log(u)` infinite. On TensorFlow the
    algorithm is Philox, named: under XLA on a CPU the default
    (`auto_select`) is much slower (see benchmarks/results.md); eagerly the
    draw runs as one call of a traced function. On JAX the pair is the key
    of `keras.random` (threefry); on PyTorch it seeds a `torch.Generator`
    eagerly.
    The streams differ between backends.
    """
    tiny = float(np.finfo(np.dtype(dtype)).tiny)
    backend = name()
    if backend == "tensorflow":
        tf = _tf()
        if tf.executing_eagerly():
            return _traced_uniform()(
                tf.cast(shape_, tf.int64), pair, tf.as_dtype(dtype))
        return _tf_uniform(shape_, tf.as_dtype(dtype), pair)
    if backend == "torch":
        # torch.rand with a generator seeded from the pair, floored in
        # place: one pass over the tensor (Keras's uniform adds a scaling
        # and a shift, and a floor in keras.ops another pass), which in
        # PyTorch's eager training is paid at every step.
        import torch

        a, b = (int(v) for v in pair.tolist())
        generator = torch.Generator(device=pair.device)
        generator.manual_seed(a * 2**31 + b)
        u = torch.rand(tuple(shape_), generator=generator,
                       dtype=getattr(torch, dtype), device=pair.device)
        return u.clamp_min_(tiny)
    if backend == "jax":
        seed = keras.ops.cast(pair, "uint32")
    else:
        a, b = (int(v) for v in keras.ops.convert_to_numpy(pair))
        seed = (a * 1000003 + b) % _INT32_MAX
    u = keras.random.uniform(shape_, minval=0.0, maxval=1.0, dtype=dtype,
                             seed=seed)
    # `where`, not `maximum`: Keras's type promotion turns float64 into
    # float32 outside TensorFlow (`maximum` of two float64 tensors is
    # float32 on PyTorch), which would round u near 1 to 1 and the floor
    # to 0.
    floor = keras.ops.cast(tiny, dtype)
    return keras.ops.where(u < floor, floor, u)


def _tf_uniform(shape_, dtype, pair):
    tf = _tf()
    tiny = np.finfo(dtype.as_numpy_dtype).tiny
    return tf.random.stateless_uniform(
        shape_, seed=pair, minval=tf.constant(tiny, dtype),
        maxval=tf.constant(1.0, dtype), dtype=dtype, alg="philox")


_TRACED_UNIFORM = []


def _traced_uniform():
    if not _TRACED_UNIFORM:
        tf = _tf()

        @tf.function(autograph=False, reduce_retracing=True)
        def traced(shape_, pair, dtype):
            return _tf_uniform(shape_, dtype, pair)

        _TRACED_UNIFORM.append(traced)
    return _TRACED_UNIFORM[0]


# --------------------------------------------------------------------------
# Custom gradients.
# --------------------------------------------------------------------------


def custom_gradient(f):
    """Decorates `f(*tensors) -> (output, grad)`, `grad(upstream)` returning
    one gradient per input (or one tensor for one input).

    TensorFlow: `tf.custom_gradient`. Elsewhere `keras.ops.custom_gradient`,
    whose gradient function is called as `grad(upstream)` on JAX and
    `grad(*inputs, upstream=upstream)` on PyTorch: adapted here, and the
    gradients cast to their inputs' dtypes (JAX requires it). The inputs
    must be tensors (not Python numbers or Keras variables: PyTorch saves
    them for the backward pass), and `f` must not draw noise (PyTorch may
    run it twice). Every tensor `f` or `grad` reads must be one of the
    inputs (with a None gradient if it gets none), not closed over: JAX
    refuses a custom gradient that closes over a value it traces (under
    `jax.jit`) or differentiates (`jax.grad`).
    """
    if is_tensorflow():
        return _tf().custom_gradient(f)

    def wrapped(*inputs):
        output, grad = f(*inputs)
        dtypes = [dtype_name(x) for x in inputs]

        def portable_grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            grads = grad(upstream)
            if not isinstance(grads, (tuple, list)):
                grads = (grads,)
            return tuple(
                None if g is None else keras.ops.cast(g, d)
                for g, d in zip(grads, dtypes))

        return output, portable_grad

    return keras.ops.custom_gradient(wrapped)


def needs_grad(x):
    """Whether a gradient for tensor `x` can be used: False only for an
    eager PyTorch tensor that does not require one (a constant temperature);
    elsewhere True (under `jit` or in a graph, an unused gradient is pruned
    by the compiler)."""
    if name() == "torch":
        return bool(getattr(x, "requires_grad", True))
    return True


# --------------------------------------------------------------------------
# Autodiff (score_function's slopes).
# --------------------------------------------------------------------------


def value_and_grad_of_sum(f, x):
    """`(f(x), d sum(f(x)) / d x)` for a tensor `x`, neither differentiable
    further."""
    backend = name()
    if backend == "tensorflow":
        tf = _tf()
        x = tf.stop_gradient(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = f(x)
            total = tf.reduce_sum(value)
        grad = tape.gradient(total, x)
        if grad is None:
            grad = tf.zeros_like(x)
        return tf.stop_gradient(value), tf.stop_gradient(grad)
    if backend == "jax":
        import jax

        def total(point):
            value = f(point)
            return keras.ops.sum(value), value

        grad, value = jax.grad(total, has_aux=True)(
            jax.lax.stop_gradient(x))
        return jax.lax.stop_gradient(value), jax.lax.stop_gradient(grad)
    if backend == "torch":
        import torch

        with torch.enable_grad():
            point = x.detach().clone().requires_grad_(True)
            value = f(point)
            total = value.sum()
            if total.requires_grad:
                (grad,) = torch.autograd.grad(total, point,
                                              allow_unused=True)
            else:
                grad = None
        if grad is None:
            grad = torch.zeros_like(point)
        return value.detach(), grad.detach()
    raise NotImplementedError(
        f"keras_gumbel has no autodiff for Keras backend {backend!r}")
