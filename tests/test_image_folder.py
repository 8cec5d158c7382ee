"""Loading any folder of JPEG/PNG images: centre crop, resize, labels from subfolders, and the
errors and skip counts a user sees."""

import numpy as np
import pytest
from PIL import Image

from jaxgan import data


def banded(width: int, height: int) -> Image.Image:
    """Red left third, green middle third, blue right third."""
    a = np.zeros((height, width, 3), np.uint8)
    third = width // 3
    a[:, :third, 0] = 255
    a[:, third : 2 * third, 1] = 255
    a[:, 2 * third :, 2] = 255
    return Image.fromarray(a)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "images"
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "puppies").mkdir(parents=True)
    banded(90, 30).save(root / "cats" / "wide.png")  # the centre crop keeps the green band
    Image.new("RGB", (40, 64), (200, 10, 10)).save(root / "cats" / "tall.JPG", quality=95)
    Image.new("L", (16, 16), 128).save(root / "dogs" / "puppies" / "gray.png")
    Image.new("RGBA", (20, 20), (0, 0, 255, 128)).save(root / "top.png")
    (root / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "notes.txt").write_text("not an image")
    return root


def test_folder_images_are_cropped_resized_and_labelled_by_subfolder(folder):
    lines = []
    loaded = data.load_image_folder(folder, 8, report=lines.append)
    images, labels = loaded["image"], loaded["label"]
    # Sorted paths: cats/tall.JPG, cats/wide.png, dogs/puppies/gray.png, top.png.
    assert images.shape == (4, 8, 8, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [0, 0, 1, 0])  # cats 0, dogs 1, top level 0
    wide = images[1].astype(int)
    assert (wide[..., 1] > 200).all() and (wide[..., 0] < 60).all()  # only the green centre
    assert np.abs(images[0].astype(int) - [200, 10, 10]).max() <= 3  # JPEG, nearly exact
    assert (images[2] == 128).all()  # grayscale becomes RGB
    assert lines == [
        f"skipped 1 unreadable of 5 image files under {folder} (first: dogs/broken.jpg)"
    ]


def test_grayscale_output(folder):
    loaded = data.load_image_folder(folder, 4, channels=1, report=lambda line: None)
    assert loaded["image"].shape == (4, 4, 4, 1)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: None, "is not a directory; point --data-dir at a folder of images"),
        (lambda root: root.mkdir() or (root / "a.txt").write_text("x"), "holds no JPEG or PNG"),
        (lambda root: root.mkdir() or (root / "a.png").write_bytes(b"garbage"), "none of the 1"),
    ],
    ids=["missing", "empty", "all unreadable"],
)
def test_unusable_folders_raise_one_clear_error(tmp_path, make, message):
    root = tmp_path / "images"
    make(root)
    with pytest.raises(data.DataError, match=message):
        data.load_image_folder(root, 8)
