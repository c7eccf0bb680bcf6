"""MMSegmentation's test protocol: the keep-ratio test scale of each benchmark set, multi-scale
ratios of that scale, and sliding-window inference.

Expected sizes and windows are worked out by hand from the sources' formulas, not from this
project's output: mmcv ``image/geometric.py`` ``rescale_size`` (factor ``min(long / max(h, w),
short / min(h, w))``, sides ``int(side * factor + 0.5)``), MMSegmentation (v0.x)
``MultiScaleFlipAug`` (``int(scale * ratio)``) and ``EncoderDecoder.slide_inference``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from hrnet.engine.config import EvalConfig
from hrnet.errors import HRNetError
from hrnet.mlops.smoke import _smoke_test_protocol
from hrnet.tasks.segmentation import rescaled_size, segmentation_probabilities, slide_logits


class Recorder(nn.Module):
    """A per-pixel model (a 1x1 convolution) that records the size of every input it sees."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, classes, 1)
        self.seen: list[tuple[int, int]] = []

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        self.seen.append((x.shape[-2], x.shape[-1]))
        return {"out": self.conv(x)}


@pytest.mark.parametrize(
    ("hw", "scale", "ratio", "expected"),
    [
        ((512, 683), (512, 2048), 1.0, (512, 683)),  # ADE20K's usual size: kept
        ((1200, 1600), (512, 2048), 1.0, (512, 683)),  # factor 512/1200; 682.67 -> 683
        ((1200, 1600), (512, 2048), 0.75, (384, 512)),  # (1536, 384): factor 0.32
        ((1200, 1600), (512, 2048), 1.75, (896, 1195)),  # (3584, 896): 1194.67 -> 1195
        ((1024, 2048), (1024, 2048), 0.5, (512, 1024)),  # Cityscapes at half scale
        ((1024, 2048), (1024, 2048), 1.25, (1280, 2560)),
        ((375, 500), (520, 520), 1.0, (390, 520)),  # Pascal Context: long side to 520
        ((500, 375), (520, 520), 0.5, (260, 195)),  # (260, 260): factor 0.52
    ],
)
def test_rescaled_size_follows_mmcv_keep_ratio(hw, scale, ratio, expected) -> None:
    assert rescaled_size(*hw, scale, ratio) == expected


def test_slide_windows_end_at_the_edges() -> None:
    model = Recorder()
    windows: list[tuple[int, int, int, int]] = []
    rows, cols = torch.meshgrid(torch.arange(520.0), torch.arange(700.0), indexing="ij")
    image = torch.stack([rows, cols, torch.zeros_like(rows)])[None]  # each pixel holds its place

    def spy(x: Tensor) -> dict[str, Tensor]:
        y1, x1 = int(x[0, 0, 0, 0]), int(x[0, 1, 0, 0])
        windows.append((y1, y1 + x.shape[-2], x1, x1 + x.shape[-1]))
        return model(x)

    slide_logits(spy, image, (480, 480), (320, 320))  # type: ignore[arg-type]
    # rows: (520 - 480 + 319) // 320 + 1 = 2, the second moved back to end at 520; columns the same
    assert windows == [(0, 480, 0, 480), (0, 480, 220, 700), (40, 520, 0, 480), (40, 520, 220, 700)]


def test_a_side_shorter_than_the_crop_is_one_window_without_padding() -> None:
    model = Recorder()
    slide_logits(model, torch.randn(1, 3, 390, 520), (480, 480), (320, 320))
    assert model.seen == [(390, 480), (390, 480)]  # x 0-480 and 40-520


def test_slide_of_a_per_pixel_model_equals_the_whole_image() -> None:
    model = Recorder()
    image = torch.randn(2, 3, 70, 90)
    with torch.inference_mode():
        whole = model(image)["out"]
        windows = slide_logits(model, image, (32, 48), (20, 30))
    assert windows.shape == whole.shape
    assert torch.allclose(windows, whole, atol=1e-6)


def test_probabilities_rescale_to_the_test_scale_then_back_to_the_label_size() -> None:
    model = Recorder()
    with torch.inference_mode():
        probs = segmentation_probabilities(
            model,
            torch.randn(1, 3, 120, 160),
            scales=(0.5, 1.0),
            flip=True,
            size=(120, 160),
            test_scale=(64, 64),
        )
    # fitted in (32, 32) and (64, 64): factors 0.2 and 0.4, each image and its mirror
    assert model.seen == [(24, 32), (24, 32), (48, 64), (48, 64)]
    assert probs.shape == (1, 3, 120, 160)
    assert torch.allclose(probs.sum(1), torch.ones(1, 120, 160))


def test_probabilities_without_a_test_scale_keep_the_own_size() -> None:
    model = Recorder()
    with torch.inference_mode():
        segmentation_probabilities(model, torch.randn(1, 3, 40, 60), scales=(0.5, 1.0))
    assert model.seen == [(20, 30), (40, 60)]


def test_probabilities_slide_over_each_rescaled_image() -> None:
    model = Recorder()
    with torch.inference_mode():
        segmentation_probabilities(
            model, torch.randn(1, 3, 60, 80), size=(60, 80), test_scale=(52, 52), slide=((32, 32), (20, 20))
        )
    # rescaled to 39x52: rows (39 - 32 + 19) // 20 + 1 = 2, columns (52 - 32 + 19) // 20 + 1 = 2
    assert model.seen == [(32, 32)] * 4


@pytest.mark.parametrize(
    "values",
    [
        {"slide_crop": (480, 480)},  # without a stride
        {"slide_stride": (320, 320)},
        {"slide_crop": (480, 480, 3), "slide_stride": (320, 320)},
        {"test_scale": (512,)},
        {"test_scale": (0, 512)},
        {"slide_crop": (480, 480), "slide_stride": (320, 500)},  # gaps between the windows
    ],
)
def test_eval_config_refuses_a_half_given_protocol(values) -> None:
    with pytest.raises(HRNetError, match="test protocol: "):
        EvalConfig(**values)


def test_eval_config_slide() -> None:
    assert EvalConfig().slide is None
    assert EvalConfig(slide_crop=(480, 480), slide_stride=(320, 320)).slide == ((480, 480), (320, 320))


def test_smoke_rows_shrink_the_test_protocol_as_their_crops() -> None:
    protocol = {"scales": [0.5, 1.0], "slide_crop": [480, 480], "slide_stride": [320, 320]}
    assert _smoke_test_protocol("pascal_context", protocol) == {
        "scales": [0.5, 1.0],
        "test_scale": [65, 65],
        "slide_crop": [60, 60],
        "slide_stride": [40, 40],
    }
    assert _smoke_test_protocol("acdc", {}) == {}  # scored at its own size


def test_every_rows_protocol_is_accepted_by_hrnet_evaluate() -> None:
    from hrnet.cli import build_parser
    from hrnet.mlops.pipeline import SUITES
    from hrnet.mlops.rows import load_suite

    parser = build_parser()
    root = Path(__file__).resolve().parents[2]
    sliding = []
    for params in SUITES:
        for row in load_suite(root / params).ready:
            args = parser.parse_args(["evaluate", "--run-dir", "runs/x", *row.evaluate_flags()])
            if row.id.startswith("seg_pascal_context_"):  # MMSegmentation's slide test
                assert (tuple(args.slide_crop), tuple(args.slide_stride)) == ((480, 480), (320, 320))
                sliding.append(row.id)
    assert sliding == ["seg_pascal_context_w48_40k", "seg_pascal_context_w48_80k"]


def test_the_dataset_gives_the_default_test_scale() -> None:
    from hrnet.engine.config import config_from_mapping
    from hrnet.tasks.segmentation import test_scale_of

    def cfg(dataset: str):
        values = {"task": "segmentation", "model": "fcn_hrnetv2_w18_small", "data": "d", "dataset": dataset}
        return config_from_mapping(values, source="test")

    assert test_scale_of(cfg("ade20k"), EvalConfig()) == (512, 2048)
    assert test_scale_of(cfg("ade20k"), EvalConfig(test_scale=(16, 64))) == (16, 64)
    assert test_scale_of(cfg("acdc"), EvalConfig()) is None


def test_evaluate_on_ade20k_rescales_slides_and_records_the_protocol(tmp_path) -> None:
    import numpy as np

    from hrnet.engine.config import config_from_mapping
    from hrnet.tasks import get_task
    from tests.data.fixtures import make_ade20k, save_image

    root = make_ade20k(tmp_path / "ade")  # one 4x8 validation image, and a 6x10 one beside it
    save_image(root / "images" / "validation" / "ADE_val_00000002.jpg", np.zeros((6, 10, 3), np.uint8))
    save_image(root / "annotations" / "validation" / "ADE_val_00000002.png", np.ones((6, 10), np.uint8))
    values = {
        "task": "segmentation",
        "model": "fcn_hrnetv2_w18_small",
        "data": str(root),
        "dataset": "ade20k",
        "num_classes": 150,
        "workers": 0,
    }
    cfg = config_from_mapping(values, source="test")
    task = get_task("segmentation")
    model = task._create(cfg, 150).eval()
    seen: list[tuple[int, int]] = []
    model.register_forward_pre_hook(lambda _m, inputs: seen.append(tuple(inputs[0].shape[-2:])))
    ecfg = EvalConfig(
        split="validation",
        batch_size=16,  # images of two sizes: evaluated one per pass
        workers=0,
        device="cpu",
        test_scale=(16, 64),
        slide_crop=(16, 24),
        slide_stride=(8, 8),
        num_plots=0,
        progress=False,
    )
    info = {"class_names": list(task.dataset(cfg, "validation", train=False).classes)}
    metrics = task.evaluate(model, cfg, ecfg, info, torch.device("cpu"), tmp_path)
    # 4x8 fitted in 16x64: factor 4 -> 16x32, windows at x 0-24 and 8-32; 6x10: factor 16/6 ->
    # 16x27 (26.67 + 0.5), windows at x 0-24 and 3-27
    assert seen == [(16, 24)] * 4
    assert metrics["test_resize"] == "fit 16x64" and metrics["test_mode"] == "slide 16x24 stride 8x8"
    assert 0.0 <= metrics["mIoU"] <= 1.0


def test_published_weights_evaluated_as_a_row_take_its_protocol_unless_flags_say_otherwise() -> None:
    from hrnet.cli import build_parser
    from hrnet.commands.evaluate import _protocol

    root = Path(__file__).resolve().parents[2]
    row = ["--weights", "w.pth", "--params", str(root / "benchmarks" / "params.yaml"), "--row"]
    parser = build_parser()
    context = _protocol(parser.parse_args(["evaluate", *row, "seg_pascal_context_w48_40k"]))
    assert context == {
        "scales": (0.5, 0.75, 1.0, 1.25, 1.5, 1.75),
        "test_scale": (),  # the dataset's (520 x 520)
        "slide_crop": (480, 480),
        "slide_stride": (320, 320),
        "flip": True,
        "person_boxes": "gt",
    }
    given = _protocol(
        parser.parse_args(["evaluate", *row, "seg_pascal_context_w48_40k", "--no-flip", "--scales", "1"])
    )
    assert given["flip"] is False and given["scales"] == (1.0,) and given["slide_crop"] == (480, 480)
    plain = _protocol(parser.parse_args(["evaluate", "--run-dir", "runs/x"]))
    assert plain == {
        "scales": (1.0,),
        "test_scale": (),
        "slide_crop": (),
        "slide_stride": (),
        "flip": False,
        "person_boxes": "gt",
    }


def _config(task: str, model: str, dataset: str, **extra):
    from hrnet.engine.config import config_from_mapping

    values = {"task": task, "model": model, "data": "d", "dataset": dataset, **extra}
    return config_from_mapping(values, source="test")


def test_predict_image_follows_the_protocol_it_is_given(tmp_path) -> None:
    from hrnet.data.io import read_image
    from hrnet.tasks import get_task

    cfg = _config("segmentation", "fcn_hrnetv2_w18_small", "ade20k")
    task, model, cpu = get_task("segmentation"), Recorder(), torch.device("cpu")
    image = torch.zeros(3, 4, 8, dtype=torch.uint8)
    info = {"class_names": ["a", "b", "c"]}
    ecfg = EvalConfig(test_scale=(16, 64), slide_crop=(16, 24), slide_stride=(8, 8))
    record = task.predict_image(model, cfg, info, image, device=cpu, picture=tmp_path / "a.png", ecfg=ecfg)
    # 4x8 fitted in 16x64: factor 4 -> 16x32, windows at x 0-24 and 8-32
    assert model.seen == [(16, 24)] * 2
    assert read_image(Path(record["mask"])).shape[-2:] == (4, 8)  # the prediction at the image's size
    model.seen.clear()
    task.predict_image(model, cfg, info, image, device=cpu, picture=tmp_path / "b.png")
    # no protocol given: ADE20K's test scale 2048x512, factor min(2048 / 8, 512 / 4) = 128, whole image
    assert model.seen == [(512, 1024)]


def test_predict_takes_a_rows_test_scale_and_windows_and_ms_flip_only_when_asked(capsys) -> None:
    from hrnet.cli import build_parser
    from hrnet.commands.predict import _protocol

    root = Path(__file__).resolve().parents[2]
    parser = build_parser()
    row = ["predict", "m.pt", "x.jpg", "--out", "o", "--params", str(root / "benchmarks" / "params.yaml")]
    context = _config("segmentation", "fcn_hrnetv2_w48", "pascal_context")
    ecfg = _protocol(parser.parse_args([*row, "--row", "seg_pascal_context_w48_40k"]), context)
    # the headline mIoU's protocol: single scale, 480x480 windows at stride 320 of the 520x520 fit
    assert (ecfg.slide, ecfg.scales, ecfg.flip) == (((480, 480), (320, 320)), (1.0,), False)
    assert "predict: fit 520x520, slide 480x480 stride 320x320" in capsys.readouterr().err
    asked = parser.parse_args([*row, "--row", "seg_pascal_context_w48_40k", "--flip", "--scales", "0.5", "1"])
    ecfg = _protocol(asked, context)
    assert (ecfg.slide, ecfg.scales, ecfg.flip) == (((480, 480), (320, 320)), (0.5, 1.0), True)
    pose = _config("pose", "pose_hrnet_w32", "coco_keypoints")
    assert _protocol(parser.parse_args([*row, "--row", "pose_coco_w32_256x192"]), pose).flip  # its AP's
    plain = parser.parse_args(["predict", "m.pt", "x.jpg", "--out", "o"])
    assert not _protocol(plain, pose).flip
    with pytest.raises(HRNetError, match="go together"):
        _protocol(parser.parse_args([*row]), pose)
    # a pose row's flip pairs are COCO's joints: not a protocol for a landmark model
    faces = _config("landmarks", "landmark_hrnetv2_w18", "landmarks_300w")
    with pytest.raises(HRNetError, match=r"pose_coco_w32_256x192: a pose row; .* not one for a landmarks"):
        _protocol(parser.parse_args([*row, "--row", "pose_coco_w32_256x192"]), faces)


def test_a_variable_length_option_before_the_image_paths_says_where_they_went(capsys) -> None:
    from hrnet.cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["predict", "m.pt", "--input-size", "32", "32", "images/", "--out", "o"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--input-size takes at most 2 integers, got '32 32 images/'; put the model and image" in err
    with pytest.raises(SystemExit):
        parser.parse_args(["predict", "m.pt", "--scales", "0.5", "1", "images/", "--out", "o"])
    assert "--scales takes numbers, got '0.5 1 images/'" in capsys.readouterr().err
    args = parser.parse_args(
        ["predict", "m.pt", "images/", "--input-size", "32", "--scales", "0.5", "1", "--out", "o"]
    )
    assert (args.input_size, args.scales, args.inputs) == ([32], [0.5, 1.0], [Path("images/")])


def test_predict_image_of_a_heatmap_task_runs_the_flip_test_when_asked(tmp_path) -> None:
    from hrnet.tasks import get_task

    class Mirror(nn.Module):
        """Heatmaps [B, 3, 16, 12] with a peak on the left (joint 0 and 1) or right (joint 2)."""

        def __init__(self) -> None:
            super().__init__()
            self.inputs: list[Tensor] = []

        def forward(self, x: Tensor) -> Tensor:
            self.inputs.append(x.clone())
            maps = torch.zeros(len(x), 3, 16, 12)
            maps[:, :, 8, 2] = 1.0
            return maps

    cfg = _config("pose", "pose_hrnet_w18_small", "coco_keypoints", input_size=[64, 48])
    task, model, cpu = get_task("pose"), Mirror(), torch.device("cpu")
    image = torch.randint(0, 255, (3, 40, 30), dtype=torch.uint8)
    info = {"flip_pairs": [[1, 2]]}
    plain = task.predict_image(model, cfg, info, image, device=cpu, picture=tmp_path / "a.png")
    assert len(model.inputs) == 1
    model.inputs.clear()
    flipped = task.predict_image(
        model, cfg, info, image, device=cpu, picture=tmp_path / "b.png", ecfg=EvalConfig(flip=True)
    )
    assert len(model.inputs) == 2 and torch.equal(model.inputs[1], model.inputs[0].flip(-1))
    # the mirrored pass puts every peak at the right (x 12 - 1 - 2 + 1 shift = 10): averaged,
    # each joint's score halves
    assert [k[2] for k in plain["keypoints"]] == [1.0, 1.0, 1.0]
    assert [k[2] for k in flipped["keypoints"]] == [0.5, 0.5, 0.5]


def test_every_rows_protocol_is_one_its_task_reads_and_others_are_refused() -> None:
    from hrnet.engine.config import protocol_fields
    from hrnet.mlops.pipeline import SUITES
    from hrnet.mlops.rows import load_suite
    from hrnet.tasks import get_task

    root = Path(__file__).resolve().parents[2]
    for params in SUITES:
        for row in load_suite(root / params).ready:
            task = get_task(row.train["task"])
            task.check_protocol(EvalConfig(**protocol_fields(dict(row.evaluate))))  # no error
    with pytest.raises(
        HRNetError,
        match=r"--scales, --flip: not part of the classification task's test protocol \(it reads none of them\)",
    ):
        get_task("classification").check_protocol(EvalConfig(scales=(0.5, 1.0), flip=True))
    with pytest.raises(
        HRNetError, match=r"--slide-crop, --slide-stride: not part of the pose task's .*--flip"
    ):
        get_task("pose").check_protocol(EvalConfig(slide_crop=(8, 8), slide_stride=(4, 4)))
    get_task("landmarks").check_protocol(EvalConfig(flip=True))


def test_model_flags_that_contradict_the_row_are_refused() -> None:
    """With --params/--row the row decides the model: a flag saying otherwise is refused, not
    silently dropped (the same value is accepted)."""
    from hrnet.cli import build_parser
    from hrnet.commands._published import published_config

    root = Path(__file__).resolve().parents[2]
    row = ["evaluate", "--weights", "w.pth", "--params", str(root / "benchmarks" / "params.yaml")]
    row += ["--row", "seg_pascal_context_w48_40k"]
    parser = build_parser()
    for flags, expected in (
        (["--model", "fcn_hrnetv2_w18"], "the model name fcn_hrnetv2_w18: .* \\(model: fcn_hrnetv2_w48\\)"),
        (["--dataset", "ade20k"], "--dataset ade20k: .*\\(dataset: pascal_context\\)"),
        (["--num-classes", "59"], "--num-classes 59: .*\\(num_classes: 60\\)"),
        (["--input-size", "512"], "--input-size 512: .*\\(input_size: \\[480, 480\\]\\)"),
    ):
        args = parser.parse_args([*row, *flags])
        with pytest.raises(HRNetError, match=expected):
            published_config(args, getattr(args, "model", None))
    same = parser.parse_args(
        [*row, "--model", "fcn_hrnetv2_w48", "--input-size", "480", "--num-classes", "60"]
    )
    assert published_config(same, same.model).model == "fcn_hrnetv2_w48"
    # hrnet predict/export: "-" is the row's model; export's --input-size is the example's size
    from hrnet.commands._published import import_published

    for command in (["predict", "-", "images/", "--out", "o"], ["export", "-", "--out", "x.onnx"]):
        args = parser.parse_args([*command, *row[1:]])
        with pytest.raises(HRNetError, match=r"w\.pth"):  # past the model check: the file is looked for
            import_published(args, model=None, out=Path("unused"))
    exported = parser.parse_args(["export", "-", "--out", "x.onnx", *row[1:], "--input-size", "512", "512"])
    assert published_config(exported, None, size_is_the_models=False).model == "fcn_hrnetv2_w48"
