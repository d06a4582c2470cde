"""Robust image reading and writing, and the network's input scaling.

Every photo the project touches (training sources, benchmarks, the CLI) goes through ``read_image``, so
odd files fail loudly and identically everywhere instead of producing silently wrong pixels:

* files: only regular files of at most ``max_bytes`` are read (a device such as ``/dev/zero``, a FIFO or
  an oversized file is refused from ``fstat``, before any byte is read);
* decoding: Pillow first (it detects truncated files and knows EXIF, palettes, CMYK); files Pillow cannot
  identify fall back to OpenCV for the formats whose header is parsed here (PFM, PAM, Radiance HDR),
  anything else is refused. 16-bit PNG/TIFF colour files are decoded by OpenCV because
  Pillow keeps only their high byte; multi-frame files (GIF, TIFF) give their first frame;
* EXIF orientation (tag 0x0112) is applied, so pixels come out as a viewer shows them;
* 16-bit samples map to 8 bit as ``round(x / 257)`` (0 -> 0, 65535 -> 255); float samples are taken as
  [0, 1], clipped, and mapped as ``round(x * 255)``; 32-bit integer samples must lie in [0, 65535] and are
  treated as 16 bit;
* grayscale is repeated into 3 channels; CMYK and YCbCr are converted to RGB by Pillow;
* alpha is DROPPED, not composited: the stored colour values are kept as they are, because compositing
  would alter the very pixel statistics a forensic network looks at (a fully opaque image is unaffected
  either way);
* size limits: more than ``max_pixels`` pixels or a side shorter than ``min_size`` raise
  ``ImageReadError``, checked from the header alone for every format (Pillow's lazy open, or the header
  parsers above), so an over-limit image is never decoded, whatever Pillow's own bomb limit says.

``preprocess`` is the public input scaling of the released network, ``x / 255 * 2 - 1`` in float32 (the
same operations, in the same order, as the official code). It is numpy only, so data pipelines can use it
without importing JAX.
"""

from __future__ import annotations

import io
import os
import pathlib
import re
import stat
import threading
import warnings
from typing import BinaryIO, Union

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from mantra_jax.io.atomic import write_bytes_atomic

PathLike = Union[str, os.PathLike]

DEFAULT_MAX_PIXELS = 1 << 27  # 134 MP: above any current camera, far below a decompression bomb.
DEFAULT_MIN_SIZE = 8  # Shortest accepted side, in pixels.
DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB per file: above a 134 MP 16-bit RGB TIFF (0.8 GB), far below "endless".

# The one list of image file extensions: what folders and globs are expanded to (``mantra detect DIR``,
# ``mantra eval --tp-gt``, the benchmark builders). A file named explicitly is read whatever its name.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".jp2",
                              ".ppm", ".pgm", ".pbm", ".pnm", ".pam", ".pfm", ".hdr"})

_PILLOW_LOCK = threading.Lock()

_EXIF_ORIENTATION = 0x0112


class ImageReadError(ValueError):
    """A file that cannot be turned into an RGB image: unreadable, truncated, unsupported or out of limits."""


# ---- orientation ---------------------------------------------------------------------------------------

def apply_exif_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Returns ``image`` (H, W, ...) as displayed under EXIF orientation code 1..8 (others: unchanged)."""
    if orientation == 2:
        return image[:, ::-1]
    if orientation == 3:
        return image[::-1, ::-1]
    if orientation == 4:
        return image[::-1]
    if orientation == 5:  # transpose
        return np.swapaxes(image, 0, 1)
    if orientation == 6:  # rotate 90 degrees clockwise
        return np.swapaxes(image, 0, 1)[:, ::-1]
    if orientation == 7:  # transverse
        return np.swapaxes(image, 0, 1)[::-1, ::-1]
    if orientation == 8:  # rotate 90 degrees counter-clockwise
        return np.swapaxes(image, 0, 1)[::-1]
    return image


# ---- sample depth and channels -------------------------------------------------------------------------

def _to_uint8(samples: np.ndarray, name: str) -> np.ndarray:
    """Maps uint8/uint16/int32/float samples of any shape to uint8 (see the module docstring)."""
    if samples.dtype == np.uint8:
        return samples
    if samples.dtype == np.bool_:
        return samples.astype(np.uint8) * 255
    if samples.dtype.kind in "ui":
        lo, hi = (int(samples.min()), int(samples.max())) if samples.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise ImageReadError(f"{name}: integer samples outside [0, 65535] ({lo}..{hi}) are not supported")
        return np.rint(samples.astype(np.float64) / 257.0).astype(np.uint8)
    if samples.dtype.kind == "f":
        if not np.isfinite(samples).all():
            raise ImageReadError(f"{name}: floating-point image holds NaN or infinite samples")
        return np.rint(np.clip(samples.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ImageReadError(f"{name}: unsupported sample type {samples.dtype}")


def _to_rgb(samples: np.ndarray, name: str) -> np.ndarray:
    """(H, W), (H, W, 1..4) uint8 RGB(A)-ordered samples -> (H, W, 3) uint8, alpha dropped."""
    if samples.ndim == 2:
        samples = samples[:, :, None]
    if samples.ndim != 3 or samples.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f"{name}: unsupported pixel layout with shape {samples.shape}")
    channels = samples.shape[2]
    if channels <= 2:  # gray or gray + alpha
        samples = np.repeat(samples[:, :, :1], 3, axis=2)
    else:
        samples = samples[:, :, :3]
    return np.ascontiguousarray(samples)


def _check_size(height: int, width: int, name: str, max_pixels: int, min_size: int) -> None:
    if height * width > max_pixels:
        raise ImageReadError(f"{name}: {width}x{height} image has {height * width} pixels, over the limit of "
                             f"{max_pixels}")
    if min(height, width) < min_size:
        raise ImageReadError(f"{name}: {width}x{height} image is smaller than the minimum side of {min_size}")


# Deflate codes at most 258 repeated bytes in one 2-bit (length, distance) pair: no PNG compresses its
# filtered rows (one filter byte + ceil(W * bits / 8) bytes each) more than 1032:1. A baseline or progressive
# JPEG codes every 8x8 block of its largest component in its first DC scan with at least one bit.
DEFLATE_MAX_RATIO = 1032


def minimum_encoded_bytes(fmt: str | None, height: int, width: int) -> int | None:
    """Fewest bytes any valid ``fmt`` file of ``height`` x ``width`` can have (at 1 bit per pixel, the most
    compressible case), or None for formats without such a bound here (PNG and JPEG have one)."""
    if fmt == "PNG":
        return height * (1 + -(-width // 8)) // DEFLATE_MAX_RATIO
    if fmt in ("JPEG", "MPO"):
        return (-(-height // 8)) * (-(-width // 8)) // 8
    return None


def _check_plausible(fmt: str | None, n_bytes: int, height: int, width: int, name: str) -> None:
    least = minimum_encoded_bytes(fmt, height, width)
    if least is not None and n_bytes < least:
        raise ImageReadError(f"{name}: {n_bytes} bytes cannot hold the {width}x{height} {fmt} image its header "
                             f"declares (at least {least} bytes): truncated, or a header that lies")


# ---- decoders ------------------------------------------------------------------------------------------

def _is_high_depth_colour(im: Image.Image, data: bytes) -> bool:
    """Whether Pillow would reduce this file's >8-bit colour samples (PNG/TIFF) to their high byte."""
    if im.format == "PNG" and len(data) > 25 and data[12:16] == b"IHDR":
        bit_depth, colour_type = data[24], data[25]
        return bit_depth == 16 and colour_type in (2, 4, 6)  # RGB, gray + alpha, RGBA
    if im.format == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(258)
        bits = bits if isinstance(bits, tuple) else (bits,)
        return any(isinstance(b, int) and b > 8 for b in bits) and im.mode not in ("I;16", "I;16B", "I", "F")
    return False


def opencv_header_size(data: bytes) -> tuple[int, int] | None:
    """(H, W) from the header of the formats only OpenCV reads here (PFM, PAM, Radiance HDR), else None.

    OpenCV has no header-only API and checks its own limit (2^30 pixels) only while decoding, so these
    headers are parsed here and anything else Pillow does not know is refused undecoded.
    """
    head = data[:4096]
    m = re.match(rb"P[Ff]\s+(\d+)\s+(\d+)\s", head)  # PFM: "PF\nW H\nscale\n"
    if m:
        return int(m.group(2)), int(m.group(1))
    if head.startswith(b"P7\n"):  # PAM: "WIDTH w", "HEIGHT h" lines up to ENDHDR
        header = head.split(b"ENDHDR", 1)[0]
        w, h = re.search(rb"\bWIDTH\s+(\d+)", header), re.search(rb"\bHEIGHT\s+(\d+)", header)
        return (int(h.group(1)), int(w.group(1))) if w and h else None
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):  # header lines, a blank line, then "-Y H +X W"
        parts = head.split(b"\n\n", 1)
        if len(parts) == 2:
            m = re.match(rb"([-+])([XY]) (\d+) ([-+])([XY]) (\d+)\n", parts[1])
            if m and {m.group(2), m.group(5)} == {b"X", b"Y"}:
                first, second = int(m.group(3)), int(m.group(6))
                return (first, second) if m.group(2) == b"Y" else (second, first)
    return None


def _decode_opencv(data: bytes, name: str) -> np.ndarray:
    """Decodes with OpenCV (no orientation applied): RGB(A)-ordered samples of the file's own depth."""
    buf = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if image is None:
        raise ImageReadError(f"{name}: not a readable image (neither Pillow nor OpenCV can decode it)")
    if image.ndim == 3 and image.shape[2] == 3:
        image = image[:, :, ::-1]
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, [2, 1, 0, 3]]
    return image


def _pillow_samples(im: Image.Image, name: str) -> np.ndarray:
    """Decodes an opened Pillow image into samples (uint8 RGB, or raw 16-bit/float gray)."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im).astype(np.uint16)
    if im.mode in ("I", "F"):
        return np.asarray(im)
    try:
        return np.asarray(im.convert("RGB"))
    except ValueError as err:
        raise ImageReadError(f"{name}: cannot convert Pillow mode {im.mode} to RGB ({err})") from None


def open_lazily(source: bytes | BinaryIO) -> Image.Image | None:
    """Pillow's lazy open of bytes or an open binary file (header only; no pixel is decoded), or None for
    a format Pillow does not know.

    Pillow's own decompression-bomb check is switched off for the open itself, under a lock: it would
    refuse (or warn about) the header before our limit is applied, and callers check the size at once.
    """
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    with _PILLOW_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(fp)
        except UnidentifiedImageError:
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def decode_image(data: bytes, *, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS,
                 min_size: int = DEFAULT_MIN_SIZE) -> np.ndarray:
    """Decodes an encoded image file's bytes into (H, W, 3) uint8 RGB (see the module docstring).

    The size limits are checked from the header before any pixel is decoded, for every format.

    Args:
      data: the file's bytes.
      name: how errors name the image (a path, usually).
      max_pixels: largest accepted H * W.
      min_size: smallest accepted side.
    Raises:
      ImageReadError: unreadable, truncated, unsupported, too large or too small.
    """
    if max_pixels < 1 or min_size < 1:
        raise ValueError(f"max_pixels ({max_pixels}) and min_size ({min_size}) must be positive")
    orientation = 1
    try:
        im = open_lazily(data)
    except Exception as err:  # noqa: BLE001 - any decoder failure becomes one clear error.
        raise ImageReadError(f"{name}: cannot open image ({type(err).__name__}: {err})") from None
    if im is not None:
        with im:
            width, height = im.size
            _check_size(height, width, name, max_pixels, min_size)
            _check_plausible(im.format, len(data), height, width, name)
            try:
                orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1))
            except Exception:  # noqa: BLE001 - a broken EXIF block only loses the orientation.
                orientation = 1
            if _is_high_depth_colour(im, data):
                samples = _decode_opencv(data, name)
            else:
                try:
                    im.load()
                    samples = _pillow_samples(im, name)
                except ImageReadError:
                    raise
                except Exception as err:  # noqa: BLE001 - truncated or corrupt data.
                    raise ImageReadError(f"{name}: cannot decode image ({type(err).__name__}: "
                                         f"{str(err).splitlines()[0] if str(err) else 'corrupt data'})") from None
            size = (height, width)
    else:
        size = opencv_header_size(data)
        if size is None:
            raise ImageReadError(f"{name}: not a readable image (unknown format or corrupt header)")
        _check_size(size[0], size[1], name, max_pixels, min_size)
        samples = _decode_opencv(data, name)
    if samples.shape[:2] != size:
        raise ImageReadError(f"{name}: decoded size {samples.shape[1]}x{samples.shape[0]} differs from the "
                             f"header's {size[1]}x{size[0]}")
    rgb = _to_rgb(_to_uint8(samples, name), name)
    return np.ascontiguousarray(apply_exif_orientation(rgb, orientation))


def image_header_size(source: bytes | BinaryIO, name: str = "<bytes>") -> tuple[int, int]:
    """(H, W) of an encoded image (bytes or an open file) from its header alone (stored orientation)."""
    try:
        im = open_lazily(source)
        if im is None:
            if not isinstance(source, bytes):
                source.seek(0)
            size = opencv_header_size(source if isinstance(source, bytes) else source.read(4096))
            if size is None:
                raise ImageReadError(f"{name}: not a readable image (unknown format or corrupt header)")
            return size
    except ImageReadError:
        raise
    except Exception as err:  # noqa: BLE001
        raise ImageReadError(f"{name}: cannot open image ({type(err).__name__}: {err})") from None
    with im:
        return int(im.size[1]), int(im.size[0])


def open_regular_file(path: PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "file") -> BinaryIO:
    """An open binary file, checked from ``fstat`` before any byte is read: a regular file of at most
    ``max_bytes``. Devices (``/dev/zero``), FIFOs (opened without blocking), sockets and folders are refused.

    Raises:
      ImageReadError: missing, unreadable, not a regular file or over the limit.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise ImageReadError(f"{name}: cannot read file ({err.strerror or err})") from None
    f = os.fdopen(fd, "rb")
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        f.close()
        raise ImageReadError(f"{name}: not a regular file (a device, FIFO, socket or folder is never read)")
    if st.st_size > max_bytes:
        f.close()
        raise ImageReadError(f"{name}: {st.st_size} bytes, over the limit of {max_bytes} bytes per {what}")
    return f


def read_file_bytes(path: PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (``open_regular_file``); at most
    ``max_bytes + 1`` bytes are ever read, so a file that grows while it is read is refused too.

    Raises:
      ImageReadError: missing, not a regular file, empty, over the limit or unreadable.
    """
    name = os.fspath(path)
    with open_regular_file(path, max_bytes=max_bytes, what=what) as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as err:
            raise ImageReadError(f"{name}: cannot read file ({err.strerror or err})") from None
    if len(data) > max_bytes:
        raise ImageReadError(f"{name}: grew past the limit of {max_bytes} bytes per {what} while being read")
    if not data:
        raise ImageReadError(f"{name}: empty file")
    return data


def read_image(path: PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               min_size: int = DEFAULT_MIN_SIZE, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Reads an image file as (H, W, 3) uint8 RGB; see the module docstring for the conversions and limits.

    Raises:
      ImageReadError: missing, not a regular file, over ``max_bytes``, unreadable, truncated, unsupported,
        too large or too small.
    """
    data = read_file_bytes(path, max_bytes=max_bytes, what="image")
    return decode_image(data, name=os.fspath(path), max_pixels=max_pixels, min_size=min_size)


def list_images(folder: PathLike, *, recursive: bool = False) -> list[pathlib.Path]:
    """Image files (``IMAGE_EXTENSIONS``, case-insensitive) in ``folder``, sorted; hidden files skipped."""
    return scan_images(folder, recursive=recursive)[0]


def _not_an_image_file(p: pathlib.Path) -> str | None:
    """Why an entry named like an image is no image file to read (None when it is a regular file)."""
    import stat

    try:
        mode = p.stat().st_mode  # follows links
    except RuntimeError:
        return "a symbolic link loop"
    except OSError as e:
        if p.is_symlink():
            return ("a symbolic link loop" if e.errno == 40  # ELOOP
                    else f"a dangling symbolic link (to {os.readlink(p)})")
        return f"cannot be examined ({e.strerror or e})"
    if stat.S_ISREG(mode):
        return None
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    return f"{kind}{' (through a symbolic link)' if p.is_symlink() else ''}, not an image file"


def scan_images(folder: PathLike, *, recursive: bool = False) -> tuple[list[pathlib.Path], list[str]]:
    """``(image files, problems)`` of ``folder``: the regular files named like images (``IMAGE_EXTENSIONS``,
    case-insensitive; hidden ones skipped), sorted, and one line for each entry named like an image that is
    no image file to read (a symbolic link loop or dangling link, a FIFO, a device, a folder ``x.png/``)."""
    folder = pathlib.Path(folder)
    it = folder.rglob("*") if recursive else folder.iterdir()
    files, problems = [], []
    for p in sorted(q for q in it if q.suffix.lower() in IMAGE_EXTENSIONS and not q.name.startswith(".")):
        why = _not_an_image_file(p)
        if why is None:
            files.append(p)
        else:
            problems.append(f"{p}: {why}")
    return files, problems


# ---- network input -------------------------------------------------------------------------------------

def preprocess(rgb_uint8: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (B, H, W, 3) uint8 RGB -> float32 in [-1, 1], computed as ``x / 255 * 2 - 1``."""
    x = np.asarray(rgb_uint8)
    if x.dtype != np.uint8:
        raise ValueError(f"preprocess expects uint8 RGB, got dtype {x.dtype}")
    if x.ndim not in (3, 4) or x.shape[-1] != 3:
        raise ValueError(f"preprocess expects shape (H, W, 3) or (B, H, W, 3), got {x.shape}")
    return x.astype(np.float32) / np.float32(255.0) * np.float32(2.0) - np.float32(1.0)


# ---- writing -------------------------------------------------------------------------------------------

def write_png_atomic(path: PathLike, array: np.ndarray) -> None:
    """Writes an image as PNG through a temporary file and ``os.replace`` (never a half-written file).

    Args:
      path: destination; parent folders are created.
      array: (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA; uint8 or uint16; bool is written as
        0 / 255 uint8.
    """
    a = np.asarray(array)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    if a.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_png_atomic expects uint8, uint16 or bool, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] == 3:
        a = a[:, :, ::-1]
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, [2, 1, 0, 3]]
    elif a.ndim != 2:
        raise ValueError(f"write_png_atomic expects (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {a.shape}")
    if min(a.shape[:2]) < 1:
        raise ValueError(f"write_png_atomic got an empty image of shape {a.shape}")
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(a))
    if not ok:
        raise ValueError(f"{os.fspath(path)}: OpenCV could not encode the PNG")
    write_bytes_atomic(path, encoded.tobytes())  # mode 0666 less the umask, like every other output
