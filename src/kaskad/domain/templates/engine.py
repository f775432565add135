"""The sandboxed Liquid environments kaskad renders with.

No loader (a template cannot include files), undefined variables are errors (falsy in an
``if``, so optional attributes still work), and limits on loops, output size, nesting and
context depth, so a marketer's template can neither read the server nor exhaust it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

from liquid import BoundTemplate, Environment, FalsyStrictUndefined, Undefined

from kaskad.domain.templates.filters import FILTERS

COMPILED_CACHE: Final = 4096


class _Limited(Environment):
    loop_iteration_limit = 10_000
    output_stream_limit = 200_000
    context_depth_limit = 20
    local_namespace_limit = 100_000
    block_nesting_limit = 40


class _Lenient(_Limited):
    """For previews: a missing variable renders empty and is listed, not raised."""


def _environment(kind: type[Environment], *, html: bool, strict: bool) -> Environment:
    env = kind(autoescape=html, undefined=FalsyStrictUndefined if strict else Undefined)
    env.filters.update(FILTERS)
    # With no templates to load, ``include`` and ``render`` could only fail when a message
    # is rendered (and the static analysis behind ``variables()`` fails on them too): refuse
    # them when the template is compiled, as an unknown tag.
    for tag in ("include", "render"):
        env.tags.pop(tag, None)
    return env


_ENVIRONMENTS: Final = {
    (html, strict): _environment(_Limited if strict else _Lenient, html=html, strict=strict)
    for html in (False, True)
    for strict in (False, True)
}
_CACHE: OrderedDict[tuple[str, bool, bool], BoundTemplate] = OrderedDict()
_LOCK = threading.Lock()


def compile_text(text: str, *, html: bool, strict: bool = True) -> BoundTemplate:
    """Compile once per (text, kind): the same template text renders for every message."""
    key = (text, html, strict)
    with _LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    compiled = _ENVIRONMENTS[(html, strict)].from_string(text)
    with _LOCK:
        _CACHE[key] = compiled
        while len(_CACHE) > COMPILED_CACHE:
            _CACHE.popitem(last=False)
    return compiled
