"""Device-dependent choices: precision policy, XLA, distribution strategy.

Measured on this project's 2-core AMD EPYC CPU (AVX2, no AVX-512/AMX, so no
native bfloat16 arithmetic): float32 is what `auto` picks on such CPUs, and
plain TensorFlow beats XLA for the zoo's conv nets (see README). On a GPU of
compute capability >= 7.0, `auto` picks mixed_float16 (Keras's `compile` wraps
the optimizer in a LossScaleOptimizer under that policy).
"""

import tensorflow as tf

# CPU flags that mean native bfloat16 matrix arithmetic.
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo_path="/proc/cpuinfo"):
    try:
        with open(cpuinfo_path) as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return any(flag in flags for flag in _BF16_CPU_FLAGS)


def _gpu_compute_capability():
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return details.get("compute_capability", (0, 0))


def choose_precision(requested):
    """Resolves "auto" to a Keras dtype policy name; returns (policy, reason)."""
    if requested != "auto":
        return requested, "requested"
    capability = _gpu_compute_capability()
    if capability is not None and capability >= (7, 0):
        return "mixed_float16", f"GPU with compute capability {capability}"
    if cpu_has_native_bf16():
        # No bf16-capable CPU was available to show that mixed_bfloat16 keeps
        # the book's accuracy, so auto stays with float32 even there.
        return "float32", "CPU has bf16 units, but mixed_bfloat16 is unmeasured on them"
    return "float32", "CPU without native bfloat16 arithmetic"


def choose_jit_compile(requested):
    """Resolves the --jit_compile flag to what `model.compile` takes."""
    if requested == "true":
        return True
    if requested == "false":
        return False
    # On CPU, XLA was slower than plain TF for these conv nets (README).
    return "auto" if tf.config.list_physical_devices("GPU") else False


def split_cpu(num_devices):
    """Splits the first CPU into `num_devices` logical devices (before TF starts)."""
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices)


def make_strategy(name, logical_cpus=0):
    """A `tf.distribute` strategy by name ("auto", "default", "mirrored", "multi_worker")."""
    if logical_cpus > 1:
        split_cpu(logical_cpus)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()  # cluster from TF_CONFIG
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if name == "auto" and len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
