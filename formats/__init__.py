"""Data formats of andactl (installed as ``andactl.formats``).

- ``andactl.formats.anda``: the Anda grouped shared-exponent activation codec (fake-quant,
  bit-plane pack/unpack), see docs/FORMAT.md.
- ``andactl.formats.anda_storage``: exact storage accounting of the Anda layout.

Submodules are imported lazily (``from andactl.formats import anda``); importing this package
loads nothing else.
"""
