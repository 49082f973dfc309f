"""Re-export: the SliceGPT layer is a runtime module, it lives in ``andactl.models.slicegpt_layer``."""
from andactl.models.slicegpt_layer import (  # noqa: F401
    SliceGPTLayer, count_parameters, install_layers, simulate_slicing,
)
