"""Kernels of andactl (installed as ``andactl.kernels``).

- ``andactl.kernels.ops``: the ``torch.ops.andactl`` op schemas (anda_pack, anda_unpack,
  anda_gemm), their pure-torch reference implementations and checked Python wrappers.
- ``andactl.kernels.reference``: the reference arithmetic of the Anda processing element.
- ``andactl.formats.int4_layout``: nibble packing and dequantization of the INT4 weight layout.
- ``andactl.models.anda_linear``: ``AndaLinear``, the INT4-weight / Anda-activation linear.

Nothing is imported here: the ops are registered by importing ``andactl.kernels.ops``.
"""
