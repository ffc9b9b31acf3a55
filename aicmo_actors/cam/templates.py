"""Email templates: Jinja2 in a sandbox, strict about undefined variables, compiled once.

Subjects and plain-text bodies are rendered without escaping; HTML bodies with
autoescape. Every email gets a footer with the sender's postal address and the
unsubscribe link. `check_campaign` renders every step and variant for every lead and
reports each missing variable with the lead and the step, before anything is sent.

Templates come from campaign files, and one typo (`{{ 'x' * 10**9 }}`, a loop in a loop)
must not take the service down, so every render is bounded in process: at most
`MAX_OUTPUT_BYTES` of output per part, `MAX_RENDER_SECONDS`, `MAX_LOOP_ITERATIONS` loop
iterations in all, and no string or list longer than `MAX_VALUE_LENGTH` made by one
operator (`*`, `**`, `+`, `%`, `~`), filter or str method: each is checked before it runs
where its size can be foreseen (repetition, widths, counts, joins), and after it ran
otherwise. Breaking a limit is a `TemplateProblemError` with a one-line message.
`check_campaign(..., isolated=True)` also renders in a child process with a memory limit
and a time limit per render, for whatever the checks in process miss.

In HTML bodies a variable holding a javascript:, vbscript: or data: URL (other than an
image) prints as "#", wherever it is used: a link to it would run script when clicked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import html as html_lib
import numbers
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import (
    StrictUndefined,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
    pass_context,
    pass_eval_context,
)
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import make_attrgetter, sync_do_join
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from jinja2.utils import generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

from aicmo_actors.cam.campaign import CampaignSpec

#: One render (one part of one email for one lead) may print this much ...
MAX_OUTPUT_BYTES = 1_000_000
#: ... take this long (wall time: it bounds what a render costs, it is not business time) ...
MAX_RENDER_SECONDS = 2.0
#: ... and go round its loops this many times in all.
MAX_LOOP_ITERATIONS = 100_000
#: The longest string or list (characters or items) one operation in a template may make ...
MAX_VALUE_LENGTH = 1_000_000
#: ... and what all of them may make together in one render (this bounds its memory).
MAX_TOTAL_LENGTH = 20_000_000
#: Integers past this many bits (about 3,000 digits) are refused: no email needs them.
MAX_INT_BITS = 10_000
#: `check_campaign(isolated=True)`: the memory the child may take on top of what it has when
#: it starts, and how long one render may take there before the child is stopped.
CHECK_MEMORY_HEADROOM_BYTES = 1 << 30
CHECK_RENDER_TIMEOUT_S = 10.0

_UNDEFINED = re.compile(r"'([^']+)' is undefined")
# What str.splitlines() breaks on: none of it may reach a Subject header.
_LINE_BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"

#: What every lead has, for checking a campaign without a leads file.
SAMPLE_LEAD = {
    "email": "sample.lead@example.com",
    "first_name": "Sam",
    "last_name": "Sample",
    "company": "Example Inc",
    "timezone": "UTC",
}


class TemplateProblemError(ValueError):
    """A template could not be rendered (syntax, missing variable, sandbox violation)."""


class _LimitError(TemplateProblemError):
    """A render broke one of the limits; raised inside the template, reported by `_render`."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True)
class TemplateProblem:
    step: int  # 1-based
    variant: str
    part: str  # subject / body / html
    message: str
    lead: str | None = None  # "line N (address)" when it concerns one lead

    def __str__(self) -> str:
        who = f"{self.lead}: " if self.lead else ""
        return f"{who}step {self.step} variant {self.variant} {self.part}: {self.message}"


# -- the limits of one render ----------------------------------------------------------------


class _RenderLimits:
    """The budget of one render: a deadline, the loop iterations and the values made so far.

    The deadline is in this thread's CPU time (`time.thread_time`), not the wall clock: a render
    is pure computation, and what the limit stops is a template that computes too long. On a
    loaded machine the wall clock also counts the time other processes had the CPU, and a
    two-line template was once cancelled as "longer than 2 s" while the machine ran six jobs
    on two cores."""

    __slots__ = ("deadline", "iterations", "made")

    def __init__(self) -> None:
        self.deadline = time.thread_time() + MAX_RENDER_SECONDS
        self.iterations = 0
        self.made = 0

    def check_time(self) -> None:
        if time.thread_time() > self.deadline:
            raise _LimitError(f"template takes longer than {MAX_RENDER_SECONDS:g} s to render")

    def count_iteration(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_LOOP_ITERATIONS:
            raise _LimitError(f"template loops more than {MAX_LOOP_ITERATIONS:,} times")
        self.check_time()

    def count_made(self, length: int) -> None:
        self.made += length
        if self.made > MAX_TOTAL_LENGTH:
            raise _LimitError(f"template makes more than {MAX_TOTAL_LENGTH:,} characters or items in all")


_CURRENT_LIMITS: ContextVar[_RenderLimits | None] = ContextVar("template_render_limits", default=None)


def _limits() -> _RenderLimits:
    # Outside `_render` (a template rendered some other way) each check gets a budget of its own.
    return _CURRENT_LIMITS.get() or _RenderLimits()


_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)
_SEQUENCES = (str, bytes, bytearray, list, tuple)
# printf-style conversions: %(key)flags width .precision length type
_PRINTF_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.DOTALL)
_DIGITS = re.compile(r"\d+")
# Where textwrap may break a line besides inside a long word.
_WRAP_POINT = re.compile(r"[\s-]")


def _refuse_length(what: str, length: int) -> None:
    if length > MAX_VALUE_LENGTH:
        raise _LimitError(f"{what} would make a value of {length:,} characters or items (at most {MAX_VALUE_LENGTH:,})")


def _refuse_bits(what: str, bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise _LimitError(f"{what} would make a number of about {bits:,} bits (at most {MAX_INT_BITS:,})")


def _checked(what: str, value: Any) -> Any:
    """`value`, made by an operation, if it is within `MAX_VALUE_LENGTH` (for what cannot be
    foreseen before it runs) and the render's `MAX_TOTAL_LENGTH` (counted here)."""
    if isinstance(value, _SIZED):
        _refuse_length(what, len(value))
        _limits().count_made(len(value))
    return value


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= 9 else MAX_VALUE_LENGTH + 1


def _longest(values: Iterable[Any]) -> int:
    return max((len(v) if isinstance(v, str) else len(str(v)) for v in values), default=0)


def _check_printf(what: str, template: str, values: Any) -> None:
    """`template % values`, foreseen: each field prints at most its width, its precision or the
    longest value."""
    fields = widest = 0
    for field in _PRINTF_FIELD.finditer(template):
        if field.group(3) == "%":
            continue
        fields += 1
        for number in field.group(1, 2):
            if number == "*":
                raise _LimitError(f"{what}: a '*' width or precision is not allowed in a template")
            if number:
                widest = max(widest, _number(number))
    if fields:
        candidates = (
            values.values() if isinstance(values, Mapping) else values if isinstance(values, tuple) else (values,)
        )
        _refuse_length(what, len(template) + fields * max(widest, _longest(candidates)))


def _check_format(what: str, template: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """`template.format(...)`, foreseen like `_check_printf`."""
    fields = widest = 0
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise _LimitError(f"{what}: a replacement field inside a format spec is not allowed in a template")
        widest = max([widest, *(_number(d) for d in _DIGITS.findall(spec or ""))])
    if fields:
        _refuse_length(what, len(template) + fields * max(widest, _longest([*args, *kwargs.values()])))


def _check_join(what: str, items: Sequence[Any], separator: str) -> None:
    total = len(separator) * max(len(items) - 1, 0)
    _refuse_length(what, total)
    for item in items:
        total += len(item) if isinstance(item, str) else len(str(item))
        _refuse_length(what, total)


def _check_replace(what: str, text: str, old: str, new: str, count: int | None) -> None:
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    _refuse_length(what, len(text) + found * (len(new) - len(old)))


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, _SEQUENCES) and isinstance(count, int):
                _refuse_length("'*'", len(sequence) * max(count, 0))
        if isinstance(left, int) and isinstance(right, int):
            _refuse_bits("'*'", left.bit_length() + right.bit_length())
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            _refuse_bits("'**'", (abs(left).bit_length() - 1) * right)
    elif operator == "+":
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            _refuse_length("'+'", len(left) + len(right))
    elif operator == "%" and isinstance(left, str):
        _check_printf("'%'", left, right)


def _checked_method_args(method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """A str or list method's arguments, checked for the size of what it will make."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    # Jinja passes its own bookkeeping in loops and blocks (Context.call takes it out again).
    kwargs = {key: value for key, value in kwargs.items() if key not in ("_loop_vars", "_block_vars")}
    if isinstance(owner, str):
        what = f"str.{name}()"
        if name == "join" and len(args) == 1 and not kwargs:
            items = list(args[0])  # a generator is read once, here, and joined from the list
            _check_join(what, items, owner)
            return (items,)
        if name == "replace" and len(args) >= 2:
            _check_replace(what, owner, str(args[0]), str(args[1]), args[2] if len(args) > 2 else None)
        elif name == "expandtabs":
            size = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(size, int):
                _refuse_length(what, len(owner) + owner.count("\t") * max(size, 0))
        else:  # center, ljust, rjust, zfill: the width is the length
            for arg in (*args, *kwargs.values()):
                if isinstance(arg, int):
                    _refuse_length(what, arg)
    elif isinstance(owner, list) and name == "extend" and len(args) == 1 and not kwargs:
        extension: Sized = args[0] if isinstance(args[0], Sized) else list(args[0])  # a generator: read once, here
        _refuse_length("list.extend()", len(owner) + len(extension))
        return (extension,)
    return args


# -- globals and filters, bounded -------------------------------------------------------------


def _range(*args: int) -> range:
    """`range`, refused when it is longer than the loop iterations the render has left."""
    numbers = range(*args)
    limits = _limits()
    limits.check_time()
    if len(numbers) > MAX_LOOP_ITERATIONS - limits.iterations:
        raise _LimitError(f"template loops more than {MAX_LOOP_ITERATIONS:,} times")
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # jinja's parameter names
    if n > 100 or max > 1000:
        raise _LimitError("lipsum: at most 100 paragraphs of at most 1,000 words")
    return generate_lorem_ipsum(n, html, min, max)


@pass_context
def _counted_loop(context: Any, iterable: Any) -> Iterator[Any]:
    """What a `{% for %}` goes round (see `_BoundingCodeGenerator`): each item counted."""
    limits = _limits()
    for item in iterable:
        limits.count_iteration()
        yield item


@pass_eval_context
def _bounded_concat(eval_ctx: Any, parts: list[Any]) -> Any:
    """`a ~ b ~ c` (see `_BoundingCodeGenerator`), refused before it joins too much."""
    _check_join("'~'", parts, "")
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)  # Markup stays Markup


@pass_eval_context
def _bounded_join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> Any:
    if attribute is not None:
        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    items = list(value)
    _check_join("the join filter", items, str(d))
    return sync_do_join(eval_ctx, items, d)


# The checks take a filter's arguments as a template gives them (without jinja's context).


def _check_indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> None:
    text = str(s)
    pad = len(width) if isinstance(width, str) else int(width)
    _refuse_length("the indent filter", len(text) + (text.count("\n") + 1) * max(pad, 0))


def _check_wordwrap(
    s: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> None:
    text = str(s)
    separator = "\n" if wrapstring is None else str(wrapstring)  # our environments' newline
    breaks = len(text) // max(int(width), 1) + len(text) - len(_WRAP_POINT.sub("", text)) + 1
    _refuse_length("the wordwrap filter", len(text) + breaks * len(separator))


def _check_urlize(
    value: Any,
    trim_url_limit: int | None = None,
    nofollow: bool = False,
    target: str | None = None,
    rel: str | None = None,
    extra_schemes: Iterable[str] | None = None,
) -> None:
    text = str(value)
    per_link = len(str(target or "")) + len(str(rel or "")) + 64  # the <a href="..."> around each word
    _refuse_length("the urlize filter", 3 * len(text) + len(text.split()) * per_link)


def _check_sum(iterable: Any, attribute: Any = None, start: Any = 0) -> None:
    if not isinstance(start, numbers.Number):
        # Adding up lists or strings copies them again for every item: join them instead.
        raise _LimitError("the sum filter adds numbers only here (join strings, loop over lists)")


def _check_center(value: Any, width: int = 80) -> None:
    _refuse_length("the center filter", int(width))


def _check_tojson(value: Any, indent: int | str | None = None) -> None:
    if indent is not None:
        _refuse_length("the tojson filter's indent", len(indent) if isinstance(indent, str) else int(indent))


def _check_batch(value: Any, linecount: int, fill_with: Any = None) -> None:
    if fill_with is not None:  # the last batch is filled up to `linecount`
        _refuse_length("the batch filter", int(linecount))


def _check_slice(value: Any, slices: int, fill_with: Any = None) -> None:
    _refuse_length("the slice filter", int(slices))


def _check_pprint(value: Any) -> None:
    # pprint is slow Python; its output is at least as long as repr's, which is quick.
    _refuse_length("the pprint filter", len(repr(value)))


def _check_format_filter(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_printf("the format filter", str(value), kwargs or args)


def _check_replace_filter(s: Any, old: Any, new: Any, count: int | None = None) -> None:
    _check_replace("the replace filter", str(s), str(old), str(new), count)


#: Filters whose result can be foreseen from their arguments (widths, counts), checked before
#: they run; every filter's result is checked after it, and the time at each.
_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "batch": _check_batch,
    "center": _check_center,
    "format": _check_format_filter,
    "indent": _check_indent,
    "pprint": _check_pprint,
    "replace": _check_replace_filter,
    "slice": _check_slice,
    "sum": _check_sum,
    "tojson": _check_tojson,
    "urlize": _check_urlize,
    "wordwrap": _check_wordwrap,
}


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    check = _FILTER_CHECKS.get(name)
    # A filter marked pass_context / pass_eval_context / pass_environment gets that first.
    passed = 1 if hasattr(func, "jinja_pass_arg") else 0

    @functools.wraps(func)  # keeps that mark
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _limits().check_time()
        if check is not None:
            check(*args[passed:], **kwargs)
        return _checked(f"the {name} filter", func(*args, **kwargs))

    return bounded


def _counted_slice(value: Any) -> Any:
    """`x[a:b]` (see `_BoundingCodeGenerator`): a copy, counted in what the render made."""
    return _checked("a slice", value)


# Filters the code generator puts in (not meant for templates, though harmless there).
_LOOP_FILTER = "aicmo_counted_loop"
_CONCAT_FILTER = "aicmo_bounded_concat"
_SLICE_FILTER = "aicmo_counted_slice"


class _BoundTheTemplate(NodeTransformer):
    """Every `{% for %}` goes round `_counted_loop`, every `~` is `_bounded_concat` and every
    slice is counted by `_counted_slice`."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP_FILTER, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(parts, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        if not isinstance(node.arg, nodes.Slice) or node.ctx != "load":
            return node
        return nodes.Filter(node, _SLICE_FILTER, [], [], None, None, lineno=node.lineno)


class _BoundingCodeGenerator(CodeGenerator):
    """Jinja's code generator, on the template rewritten by `_BoundTheTemplate`.

    Loops, `~` and slices compile to plain Python (a `for`, a join, `x[a:b]`) that no
    sandbox hook sees: this is the one place to put a count and a size check into them.
    """

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        _BoundTheTemplate().visit(node)
        node.set_environment(self.environment)
        super().visit_Template(node, frame)


class _BoundedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox with every render bounded (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundingCodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(undefined=StrictUndefined, keep_trailing_newline=True, **options)
        self.globals["range"] = _range
        self.globals["lipsum"] = _lipsum
        filters = {**self.filters, "join": _bounded_join}
        self.filters = {name: _bounded_filter(name, func) for name, func in filters.items()}
        self.filters[_LOOP_FILTER] = _counted_loop
        self.filters[_CONCAT_FILTER] = _bounded_concat
        self.filters[_SLICE_FILTER] = _counted_slice

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _limits().check_time()
        _check_binop(operator, left, right)
        return _checked(f"'{operator}'", super().call_binop(context, operator, left, right))

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        _limits().check_time()
        args = _checked_method_args(obj, args, kwargs)
        return _checked("a call", super().call(context, obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template: str = value.__self__
        is_format_map = value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_format_map and len(args) == 1 and isinstance(args[0], Mapping):
                _check_format("format_map()", template, (), args[0])
            else:
                _check_format("format()", template, args, kwargs)
            return wrapped(*args, **kwargs)

        return functools.update_wrapper(bounded, value)


#: What a browser runs when a link to it is followed; `data:` too, bar raster images.
_SCRIPT_URL = re.compile(r"(?:javascript|vbscript|livescript|mocha):|data:(?!image/(?:png|gif|jpe?g|webp)[;,])")
# What browsers skip or strip in a URL before its scheme (and more, to be safe): control
# characters, spaces and invisible Unicode spacing.
_URL_NOISE = re.compile(r"[\x00-\x20\x7f-\xa0\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f\u2060\u3000\ufeff]")


def _no_script_urls(value: Any) -> Any:
    """The HTML environment's `finalize`: a value that a browser would read as a script URL
    prints as "#" (entities decoded, as they are for a value marked safe; case, spaces and
    control characters ignored). Plain text bodies have no links and keep their values."""
    if isinstance(value, str) and (":" in value or "&" in value):
        probe = _URL_NOISE.sub("", html_lib.unescape(value)).lower()
        if _SCRIPT_URL.match(probe):
            return "#"
    return value


_TEXT_ENV = _BoundedEnvironment(autoescape=False)
_HTML_ENV = _BoundedEnvironment(autoescape=True, finalize=_no_script_urls)


@lru_cache(maxsize=1024)
def _compile(source: str, html: bool) -> Any:
    return (_HTML_ENV if html else _TEXT_ENV).from_string(source)


def _collect(chunks: Iterable[str], limits: _RenderLimits) -> str:
    """The output of a render, read as it is made, and refused once it passes the limit."""
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk) if chunk.isascii() else len(chunk.encode("utf-8", "surrogatepass"))
        if size > MAX_OUTPUT_BYTES:
            raise _LimitError(f"template output is larger than {MAX_OUTPUT_BYTES / 1_000_000:g} MB")
        limits.check_time()
        parts.append(chunk)
    return "".join(parts)


def _render(source: str, context: Mapping[str, Any], html: bool) -> str:
    limits = _RenderLimits()
    token = _CURRENT_LIMITS.set(limits)
    try:
        with contextlib.closing(_compile(source, html).generate(context)) as chunks:
            return _collect(chunks, limits)
    except TemplateProblemError as exc:  # a limit, raised inside the template
        raise TemplateProblemError(str(exc)) from None
    except UndefinedError as exc:
        match = _UNDEFINED.search(str(exc))
        if match is None:  # e.g. "'str object' has no attribute 'foo'"
            raise TemplateProblemError(f"undefined value: {exc}") from None
        raise TemplateProblemError(f"missing variable {match.group(1)!r}") from None
    except SecurityError as exc:
        raise TemplateProblemError(f"not allowed in a template: {exc}") from None
    except TemplateSyntaxError as exc:
        raise TemplateProblemError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    except MemoryError:
        raise TemplateProblemError("template needs too much memory to render") from None
    except Exception as exc:  # a filter blowing up on odd data is the template's problem
        raise TemplateProblemError(f"{type(exc).__name__}: {exc}") from None
    finally:
        _CURRENT_LIMITS.reset(token)


def context_for(spec: CampaignSpec, step: int, lead: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """What a template sees: campaign values, then the lead's fields, then `extra` (which wins).

    `extra["sender_address"]` names the sending mailbox, so `sender_name` is the name the
    lead sees in From; without it the first mailbox stands in (for `check_campaign`).
    """
    wanted = str(extra.get("sender_address", "")).lower()
    mailbox = next((m for m in spec.mailboxes if m.address.lower() == wanted), spec.mailboxes[0])
    ctx: dict[str, Any] = {
        "campaign": spec.name,
        "step": step,
        "postal_address": spec.postal_address,
        "sender_name": mailbox.display_name or "",
        "sender_address": mailbox.address,
        "unsubscribe_url": "https://example.invalid/u/TOKEN",
    }
    ctx.update(lead)
    ctx.update(extra)
    return ctx


def render_step(
    spec: CampaignSpec, step_index: int, variant: str, lead: Mapping[str, Any], extra: Mapping[str, Any]
) -> RenderedEmail:
    """Render step `step_index` (0-based) for one lead, footer included."""
    step = spec.steps[step_index]
    subject_t, body_t, html_t = step.variant(variant)
    ctx = context_for(spec, step_index + 1, lead, extra)
    subject = " ".join(_render(subject_t, ctx, False).split())
    text = _render(body_t, ctx, False).rstrip() + "\n"
    url = str(ctx["unsubscribe_url"])
    text += f"\n--\n{spec.postal_address}\nUnsubscribe: {url}\n"
    html = None
    if html_t:
        html = _render(html_t, ctx, True)
        html += (
            f'\n<hr><p style="font-size:12px;color:#666">{html_lib.escape(spec.postal_address)}<br>'
            f'<a href="{html_lib.escape(url, quote=True)}">Unsubscribe</a></p>\n'
        )
    return RenderedEmail(subject, text, html)


def check_campaign(
    spec: CampaignSpec, leads: Iterable[tuple[str, Mapping[str, Any]]] | None = None, *, isolated: bool = False
) -> list[TemplateProblem]:
    """Render every step and variant for every lead ((label, fields) pairs); list the problems.

    Syntax errors are reported once per template; missing variables once per lead. A variant
    that inherits the step's own text (no `body` of its own, say) shares its template, so a
    problem in it is reported once, under the first variant that uses it.

    `isolated=True` renders in a child process with a memory limit and a time limit per
    render besides the limits in process (`CHECK_MEMORY_HEADROOM_BYTES`,
    `CHECK_RENDER_TIMEOUT_S`): what those miss becomes a problem of its template instead of
    taking the caller down. Starting the child costs about half a second, so it is for the
    commands that check a campaign file (`campaign check`, `campaign create`), not the default.
    """
    problems, templates = _compiled_templates(spec)
    sample = [("sample lead", SAMPLE_LEAD)] if leads is None else leads
    if isolated:
        problems += _render_isolated(spec, templates, [(label, dict(lead)) for label, lead in sample])
    else:
        problems += _render_all(spec, templates, sample)
    return problems


_Template = tuple[int, str, str, str]  # (step index, variant, part, source)


def _compiled_templates(spec: CampaignSpec) -> tuple[list[TemplateProblem], list[_Template]]:
    """The syntax problems, and every template that compiles, each once."""
    problems: list[TemplateProblem] = []
    templates: list[_Template] = []
    for index, step in enumerate(spec.steps):
        seen: set[tuple[str, str]] = set()
        for name in ["A", *(v.name for v in step.variants)]:
            for part, source in zip(("subject", "body", "html"), step.variant(name), strict=True):
                if source is None or (part, source) in seen:
                    continue
                seen.add((part, source))
                try:
                    _compile(source, part == "html")
                except TemplateSyntaxError as exc:
                    problems.append(
                        TemplateProblem(index + 1, name, part, f"syntax error on line {exc.lineno}: {exc.message}")
                    )
                    continue
                except (RecursionError, MemoryError) as exc:  # nested too deep for the parser
                    problems.append(TemplateProblem(index + 1, name, part, f"cannot be compiled: {type(exc).__name__}"))
                    continue
                templates.append((index, name, part, source))
    return problems, templates


def _render_all(
    spec: CampaignSpec, templates: list[_Template], leads: Iterable[tuple[str, Mapping[str, Any]]]
) -> list[TemplateProblem]:
    return [problem for label, lead in leads for problem in _render_lead(spec, templates, label, lead)]


def _render_lead(
    spec: CampaignSpec, templates: list[_Template], label: str, lead: Mapping[str, Any], progress: Any = None
) -> list[TemplateProblem]:
    """Render each template for one lead. `progress` (a shared array, in the child of
    `_render_isolated`) gets the template's number and one more render started, first."""
    problems: list[TemplateProblem] = []
    contexts = [context_for(spec, index + 1, lead, {}) for index in range(len(spec.steps))]
    for which, (index, name, part, source) in enumerate(templates):
        if progress is not None:
            progress[1], progress[2] = which, progress[2] + 1
        try:
            rendered = _render(source, contexts[index], part == "html")
        except TemplateProblemError as exc:
            problems.append(TemplateProblem(index + 1, name, part, str(exc), label))
            continue
        if part == "subject" and any(c in rendered for c in _LINE_BREAKS):
            problems.append(TemplateProblem(index + 1, name, part, "renders to more than one line", label))
    return problems


# -- check_campaign(isolated=True) -------------------------------------------------------------


def render_for_check(source: bytes, *, context: Mapping[str, Any], html: bool) -> str | None:
    """One render, in the child of `_render_isolated`: None, or the problem it has."""
    try:
        _render(source.decode("utf-8"), context, html)
    except TemplateProblemError as exc:
        return str(exc)
    return None


def _render_isolated(
    spec: CampaignSpec, templates: list[_Template], leads: list[tuple[str, dict[str, Any]]]
) -> list[TemplateProblem]:
    """`_render_all` with each render in a child process (`aicmo_actors.gateways.isolated`):
    one that takes longer than `CHECK_RENDER_TIMEOUT_S`, or that the child does not survive
    (more memory than `CHECK_MEMORY_HEADROOM_BYTES`, say), is reported at its template and
    the first lead it failed for, and the check goes on with a fresh child and the other
    templates. The callers are plain commands, so the
    worker's event loop runs in a thread of its own (which works inside a running loop too)."""
    if not templates or not leads:
        return []
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="template-check") as pool:
        return pool.submit(asyncio.run, _render_in_child(spec, templates, leads)).result()


async def _render_in_child(
    spec: CampaignSpec, templates: list[_Template], leads: list[tuple[str, dict[str, Any]]]
) -> list[TemplateProblem]:
    from aicmo_actors.gateways.isolated import IsolatedCrash, IsolatedTimeout, IsolatedWorker

    problems: list[TemplateProblem] = []
    stopped: set[int] = set()  # templates the child did not finish: not tried again for each lead
    worker = IsolatedWorker(
        "aicmo_actors.cam.templates:render_for_check",
        timeout_s=CHECK_RENDER_TIMEOUT_S,
        memory_headroom_bytes=CHECK_MEMORY_HEADROOM_BYTES,
        name="template-check",
    )
    async with worker:
        for label, lead in leads:
            contexts = [context_for(spec, index + 1, lead, {}) for index in range(len(spec.steps))]
            for number, (index, name, part, source) in enumerate(templates):
                if number in stopped:
                    continue
                try:
                    problem = await worker.call(source.encode("utf-8"), context=contexts[index], html=part == "html")
                except IsolatedTimeout:
                    stopped.add(number)
                    problem = f"template takes longer than {CHECK_RENDER_TIMEOUT_S:g} s to render (stopped)"
                except IsolatedCrash as exc:
                    stopped.add(number)
                    problem = (
                        f"rendering stopped the checking process ({str(exc)[:80]}): it needs more than "
                        f"{CHECK_MEMORY_HEADROOM_BYTES >> 20:,} MB of memory, or it crashed"
                    )
                if problem is not None:
                    problems.append(TemplateProblem(index + 1, name, part, problem, label))
                    continue
                if part == "subject":
                    rendered = _render(source, contexts[index], False)  # cheap, and known to finish
                    if any(c in rendered for c in _LINE_BREAKS):
                        problems.append(TemplateProblem(index + 1, name, part, "renders to more than one line", label))
    return problems
