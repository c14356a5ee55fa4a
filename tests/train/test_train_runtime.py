"""`runtime.choose_precision`: what `--precision=auto` resolves to, by device and model size."""

import pytest
import tensorflow as tf

from kerazoo.train import runtime

pytestmark = pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")),
                                reason="the CPU rules; a GPU machine resolves auto by its GPU")


def test_requested_policy_is_returned_as_is():
    assert runtime.choose_precision("mixed_float16") == ("mixed_float16", "requested")


def test_cpu_without_bf16_units_trains_in_float32():
    policy, reason = runtime.choose_precision("auto", multiply_adds=lambda: 10**9,
                                              has_native_bf16=False)
    assert policy == "float32" and "without native bfloat16" in reason


@pytest.mark.parametrize("macs, policy", [
    (281_640, "float32"),          # lenet_bn at 28x28: bf16 measured 1.48x slower
    (99_999_999, "float32"),
    (129_077_168, "mixed_bfloat16"),  # densenet at 96x96: bf16 measured 0.61x
    (318_657_536, "mixed_bfloat16"),  # resnet18 at 96x96: 0.64x
])
def test_bf16_cpu_picks_bf16_only_for_models_where_it_was_measured_faster(macs, policy):
    chosen, reason = runtime.choose_precision("auto", multiply_adds=lambda: macs,
                                              has_native_bf16=True)
    assert chosen == policy
    assert "multiply-adds" in reason


def test_multiply_adds_is_not_computed_when_not_needed():
    def fail():
        raise AssertionError("probe built without need")

    runtime.choose_precision("float32", multiply_adds=fail)
    runtime.choose_precision("auto", multiply_adds=fail, has_native_bf16=False)


def test_cpuinfo_flags_are_read(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert runtime.cpu_has_native_bf16(str(cpuinfo))
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n")
    assert not runtime.cpu_has_native_bf16(str(cpuinfo))
    assert not runtime.cpu_has_native_bf16(str(tmp_path / "missing"))
