"""A tiny PNG painter (pure Python) for generated cover art: no image library needed."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """``pixel(x, y) -> (r, g, b)``; returns PNG bytes."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows.extend(pixel(x, y))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def lighthouse_cover(width: int = 300, height: int = 450) -> bytes:
    """A lighthouse at dusk: sky gradient, sea, a striped tower and its beam."""
    horizon = int(height * 0.72)
    cx = width // 2

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        # the tower: a trapezoid from the horizon up, red and white bands
        top, base = int(height * 0.28), horizon + 10
        if top <= y <= base:
            half = 14 + (y - top) * 16 // (base - top)
            if abs(x - cx) <= half:
                return (200, 40, 40) if ((y - top) // 28) % 2 == 0 else (235, 235, 230)
        if top - 26 <= y < top and abs(x - cx) <= 12:
            return (255, 230, 120)  # the lamp room
        if abs(y - (top - 14)) < (x - cx) * 0.18 + 4 and x > cx:
            return (250, 220, 140)  # the beam
        if y < horizon:
            t = y / horizon
            return (int(30 + 200 * t), int(30 + 110 * t), int(80 + 60 * t))
        wave = 12 if (x + 3 * y) % 37 < 3 else 0
        return (20 + wave, 50 + wave, 90 + wave)

    return png(width, height, pixel)
