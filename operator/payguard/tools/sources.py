"""Owns reading manifests from `-f FILE|DIR|-`: every YAML document, where it came from, and the line of
each field, so a finding can say `file:line`."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from payguard.kinds import PAYMENT_SERVICES

FieldPath = tuple[str | int, ...]
YAML_SUFFIXES = (".yaml", ".yml", ".json")


class SourceError(Exception):
    """A file that cannot be read (`unreadable`) or is not YAML; the message names the file and line."""

    def __init__(self, source: str, message: str, *, line: int = 1, unreadable: bool = False) -> None:
        super().__init__(f"{source}:{line}: {message}" if not unreadable else f"{source}: {message}")
        self.source = source
        self.line = line
        self.message = message
        self.unreadable = unreadable


@dataclass(frozen=True)
class Document:
    """One YAML document of an input file, with the 1-based line of every field path in it."""

    source: str
    index: int  # position of the document in its file, from 0
    body: Any
    lines: Mapping[FieldPath, int] = field(default_factory=dict)

    def line_of(self, path: FieldPath) -> int:
        """The line of the field, else of its nearest parent that the file has (a missing field's parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1

    @property
    def is_payment_service(self) -> bool:
        return (
            isinstance(self.body, dict)
            and self.body.get("kind") == PAYMENT_SERVICES.kind
            and str(self.body.get("apiVersion", "")).startswith(f"{PAYMENT_SERVICES.group}/")
        )


def read_documents(paths: list[str]) -> list[Document]:
    """Every non-empty document of the named files; a directory means its *.yaml/*.yml/*.json, sorted."""
    documents: list[Document] = []
    for name in paths:
        for source, text in _texts(name):
            documents.extend(parse_documents(text, source=source))
    return documents


def _texts(name: str) -> Iterator[tuple[str, str]]:
    if name == "-":
        yield "<stdin>", sys.stdin.read()
        return
    path = Path(name)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(YAML_SUFFIXES))
    else:
        files = [path]
    for file in files:
        try:
            yield str(file), file.read_text()
        except OSError as error:
            raise SourceError(str(file), error.strerror or str(error), unreadable=True) from None


def parse_documents(text: str, *, source: str) -> list[Document]:
    loader = yaml.SafeLoader(text)
    documents = []
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[FieldPath, int] = {}
            _index_lines(node, (), lines)
            body = loader.construct_document(node)
            if body is not None:
                documents.append(Document(source=source, index=index, body=body, lines=lines))
            index += 1
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(error, "problem", None) or str(error)
        raise SourceError(source, f"not valid YAML: {problem}", line=line) from None
    finally:
        loader.dispose()
    return documents


def _index_lines(node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines[(*path, key.value)] = key.start_mark.line + 1
                _index_lines(value, (*path, key.value), lines)
                lines[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            _index_lines(item, (*path, position), lines)


def path_keys(path: str) -> FieldPath:
    """`spec.workloads[1].name` -> ("spec", "workloads", 1, "name"), the keys of a Document's line index."""
    keys: list[str | int] = []
    for part in path.replace("]", "").split("."):
        name, *indexes = part.split("[")
        if name:
            keys.append(name)
        keys.extend(int(index) for index in indexes if index.isdigit())
    return tuple(keys)


def path_text(keys: FieldPath) -> str:
    """("spec", "workloads", 1, "name") -> `spec.workloads[1].name`, as the API server writes field paths."""
    text = ""
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text
