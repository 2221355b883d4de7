"""Workflows: a sign-up that runs once per user and waits for the emailed confirmation link.

Run it, then click the link: the workflow's log prints the exact curl line.
  curl localhost:8080/restate/send/SignupWorkflow/alice@example.com/run --json '{"name": "Alice"}'
  curl localhost:8080/restate/call/SignupWorkflow/alice@example.com/status
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import durio as restate
from utils import log

signup_workflow = restate.Workflow("SignupWorkflow")


@dataclass
class Signup:
    name: str


def create_user(email: str, name: str) -> str:
    log(f">>> Created user {name} <{email}>")
    return f"user-{email}"


def send_confirmation_email(email: str, secret: str) -> None:
    log(f">>> Sent confirmation email to {email}. Confirm with:")
    log(f"curl localhost:8080/restate/call/SignupWorkflow/{quote(email, safe='@')}/confirm --json '\"{secret}\"'")


def activate_user(user_id: str) -> None:
    log(f">>> Activated {user_id}")


@signup_workflow.main()
async def run(ctx: restate.WorkflowContext, signup: Signup) -> dict:
    email = ctx.key()
    user_id = await ctx.run_typed("create user", create_user, restate.RunOptions(), email, signup.name)
    ctx.set("status", "waiting for email confirmation")

    secret = str(ctx.uuid())
    await ctx.run_typed("send email", send_confirmation_email, restate.RunOptions(), email, secret)

    clicked = await ctx.promise("email-link", type_hint=str).value()
    if clicked != secret:
        ctx.set("status", "rejected: wrong confirmation secret")
        raise restate.TerminalError("the confirmation link was not the one we sent", 400)

    await ctx.run_typed("activate", activate_user, restate.RunOptions(), user_id)
    ctx.set("status", "active")
    return {"userId": user_id, "status": "active"}


@signup_workflow.handler()
async def confirm(ctx: restate.WorkflowSharedContext, secret: str) -> None:
    await ctx.promise("email-link", type_hint=str).resolve(secret)


@signup_workflow.handler()
async def status(ctx: restate.WorkflowSharedContext) -> str:
    return await ctx.get("status", type_hint=str) or "not started"
