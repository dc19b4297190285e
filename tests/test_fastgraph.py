"""The faster graphs of facecue.train.fastgraph: the same numbers as the graphs they replace (the
space-to-depth first stage in float and int8, static shapes), and what the shipped files hold."""

import numpy as np
import onnx
import pytest
import torch
from onnx_support import float_convs

from facecue.train.export import export_onnx, quantize_int8
from facecue.train.fastgraph import _phase_weights, rewritten_stems, speed_up_file
from facecue.train.models import KeypointNet, expression_net
from facecue.train.teacher import MeanKeypoints
from facecue.vision.runtime import model_card, onnx_session, shipped_model_path


def test_phase_weights_give_the_conv_and_pool_on_real_faces(yt_sample):
    _, rows = yt_sample
    x = torch.from_numpy(rows.images[:8].astype(np.float32) / 255)[:, None]
    weight = torch.randn(5, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    want = torch.nn.functional.max_pool2d(torch.nn.functional.conv2d(x, weight, padding=1), 2)
    phases = torch.from_numpy(_phase_weights(weight.numpy()))
    y = torch.nn.functional.conv2d(torch.nn.functional.pixel_unshuffle(x, 2), phases, padding=1)
    got = torch.stack(y.chunk(4, 1)).amax(0)
    assert got.shape == want.shape == (8, 5, 48, 48)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def _run(path, crops):
    session = onnx_session(path)
    return session.run(None, {"pixels": crops.astype(np.float32)[:, None]})[0]


def _ops(path, op):
    return sum(node.op_type == op for node in onnx.load(str(path)).graph.node)


@pytest.mark.parametrize("net", ["keypoints", "expression"])
def test_fast_int8_graph_keeps_every_output_and_every_conv_in_int8(net, yt_sample, fer_sample,
                                                                 tmp_path):
    from facecue.formats.fer2013 import read_fer2013

    torch.manual_seed(0)
    if net == "keypoints":  # two members reading one input, uint8 activations (as shipped)
        model = MeanKeypoints([KeypointNet(width=4, context_head=True, fine_heatmaps=True),
                               KeypointNet(width=4)])
        crops, unsigned, size = yt_sample[1].images, True, 96
    else:  # int8 activations, as the expression models were built
        model = expression_net(7, width=4)
        crops, unsigned, size = read_fer2013(fer_sample)[0].images, False, 48
    for m in model.modules():  # trained-looking batch-norm statistics, not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    export_onnx(model.eval(), size, tmp_path / "float.onnx", check_inputs=crops[:8])
    for fast in (False, True):
        quantize_int8(tmp_path / "float.onnx", tmp_path / f"int8_{fast}.onnx", crops,
                      unsigned_activations=unsigned, fast_graph=fast)
    plain, fast = tmp_path / "int8_False.onnx", tmp_path / "int8_True.onnx"
    members = 2 if net == "keypoints" else 1
    assert rewritten_stems(onnx.load(str(plain))) == 0
    assert rewritten_stems(onnx.load(str(fast))) == members
    assert _ops(fast, "MaxPool") == _ops(plain, "MaxPool") - members
    np.testing.assert_array_equal(_run(fast, crops), _run(plain, crops))
    assert float_convs(fast, tmp_path) == []
    assert _ops(fast, "Shape") == 0  # reshape targets are constants
    if net == "keypoints":  # its heat-map reshapes had targets computed at run time
        assert _ops(plain, "Shape") > 0
    again = speed_up_file(fast, tmp_path / "again.onnx")
    assert again == {"stems": 0, "static_shapes": 0}  # nothing left to rewrite


@pytest.mark.parametrize("name", ["keypoints15", "expression_fer7", "expression_fer5"])
def test_shipped_files_hold_the_rewrite_their_cards_record(name, tmp_path):
    path, card = shipped_model_path(name), model_card(name)
    record = card["graph_rewrite"]
    assert record["stems"] == rewritten_stems(onnx.load(str(path))) == len(card["members"])
    assert record["max_abs_output_change"] == 0
    assert record["sha256_before"] != card["sha256"]
    assert speed_up_file(path, tmp_path / "again.onnx") == {"stems": 0, "static_shapes": 0}


def test_onnxruntime_too_old_for_the_graphs_is_refused_with_what_to_install():
    from facecue.vision.runtime import check_onnxruntime

    check_onnxruntime()  # the installed one
    check_onnxruntime("1.28.0")
    check_onnxruntime("1.32.0.dev20261101")
    for old in ("1.27.0", "1.24.4", "0.9"):
        with pytest.raises(RuntimeError, match=r"pip install -U 'onnxruntime>=1.28'"):
            check_onnxruntime(old)
