"""How the `durio` command prints: aligned tables and journal timelines for humans, JSON for scripts."""

from __future__ import annotations

import json
import typing


def print_json(value: typing.Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def table(rows: list[dict[str, typing.Any]], columns: list[tuple[str, str]]) -> str:
    """Rows as an aligned text table; `columns` are (key, header) pairs."""
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(header), *(len(line[i]) for line in cells)) for i, (_, header) in enumerate(columns)]
    lines = ["  ".join(header.ljust(widths[i]) for i, (_, header) in enumerate(columns)).rstrip()]
    for line in cells:
        lines.append("  ".join(value.ljust(widths[i]) for i, value in enumerate(line)).rstrip())
    return "\n".join(lines)


def sql_table(result: dict[str, typing.Any]) -> str:
    """A `POST /query` answer as a table, columns in the query's order, with a line if the limit cut it."""
    columns = result.get("columns") or (list(result["rows"][0]) if result.get("rows") else [])
    text = table(result.get("rows", []), [(name, name.upper()) for name in columns]) if columns else "(none)"
    rows = len(result.get("rows", []))
    text += f"\n({rows} row{'s' if rows != 1 else ''}{', truncated at the limit' if result.get('truncated') else ''})"
    return text


def _cell(value: typing.Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def describe_invocation(view: dict[str, typing.Any]) -> str:
    lines = [
        f"invocation  {view['id']}",
        f"target      {view['target']}",
        f"status      {view['status']}",
        f"created     {view['created_at']}",
        f"modified    {view['modified_at']}",
        f"retries     {view['retry_count']}",
    ]
    if view.get("scheduled_at"):
        lines.append(f"scheduled   {view['scheduled_at']}")
    if view.get("invoked_by"):
        lines.append(f"invoked by  {view['invoked_by']}")
    if view.get("idempotency_key"):
        lines.append(f"idem. key   {view['idempotency_key']}")
    if view.get("awaiting"):
        lines.append(f"waiting for {', '.join(view['awaiting'])}")
    failure = view.get("last_failure")
    if failure:
        where = (
            f" (at {failure['related_entry_type']} '{failure['related_entry_name']}')"
            if failure.get("related_entry_name")
            else ""
        )
        lines.append(f"last error  [{failure['code']}] {failure['message']}{where}")
    if view.get("completion_result") == "success":
        lines.append(f"output      {json.dumps(view.get('output'), ensure_ascii=False)}")
    elif view.get("completion_result") == "failure":
        failure = view["completion_failure"]
        lines.append(f"failed      [{failure['code']}] {failure['message']}")
    lines.append("")
    lines.append("journal")
    for entry in view.get("journal", []):
        lines.append("  " + _journal_line(entry))
    return "\n".join(lines)


def _journal_line(entry: dict[str, typing.Any]) -> str:
    kind = entry["type"]
    text = f"{entry['index']:>3}  {kind:<16}"
    if entry.get("name"):
        text += f" {entry['name']}"
    for field in ("target", "key", "promise", "awakeable_id", "target_invocation_id"):
        if entry.get(field):
            text += f" {entry[field]}"
    if entry.get("callee_id"):
        text += f" -> {entry['callee_id']}"
    if entry.get("wake_up_at"):
        text += f" until {entry['wake_up_at']}"
    if "failure" in entry:
        text += f"  FAILED [{entry['failure']['code']}] {entry['failure']['message']}"
    elif "value" in entry and kind not in ("input",):
        text += f"  = {json.dumps(entry['value'], ensure_ascii=False)}"
    if entry.get("duration_ms") is not None:
        text += f"  ({entry['duration_ms']} ms)"
    return text
