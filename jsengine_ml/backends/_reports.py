"""Turning an engine's ``Name: message\\n<stack>`` error report into jsengine-ml exceptions."""

from __future__ import annotations

import re

from ..errors import JSError, JSSyntaxError

_NAMED = re.compile(r"^(?P<name>[A-Za-z_$][\w$]*): (?P<message>.*)$")


def error_from_report(text: str, syntax_line: re.Pattern[str]) -> JSError:
    """Build a JSError (JSSyntaxError for SyntaxError) from a report; ``syntax_line`` finds the line number."""
    first, _, rest = text.partition("\n")
    named = _NAMED.match(first)
    name, message = (named["name"], named["message"]) if named else ("Error", f"non-error value thrown: {first}")
    stack = rest.rstrip()
    report = f"{first}\n{stack}".rstrip()
    if name == "SyntaxError":
        line = syntax_line.search(text)
        return JSSyntaxError(
            report, line=int(line.group(1)) if line else None, js_name=name, js_message=message, js_stack=stack
        )
    return JSError(report, js_name=name, js_message=message, js_stack=stack)


def with_filename(exc: JSError, placeholder: re.Pattern[str], filename: str) -> JSError:
    """Engines that name every script alike (``<input>``, ``eval``): put the real file name in the error."""

    def rename(text: str) -> str:
        return placeholder.sub(lambda m: m.group(0).replace(m.group("name"), filename), text)

    if isinstance(exc, JSSyntaxError):
        return JSSyntaxError(rename(str(exc)), filename=filename, line=exc.line, js_name=exc.js_name,
                             js_message=exc.js_message, js_stack=rename(exc.js_stack))
    return type(exc)(rename(str(exc)), js_name=exc.js_name, js_message=exc.js_message, js_stack=rename(exc.js_stack))
