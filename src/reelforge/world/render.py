"""Render a clip of the procedural world from its factors, at any size, frame rate and length.

Geometry lives in "units": one unit is the short side of the canvas, the origin is the centre and
y points down. Working in units keeps shapes round at every aspect ratio; 16:9 and 9:16 canvases
simply show more of the world along their long side.
"""
from __future__ import annotations

import math

import numpy as np

from .factors import COLORS, PLAIN_BACKGROUNDS, ClipFactors, ObjectFactors, validate

SIZE_RADIUS = {"small": 0.10, "medium": 0.14, "large": 0.18}  # units
LINEAR_SPEED = {"slow": 0.10, "fast": 0.20}  # units / s: 0.4 or 0.8 of the frame in 4 s
GRAVITY = {"slow": 1.5, "fast": 4.0}  # units / s^2
ORBIT_SPEED = {"slow": 0.25, "fast": 0.5}  # revolutions / s
ORBIT_RADIUS = 0.26
SPIN_SPEED = {"slow": 0.25, "fast": 0.4}  # revolutions / s; under 72 deg a frame at 8 fps for stars
GROWTH_RATE = {"slow": 0.12, "fast": 0.22}  # d log(scale) / s
PAN_SPEED = 0.15  # units / s
SKY_RGB, GROUND_RGB = (100, 170, 235), (60, 150, 60)
NIGHT_RGB, STAR_RGB = (12, 18, 60), (250, 250, 250)
SUNSET_TOP_RGB, SUNSET_BOTTOM_RGB = (250, 150, 50), (110, 40, 140)
CHECKER_RGB = ((128, 128, 128), (235, 235, 235))
CHECKER_TILE = 0.125  # units
HORIZON = 0.3  # as a fraction of half the height, below the centre
STAR_CELL, STAR_RADIUS = 0.1, 0.016  # units


def _polygon(shape: str) -> np.ndarray:
    """Vertices in units of the object's radius, before rotation; y points down."""
    if shape == "square":
        a = 0.85
        return np.array([(-a, -a), (a, -a), (a, a), (-a, a)])
    if shape == "triangle":
        angles = np.deg2rad([-90, 30, 150])
        return 1.2 * np.stack([np.cos(angles), np.sin(angles)], 1)
    if shape == "star":
        angles = np.deg2rad(-90 + 36 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, 1.25, 0.52)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)
    raise ValueError(shape)


def _polygon_sdf(px: np.ndarray, py: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) from points to a closed polygon, even-odd rule."""
    dist = np.full(px.shape, np.inf)
    inside = np.zeros(px.shape, bool)
    for (ax, ay), (bx, by) in zip(verts, np.roll(verts, -1, axis=0)):
        ex, ey = bx - ax, by - ay
        h = np.clip(((px - ax) * ex + (py - ay) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        dist = np.minimum(dist, np.hypot(px - ax - h * ex, py - ay - h * ey))
        if ay != by:
            crosses = ((ay > py) != (by > py)) & (px < ex * (py - ay) / ey + ax)
            inside ^= crosses
    return np.where(inside, -dist, dist)


def shape_sdf(shape: str, px: np.ndarray, py: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """Signed distance in units to `shape` centred at the origin, rotated by `angle` radians."""
    if shape == "circle":
        return np.hypot(px, py) - radius
    if shape == "ring":
        return np.abs(np.hypot(px, py) - 0.75 * radius) - 0.25 * radius
    c, s = math.cos(angle), math.sin(angle)
    verts = _polygon(shape) @ np.array([[c, s], [-s, c]]) * radius
    return _polygon_sdf(px, py, verts)


def object_track(obj: ObjectFactors, times: np.ndarray, half_w: float, half_h: float,
                 rng: np.random.Generator, slot: int, n_objects: int):
    """Centre x, y, radius and angle of one object at each time, each shaped (T,)."""
    radius = SIZE_RADIUS[obj.size]
    # Two objects get separate lanes so that they rarely overlap.
    lane = 0.0 if n_objects == 1 else (-0.2 if slot == 0 else 0.2)
    jitter = lambda a: rng.uniform(-a, a)  # noqa: E731
    cross = 0.15 if n_objects == 1 else 0.06  # freedom across the direction of travel
    x = np.full_like(times, lane * (half_w / 0.5) * 0.9 + jitter(0.08))
    y = np.full_like(times, lane + jitter(0.1))
    scale = np.ones_like(times)
    angle = np.full_like(times, rng.uniform(-0.15, 0.15))
    v = LINEAR_SPEED[obj.speed]
    if obj.motion in ("left", "right", "up", "down"):
        sign = -1.0 if obj.motion in ("left", "up") else 1.0
        start = -sign * v * 2.0  # crosses the centre after 2 s
        travel = start + sign * v * times + jitter(0.05)
        half = half_w if obj.motion in ("left", "right") else half_h
        # Wrap around, so that clips longer than the default keep moving the same way.
        span = 2 * (half + 1.3 * radius)
        travel = (travel + span / 2) % span - span / 2
        if obj.motion in ("left", "right"):
            x, y = travel, np.full_like(times, lane + jitter(cross))
        else:
            x, y = np.full_like(times, lane * (half_w / 0.5) + jitter(cross)), travel
    elif obj.motion == "bounce":
        g = GRAVITY[obj.speed]
        ground = half_h - radius
        drop = min(0.6, 2 * half_h - 2.5 * radius)
        period = 2 * math.sqrt(2 * drop / g)
        tau = (times + period / 2) % period - period / 2
        y = ground - drop + 0.5 * g * tau**2
    elif obj.motion in ("grow", "shrink"):
        rate = GROWTH_RATE[obj.speed] * (1 if obj.motion == "grow" else -1)
        start = 0.7 if obj.motion == "grow" else 1.4
        scale = np.clip(start * np.exp(rate * times), 0.3, 2.0)
    elif obj.motion == "spin":
        angle = angle + 2 * math.pi * SPIN_SPEED[obj.speed] * times
    elif obj.motion == "orbit":
        phase = rng.uniform(0, 2 * math.pi)
        theta = phase - 2 * math.pi * ORBIT_SPEED[obj.speed] * times  # counter-clockwise on screen
        x, y = ORBIT_RADIUS * np.cos(theta), ORBIT_RADIUS * np.sin(theta)
    return x, y, radius * scale, angle


def object_tracks(factors: ClipFactors, times: np.ndarray, width: int, height: int) -> list[tuple]:
    """Every object's (x, y, radius, angle) per time, in units: the one source of where things are,
    for the renderer and for anything that must know where the objects are without pixels."""
    unit = min(width, height)
    half_w, half_h = width / (2 * unit), height / (2 * unit)
    return [object_track(obj, times, half_w, half_h, np.random.default_rng([factors.seed, i]), i, len(factors.objects))
            for i, obj in enumerate(factors.objects)]


def _hash01(ix: np.ndarray, iy: np.ndarray, salt: int) -> np.ndarray:
    """A deterministic pseudo-random value in [0, 1) per integer cell."""
    h = (ix.astype(np.int64) * 73856093) ^ (iy.astype(np.int64) * 19349663) ^ (salt * 83492791)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF) / 65536.0


def render_background(name: str, px: np.ndarray, py: np.ndarray, half_h: float, pixel: float,
                      camera_x: float) -> np.ndarray:
    """Background (H, W, 3) float RGB in 0..255 with the camera shifted by camera_x units."""
    shape = px.shape + (3,)
    if name in PLAIN_BACKGROUNDS:
        return np.broadcast_to(np.array(PLAIN_BACKGROUNDS[name], float), shape).copy()
    wx = px + camera_x
    if name == "sky":
        ground = (py > HORIZON * half_h)[..., None]
        return np.where(ground, np.array(GROUND_RGB, float), np.array(SKY_RGB, float))
    if name == "sunset":
        f = np.clip((py + half_h) / (2 * half_h), 0, 1)[..., None]
        return (1 - f) * np.array(SUNSET_TOP_RGB, float) + f * np.array(SUNSET_BOTTOM_RGB, float)
    if name == "checkerboard":
        parity = (np.floor(wx / CHECKER_TILE) + np.floor(py / CHECKER_TILE)) % 2
        return np.where(parity[..., None] > 0, np.array(CHECKER_RGB[1], float), np.array(CHECKER_RGB[0], float))
    if name == "night":
        ix, iy = np.floor(wx / STAR_CELL), np.floor(py / STAR_CELL)
        present = _hash01(ix, iy, 1) < 0.35
        sx = (ix + 0.2 + 0.6 * _hash01(ix, iy, 2)) * STAR_CELL
        sy = (iy + 0.2 + 0.6 * _hash01(ix, iy, 3)) * STAR_CELL
        # Stars are at least about a pixel wide so they survive small canvases and encoding.
        r = max(STAR_RADIUS, 0.7 * pixel)
        alpha = np.clip(0.5 - (np.hypot(wx - sx, py - sy) - r) / pixel, 0, 1) * present
        a = alpha[..., None]
        return (1 - a) * np.array(NIGHT_RGB, float) + a * np.array(STAR_RGB, float)
    raise ValueError(name)


def frame_times(num_frames: int, fps: float) -> np.ndarray:
    return np.arange(num_frames, dtype=np.float64) / fps


def render(factors: ClipFactors, width: int = 64, height: int = 64, fps: float = 8.0,
           num_frames: int = 32, start_time: float = 0.0) -> np.ndarray:
    """Render a clip as uint8 frames shaped (T, H, W, 3)."""
    validate(factors)
    unit = min(width, height)  # pixels per unit
    pixel = 1.0 / unit
    half_w, half_h = width / (2 * unit), height / (2 * unit)
    px = (np.arange(width) + 0.5) / unit - half_w
    py = (np.arange(height) + 0.5) / unit - half_h
    px, py = np.meshgrid(px, py)  # (H, W) each
    times = start_time + frame_times(num_frames, fps)
    tracks = object_tracks(factors, times, width, height)
    pan = {"still": 0.0, "pan_left": -PAN_SPEED, "pan_right": PAN_SPEED}[factors.camera]
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        canvas = render_background(factors.background, px, py, half_h, pixel, pan * times[t])
        for obj, (x, y, radius, angle) in zip(factors.objects, tracks):
            # Only the object's bounding box is evaluated: cheap at 1080p too.
            reach = 1.4 * radius[t] + 2 * pixel
            cols = slice(max(0, int((x[t] - reach + half_w) * unit)), max(0, int(math.ceil((x[t] + reach + half_w) * unit))))
            rows = slice(max(0, int((y[t] - reach + half_h) * unit)), max(0, int(math.ceil((y[t] + reach + half_h) * unit))))
            bx, by = px[rows, cols] - x[t], py[rows, cols] - y[t]
            if bx.size == 0:
                continue
            sdf = shape_sdf(obj.shape, bx, by, radius[t], angle[t])
            alpha = np.clip(0.5 - sdf / pixel, 0, 1)[..., None]
            region = canvas[rows, cols]
            canvas[rows, cols] = (1 - alpha) * region + alpha * np.array(COLORS[obj.color], float)
        frames[t] = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return frames
