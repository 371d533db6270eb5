"""The demo workspace: data the project makes itself, and predictions of models trained during the build.

Public API:

- ``build_demo(path, *, rows=None, seed=0, rebuild=False, compute=True, on_progress=None) -> DemoSummary``:
  build (or reuse) the demo at ``path`` through the SDK: dataset ``digits`` (scikit-learn's 8x8 digits
  as 128x128 PNGs, "scanned" by scan-A/B/C, metadata scanner, ink_density, stroke_width, slant; radio
  feature ``digit``; run ``digits-classifier/logreg-v1``, a logistic regression trained on the train
  split) and dataset ``shapes`` (320x240 scenes rendered with Pillow, metadata lighting, blur, camera,
  objects, brightness, contrast, captured_at; box features circle/square/triangle/star; run
  ``shapes-detector/proposals-trees-v1``, segmentation proposals + extra trees + NMS trained on
  the train split). Each dataset has a second run to compare with the first (``DIGITS_RUN_2``, trained with
  every train digit scanned again by scan-C; ``SHAPES_RUN_2``, with a night mode that segments dark images at
  lower contrast levels, trained with extra night scenes). Images are registered by paths relative to the
  workspace's folder. About 2% of
  the labels are wrong on purpose (annotators slip), so the Candidate mislabels slice finds real
  ones. Then computes metrics when ``slicewise.metrics`` is available. Idempotent: a complete build
  with the same settings is reused; a stale, partial or changed demo build (recognised by the
  ``.slicewise-demo`` file in its media folder) is rebuilt from scratch; any other workspace or
  folder is refused (ConflictError) and left untouched. Bump ``build.DEMO_VERSION`` when the data or
  the models change, so existing demo workspaces are rebuilt.
- ``headlines(ws, confidence=0.5, iou=0.5)``: per-feature metrics of each ready run.
- ``breakdown(ws, confidence=0.5, iou=0.5)``: micro precision / recall / F1 of each demo run per value of
  the metadata its model is sensitive to (scanner; lighting, blur, camera), with the filter text that
  shows those rows in the app; computed with slicewise.query + slicewise.metrics.
- ``hints(ws, breakdown_items)``: one-line pointers to what to open first in the app (the Candidate
  mislabels auto slice of the digits run, the night filter of the detector); printed by ``slicewise demo``.
- ``media_dir(workspace_path)``: where the images go (``<stem>-media/`` beside the workspace).
- Building blocks: ``slicewise.demo.scenes.render_scene``, ``slicewise.demo.detector.Detector``,
  ``slicewise.demo.digits.make_digits`` / ``train_and_predict``.
"""

from slicewise.demo.build import (
    DATASETS,
    DIGITS_RUN,
    DIGITS_RUN_2,
    SHAPES_RUN,
    SHAPES_RUN_2,
    DemoSummary,
    breakdown,
    build_demo,
    headlines,
    hints,
    media_dir,
)

__all__ = ["DATASETS", "DIGITS_RUN", "DIGITS_RUN_2", "SHAPES_RUN", "SHAPES_RUN_2", "DemoSummary", "breakdown", "build_demo", "headlines",
           "hints", "media_dir"]
