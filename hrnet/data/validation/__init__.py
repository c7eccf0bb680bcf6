"""Dataset validation with Great Expectations: one suite per table of records, per on-disk format.

A dataset is turned into pandas tables of records (one row per image, annotation or mask label),
each row naming its ``file`` and ``record``. Great Expectations runs a suite per table in an
ephemeral context; every unexpected row becomes a :class:`Failure` (file, record, reason).
What Great Expectations cannot express because there is no row to check -- a malformed JSON
file, a record missing a key, an unparsable ``.pts`` -- is found while building the tables and
reported the same way. Nothing in a bad dataset produces a traceback.

Where a reader has a file index (which images and annotations a split holds), the validator
takes the split from that index and parses the annotations with the reader's own parser, so it
validates exactly what the reader will read: :func:`hrnet.data.imagefolder.imagefolder_files`,
the ``*_files`` functions of :mod:`hrnet.data.segmentation` and the ``*_faces`` functions of
:mod:`hrnet.data.landmarks`.

The formats of :data:`FORMATS` and their layouts (``ROOT`` = ``--root``,
``S`` = ``--split``), by module of this package:

=====================  ===================================================================
:mod:`.imagefolder`
``imagefolder``        ``ROOT/S/<class>/<image>``
:mod:`.coco`
``coco_instances``     ``ROOT/annotations/instances_S.json``; images in ``ROOT/images/S`` or
                       ``ROOT/S`` (COCO's own ``val2017/``)
``coco_keypoints``     ``ROOT/annotations/person_keypoints_S.json``; images as above
``coco_stuff``         ``ROOT/stuffthingmaps/S/<image stem>.png`` for the images of
                       ``instances_S.json`` (COCO-stuff labels 0..182, 255)
:mod:`.segmentation`
``mask_segmentation``  ``ROOT/images/S/<stem>.<ext>`` + ``ROOT/masks/S/<stem>.png``
``cityscapes``         ``ROOT/leftImg8bit/S/<city>/<name>_leftImg8bit.png`` +
                       ``ROOT/gtFine/S/<city>/<name>_gtFine_labelIds.png``
``ade20k``             ``ROOT/images/S/*.jpg`` + ``ROOT/annotations/S/*.png``
                       (``ROOT`` = ``ADEChallengeData2016``, ``S`` = ``training``/``validation``)
``voc``                ids from ``ROOT/ImageSets/Segmentation/S.txt``: ``JPEGImages/<id>.jpg`` +
                       ``SegmentationClass/<id>.png`` (``SegmentationClassAug`` with ``--aug``)
``pascal_context``     ids from ``ROOT/ImageSets/SegmentationContext/S.txt``:
                       ``JPEGImages/<id>.jpg`` + ``SegmentationClassContext/<id>.png``
:mod:`.landmarks`
``landmarks_300w``     ``<image>`` + ``<stem>.pts`` under ``ROOT/S``, or the folders of
                       HRNet-Facial-Landmark-Detection's 300W splits ``train``, ``common``,
                       ``challenging``, ``full`` (:mod:`hrnet.data.landmarks`)
``landmarks_wflw``     ``ROOT/WFLW_annotations/list_98pt_rect_attr_train_test/``
                       ``list_98pt_rect_attr_S.txt`` + images under ``ROOT/WFLW_images/``
``landmarks_cofw``     ``ROOT/cofw_S.csv`` (HRNet-Facial-Landmark-Detection's CSV layout)
:mod:`.dis`
``dis5k``              ``ROOT/S/im/<name>.jpg`` + ``ROOT/S/gt/<name>.png`` (``S`` = ``DIS-TR``,
                       ``DIS-VD``, ``DIS-TE1`` .. ``DIS-TE4``); binary-ish masks
:mod:`.mfn`
``mfn``                names from ``ROOT/S.txt``: ``images/<name>.png`` (RGB + thermal) +
                       ``labels/<name>.png`` (0..8)
:mod:`.driving`
``acdc``               ``ROOT/rgb_anon/<condition>/S/**/<name>_rgb_anon.png`` +
                       ``ROOT/gt/.../<name>_gt_labelTrainIds.png`` (trainIds 0..18, 255)
``dada_seg``           ``ROOT/leftImg8bit/S/**/*.jpg`` + ``ROOT/gtFine/S/**/*labelTrainIds.png``
``synpass``            ``ROOT/img/<weather>/S/<map>/<stem>.jpg`` +
                       ``ROOT/semantic/.../<stem>_trainID.png`` (0 ignored, 1..22, 255)
``bdd100k_ins_seg``    BDD100K's COCO-format file and ``images/10k/S``, and one RGBA bitmask per
                       image (``labels/ins_seg/bitmasks/S``)
=====================  ===================================================================

:mod:`.core` holds the shared runner, the result types and the :data:`FORMATS` registry.
Image sizes are compared after the EXIF orientation is applied (the size the readers produce,
see :func:`hrnet.data.io.open_image`): annotations describe the image as it is displayed.

Importing this package is cheap: ``great_expectations`` (6-7 s), pandas and the readers are
imported inside :func:`validate_dataset` only.
"""

from hrnet.data.validation.core import (
    BOX_TOLERANCE,
    FORMATS,
    ExpectationOutcome,
    Failure,
    ValidationReport,
    validate_dataset,
)

__all__ = [
    "BOX_TOLERANCE",
    "FORMATS",
    "ExpectationOutcome",
    "Failure",
    "ValidationReport",
    "validate_dataset",
]
