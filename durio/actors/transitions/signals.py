"""Signals and awakeables: completing one from outside (the ingress) or from another invocation, once."""

from __future__ import annotations

from durio.actors.effects import Applied, Effects
from durio.actors.transitions.base import TransitionsBase, op_builder
from durio.actors.transitions.outcomes import CompleteSignalOutcome, Op
from durio.ids import parse_awakeable_id
from durio.journal import entries as e
from durio.storage.txn import Txn


class Signals(TransitionsBase):
    @op_builder
    def complete_awakeable(self, awakeable_id: str, result: bytes | e.Failure) -> Op:
        """Resolve or reject an awakeable from outside (the ingress)."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            target_id, signal_index = parse_awakeable_id(awakeable_id)
            return Applied(self._complete_signal(txn, target_id, signal_index, result, fx), fx)

        return op

    def _complete_signal(
        self, txn: Txn, target_id: str, signal_index: int, result: e.Result, fx: Effects
    ) -> CompleteSignalOutcome:
        record = txn.get_invocation(target_id)
        if record is None:
            return CompleteSignalOutcome.NOT_FOUND
        if txn.signal_completed(target_id, signal_index):
            return CompleteSignalOutcome.ALREADY_COMPLETED
        if record.is_completed:
            return CompleteSignalOutcome.INVOCATION_COMPLETED
        txn.mark_signal_completed(target_id, signal_index)
        self._send_to(txn, target_id, e.Signal(signal_index=signal_index, result=result), fx)
        return CompleteSignalOutcome.DONE
