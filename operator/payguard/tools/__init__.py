"""Owns the subcommands beyond `run` (render, check, diff, explain, graph, evidence), one module each, all
on the operator's own parser, renderer and posture judgments."""
