"""Invalid arguments raise ValueError naming the argument and showing the value."""

import re

import numpy as np
import pytest

from kerazoo.layers import BatchNorm, Residual, make_norm


@pytest.mark.parametrize("momentum", [1.0, 1.5, -0.1])
def test_momentum_out_of_range(momentum):
    with pytest.raises(ValueError, match=re.escape(f"momentum={momentum}")):
        BatchNorm(momentum=momentum)


@pytest.mark.parametrize("epsilon", [0, -1, 0.0, -1e-3])
def test_epsilon_not_positive(epsilon):
    with pytest.raises(ValueError, match=re.escape(f"epsilon={epsilon}")):
        BatchNorm(epsilon=epsilon)


@pytest.mark.parametrize("argument,value", [
    ("axis", 2.5), ("axis", "1"), ("axis", None), ("axis", True),
    ("momentum", "0.9"), ("momentum", None), ("epsilon", "1e-3"), ("epsilon", None),
])
def test_argument_of_the_wrong_type(argument, value):
    with pytest.raises(ValueError, match=re.escape(f"{argument}={value!r}")):
        BatchNorm(**{argument: value})


@pytest.mark.parametrize("axis,momentum,epsilon", [
    (np.int64(1), np.float32(0.5), np.float64(1e-5)),  # NumPy scalars
    (np.array(1), np.array(0.5), np.array(1e-5)),  # 0-d arrays, which int()/float() take
    (1, 0, 1),  # Python ints for the float arguments
])
def test_numbers_of_any_numeric_type_are_accepted(axis, momentum, epsilon):
    layer = BatchNorm(axis=axis, momentum=momentum, epsilon=epsilon)
    assert (layer.axis, layer.momentum, layer.epsilon) == (1, float(momentum), float(epsilon))
    assert (type(layer.axis), type(layer.momentum), type(layer.epsilon)) == (int, float, float)


def test_unknown_implementation():
    with pytest.raises(ValueError, match=re.escape("implementation='cudnn'")):
        BatchNorm(implementation="cudnn")


@pytest.mark.parametrize("way", ["build", "call"])
def test_axis_out_of_range(way):
    layer = BatchNorm(axis=3)
    with pytest.raises(ValueError, match=re.escape("axis=3")):
        if way == "build":
            layer.build((8, 5))
        else:
            layer(np.zeros((8, 5), "float32"))


def test_axis_out_of_range_in_compute_output_shape():
    with pytest.raises(ValueError, match=re.escape("axis=-3")):
        BatchNorm(axis=-3).compute_output_shape((8, 5))


@pytest.mark.parametrize("way", ["build", "call"])
def test_rank_below_two(way):
    layer = BatchNorm()
    with pytest.raises(ValueError, match=re.escape("input_shape=(5,)")):
        if way == "build":
            layer.build((5,))
        else:
            layer(np.zeros((5,), "float32"))


def test_unknown_channel_size():
    with pytest.raises(ValueError, match=re.escape("input_shape=(None, None)")):
        BatchNorm(axis=-1).build((None, None))


@pytest.mark.parametrize("shape,axis", [((8, 5), -1), ((4, 3, 3, 5), 1)])
def test_fused_needs_channels_last_rank_3(shape, axis):
    layer = BatchNorm(axis=axis, implementation="fused")
    pattern = re.escape("implementation='fused'") + ".*" + re.escape(f"input_shape={shape}")
    with pytest.raises(ValueError, match=pattern):
        layer(np.zeros(shape, "float32"), training=True)


@pytest.mark.parametrize("implementation", ["fused", "analytic"])
def test_fast_paths_refuse_masks(implementation):
    layer = BatchNorm(implementation=implementation)
    with pytest.raises(ValueError, match=re.escape(f"implementation={implementation!r}")):
        layer(np.zeros((4, 6, 3), "float32"), training=True, mask=np.ones((4, 6), bool))


@pytest.mark.parametrize("implementation", ["fused", "analytic"])
def test_fast_paths_refuse_synchronized(implementation):
    # Only the reference path all-reduces the statistics. The check runs where
    # the path is taken (a training call), so construct and call both inside.
    pattern = re.escape(f"implementation={implementation!r}") + ".*synchronized"
    with pytest.raises(ValueError, match=pattern):
        layer = BatchNorm(synchronized=True, implementation=implementation)
        layer(np.zeros((4, 3, 3, 4), "float32"), training=True)


def test_mask_rank_mismatch():
    with pytest.raises(ValueError, match=re.escape("mask.shape=(4,)")):
        BatchNorm()(np.zeros((4, 6, 3), "float32"), training=True, mask=np.ones((4,), bool))


def test_unknown_norm():
    with pytest.raises(ValueError, match=re.escape("norm='group'")):
        make_norm("group")


def test_block_validates_momentum_at_construction():
    with pytest.raises(ValueError, match=re.escape("momentum=1.5")):
        Residual(3, momentum=1.5)
