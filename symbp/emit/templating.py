"""The Jinja environment: templates ship with the package, strict about missing values."""

from __future__ import annotations

import functools

import jinja2

from symbp.resources import templates_dir


@functools.cache
def environment(kind: str = "code") -> jinja2.Environment:
    """``code`` for Python templates; ``latex`` uses ``((* *))`` delimiters TeX never uses."""
    options = {
        "loader": jinja2.FileSystemLoader(str(templates_dir())),
        "undefined": jinja2.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
        "autoescape": False,
    }
    if kind == "latex":
        options.update(
            block_start_string="((*",
            block_end_string="*))",
            variable_start_string="(((",
            variable_end_string=")))",
            comment_start_string="((=",
            comment_end_string="=))",
        )
    return jinja2.Environment(**options)


def render(template: str, context: dict, kind: str = "code") -> str:
    return environment(kind).get_template(template).render(**context)
