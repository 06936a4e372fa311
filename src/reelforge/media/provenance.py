"""Provenance of every output: a signed C2PA manifest in the file, an invisible watermark in the
pixels, and an optional visible mark; and the check that reads them back.

The deployment's identity (an id, a signing key and its certificate chain) lives under
`REELFORGE_HOME/provenance/`, made at first use unless REELFORGE_SIGNING_CERT and
REELFORGE_SIGNING_KEY name the deployment's own PEM files. Made here: a P-256 CA and a leaf
certificate with the profile C2PA validators require (digitalSignature, emailProtection EKU).
A reader that trusts our CA sees "Trusted"; anyone else sees a valid signature by an unknown
signer ("Valid"), which still proves the file is unchanged since it was signed.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import tempfile
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import watermark
from .encode import as_chunks, check_output_path, write_bytes_atomic, write_video

GENERATOR = "ReelForge"
SIGNED_FORMATS = {"mp4": "video/mp4", "gif": "image/gif", "png": "image/png"}  # c2pa cannot embed in WebM
AI_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
SETTINGS_LABEL = "org.reelforge.generation"


class ProvenanceError(ValueError):
    """A file that cannot be checked, or a signing identity that cannot be used."""


@dataclass(frozen=True)
class Identity:
    deployment_id: str
    cert_chain_pem: bytes  # leaf first, then the CA
    key_pem: bytes
    trust_pem: bytes  # the CA a verifier of this deployment trusts


def reelforge_home(env: dict | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("REELFORGE_HOME") or "~/.reelforge").expanduser()


def _make_certificates(deployment_id: str) -> tuple[bytes, bytes, bytes]:
    """(leaf + CA chain PEM, leaf key PEM, CA PEM) for a new deployment."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"ReelForge {deployment_id}")])

    def usage(sign: bool):
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not sign,
                             crl_sign=not sign, encipher_only=False, decipher_only=False)

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("ReelForge deployment CA")).issuer_name(name("ReelForge deployment CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name("ReelForge signer")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem)
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return leaf.public_bytes(pem) + ca_pem, key_pem, ca_pem


def load_identity(home: Path | None = None, env: dict | None = None) -> Identity:
    """The deployment's identity, made (once, atomically) on first use."""
    env = os.environ if env is None else env
    folder = (home or reelforge_home(env)) / "provenance"
    folder.mkdir(parents=True, exist_ok=True)
    id_path = folder / "deployment.json"
    if not id_path.exists():
        write_bytes_atomic(id_path, json.dumps({"deployment_id": f"dep_{secrets.token_hex(8)}"}).encode())
    deployment_id = json.loads(id_path.read_text())["deployment_id"]
    cert_env, key_env = env.get("REELFORGE_SIGNING_CERT"), env.get("REELFORGE_SIGNING_KEY")
    if cert_env or key_env:
        if not (cert_env and key_env):
            raise ProvenanceError("set both REELFORGE_SIGNING_CERT and REELFORGE_SIGNING_KEY (PEM files), or neither")
        try:
            chain, key = Path(cert_env).read_bytes(), Path(key_env).read_bytes()
        except OSError as e:
            raise ProvenanceError(f"cannot read the signing certificate or key: {e}") from None
        trust_env = env.get("REELFORGE_TRUST_ANCHORS")
        trust = Path(trust_env).read_bytes() if trust_env else chain.split(b"-----END CERTIFICATE-----")[-2] + b"-----END CERTIFICATE-----\n"
        return Identity(deployment_id, chain, key, trust)
    paths = {name: folder / name for name in ("chain.pem", "signer.key", "ca.pem")}
    if not all(p.exists() for p in paths.values()):
        chain, key, ca = _make_certificates(deployment_id)
        write_bytes_atomic(paths["ca.pem"], ca, mode=0o644)
        write_bytes_atomic(paths["signer.key"], key, mode=0o600)
        write_bytes_atomic(paths["chain.pem"], chain, mode=0o644)  # last: its presence means the set is complete
    return Identity(deployment_id, paths["chain.pem"].read_bytes(), paths["signer.key"].read_bytes(),
                    paths["ca.pem"].read_bytes())


def manifest_definition(settings: dict, video_id: str, deployment_id: str) -> dict:
    """What the manifest claims: made by an AI model, which one, with what settings, when, and a
    hash of the prompt (the prompt itself stays in the creator's hands)."""
    prompt = settings.get("prompt", "")
    recorded = {k: v for k, v in settings.items() if k not in ("prompt", "negative_prompt")}
    return {
        "claim_generator_info": [{"name": GENERATOR, "version": _version()}],
        "title": video_id,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{
                "action": "c2pa.created", "digitalSourceType": AI_SOURCE_TYPE,
                "softwareAgent": {"name": GENERATOR, "version": _version()}}]}},
            {"label": SETTINGS_LABEL, "data": {
                "deployment_id": deployment_id, "video_id": video_id, "model": settings.get("model"),
                "settings": recorded, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(),
                "watermark": {"key": watermark.KEY, "deployment_tag": f"{watermark.tag(deployment_id, 16):04x}",
                              "video_tag": f"{watermark.tag(video_id, 32):08x}"}}},
        ],
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("reelforge")
    except PackageNotFoundError:
        return "dev"


def sign(source: Path, dest: Path, fmt: str, manifest: dict, identity: Identity) -> None:
    """Write `source` with an embedded signed manifest to `dest`."""
    import c2pa
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", identity.cert_chain_pem, identity.key_pem, None))
    with c2pa.Builder(json.dumps(manifest)) as builder, open(source, "rb") as src, open(dest, "w+b") as dst:
        builder.sign(signer, SIGNED_FORMATS[fmt], src, dst)


def visible_mark(frames: np.ndarray, text: str = "AI · ReelForge") -> np.ndarray:
    """A small label in the bottom-right corner of every frame, legible at any size."""
    from PIL import Image, ImageDraw, ImageFont
    t, h, w, _ = frames.shape
    size = max(6, h // 14)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    pad = max(1, size // 4)
    box_w, box_h = min(w, right - left + 2 * pad), min(h, bottom - top + 2 * pad)
    label = Image.new("RGBA", (box_w, box_h), (0, 0, 0, 140))
    ImageDraw.Draw(label).text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 230))
    label = np.asarray(label).astype(np.float32)
    alpha = label[..., 3:] / 255.0
    out = frames.copy()  # uint8, and floats for the label's corner only: a 20 s 1080p clip is 3 GB
    region = out[:, h - box_h:, w - box_w:].astype(np.float32)
    out[:, h - box_h:, w - box_w:] = np.rint(region * (1 - alpha) + label[..., :3] * alpha).clip(0, 255)
    return out


def write_marked(frames, path: str | os.PathLike, fps: float, fmt: str | None, settings: dict,
                 metadata: dict[str, str], video_id: str, identity: Identity, visible: bool = False,
                 in_place: bool = False) -> Path:
    """Watermark, optionally label, encode and sign: the way every output is written. `frames`:
    uint8 (T, H, W, 3), or pieces of it in order (`VideoOutput.chunks()`), marked and encoded as
    they come, so a long 1080p clip is never held whole. `in_place` marks the frames themselves,
    for callers done with the unmarked picture."""
    marked = watermark.embed_chunks(as_chunks(frames), fps, identity.deployment_id, video_id, in_place=in_place)
    return write_signed((visible_mark(part) for part in marked) if visible else marked, path, fps, fmt, settings,
                        metadata, video_id, identity)


def write_signed(marked, path: str | os.PathLike, fps: float, fmt: str | None, settings: dict,
                 metadata: dict[str, str], video_id: str, identity: Identity) -> Path:
    """Encode frames that already carry the watermark (whole, or pieces in order) and sign the
    file (MP4, GIF, PNG). Atomic: the file appears complete and signed, or not at all."""
    path, fmt = check_output_path(path, fmt)
    if fmt not in SIGNED_FORMATS:
        return write_video(marked, path, fps, fmt, metadata=metadata)
    fd, unsigned = tempfile.mkstemp(prefix=f".{path.name}.unsigned.", suffix=f".{fmt}", dir=path.parent)
    os.close(fd)
    fd, signed = tempfile.mkstemp(prefix=f".{path.name}.signed.", suffix=f".{fmt}", dir=path.parent)
    os.close(fd)
    try:
        write_video(marked, unsigned, fps, fmt, metadata=metadata)
        sign(Path(unsigned), Path(signed), fmt, manifest_definition(settings, video_id, identity.deployment_id), identity)
        os.replace(signed, path)
    finally:
        for tmp in (unsigned, signed):
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


@dataclass
class ProvenanceReport:
    manifest_present: bool
    manifest_valid: bool  # signature and hashes check out (trusted or not)
    manifest_state: str | None  # c2pa's: Trusted, Valid or Invalid
    manifest_problems: list[str]  # why it is not valid, in the validator's words
    generator: str | None
    deployment_id: str | None
    video_id: str | None
    watermark_found: bool
    watermark_pilot_z: float
    watermark_payload_ok: bool
    watermark_deployment_tag: str | None
    watermark_video_tag: str | None
    # With the checking deployment's own videos as candidates: the one the mark names, if any.
    watermark_video_id: str | None = None
    watermark_match_z: float = 0.0

    @property
    def verified(self) -> bool:
        return self.manifest_valid or self.watermark_found

    def to_dict(self) -> dict:
        return {**asdict(self), "verified": self.verified}


def _read_manifest(path: Path, fmt: str, trust_pem: bytes | None) -> dict:
    import c2pa
    result = {"manifest_present": False, "manifest_valid": False, "manifest_state": None, "manifest_problems": [],
              "generator": None, "deployment_id": None, "video_id": None}
    if fmt not in SIGNED_FORMATS:
        return result
    context = None
    if trust_pem:
        settings = c2pa.Settings.from_dict({"verify": {"verify_trust": True}, "trust": {"trust_anchors": trust_pem.decode()}})
        context = c2pa.Context(settings=settings)
    try:
        with open(path, "rb") as f:
            reader = c2pa.Reader.try_create(SIGNED_FORMATS[fmt], f, None, context) if context else \
                c2pa.Reader.try_create(SIGNED_FORMATS[fmt], f)
            if reader is None:
                return result
            with reader:
                state = reader.get_validation_state()
                results = reader.get_validation_results() or {}
                manifest = reader.get_active_manifest() or {}
    except c2pa.C2paError as e:
        result.update(manifest_present=True, manifest_state="Invalid", manifest_problems=[str(e)[:300]])
        return result
    failures = [f"{item.get('code')}: {item.get('explanation', '')}"
                for item in (results.get("activeManifest") or {}).get("failure", [])]
    untrusted_only = all(p.startswith("signingCredential.untrusted") for p in failures)
    generation = next((a["data"] for a in manifest.get("assertions", []) if a.get("label") == SETTINGS_LABEL), {})
    agents = manifest.get("claim_generator_info") or [{}]
    result.update(manifest_present=True, manifest_state=state, manifest_problems=failures,
                  manifest_valid=state in ("Valid", "Trusted") or (bool(failures) and untrusted_only),
                  generator=agents[0].get("name"), deployment_id=generation.get("deployment_id"),
                  video_id=generation.get("video_id"))
    return result


def local_video_ids(home: Path | None = None) -> list[str]:
    """The ids of the videos this machine's deployment made (its service database, read-only), or
    none when it has not served any: what `reelforge verify` checks a worn watermark against."""
    import sqlite3
    path = (home or reelforge_home()) / "reelforge.db"
    if not path.is_file():
        return []
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return [row[0] for row in db.execute("SELECT id FROM videos")]
    except sqlite3.Error:  # not yet migrated, locked for long, or not ours: check blind
        return []


def verify(path: str | os.PathLike, trust_pem: bytes | None = None, deployment_id: str | None = None,
           video_ids: tuple[str, ...] | list[str] = ()) -> ProvenanceReport:
    """Check a file's manifest and watermark; with a deployment's `video_ids`, also which of its
    videos the mark names. Raises ProvenanceError if it is not a readable video or image."""
    from .decode import read_video
    path = Path(path)
    if not path.is_file():
        raise ProvenanceError(f"no such file: {str(path)!r}")
    fmt = _sniff_format(path)
    try:
        if fmt == "png" or fmt == "jpg":
            from PIL import Image
            with Image.open(path) as image:
                frames, fps = np.asarray(image.convert("RGB"))[None], 1.0
        else:
            frames, fps, _ = read_video(path)
    except Exception as e:  # PyAV and Pillow raise many types for one cause: not a media file
        raise ProvenanceError(f"{str(path)!r} is not a readable video or image (mp4, webm, mov, gif, png, jpg): "
                              f"{str(e).splitlines()[0][:120] if str(e) else type(e).__name__}") from None
    manifest = _read_manifest(path, fmt, trust_pem)
    mark = watermark.detect(frames, fps, deployment_id, video_ids)
    return ProvenanceReport(**manifest, watermark_found=mark.found, watermark_pilot_z=round(mark.pilot_z, 2),
                            watermark_payload_ok=mark.payload_ok,
                            watermark_deployment_tag=mark.deployment_tag, watermark_video_tag=mark.video_tag,
                            watermark_video_id=mark.video_id, watermark_match_z=round(mark.match_z, 2))


def _sniff_format(path: Path) -> str:
    """The container from the file's first bytes (names lie after a download)."""
    head = path.read_bytes()[:16]
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"GIF8"):
        return "gif"
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"\xff\xd8"):
        return "jpg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    return path.suffix.lstrip(".").lower() or "unknown"
