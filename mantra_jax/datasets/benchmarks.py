"""tensorflow-datasets builders for the paper's four benchmarks, prepared from their published layouts.

ManTra-Net (CVPR 2019, Table 8) evaluates on NIST 2016 (564 samples), CASIA (6044 = CASIA v1's 921 +
CASIA v2's 5123 tampered images), COVERAGE (100) and Columbia (180). Each builder reads a manual folder in
the layout its authors published, pairs every image with its mask, binarises the mask and resizes it to
the image once, at preparation, and stores one ``test`` split of examples:

    image              uint8 (H, W, 3)  RGB, decoded by ``mantra_jax.io.images.read_image``
    mask               bool (H, W)      True = forged, at the image's size; all False for authentic images
    forged             bool             image label (False = authentic image)
    mask_size_matches  bool             False when the released mask had another size and was resized
                                        (nearest neighbour, pixel centres); True for authentic images
    category           str              'authentic', 'copy-move', 'splice', 'removal', ... (bytes on read)
    image_path         str              path of the image inside the manual folder (also the example key)
    mask_path          str              path of the mask inside the manual folder ('' when authentic)

Without TensorFlow (not installed here; tfds 4.9 is), the builders still prepare and read: examples are
written as ``array_record`` files (``file_format`` defaults to it; TFRecord writing and ``as_dataset``
need TensorFlow), features are numpy-only ``Tensor``s with zlib encoding (``tfds.features.Image`` needs
TensorFlow to encode PNG), and ``builder.as_data_source(split="test")`` (or ``tfds.data_source`` /
``tfds.builder_from_directory(...).as_data_source()``) gives random access to examples as numpy dicts, the
form ``grain`` consumes. ``max_examples`` (tfds' ``max_examples_per_split``) builds a quick subset.

Layouts and decisions (what each ``*_items`` function accepts; the folder may sit up to three levels down):

* COVERAGE (Wen et al., ICIP 2016): release ``image/{N}t.tif`` (tampered), ``image/{N}.tif`` (original),
  ``mask/{N}forged.tif`` (255 = forged region; ``*copy``/``*paste`` masks are ignored); or the lossless
  conversion ``tampered/{N}t.png``, ``original/{N}.png``, ``mask/{N}forged.png``. Nine released masks
  (ids ``COVERAGE_MISSIZED_MASK_IDS``) do not match their image's size: they are resized and flagged
  ``mask_size_matches=False`` (the flag is measured, not copied from the list).
* CASIA v1 (Dong et al.; masks from Pham et al. 2019, github.com/namtpham/casia1groundtruth): ``Au/``
  authentic JPEGs, tampered ``Sp_[SD]_*.jpg`` in ``Modified Tp/Tp/{CM,Sp}/`` (any folder that is not a
  ground-truth folder), masks ``{stem}_gt.png`` (255 = forged) anywhere under a folder whose name contains
  ``groundtruth`` (or named ``gt``/``mask(s)``). Category from the name: ``_S_`` copy-move, ``_D_`` splice.
  The CASIA v2 builder (``Tp_[SD]_*``, namtpham/casia2groundtruth) shares the code, since the paper's
  6044 CASIA samples include v2. Tampered images without a mask are left out and logged.
* Columbia uncompressed (Hsu & Chang, ICME 2006): ``4cam_auth/*.tif|bmp``, ``4cam_splc/*.tif|bmp``,
  colour-coded masks ``4cam_splc/edgemask/{stem}_edgemask.jpg``. The mask paints the two source regions
  red and green (darker/lighter shades mark the band along the splicing boundary); the green region, from
  the second camera of the name, is the spliced-in one. Decision: forged = green channel > red channel,
  which keeps both shades of each colour on their side and is robust to the masks' JPEG noise (other
  code bases threshold the green channel alone, e.g. G > 120).
* NIST Nimble 2016 (NC2016_Test0613): ``reference/manipulation/NC2016-manipulation-ref.csv``
  (pipe-separated; ``ProbeFileName``, ``ProbeMaskFileName``, ``IsTarget`` and the
  ``IsManipulationType{Removal,Splice,CopyClone}`` columns), probes in ``probe/``, masks at the paths the
  CSV gives. ``IsTarget=Y`` rows are manipulated (564 in the release), ``N`` rows authentic. NIST masks
  mark manipulated pixels BLACK (MediScore convention), so forged = gray <= 127. Paths in the CSV are
  taken relative to the first ancestor folder of the CSV in which the first probe exists. Without a
  reference CSV, ``probe/`` images are paired with ``mask/`` images by stem (same polarity) and probes
  without a mask are left out (their label is unknown) and logged.
"""

from __future__ import annotations

import abc
import contextlib
import csv
import dataclasses
import inspect
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from mantra_jax.eval.pairs import (
    LoadedPair,
    PairsError,
    image_size,
    list_images,
    match_masks,
    read_rgb,
)
from mantra_jax.io.masks import MaskRule, OnMismatch, load_mask

COVERAGE_MISSIZED_MASK_IDS = frozenset({41, 48, 55, 56, 57, 58, 59, 61, 95})
_SEARCH_DEPTH = 3


@dataclasses.dataclass(frozen=True)
class BenchmarkItem:
    """One image of a benchmark before decoding: its mask (None = authentic) and how to binarise it."""

    image: Path
    mask: Path | None
    category: str
    rule: MaskRule = "bright"


def _subdirs(root: Path, depth: int = _SEARCH_DEPTH) -> Iterator[Path]:
    """root and its sub-folders down to ``depth`` levels, breadth first, sorted, hidden ones skipped."""
    level = [root]
    for _ in range(depth + 1):
        nxt: list[Path] = []
        for d in level:
            yield d
            nxt += sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        level = nxt


def _child(folder: Path, name: str) -> Path | None:
    """The sub-folder of ``folder`` called ``name`` (case-insensitive), if any."""
    for p in sorted(folder.iterdir()):
        if p.is_dir() and p.name.lower() == name.lower():
            return p
    return None


def _find_root(root: Path, required: tuple[str, ...], any_of: tuple[str, ...], what: str) -> Path:
    if not root.is_dir():
        raise PairsError(f"{what}: manual folder {root} does not exist")
    for d in _subdirs(root):
        if all(_child(d, r) for r in required) and (not any_of or any(_child(d, a) for a in any_of)):
            return d
    need = " + ".join(f"{r}/" for r in required) + (f" + one of {'/'.join(any_of)}/" if any_of else "")
    raise PairsError(f"{what}: no folder holding {need} found under {root} (searched {_SEARCH_DEPTH} levels)")


def _by_stem(folder: Path | None) -> dict[str, Path]:
    """Image files directly in ``folder`` keyed by stem (extension case-insensitive)."""
    return {} if folder is None else {p.stem: p for p in list_images(folder, recursive=False)}


def coverage_items(root: Path) -> list[BenchmarkItem]:
    """COVERAGE: tampered + forged mask, then original, for each id in increasing order."""
    base = _find_root(Path(root), ("mask",), ("tampered", "image"), "COVERAGE")
    mask_dir = _child(base, "mask")
    assert mask_dir is not None
    ids: dict[int, Path] = {}
    for p in list_images(mask_dir, recursive=False):
        m = re.fullmatch(r"(\d+)forged", p.stem, flags=re.IGNORECASE)
        if m:
            ids[int(m.group(1))] = p
    if not ids:
        raise PairsError(f"COVERAGE: no mask/{{N}}forged.* files in {mask_dir}")
    tampered_dir, original_dir, image_dir = (
        _by_stem(_child(base, n)) for n in ("tampered", "original", "image"))
    items = []
    for i in sorted(ids):
        tampered = tampered_dir.get(f"{i}t") or image_dir.get(f"{i}t")
        if tampered is None:
            raise PairsError(f"COVERAGE: no tampered image {i}t.* for mask {ids[i]}")
        items.append(BenchmarkItem(tampered, ids[i], "copy-move"))
        original = original_dir.get(str(i)) or image_dir.get(str(i))
        if original is None:
            logging.warning("COVERAGE: original image %d.* is missing; left out", i)
        else:
            items.append(BenchmarkItem(original, None, "authentic"))
    return items


_CASIA_NAME = re.compile(r"(?:sp|tp)_([sd])_", flags=re.IGNORECASE)
_MASK_FOLDER_NAMES = frozenset({"gt", "mask", "masks", "groundtruth", "ground_truth"})


def _is_mask_folder(name: str) -> bool:
    name = name.lower()
    return name in _MASK_FOLDER_NAMES or "groundtruth" in name or "ground truth" in name


def casia_items(root: Path, what: str = "CASIA") -> list[BenchmarkItem]:
    """CASIA v1 or v2: Au/ authentic images, Sp_/Tp_ tampered images, *_gt masks in ground-truth folders."""
    root = Path(root)
    if not root.is_dir():
        raise PairsError(f"{what}: manual folder {root} does not exist")
    authentic, tampered, masks = [], [], []
    ignored = 0
    for p in list_images(root):
        folders = p.relative_to(root).parts[:-1]
        if p.stem.lower().endswith("_combine"):  # visualisations shipped with the ground truth
            continue
        if any(_is_mask_folder(f) for f in folders):
            masks.append(p)
        elif any(f.lower() == "au" for f in folders) or p.stem.lower().startswith("au_"):
            authentic.append(p)
        elif _CASIA_NAME.match(p.stem):
            tampered.append(p)
        else:
            ignored += 1
    if ignored:
        logging.warning("%s: %d image file(s) that are neither Au_, Sp_/Tp_ nor masks ignored", what, ignored)
    if not tampered:
        raise PairsError(f"{what}: no tampered images (Sp_*/Tp_*) found under {root}")
    try:
        pairs = match_masks(tampered, masks, missing_mask="skip", source=what)
    except PairsError as e:
        raise PairsError(f"{e} (point the manual folder at a single copy of the dataset)") from None
    items = []
    for pair in pairs:
        kind = _CASIA_NAME.match(pair.image.stem)
        assert kind is not None
        items.append(BenchmarkItem(pair.image, pair.mask, "copy-move" if kind.group(1).lower() == "s"
                                   else "splice"))
    items += [BenchmarkItem(p, None, "authentic") for p in authentic]
    return items


def _named_dirs(root: Path, name: str) -> list[Path]:
    return [d for d in _subdirs(root) if d.name.lower() == name.lower()]


def columbia_items(root: Path) -> list[BenchmarkItem]:
    """Columbia uncompressed: 4cam_splc/ spliced images with edgemask/ colour masks, 4cam_auth/ authentic."""
    root = Path(root)
    if not root.is_dir():
        raise PairsError(f"Columbia: manual folder {root} does not exist")
    splc, auth = _named_dirs(root, "4cam_splc"), _named_dirs(root, "4cam_auth")
    if len(splc) != 1:
        raise PairsError(f"Columbia: expected one 4cam_splc/ folder under {root}, found {len(splc)}")

    def split(folder: Path) -> tuple[list[Path], list[Path]]:
        images, masks = [], []
        for p in list_images(folder):
            in_mask_dir = any("mask" in f.lower() for f in p.relative_to(folder).parts[:-1])
            (masks if in_mask_dir else images).append(p)
        return images, masks

    spliced, masks = split(splc[0])
    pairs = match_masks(spliced, masks, missing_mask="error", source="Columbia")
    items = [BenchmarkItem(p.image, p.mask, "splice", "green") for p in pairs]
    for folder in auth:
        items += [BenchmarkItem(p, None, "authentic") for p in split(folder)[0]]
    if not auth:
        logging.warning("Columbia: no 4cam_auth/ folder under %s; only spliced images", root)
    return items


_NIST_TYPES = (("IsManipulationTypeRemoval", "removal"), ("IsManipulationTypeSplice", "splice"),
               ("IsManipulationTypeCopyClone", "copy-clone"))


def _nist_from_csv(ref: Path) -> list[BenchmarkItem]:
    with ref.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter="|")
        rows = list(reader)
        columns = set(reader.fieldnames or [])
    need = {"ProbeFileName", "ProbeMaskFileName", "IsTarget"}
    if not need <= columns:
        raise PairsError(f"NIST16: {ref} lacks column(s) {sorted(need - columns)} (pipe-separated expected)")
    if not rows:
        raise PairsError(f"NIST16: {ref} has no rows")
    first = rows[0]["ProbeFileName"].strip()
    base = next((a for a in ref.parents if (a / first).is_file()), None)
    if base is None:
        raise PairsError(f"NIST16: probe {first} listed in {ref} exists under none of its parent folders")
    items: dict[str, BenchmarkItem] = {}
    for line, row in enumerate(rows, start=2):
        probe = row["ProbeFileName"].strip()
        target = row["IsTarget"].strip().upper()
        if target == "Y":
            mask_rel = (row["ProbeMaskFileName"] or "").strip()
            if not mask_rel:
                raise PairsError(f"NIST16: {ref}:{line}: IsTarget=Y but ProbeMaskFileName is empty")
            kinds = [name for col, name in _NIST_TYPES if (row.get(col) or "").strip().upper() == "Y"]
            item = BenchmarkItem(base / probe, base / mask_rel, "+".join(kinds) or "manipulated", "dark")
        elif target == "N":
            item = BenchmarkItem(base / probe, None, "authentic", "dark")
        else:
            raise PairsError(f"NIST16: {ref}:{line}: IsTarget must be Y or N, got {target!r}")
        if probe in items and items[probe] != item:
            raise PairsError(f"NIST16: {ref}: probe {probe} is listed twice with different references")
        items[probe] = item
    missing = [p for it in items.values() for p in (it.image, it.mask) if p is not None and not p.is_file()]
    if missing:
        raise PairsError(f"NIST16: {len(missing)} file(s) named in {ref} do not exist, e.g. {missing[0]}")
    return list(items.values())


def nist16_items(root: Path) -> list[BenchmarkItem]:
    """NIST 2016: the manipulation reference CSV, else probe/ + mask/ folders (masks black = forged)."""
    root = Path(root)
    if not root.is_dir():
        raise PairsError(f"NIST16: manual folder {root} does not exist")
    refs = sorted(p for d in _subdirs(root, _SEARCH_DEPTH + 2) for p in d.glob("*manipulation-ref.csv"))
    if refs:
        if len(refs) > 1:
            logging.warning("NIST16: several reference CSVs, using %s", refs[0])
        return _nist_from_csv(refs[0])
    base = _find_root(root, ("probe", "mask"), (), "NIST16")
    probe_dir, mask_dir = _child(base, "probe"), _child(base, "mask")
    assert probe_dir is not None and mask_dir is not None
    logging.warning("NIST16: no *manipulation-ref.csv under %s; pairing probe/ with mask/ by stem", root)
    pairs = match_masks(list_images(probe_dir), list_images(mask_dir), missing_mask="skip", source="NIST16")
    return [BenchmarkItem(p.image, p.mask, "manipulated", "dark") for p in pairs]


def make_example(item: BenchmarkItem, root: Path,
                 on_mismatch: OnMismatch = "resize") -> dict[str, Any] | None:
    """Decodes one item into the feature dict documented above (mask binarised and sized to the image).

    With ``on_mismatch="skip"`` a mis-sized mask gives None instead of an example.
    """
    image = read_rgb(item.image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise PairsError(f"{item.image}: expected uint8 RGB (H, W, 3), got {image.dtype} {image.shape}")
    shape = image.shape[:2]
    if item.mask is not None and image_size(item.image) != shape:
        logging.warning("%s: EXIF orientation turned the image; its mask is compared with the turned image",
                        item.image)
    if item.mask is None:
        mask, matches = np.zeros(shape, np.bool_), True
    else:
        loaded = load_mask(item.mask, shape, rule=item.rule, on_mismatch=on_mismatch)
        if loaded.mask is None:
            return None
        mask, matches = loaded.mask, loaded.size_matches
    root = Path(root)
    return {
        "image": image,
        "mask": mask,
        "forged": item.mask is not None,
        "mask_size_matches": matches,
        "category": item.category,
        "image_path": _rel(item.image, root),
        "mask_path": "" if item.mask is None else _rel(item.mask, root),
    }


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def features() -> tfds.features.FeaturesDict:
    """Numpy-only features (no TensorFlow needed to encode or decode)."""
    return tfds.features.FeaturesDict({
        "image": tfds.features.Tensor(shape=(None, None, 3), dtype=np.uint8, encoding="zlib"),
        "mask": tfds.features.Tensor(shape=(None, None), dtype=np.bool_, encoding="zlib"),
        "forged": tfds.features.Scalar(dtype=np.bool_),
        "mask_size_matches": tfds.features.Scalar(dtype=np.bool_),
        "category": tfds.features.Text(),
        "image_path": tfds.features.Text(),
        "mask_path": tfds.features.Text(),
    })


class _Benchmark(tfds.core.GeneratorBasedBuilder, abc.ABC, skip_registration=True):
    """One ``test`` split from a manual folder; subclasses list the items of their layout."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "Pairs, binarised masks at image size, mask_size_matches flag.",
                     "1.1.0": "Examples stored in the layout's order (shuffling disabled)."}
    DESCRIPTION = ""
    HOMEPAGE = ""
    CITATION = ""

    def __init__(self, *, file_format: str = "array_record", **kwargs: Any) -> None:
        super().__init__(file_format=file_format, **kwargs)

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        """This module's file. tfds' own version touches ``importlib_resources.abc`` for any builder defined
        in a package, and that backport is not a dependency (ModuleNotFoundError without it)."""
        return epath.Path(inspect.getfile(cls))

    @staticmethod
    @abc.abstractmethod
    def list_items(root: Path) -> list[BenchmarkItem]:
        """Items of the layout found under ``root``."""

    def _log_download_bytes(self) -> None:  # tfds prints these two to stdout; a command's stdout is its own
        logging.info("preparing %s into %s", self.name, self.data_dir)

    def _log_download_done(self) -> None:
        logging.info("%s prepared in %s", self.name, self.data_dir)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(builder=self, description=self.DESCRIPTION, features=features(),
                                     homepage=self.HOMEPAGE, citation=self.CITATION, disable_shuffling=True)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        root = Path(str(dl_manager.manual_dir))
        return {"test": self._generate_examples(root, self.list_items(root))}

    def _generate_examples(self, root: Path, items: list[BenchmarkItem]) -> Iterator[tuple[str, dict]]:
        for item in items:
            example = make_example(item, root)
            assert example is not None  # "resize" never skips
            yield example["image_path"], example


class Coverage(_Benchmark):
    """COVERAGE copy-move benchmark: 100 tampered images (with masks) and their 100 originals."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = ("Put COVERAGE (github.com/wenbihan/coverage) in the manual folder: "
                                    "image/{N}t.tif, image/{N}.tif, mask/{N}forged.tif, or the converted "
                                    "tampered/{N}t.png, original/{N}.png, mask/{N}forged.png.")
    DESCRIPTION = "COVERAGE (Wen et al., ICIP 2016); 9 masks resized (mask_size_matches=False)."
    HOMEPAGE = "https://github.com/wenbihan/coverage"
    CITATION = ("@inproceedings{wen2016, author={Wen, Bihan and Zhu, Ye and Subramanian, Ramanathan and Ng, "
                "Tian-Tsong and Shen, Xuanjing and Winkler, Stefan}, title={COVERAGE - A Novel Database for "
                "Copy-Move Forgery Detection}, booktitle={ICIP}, year={2016}}")
    list_items = staticmethod(coverage_items)


class CasiaV1(_Benchmark):
    """CASIA v1.0: 921 tampered (459 copy-move, 462 splice) + 800 authentic images."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = ("Put CASIA 1.0 (Au/, Modified Tp/Tp/{CM,Sp}/) and 'CASIA 1.0 "
                                    "groundtruth' (github.com/namtpham/casia1groundtruth, *_gt.png) in the "
                                    "manual folder.")
    DESCRIPTION = "CASIA v1.0 with the ground truth of Pham et al. (2019)."
    HOMEPAGE = "https://github.com/namtpham/casia1groundtruth"
    CITATION = ("@inproceedings{dong2013casia, author={Dong, Jing and Wang, Wei and Tan, Tieniu}, "
                "title={CASIA Image Tampering Detection Evaluation Database}, booktitle={ChinaSIP}, "
                "year={2013}}")

    @staticmethod
    def list_items(root: Path) -> list[BenchmarkItem]:
        return casia_items(root, "CASIA v1")


class CasiaV2(_Benchmark):
    """CASIA v2.0: 5123 tampered + 7491 authentic images."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = ("Put CASIA 2.0 (Au/, Tp/) and 'CASIA 2 Groundtruth' "
                                    "(github.com/namtpham/casia2groundtruth, *_gt.png) in the manual folder.")
    DESCRIPTION = "CASIA v2.0 with the ground truth of Pham et al. (2019)."
    HOMEPAGE = "https://github.com/namtpham/casia2groundtruth"
    CITATION = CasiaV1.CITATION

    @staticmethod
    def list_items(root: Path) -> list[BenchmarkItem]:
        return casia_items(root, "CASIA v2")


class Columbia(_Benchmark):
    """Columbia uncompressed splicing: 180 spliced (colour-coded masks) + 183 authentic images."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = ("Put the Columbia Uncompressed Image Splicing Detection dataset in the "
                                    "manual folder: 4cam_auth/, 4cam_splc/, 4cam_splc/edgemask/.")
    DESCRIPTION = "Columbia uncompressed splicing; forged = green-dominant pixels of the edge masks."
    HOMEPAGE = "https://www.ee.columbia.edu/ln/dvmm/downloads/authsplcuncmp/"
    CITATION = ("@inproceedings{hsu2006, author={Hsu, Yu-Feng and Chang, Shih-Fu}, title={Detecting "
                "Image Splicing Using Geometry Invariants and Camera Characteristics Consistency}, "
                "booktitle={ICME}, year={2006}}")
    list_items = staticmethod(columbia_items)


class Nist16(_Benchmark):
    """NIST Nimble 2016: 564 manipulated probes (masks black = manipulated) + authentic probes."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = ("Put NC2016_Test0613 in the manual folder: probe/, reference/"
                                    "manipulation/NC2016-manipulation-ref.csv and the masks it names.")
    DESCRIPTION = "NIST Nimble Challenge 2016 manipulation task (IsTarget=Y forged, N authentic)."
    HOMEPAGE = "https://www.nist.gov/itl/iad/mig/nimble-challenge"
    CITATION = ("@misc{nist2016, title={Nimble Challenge 2016 Evaluation}, author={NIST}, year={2016}, "
                "howpublished={https://www.nist.gov/itl/iad/mig/nimble-challenge}}")
    list_items = staticmethod(nist16_items)


BUILDERS: dict[str, type[_Benchmark]] = {
    "coverage": Coverage, "casia_v1": CasiaV1, "casia_v2": CasiaV2, "columbia": Columbia, "nist16": Nist16}


def benchmark_items(name: str, manual_dir: str | Path) -> list[BenchmarkItem]:
    """The items of benchmark ``name`` (a key of BUILDERS) found in ``manual_dir``, without tfds."""
    return _builder_cls(name).list_items(Path(manual_dir))


def _builder_cls(name: str) -> type[_Benchmark]:
    if name not in BUILDERS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {sorted(BUILDERS)}")
    return BUILDERS[name]


def prepare(name: str, *, manual_dir: str | Path, data_dir: str | Path,
            max_examples: int | None = None) -> _Benchmark:
    """Prepares benchmark ``name`` into ``data_dir`` (once) and returns the builder.

    ``max_examples`` builds only the first examples, under ``data_dir/subset_{n}`` so that a subset is
    never mistaken for the whole benchmark. Read with ``builder.as_data_source(split="test")``.
    """
    data_dir = Path(data_dir)
    if max_examples is not None:
        if max_examples < 1:
            raise ValueError(f"max_examples must be positive, got {max_examples}")
        data_dir = data_dir / f"subset_{max_examples}"
    builder = _builder_cls(name)(data_dir=str(data_dir))
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir), max_examples_per_split=max_examples)
    builder.download_and_prepare(download_config=config)
    return builder


@dataclasses.dataclass(frozen=True, eq=False)
class StoredPair:
    """One example of a prepared benchmark's ``test`` split, as ``mantra_jax.eval.runner`` reads a ``Pair``:
    ``image`` / ``mask`` are the paths inside the manual folder (mask None when authentic), ``key`` names
    the example in a progress log, ``load`` decodes it from the prepared files.

    The mask was binarised with the layout's rule at preparation (``load``'s ``rule`` is not used) and
    resized when it had another size (``mask_size_matches``); ``on_mismatch="skip"`` leaves such images
    out and ``"error"`` raises, as for files. ``max_pixels`` is checked as ``read_image`` does;
    ``max_bytes`` limits files and does not apply to decoded examples.
    """

    source: Any  # the split's random-access source (``builder.as_data_source``)
    index: int
    benchmark: str
    image: str
    mask: str | None

    @property
    def key(self) -> str:
        return f"{self.benchmark}:{self.image}\t{self.mask or ''}"

    def load(self, *, rule: MaskRule, on_mismatch: OnMismatch, max_pixels: int, max_bytes: int) -> LoadedPair:
        del rule, max_bytes  # the mask is binarised already; examples are not files
        example = self.source[self.index]
        image = np.asarray(example["image"])
        h, w = image.shape[:2]
        if h * w > max_pixels:
            raise PairsError(f"{self.image}: {w}x{h} image has {h * w} pixels, over the limit of {max_pixels}")
        if self.mask is None:
            return LoadedPair(image, None)
        matches = bool(example["mask_size_matches"])
        if not matches and on_mismatch == "skip":
            return LoadedPair(image, None, False, f"mask {self.mask} had another size than its {h}x{w} (H x W) "
                                                  "image (resized when the benchmark was prepared)")
        if not matches and on_mismatch == "error":
            raise PairsError(f"mask {self.mask} had another size than its {h}x{w} (H x W) image")
        return LoadedPair(image, np.asarray(example["mask"], np.bool_), matches)


def prepared_pairs(name: str, data_dir: str | Path, manual_dir: str | Path | None = None, *,
                   on_prepare: Callable[[], None] | None = None) -> list[StoredPair]:
    """The examples of benchmark ``name``'s ``test`` split under ``data_dir``, in the layout's order,
    prepared there first from ``manual_dir`` when they are not (a no-op otherwise).

    Raises ValueError for an unknown name and PairsError (one line) for a data folder that is not one, or a
    benchmark neither prepared nor given a manual folder to prepare from; a bad manual folder raises the
    layout's PairsError. ``on_prepare()`` is called before a preparation starts. Listing decodes each
    example once (its paths are stored with its pixels).
    """
    cls = _builder_cls(name)
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise PairsError(f"{name}: data folder {data_dir} exists and is not a folder")
    with _quiet_tfds():
        builder = cls(data_dir=str(data_dir))
        if not builder.is_prepared():
            if manual_dir is None:
                raise PairsError(f"{name}: not prepared under {data_dir}, and no manual folder (the benchmark's "
                                 "own files) was given to prepare it from")
            cls.list_items(Path(manual_dir))  # a bad manual folder is a PairsError before anything is written
            if on_prepare is not None:
                on_prepare()
            builder = prepare(name, manual_dir=manual_dir, data_dir=data_dir)
        source = builder.as_data_source(split="test")
    pairs = []
    for i in range(len(source)):
        example = source[i]
        mask = _text(example["mask_path"])
        pairs.append(StoredPair(source, i, name, _text(example["image_path"]), mask or None))
    return pairs


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextlib.contextmanager
def _quiet_tfds() -> Iterator[None]:
    """tfds' absl warnings (a version folder without dataset_info.json while it is probed) kept off stderr."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
