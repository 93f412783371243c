#!/usr/bin/env python3
"""Structural checks of crates/paygate/src, run by .ci/run:

1. Layering: a module imports only from layers below its own. The layers, lowest first, are
   in LAYERS: a module may import only from modules on a lower line; modules on one line may
   not import each other. `app` (the composition root) and `main` see everything.
2. No HTML in Rust: no string literal holds an HTML tag (pages are askama templates).
3. No source file over 800 lines.
"""
import pathlib
import re
import sys

LAYERS = [
    ["batch", "clock", "config"],  # utilities: no crate imports
    ["store"],  # rows and statements
    ["processor", "queue"],  # the connector; queues and the worker (no service)
    ["audit", "context", "idempotent", "views", "liveness"],  # what services share; process liveness
    ["merchants"],  # services, each above the ones it calls
    ["webhooks"],
    ["orders"],
    ["payment_links"],
    ["payments"],
    ["refunds"],
    ["settlements"],
    ["http", "mail"],  # adapters
    ["pages"],
    ["app"],  # the composition root
    ["lib", "main"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "crates/paygate/src")


RAW = re.compile(r'r(#*)"')
WORD = re.compile(r"\w")
CHAR = re.compile(r"'(\\.[^']*|[^\\'])'")


HTML_TAG = re.compile(r"<(!doctype|/?[a-z][a-z0-9]*)(\s[^<>]*)?/?>", re.I)
MAX_LINES = 800


def strip(text, strings=None):
    """The code without comments, strings and character literals (one pass, as the lexer
    reads them), so a path in a doc comment or a string does not count. The string literals
    are appended to `strings` when given."""
    out, i, n = [], 0, len(text)
    while i < n:
        c, nxt = text[i], text[i + 1 : i + 2]
        if c == "/" and nxt == "/":
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif c == "/" and nxt == "*":
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and RAW.match(text, i) and not (i and WORD.match(text, i - 1)):
            hashes = RAW.match(text, i).group(1)
            begin = i + 2 + len(hashes)
            close = text.find('"' + hashes, begin)
            i = n if close < 0 else close + 1 + len(hashes)
            if strings is not None:
                strings.append(text[begin:close])
            out.append('""')
        elif c == '"':
            begin = i = i + 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if strings is not None:
                strings.append(text[begin:i])
            i += 1
            out.append('""')
        elif c == "'" and CHAR.match(text, i):
            i = CHAR.match(text, i).end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def first_segments(tree):
    """The first path segment of every path in a `use crate::{…}` tree."""
    tree = tree.strip()
    if not tree.startswith("{"):
        return {re.split(r"\W", tree, maxsplit=1)[0]}
    out, depth, start = set(), 0, 1
    for i, c in enumerate(tree):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if (c == "," and depth == 1) or (c == "}" and depth == 0):
            part = tree[start:i].strip()
            if part:
                out.add(re.split(r"\W", part, maxsplit=1)[0])
            start = i + 1
    return out


def imports(text):
    found = set()
    for m in re.finditer(r"\buse\s+crate::(.*?);", text, flags=re.S):
        found |= first_segments(m.group(1))
    for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*)", text):
        found.add(m.group(1))
    found.discard("self")
    return found


def module_of(path):
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".rs")


def main():
    failures = []
    for path in sorted(ROOT.rglob("*.rs")):
        module = module_of(path)
        if module not in RANK:
            failures.append(f"{path}: module `{module}` has no layer in .ci/structure.py")
            continue
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_LINES:
            failures.append(f"{path}: {lines} lines (at most {MAX_LINES})")
        strings = []
        code = strip(text, strings)
        for literal in strings:
            if tag := HTML_TAG.search(literal):
                failures.append(f"{path}: HTML in a string literal: {tag.group(0)!r}")
        for dep in sorted(imports(code)):
            if dep == module or dep not in RANK:
                continue
            if RANK[dep] >= RANK[module]:
                failures.append(
                    f"{path}: `{module}` imports `crate::{dep}`, which is not below it"
                )
    for f in failures:
        print(f)
    if failures:
        print(f"structure: {len(failures)} problem(s); the rules are in .ci/structure.py")
        return 1
    files = sum(1 for _ in ROOT.rglob("*.rs"))
    print(f"structure: {files} files; imports point down, no HTML in Rust, none too long")
    return 0


if __name__ == "__main__":
    sys.exit(main())
