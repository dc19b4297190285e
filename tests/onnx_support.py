"""What onnxruntime makes of a model file, for tests of shipped builds."""

import onnx
import onnxruntime as ort

from facecue.vision.runtime import onnx_session


def float_convs(path, tmp_path) -> list[str]:
    """Convs that onnxruntime, after its graph optimisations, still runs in float (an int8
    conv it cannot fuse runs several times slower). Loaded as facecue loads it."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnx_session(path, options=options)
    return [node.name for node in onnx.load(options.optimized_model_filepath).graph.node
            if node.op_type == "Conv"]
