"""Signed link tokens (sign, verify, refuse anything edited) and rewriting a message's links
into them, in text and in HTML, with the open pixel."""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaskad.domain.ids import new_id
from kaskad.domain.links import (
    KINDS,
    BadToken,
    LinkKind,
    LinkRef,
    open_pixel,
    rewrite_links,
    sign_link,
    verify_link,
)

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
URLSAFE = string.ascii_letters + string.digits + "-_"
ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def message_id() -> str:
    return new_id("msg")


def flips(token: str) -> list[str]:
    """Every token that differs from ``token`` in exactly one character."""
    return [
        token[:i] + char + token[i + 1 :]
        for i in range(len(token))
        for char in URLSAFE
        if char != token[i]
    ]


# -- signing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "kind", "length"),
    [
        (0, "click", 40),
        (1, "open", 40),
        (62, "unsubscribe", 40),
        (63, "click", 43),
        (64, "open", 43),
        (1000, "click", 43),
        (65535, "unsubscribe", 43),
    ],
)
def test_round_trip_and_length(link: int, kind: LinkKind, length: int) -> None:
    ref = LinkRef(message_id(), link, kind)
    token = sign_link(KEY, ref)
    assert len(token) == length
    assert len(token) <= 44
    assert set(token) <= set(URLSAFE)  # goes into a URL as it is
    assert verify_link(KEY, token) == ref


def test_kind_defaults_to_click() -> None:
    ref = LinkRef(message_id(), 3)
    assert verify_link(KEY, sign_link(KEY, ref)).kind == "click"


def test_signing_is_deterministic_and_distinct_per_field() -> None:
    ours = message_id()
    token = sign_link(KEY, LinkRef(ours, 5, "click"))
    assert sign_link(KEY, LinkRef(ours, 5, "click")) == token
    others = {
        sign_link(KEY, LinkRef(ours, 6, "click")),
        sign_link(KEY, LinkRef(ours, 5, "open")),
        sign_link(KEY, LinkRef(message_id(), 5, "click")),
        sign_link(OTHER_KEY, LinkRef(ours, 5, "click")),
    }
    assert token not in others
    assert len(others) == 4


@pytest.mark.parametrize("link", [0, 62, 63, 65535])
def test_every_single_character_change_is_rejected(link: int) -> None:
    token = sign_link(KEY, LinkRef(message_id(), link, "open"))
    changed = flips(token)
    assert len(changed) == len(token) * (len(URLSAFE) - 1)
    for tampered in changed:
        with pytest.raises(BadToken):
            verify_link(KEY, tampered)


@pytest.mark.parametrize("link", [0, 63])
def test_a_wrong_key_is_rejected(link: int) -> None:
    token = sign_link(KEY, LinkRef(message_id(), link))
    with pytest.raises(BadToken, match="signature"):
        verify_link(OTHER_KEY, token)
    with pytest.raises(BadToken):
        verify_link(b"", token)


@pytest.mark.parametrize("link", [0, 63])
def test_truncated_and_extended_tokens_are_rejected(link: int) -> None:
    token = sign_link(KEY, LinkRef(message_id(), link))
    for end in range(len(token)):
        with pytest.raises(BadToken):
            verify_link(KEY, token[:end])
    for extra in ("A", "AA", "AAAA", "=", "==", token):
        with pytest.raises(BadToken):
            verify_link(KEY, token + extra)


@pytest.mark.parametrize("link", [0, 63])
def test_other_spellings_of_the_same_bytes_are_rejected(link: int) -> None:
    """Padding, the standard alphabet and stray characters decode to the same bytes; only
    the spelling sign_link made is a token."""
    token = sign_link(KEY, LinkRef(message_id(), link))
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    spellings = (
        {
            base64.urlsafe_b64encode(raw).decode(),  # padded (a 43-character token)
            base64.b64encode(raw).decode().rstrip("="),  # + and / instead of - and _
            token[:10] + "\n" + token[10:],
            " " + token,
            token + "\n",
        }
        - {token}
    )
    assert spellings
    for spelling in spellings:
        with pytest.raises(BadToken):
            verify_link(KEY, spelling)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "a",
        "abcde",
        "not a token at all",
        "é" * 40,
        "A" * 40,
        "_" * 43,
        "A" * 44,
        "A" * 10_000,
        "%2F" * 14,
        "../../etc/passwd",
    ],
)
def test_garbage_is_rejected(garbage: str) -> None:
    with pytest.raises(BadToken):
        verify_link(KEY, garbage)


def test_a_token_made_with_another_key_for_the_same_body_is_not_ours() -> None:
    ours = sign_link(KEY, LinkRef(message_id(), 1))
    raw = base64.urlsafe_b64decode(ours + "=" * (-len(ours) % 4))
    forged = base64.urlsafe_b64encode(raw[:-12] + bytes(12)).rstrip(b"=").decode()
    assert len(forged) == len(ours)
    with pytest.raises(BadToken, match="signature"):
        verify_link(KEY, forged)


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        (LinkRef("ntf_" + "0" * 26, 0), "not a message id"),
        (LinkRef("msg_" + "0" * 25, 0), "not a message id"),
        (LinkRef("msg_" + "0" * 27, 0), "not a message id"),
        (LinkRef("msg_" + "A" * 26, 0), "not a message id"),  # upper case is not the alphabet
        (LinkRef("msg_" + "i" * 26, 0), "not a message id"),  # nor are i, l, o, u
        (LinkRef("message-1", 0), "not a message id"),
        (LinkRef("", 0), "not a message id"),
        (LinkRef("0" * 26, 0), "not a message id"),
        (LinkRef("msg_" + "0" * 26, -1), "out of range"),
        (LinkRef("msg_" + "0" * 26, 65536), "out of range"),
    ],
)
def test_signing_refuses_what_it_cannot_pack(ref: LinkRef, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        sign_link(KEY, ref)


def test_signing_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError):
        sign_link(KEY, LinkRef(message_id(), 0, "view"))  # type: ignore[arg-type]


@given(
    digits=st.text(alphabet=ID_ALPHABET, min_size=26, max_size=26),
    link=st.integers(min_value=0, max_value=0xFFFF),
    kind=st.sampled_from(KINDS),
    key=st.binary(min_size=1, max_size=64),
)
def test_verify_inverts_sign(digits: str, link: int, kind: LinkKind, key: bytes) -> None:
    ref = LinkRef("msg_" + digits, link, kind)
    token = sign_link(key, ref)
    assert len(token) == (40 if link < 63 else 43)
    assert verify_link(key, token) == ref


@given(link=st.integers(min_value=0, max_value=0xFFFF), kind=st.sampled_from(KINDS))
def test_verify_inverts_sign_for_fresh_message_ids(link: int, kind: LinkKind) -> None:
    ref = LinkRef(message_id(), link, kind)
    assert verify_link(KEY, sign_link(KEY, ref)) == ref


# -- rewriting text ---------------------------------------------------------------------


def angle(url: str) -> str:
    return f"<{url}>"


@pytest.mark.parametrize(
    ("text", "rewritten", "found"),
    [
        ("no links", "no links", []),
        (
            "Pay: https://bank.example/p?id=1. Thanks!",
            "Pay: <https://bank.example/p?id=1>. Thanks!",
            ["https://bank.example/p?id=1"],
        ),
        (
            "(see https://a.example/x), then http://b.example/y; and https://c.example!",
            "(see <https://a.example/x>), then <http://b.example/y>; and <https://c.example>!",
            ["https://a.example/x", "http://b.example/y", "https://c.example"],
        ),
        (
            "Really? https://a.example/q?x=1&y=2?!",
            "Really? <https://a.example/q?x=1&y=2>?!",
            ["https://a.example/q?x=1&y=2"],
        ),
        ("[https://a.example/]", "[<https://a.example/>]", ["https://a.example/"]),
        ("{https://a.example}:", "{<https://a.example>}:", ["https://a.example"]),
        (
            "HTTPS://UPPER.EXAMPLE/A and https://a.example/%D0%B0",
            "<HTTPS://UPPER.EXAMPLE/A> and <https://a.example/%D0%B0>",
            ["HTTPS://UPPER.EXAMPLE/A", "https://a.example/%D0%B0"],
        ),
        (
            'quoted "https://a.example/x" and <https://b.example/y>',
            'quoted "<https://a.example/x>" and <<https://b.example/y>>',
            ["https://a.example/x", "https://b.example/y"],
        ),
        (
            "same https://a.example twice https://a.example",
            "same <https://a.example> twice <https://a.example>",
            ["https://a.example", "https://a.example"],
        ),
        (
            "line one https://a.example\nline two\thttps://b.example",
            "line one <https://a.example>\nline two\t<https://b.example>",
            ["https://a.example", "https://b.example"],
        ),
        (
            "mailto:help@bank.example tel:+380501234567 ftp://files.example www.bank.example",
            "mailto:help@bank.example tel:+380501234567 ftp://files.example www.bank.example",
            [],
        ),
        ("https:// alone", "https:// alone", []),
    ],
)
def test_rewrite_text(text: str, rewritten: str, found: list[str]) -> None:
    assert rewrite_links(text, html=False, shorten=angle) == (rewritten, found)


def test_links_are_numbered_in_order() -> None:
    numbers: list[str] = []

    def shorten(url: str) -> str:
        numbers.append(url)
        return f"https://k.example/r/{len(numbers) - 1}"

    text, found = rewrite_links(
        "first https://a.example, second http://b.example. third https://c.example/x",
        html=False,
        shorten=shorten,
    )
    assert text == (
        "first https://k.example/r/0, second https://k.example/r/1. third https://k.example/r/2"
    )
    assert found == numbers == ["https://a.example", "http://b.example", "https://c.example/x"]


def test_skip_prefix_leaves_our_own_links_alone() -> None:
    text = "a https://k.example/r/abc b https://t.example/1 c https://k.example/u/x."
    rewritten, found = rewrite_links(
        text, html=False, shorten=angle, skip_prefix="https://k.example/"
    )
    assert rewritten == "a https://k.example/r/abc b <https://t.example/1> c https://k.example/u/x."
    assert found == ["https://t.example/1"]
    # Rewriting twice changes nothing more.
    again = rewrite_links(
        rewritten.replace("<", "").replace(">", ""),
        html=False,
        shorten=lambda u: "https://k.example/r/new",
        skip_prefix="https://k.example/",
    )
    assert again[1] == ["https://t.example/1"]


def test_an_empty_skip_prefix_skips_nothing() -> None:
    assert rewrite_links("https://a.example", html=False, shorten=angle, skip_prefix="") == (
        "<https://a.example>",
        ["https://a.example"],
    )


# -- rewriting HTML ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "rewritten", "found"),
    [
        (
            '<a href="https://a.example/">a</a>',
            '<a href="<https://a.example/>">a</a>',
            ["https://a.example/"],
        ),
        (
            "<a href='https://b.example/'>b</a>",
            "<a href='<https://b.example/>'>b</a>",
            ["https://b.example/"],
        ),
        (
            '<a class="btn" HREF = "https://c.example" target=_blank>c</a>',
            '<a class="btn" HREF = "<https://c.example>" target=_blank>c</a>',
            ["https://c.example"],
        ),
        (
            '<A\n  href="https://d.example">d</A>',
            '<A\n  href="<https://d.example>">d</A>',
            ["https://d.example"],
        ),
        (
            '<a href=" https://e.example ">e</a>',
            '<a href="<https://e.example>">e</a>',
            ["https://e.example"],
        ),
        (
            '<a href="https://q.example/?x=1&amp;y=2">q</a>',
            '<a href="<https://q.example/?x=1&amp;y=2>">q</a>',
            ["https://q.example/?x=1&y=2"],
        ),
        (
            '<a href="https://q.example/?x=1&y=2">q</a>',
            '<a href="<https://q.example/?x=1&amp;y=2>">q</a>',
            ["https://q.example/?x=1&y=2"],
        ),
        (
            '<a data-kaskad-notrack href="https://n.example">n</a>',
            '<a data-kaskad-notrack href="https://n.example">n</a>',
            [],
        ),
        (
            '<a href="https://n.example" DATA-KASKAD-NOTRACK="">n</a>',
            '<a href="https://n.example" DATA-KASKAD-NOTRACK="">n</a>',
            [],
        ),
        (
            '<a href="mailto:x@bank.example">m</a><a href="tel:+380501234567">t</a>'
            '<a href="#top">top</a><a href="/relative">r</a><a name="x">x</a>',
            '<a href="mailto:x@bank.example">m</a><a href="tel:+380501234567">t</a>'
            '<a href="#top">top</a><a href="/relative">r</a><a name="x">x</a>',
            [],
        ),
        (
            '<img src="https://i.example/p.png"><link href="https://css.example/s.css">'
            '<area href="https://area.example"><abbr title="https://t.example">x</abbr>',
            '<img src="https://i.example/p.png"><link href="https://css.example/s.css">'
            '<area href="https://area.example"><abbr title="https://t.example">x</abbr>',
            [],
        ),
        (
            "<p>Visit https://plain.example today</p>",
            "<p>Visit https://plain.example today</p>",
            [],
        ),
        (
            '<a data-href="https://d.example" href="https://e.example">d</a>',
            '<a data-href="https://d.example" href="<https://e.example>">d</a>',
            ["https://e.example"],
        ),
        ('<a data-href="https://d.example">d</a>', '<a data-href="https://d.example">d</a>', []),
        (
            '<a href="https://1.example">1</a> <a href="http://2.example">2</a>'
            '<a data-kaskad-notrack href="https://3.example">3</a><a href="https://4.example">4</a>',
            '<a href="<https://1.example>">1</a> <a href="<http://2.example>">2</a>'
            '<a data-kaskad-notrack href="https://3.example">3</a>'
            '<a href="<https://4.example>">4</a>',
            ["https://1.example", "http://2.example", "https://4.example"],
        ),
    ],
)
def test_rewrite_html(html: str, rewritten: str, found: list[str]) -> None:
    assert rewrite_links(html, html=True, shorten=angle) == (rewritten, found)


def test_html_shortened_links_are_escaped() -> None:
    text, found = rewrite_links(
        '<a href="https://a.example/?q=1&amp;r=2">a</a>',
        html=True,
        shorten=lambda url: url + "&utm=kaskad",
    )
    assert found == ["https://a.example/?q=1&r=2"]
    assert text == '<a href="https://a.example/?q=1&amp;r=2&amp;utm=kaskad">a</a>'


def test_html_skip_prefix() -> None:
    html = '<a href="https://k.example/r/x">ours</a><a href="https://t.example">theirs</a>'
    text, found = rewrite_links(html, html=True, shorten=angle, skip_prefix="https://k.example/")
    assert (
        text == '<a href="https://k.example/r/x">ours</a><a href="<https://t.example>">theirs</a>'
    )
    assert found == ["https://t.example"]


# -- the open pixel ---------------------------------------------------------------------

PIXEL = '<img src="https://k.example/o/T" width="1" height="1" alt="" style="display:none">'


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (
            "<html><body><p>hi</p></body></html>",
            f"<html><body><p>hi</p>{PIXEL}</body></html>",
        ),
        ("<HTML><BODY>hi</BODY></HTML>", f"<HTML><BODY>hi{PIXEL}</BODY></HTML>"),
        (
            "<body>a</body><!-- </body> in a comment? no: the last one --></body>",
            f"<body>a</body><!-- </body> in a comment? no: the last one -->{PIXEL}</body>",
        ),
        ("<p>no body tag</p>", f"<p>no body tag</p>{PIXEL}"),
        ("", PIXEL),
    ],
)
def test_open_pixel(html: str, expected: str) -> None:
    assert open_pixel(html, "https://k.example/o/T") == expected
