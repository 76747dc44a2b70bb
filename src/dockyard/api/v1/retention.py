"""Retention rules of a workspace and their runs::

GET    /workspaces/{ws}/retention/rules             the rules (readers)
POST   /workspaces/{ws}/retention/rules             add one (maintainers)            -> 201
GET    /workspaces/{ws}/retention/rules/{id}        one rule (readers)
PUT    /workspaces/{ws}/retention/rules/{id}        change it (maintainers)
DELETE /workspaces/{ws}/retention/rules/{id}        remove it (maintainers)          -> 204
POST   /workspaces/{ws}/retention/rules/{id}/runs   {"dry_run": true}: what would go (200);
                                                    a real run is queued as a job (202)
GET    /workspaces/{ws}/retention/runs              the runs, newest first, paged by id
GET    /workspaces/{ws}/retention/runs/{id}         one run: progress, what went or would go
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from dockyard.api.deps import Caller, ClientIp
from dockyard.api.v1.inputs import IdPath, IdQuery, Name, TagPattern
from dockyard.retention.rules import MAX_COUNT, MAX_DAYS, MAX_EVERY_HOURS, RuleSpec
from dockyard.retention.runner import RetentionRunner
from dockyard.retention.service import RetentionRules
from dockyard.retention.views import RuleView, RunView

router = APIRouter(tags=["retention"])


@dataclass(frozen=True)
class RetentionServices:
    rules: RetentionRules
    runner: RetentionRunner


def retention_services(request: Request) -> RetentionServices:
    found: RetentionServices = request.app.state.retention
    return found


Services = Annotated[RetentionServices, Depends(retention_services)]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT, description="Tags to keep per repository.")]
Days = Annotated[int, Field(ge=1, le=MAX_DAYS, description="Days.")]


class RuleFields(BaseModel):
    kind: Literal["keep_last", "untagged", "not_pulled"] = Field(
        description="keep_last: keep the latest `count` tags; untagged: delete untagged manifests older "
        "than `days`; not_pulled: delete tags not pulled for `days`."
    )
    repository: Name | None = Field(None, description="One repository of the workspace; none: all of them.")
    tag_pattern: TagPattern = Field(
        "", description="Tags the rule looks at (`*`, `?`, `[...]`); empty: every tag."
    )
    count: Count | None = None
    ordering: Literal["pushed", "semver"] | None = Field(
        None, description="keep_last: by push time or semver."
    )
    days: Days | None = None
    every_hours: Annotated[int, Field(ge=0, le=MAX_EVERY_HOURS)] = Field(
        0, description="Run every this many hours; 0: only when started."
    )
    daily_at: Annotated[int, Field(ge=0, le=23)] | None = Field(
        None, description="Run daily at this hour (UTC) instead of every_hours."
    )
    enabled: bool = True

    def spec(self) -> RuleSpec:
        return RuleSpec.of(self)


class RunRequest(BaseModel):
    dry_run: bool = Field(True, description="List what would go and delete nothing.")


BASE = "/workspaces/{workspace}/retention"


@router.get(f"{BASE}/rules", summary="The workspace's retention rules (readers)")
async def list_rules(workspace: Name, services: Services, actor: Caller) -> list[RuleView]:
    return await services.rules.list_rules(actor, workspace)


@router.post(f"{BASE}/rules", status_code=201, summary="Add a retention rule (maintainers)")
async def add_rule(
    workspace: Name, body: RuleFields, services: Services, actor: Caller, ip: ClientIp
) -> RuleView:
    view = await services.rules.add(actor, workspace, body.spec(), ip)
    if not body.enabled:
        view = await services.rules.update(actor, workspace, view.id, body.spec(), False, ip)
    return view


@router.get(f"{BASE}/rules/{{rule_id}}", summary="One retention rule (readers)")
async def get_rule(workspace: Name, rule_id: IdPath, services: Services, actor: Caller) -> RuleView:
    return await services.rules.get(actor, workspace, rule_id)


@router.put(f"{BASE}/rules/{{rule_id}}", summary="Change a retention rule (maintainers)")
async def update_rule(
    workspace: Name, rule_id: IdPath, body: RuleFields, services: Services, actor: Caller, ip: ClientIp
) -> RuleView:
    return await services.rules.update(actor, workspace, rule_id, body.spec(), body.enabled, ip)


@router.delete(f"{BASE}/rules/{{rule_id}}", status_code=204, summary="Remove a retention rule (maintainers)")
async def remove_rule(
    workspace: Name, rule_id: IdPath, services: Services, actor: Caller, ip: ClientIp
) -> Response:
    await services.rules.remove(actor, workspace, rule_id, ip)
    return Response(status_code=204)


@router.post(
    f"{BASE}/rules/{{rule_id}}/runs",
    summary="Run a rule (maintainers): a dry run answers what would go, a real run is queued",
    responses={202: {"description": "A real run, queued as a job: follow it at /retention/runs/{id}."}},
)
async def start_run(
    workspace: Name,
    rule_id: IdPath,
    body: RunRequest,
    services: Services,
    actor: Caller,
    ip: ClientIp,
    response: Response,
) -> RunView:
    run = await services.runner.start(actor, workspace, rule_id, body.dry_run, ip)
    response.status_code = 200 if body.dry_run else 202
    return run


@router.get(f"{BASE}/runs", summary="The workspace's retention runs, newest first (readers)")
async def list_runs(
    workspace: Name,
    services: Services,
    actor: Caller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: IdQuery = None,
    rule: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Only this rule's runs.")] = None,
) -> list[RunView]:
    return await services.rules.runs(actor, workspace, limit, before, rule)


@router.get(f"{BASE}/runs/{{run_id}}", summary="One retention run, with what went or would go (readers)")
async def get_run(workspace: Name, run_id: IdPath, services: Services, actor: Caller) -> RunView:
    return await services.rules.run(actor, workspace, run_id)
