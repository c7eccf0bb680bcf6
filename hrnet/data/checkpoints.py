"""The published checkpoints behind the paper rows: where each file is, its checksum and its number.

Every entry is one checkpoint file a public source links from a results table, with the number
that table gives for it (``value``, in percent; NME in percent of the normalising distance) and
the page that publishes both (``homepage``). ``row`` names the row of ``benchmarks/params.yaml``
the checkpoint verifies (same dataset, model, schedule and input size; "" when no row matches),
``model`` the name in :func:`hrnet.models.list_models` whose weights the file holds ("" when the
architecture is not built here, explained in ``note``), ``layout`` the state-dict layout a loader
has to map (``mmpretrain``, ``timm``, ``official`` = HRNet-Image-Classification, ``mmseg``,
``mmdet``, ``mmpose``, ``pose_repo``, ``landmark_repo``, ``seg_repo``).

Checksums are the published ones: OpenMMLab's publish scripts (mmpretrain, MMSegmentation,
MMDetection: ``tools/publish_model.py``) name a file ``<stem>-<sha256[:8]>.pth``, mmpose's
``<stem>-<sha256[:8]>_<date>.pth``, and timm's files follow torch.hub's ``<name>-<sha256
prefix>.pth`` (``check_hash``); those entries hold the 8 hex digits with ``sha256_prefix=True``.
The official repositories publish no checksum (``sha256=""``). Files on OneDrive or Google Drive
share links cannot be fetched by a script: their ``url`` is ``manual://<file name>`` and the
note says where the link is. Where a source replaced a checkpoint under the same config, the
earlier file keeps its training date in ``name``.

Nothing here downloads; :func:`checkpoints_for_row` lists the entries of one row.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CHECKPOINTS",
    "LAYOUTS",
    "MANUAL",
    "METRICS",
    "PublishedCheckpoint",
    "checkpoints_for_row",
    "get_checkpoint",
]

MANUAL = "manual://"
LAYOUTS = (
    "mmpretrain",
    "timm",
    "official",
    "mmseg",
    "mmdet",
    "mmpose",
    "pose_repo",
    "landmark_repo",
    "seg_repo",
)
METRICS = ("top1", "top5", "mIoU", "mIoU_ms_flip", "box_AP", "mask_AP", "keypoint_AP", "NME")


@dataclass(frozen=True)
class PublishedCheckpoint:
    """One published checkpoint file and the number its source publishes for it."""

    name: str  # catalogue name: the file's stem without the sha part (and the training timestamp)
    row: str  # the benchmarks/params.yaml row id it verifies ("" if no row)
    model: str  # our model name (hrnet.models.list_models()), "" if not built
    url: str  # download URL, or "manual://<file name>" for drive-hosted files
    filename: str
    sha256: str  # the full sha256 if published, else the prefix in the file name ("" if none)
    sha256_prefix: bool
    source: str  # public name of the publisher
    config: str  # the source's config name/path for it
    layout: str  # one of LAYOUTS
    metric: str  # our metric key (one of METRICS)
    value: float  # the number the source published for this checkpoint
    homepage: str  # where the number and the link are published
    note: str = ""


def _ckpt(
    name: str,
    row: str,
    model: str,
    url: str,
    *,
    source: str,
    config: str,
    layout: str,
    metric: str,
    value: float,
    homepage: str,
    note: str = "",
    sha: str = "dash",
) -> PublishedCheckpoint:
    """An entry; ``sha``: where the file name holds the sha256 prefix ("dash": ``<stem>-<sha>.pth``,
    "mmpose": ``<stem>-<sha>_<date>.pth``, "": not published)."""
    filename = url.removeprefix(MANUAL) if url.startswith(MANUAL) else url.rsplit("/", 1)[-1]
    if sha == "dash":
        digest = filename.rsplit("-", 1)[1].split(".", 1)[0]
    elif sha == "mmpose":
        digest = filename.rsplit("-", 1)[1].split("_", 1)[0]
    else:
        digest = ""
    return PublishedCheckpoint(
        name=name,
        row=row,
        model=model,
        url=url,
        filename=filename,
        sha256=digest,
        sha256_prefix=bool(digest),
        source=source,
        config=config,
        layout=layout,
        metric=metric,
        value=value,
        homepage=homepage,
        note=note,
    )


# ---- ImageNet-1k classifiers ---------------------------------------------------------------------

_MMPT = "https://download.openmmlab.com/mmclassification/v0/hrnet"
_MMPT_HOME = "https://github.com/open-mmlab/mmpretrain/blob/main/configs/hrnet/README.md"
_MMPT_NOTE = "converted by mmpretrain from HRNet-Image-Classification's release"


def _mmpretrain(width: str, stamp: str, value: float, row: str, model: str, tag: str = "", note: str = ""):
    name = f"hrnet-{width}_3rdparty_8xb32{tag}_in1k"
    return _ckpt(
        name,
        row,
        model,
        f"{_MMPT}/{name}_{stamp}.pth",
        source="mmpretrain",
        config=f"configs/hrnet/hrnet-{width}_4xb32_in1k.py",
        layout="mmpretrain",
        metric="top1",
        value=value,
        homepage=_MMPT_HOME,
        note=note or _MMPT_NOTE,
    )


_TIMM = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-hrnet"
# the model-index of timm's HRNet docs page (Weights + Top 1 Accuracy), at a fixed commit
_TIMM_HOME = (
    "https://github.com/huggingface/pytorch-image-models/blob/"
    "5392c0a4b34c1366463358e9362d150ea5bc607d/docs/models/hrnet.md"
)
_TIMM_NOTE = "timm's port of HRNet-Image-Classification's weights; timm now also serves it as {}.ms_in1k"


def _timm(timm_name: str, file_stem: str, value: float, model: str):
    return _ckpt(
        file_stem.rsplit("-", 1)[0],
        f"cls_{model}",
        model,
        f"{_TIMM}/{file_stem}.pth",
        source="timm",
        config=timm_name,
        layout="timm",
        metric="top1",
        value=value,
        homepage=_TIMM_HOME,
        note=_TIMM_NOTE.format(timm_name),
    )


_IC = "https://github.com/HRNet/HRNet-Image-Classification/releases/download/PretrainedWeights"
_IC_HOME = "https://github.com/HRNet/HRNet-Image-Classification"

CLASSIFICATION: tuple[PublishedCheckpoint, ...] = (
    _mmpretrain("w18", "20220120-0c10b180", 76.75, "cls_hrnet_w18", "hrnet_w18"),
    _mmpretrain("w30", "20220120-8aa3832f", 78.19, "cls_hrnet_w30", "hrnet_w30"),
    _mmpretrain("w32", "20220120-c394f1ab", 78.44, "cls_hrnet_w32", "hrnet_w32"),
    _mmpretrain("w40", "20220120-9a2dbfc5", 78.94, "cls_hrnet_w40", "hrnet_w40"),
    _mmpretrain("w44", "20220120-35d07f73", 78.88, "cls_hrnet_w44", "hrnet_w44"),
    _mmpretrain("w48", "20220120-e555ef50", 79.32, "cls_hrnet_w48", "hrnet_w48"),
    _mmpretrain("w64", "20220120-19126642", 79.46, "cls_hrnet_w64", "hrnet_w64"),
    _mmpretrain(
        "w18",
        "20220120-455f69ea",
        81.06,
        "cls_hrnet_w18_ssld",
        "hrnet_w18",
        tag="-ssld",
        note="converted by mmpretrain from HRNet-Image-Classification's HRNet_W18_C_ssld_pretrained.pth "
        "(PaddleClas SSLD distillation)",
    ),
    _mmpretrain(
        "w48",
        "20220120-d0459c38",
        83.63,
        "cls_hrnet_w48_ssld",
        "hrnet_w48",
        tag="-ssld",
        note="converted by mmpretrain from HRNet-Image-Classification's HRNet_W48_C_ssld_pretrained.pth "
        "(PaddleClas SSLD distillation)",
    ),
    _timm("hrnet_w18_small", "hrnet_w18_small_v1-f460c6bc", 72.34, "hrnet_w18_small"),
    _timm("hrnet_w18_small_v2", "hrnet_w18_small_v2-4c50a8cb", 75.11, "hrnet_w18_small_v2"),
    _timm("hrnet_w18", "hrnetv2_w18-8cb57bb9", 76.76, "hrnet_w18"),
    _timm("hrnet_w30", "hrnetv2_w30-8d7f8dab", 78.21, "hrnet_w30"),
    _timm("hrnet_w32", "hrnetv2_w32-90d8c5fb", 78.45, "hrnet_w32"),
    _timm("hrnet_w40", "hrnetv2_w40-7cd397a4", 78.93, "hrnet_w40"),
    _timm("hrnet_w44", "hrnetv2_w44-c9ac8c18", 78.89, "hrnet_w44"),
    _timm("hrnet_w48", "hrnetv2_w48-abd2e6ab", 79.32, "hrnet_w48"),
    _timm("hrnet_w64", "hrnetv2_w64-b47cc881", 79.46, "hrnet_w64"),
    _ckpt(
        "HRNet_W18_C_ssld_pretrained",
        "cls_hrnet_w18_ssld",
        "hrnet_w18",
        f"{_IC}/HRNet_W18_C_ssld_pretrained.pth",
        source="HRNet-Image-Classification",
        config="experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml",
        layout="official",
        metric="top1",
        value=81.2,
        homepage=_IC_HOME,
        note="published as top-1 error 18.8% (converted from PaddleClas); the row publishes mmpretrain's "
        "81.06 for its conversion of this file",
        sha="",
    ),
    _ckpt(
        "HRNet_W48_C_ssld_pretrained",
        "cls_hrnet_w48_ssld",
        "hrnet_w48",
        f"{_IC}/HRNet_W48_C_ssld_pretrained.pth",
        source="HRNet-Image-Classification",
        config="experiments/cls_hrnet_w48_sgd_lr5e-2_wd1e-4_bs32_x100.yaml",
        layout="official",
        metric="top1",
        value=83.6,
        homepage=_IC_HOME,
        note="published as top-1 error 16.4% and 'top-1 acc 83.6%' (converted from PaddleClas); the row "
        "publishes mmpretrain's 83.63 for its conversion of this file",
        sha="",
    ),
    _ckpt(
        "HRNet_W18_C_cosinelr_cutmix_300epoch",
        "",
        "hrnet_w18",
        f"{_IC}/HRNet_W18_C_cosinelr_cutmix_300epoch.pth.tar",
        source="HRNet-Image-Classification",
        config="experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml",
        layout="official",
        metric="top1",
        value=77.9,
        homepage=_IC_HOME,
        note="published as top-1 error 22.1%; cosine LR + CutMix, 300 epochs: no row has this recipe "
        "(cls_hrnet_w18 is the 100-epoch step schedule)",
        sha="",
    ),
    _ckpt(
        "HRNet_W48_C_cosinelr_cutmix_300epoch",
        "",
        "hrnet_w48",
        f"{_IC}/HRNet_W48_C_cosinelr_cutmix_300epoch.pth.tar",
        source="HRNet-Image-Classification",
        config="experiments/cls_hrnet_w48_sgd_lr5e-2_wd1e-4_bs32_x100.yaml",
        layout="official",
        metric="top1",
        value=81.1,
        homepage=_IC_HOME,
        note="published as top-1 error 18.9%; cosine LR + CutMix, 300 epochs: no row has this recipe "
        "(cls_hrnet_w48 is the 100-epoch step schedule)",
        sha="",
    ),
)

# ---- COCO detection (MMDetection) ------------------------------------------------------------------

_MMDET = "https://download.openmmlab.com/mmdetection/v2.0/hrnet"
_MMDET_HOME = "https://github.com/open-mmlab/mmdetection/blob/main/configs/hrnet/README.md"
_MMDET_RECIPE = "MMDetection's own training (8 GPUs x 2 images, lr 0.02)"
_NOT_BUILT = "architecture not built here (model ''); "


def _mmdet(name: str, stamp: str, config: str, row: str, model: str, box_ap: float, note: str):
    return _ckpt(
        name,
        row,
        model,
        f"{_MMDET}/{name}/{name}_{stamp}.pth",
        source="MMDetection",
        config=f"configs/hrnet/{config}",
        layout="mmdet",
        metric="box_AP",
        value=box_ap,
        homepage=_MMDET_HOME,
        note=note,
    )


def _vs_row(published: str) -> str:
    return f"{_MMDET_RECIPE}; the row publishes HRNet-Object-Detection's {published}"


DETECTION: tuple[PublishedCheckpoint, ...] = (
    _mmdet(
        "faster_rcnn_hrnetv2p_w18_1x_coco",
        "20200130-56651a6d",
        "faster-rcnn_hrnetv2p-w18-1x_coco.py",
        "det_faster_rcnn_w18_1x",
        "fasterrcnn_hrnetv2p_w18",
        36.9,
        _vs_row("36.1"),
    ),
    _mmdet(
        "faster_rcnn_hrnetv2p_w18_2x_coco",
        "20200702_085731-a4ec0611",
        "faster-rcnn_hrnetv2p-w18-2x_coco.py",
        "det_faster_rcnn_w18_2x",
        "fasterrcnn_hrnetv2p_w18",
        38.9,
        _vs_row("38.1"),
    ),
    _mmdet(
        "faster_rcnn_hrnetv2p_w32_1x_coco",
        "20200130-6e286425",
        "faster-rcnn_hrnetv2p-w32-1x_coco.py",
        "det_faster_rcnn_w32_1x",
        "fasterrcnn_hrnetv2p_w32",
        40.2,
        _vs_row("39.5"),
    ),
    _mmdet(
        "faster_rcnn_hrnetv2p_w32_2x_coco",
        "20200529_015927-976a9c15",
        "faster-rcnn_hrnetv2p-w32_2x_coco.py",
        "det_faster_rcnn_w32_2x",
        "fasterrcnn_hrnetv2p_w32",
        41.4,
        _vs_row("40.8"),
    ),
    _mmdet(
        "faster_rcnn_hrnetv2p_w40_1x_coco",
        "20200210-95c1f5ce",
        "faster-rcnn_hrnetv2p-w40-1x_coco.py",
        "det_faster_rcnn_w40_1x",
        "fasterrcnn_hrnetv2p_w40",
        41.2,
        _vs_row("40.4"),
    ),
    _mmdet(
        "faster_rcnn_hrnetv2p_w40_2x_coco",
        "20200512_161033-0f236ef4",
        "faster-rcnn_hrnetv2p-w40_2x_coco.py",
        "det_faster_rcnn_w40_2x",
        "fasterrcnn_hrnetv2p_w40",
        42.1,
        _vs_row("41.4"),
    ),
    _mmdet(
        "mask_rcnn_hrnetv2p_w18_1x_coco",
        "20200205-1c3d78ed",
        "mask-rcnn_hrnetv2p-w18-1x_coco.py",
        "det_mask_rcnn_w18_1x",
        "maskrcnn_hrnetv2p_w18",
        37.7,
        "mask AP 34.2; " + _vs_row("box 37.3 / mask 34.2"),
    ),
    _mmdet(
        "mask_rcnn_hrnetv2p_w18_2x_coco",
        "20200212-b3c825b1",
        "mask-rcnn_hrnetv2p-w18-2x_coco.py",
        "det_mask_rcnn_w18_2x",
        "maskrcnn_hrnetv2p_w18",
        39.8,
        "mask AP 36.0; " + _vs_row("box 39.2 / mask 35.7"),
    ),
    _mmdet(
        "mask_rcnn_hrnetv2p_w32_1x_coco",
        "20200207-b29f616e",
        "mask-rcnn_hrnetv2p-w32-1x_coco.py",
        "det_mask_rcnn_w32_1x",
        "maskrcnn_hrnetv2p_w32",
        41.2,
        "mask AP 37.1; " + _vs_row("box 40.7 / mask 36.8"),
    ),
    _mmdet(
        "mask_rcnn_hrnetv2p_w32_2x_coco",
        "20200213-45b75b4d",
        "mask-rcnn_hrnetv2p-w32-2x_coco.py",
        "det_mask_rcnn_w32_2x",
        "maskrcnn_hrnetv2p_w32",
        42.5,
        "mask AP 37.8; " + _vs_row("box 42.1 / mask 37.6"),
    ),
    _mmdet(
        "mask_rcnn_hrnetv2p_w40_1x_coco",
        "20200511_015646-66738b35",
        "mask-rcnn_hrnetv2p-w40_1x_coco.py",
        "",
        "maskrcnn_hrnetv2p_w40",
        42.1,
        "mask AP 37.5; no Mask R-CNN W40 row (HRNet-Object-Detection published W18 and W32 only)",
    ),
    _mmdet(
        "mask_rcnn_hrnetv2p_w40_2x_coco",
        "20200512_163732-aed5e4ab",
        "mask-rcnn_hrnetv2p-w40-2x_coco.py",
        "",
        "maskrcnn_hrnetv2p_w40",
        42.8,
        "mask AP 38.2; no Mask R-CNN W40 row (HRNet-Object-Detection published W18 and W32 only)",
    ),
    _mmdet(
        "cascade_rcnn_hrnetv2p_w18_20e_coco",
        "20200210-434be9d7",
        "cascade-rcnn_hrnetv2p-w18-20e_coco.py",
        "",
        "cascadercnn_hrnetv2p_w18",
        41.2,
        "no Cascade R-CNN W18 20e row (HRNet-Object-Detection published W32 only; the paper figure "
        "det_coco_minival_cascade_rcnn_w18 has no published recipe)",
    ),
    _mmdet(
        "cascade_rcnn_hrnetv2p_w32_20e_coco",
        "20200208-928455a4",
        "cascade-rcnn_hrnetv2p-w32-20e_coco.py",
        "det_cascade_rcnn_w32_20e",
        "cascadercnn_hrnetv2p_w32",
        43.3,
        _vs_row("43.7"),
    ),
    _mmdet(
        "cascade_rcnn_hrnetv2p_w40_20e_coco",
        "20200512_161112-75e47b04",
        "cascade-rcnn_hrnetv2p-w40-20e_coco.py",
        "",
        "cascadercnn_hrnetv2p_w40",
        43.8,
        "no Cascade R-CNN W40 row (HRNet-Object-Detection published W32 only)",
    ),
    _mmdet(
        "cascade_mask_rcnn_hrnetv2p_w18_20e_coco",
        "20200210-b543cd2b",
        "cascade-mask-rcnn_hrnetv2p-w18_20e_coco.py",
        "det_cascade_mask_rcnn_w18_20e",
        "cascade_mask_rcnn_hrnetv2p_w18",
        41.6,
        _vs_row("box 41.9 / mask 36.4") + "; mask AP 36.4",
    ),
    _mmdet(
        "cascade_mask_rcnn_hrnetv2p_w32_20e_coco",
        "20200512_154043-39d9cf7b",
        "cascade-mask-rcnn_hrnetv2p-w32_20e_coco.py",
        "det_cascade_mask_rcnn_w32_20e",
        "cascade_mask_rcnn_hrnetv2p_w32",
        44.3,
        _vs_row("box 44.5 / mask 38.5") + "; mask AP 38.6",
    ),
    _mmdet(
        "cascade_mask_rcnn_hrnetv2p_w40_20e_coco",
        "20200527_204922-969c4610",
        "cascade-mask-rcnn_hrnetv2p-w40-20e_coco.py",
        "",
        "cascade_mask_rcnn_hrnetv2p_w40",
        45.1,
        "no Cascade Mask R-CNN W40 row; mask AP 39.3",
    ),
    _mmdet(
        "htc_hrnetv2p_w18_20e_coco",
        "20200210-b266988c",
        "htc_hrnetv2p-w18_20e_coco.py",
        "det_htc_w18_20e",
        "htc_hrnetv2p_w18",
        42.8,
        _vs_row("box 43.1 / mask 37.9") + "; mask AP 37.9",
    ),
    _mmdet(
        "htc_hrnetv2p_w32_20e_coco",
        "20200207-7639fa12",
        "htc_hrnetv2p-w32_20e_coco.py",
        "det_htc_w32_20e",
        "htc_hrnetv2p_w32",
        45.4,
        _vs_row("box 45.3 / mask 39.6") + "; mask AP 39.9",
    ),
    _mmdet(
        "htc_hrnetv2p_w40_20e_coco",
        "20200529_183411-417c4d5b",
        "htc_hrnetv2p-w40_20e_coco.py",
        "",
        "htc_hrnetv2p_w40",
        46.4,
        "no HTC W40 row; mask AP 40.8",
    ),
    _mmdet(
        "fcos_hrnetv2p_w18_gn-head_4x4_1x_coco",
        "20201212_100710-4ad151de",
        "fcos_hrnetv2p-w18-gn-head_4xb4-1x_coco.py",
        "det_fcos_w18_1x",
        "fcos_hrnetv2p_w18",
        35.3,
        "the row's number (MMDetection) is the same",
    ),
    _mmdet(
        "fcos_hrnetv2p_w18_gn-head_4x4_2x_coco",
        "20201212_101110-5c575fa5",
        "fcos_hrnetv2p-w18-gn-head_4xb4-2x_coco.py",
        "det_fcos_w18_2x",
        "fcos_hrnetv2p_w18",
        38.2,
        "the row's number (MMDetection) is the same",
    ),
    _mmdet(
        "fcos_hrnetv2p_w32_gn-head_4x4_1x_coco",
        "20201211_134730-cb8055c0",
        "fcos_hrnetv2p-w32-gn-head_4xb4-1x_coco.py",
        "det_fcos_w32_1x",
        "fcos_hrnetv2p_w32",
        39.5,
        "the row's number (MMDetection) is the same",
    ),
    _mmdet(
        "fcos_hrnetv2p_w32_gn-head_4x4_2x_coco",
        "20201212_112133-77b6b9bb",
        "fcos_hrnetv2p-w32-gn-head_4xb4-2x_coco.py",
        "det_fcos_w32_2x",
        "fcos_hrnetv2p_w32",
        40.8,
        "the row's number (MMDetection) is the same",
    ),
    _mmdet(
        "fcos_hrnetv2p_w18_gn-head_mstrain_640-800_4x4_2x_coco",
        "20201212_111651-441e9d9f",
        "fcos_hrnetv2p-w18-gn-head_ms-640-800-4xb4-2x_coco.py",
        "",
        "fcos_hrnetv2p_w18",
        38.3,
        "multi-scale training (640-800): no row",
    ),
    _mmdet(
        "fcos_hrnetv2p_w32_gn-head_mstrain_640-800_4x4_2x_coco",
        "20201212_090846-b6f2b49f",
        "fcos_hrnetv2p-w32-gn-head_ms-640-800-4xb4-2x_coco.py",
        "",
        "fcos_hrnetv2p_w32",
        41.9,
        "multi-scale training (640-800): no row",
    ),
    _mmdet(
        "fcos_hrnetv2p_w40_gn-head_mstrain_640-800_4x4_2x_coco",
        "20201212_124752-f22d2ce5",
        "fcos_hrnetv2p-w40-gn-head_ms-640-800-4xb4-2x_coco.py",
        "",
        "fcos_hrnetv2p_w40",
        42.7,
        "multi-scale training (640-800): no row; the README's row says HRNetV2p-W48 but its config and "
        "file are W40",
    ),
    # SysCV/bdd100k-models ins_seg/README.md (HRNet table, "HRNet-w32 | 3x | MS-train": mask AP-val
    # 22.45, box AP-val 28.16); the file's md5 is published beside it (<name>.md5), not in its name
    _ckpt(
        "mask_rcnn_hrnetv2p_w32_3x_ins_seg_bdd100k",
        "det_bdd100k_val_hrnet",
        "maskrcnn_hrnetv2p_w32",
        "https://dl.cv.ethz.ch/bdd100k/ins_seg/models/mask_rcnn_hrnetv2p_w32_3x_ins_seg_bdd100k.pth",
        source="SysCV/bdd100k-models",
        config="ins_seg/configs/ins_seg/mask_rcnn_hrnetv2p_w32_3x_ins_seg_bdd100k.py",
        layout="mmdet",
        metric="mask_AP",
        value=22.45,
        homepage="https://github.com/SysCV/bdd100k-models/tree/main/ins_seg",
        note="MMDetection 2.x checkpoint, 8 BDD100K classes; box AP-val 28.16; scored by the official "
        "bdd100k evaluator as the row; no sha256 published (trust on first use)",
        sha="",
    ),
)

# MMDetection v1.x's model zoo (before its v2.0 retraining): files on OpenMMLab's former S3 bucket,
# several of them the ones HRNet-Object-Detection's README links (it marks MMDetection's own with "*")
_MMDET_V1 = "https://open-mmlab.s3.ap-northeast-2.amazonaws.com/mmdetection/models/hrnet"
_MMDET_V1_HOME = "https://github.com/open-mmlab/mmdetection/blob/v1.2.0/configs/hrnet/README.md"
_V1_NOTE = "MMDetection v1.x model zoo (the retired S3 bucket; the link may no longer resolve)"


def _mmdet_v1(name: str, stamp: str, row: str, model: str, box_ap: float, note: str = ""):
    return _ckpt(
        name,
        row,
        model,
        f"{_MMDET_V1}/{name}_{stamp}.pth",
        source="MMDetection",
        config=f"configs/hrnet/{name}.py",
        layout="mmdet",
        metric="box_AP",
        value=box_ap,
        homepage=_MMDET_V1_HOME,
        note=f"{_V1_NOTE}; {note}" if note else _V1_NOTE,
    )


def _v1_vs_row(published: str) -> str:
    return f"the row publishes HRNet-Object-Detection's {published}"


DETECTION_V1: tuple[PublishedCheckpoint, ...] = (
    _mmdet_v1(
        "faster_rcnn_hrnetv2p_w18_1x",
        "20190522-e368c387",
        "det_faster_rcnn_w18_1x",
        "fasterrcnn_hrnetv2p_w18",
        36.1,
        _v1_vs_row("36.1"),
    ),
    _mmdet_v1(
        "faster_rcnn_hrnetv2p_w18_2x",
        "20190810-9c8615d5",
        "det_faster_rcnn_w18_2x",
        "fasterrcnn_hrnetv2p_w18",
        38.3,
        _v1_vs_row("38.1"),
    ),
    _mmdet_v1(
        "faster_rcnn_hrnetv2p_w32_1x",
        "20190522-d22f1fef",
        "det_faster_rcnn_w32_1x",
        "fasterrcnn_hrnetv2p_w32",
        39.5,
        _v1_vs_row("39.5"),
    ),
    _mmdet_v1(
        "faster_rcnn_hrnetv2p_w32_2x",
        "20190810-24e8912a",
        "det_faster_rcnn_w32_2x",
        "fasterrcnn_hrnetv2p_w32",
        40.6,
        _v1_vs_row("40.8"),
    ),
    _mmdet_v1(
        "faster_rcnn_hrnetv2p_w48_1x",
        "20190820-5c6d0903",
        "",
        "fasterrcnn_hrnetv2p_w48",
        40.9,
        "no Faster R-CNN W48 row",
    ),
    _mmdet_v1(
        "faster_rcnn_hrnetv2p_w48_2x",
        "20190820-79fb8bfc",
        "",
        "fasterrcnn_hrnetv2p_w48",
        41.5,
        "no Faster R-CNN W48 row",
    ),
    _mmdet_v1(
        "mask_rcnn_hrnetv2p_w18_1x",
        "20190522-c8ad459f",
        "det_mask_rcnn_w18_1x",
        "maskrcnn_hrnetv2p_w18",
        37.3,
        "mask AP 34.2; " + _v1_vs_row("box 37.3 / mask 34.2"),
    ),
    _mmdet_v1(
        "mask_rcnn_hrnetv2p_w18_2x",
        "20190810-1e4747eb",
        "det_mask_rcnn_w18_2x",
        "maskrcnn_hrnetv2p_w18",
        39.2,
        "mask AP 35.7; " + _v1_vs_row("box 39.2 / mask 35.7"),
    ),
    _mmdet_v1(
        "mask_rcnn_hrnetv2p_w32_1x",
        "20190522-374aaa00",
        "det_mask_rcnn_w32_1x",
        "maskrcnn_hrnetv2p_w32",
        40.7,
        "mask AP 36.8; " + _v1_vs_row("box 40.7 / mask 36.8"),
    ),
    _mmdet_v1(
        "mask_rcnn_hrnetv2p_w32_2x",
        "20190810-773eca75",
        "det_mask_rcnn_w32_2x",
        "maskrcnn_hrnetv2p_w32",
        41.7,
        "mask AP 37.5; " + _v1_vs_row("box 42.1 / mask 37.6"),
    ),
    _mmdet_v1(
        "mask_rcnn_hrnetv2p_w48_1x",
        "20190820-0923d1ad",
        "",
        "maskrcnn_hrnetv2p_w48",
        42.4,
        "mask AP 38.1; no Mask R-CNN W48 row",
    ),
    _mmdet_v1(
        "mask_rcnn_hrnetv2p_w48_2x",
        "20190820-70df51b2",
        "",
        "maskrcnn_hrnetv2p_w48",
        42.9,
        "mask AP 38.3; no Mask R-CNN W48 row",
    ),
    _mmdet_v1(
        "cascade_rcnn_hrnetv2p_w18_20e",
        "20190810-132012d0",
        "",
        "cascadercnn_hrnetv2p_w18",
        41.2,
        "no Cascade R-CNN W18 row",
    ),
    _mmdet_v1(
        "cascade_rcnn_hrnetv2p_w32_20e",
        "20190522-55bec4ee",
        "det_cascade_rcnn_w32_20e",
        "cascadercnn_hrnetv2p_w32",
        43.7,
        _v1_vs_row("43.7"),
    ),
    _mmdet_v1(
        "cascade_rcnn_hrnetv2p_w48_20e",
        "20190810-f40ed8e1",
        "det_cascade_rcnn_w48_20e",
        "cascadercnn_hrnetv2p_w48",
        44.6,
    ),
    _mmdet_v1(
        "cascade_mask_rcnn_hrnetv2p_w18_20e",
        "20190810-054fb7bf",
        "det_cascade_mask_rcnn_w18_20e",
        "cascade_mask_rcnn_hrnetv2p_w18",
        41.9,
        "mask AP 36.4; the file HRNet-Object-Detection's README links, the row's number",
    ),
    _mmdet_v1(
        "cascade_mask_rcnn_hrnetv2p_w32_20e",
        "20190810-76f61cd0",
        "det_cascade_mask_rcnn_w32_20e",
        "cascade_mask_rcnn_hrnetv2p_w32",
        44.5,
        "mask AP 38.5; the file HRNet-Object-Detection's README links, the row's number",
    ),
    _mmdet_v1(
        "cascade_mask_rcnn_hrnetv2p_w48_20e",
        "20190810-d04a1415",
        "det_cascade_mask_rcnn_w48_20e",
        "cascade_mask_rcnn_hrnetv2p_w48",
        46.0,
        "mask AP 39.5; the file HRNet-Object-Detection's README links, the row's number",
    ),
    _mmdet_v1(
        "htc_hrnetv2p_w18_20e",
        "20190810-d70072af",
        "det_htc_w18_20e",
        "htc_hrnetv2p_w18",
        43.1,
        "mask AP 37.9; the file HRNet-Object-Detection's README links, the row's number",
    ),
    _mmdet_v1(
        "htc_hrnetv2p_w32_20e",
        "20190810-82f9ef5a",
        "det_htc_w32_20e",
        "htc_hrnetv2p_w32",
        45.3,
        "mask AP 39.6; the file HRNet-Object-Detection's README links, the row's number",
    ),
    _mmdet_v1(
        "htc_hrnetv2p_w48_20e",
        "20190810-f6d2c3fd",
        "det_htc_w48_20e",
        "htc_hrnetv2p_w48",
        46.8,
        "mask AP 40.7; the file HRNet-Object-Detection's README links, the row's number",
    ),
    _mmdet_v1(
        "htc_hrnetv2p_w48_28e",
        "20190810-a4274b38",
        "det_htc_w48_28e",
        "htc_hrnetv2p_w48",
        47.0,
        "mask AP 41.0; the file HRNet-Object-Detection's README links, the row's number",
    ),
)

# ---- semantic segmentation (MMSegmentation FCN heads) ----------------------------------------------

_MMSEG = "https://download.openmmlab.com/mmsegmentation/v0.5/hrnet"
_MMSEG_HOME = "https://github.com/open-mmlab/mmsegmentation/blob/main/configs/hrnet/README.md"
# the tables before MMSegmentation replaced three checkpoints (their retrained files are dated 2021-08)
_MMSEG_V016_HOME = "https://github.com/open-mmlab/mmsegmentation/blob/v0.16.0/configs/hrnet/README.md"
_SEG_MODEL = {"hr18s": "fcn_hrnetv2_w18_small_v2", "hr18": "fcn_hrnetv2_w18", "hr48": "fcn_hrnetv2_w48"}
_SEG_ROW_WIDTH = {"hr18s": "w18_small", "hr18": "w18", "hr48": "w48"}
# dataset: (0.x file name part, 1.x config name part, the rows' dataset id)
_SEG_DATA = {
    "cityscapes": ("512x1024_{s}_cityscapes", "4xb2-{s}_cityscapes-512x1024", "cityscapes"),
    "ade20k": ("512x512_{s}_ade20k", "4xb4-{s}_ade20k-512x512", "ade20k"),
    "voc12aug": ("512x512_{s}_voc12aug", "4xb4-{s}_voc12aug-512x512", "voc_aug"),
    "pascal_context": ("480x480_{s}_pascal_context", "4xb4-{s}_pascal-context-480x480", "pascal_context"),
    "pascal_context_59": ("480x480_{s}_pascal_context_59", "4xb4-{s}_pascal-context-59-480x480", ""),
}


def _mmseg(
    width: str,
    data: str,
    sched: str,
    stamp: str,
    miou: float,
    *,
    name: str = "",
    homepage: str = _MMSEG_HOME,
    old_config: bool = False,
    note: str = "",
):
    """An FCN checkpoint; ``old_config``: name the 0.x config (the file is not in the current table)."""
    stem_fmt, config_fmt, row_data = _SEG_DATA[data]
    stem = f"fcn_{width}_{stem_fmt.format(s=sched)}"
    config = stem if old_config else f"fcn_{width}_{config_fmt.format(s=sched)}"
    row = f"seg_{row_data}_{_SEG_ROW_WIDTH[width]}_{sched}" if row_data else ""
    return _ckpt(
        name or stem,
        row,
        _SEG_MODEL[width],
        f"{_MMSEG}/{stem}/{stem}_{stamp}.pth",
        source="MMSegmentation",
        config=f"configs/hrnet/{config}.py",
        layout="mmseg",
        metric="mIoU",
        value=miou,
        homepage=homepage,
        note=note,
    )


def _replaced(later: str) -> str:
    return (
        "superseded: MMSegmentation's current table links a retrained file "
        f"({later}); this is the file and number its v0.16 table published, the ones the row publishes"
    )


def _retrained(earlier: float) -> str:
    return (
        "MMSegmentation's retrained checkpoint (2021-08) replacing the one the row publishes "
        f"({earlier}); the earlier file is the entry named with its 2020 date"
    )


SEGMENTATION: tuple[PublishedCheckpoint, ...] = (
    _mmseg("hr18s", "cityscapes", "40k", "20200601_014216-93db27d0", 73.86),
    _mmseg("hr18", "cityscapes", "40k", "20200601_014216-f196fb4e", 77.19),
    _mmseg("hr48", "cityscapes", "40k", "20200601_014240-a989b146", 78.48),
    _mmseg("hr18s", "cityscapes", "80k", "20200601_202700-1462b75d", 75.31),
    _mmseg("hr18", "cityscapes", "80k", "20200601_223255-4e7b345e", 78.65),
    _mmseg("hr48", "cityscapes", "80k", "20200601_202606-58ea95d6", 79.93),
    _mmseg("hr18s", "cityscapes", "160k", "20200602_190901-4a0797ea", 76.31),
    _mmseg("hr18", "cityscapes", "160k", "20200602_190822-221e4a4f", 78.8),
    _mmseg("hr48", "cityscapes", "160k", "20200602_190946-59b7973e", 80.65),
    _mmseg("hr18s", "ade20k", "80k", "20200614_144345-77fc814a", 31.38),
    _mmseg(
        "hr18",
        "ade20k",
        "80k",
        "20200614_185145-66f20cb7",
        35.51,
        name="fcn_hr18_512x512_80k_ade20k_20200614",
        homepage=_MMSEG_V016_HOME,
        old_config=True,
        note=_replaced("fcn_hr18_512x512_80k_ade20k_20210827_114910-6c9382c0.pth, 36.27"),
    ),
    _mmseg(
        "hr18",
        "ade20k",
        "80k",
        "20210827_114910-6c9382c0",
        36.27,
        note=_retrained(35.51),
    ),
    _mmseg("hr48", "ade20k", "80k", "20200614_193946-7ba5258d", 41.9),
    _mmseg(
        "hr18s",
        "ade20k",
        "160k",
        "20200614_214413-870f65ac",
        33.0,
        name="fcn_hr18s_512x512_160k_ade20k_20200614",
        homepage=_MMSEG_V016_HOME,
        old_config=True,
        note=_replaced("fcn_hr18s_512x512_160k_ade20k_20210829_174739-f1e7c2e7.pth, 33.07"),
    ),
    _mmseg(
        "hr18s",
        "ade20k",
        "160k",
        "20210829_174739-f1e7c2e7",
        33.07,
        note=_retrained(33.0),
    ),
    _mmseg("hr18", "ade20k", "160k", "20200614_214426-ca961836", 36.79),
    _mmseg("hr48", "ade20k", "160k", "20200614_214407-a52fc02c", 42.02),
    _mmseg(
        "hr18s",
        "voc12aug",
        "20k",
        "20200617_224503-56e36088",
        65.2,
        name="fcn_hr18s_512x512_20k_voc12aug_20200617",
        homepage=_MMSEG_V016_HOME,
        old_config=True,
        note=_replaced("fcn_hr18s_512x512_20k_voc12aug_20210829_174910-0aceadb4.pth, 65.5"),
    ),
    _mmseg(
        "hr18s",
        "voc12aug",
        "20k",
        "20210829_174910-0aceadb4",
        65.5,
        note=_retrained(65.2),
    ),
    _mmseg("hr18", "voc12aug", "20k", "20200617_224503-488d45f7", 72.3),
    _mmseg("hr48", "voc12aug", "20k", "20200617_224419-89de05cd", 75.87),
    _mmseg("hr18s", "voc12aug", "40k", "20200614_000648-4f8d6e7f", 66.61),
    _mmseg("hr18", "voc12aug", "40k", "20200613_224401-1b4b76cd", 72.9),
    _mmseg("hr48", "voc12aug", "40k", "20200613_222111-1b0f18bc", 76.24),
    _mmseg("hr48", "pascal_context", "40k", "20200911_164852-667d00b0", 45.14),
    _mmseg("hr48", "pascal_context", "80k", "20200911_155322-847a6711", 45.84),
    _mmseg(
        "hr48",
        "pascal_context_59",
        "40k",
        "20210410_122738-b808b8b2",
        50.33,
        note="59 classes (no background): the seg_pascal_context_* rows are the 60-class setting",
    ),
    _mmseg(
        "hr48",
        "pascal_context_59",
        "80k",
        "20210411_003240-3ae7081e",
        51.12,
        note="59 classes (no background): the seg_pascal_context_* rows are the 60-class setting",
    ),
)

# ---- HRNet-Semantic-Segmentation's own checkpoints -------------------------------------------------

_SEG_REPO = "https://github.com/HRNet/HRNet-Semantic-Segmentation"
_SEG_OCR_HOME = f"{_SEG_REPO}/tree/HRNet-OCR"
_SEG_STORE = "https://github.com/hsfzxjy/models.storage/releases/download/HRNet-OCR"
_PWC = "the row publishes Papers with Code's {} for the paper's figure"


def _seg_repo(name, row, model, url, config, metric, value, homepage, note):
    return _ckpt(
        name,
        row,
        model,
        url,
        source="HRNet-Semantic-Segmentation",
        config=config,
        layout="seg_repo",
        metric=metric,
        value=value,
        homepage=homepage,
        note=note,
        sha="",
    )


SEG_REPO: tuple[PublishedCheckpoint, ...] = (
    _seg_repo(
        "hrnet_w48_cityscapes_cls19_1024x2048_trainset",
        "seg_cityscapes_val_hrnetv2_w48",
        "fcn_hrnetv2_w48",
        f"{MANUAL}hrnet_w48_cityscapes_cls19_1024x2048_trainset.pth",
        "experiments/cityscapes/seg_hrnet_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml",
        "mIoU",
        81.1,
        f"{_SEG_REPO}/tree/pytorch-v1.1",
        "Cityscapes val, single scale, trained on train; OneDrive "
        "https://1drv.ms/u/s!Aus8VCZ_C_33gSlK7Fju_sXCxFUt?e=WZ96Ck (file name as the README's test "
        "commands use it); " + _PWC.format("81.1"),
    ),
    _seg_repo(
        "hrnet_w48_pascal_context_cls59_480x480",
        "seg_pascal_context_hrnetv2_w48",
        "fcn_hrnetv2_w48",
        f"{MANUAL}hrnet_w48_pascal_context_cls59_480x480.pth",
        "experiments/pascal_ctx/seg_hrnet_w48_cls59_480x480_sgd_lr4e-3_wd1e-4_bs_16_epoch200.yaml",
        "mIoU_ms_flip",
        54.1,
        f"{_SEG_REPO}/tree/master",
        "PASCAL Context 59 classes, scales 0.5-2.0 + flip; OneDrive "
        "https://1drv.ms/u/s!Aus8VCZ_C_33f5Bfbt4KmLeX8uw (file name as the README's test commands use "
        "it); " + _PWC.format("54"),
    ),
    _seg_repo(
        "hrnet_cs_8090_torch11",
        "seg_cityscapes_val_hrnetv2_w48",
        "fcn_hrnetv2_w48",
        f"{_SEG_STORE}/hrnet_cs_8090_torch11.pth",
        "experiments/cityscapes/seg_hrnet_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml",
        "mIoU",
        80.9,
        _SEG_OCR_HOME,
        "Cityscapes val, single scale (HRNet-OCR branch, PyTorch 1.1 retraining); " + _PWC.format("81.1"),
    ),
    _seg_repo(
        "hrnet_pascal_ctx_5410_torch11",
        "seg_pascal_context_hrnetv2_w48",
        "fcn_hrnetv2_w48",
        f"{_SEG_STORE}/hrnet_pascal_ctx_5410_torch11.pth",
        "experiments/pascal_ctx/seg_hrnet_w48_cls59_520x520_sgd_lr1e-3_wd1e-4_bs_16_epoch200.yaml",
        "mIoU_ms_flip",
        54.1,
        _SEG_OCR_HOME,
        "PASCAL Context 59 classes, 520x520, multi-scale + flip (HRNet-OCR branch); " + _PWC.format("54"),
    ),
    _seg_repo(
        "hrnet_ade20k_4312_torch04",
        "",
        "fcn_hrnetv2_w48",
        f"{_SEG_STORE}/hrnet_ade20k_4312_torch04.pth",
        "experiments/ade20k/seg_hrnet_w48_520x520_ohem_sgd_lr2e-2_wd1e-4_bs_16_epoch120.yaml",
        "mIoU",
        43.1,
        _SEG_OCR_HOME,
        "ADE20K val, single scale (44.2 with multi-scale + flip); OHEM, 520x520, 120 epochs: the "
        "seg_ade20k_* rows follow MMSegmentation's recipe",
    ),
    _seg_repo(
        "hrnet_ocr_cs_8162_torch11",
        "",
        "",
        f"{_SEG_STORE}/hrnet_ocr_cs_8162_torch11.pth",
        "experiments/cityscapes/seg_hrnet_ocr_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml",
        "mIoU",
        81.6,
        _SEG_OCR_HOME,
        _NOT_BUILT + "HRNetV2-W48 + OCR; Cityscapes val, single scale",
    ),
    _seg_repo(
        "hrnet_ocr_cs_trainval_8227_torch11",
        "",
        "",
        f"{_SEG_STORE}/hrnet_ocr_cs_trainval_8227_torch11.pth",
        "experiments/cityscapes/seg_hrnet_ocr_w48_trainval_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml",
        "mIoU_ms_flip",
        82.3,
        _SEG_OCR_HOME,
        _NOT_BUILT + "HRNetV2-W48 + OCR trained on train+val; Cityscapes test server, multi-scale + "
        "flip (the README's test command names the file hrnet_ocr_trainval_cs_8227_torch11.pth)",
    ),
    _seg_repo(
        "hrnet_ocr_pascal_ctx_5618_torch11",
        "",
        "",
        f"{_SEG_STORE}/hrnet_ocr_pascal_ctx_5618_torch11.pth",
        "experiments/pascal_ctx/seg_hrnet_ocr_w48_cls59_520x520_sgd_lr1e-3_wd1e-4_bs_16_epoch200.yaml",
        "mIoU_ms_flip",
        56.2,
        _SEG_OCR_HOME,
        _NOT_BUILT + "HRNetV2-W48 + OCR; PASCAL Context 59 classes, multi-scale + flip",
    ),
    _seg_repo(
        "hrnet_ocr_ade20k_4451_torch04",
        "",
        "",
        f"{_SEG_STORE}/hrnet_ocr_ade20k_4451_torch04.pth",
        "experiments/ade20k/seg_hrnet_ocr_w48_520x520_ohem_sgd_lr2e-2_wd1e-4_bs_16_epoch120.yaml",
        "mIoU",
        44.5,
        _SEG_OCR_HOME,
        _NOT_BUILT + "HRNetV2-W48 + OCR; ADE20K val, single scale (45.5 with multi-scale + flip)",
    ),
)

# ---- COCO keypoints ---------------------------------------------------------------------------------

_MMPOSE = "https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco"
_MMPOSE_HOME = "https://github.com/open-mmlab/mmpose/blob/main/configs/body_2d_keypoint/topdown_heatmap/coco/hrnet_coco.md"
_POSE_REPO_HOME = "https://github.com/leoxiaobin/deep-high-resolution-net.pytorch"
_POSE_ZOO = (
    "models/pytorch/pose_coco/ of the model zoo (GoogleDrive "
    "https://drive.google.com/drive/folders/1hOTihvbyIxsm5ygDpbUuJ7O_tzv4oXjC or OneDrive "
    "https://1drv.ms/f/s!AhIXJn_J-blW231MH2krnmLq5kkQ)"
)


def _mmpose_coco(config: str, stamp: str, row: str, model: str, ap: float, note: str):
    return _ckpt(
        config,
        row,
        model,
        f"{_MMPOSE}/{config}-{stamp}.pth",
        source="mmpose",
        config=f"configs/body_2d_keypoint/topdown_heatmap/coco/{config}.py",
        layout="mmpose",
        metric="keypoint_AP",
        value=ap,
        homepage=_MMPOSE_HOME,
        note=note,
        sha="mmpose",
    )


def _pose_repo(size: str, width: str, ap: float):
    return _ckpt(
        f"pose_hrnet_{width}_{size}",
        f"pose_coco_{width}_{size}",
        f"pose_hrnet_{width}",
        f"{MANUAL}pose_hrnet_{width}_{size}.pth",
        source="deep-high-resolution-net.pytorch",
        config=f"experiments/coco/hrnet/{width}_{size}_adam_lr1e-3.yaml",
        layout="pose_repo",
        metric="keypoint_AP",
        value=ap,
        homepage=_POSE_REPO_HOME,
        note=f"COCO val2017 with the person boxes of a 56.4 AP detector; in {_POSE_ZOO}",
        sha="",
    )


_MMPOSE_NOTE = (
    "mmpose's own training (8 GPUs, same person boxes of a 56.4 AP detector); its metafile "
    "hrnet_coco.yml lists AP {yml}; the row publishes deep-high-resolution-net.pytorch's {row}"
)

POSE: tuple[PublishedCheckpoint, ...] = (
    _mmpose_coco(
        "td-hm_hrnet-w32_8xb64-210e_coco-256x192",
        "81c58e40_20220909",
        "pose_coco_w32_256x192",
        "pose_hrnet_w32",
        74.9,
        _MMPOSE_NOTE.format(yml=74.6, row=74.4),
    ),
    _mmpose_coco(
        "td-hm_hrnet-w32_8xb64-210e_coco-384x288",
        "ca5956af_20220909",
        "pose_coco_w32_384x288",
        "pose_hrnet_w32",
        76.1,
        _MMPOSE_NOTE.format(yml=76.0, row=75.8),
    ),
    _mmpose_coco(
        "td-hm_hrnet-w48_8xb32-210e_coco-256x192",
        "0e67c616_20220913",
        "pose_coco_w48_256x192",
        "pose_hrnet_w48",
        75.6,
        _MMPOSE_NOTE.format(yml=75.6, row=75.1),
    ),
    _mmpose_coco(
        "td-hm_hrnet-w48_8xb32-210e_coco-384x288",
        "c161b7de_20220915",
        "pose_coco_w48_384x288",
        "pose_hrnet_w48",
        76.7,
        _MMPOSE_NOTE.format(yml=76.7, row=76.3),
    ),
    _pose_repo("256x192", "w32", 74.4),
    _pose_repo("384x288", "w32", 75.8),
    _pose_repo("256x192", "w48", 75.1),
    _pose_repo("384x288", "w48", 76.3),
)

# ---- facial landmarks ---------------------------------------------------------------------------------

_MMPOSE_FACE = "https://download.openmmlab.com/mmpose/face/hrnetv2"
_MMPOSE_FACE_HOME = "https://github.com/open-mmlab/mmpose/blob/main/configs/face_2d_keypoint/topdown_heatmap"
_LMK_HOME = "https://github.com/HRNet/HRNet-Facial-Landmark-Detection"


def _mmpose_face(data: str, stamp: str, nme: float, note: str):
    name = f"hrnetv2_w18_{data}_256x256"
    return _ckpt(
        name,
        f"lmk_{data}_w18",
        "landmark_hrnetv2_w18",
        f"{_MMPOSE_FACE}/{name}-{stamp}.pth",
        source="mmpose",
        config=f"configs/face_2d_keypoint/topdown_heatmap/{data}/td-hm_hrnetv2-w18_8xb64-60e_{data}-256x256.py",
        layout="mmpose",
        metric="NME",
        value=nme,
        homepage=f"{_MMPOSE_FACE_HOME}/{data}/hrnetv2_{data}.md",
        note=note,
        sha="mmpose",
    )


def _landmark_repo(data: str, tag: str, nme: float, share: str, note: str):
    return _ckpt(
        f"HR18-{tag}",
        f"lmk_{data}_w18",
        "landmark_hrnetv2_w18",
        f"{MANUAL}HR18-{tag}.pth",
        source="HRNet-Facial-Landmark-Detection",
        config=f"experiments/{data}/face_alignment_{data}_hrnet_w18.yaml",
        layout="landmark_repo",
        metric="NME",
        value=nme,
        homepage=_LMK_HOME,
        note=f"OneDrive {share}; {note}",
        sha="",
    )


LANDMARKS: tuple[PublishedCheckpoint, ...] = (
    _mmpose_face(
        "300w",
        "eea53406_20211019",
        3.45,
        "NME full set (common 2.92, challenge 5.64, test 4.10); mmpose's own training; the row publishes "
        "Papers with Code's 3.32 for the paper's figure",
    ),
    _mmpose_face(
        "wflw",
        "2bf032a6_20210125",
        4.06,
        "NME test set; mmpose's own training; the row publishes Papers with Code's 4.60 for the paper's figure",
    ),
    _mmpose_face(
        "cofw",
        "49243ab8_20211019",
        3.48,
        "mmpose's own training; the row publishes Papers with Code's 3.45 for the paper's figure",
    ),
    _landmark_repo(
        "300w",
        "300W",
        3.34,
        "https://1drv.ms/u/s!AiWjZ1LamlxzeYLmza1XU-4WhnQ",
        "NME full set (common 2.91, challenge 5.11, test 3.85); the row publishes Papers with Code's 3.32 "
        "(common 2.87, challenge 5.15) for the paper's figure",
    ),
    _landmark_repo(
        "wflw",
        "WFLW",
        4.60,
        "https://1drv.ms/u/s!AiWjZ1LamlxzdTsr_9QZCwJsn5U",
        "NME test set; the row's number (4.60, Papers with Code) is the same",
    ),
    _landmark_repo(
        "cofw",
        "COFW",
        3.45,
        "https://1drv.ms/u/s!AiWjZ1LamlxzdFIsEUQl8jgUaMk",
        "the row's number (3.45, Papers with Code) is the same",
    ),
)

CHECKPOINTS: tuple[PublishedCheckpoint, ...] = (
    *CLASSIFICATION,
    *DETECTION,
    *DETECTION_V1,
    *SEGMENTATION,
    *SEG_REPO,
    *POSE,
    *LANDMARKS,
)


def checkpoints_for_row(row_id: str) -> list[PublishedCheckpoint]:
    """The catalogued checkpoints that verify ``row_id`` (a benchmarks/params.yaml row), in order."""
    return [c for c in CHECKPOINTS if row_id and c.row == row_id]


def get_checkpoint(name: str) -> PublishedCheckpoint:
    """The entry named ``name``; KeyError-free: an unknown name raises HRNetError listing none of
    the 100+ names (``hrnet fetch --list`` shows them)."""
    for entry in CHECKPOINTS:
        if entry.name == name:
            return entry
    from hrnet.errors import HRNetError

    raise HRNetError(f"{name}: not a catalogued published checkpoint (hrnet fetch --list)")
