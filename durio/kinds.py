"""The kinds of services and handlers, Restate's names, as every layer uses them.

They are `StrEnum`s: a member is the very string it names, so records, JSON and the manifest hold the
same bytes as before these types existed, and a member compares equal to its string. Stored records are
read back as members (durio.storage.records), so code compares against these and never a literal.
"""

from __future__ import annotations

import enum


class ServiceKind(enum.StrEnum):
    SERVICE = "service"  # stateless; handlers run concurrently
    OBJECT = "object"  # a virtual object: keyed state, exclusive handlers one at a time per key
    WORKFLOW = "workflow"  # a keyed run that happens once per key, plus shared handlers beside it


class HandlerKind(enum.StrEnum):
    """A keyed service's handler kind; a plain service's handlers have none (None)."""

    EXCLUSIVE = "exclusive"  # holds its key: one at a time per key, in arrival order
    SHARED = "shared"  # reads the key's state beside whatever holds it
    WORKFLOW = "workflow"  # the workflow's run: once per key, exclusive
