"""Section 2 of the module: loading, converting and saving images."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import styletransfer_utils as st
from conftest import gradient_image
from styletransfer_tools import files


def save(image: Image.Image, path, **options):
    image.save(path, **options)
    return path


@pytest.mark.parametrize(
    ("size", "max_size", "expected"),
    [((400, 200), 100, (100, 50)), ((200, 400), 100, (50, 100)), ((80, 60), 100, (80, 60)), ((300, 300), 64, (64, 64))],
)
def test_max_size_caps_the_longer_side(tmp_path, size, max_size, expected):
    """The longer side ends at most max_size, the aspect ratio is kept, small images are not enlarged."""
    path = save(gradient_image(*size), tmp_path / "a.png")
    assert st.load_image(path, max_size=max_size).size == expected


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored sideways with EXIF orientation 6 comes out upright (rotated 90° clockwise)."""
    stored = gradient_image(60, 30)  # wide as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(stored, tmp_path / "phone.jpg", exif=exif, quality=95)
    upright = st.load_image(path)
    assert upright.size == (30, 60)
    # The stored top-left corner (dark) must now be at the top-right.
    array = np.asarray(upright, dtype=int)
    assert array[0, -1].sum() < array[-1, 0].sum()


def test_a_file_object_loads_as_its_file_does(tmp_path):
    """Bytes that were never a file (the studio's upload) get the same decoding: EXIF orientation, RGB, max_size."""
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(gradient_image(60, 30), tmp_path / "phone.jpg", exif=exif, quality=95)
    from_bytes = st.load_image(io.BytesIO(path.read_bytes()), max_size=40)
    assert from_bytes.size == (20, 40)
    assert np.array_equal(np.asarray(from_bytes), np.asarray(st.load_image(path, max_size=40)))


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "notes.png is empty"), (b"these are my holiday notes", "notes.png is not an image")],
    ids=["empty", "text-as-png"],
)
def test_a_file_object_is_checked_and_named_as_a_file_is(data, message):
    """The messages name what the caller calls the bytes (an upload's file name), not a path."""
    with pytest.raises(st.ImageError, match=f"^{message}"):
        st.load_image(io.BytesIO(data), name="notes.png")


def test_a_file_object_over_the_pixel_limit_is_refused_before_decoding(monkeypatch):
    """The header alone decides, as for a path (the limit lowered, so a small picture is over it)."""
    from PIL import ImageFile

    decoded, load = [], ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self) or load(self))
    monkeypatch.setattr(st, "MAX_IMAGE_PIXELS", 1000)
    buffer = io.BytesIO()
    gradient_image(40, 30).save(buffer, format="PNG")
    with pytest.raises(st.ImageError, match="the file given claims to be 40 x 30 pixels"):
        st.load_image(buffer)
    assert decoded == []


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1", "I;16", "I"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    """Grey, palette, transparent, CMYK and 16-bit files all load as 8-bit RGB."""
    base = gradient_image(32, 24)
    if mode == "I;16":
        values = (np.linspace(0, 65535, 32 * 24).reshape(24, 32)).astype(np.uint16)
        image = Image.fromarray(values)
    elif mode == "I":
        image = Image.fromarray((np.linspace(0, 65535, 32 * 24).reshape(24, 32)).astype(np.int32))
    else:
        image = base.convert(mode)
    extension = "tif" if mode in ("CMYK", "I") else "png"
    loaded = st.load_image(save(image, tmp_path / f"x.{extension}"))
    assert loaded.mode == "RGB" and loaded.size == (32, 24)


def test_sixteen_bit_keeps_its_range(tmp_path):
    """16-bit grey is scaled to 0-255, not clipped into a white picture."""
    values = np.full((8, 8), 32768, dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / "grey16.png")
    pixel = np.asarray(st.load_image(path))[0, 0]
    assert 120 <= pixel[0] <= 135


def test_transparency_is_flattened_onto_white(tmp_path):
    """A fully transparent pixel becomes white, not black."""
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(st.load_image(save(image, tmp_path / "clear.png")))[0, 0].tolist() == [255, 255, 255]


def test_tensor_round_trip(content_image):
    """image -> tensor -> image gives the same pixels; tensors are (1, 3, H, W) floats in [0, 1]."""
    tensor = st.image_to_tensor(content_image)
    assert tensor.shape == (1, 3, 48, 64) and tensor.dtype == torch.float32
    assert 0 <= tensor.min() and tensor.max() <= 1
    assert np.array_equal(np.asarray(st.tensor_to_image(tensor)), np.asarray(content_image))


def test_tensor_to_image_clamps():
    """Values the optimiser pushed outside [0, 1] are clamped, not wrapped around."""
    tensor = torch.tensor([-1.0, 0.5, 2.0]).view(1, 3, 1, 1)
    assert np.asarray(st.tensor_to_image(tensor))[0, 0].tolist() == [0, 128, 255]


def test_normalisation_round_trip(content_image):
    """ImageNet normalisation and its inverse give back the original pixels."""
    tensor = st.image_to_tensor(content_image)
    normalized = st.imagenet_normalize(tensor)
    assert abs(normalized.mean()) < 3
    assert torch.allclose(st.imagenet_denormalize(normalized), tensor, atol=1e-6)


def test_save_image_writes_complete_file(tmp_path, content_image):
    """save_image writes a readable file in the format of its extension and leaves no temporary file."""
    for name in ("out.png", "out.jpg"):
        path = files.save_image(content_image, tmp_path / name)
        assert Image.open(path).size == content_image.size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg", "out.png"]


def test_save_image_failure_keeps_previous_file(tmp_path, content_image, monkeypatch):
    """If writing fails half-way, the previous file at the path is untouched and no partial file remains."""
    path = files.save_image(content_image, tmp_path / "result.png")
    before = path.read_bytes()

    def broken_save(self, fp, format=None, **params):
        fp.write(b"half an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(st.OutputError, match="No space left"):
        files.save_image(content_image, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]


def test_save_image_into_missing_folder(tmp_path, content_image):
    """A folder that does not exist gives a clear error, and nothing is created."""
    with pytest.raises(st.OutputError, match="does not exist"):
        files.save_image(content_image, tmp_path / "nowhere" / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_save_image_unknown_extension(tmp_path, content_image):
    with pytest.raises(st.OutputError, match=r"\.png or \.jpg"):
        files.save_image(content_image, tmp_path / "out.nothing")


def test_load_image_reads_what_save_image_wrote(tmp_path, content_image):
    path = files.save_image(st.image_to_tensor(content_image), tmp_path / "t.png")
    assert np.array_equal(np.asarray(st.load_image(path)), np.asarray(content_image))


def test_bad_max_size(tmp_path, content_image):
    path = files.save_image(content_image, tmp_path / "a.png")
    for bad in (0, -5, 2.5):
        with pytest.raises(st.ParameterError, match="max_size"):
            st.load_image(path, max_size=bad)


def test_image_to_tensor_refuses_non_images():
    with pytest.raises(st.ImageError, match="load_image"):
        st.image_to_tensor(io.BytesIO(b"not an image"))


def test_load_image_takes_bytes_and_refuses_what_it_cannot_read(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (20, 10), "red").save(path)
    assert st.load_image(path.read_bytes()).size == (20, 10)
    with pytest.raises(st.ImageError, match="needs a path, bytes or a binary file object, got int"):
        st.load_image(5)


def test_a_pil_image_from_image_open_is_turned_upright_as_a_file_is(tmp_path):
    """stylize(Image.open(phone_photo), ...) sees the photo the right way up, as load_image(path) does."""
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(gradient_image(60, 30), tmp_path / "phone.jpg", exif=exif, quality=95)
    with Image.open(path) as opened:
        upright = st.as_image(opened, "content")
    assert upright.size == (30, 60)
    assert np.array_equal(np.asarray(upright), np.asarray(st.load_image(path)))
    assert st.as_image(st.load_image(path), "content").size == (30, 60)  # not turned twice
