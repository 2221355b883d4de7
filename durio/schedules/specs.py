"""What a schedule is, and when its ticks fall.

Cron expressions are evaluated by cronsim in the schedule's zoneinfo time zone. cronsim follows
Debian's cron through daylight-saving changes: a job at a fixed time that falls in the skipped
hour runs when the clock jumps (02:30 becomes 03:00), one in the repeated hour runs once, and
expressions finer than an hour (`*/30 * * * *`) keep running in elapsed time. (croniter, the
other maintained choice, needs pytz-era shims for the same and leaves the repeated hour to the
caller; hand-written cron parsing is how schedules get DST wrong.) An `every` interval counts
from `start_at`, else from the Unix epoch, so `every 2s` ticks on even seconds whenever it was
created and across restarts.

Everything here is pure: times are integer milliseconds since the epoch.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import typing
import zoneinfo
from dataclasses import asdict, dataclass

from cronsim import CronSim, CronSimError

from durio.journal.entries import Target

OVERLAP_POLICIES = ("skip", "buffer_one", "allow_all", "cancel_other")
DEFAULT_OVERLAP: typing.Literal["skip"] = "skip"  # Temporal's default too: a slow handler never piles up invocations
DEFAULT_CATCHUP_WINDOW_MS = 3_600_000  # ticks missed while durio was down fire if less than an hour late
MIN_EVERY_MS = 1000  # cron's granularity is a second (its optional sixth field); so is an interval's
MIN_CATCHUP_WINDOW_MS = 1000  # a window shorter than timer latency would skip ticks that were merely busy
NEVER_MS = 1 << 62  # beyond any tick: "no end"

TargetKind = typing.Literal["service", "object", "workflow"]


class SpecError(ValueError):
    """A schedule field that cannot be used; `field` names it for the 400."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What a schedule's creator said. Two specs are the same schedule when they are equal."""

    id: str
    target: Target  # an object's fixed key is in it; a workflow's key is made per tick
    target_kind: TargetKind
    cron: str | None = None  # exactly one of cron and every_ms
    every_ms: int | None = None
    timezone: str = "UTC"
    input: bytes | None = None  # the JSON body of each tick's invocation; None: the tick's time
    overlap: str = DEFAULT_OVERLAP
    catchup_window_ms: int = DEFAULT_CATCHUP_WINDOW_MS
    jitter_ms: int = 0
    start_at_ms: int | None = None
    end_at_ms: int | None = None
    source: typing.Literal["api", "code"] = "api"

    def to_stored(self) -> dict[str, typing.Any]:
        fields = asdict(self)
        fields["target"] = [self.target.service, self.target.handler, self.target.key]
        return fields

    @classmethod
    def from_stored(cls, fields: dict[str, typing.Any]) -> "ScheduleSpec":
        known = {name: value for name, value in fields.items() if name in cls.__dataclass_fields__}
        service, handler, key = known.pop("target")
        return cls(target=Target(service, handler, key), **known)

    @property
    def target_path(self) -> str:
        """As the admin API writes it: Service/handler, Object/key/handler or Workflow/handler."""
        target = self.target
        return (
            f"{target.service}/{target.key}/{target.handler}" if target.key is not None else f"{target.service}/{target.handler}"
        )

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zone_named(self.timezone)

    # ------------------------------------------------------------ ticks

    def first_tick_after(self, after_ms: int) -> int | None:
        """The first tick strictly after `after_ms` (and not before start_at), or None when there is none left."""
        if self.start_at_ms is not None and after_ms < self.start_at_ms:
            after_ms = self.start_at_ms - 1
        tick: int | None
        if self.every_ms is not None:
            anchor = self.start_at_ms or 0
            tick = anchor + ((after_ms - anchor) // self.every_ms + 1) * self.every_ms
        else:
            tick = _next_cron_tick(typing.cast(str, self.cron), self.zone, after_ms)
        if tick is None or tick > (self.end_at_ms if self.end_at_ms is not None else NEVER_MS):
            return None
        return tick

    def ticks(self, after_ms: int, until_ms: int, limit: int) -> list[int]:
        """The ticks in (after_ms, until_ms], at most `limit` of them."""
        found: list[int] = []
        tick = self.first_tick_after(after_ms)
        while tick is not None and tick <= until_ms and len(found) < limit:
            found.append(tick)
            tick = self.first_tick_after(tick)
        return found

    def jitter_for(self, tick_ms: int) -> int:
        """How long after its tick a tick fires: random-looking, but the same every time it is asked."""
        if self.jitter_ms <= 0:
            return 0
        digest = hashlib.sha256(f"{self.id}\x00{tick_ms}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % (self.jitter_ms + 1)

    def local_time(self, tick_ms: int) -> str:
        """A tick as RFC 3339 in the schedule's time zone, with its offset (the daylight-saving time shows)."""
        return local_time(tick_ms, self.zone)


@functools.lru_cache(maxsize=256)
def zone_named(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone; SpecError for one that does not exist."""
    if not isinstance(name, str) or not name:
        raise SpecError("timezone", "must be an IANA time zone name such as 'Europe/Berlin' or 'UTC'")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SpecError(
            "timezone", f"{name!r} is not a time zone known to the IANA database (e.g. 'Europe/Berlin', 'UTC')"
        ) from None


def check_cron(expression: str) -> str:
    """The expression if cronsim can evaluate it; SpecError saying which field is wrong otherwise."""
    if not isinstance(expression, str) or not expression.strip():
        raise SpecError("cron", "must be a cron expression such as '*/5 * * * *'")
    if expression.strip().startswith("@"):
        raise SpecError(
            "cron", f"{expression!r}: nicknames such as @daily are not supported; write the five fields ('0 0 * * *')"
        )
    try:
        simulation = CronSim(expression, datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))
    except CronSimError as exc:
        raise SpecError(
            "cron",
            f"{expression!r} is not a cron expression: {exc} "
            "(five fields: minute hour day-of-month month day-of-week, or six with seconds first)",
        ) from None
    try:
        next(simulation)
    except StopIteration:
        raise SpecError("cron", f"{expression!r} never matches a date") from None
    return expression


def _next_cron_tick(expression: str, zone: zoneinfo.ZoneInfo, after_ms: int) -> int | None:
    start = datetime.datetime.fromtimestamp(after_ms / 1000, tz=zone)
    try:
        moment = next(CronSim(expression, start))
    except StopIteration:
        return None
    tick = int(moment.timestamp() * 1000)
    # cronsim works in whole seconds from the second `after_ms` falls in: never answer a tick at or before it.
    return tick if tick > after_ms else _next_cron_tick(expression, zone, tick)


def local_time(ms: int, zone: zoneinfo.ZoneInfo) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=zone)
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z") if zone.key == "UTC" else text


def format_duration_ms(ms: int) -> str:
    """2000 -> '2s', 5_400_000 -> '1h30m', 1500 -> '1s500ms': the admin API's own duration form."""
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
