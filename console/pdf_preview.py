"""The workbench's PDF preview: the first page drawn as a PNG image in a child process.

Browsers do not show a PDF inside a sandboxed frame without scripts (their viewers are
scripts), and a frame that allowed them would run the file's document in the console's
origin. So the console sends the browser a picture of the page instead, drawn by PDFium
(pypdfium2) in a short-lived child process with memory and CPU limits: a hostile or broken
file can crash or exhaust only that child, and the browser never parses the PDF at all.
Rendered pages are kept by the file's sha256 (evidence never changes once stored).

``python -m console.pdf_preview`` is the child: a PDF on standard input, a PNG on standard output.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import threading
import zlib
from collections import OrderedDict

# Limits of the child that draws a page: address space, CPU seconds, wall-clock seconds.
CHILD_MEMORY_BYTES = 768 * 1024 * 1024
CHILD_CPU_SECONDS = 10
CHILD_TIMEOUT_SECONDS = 20.0
# The drawn page's width in pixels (its height follows the page's proportions).
PAGE_WIDTH = 900
MAX_PAGE_PIXELS = 4_000_000
CACHED_PAGES = 64

_cache: OrderedDict[str, bytes | None] = OrderedDict()
_lock = threading.Lock()


def png_bytes(rgb: bytes, width: int, height: int) -> bytes:
    """A PNG file of ``height`` rows of ``width`` 8-bit RGB pixels (no library beyond zlib)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    stride = width * 3
    raw = b"".join(b"\x00" + rgb[row * stride : (row + 1) * stride] for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def draw_first_page(content: bytes) -> bytes:
    """The first page of the PDF ``content`` as a PNG (in this process: the child's work)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(content)
    try:
        if len(document) == 0:
            raise ValueError("the PDF has no pages")
        page = document[0]
        width, height = page.get_size()
        if width <= 0 or height <= 0:
            raise ValueError("the first page has no size")
        scale = min(PAGE_WIDTH / width, (MAX_PAGE_PIXELS / (width * height)) ** 0.5)
        bitmap = page.render(scale=scale, rev_byteorder=True)  # RGB, not PDFium's BGR
        pixels = bitmap.to_numpy()
        rows, columns = int(pixels.shape[0]), int(pixels.shape[1])
        return png_bytes(pixels[:, :, :3].tobytes(), columns, rows)
    finally:
        document.close()


def _limit_child() -> None:  # pragma: no cover - runs in the child before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CHILD_CPU_SECONDS, CHILD_CPU_SECONDS))


def first_page_png(content: bytes) -> bytes | None:
    """The first page of a PDF as a PNG, drawn in a limited child process; None when the file
    cannot be drawn (broken, hostile, too slow): the workbench then offers the download only."""
    digest = hashlib.sha256(content).hexdigest()
    with _lock:
        if digest in _cache:
            _cache.move_to_end(digest)
            return _cache[digest]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "console.pdf_preview"],
            input=content,
            capture_output=True,
            timeout=CHILD_TIMEOUT_SECONDS,
            preexec_fn=_limit_child,  # noqa: PLW1509 - the limits must be set in the child before it runs
            check=False,
        )
        drawn = done.stdout if done.returncode == 0 and done.stdout.startswith(b"\x89PNG") else None
    except subprocess.TimeoutExpired:
        drawn = None
    with _lock:
        _cache[digest] = drawn
        while len(_cache) > CACHED_PAGES:
            _cache.popitem(last=False)
    return drawn


def main() -> int:
    try:
        sys.stdout.buffer.write(draw_first_page(sys.stdin.buffer.read()))
    except Exception as exc:  # noqa: BLE001 - any failure of a hostile file is "no preview"
        print(f"no preview: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
