"""An invisible watermark in the pixels: 64 bits that survive re-encoding, scaling, cropping and
a change of frame rate.

Why this design (block-DCT libraries such as invisible-watermark or blind-watermark hide bits in
8x8 blocks, so a crop by a few pixels or a rescale loses the block grid and the mark with it):

- The mark is one static, smooth luma pattern: a sum of plane waves at 1-7 cycles per frame, the
  same in every frame. A codec keeps low frequencies, halving the size keeps them, a new frame
  rate repeats or drops frames of the same picture, so all three leave it in place.
- The pattern is defined on the frame's normalised coordinates, and the detector tries a grid of
  crop hypotheses (up to 15% off each edge), mapping each back onto the original frame.
- 150 wave components (75 frequencies x 2 phases) form an orthonormal basis; the pilot and the 64
  payload bits are orthonormal combinations of all of them (spread spectrum), so each bit is
  spread over every frequency and the unused 85 directions measure the noise.
- Blind detection must ignore the picture itself. Frames of this world are flat regions and
  sharp edges, so the detector works on gradients, drops the large ones (edges: the picture) and
  keeps the small ones (the mark, which is smooth everywhere). It projects the masked divergence
  of the gradients, i.e. a Laplacian of the flat parts, onto the basis.

- The sign of the mark flips every half second (by time, so a new frame rate keeps it): the
  still parts of the picture cancel from the flip-weighted sum, and a map a quarter period off
  the flips holds the same noise without the mark, which weights the frequencies for reading bits.

Payload: 16 bits naming the deployment, 32 naming the video, and a CRC-16 over both. Presence is
decided by the pilot alone: z >= 5 at the best crop (over 150 unmarked clips the search peaked at
4.5 sigma), or z >= 4 over the uncropped frame (one hypothesis; unmarked clips peaked at 3.2).
The blind payload is reported only when its CRC matches, and all 64 bits rarely survive a worn
copy; a deployment checking a file against its own videos instead asks which one fits best
(`identify_z`), which needs far less signal.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .encode import as_chunks

KEY = "reelforge-watermark-v1"  # public: anyone may check a file, so the pattern is not a secret
PAYLOAD_BITS = 64
MAX_FREQ = 6  # cycles per frame: survives H.264 and halving the size
STRENGTH = 2.3  # rms in 8-bit levels: PSNR of about 41 dB against the unmarked frames
PILOT_SHARE = 0.6  # of the mark's energy: presence (0.3 found 68-88% after each transformation,
# 0.6 finds 88-94%); the payload, read only when its CRC matches, gets the rest
# Where the mark clips in one flip phase only (white or black pictures), the other phase carries
# this much more of it: the phases' difference is then 70% of the mark instead of 50%, and those
# pixels change no more than unclipped ones do (1.4^2 / 2 < 1), so PSNR stays where it was.
CLIP_BOOST = 1.4
ANALYSIS_SHORT_SIDE = 64
CROP_STEPS = (0.0, 0.03, 0.06, 0.09, 0.12, 0.15)  # fractions cut off an edge the search tries
MIN_PILOT_Z = 5.0  # over 150 unmarked clips the search peaked at 4.5 sigma; 4.0 let 2-6% through
# The uncropped frame is one hypothesis, not 1,296, so chance reaches less far there: over 180
# unmarked clips it peaked at 3.2 sigma (the crop search at 4.6). A file that was not cropped is
# judged there at this lower bar.
MIN_FULL_FRAME_Z = 4.0
# A candidate video is named when its payload scores this many deviations above chance (and best):
# a wrong one gets there with probability 3.4e-6, so 0.3% of files for a catalogue of 1,000.
MIN_MATCH_Z = 4.5
BLOCK_SECONDS = 0.5  # the mark's sign flips every half second (see _signs)
NOISE_FLOOR = 0.02  # levels: 8-bit rounding alone leaves this much in a coefficient; a clean
# render's quadrature map can be exactly zero, and weights must stay finite
PHASE_STEPS = 8  # offsets within one flip period the detector tries, for clips cut mid-block


@dataclass(frozen=True)
class WatermarkResult:
    found: bool  # the pilot is there: this picture carries a ReelForge mark
    pilot_z: float  # pilot correlation in noise standard deviations (the stronger of two estimates)
    payload_ok: bool  # the 64 bits read back with a matching CRC
    deployment_tag: str | None  # 4 hex digits, when payload_ok
    video_tag: str | None  # 8 hex digits, when payload_ok
    crop: tuple[float, float, float, float]  # (left, top, right, bottom) the search settled on
    video_id: str | None = None  # the candidate the payload matched, when candidates were given
    match_z: float = 0.0  # that candidate's score (see identify_z)
    full_frame_z: float = 0.0  # the pilot's z over the whole, uncropped frame (MIN_FULL_FRAME_Z)

    @property
    def found_blind(self) -> bool:
        """Found from the pilot alone, with no candidate videos to match."""
        return _present(self.pilot_z, self.full_frame_z)


def _present(pilot_z: float, full_frame_z: float) -> bool:
    """The blind presence rule: the best crop's bar, or the lower bar of the uncropped frame."""
    return bool(pilot_z >= MIN_PILOT_Z or full_frame_z >= MIN_FULL_FRAME_Z)


def tag(text: str, bits: int) -> int:
    """A short, stable number naming `text` (a deployment or video id) inside the payload."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> (64 - bits)


def crc16(value: int, bits: int) -> int:
    """CRC-16/CCITT of the payload's bits, most significant first."""
    crc = 0xFFFF
    for i in reversed(range(bits)):
        top = ((crc >> 15) & 1) ^ ((value >> i) & 1)
        crc = ((crc << 1) & 0xFFFF) ^ (0x1021 if top else 0)
    return crc


def payload_bits(deployment_id: str, video_id: str) -> np.ndarray:
    """The 64 bits as +-1: deployment tag (16), video tag (32), CRC-16 of both."""
    value = (tag(deployment_id, 16) << 32) | tag(video_id, 32)
    word = (value << 16) | crc16(value, 48)
    return np.array([1.0 if (word >> (63 - i)) & 1 else -1.0 for i in range(PAYLOAD_BITS)])


@lru_cache(maxsize=1)
def _code():
    """Frequencies (F, 2), and the orthonormal code (2F, 1 + 64) plus its complement (2F, rest)."""
    freqs = [(fx, fy) for fx in range(0, MAX_FREQ + 1) for fy in range(-MAX_FREQ, MAX_FREQ + 1)
             if (fx > 0 or fy > 0) and 1 <= math.hypot(fx, fy) <= MAX_FREQ]
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(KEY.encode()).digest()[:8], "big"))
    q, _ = np.linalg.qr(rng.standard_normal((2 * len(freqs), 2 * len(freqs))))
    return np.array(freqs, dtype=np.float64), q[:, :1 + PAYLOAD_BITS], q[:, 1 + PAYLOAD_BITS:]


def _tables(n: int, start: float, span: float, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of 2 pi f u at the n pixel centres mapped to u in [start, start + span]: (F, n)."""
    u = start + (np.arange(n) + 0.5) / n * span
    angle = 2 * np.pi * freqs[:, None] * u[None]
    return np.cos(angle), np.sin(angle)


def pattern(height: int, width: int, bits: np.ndarray) -> np.ndarray:
    """The mark for a frame of this size: (H, W) float luma offsets with rms STRENGTH."""
    freqs, code, _ = _code()
    weights = np.concatenate([[math.sqrt(PILOT_SHARE)], math.sqrt((1 - PILOT_SHARE) / PAYLOAD_BITS) * bits])
    coeffs = math.sqrt(2) * STRENGTH * (code @ weights)  # (2F,): cos then sin amplitude per frequency
    a, b = coeffs[0::2], coeffs[1::2]
    cx, sx = _tables(width, 0.0, 1.0, freqs[:, 0])  # (F, W)
    cy, sy = _tables(height, 0.0, 1.0, freqs[:, 1])  # (F, H)
    # a cos(X + Y) + b sin(X + Y), expanded so that each term is separable in x and y.
    return (cy * a[:, None]).T @ cx - (sy * a[:, None]).T @ sx + (cy * b[:, None]).T @ sx + (sy * b[:, None]).T @ cx


def _signs(count: int, fps: float, phase: float = 0.0, start: int = 0) -> np.ndarray:
    """+1 or -1 for each of `count` frames from frame `start` by its time: the mark flips every
    BLOCK_SECONDS. A picture that stays still (most of every frame here) then cancels out of the
    detector's flip-weighted sum, and times, not frame numbers, carry the flips through a change
    of frame rate."""
    times = np.arange(start, start + count) / fps + phase
    return np.where(np.floor(times / BLOCK_SECONDS) % 2 == 0, 1.0, -1.0)


def embed(frames: np.ndarray, fps: float, deployment_id: str, video_id: str, chunk: int = 16,
          out: np.ndarray | None = None) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 with the mark added to every frame's luma (chroma untouched);
    `chunk` frames at a time, so a long 1080p clip never exists as floats all at once. `out` may be
    `frames` itself (marking in place). Torch, not numpy: its kernels use every core (measured at
    1080p: 0.23 s a frame in numpy)."""
    out = np.empty_like(frames) if out is None else out
    done = 0
    for part in embed_chunks(as_chunks(frames, chunk), fps, deployment_id, video_id, in_place=out is frames):
        if out is not frames:
            out[done:done + len(part)] = part
        done += len(part)
    return out


def embed_chunks(chunks, fps: float, deployment_id: str, video_id: str, in_place: bool = False):
    """The same mark over a clip that arrives in pieces: uint8 (n, H, W, 3) chunks in order in,
    marked chunks out, each as it comes (a caller encoding as it goes never holds the clip)."""
    import torch
    mark, start = None, 0
    for part in chunks:
        if mark is None:  # the pattern depends on the frame size alone
            mark = torch.from_numpy(pattern(part.shape[1], part.shape[2],
                                            payload_bits(deployment_id, video_id)).astype(np.float32))  # (H, W)
        signs = torch.from_numpy(_signs(len(part), fps, start=start).astype(np.float32))
        marked = _add_mark(torch.from_numpy(part), signs[:, None, None] * mark).numpy()
        if in_place and part.flags.writeable:
            part[...] = marked
            marked = part
        start += len(part)
        yield marked


def _add_mark(pixels, signed):
    """uint8 frames (t, H, W, 3) plus signed luma offsets (t, H, W), as uint8."""
    import torch
    # On white or black the mark clips in one flip phase, and the detector reads the
    # difference between phases: give the phase that fits more (see CLIP_BOOST). The same
    # offset goes to all three channels, so the brightest and darkest channel decide.
    brightest, darkest = pixels.amax(-1).float(), pixels.amin(-1).float()
    boost = _clips(darkest - signed, brightest - signed) & ~_clips(darkest + signed, brightest + signed)
    signed = torch.where(boost, CLIP_BOOST * signed, signed)
    return (pixels.float() + signed[..., None]).round_().clamp_(0, 255).to(torch.uint8)


def _clips(darkest, brightest):
    """Where a pixel whose channels span darkest..brightest leaves 0..255."""
    return (darkest < 0) | (brightest > 255)


def _luma(frames: np.ndarray, chunk: int = 16) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, h, w) float luma, resized so the short side is ANALYSIS_SHORT_SIDE."""
    import torch
    import torch.nn.functional as F
    t, h, w, _ = frames.shape
    scale = ANALYSIS_SHORT_SIDE / min(h, w)
    size = (max(8, round(h * scale)), max(8, round(w * scale)))
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    parts = []
    for i in range(0, t, chunk):
        y = torch.from_numpy(frames[i:i + chunk].astype(np.float32) @ weights)  # (t, H, W)
        parts.append(F.interpolate(y[:, None], size=size, mode="bilinear", antialias=scale < 1,
                                   align_corners=False)[:, 0].numpy())
    return np.concatenate(parts).astype(np.float64)


def _flat_laplacian(luma: np.ndarray) -> np.ndarray:
    """-div(mask * grad Y) of every frame, the mask dropping edges: (T, h, w)."""
    gx = np.diff(luma, axis=2)  # (T, h, w-1)
    gy = np.diff(luma, axis=1)  # (T, h-1, w)
    # Levels per pixel: the mark's slope is under 1.5, an object's edge far over. Measured on 60
    # generated clips after each transformation: 5 keeps more of the mark than 4 (found 93-95%
    # instead of 88-95% at a fixed crop), 3 less; unmarked clips stayed under 4.1 at all three.
    threshold = 5.0
    gx = np.where(np.abs(gx) < threshold, gx, 0.0)
    gy = np.where(np.abs(gy) < threshold, gy, 0.0)
    d = np.zeros(luma.shape)
    d[:, :, :-1] -= gx
    d[:, :, 1:] += gx
    d[:, :-1] -= gy
    d[:, 1:] += gy
    return d


def _demodulate(d: np.ndarray, fps: float, phase: float) -> np.ndarray:
    """The flip-weighted mean of per-frame maps (T, h, w) -> (h, w); a plain mean when the clip
    is shorter than one flip (a still image), where nothing can be cancelled."""
    weights = _signs(len(d), fps, phase)
    weights = weights - weights.mean()
    if np.abs(weights).sum() < 1e-9:
        return d.mean(0)
    return np.tensordot(weights / np.abs(weights).sum(), d, axes=1)


def _project(d: np.ndarray, crop: tuple[float, float, float, float]) -> np.ndarray:
    """Coefficients (2F,) of d on the basis laid over the part of the original frame `crop` left,
    each divided by its Laplacian eigenvalue so every frequency counts alike."""
    freqs, _, _ = _code()
    left, top, right, bottom = crop
    h, w = d.shape
    cx, sx = _tables(w, left, 1 - left - right, freqs[:, 0])
    cy, sy = _tables(h, top, 1 - top - bottom, freqs[:, 1])
    # sums over pixels of d cos(X + Y) and d sin(X + Y), separably.
    dcx, dsx = d @ cx.T, d @ sx.T  # (h, F)
    cos_part = np.einsum("fh,hf->f", cy, dcx) - np.einsum("fh,hf->f", sy, dsx)
    sin_part = np.einsum("fh,hf->f", cy, dsx) + np.einsum("fh,hf->f", sy, dcx)
    fx = freqs[:, 0] * (1 - left - right) / w  # cycles per analysis pixel
    fy = freqs[:, 1] * (1 - top - bottom) / h
    eigen = 4 * np.sin(np.pi * fx) ** 2 + 4 * np.sin(np.pi * fy) ** 2
    coeffs = np.empty(2 * len(freqs))
    coeffs[0::2], coeffs[1::2] = cos_part / eigen, sin_part / eigen
    return coeffs


def _crops():
    return [(l, t, r, b) for l in CROP_STEPS for t in CROP_STEPS for r in CROP_STEPS for b in CROP_STEPS]


def _pilot(d: np.ndarray, crop) -> tuple[float, np.ndarray]:
    """Pilot correlation in noise deviations, and the coefficients, for one crop hypothesis."""
    _, code, complement = _code()
    coeffs = _project(d, crop)
    noise = np.sqrt(np.mean((complement.T @ coeffs) ** 2)) + 1e-12
    return float(code[:, 0] @ coeffs) / noise, coeffs


def _matched(d: np.ndarray, d_quadrature: np.ndarray, crop) -> np.ndarray:
    """z-scores (65,) of the pilot and each bit, every coefficient weighted by its own noise.

    The picture's leftovers are far from white: noise differs by an order of magnitude between
    frequencies. The quadrature map (flips a quarter period off, which the mark does not follow)
    holds that noise and no mark, so it measures each frequency band's variance; the matched
    filter then weighs each coefficient by 1 / variance."""
    freqs, code, complement = _code()
    coeffs, noise = _project(d, crop), _project(d_quadrature, crop)
    # The same map's part off the code (the complement's 85 of 150 directions) holds noise too;
    # pooling it with the quadrature map's halves the spread of the estimate, and with it the
    # tail of z on unmarked clips (measured over 180: at most 4.1 pooled, 8.8 quadrature alone).
    off_code = complement @ (complement.T @ coeffs) * math.sqrt(len(coeffs) / complement.shape[1])
    band = np.repeat(np.round(np.hypot(freqs[:, 0], freqs[:, 1])), 2)
    var = np.empty_like(coeffs)
    for r in np.unique(band):
        var[band == r] = 0.5 * np.mean(noise[band == r] ** 2) + 0.5 * np.mean(off_code[band == r] ** 2) + NOISE_FLOOR ** 2
    # Generalised least squares: the amplitudes of all 65 code vectors at once, so uneven
    # weights cannot leak one bit into another.
    precision = (code / var[:, None]).T @ code  # (65, 65)
    covariance = np.linalg.inv(precision)
    amplitudes = covariance @ ((code / var[:, None]).T @ coeffs)
    return amplitudes / np.sqrt(np.diag(covariance))


def identify_z(amplitudes: np.ndarray, deployment_id: str, video_id: str) -> float:
    """How well the read payload amplitudes (64,) fit one candidate video, in deviations of chance.

    The blind read needs all 64 bits right (its CRC); a service that knows its own videos only has
    to pick one: the video and check bits (48) are correlated with each candidate's, and divided
    by the amplitudes' norm, which is the spread a random candidate's score has."""
    a = amplitudes[16:]
    return float(payload_bits(deployment_id, video_id)[16:] @ a / (np.linalg.norm(a) + 1e-12))


def detect(frames: np.ndarray, fps: float, deployment_id: str | None = None,
           video_ids: tuple[str, ...] | list[str] = ()) -> WatermarkResult:
    """Look for the mark in frames (T, H, W, 3) uint8 of any size, frame rate or crop; with a
    deployment's `video_ids`, also say which of them it carries (see identify_z)."""
    _, code, _ = _code()
    per_frame = _flat_laplacian(_luma(frames))
    period = 2 * BLOCK_SECONDS
    phases = [period * i / PHASE_STEPS for i in range(PHASE_STEPS)] if len(frames) / fps > BLOCK_SECONDS else [0.0]
    # A clip's phase search fixes the sign; a still image's mark may be either sign, so |z| is searched.
    score = (lambda z: z) if len(phases) > 1 else abs  # noqa: E731
    uncropped = (0.0, 0.0, 0.0, 0.0)
    phase = max(phases, key=lambda p: score(_pilot(_demodulate(per_frame, fps, p), uncropped)[0]))
    d = _demodulate(per_frame, fps, phase)
    full_frame_z = 0.0  # a still image keeps the crop search's bar: its picture does not cancel out
    if len(phases) > 1:
        full_frame_z = max(_pilot(d, uncropped)[0],
                           _matched(d, _demodulate(per_frame, fps, phase + BLOCK_SECONDS / 2), uncropped)[0])
    crop = max(_crops(), key=lambda c: score(_pilot(d, c)[0]))
    phase = max(phases, key=lambda p: score(_pilot(_demodulate(per_frame, fps, p), crop)[0]))  # again, at that crop
    d = _demodulate(per_frame, fps, phase)
    z, coeffs = _pilot(d, crop)
    for step in (0.01, 0.005):  # refine each edge around the coarse optimum
        for i in range(4):
            for delta in (-step, step):
                trial = tuple(max(0.0, c + delta) if j == i else c for j, c in enumerate(crop))
                z_t, coeffs_t = _pilot(d, trial)
                if score(z_t) > score(z):
                    z, crop, coeffs = z_t, trial, coeffs_t
    # The pilot's z against the code's complement is comparable across pictures, so it decides
    # presence (MIN_PILOT_Z); the bits are read with noise weighting.
    if len(phases) > 1:  # a clip: weigh frequencies by the noise the quadrature map measures
        amplitudes = _matched(d, _demodulate(per_frame, fps, phase + BLOCK_SECONDS / 2), crop)
        # Two estimates of the same pilot, each tested against its own measured null: the plain
        # one is steadier where the picture moves, the weighted one where noise is uneven across
        # frequencies (measured: either alone finds 87-95% after each transformation, both 92-97%).
        z = max(z, float(amplitudes[0]))
        bits = amplitudes[1:]
    else:  # a still image: no quadrature to measure noise with, and its flip sign is unknown
        if z < 0:
            z, coeffs = -z, -coeffs
        bits = code[:, 1:].T @ coeffs
    word = 0
    for b in bits:
        word = (word << 1) | int(b > 0)
    value, check = word >> 16, word & 0xFFFF
    found = _present(z, full_frame_z)
    payload_ok = found and crc16(value, 48) == check
    video_id, match_z = None, 0.0
    if deployment_id is not None and video_ids:
        scores = [identify_z(bits, deployment_id, v) for v in video_ids]
        best = int(np.argmax(scores))
        match_z = scores[best]
        if match_z >= MIN_MATCH_Z:
            video_id, found = video_ids[best], True
    return WatermarkResult(found=found, pilot_z=float(z), payload_ok=payload_ok,
                           deployment_tag=f"{value >> 32:04x}" if payload_ok else None,
                           video_tag=f"{value & 0xFFFFFFFF:08x}" if payload_ok else None, crop=crop,
                           video_id=video_id, match_z=float(match_z), full_frame_z=float(full_frame_z))
