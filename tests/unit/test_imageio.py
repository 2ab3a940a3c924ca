"""Every odd image kind users throw at the loader, and the errors they see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.errors import ImageReadError
from annotator.imageio import list_image_files, load_image, read_image_size


def _gradient(width: int = 40, height: int = 20) -> np.ndarray:
    """[H, W, 3] uint8 with distinct values per column (to check orientation)."""
    row = np.linspace(0, 255, width).astype(np.uint8)
    image = np.stack([np.tile(row, (height, 1))] * 3, axis=2)
    image[:, :, 1] = np.arange(height, dtype=np.uint8)[:, None] * 10
    return image


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp", ".bmp"])
def test_formats_load_as_rgb_uint8(tmp_path: Path, suffix: str) -> None:
    pixels = _gradient()
    path = tmp_path / f"image{suffix}"
    Image.fromarray(pixels).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    loaded = load_image(path)
    assert loaded.shape == (20, 40, 3) and loaded.dtype == np.uint8
    if suffix != ".jpg":
        assert np.array_equal(loaded, pixels)
    else:
        assert np.abs(loaded.astype(int) - pixels).mean() < 4


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    stored = _gradient(40, 20)
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, exif=exif, quality=100)
    loaded = load_image(path)
    expected = {1: stored, 3: np.rot90(stored, 2), 6: np.rot90(stored, -1), 8: np.rot90(stored, 1)}
    assert loaded.shape == expected[orientation].shape
    assert np.abs(loaded.astype(int) - expected[orientation]).mean() < 4
    assert read_image_size(path) == (loaded.shape[1], loaded.shape[0])


def test_grayscale_rgba_and_palette(tmp_path: Path) -> None:
    gray = np.arange(200, dtype=np.uint8).reshape(10, 20)
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    assert np.array_equal(load_image(tmp_path / "gray.png"), np.repeat(gray[:, :, None], 3, 2))

    rgba = np.dstack([_gradient(20, 10), np.full((10, 20), 7, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(load_image(tmp_path / "rgba.png"), rgba[:, :, :3])

    palette = Image.new("P", (20, 10))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (0, 0, 10, 10))
    palette.save(tmp_path / "palette.png", transparency=0)
    loaded = load_image(tmp_path / "palette.png")
    assert tuple(loaded[0, 0]) == (0, 0, 255) and tuple(loaded[0, 15]) == (255, 0, 0)


def test_cmyk_jpeg(tmp_path: Path) -> None:
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    loaded = load_image(tmp_path / "cmyk.jpg")
    assert loaded.shape == (8, 16, 3)
    red, green, blue = loaded.reshape(-1, 3).mean(axis=0)
    assert red > 200 and green < 60 and blue < 60


def test_16_bit_and_float_are_stretched_to_the_full_range(tmp_path: Path) -> None:
    values = np.linspace(1000, 5000, 60).astype(np.uint16).reshape(6, 10)
    Image.fromarray(values).save(tmp_path / "deep.png")
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.dtype == np.uint8 and loaded.min() == 0 and loaded.max() == 255
    assert (np.diff(loaded[:, :, 0].ravel().astype(int)) >= 0).all()

    Image.fromarray(np.linspace(-1, 1, 60, dtype=np.float32).reshape(6, 10)).save(
        tmp_path / "f.tif"
    )
    floats = load_image(tmp_path / "f.tif")
    assert floats[0, 0, 0] == 0 and floats[-1, -1, 0] == 255


def test_a_12000_by_9000_image_loads(tmp_path: Path) -> None:
    path = tmp_path / "aerial.jpg"
    Image.new("RGB", (12000, 9000), (255, 255, 255)).save(path)
    assert read_image_size(path) == (12000, 9000)
    loaded = load_image(path)
    assert loaded.shape == (9000, 12000, 3) and loaded[4500, 6000, 0] == 255


def test_over_the_pixel_limit_says_how_to_raise_it(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("L", (200, 100)).save(path)
    with pytest.raises(
        ImageReadError, match="over the limit of 10,000 pixels.*ANNOTATOR_MAX_PIXELS"
    ):
        load_image(path, max_pixels=10_000)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        (b"hello, I am text", "not an image file"),
        ("truncated header", "damaged or truncated"),
        ("truncated data", "damaged or truncated"),
    ],
)
def test_unreadable_files_name_the_file_and_reason(
    tmp_path: Path, content: object, reason: str
) -> None:
    path = tmp_path / "photo.jpg"
    if isinstance(content, str):  # a real JPEG cut short in the header or in the pixel data
        Image.fromarray(_gradient(200, 100)).save(path, quality=90)
        data = path.read_bytes()
        content = data[:100] if content == "truncated header" else data[: len(data) * 2 // 3]
    path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(ImageReadError, match=reason) as caught:
        load_image(path)
    assert str(path) in str(caught.value) and caught.value.path == path


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="does not exist"):
        load_image(tmp_path / "gone.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageReadError, match="it is a folder"):
        load_image(tmp_path / "dir.png")


def test_list_image_files_is_recursive_and_skips_hidden(tmp_path: Path) -> None:
    for name in ("b.JPG", "a/c.tiff", ".annotator/labels/x.png", "notes.txt", "a/.hidden.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert list_image_files(tmp_path) == ["a/c.tiff", "b.JPG"]


def test_png_sizes_from_the_header_agree_with_pillow(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    cases = {
        "plain.png": Image.new("RGB", (31, 17)),
        "rotated.png": Image.new("RGB", (31, 17)),
        "palette.png": Image.new("P", (5, 300)),
        "deep.png": Image.fromarray(np.zeros((9, 4), np.uint16)),
    }
    for name, image in cases.items():
        image.save(tmp_path / name, **({"exif": exif} if name == "rotated.png" else {}))
    assert read_image_size(tmp_path / "plain.png") == (31, 17)
    assert read_image_size(tmp_path / "rotated.png") == (17, 31)  # eXIf: Pillow's path
    assert read_image_size(tmp_path / "palette.png") == (5, 300)
    assert read_image_size(tmp_path / "deep.png") == (4, 9)
    (tmp_path / "cut.png").write_bytes((tmp_path / "plain.png").read_bytes()[:20])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_image_size(tmp_path / "cut.png")
