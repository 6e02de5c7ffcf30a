"""What the handler's image round trip (handler/imaging.py) keeps and drops: 8-bit output from
any layout it accepts, upright pixels, the ICC profile and nothing else of the metadata."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import ExifTags, Image, PngImagePlugin

from handler.imaging import (
    UNSURE_LEVEL,
    CleanedImage,
    decode_image,
    decode_mask,
    encode_image,
    encode_mask,
)

SIZE = (40, 30)
# A real ICC profile would do as well: the encoder copies the bytes, it never parses them.
ICC = b"\x00\x00\x02\x0cclearmark-test-profile" + bytes(480)
GPS = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (48.0, 51.0, 24.0)}
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>secret-xmp</rdf:RDF></x:xmpmeta>'


def clean_nothing(data: bytes) -> bytes:
    """Decode as the handler does and encode the pixels unchanged: the handler's answer for a
    photo without a mark."""
    decoded = decode_image(data)
    return encode_image(CleanedImage(rgb=decoded.rgb, source=decoded))


def round_trip(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(clean_nothing(data)))
    image.load()
    return image


def noisy(mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)).convert(
        mode
    )


def with_metadata(image_format: str) -> bytes:
    """A photo with GPS EXIF (and a maker note), XMP, a comment and an ICC profile."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    exif[ExifTags.Base.MakerNote] = b"maker-note-serial-1234"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(GPS)
    buffer = io.BytesIO()
    options: dict[str, object] = {"exif": exif, "icc_profile": ICC, "xmp": XMP}
    if image_format == "JPEG":
        options["comment"] = b"secret-comment"
    if image_format == "PNG":
        # Pillow writes a PNG's XMP and comments only as text chunks.
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "secret-comment")
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        options["pnginfo"] = info
    noisy().save(buffer, format=image_format, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_only_the_icc_profile_survives(image_format: str) -> None:
    data = with_metadata(image_format)
    for secret in (b"SecretCam", b"maker-note-serial", b"secret-xmp"):
        assert secret in data  # the input really carries them

    encoded = clean_nothing(data)
    out = Image.open(io.BytesIO(encoded))

    assert out.info.get("icc_profile") == ICC
    assert dict(out.getexif()) == {}
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment", "Comment"} & set(out.info)
    for secret in (b"SecretCam", b"maker-note-serial", b"secret-xmp", b"secret-comment"):
        assert secret not in encoded


def test_exif_orientation_6_comes_back_upright_without_the_tag() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored 40x30, displayed turned a quarter: 30x40
    buffer = io.BytesIO()
    noisy().save(buffer, format="JPEG", exif=exif, quality=95)

    out = round_trip(buffer.getvalue())

    assert out.size == (SIZE[1], SIZE[0])
    assert ExifTags.Base.Orientation not in out.getexif()


def test_a_polyglot_loses_its_payload() -> None:
    buffer = io.BytesIO()
    noisy().save(buffer, format="JPEG")
    payload = b"<html><script>alert(document.cookie)</script></html>"

    out = clean_nothing(buffer.getvalue() + payload)

    assert payload not in out and b"<script" not in out
    assert out.startswith(b"\xff\xd8") and out.endswith(b"\xff\xd9")


def layouts() -> dict[str, tuple[bytes, str, str]]:
    """name -> (encoded input, format, mode expected out)."""
    cmyk = io.BytesIO()
    noisy("CMYK").save(cmyk, format="JPEG")
    deep = io.BytesIO()
    Image.fromarray(np.full((SIZE[1], SIZE[0]), 40_000, dtype=np.uint16)).save(deep, format="PNG")
    palette = noisy().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    transparent = io.BytesIO()
    palette.save(transparent, format="PNG", transparency=0)
    la = io.BytesIO()
    noisy("LA").save(la, format="PNG")
    return {
        "cmyk-jpeg": (cmyk.getvalue(), "JPEG", "RGB"),
        "16-bit-png": (deep.getvalue(), "PNG", "RGB"),
        "palette-transparency-png": (transparent.getvalue(), "PNG", "RGBA"),
        "la-png": (la.getvalue(), "PNG", "RGBA"),
    }


@pytest.mark.parametrize("name", sorted(layouts()))
def test_unusual_layouts_come_back_as_8_bit_rgb_with_their_alpha(name: str) -> None:
    data, image_format, mode = layouts()[name]
    source = Image.open(io.BytesIO(data))

    out = round_trip(data)

    assert (out.format, out.mode, out.size) == (image_format, mode, SIZE)
    pixels = np.asarray(out)
    assert pixels.dtype == np.uint8
    if name == "16-bit-png":
        # 40,000 of 65,535 is about 61% grey: 8 bits of it, not a clipped 255.
        assert np.all(np.abs(pixels.astype(int) - round(40_000 / 257)) <= 1)
    if name == "cmyk-jpeg":
        expected = np.asarray(source.convert("RGB"), dtype=int)
        assert np.abs(pixels.astype(int) - expected).mean() < 4  # JPEG at quality 95
    if mode == "RGBA":
        expected_alpha = np.asarray(source.convert("RGBA").getchannel("A"))
        assert np.array_equal(pixels[..., 3], expected_alpha)


def test_a_mask_with_unsure_regions_sent_back_as_it_came_removes_only_the_mask():
    mask = np.zeros((6, 9), bool)
    mask[1:3, 1:4] = True
    unsure = np.zeros((6, 9), bool)
    unsure[2:5, 3:8] = True  # overlaps the mask at (2, 3): the mask wins there
    png = encode_mask(mask, unsure)
    levels = np.asarray(Image.open(io.BytesIO(png)))
    assert levels.dtype == np.uint8 and levels.shape == (6, 9)
    assert np.array_equal(levels == 255, mask)
    assert np.array_equal(levels == UNSURE_LEVEL, unsure & ~mask)
    assert np.array_equal(levels == 0, ~mask & ~unsure)
    assert np.array_equal(decode_mask(png, 6, 9), mask)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_mask(mask)))) == 255, mask)
