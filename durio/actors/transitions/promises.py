"""A workflow's durable promises: awaiting, peeking at and completing one (each answers its invocation's outbox)."""

from __future__ import annotations

import typing

from durio.actors.effects import Effects
from durio.actors.transitions.base import TransitionsBase
from durio.journal import entries as e
from durio.sdk.errors import ErrorCode
from durio.storage.records import InvocationRecord, PromiseRecord, ReplyTo
from durio.storage.txn import Txn


class Promises(TransitionsBase):
    def _get_promise(self, txn: Txn, record: InvocationRecord, name: str, completion_id: int, fx: Effects) -> None:
        """Answer with the promise's result, or once it is completed."""
        service, key = record.target.service, typing.cast(str, record.target.key)
        promise = txn.get_promise(service, key, name)
        if promise is not None:
            self._send_to(txn, record.id, e.Completion(completion_id=completion_id, result=promise.result), fx)
        else:
            txn.add_promise_waiter(service, key, name, self.seq.next(), ReplyTo(record.id, completion_id))

    def _peek_promise(self, txn: Txn, record: InvocationRecord, name: str, completion_id: int, fx: Effects) -> None:
        """Answer with the promise's result now: the void result while it is not completed."""
        promise = txn.get_promise(record.target.service, typing.cast(str, record.target.key), name)
        result = None if promise is None else promise.result
        self._send_to(txn, record.id, e.Completion(completion_id=completion_id, result=result), fx)

    def _complete_promise(
        self, txn: Txn, record: InvocationRecord, name: str, result: bytes | e.Failure, completion_id: int, fx: Effects
    ) -> None:
        """Complete the promise and answer its waiters; the completing invocation is answered with a 409
        failure if it was completed already, else with the void result."""
        service, key = record.target.service, typing.cast(str, record.target.key)
        answer: e.Failure | None = None
        if txn.get_promise(service, key, name) is not None:
            answer = e.Failure(ErrorCode.CONFLICT, f"the promise '{name}' of {service}/{key} is already completed")
        else:
            txn.put_promise(service, key, name, PromiseRecord(result))
            for waiter in txn.take_promise_waiters(service, key, name):
                self._send_to(txn, waiter.invocation_id, e.Completion(completion_id=waiter.completion_id, result=result), fx)
        self._send_to(txn, record.id, e.Completion(completion_id=completion_id, result=answer), fx)
