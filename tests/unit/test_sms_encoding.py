"""GSM 03.38 / UCS-2 counting, splitting and encoding, checked against the standard's tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaskad.domain.sms import GSM7, UCS2, decode, encode, shape, split

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ" + "ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_ESCAPED = "^{}\\[~]|€\f"
EMOJI = "😀"
UKRAINIAN = "Ваш платіж на 250 грн підтверджено. Дякуємо, що обираєте нас! Ґанок, їжак, єнот."
RUSSIAN = "Ваш платёж на 250 руб. подтверждён. Спасибо, что выбираете нас!"


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment"),
    [
        ("", GSM7, 0, 1, 160),
        ("a" * 160, GSM7, 160, 1, 160),
        ("a" * 161, GSM7, 161, 2, 153),
        ("a" * 306, GSM7, 306, 2, 153),
        ("a" * 307, GSM7, 307, 3, 153),
        ("€" * 80, GSM7, 160, 1, 160),
        ("€" * 81, GSM7, 162, 2, 153),
        ("a" * 159 + "€", GSM7, 161, 2, 153),
        ("Ç" * 160, GSM7, 160, 1, 160),
        ("ç", UCS2, 1, 1, 70),
        ("ç" * 70, UCS2, 70, 1, 70),
        ("ç" * 71, UCS2, 71, 2, 67),
        ("ç" * 134, UCS2, 134, 2, 67),
        ("ç" * 135, UCS2, 135, 3, 67),
        (EMOJI * 35, UCS2, 70, 1, 70),
        (EMOJI * 36, UCS2, 72, 2, 67),
        (RUSSIAN, UCS2, len(RUSSIAN), 1, 70),
        (UKRAINIAN, UCS2, len(UKRAINIAN), 2, 67),
    ],
)
def test_shape_counts_units_and_segments(
    text: str, encoding: str, units: int, segments: int, per_segment: int
) -> None:
    result = shape(text)
    assert (result.encoding, result.units, result.segments, result.per_segment) == (
        encoding,
        units,
        segments,
        per_segment,
    )
    assert result.characters == len(text)
    assert result.data_coding == (0 if encoding == GSM7 else 8)
    assert len(split(text, encoding)) == segments


@pytest.mark.parametrize("char", list(GSM_BASIC))
def test_every_basic_character_is_one_septet(char: str) -> None:
    assert shape(char).encoding == GSM7
    assert shape(char).units == 1


@pytest.mark.parametrize("char", list(GSM_ESCAPED))
def test_every_escape_character_is_two_septets(char: str) -> None:
    result = shape(char * 3)
    assert (result.encoding, result.units) == (GSM7, 6)
    assert encode(char, GSM7)[0] == 0x1B


@pytest.mark.parametrize(
    ("char", "septets"),
    [
        ("@", b"\x00"),
        ("Ç", b"\x09"),
        ("\n", b"\x0a"),
        ("Δ", b"\x10"),
        ("¤", b"\x24"),
        ("¡", b"\x40"),
        ("§", b"\x5f"),
        ("¿", b"\x60"),
        ("à", b"\x7f"),
        ("€", b"\x1b\x65"),
        ("{", b"\x1b\x28"),
        ("\f", b"\x1b\x0a"),
        ("|", b"\x1b\x40"),
    ],
)
def test_septet_values_follow_gsm_03_38(char: str, septets: bytes) -> None:
    assert encode(char, GSM7) == septets


@pytest.mark.parametrize(
    ("text", "culprits"),
    [
        ("Garçon", ("ç",)),
        ("François et Ça", ("ç",)),
        ("`quoted`", ("`",)),
        ("Ціна: 10€ ✓ ✓", ("Ц", "і", "н", "а", "✓")),
        (f"Hi {EMOJI}{EMOJI}", (EMOJI,)),
        ("Ça va", ()),
    ],
)
def test_non_gsm_names_the_characters_that_force_ucs2(text: str, culprits: tuple[str, ...]) -> None:
    result = shape(text)
    assert result.non_gsm == culprits
    assert result.encoding == (UCS2 if culprits else GSM7)


def test_small_c_cedilla_is_not_gsm_but_capital_is() -> None:
    assert shape("ç").encoding == UCS2
    assert shape("Ç").encoding == GSM7
    with pytest.raises(ValueError, match="GSM"):
        encode("ç", GSM7)


def test_long_gsm_parts_are_153_septets() -> None:
    parts = split("x" * 306, GSM7)
    assert [len(p) for p in parts] == [153, 153]


def test_escape_pair_is_never_split_across_parts() -> None:
    text = "a" * 152 + "€" + "b" * 10
    parts = split(text, GSM7)
    assert [len(p) for p in parts] == [152, 12]
    assert parts[1][:2] == b"\x1b\x65"
    assert shape(text).segments == 2


def test_escape_pairs_at_every_boundary_still_join_to_the_text() -> None:
    text = "€" * 200
    parts = split(text, GSM7)
    assert all(len(p) <= 153 and p[-1] != 0x1B for p in parts)
    assert "".join(decode(p, GSM7) for p in parts) == text
    assert shape(text).segments == len(parts) == 3


def test_long_ucs2_parts_are_67_units() -> None:
    parts = split("ж" * 134, UCS2)
    assert [len(p) for p in parts] == [134, 134]


def test_surrogate_pair_is_never_split_across_parts() -> None:
    text = "ж" * 66 + EMOJI + "ж" * 5
    parts = split(text, UCS2)
    assert [len(p) // 2 for p in parts] == [66, 7]
    assert parts[1].decode("utf-16-be") == EMOJI + "ж" * 5


def test_emoji_only_message_splits_between_pairs() -> None:
    text = EMOJI * 40
    parts = split(text, UCS2)
    assert [len(p) // 2 for p in parts] == [66, 14]
    assert shape(text).segments == 2


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Your code is 482913. Don't share it.", GSM7),
        (GSM_BASIC + GSM_ESCAPED, GSM7),
        ("Total: 12,50€ [card *1234] {ok} ~ ^ | \\", GSM7),
        (UKRAINIAN, UCS2),
        (RUSSIAN, UCS2),
        (f"Готово {EMOJI} ç", UCS2),
    ],
)
def test_round_trip_through_parts(text: str, encoding: str) -> None:
    assert shape(text).encoding == encoding
    assert decode(encode(text, encoding), encoding) == text
    assert "".join(decode(part, encoding) for part in split(text * 3, encoding)) == text * 3


def test_ucs2_is_big_endian_utf16() -> None:
    assert encode("Я", UCS2) == b"\x04\x2f"
    assert encode(EMOJI, UCS2) == b"\xd8\x3d\xde\x00"


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        encode("x", "latin-1")


@given(st.text(alphabet=st.sampled_from(list(GSM_BASIC + GSM_ESCAPED)), max_size=500))
def test_gsm_text_round_trips_and_fits_its_segments(text: str) -> None:
    result = shape(text)
    parts = split(text, GSM7)
    assert result.encoding == GSM7
    assert len(parts) == result.segments
    assert all(len(p) <= result.per_segment for p in parts)
    assert "".join(decode(p, GSM7) for p in parts) == text


@given(st.text(min_size=1, max_size=300))
def test_any_text_round_trips_and_fits_its_segments(text: str) -> None:
    result = shape(text)
    parts = split(text, result.encoding)
    width = 1 if result.encoding == GSM7 else 2
    assert len(parts) == result.segments
    assert all(len(p) // width <= result.per_segment for p in parts)
    assert b"".join(parts) == encode(text, result.encoding)
    if result.encoding == UCS2:
        assert all(p.decode("utf-16-be") for p in parts)  # no part ends in half a pair
