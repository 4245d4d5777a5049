"""mkdocs hooks: the REST reference (docs/api.md) generated from the app's OpenAPI document,
and links to repository files outside docs/ (`[bot](../examples/bot.py)`, right when the
pages are read on the forge) shown on the site as repository paths.

`docs/api.md` holds the prose and a `<!-- openapi -->` marker; at build time the marker is
replaced by every operation (grouped by tag, with parameters, request body and responses)
and every schema, taken from `create_app().openapi()`: the same document `/openapi.json`
serves, so the page cannot drift from the code.
"""

from __future__ import annotations

import re
from typing import Any

MARKER = "<!-- openapi -->"
METHODS = ("get", "post", "put", "patch", "delete")
OUTSIDE = re.compile(r"\[([^\]]+)\]\(\.\./([^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    # The site has no page for a repository file: name it instead of linking nowhere.
    markdown = OUTSIDE.sub(_repository_path, markdown)
    if page.file.src_uri != "api.md":
        return markdown
    return markdown.replace(MARKER, render(openapi_document()))


def _repository_path(link: re.Match[str]) -> str:
    text, path = link[1], link[2]
    return text if text.strip("`") == path else f"{text} (`{path}` in the repository)"


def openapi_document() -> dict[str, Any]:
    from cryptopulse.api.app import create_app
    from cryptopulse.settings import Settings

    document: dict[str, Any] = create_app(Settings(docs_enabled=True)).openapi()
    return document


def render(doc: dict[str, Any]) -> str:
    """Markdown for every operation and schema of an OpenAPI 3.1 document."""
    groups: dict[str, list[str]] = {}
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["other"])[0]
                groups.setdefault(tag, []).append(_operation(method, path, op))
    out = [f"OpenAPI {doc['openapi']}, API version {doc['info']['version']}.\n"]
    for tag in sorted(groups):
        out.append(f"## {tag.capitalize()}\n")
        out.extend(groups[tag])
    out.append("## Schemas\n")
    for name, schema in sorted(doc.get("components", {}).get("schemas", {}).items()):
        out.append(_schema(name, schema))
    return "\n".join(out)


def _operation(method: str, path: str, op: dict[str, Any]) -> str:
    lines = [f"### `{method.upper()} {path}`\n", f"**{op.get('summary', '')}**\n"]
    if op.get("description"):
        lines.append(op["description"].strip() + "\n")
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            desc = _cell(p.get("description") or p.get("schema", {}).get("description", ""))
            kind = _type(p.get("schema", {}))
            lines.append(f"| `{p['name']}` | {p['in']} | {kind} | {p.get('required', False)} | {desc} |")
        lines.append("")
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        lines.append(f"Request body (`{media}`): {_type(content.get('schema', {}))}\n")
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, response in op.get("responses", {}).items():
        content = response.get("content", {})
        kinds = ", ".join(f"{_type(c.get('schema', {}))} `{m}`" for m, c in content.items())
        lines.append(f"| {status} | {_cell(response.get('description', ''))} | {kinds} |")
    return "\n".join(lines) + "\n"


def _schema(name: str, schema: dict[str, Any]) -> str:
    lines = [f"### {name} {{ #schema-{_anchor(name)} }}\n"]
    if schema.get("description"):
        lines.append(_cell(schema["description"]) + "\n")
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    if props:
        lines += ["| field | type | required | description |", "|---|---|---|---|"]
        for field, prop in props.items():
            desc = _cell(prop.get("description", ""))
            lines.append(f"| `{field}` | {_type(prop)} | {field in required} | {desc} |")
    elif "enum" in schema:
        lines.append("One of " + ", ".join(f"`{v}`" for v in schema["enum"]) + ".")
    return "\n".join(lines) + "\n"


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#schema-{_anchor(name)})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " \\| ".join(_type(s) for s in schema[key])
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return f"map[{_type(extra) if isinstance(extra, dict) else 'any'}]"
    return str(kind)


def _anchor(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower())


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
