"""Hand-written Keras layers: BatchNorm and the blocks of book sections 5.11-5.12."""

from kerazoo.layers.batch_norm import BatchNorm
from kerazoo.layers.blocks import Bottleneck, ConvBlock, DenseBlock, Residual, TransitionBlock
from kerazoo.layers.conv import PaddedConv2D, make_norm

__all__ = ["BatchNorm", "Bottleneck", "ConvBlock", "DenseBlock", "PaddedConv2D", "Residual",
           "TransitionBlock", "make_norm"]
