"""Re-export: the parallel-block SliceGPT layer lives in ``andactl.models.slicegpt_parallel_layer``."""
from andactl.models.slicegpt_parallel_layer import ParallelSliceGPTLayer  # noqa: F401
