"""Device-dependent choices: precision policy, XLA, distribution strategy.

Precision `auto` (README, "Precision and XLA on this machine"):
* a GPU of compute capability >= 7.0: mixed_float16 (Keras's `compile` wraps
  the optimizer in a LossScaleOptimizer under that policy);
* a CPU with native bfloat16 units (AVX512_BF16 or AMX): mixed_bfloat16 for
  models of at least `BF16_MIN_MULTIPLY_ADDS` per image, float32 below. On the
  2-core AMD EPYC with AVX512_BF16 that `bench/precision.py` ran on, a
  training step in bf16 took 0.64x float32's time for resnet18 at 96x96 (319M
  multiply-adds per image) and 0.61x for densenet at 96x96 (129M), but 1.48x
  for lenet_bn at 28x28 (0.28M), where op overhead, not arithmetic, dominates;
  RESULTS.md shows the bf16 runs keep the float32 accuracy;
* any other CPU: float32 (bf16 is emulated there and several times slower).

Plain TensorFlow beats XLA for the zoo's conv nets on these CPUs (README).
"""

import tensorflow as tf

# CPU flags that mean native bfloat16 matrix arithmetic.
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# Below the smallest model measured to train faster in bf16 (densenet at
# 96x96, 129M multiply-adds per image), auto keeps float32.
BF16_MIN_MULTIPLY_ADDS = 100_000_000


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


def choose_precision(requested, multiply_adds=None, has_native_bf16=None):
    """Resolves "auto" to a Keras dtype policy name; returns (policy, reason).

    Args:
        requested: "auto" or a Keras dtype policy name (returned as is).
        multiply_adds: a callable returning the model's multiply-adds per
            image; called only on a CPU with native bf16 units.
        has_native_bf16: overrides the /proc/cpuinfo check (tests).
    """
    if requested != "auto":
        return requested, "requested"
    capability = _gpu_compute_capability()
    if capability is not None and capability >= (7, 0):
        return "mixed_float16", f"GPU with compute capability {capability}"
    if capability is not None:
        return "float32", f"GPU with compute capability {capability} (< 7.0)"
    if has_native_bf16 is None:
        has_native_bf16 = cpu_has_native_bf16()
    if not has_native_bf16:
        return "float32", "CPU without native bfloat16 arithmetic"
    macs = multiply_adds() if multiply_adds else 0
    if macs >= BF16_MIN_MULTIPLY_ADDS:
        return "mixed_bfloat16", (f"CPU with native bf16, {macs / 1e6:.0f}M multiply-adds "
                                  f"per image >= {BF16_MIN_MULTIPLY_ADDS / 1e6:.0f}M")
    return "float32", (f"CPU with native bf16, but {macs / 1e6:.1f}M multiply-adds per image "
                       f"< {BF16_MIN_MULTIPLY_ADDS / 1e6:.0f}M, where bf16 is slower")


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
