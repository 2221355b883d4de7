"""Registering a deployment (its removal, which checks what still needs it, is durio.actors.deployment_removal)."""

from __future__ import annotations

import typing

from durio.actors.effects import Applied, Effects
from durio.actors.transitions.base import TransitionsBase, op_builder
from durio.actors.transitions.outcomes import Op
from durio.storage.txn import Txn


class Deployments(TransitionsBase):
    @op_builder
    def save_deployment(self, record: dict[str, typing.Any], replaces: str | None) -> Op:
        """Store a deployment's record; one registered again at the same address replaces its old id's record."""

        def op(txn: Txn) -> Applied:
            if replaces is not None and replaces != record["id"]:
                txn.delete_deployment(replaces)
            txn.put_deployment(record["id"], record)
            return Applied(True, Effects())

        return op
