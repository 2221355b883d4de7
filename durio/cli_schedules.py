"""`durio schedules create|list|describe|pause|resume|trigger|backfill|delete`: the admin API's /schedules."""

from __future__ import annotations

import argparse
import json
import typing
from urllib.parse import quote

from durio.admin_client import AdminClient
from durio.cli_output import print_json, table

AdminCommand = typing.Callable[[typing.Any, str, str], argparse.ArgumentParser]


def add_schedule_commands(commands: typing.Any, admin_command: AdminCommand) -> None:
    schedules = commands.add_parser("schedules", help="cron and interval schedules").add_subparsers(dest="action", required=True)
    create = admin_command(schedules, "create", "create a schedule (POST /schedules)")
    create.add_argument("id", help="the schedule's id: letters, digits and . _ : @ -")
    timing = create.add_mutually_exclusive_group(required=True)
    timing.add_argument("--cron", help="a cron expression, e.g. '*/5 * * * *' (six fields: seconds first)")
    timing.add_argument("--every", help="an interval, e.g. 30s, 1h30m, PT10S")
    create.add_argument("--target", required=True, help="Service/handler, Object/key/handler or Workflow/handler")
    create.add_argument("--timezone", default=None, help="an IANA time zone for --cron (default UTC)")
    create.add_argument("--input", default=None, help="the JSON input of each tick's invocation (default: the tick's time)")
    create.add_argument(
        "--overlap",
        choices=("skip", "buffer_one", "allow_all", "cancel_other"),
        default=None,
        help="when a tick comes while the last one still runs (default skip)",
    )
    create.add_argument("--catchup-window", default=None, help="how late a missed tick may still fire (default 1h)")
    create.add_argument("--jitter", default=None, help="fire each tick up to this much after its time")
    create.add_argument("--start-at", default=None, help="RFC 3339: no tick before")
    create.add_argument("--end-at", default=None, help="RFC 3339: no tick after")
    create.add_argument("--paused", action="store_true", help="create it paused")
    create.add_argument("--force", action="store_true", help="replace a different schedule of the same id")
    admin_command(schedules, "list", "list the schedules")
    for action, help_text in (
        ("describe", "next fires, latest fires with their invocations and outcomes, skips"),
        ("pause", "stop firing (ticks meanwhile are skipped)"),
        ("resume", "fire again from now"),
        ("trigger", "fire a tick now"),
        ("delete", "delete the schedule (what it fired runs on)"),
    ):
        admin_command(schedules, action, help_text).add_argument("id")
    backfill = admin_command(schedules, "backfill", "fire the past ticks in a range that have not fired")
    backfill.add_argument("id")
    backfill.add_argument("--from", dest="from_", required=True, help="RFC 3339: the first tick time")
    backfill.add_argument("--to", required=True, help="RFC 3339: the last tick time")
    backfill.add_argument(
        "--overlap",
        choices=("skip", "buffer_one", "allow_all", "cancel_other"),
        default=None,
        help="overlap policy among the backfilled ticks (default allow_all)",
    )


class ScheduleCommandError(Exception):
    """Bad command-line input, said before anything is sent."""


def run_schedule_command(client: AdminClient, args: argparse.Namespace) -> None:
    path = f"/schedules/{quote(args.id, safe='')}" if getattr(args, "id", None) is not None else "/schedules"
    if args.action == "create":
        body: dict[str, typing.Any] = {"id": args.id, "target": args.target}
        for name in ("cron", "every", "timezone", "overlap", "catchup_window", "jitter", "start_at", "end_at"):
            if getattr(args, name) is not None:
                body[name] = getattr(args, name)
        if args.input is not None:
            try:
                body["input"] = json.loads(args.input)
            except ValueError as exc:
                raise ScheduleCommandError(f"--input is not JSON: {exc}") from None
        if args.paused:
            body["paused"] = True
        if args.force:
            body["force"] = True
        view = client.request("POST", "/schedules", body)
        print_json(view) if args.json else print(
            f"schedule {view['id']}: next fires {', '.join(view['next_fires'][:3]) or '(none)'}"
        )
    elif args.action == "list":
        result = client.get("/schedules")
        if args.json:
            print_json(result)
            return
        rows = [
            dict(
                view,
                when=view["cron"] or f"every {view['every']}",
                state="paused" if view["paused"] else "active",
                last=_last_fire(view.get("last_fire")),
            )
            for view in result["schedules"]
        ]
        print(
            table(
                rows,
                [
                    ("id", "ID"),
                    ("when", "WHEN"),
                    ("timezone", "TZ"),
                    ("target", "TARGET"),
                    ("state", "STATE"),
                    ("next_fire_at", "NEXT"),
                    ("last", "LAST FIRE"),
                    ("fired", "FIRED"),
                    ("skipped", "SKIPPED"),
                ],
            )
        )
    elif args.action == "describe":
        view = client.get(path)
        print_json(view) if args.json else print(describe_schedule(view))
    elif args.action in ("pause", "resume", "trigger"):
        result = client.request("PATCH", f"{path}/{args.action}")
        if args.json:
            print_json(result)
        elif args.action == "trigger":
            print(f"{args.id}: {result['outcome']}" + (f" {result['invocation_id']}" if result.get("invocation_id") else ""))
        else:
            print(f"{args.id}: {'paused' if result['paused'] else 'active'}")
    elif args.action == "backfill":
        body = {"from": args.from_, "to": args.to}
        if args.overlap is not None:
            body["overlap"] = args.overlap
        result = client.request("POST", f"{path}/backfill", body)
        if args.json:
            print_json(result)
        else:
            print(
                f"{args.id}: {result['fired']} fired, {result['already_fired']} had fired already, {result['skipped']} skipped, "
                f"{result['buffered']} buffered"
            )
    elif args.action == "delete":
        result = client.request("DELETE", path)
        print_json(result) if args.json else print(f"{args.id}: deleted")


def _last_fire(fire: dict[str, typing.Any] | None) -> str | None:
    if fire is None:
        return None
    return f"{fire['tick']} {fire.get('outcome') or fire['status']}"


def describe_schedule(view: dict[str, typing.Any]) -> str:
    lines = [
        f"schedule    {view['id']} ({view['source']}{', paused' if view['paused'] else ''})",
        f"when        {view['cron'] or 'every ' + view['every']} in {view['timezone']}",
        f"target      {view['target']}",
        f"overlap     {view['overlap']}; catch-up window {view['catchup_window']}; jitter {view['jitter']}",
        f"fired       {view['fired']}; skipped {view['skipped']}",
        "next fires  " + (", ".join(view["next_fires"]) or "(none)"),
    ]
    if view["running"]:
        lines.append("running     " + ", ".join(view["running"]))
    if view["buffered"]:
        lines.append(f"buffered    {view['buffered']['tick']}")
    lines.append("last fires")
    for fire in view["last_fires"]:
        failure = fire.get("failure")
        outcome = fire.get("outcome") or fire["status"]
        lines.append(
            f"  {fire['tick']}  {fire['invocation_id']}  {fire['by']}  {outcome}"
            + (f"  [{failure['code']}] {failure['message']}" if failure else "")
        )
    if view["last_skips"]:
        lines.append("last skips")
        for skip in view["last_skips"]:
            span = f"{skip['tick']} .. {skip['until']}" if "until" in skip else skip["tick"]
            lines.append(f"  {span}  x{skip['count']}  {skip['reason']}")
    return "\n".join(lines)
