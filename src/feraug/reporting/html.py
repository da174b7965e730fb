"""One self-contained HTML page from a markdown report: tables, headings and figures, with
every local image embedded as a data URI, so the file can be mailed, archived or opened
offline and shows the same thing everywhere. Rendering is markdown-it-py's (CommonMark plus
tables), which rich already brings in."""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import numpy as np
from markdown_it import MarkdownIt
from PIL import Image

STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 70rem;
       margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #1d1d1f; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #c8c8cc; padding: 0.3rem 0.6rem; text-align: left; }
th { background: #f2f2f5; }
td { font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; }
code { background: #f2f2f5; padding: 0 0.2rem; border-radius: 3px; }
pre { background: #f2f2f5; padding: 0.6rem; overflow-x: auto; }
h1 { border-bottom: 2px solid #c8c8cc; } h2 { border-bottom: 1px solid #e0e0e4; }
"""
_IMG = re.compile(r'(<img\s[^>]*src=")([^"]+)(")')
_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
          ".svg": "image/svg+xml", ".gif": "image/gif"}


def compact_png(data: bytes) -> bytes:
    """The same picture in fewer bytes, pixel for pixel: matplotlib writes RGBA even for an
    opaque figure of grey faces, so an opaque image loses its alpha channel and a grey one is
    stored as one grey channel (about half the size of a grid of faces). Only plain 8-bit
    RGB/RGBA files are rewritten; anything else (16-bit samples, a transparent colour, a
    colour profile, animation, palette or grey files, bytes that do not decode) is returned
    as it is."""
    if len(data) < 26 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[24] != 8:
        return data  # IHDR's bit depth: Pillow would read 16-bit samples as 8-bit ones
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        return data  # not a picture PIL reads: embedded as it is
    if (image.mode not in ("RGB", "RGBA") or getattr(image, "is_animated", False)
            or "transparency" in image.info or "icc_profile" in image.info):
        return data
    pixels = np.asarray(image)
    if image.mode == "RGBA" and (pixels[..., 3] != 255).any():
        return data
    rgb = pixels[..., :3]
    grey = bool((rgb == rgb[..., :1]).all())
    compact = Image.fromarray(rgb[..., 0]) if grey else Image.fromarray(np.ascontiguousarray(rgb))
    out = io.BytesIO()
    compact.save(out, "PNG", optimize=True)
    return out.getvalue() if out.tell() < len(data) else data


def _embed(match: re.Match, base: Path) -> str:
    src = html.unescape(match.group(2))
    path = (base / src).resolve()
    kind = _TYPES.get(path.suffix.lower())
    if src.startswith(("data:", "http:", "https:")) or kind is None or not path.is_file():
        return match.group(0)  # not a local figure: left as written
    raw = path.read_bytes()
    data = base64.b64encode(compact_png(raw) if kind == "image/png" else raw).decode("ascii")
    return f"{match.group(1)}data:{kind};base64,{data}{match.group(3)}"


def markdown_to_html(markdown: str, base: str | Path, title: str) -> str:
    """A complete HTML document for ``markdown``; image paths are resolved against ``base``
    and embedded."""
    body = MarkdownIt("commonmark").enable("table").render(markdown)
    body = _IMG.sub(lambda m: _embed(m, Path(base)), body)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
            f"<body>\n{body}</body>\n</html>\n")
