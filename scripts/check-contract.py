#!/usr/bin/env python3
"""Checks real API responses and stream entries against the published contract.

    check-contract.py RESPONSES.jsonl ENTRIES.jsonl

RESPONSES lines: {"method": "post", "path": "/v1/tasks/{taskId}/assign", "status": 200, "body": ..., "empty": false}
ENTRIES lines:   {"stream": "taskAssignments", "fields": [["event_type", "task.created"], ...]}

Every response must be documented in schemas/openapi.yaml (path, method, status or default) and
validate against its schema; every documented operation must have been answered with a 2xx at
least once; every entry must validate against schemas/events/EVENT.schema.json (its payload
against the schema's contentSchema), and every event schema must have been seen.
Exits 1 listing every problem.
"""
import json
import pathlib
import sys

import jsonschema
import yaml

root = pathlib.Path(__file__).resolve().parent.parent
spec = yaml.safe_load((root / "schemas" / "openapi.yaml").read_text())
problems = []


def validate(instance, schema, where):
    document = dict(schema)
    document["components"] = spec["components"]
    try:
        jsonschema.Draft202012Validator(document).validate(instance)
    except jsonschema.ValidationError as error:
        location = "/".join(str(p) for p in error.absolute_path)
        problems.append(f"{where}: {error.message} at '{location}'")


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        parts = node["$ref"].lstrip("#/").split("/")
        node = spec
        for part in parts:
            node = node[part]
    return node


exercised = set()
for line in pathlib.Path(sys.argv[1]).read_text().splitlines():
    sample = json.loads(line)
    method, path, status = sample["method"].lower(), sample["path"], str(sample["status"])
    operation = spec["paths"].get(path, {}).get(method)
    where = f"{method.upper()} {path} -> {status}"
    if operation is None:
        problems.append(f"{where}: not in openapi.yaml")
        continue
    responses = operation["responses"]
    response = resolve(responses.get(status) or responses.get("default"))
    if response is None:
        problems.append(f"{where}: status not documented")
        continue
    if status.startswith("2"):
        exercised.add((path, method))
    content = response.get("content", {})
    if sample.get("empty", sample.get("body") is None):
        if "application/json" in content:
            problems.append(f"{where}: documented as JSON but the body is empty")
        continue
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        problems.append(f"{where}: a JSON body that is not documented")
        continue
    validate(sample["body"], schema, where)

for path, item in spec["paths"].items():
    for method in item:
        # WebSocket upgrades are exercised by the realtime tests over real sockets.
        websocket = isinstance(item.get(method), dict) and item[method].get("x-websocket")
        if method in ("get", "post", "put", "patch", "delete") and (path, method) not in exercised and not websocket:
            problems.append(f"{method.upper()} {path}: documented but never answered with a 2xx in the contract scenario")

seen = set()
for line in pathlib.Path(sys.argv[2]).read_text().splitlines():
    entry = json.loads(line)
    fields = dict((k, v) for k, v in entry["fields"])
    event_type = fields.get("event_type", "")
    where = f"{entry['stream']} {event_type}"
    path = root / "schemas" / "events" / f"{event_type}.schema.json"
    if not path.exists():
        problems.append(f"{where}: no schemas/events/{event_type}.schema.json")
        continue
    seen.add(event_type)
    schema = json.loads(path.read_text())
    try:
        jsonschema.Draft202012Validator(schema).validate(fields)
        jsonschema.Draft202012Validator(schema["properties"]["payload"]["contentSchema"]).validate(json.loads(fields["payload"]))
        json.loads(fields["metadata"])
    except (jsonschema.ValidationError, ValueError) as error:
        problems.append(f"{where}: {getattr(error, 'message', error)}")

for path in sorted((root / "schemas" / "events").glob("*.schema.json")):
    name = path.name[: -len(".schema.json")]
    if name not in seen:
        problems.append(f"event {name}: schema published but no such entry was written in the scenario")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"contract ok: {len(exercised)} operations, {len(seen)} event types")
