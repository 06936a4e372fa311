"""`/v1/reports`: red-team reports. Anyone with the report right files them against a video they can
see; reporters read their own, reviewers and admins read and export all, admins triage. Credits
(accepted findings per reporter, by name) are open to every key. The rules are in reports.py."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from .. import export, reports
from ..deps import CurrentUser, FieldsDep, Reporter, ReportReader, SessionDep, Triager, visible_video
from ..governance_schemas import (Credit, Credits, ReportCreate, ReportListParams, ReportPublic, ReportsPublic,
                                  Triage)
from ..rights import Right, can
from ..uploads import validate

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.post("", response_model=ReportPublic)
def file_report(user: Reporter, session: SessionDep, fields: FieldsDep):
    request = validate(ReportCreate, fields)
    video = visible_video(session, user, request.video_id)
    report = reports.file(session, user, video, category=request.category, severity=request.severity,
                          description=request.description, start_seconds=request.start_seconds,
                          end_seconds=request.end_seconds)
    return ReportPublic(**reports.as_dict(report, user.name))


@router.get("", response_model=ReportsPublic)
def list_reports(user: CurrentUser, session: SessionDep, params: Annotated[ReportListParams, Query()]):
    """The caller's reports; everyone's for reviewers and admins (unless `mine=true`)."""
    only = user if params.mine or not can(user, Right.EXPORT_REPORTS) else None
    rows = reports.listing(session, only, params.status, params.limit)
    return ReportsPublic(data=[ReportPublic(**reports.as_dict(r, name)) for r, name in rows])


@router.get("/credits", response_model=Credits)
def credits(user: CurrentUser, session: SessionDep):
    return Credits(data=[Credit(**c) for c in reports.credits(session)])


@router.get("/export")
def export_reports(user: ReportReader, session: SessionDep,
                   format: Annotated[Literal["json", "csv"], Query()] = "json"):
    rows = reports.export_rows(session)
    if format == "csv":
        return Response(export.to_csv(rows, reports.EXPORT_COLUMNS), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="reports.csv"'})
    return {"object": "list", "data": rows}


@router.get("/{report_id}", response_model=ReportPublic)
def get_report(report_id: int, user: CurrentUser, session: SessionDep):
    report, reporter = reports.get(session, report_id)
    if report.reporter_id != user.id and not can(user, Right.EXPORT_REPORTS):
        raise reports.report_not_found(report_id)
    return ReportPublic(**reports.as_dict(report, reporter))


@router.post("/{report_id}/triage", response_model=ReportPublic)
def triage_report(report_id: int, user: Triager, session: SessionDep, fields: FieldsDep):
    request = validate(Triage, fields)
    report = reports.triage(session, report_id, request.status, user, request.note)
    return ReportPublic(**reports.as_dict(report, reports.get(session, report.id)[1]))
