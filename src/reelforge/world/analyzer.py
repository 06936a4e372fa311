"""Recover a clip's factors from its pixels alone: the judge of every generated video.

Pipeline per clip: pick the background whose model explains the pixels best; call everything the
background does not explain "object"; split object pixels by nearest named colour; then read each
object's shape from its radial profile (rotation invariant) and its motion from its trajectory,
area and frame-to-frame change, all in world units and seconds so any size and frame rate work.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from . import render as R
from .factors import COLORS, PLAIN_BACKGROUNDS, SCENE_BACKGROUNDS

WORK_SIZE = 128  # analysis happens with the short side at most this many pixels
OBJECT_THRESHOLD = 45.0  # RGB distance from the background model that makes a pixel "object"
COLOR_NAMES = tuple(COLORS)
COLOR_TABLE = np.array([COLORS[c] for c in COLOR_NAMES], np.float32)


@dataclass
class ObjectAnalysis:
    color: str
    shape: str | None
    motion: str | None
    speed: str | None
    size: str | None
    frame_colors: list[str | None] = field(default_factory=list)
    frame_shapes: list[str | None] = field(default_factory=list)
    area: float = 0.0  # mean fraction of the frame


@dataclass
class ClipAnalysis:
    background: str
    camera: str
    objects: list[ObjectAnalysis]

    @property
    def main(self) -> ObjectAnalysis | None:
        return self.objects[0] if self.objects else None


def _downscale(frames: np.ndarray) -> np.ndarray:
    t, h, w, _ = frames.shape
    factor = max(1, min(h, w) // WORK_SIZE)
    x = frames.astype(np.float32)
    if factor > 1:
        h2, w2 = h // factor, w // factor
        x = x[:, :h2 * factor, :w2 * factor].reshape(t, h2, factor, w2, factor, 3).mean((2, 4))
    return x


def _grid(h: int, w: int):
    unit = min(h, w)
    px = (np.arange(w) + 0.5) / unit - w / (2 * unit)
    py = (np.arange(h) + 0.5) / unit - h / (2 * unit)
    return np.meshgrid(px, py)


def _distance(x: np.ndarray, rgb) -> np.ndarray:
    return np.sqrt(((x - np.asarray(rgb, np.float32)) ** 2).sum(-1))


def background_distance(frames: np.ndarray, name: str) -> np.ndarray:
    """Per-pixel RGB distance (T, H, W) from each frame to background `name`, camera-agnostic."""
    t, h, w, _ = frames.shape
    px, py = _grid(h, w)
    half_h = h / (2 * min(h, w))
    if name in PLAIN_BACKGROUNDS:
        return _distance(frames, PLAIN_BACKGROUNDS[name])
    if name in ("sky", "sunset"):
        # Both vary only along y, so a pan leaves them unchanged.
        model = R.render_background(name, px, py, half_h, 1 / min(h, w), 0.0).astype(np.float32)
        return np.sqrt(((frames - model) ** 2).sum(-1))
    palette = {"checkerboard": R.CHECKER_RGB, "night": (R.NIGHT_RGB, R.STAR_RGB)}[name]
    return np.minimum(*[_distance(frames, c) for c in palette])


def classify_background(frames: np.ndarray) -> tuple[str, np.ndarray]:
    """The background that explains the most pixels, and the per-pixel distance to it."""
    best, best_err, best_dist = None, np.inf, None
    for name in tuple(PLAIN_BACKGROUNDS) + SCENE_BACKGROUNDS:
        dist = background_distance(frames, name)
        err = float(np.minimum(dist, 100.0).mean())
        if name == "checkerboard":
            gray = _distance(frames, R.CHECKER_RGB[0]) < 40
            white = _distance(frames, R.CHECKER_RGB[1]) < 40
            if min(gray.mean(), white.mean()) < 0.15:  # a plain gray or white frame is no checkerboard
                continue
        if name == "night" and (_distance(frames, R.NIGHT_RGB) < 50).mean() < 0.4:
            continue
        if err < best_err:
            best, best_err, best_dist = name, err, dist
    return best, best_dist


def _radial_harmonics(ys: np.ndarray, xs: np.ndarray, cy: float, cx: float, bins: int = 48) -> np.ndarray:
    """Relative strength of the 3-, 4- and 5-fold harmonics of the outline's radius."""
    theta = np.arctan2(ys - cy, xs - cx)
    r = np.hypot(ys - cy, xs - cx) + 0.5  # pixel centres sit half a pixel inside the outline
    idx = ((theta + math.pi) / (2 * math.pi) * bins).astype(int) % bins
    profile = np.zeros(bins)
    np.maximum.at(profile, idx, r)
    if (profile == 0).any():  # a bin with no pixel: fill from neighbours
        filled = profile > 0
        profile = np.interp(np.arange(bins), np.flatnonzero(filled), profile[filled], period=bins)
    spectrum = np.abs(np.fft.rfft(profile / profile.mean())) / bins
    return spectrum[[3, 4, 5]]


SHAPE_AREA = {"circle": math.pi, "ring": 0.75 * math.pi, "square": 1.7**2,
              "triangle": 0.75 * math.sqrt(3) * 1.2**2, "star": 5 * 1.25 * 0.52 * math.sin(math.radians(36))}
# Measured on renderer clips after H.264 (the smallest objects are the hardest): a circle's or
# ring's pixelated outline stays under 0.05 in every harmonic, a star's 5-fold one over 0.09, a
# triangle's 3-fold one over 0.1 and a square's 4-fold one over 0.04 (its 3- and 5-fold stay low).
STAR_THRESHOLD, TRIANGLE_THRESHOLD, SQUARE_THRESHOLD = 0.07, 0.07, 0.042


def classify_shape(mask: np.ndarray) -> str | None:
    """Shape of one object's binary mask (H, W), or None when it is too small or cut by the edge."""
    ys, xs = np.nonzero(mask)
    if len(ys) < 12:
        return None
    h, w = mask.shape
    if ys.min() == 0 or xs.min() == 0 or ys.max() == h - 1 or xs.max() == w - 1:
        return None
    cy, cx = ys.mean(), xs.mean()
    r_eq = math.sqrt(len(ys) / math.pi)
    near = np.hypot(*np.mgrid[0:h, 0:w] - np.array([cy, cx])[:, None, None]) < max(1.0, 0.35 * r_eq)
    if mask[near].mean() < 0.5:
        return "ring"
    three, four, five = _radial_harmonics(ys, xs, cy, cx)
    if five > STAR_THRESHOLD and five > three:
        return "star"
    if three > TRIANGLE_THRESHOLD:
        return "triangle"
    if four > SQUARE_THRESHOLD:
        return "square"
    return "circle"


def _majority(values: list) -> str | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    names, counts = np.unique(values, return_counts=True)
    return str(names[counts.argmax()])


def _unwrapped_steps(values: np.ndarray, jump: float) -> np.ndarray:
    """Frame-to-frame changes with wrap-around jumps (an object leaving one side and coming back
    on the other) removed."""
    steps = np.diff(values)
    return np.where(np.abs(steps) > jump, 0.0, steps)


def classify_motion(times: np.ndarray, cx: np.ndarray, cy: np.ndarray, area: np.ndarray,
                    change: np.ndarray) -> tuple[str, str | None]:
    """Motion and speed from a track in units and seconds (frames where the object is seen)."""
    duration = max(times[-1] - times[0], 1e-6)
    dx, dy = _unwrapped_steps(cx, 0.3), _unwrapped_steps(cy, 0.3)
    rho = np.hypot(cx, cy)
    sweep = np.abs(np.diff(np.unwrap(np.arctan2(cy, cx)))).sum()
    if sweep > 0.9 * math.pi and rho.mean() > 0.12 and rho.std() < 0.3 * rho.mean():
        revs = sweep / (2 * math.pi) / duration
        return "orbit", "fast" if revs > 0.375 else "slow"
    path_y, net_y = np.abs(dy).sum(), abs(dy.sum())
    if path_y > 0.25 and path_y > 2.0 * net_y + 0.1 and np.abs(dx).sum() < 0.5 * path_y:
        # Gravity decides the bounce rate: count how often it turns around at the bottom.
        bottoms = np.sum((dy[:-1] > 0) & (dy[1:] <= 0))
        return "bounce", "fast" if bottoms / duration > 0.6 else "slow"
    net_x = dx.sum()
    if max(abs(net_x), net_y) > 0.1:
        speed = "fast" if max(np.abs(dx).sum(), path_y) / duration > 0.15 else "slow"
        if abs(net_x) >= net_y:
            return ("right" if net_x > 0 else "left"), speed
        return ("down" if dy.sum() > 0 else "up"), speed
    quarter = max(1, len(area) // 4)
    growth = math.log(np.median(area[-quarter:]) / max(np.median(area[:quarter]), 1e-9))
    if abs(growth) > math.log(1.35):
        # Area grows as scale squared; the two quarters' medians sit 3/4 of the clip apart.
        rate = abs(growth) / 2 / (0.75 * duration)
        return ("grow" if growth > 0 else "shrink"), "fast" if rate > 0.17 else "slow"
    if len(change) and np.median(change) > 0.08:
        return "spin", None
    return "static", None


def _mask_change(masks: list[np.ndarray], centres: list[tuple[float, float]], lag: int) -> np.ndarray:
    """Fraction of an object's pixels that change between frames `lag` apart, after re-centring."""
    out = []
    for a, b, ca, cb in zip(masks, masks[lag:], centres, centres[lag:]):
        shift = (int(round(ca[0] - cb[0])), int(round(ca[1] - cb[1])))
        moved = np.roll(b, shift, axis=(0, 1))
        out.append((a ^ moved).sum() / max(a.sum() + b.sum(), 1) * 2)
    return np.array(out)


def estimate_camera(frames: np.ndarray, object_mask: np.ndarray, fps: float, background: str) -> str:
    """Pan direction from the background's horizontal shift between frames an eighth of a second apart."""
    if background not in ("checkerboard", "night") or len(frames) < 2:
        return "still"
    unit = min(frames.shape[1:3])
    lag = max(1, int(round(fps / 8)))
    gray = frames.mean(-1)
    total, max_shift = 0.0, max(2, int(math.ceil(R.PAN_SPEED * unit * lag / fps)) + 2)
    for t in range(0, len(frames) - lag, lag):
        a, b = gray[t], gray[t + lag]
        valid = ~(object_mask[t] | object_mask[t + lag])
        errors = []
        for s in range(-max_shift, max_shift + 1):
            shifted, ok = np.roll(b, -s, axis=1), np.roll(valid, -s, axis=1) & valid
            ok[:, :max_shift], ok[:, -max_shift:] = False, False
            errors.append(np.abs(a - shifted)[ok].mean() if ok.any() else np.inf)
        total += int(np.argmin(errors)) - max_shift
    speed = total / unit / max((len(frames) - 1) / fps, 1e-6)  # units / s, content moving right > 0
    if abs(speed) < 0.5 * R.PAN_SPEED:
        return "still"
    return "pan_left" if speed > 0 else "pan_right"


def _size_name(radius: float) -> str:
    return "small" if radius < 0.128 else "medium" if radius < 0.168 else "large"


def analyze(frames: np.ndarray, fps: float = 8.0, max_objects: int = 2) -> ClipAnalysis:
    """Recover background, camera and per-object colour, shape, size, motion and speed."""
    x = _downscale(frames)
    t, h, w, _ = x.shape
    unit = min(h, w)
    background, bg_dist = classify_background(x)
    object_mask = bg_dist > OBJECT_THRESHOLD  # (T, H, W)
    color_dist = np.sqrt(((x[..., None, :] - COLOR_TABLE) ** 2).sum(-1))  # (T, H, W, 8)
    nearest = color_dist.argmin(-1)
    # Colours are counted on eroded masks: blurred edges mix object and background into a third hue.
    eroded = ndimage.binary_erosion(object_mask, structure=np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], bool))
    core = eroded & (color_dist.min(-1) < 70)
    counts = np.bincount(nearest[core], minlength=len(COLOR_NAMES)) / (t * h * w)
    order = [i for i in np.argsort(-counts) if counts[i] > 0.002]
    chosen = [i for i in order[:max_objects] if counts[i] > 0.25 * counts[order[0]]]
    camera = estimate_camera(x, object_mask, fps, background)
    objects = []
    if chosen:
        # Every object pixel goes to the nearest chosen colour, so blurred edges stay with their object.
        owner = np.array(chosen)[color_dist[..., chosen].argmin(-1)]
        for ci in chosen:
            objects.append(_analyze_object(COLOR_NAMES[ci], object_mask & (owner == ci), nearest, bg_dist, fps, unit, h, w))
    objects.sort(key=lambda o: -o.area)
    return ClipAnalysis(background=background, camera=camera, objects=objects)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The biggest 8-connected blob: drops specks such as stray star pixels of a night sky."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask
    return labels == (np.bincount(labels.ravel())[1:].argmax() + 1)


def _sharp_mask(mask: np.ndarray, bg_dist: np.ndarray) -> np.ndarray:
    """The object's pixels at least half as far from the background as its core: the outline a
    person sees, without the soft halo that blur or lossy encoding adds around it."""
    if mask.sum() < 12:
        return mask
    core = np.percentile(bg_dist[mask], 90)
    sharp = mask & (bg_dist > 0.5 * core)
    return sharp if sharp.sum() >= 12 else mask


def _analyze_object(color: str, masks: np.ndarray, nearest: np.ndarray, bg_dist: np.ndarray, fps: float, unit: int,
                    h: int, w: int) -> ObjectAnalysis:
    t = len(masks)
    frame_colors, frame_shapes, seen = [], [], []
    cxs, cys, areas, centres, kept = [], [], [], [], []
    for i in range(t):
        mask = _largest_component(masks[i])
        n = int(mask.sum())
        if n < 6:
            frame_colors.append(None)
            frame_shapes.append(None)
            continue
        votes = np.bincount(nearest[i][mask], minlength=len(COLOR_NAMES))
        frame_colors.append(COLOR_NAMES[int(votes.argmax())])
        frame_shapes.append(classify_shape(_largest_component(_sharp_mask(mask, bg_dist[i]))))
        ys, xs = np.nonzero(mask)
        seen.append(i / fps)
        cys.append((ys.mean() + 0.5) / unit - h / (2 * unit))
        cxs.append((xs.mean() + 0.5) / unit - w / (2 * unit))
        areas.append(n / unit**2)
        centres.append((ys.mean(), xs.mean()))
        kept.append(mask)
    shape = _majority(frame_shapes)
    if len(seen) < 2:
        return ObjectAnalysis(color, shape, None, None, None, frame_colors, frame_shapes, 0.0)
    area = np.array(areas)
    lag = max(1, int(round(fps / 8)))
    change = _mask_change(kept, centres, lag)
    motion, speed = classify_motion(np.array(seen), np.array(cxs), np.array(cys), area, change)
    size = None
    if shape is not None and motion not in ("grow", "shrink"):
        size = _size_name(math.sqrt(np.median(area) / SHAPE_AREA[shape]))
    return ObjectAnalysis(color, shape, motion, speed, size, frame_colors, frame_shapes,
                          float(area.mean() * unit**2 / (h * w)))
