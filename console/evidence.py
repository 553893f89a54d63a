"""Which evidence the workbench may preview, and how its bytes are checked before a browser
is told to show them.

A file is shown inline only when its declared type is an image or a PDF *and* its first bytes
say the same (a "PNG" that is really HTML, or a PDF named as an image, stays a download). The
preview is served with ``Content-Security-Policy: sandbox`` and shown in an ``<img>``: a PDF as
a picture of its first page drawn in a limited child process (console/pdf_preview.py), so even a
hostile file runs nothing in the console's origin and the browser never parses a PDF.
"""

from __future__ import annotations

PREVIEW_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
PREVIEW_DOCUMENTS = frozenset({"application/pdf"})
PREVIEWABLE = PREVIEW_IMAGES | PREVIEW_DOCUMENTS

# What the preview route's answer may do: nothing but show itself (no scripts, no plugins'
# network, no forms), framed only by the console's own pages.
PREVIEW_POLICY = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'"


def sniffed_type(content: bytes) -> str | None:
    """The media type the file's signature bytes name, for the previewable types only."""
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def shown_inline(declared: str, content: bytes) -> bool:
    """Whether a file declared as ``declared`` may be shown in the browser rather than downloaded."""
    return declared in PREVIEWABLE and sniffed_type(content) == declared
