"""Synthetic detection scenes rendered with Pillow: shapes on textured backgrounds, with capture conditions.

Every scene is drawn from its own seed, so scene ``i`` is the same whatever the number of scenes.
The capture conditions are applied to the pixels the way a camera would: lighting scales the
brightness (night also tints blue), blur is optical (before the sensor), and each camera adds its
own sensor noise, amplified by the gain needed in low light. The ground truth boxes are the visible
extent of each object (COCO style), computed from an instance map after occlusion.

>>> s = render_scene(7)
>>> s.image.size, s.metadata["lighting"] in LIGHTING, len(s.boxes) == len(s.classes) > 0
((320, 240), True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 320, 240
CLASSES = ("circle", "square", "triangle", "star")
LIGHTING = {"day": 1.0, "dusk": 0.5, "night": 0.2}
BLUR = {"none": 0.0, "mild": 2.0, "strong": 4.8}
CAMERAS = {"cam-01": 2.0, "cam-02": 5.0, "cam-03": 9.0}  # sensor noise sigma (8-bit levels) at unit gain
_LIGHTING_P = (0.5, 0.3, 0.2)
_BLUR_P = (0.6, 0.25, 0.15)
WRONG_CLASS, MISSED = 0.02, 0.02  # annotators' slips: a box with another class, an object left unlabelled
_MIN_VISIBLE = 0.35  # an object hidden more than this by later objects is re-placed


@dataclass
class Scene:
    image: Image.Image
    classes: list[str]
    boxes: list[tuple[float, float, float, float]]  # x, y, w, h of the visible pixels
    metadata: dict[str, Any] = field(default_factory=dict)


def _outline(cls: str, cx: float, cy: float, r: float, angle: float, aspect: float) -> list[tuple[float, float]]:
    if cls == "circle":
        t = np.linspace(0, 2 * math.pi, 40, endpoint=False)
        pts = np.stack([np.cos(t) * r, np.sin(t) * r * aspect], 1)
    elif cls == "square":
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * r * 0.8
        pts[:, 1] *= aspect
    elif cls == "triangle":
        t = np.array([-90, 30, 150]) * math.pi / 180
        pts = np.stack([np.cos(t), np.sin(t)], 1) * r
    else:  # star
        t = np.arange(10) * math.pi / 5 - math.pi / 2
        rad = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        pts = np.stack([np.cos(t) * rad, np.sin(t) * rad], 1)
    c, s = math.cos(angle), math.sin(angle)
    rot = pts @ np.array([[c, s], [-s, c]])
    return [(float(x + cx), float(y + cy)) for x, y in rot]


def _background(rng: np.random.Generator) -> np.ndarray:
    """A muted colour, a gradient and low-frequency texture, as float RGB in [0, 255]."""
    base = rng.uniform(90, 170, 3)
    gx, gy = np.meshgrid(np.linspace(-1, 1, WIDTH), np.linspace(-1, 1, HEIGHT))
    grad = (rng.uniform(-25, 25) * gx + rng.uniform(-25, 25) * gy)[..., None]
    small = rng.normal(0, 14, (6, 8, 3)).astype(np.float32)
    tex = np.asarray(Image.fromarray(small[..., 0]).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC))
    return np.clip(base + grad + tex[..., None], 0, 255)


def render_scene(index: int, seed: int = 0) -> Scene:
    """Scene number ``index``: 1 to 6 shapes, possibly overlapping, under random capture conditions."""
    rng = np.random.default_rng([seed, index, 0x5CE7E])
    lighting = str(rng.choice(list(LIGHTING), p=_LIGHTING_P))
    blur = str(rng.choice(list(BLUR), p=_BLUR_P))
    camera = str(rng.choice(list(CAMERAS)))
    img = Image.fromarray(_background(rng).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    ids = Image.new("L", (WIDTH, HEIGHT), 0)
    id_draw = ImageDraw.Draw(ids)
    n = int(rng.integers(1, 7))
    classes: list[str] = []
    for _ in range(n):
        for _attempt in range(10):
            cls = str(rng.choice(CLASSES))
            r = float(rng.uniform(10, 38))
            cx, cy = float(rng.uniform(r * 0.6, WIDTH - r * 0.6)), float(rng.uniform(r * 0.6, HEIGHT - r * 0.6))
            pts = _outline(cls, cx, cy, r, float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0.7, 1.0)))
            trial = ids.copy()
            ImageDraw.Draw(trial).polygon(pts, fill=len(classes) + 1)
            if _all_visible_enough(np.asarray(ids), np.asarray(trial), len(classes)):
                break
        else:
            continue
        hue = rng.uniform(0, 1)
        colour = tuple(int(v) for v in _hsv_to_rgb(hue, rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0)))
        draw.polygon(pts, fill=colour)
        id_draw.polygon(pts, fill=len(classes) + 1)
        classes.append(cls)
    # a few thin distractors (cables, scratches): not objects, but a detector may take them for one
    for _ in range(int(rng.integers(0, 3))):
        x0, y0 = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)
        ang, ln = rng.uniform(0, math.pi), rng.uniform(20, 90)
        shade = int(rng.uniform(20, 235))
        draw.line([(x0, y0), (x0 + ln * math.cos(ang), y0 + ln * math.sin(ang))], fill=(shade,) * 3,
                  width=int(rng.integers(1, 4)))
    id_map = np.asarray(ids)
    boxes = []
    for k in range(1, len(classes) + 1):
        ys, xs = np.nonzero(id_map == k)
        boxes.append((float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)))
    # the camera: optics, exposure, sensor
    if BLUR[blur] > 0:
        img = img.filter(ImageFilter.GaussianBlur(BLUR[blur]))
    arr = np.asarray(img, dtype=np.float32) * LIGHTING[lighting]
    if lighting == "night":
        arr *= np.array([0.8, 0.9, 1.15], np.float32)
    gain = 1.0 / max(LIGHTING[lighting], 0.35)
    arr += rng.normal(0, CAMERAS[camera] * gain, arr.shape).astype(np.float32)
    out = np.clip(arr, 0, 255).astype(np.uint8)
    gray = out.mean(axis=2)
    metadata = {"lighting": lighting, "blur": blur, "camera": camera, "objects": len(classes),
                "brightness": round(float(gray.mean()), 2), "contrast": round(float(gray.std()), 2)}
    return Scene(Image.fromarray(out, "RGB"), classes, boxes, metadata)


def annotate(scene: Scene, index: int, seed: int = 0) -> tuple[list[str], list[tuple[float, float, float, float]]]:
    """The scene's ground truth as an annotator would give it: mostly right, with a few slips (a box
    with the wrong class, an object left unlabelled), as in every real dataset.

    >>> s = render_scene(3)
    >>> classes, boxes = annotate(s, 3)
    >>> len(classes) == len(boxes) <= len(s.classes)
    True
    """
    rng = np.random.default_rng([seed, index, 0x1AB])
    classes, boxes = [], []
    for cls, box in zip(scene.classes, scene.boxes, strict=True):
        u = rng.uniform()
        if u < MISSED:
            continue
        if u < MISSED + WRONG_CLASS:
            cls = str(rng.choice([c for c in CLASSES if c != cls]))
        classes.append(cls)
        boxes.append(box)
    return classes, boxes


def _all_visible_enough(before: np.ndarray, after: np.ndarray, n: int) -> bool:
    """True when every earlier object keeps at least ``_MIN_VISIBLE`` of its pixels and the new one is whole."""
    if (after == n + 1).sum() < 60:
        return False
    if n == 0:
        return True
    had = np.bincount(before.ravel(), minlength=n + 2)[1: n + 1]
    has = np.bincount(after.ravel(), minlength=n + 2)[1: n + 1]
    return bool(np.all(has >= _MIN_VISIBLE * np.maximum(had, 1)))


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return r * 255, g * 255, b * 255
