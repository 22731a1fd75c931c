#!/usr/bin/env python3
"""Validates realtime WebSocket messages against schemas/realtime.schema.json.

Usage: check-realtime.py MESSAGES.jsonl
MESSAGES lines: {"direction": "server" | "client", "message": {...}}
Prints one line per invalid message and exits 1 if there is any.
"""
import json
import pathlib
import sys

import jsonschema

root = pathlib.Path(__file__).resolve().parent.parent
schema = json.loads((root / "schemas" / "realtime.schema.json").read_text())
problems = []
for number, line in enumerate(pathlib.Path(sys.argv[1]).read_text().splitlines(), 1):
    sample = json.loads(line)
    part = "serverMessage" if sample["direction"] == "server" else "clientMessage"
    wrapped = {"$ref": f"#/$defs/{part}", "$defs": schema["$defs"]}
    errors = list(jsonschema.Draft202012Validator(wrapped).iter_errors(sample["message"]))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        problems.append(f"line {number} ({sample['direction']} {sample['message'].get('type')}): {best.message}")
for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
